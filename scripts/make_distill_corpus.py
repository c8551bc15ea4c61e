"""Build the distillation demo's corpus from the Python standard library's docstrings.

    python scripts/make_distill_corpus.py            # writes data/distill_corpus/{train,heldout}.txt

Why this text: distillation needs a few thousand varied English sentences that the project
may ship and that anyone can rebuild. Every Python installation carries its standard
library's source, whose docstrings are thousands of well-formed English sentences (about
files, numbers, networks, text, time, errors), written by people, under the PSF License,
which allows redistribution with its notice (data/distill_corpus/README.md). The project's
own multilingual corpus is far too small, and a web corpus could not be shipped.

How: every `*.py` file under the standard library's directory (tests, IDLE, tkinter, site-
packages and the like excluded) is *parsed*, never imported (importing `antigravity` opens a
browser), and the docstrings of its modules, classes and functions are collected. Paragraphs
that look like code (doctests, indented blocks, signatures) are dropped; the rest is cut into
sentences, and a sentence is kept when it is plain ASCII prose of 6 to 40 words ending in a
full stop. Duplicates (ignoring case) go. The order is a hash of the text, so the split into
training and held-out sentences does not depend on the file system, only on the sentences.
The result depends on the Python version's docstrings; the README says which one made it.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "data" / "distill_corpus"
# Directories of the standard library whose text is tests, GUI or third-party code.
EXCLUDED_PARTS = {"test", "tests", "idlelib", "tkinter", "turtledemo", "site-packages", "lib2to3",
                  "ensurepip", "__pycache__", "pydoc_data", "msilib", "config-3"}  # fmt: skip
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
WORD = re.compile(r"[A-Za-z]+")


def stdlib_files(root: Path) -> list[Path]:
    def excluded(path: Path) -> bool:
        parts = path.relative_to(root).parts
        return any(part in EXCLUDED_PARTS or part.startswith("config-") for part in parts)

    return sorted(path for path in root.rglob("*.py") if not excluded(path))


def docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef,
                                                                 ast.AsyncFunctionDef)))]  # fmt: skip
    return [doc for node in nodes if (doc := ast.get_docstring(node, clean=True))]


def prose_paragraphs(doc: str) -> list[str]:
    """The paragraphs of a docstring that read as prose: no indented or doctest lines."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", doc):
        lines = block.splitlines()
        if any(line.startswith((" ", "\t", ">>>", "...")) for line in lines):
            continue
        paragraphs.append(" ".join(line.strip() for line in lines))
    return paragraphs


def is_plain_sentence(sentence: str) -> bool:
    if not sentence.isascii() or not sentence.endswith(".") or sentence.endswith("..."):
        return False
    if not sentence[0].isupper():
        return False
    words = sentence.split()
    if not 6 <= len(words) <= 40:
        return False
    # prose, not code: almost every word is a word, and no code punctuation
    if any(mark in sentence for mark in ("::", ">>>", "`", "(", ")", "[", "]", "{", "}", "=", "_", "*", "|",
                                          "<", ">", "\\", "#", "@", "%", "/")):  # fmt: skip
        return False
    wordlike = sum(1 for word in words if WORD.fullmatch(word.strip(".,;:!?'\"-")))
    return wordlike >= 0.9 * len(words)


def collect(root: Path) -> list[str]:
    seen: set[str] = set()
    sentences = []
    for path in stdlib_files(root):
        for doc in docstrings(path):
            for paragraph in prose_paragraphs(doc):
                for sentence in SENTENCE_END.split(paragraph):
                    sentence = " ".join(sentence.split())
                    key = sentence.lower()
                    if is_plain_sentence(sentence) and key not in seen:
                        seen.add(key)
                        sentences.append(sentence)
    return sorted(sentences, key=lambda s: hashlib.sha256(s.encode()).hexdigest())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=4000, help="training sentences (default 4000)")
    parser.add_argument("--heldout", type=int, default=400, help="held-out sentences (default 400)")
    parser.add_argument("-o", "--out", type=Path, default=OUT)
    args = parser.parse_args()
    sentences = collect(Path(sysconfig.get_paths()["stdlib"]))
    needed = args.train + args.heldout
    if len(sentences) < needed:
        sys.exit(f"only {len(sentences)} sentences found, {needed} asked for")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "heldout.txt").write_text("\n".join(sentences[: args.heldout]) + "\n", encoding="utf-8")
    (args.out / "train.txt").write_text("\n".join(sentences[args.heldout : needed]) + "\n", encoding="utf-8")
    version = ".".join(map(str, sys.version_info[:3]))
    print(f"{len(sentences)} sentences from Python {version}'s standard library; wrote "
          f"{args.train} to train.txt and {args.heldout} to heldout.txt in {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
