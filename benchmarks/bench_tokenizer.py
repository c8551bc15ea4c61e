"""Time our WordPieceTokenizer against transformers' tokenizers on the same lines, in one run.

    python benchmarks/bench_tokenizer.py [--lines 20000] [--rounds 5] [--model-dir DIR]

Lines: 20,000 reproducible "web-like" lines assembled from the multilingual test corpus
(``tests/tokenizer_corpus``; no network). Contestants, interleaved round by round, medians
reported, our word cache cleared before every round (so each round starts cold):

* ours (default mode) per text ``tok(line)`` and batched ``tok(lines)``;
* ours (NFC mode) per text;
* transformers ``BertTokenizer`` (Rust) per text and batched (Rust batches use all cores
  through rayon; per-text calls use one);
* transformers ``BertTokenizerLegacy`` (pure Python) per text.

Prints a markdown table with each time and the ratio to ours. Performance lives here, not in
the tests; ratios, not absolute times, are what carry over between machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tokenizer_corpus import web_lines  # noqa: E402

from tokenizer import WordPieceTokenizer  # noqa: E402


def _default_model_dir() -> Path:
    env = os.environ.get("NUMPY_DISTILBERT_SHARED_MODEL")
    return Path(env) if env else ROOT.parent / "shared" / "models" / "distilbert-base-multilingual-cased"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model-dir", type=Path, default=_default_model_dir())
    args = ap.parse_args()

    from transformers import BertTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    lines = web_lines(args.lines, seed=0)
    ours = WordPieceTokenizer.from_pretrained(args.model_dir)
    ours_nfc = WordPieceTokenizer.from_pretrained(args.model_dir, unicode_normalization="NFC")
    rust = BertTokenizer.from_pretrained(args.model_dir)
    legacy = BertTokenizerLegacy.from_pretrained(args.model_dir)

    # Same answers first: a benchmark of a wrong tokenizer is worthless.
    assert ours(lines)["input_ids"] == rust(lines)["input_ids"], "default mode differs from Rust"
    sample = lines[:2000]
    assert [ours_nfc(s)["input_ids"] for s in sample] == [legacy(s)["input_ids"] for s in sample]

    def clear():
        ours._cache.clear()
        ours_nfc._cache.clear()

    contestants = {
        "ours, per text": lambda: [ours(s) for s in lines],
        "ours, batched": lambda: ours(lines),
        "ours NFC mode, per text": lambda: [ours_nfc(s) for s in lines],
        "Rust BertTokenizer, per text": lambda: [rust(s) for s in lines],
        "Rust BertTokenizer, batched": lambda: rust(lines),
        "BertTokenizerLegacy, per text": lambda: [legacy(s) for s in lines],
    }
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(args.rounds):
        for name, run in contestants.items():
            clear()
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    n_tokens = sum(len(ids) for ids in rust(lines)["input_ids"])
    print(f"{len(lines)} lines, {n_tokens} tokens, {args.rounds} rounds (median), "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")  # fmt: skip
    print("| tokenizer | seconds | vs ours per text | vs ours batched |")
    print("|---|---:|---:|---:|")
    for name, t in med.items():
        print(f"| {name} | {t:.3f} | {t / med['ours, per text']:.2f}x | {t / med['ours, batched']:.2f}x |")
    print()
    ours_t = med["ours, per text"]
    print(f"Rust per text / ours per text: {med['Rust BertTokenizer, per text'] / ours_t:.2f} (goal >= 1)")
    print(f"legacy per text / ours per text: {med['BertTokenizerLegacy, per text'] / ours_t:.2f} (goal >= 3)")


if __name__ == "__main__":
    main()
