"""Regenerate ``tokenizer/_unicode_tables.py``: the frozen character classes of the default mode.

The default mode of our tokenizer promises to equal transformers' Rust-backed ``BertTokenizer``,
whose character classes come from tables compiled into the ``tokenizers`` wheel (the
``unicode_categories`` crate, Unicode 8.0, and Rust's ``char::is_whitespace``). They do not
move with Python, so neither may ours: this script asks the installed ``tokenizers`` about
every code point and writes what it answered as range tuples, which the tokenizer reads at run
time instead of ``unicodedata``::

    python scripts/make_unicode_tables.py            # rewrite tokenizer/_unicode_tables.py
    python scripts/make_unicode_tables.py --check    # exit 1 if the file is out of date
    python scripts/make_unicode_tables.py --diff     # also list where the running Python's
                                                     # unicodedata disagrees (informational)

Needs ``tokenizers`` (a development dependency, never imported by the tokenizer). Each class is
probed with the Rust components themselves, on the unit ``"a" + c + "b"`` (or ``"a" + c``):

* ``REMOVED``: ``BertNormalizer(clean_text=True)`` turns it into ``"ab"`` (NUL, U+FFFD and
  Rust's ``is_other`` minus tab/newline/carriage return);
* ``WHITE_SPACE``: ``BertPreTokenizer`` splits there and drops it (``char::is_whitespace``);
* ``PUNCTUATION``: ``BertPreTokenizer`` makes it a word of its own;
* ``CJK``: ``BertNormalizer(handle_chinese_chars=True)`` puts spaces around it;
* ``NONSPACING_MARK``: ``BertNormalizer(strip_accents=True)`` drops it entirely (after its NFD).

``tests/test_tokenizer_exhaustive.py`` checks the result against transformers on every code
point, under every supported Python.
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tokenizer" / "_unicode_tables.py"
MAX_CODE_POINT = 0x10FFFF
# The Unicode version of the general-category tables compiled into tokenizers (the
# `unicode_categories` 0.1.1 crate behind BertNormalizer's is_control and BertPreTokenizer's
# is_punctuation / strip_accents' is_nonspacing_mark). The probe agrees: nothing assigned in
# Unicode 9.0 or later (e.g. Adlam punctuation U+1E95E) is in these tables.
UNICODE_VERSION = "8.0.0"
CLASSES = ("REMOVED", "WHITE_SPACE", "PUNCTUATION", "CJK", "NONSPACING_MARK")


def code_points() -> range:
    return range(MAX_CODE_POINT + 1)


def is_surrogate(cp: int) -> bool:
    return 0xD800 <= cp <= 0xDFFF  # not text: neither Rust nor our tokenizer accepts them


def probe() -> dict[str, list[int]]:
    """Code points of each class, as the installed tokenizers sees them."""
    from tokenizers import normalizers, pre_tokenizers

    clean = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    ).normalize_str
    strip = normalizers.BertNormalizer(
        clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False
    ).normalize_str
    split = pre_tokenizers.BertPreTokenizer().pre_tokenize_str
    found: dict[str, list[int]] = {name: [] for name in CLASSES}
    found["CLEAN_SPACE"] = []
    for cp in code_points():
        if is_surrogate(cp):
            continue
        ch = chr(cp)
        cleaned = clean(f"a{ch}b")
        if cleaned == "ab":
            found["REMOVED"].append(cp)
        elif cleaned == "a b":
            found["CLEAN_SPACE"].append(cp)
        elif cleaned == f"a {ch} b":
            found["CJK"].append(cp)
        words = [w for w, _ in split(f"a{ch}b")]
        if words == ["a", "b"]:
            found["WHITE_SPACE"].append(cp)
        elif words == ["a", ch, "b"]:
            found["PUNCTUATION"].append(cp)
        if strip(f"a{ch}") == "a":
            found["NONSPACING_MARK"].append(cp)
    return found


def check_consistency(found: dict[str, list[int]]) -> None:
    """The tokenizer's regex relies on these relations; stop if a new tokenizers breaks one."""
    removed, space = set(found["REMOVED"]), set(found["WHITE_SPACE"])
    punct, cjk = set(found["PUNCTUATION"]), set(found["CJK"])
    # Cleaning maps whitespace to a space unless it is a control (VT, FF, NEL are removed).
    assert set(found["CLEAN_SPACE"]) == space - removed, "cleaning's whitespace changed"
    assert not punct & (removed | space | cjk), "a punctuation character is also another class"
    assert not cjk & (removed | space), "a CJK ideograph is also removed or whitespace"


def to_ranges(cps: list[int]) -> list[tuple[int, int]]:
    """Sorted code points as merged inclusive ``(lo, hi)`` ranges."""
    out: list[list[int]] = []
    for cp in sorted(cps):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return [(lo, hi) for lo, hi in out]


def render(found: dict[str, list[int]], tokenizers_version: str) -> str:
    """The source of ``_unicode_tables.py``."""
    lines = [
        '"""Frozen character classes of the default (Rust-equal) mode. GENERATED: do not edit.',
        "",
        "Written by ``scripts/make_unicode_tables.py``, which probed every code point through the",
        f"Rust ``BertNormalizer`` / ``BertPreTokenizer`` of tokenizers {tokenizers_version}. Each class is",
        "a tuple of inclusive ``(first, last)`` code point ranges, sorted and merged. The general",
        "categories behind REMOVED, PUNCTUATION and NONSPACING_MARK are those of Unicode",
        f"{UNICODE_VERSION} (the tables compiled into tokenizers); WHITE_SPACE is Rust's",
        "``char::is_whitespace``; CJK is the range list of tokenizers' BERT normalizer. None of this",
        "depends on the running Python's ``unicodedata``.",
        '"""',
        "",
        f'UNICODE_VERSION = "{UNICODE_VERSION}"',
        f'TOKENIZERS_VERSION = "{tokenizers_version}"',
        "",
    ]
    docs = {
        "REMOVED": "dropped by clean_text: NUL, U+FFFD, controls/format/private use (not \\t\\n\\r)",
        "WHITE_SPACE": "split points, themselves dropped (VT, FF, NEL are also REMOVED)",
        "PUNCTUATION": "each one a word of its own (ASCII symbols and Unicode P* categories)",
        "CJK": "CJK ideographs, each one a word of its own (note the hole at U+2B820-U+2B91F)",
        "NONSPACING_MARK": "dropped by accent stripping after NFD (category Mn, and what NFD maps to Mn)",
    }
    for name in CLASSES:
        ranges = to_ranges(found[name])
        count = sum(hi - lo + 1 for lo, hi in ranges)
        lines.append(f"# {docs[name]};")
        lines.append(f"# {count} code points in {len(ranges)} ranges.")
        lines.append(f"{name}: tuple[tuple[int, int], ...] = (")
        cells = [f"(0x{lo:04X}, 0x{hi:04X})," for lo, hi in ranges]
        for i in range(0, len(cells), 5):
            lines.append("    " + " ".join(cells[i : i + 5]))
        lines.append(")")
        lines.append("")
    return "\n".join(lines)


def python_view() -> dict[str, set[int]]:
    """The same classes from the running Python's unicodedata (for --diff only)."""
    cat = unicodedata.category
    out: dict[str, set[int]] = {name: set() for name in ("REMOVED", "PUNCTUATION", "NONSPACING_MARK")}
    for cp in code_points():
        if is_surrogate(cp):
            continue
        c = cat(chr(cp))
        if (c in ("Cc", "Cf", "Co") and chr(cp) not in "\t\n\r") or cp in (0, 0xFFFD):
            out["REMOVED"].add(cp)
        ascii_punct = 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
        if c.startswith("P") or ascii_punct:
            out["PUNCTUATION"].add(cp)
        if c == "Mn":
            out["NONSPACING_MARK"].add(cp)
    return out


def print_diff(found: dict[str, list[int]]) -> None:
    py = python_view()
    print(f"running Python's unicodedata: {unicodedata.unidata_version}")
    for name, cps in py.items():
        rust = set(found[name])
        for label, diff in (("only in Python", cps - rust), ("only in Rust", rust - cps)):
            ranges = ", ".join(
                f"U+{lo:04X}" if lo == hi else f"U+{lo:04X}-U+{hi:04X}" for lo, hi in to_ranges(sorted(diff))
            )
            print(f"{name} {label} ({len(diff)}): {ranges}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the file, write nothing")
    parser.add_argument("--diff", action="store_true", help="print where unicodedata disagrees")
    args = parser.parse_args(argv)
    import tokenizers

    found = probe()
    check_consistency(found)
    source = render(found, tokenizers.__version__)
    if args.diff:
        print_diff(found)
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != source:
            print(f"{OUT} is out of date for tokenizers {tokenizers.__version__}: regenerate it")
            return 1
        print(f"{OUT} matches tokenizers {tokenizers.__version__}")
        return 0
    OUT.write_text(source, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
