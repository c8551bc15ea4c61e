"""`numpy-distilbert distill`: make a DistilBERT student of a BERT teacher from the command line.

    numpy-distilbert distill --teacher ./all-MiniLM-L6-v2 --layers 0,2,4 --train lines.txt \\
        --steps 500 --batch-size 32 --lr 1e-4 --max-length 64 -o ./student

The run is resumable: run the same command again after an interruption and it continues
from its last saved step (`--save-every`), drawing the same batches as an uninterrupted run.
OUT then holds the student (config.json, model.safetensors and the teacher's tokenizer files),
which our pipelines and transformers load, with `distill_log.jsonl` (the loss of every step)
and the checkpoint that resuming reads. Progress and the loss parts go to stderr; a JSON
summary goes to stdout at the end.

This module only builds the parser at import time (the program's `--help` stays light); the
work is in `distill.py`. Like `finetune.py`, it does not import `cli.py`: `run_distill` returns
the summary and raises `DistillUsageError` for bad options or files, and cli.py reports both.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOSS_PARTS = ("ce", "mlm", "cos", "mse")


class DistillUsageError(ValueError):
    """A bad option, a missing or unreadable training file, or a run in OUT started otherwise."""


def _layers(text: str) -> list[int]:
    try:
        layers = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        layers = []
    if not layers:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer numbers like 0,2,4, got {text!r}")
    return layers


def _number(minimum: float, what: str, allow_equal: bool = False) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        finite = value == value and value != float("inf")
        if not finite or not (value > minimum or (allow_equal and value == minimum)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def add_distill_parser(
    sub: Any, after: argparse.ArgumentParser, positive_int: Callable[[str], int]
) -> None:
    """The `distill` subcommand's parser (cli.build_parser calls this with its integer rule)."""
    _positive_int = positive_int
    p = sub.add_parser(
        "distill",
        help="distil a BERT teacher into a DistilBERT student (resumable)",
        description="Initialise a DistilBERT student from a BERT teacher (its embeddings, the chosen "
                    "layers, its MLM head) and train it on a text file with DistilBERT's triple loss "
                    "(a teacher without MLM head, such as a sentence-embedding model: cosine + "
                    "sentence-embedding MSE). Running the same command again resumes an interrupted run.",
        parents=[after],
    )  # fmt: skip
    p.add_argument("--teacher", required=True, metavar="DIR_OR_ID", help="BERT model directory or model id")
    p.add_argument("--layers", type=_layers, metavar="0,2,4",
                   help="teacher layers the student's blocks are copied from (default: every other one)")
    p.add_argument("--train", required=True, metavar="FILE",
                   help="training text, one per line (blank lines skipped)")
    p.add_argument("--steps", type=_positive_int, required=True, metavar="N", help="optimisation steps")
    p.add_argument("--batch-size", type=_positive_int, default=32, metavar="B",
                   help="texts per step (default 32)")
    p.add_argument("--lr", type=_number(0.0, "a learning rate > 0"), default=5e-4, metavar="LR",
                   help="peak learning rate of the linear warmup/decay schedule (default 5e-4)")
    p.add_argument("--max-length", type=_positive_int, default=128, metavar="L",
                   help="tokens per text, [CLS] and [SEP] included; longer texts are cut (default 128)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="directory of the student (and of the run)")
    p.add_argument("--save-every", type=_positive_int, default=100, metavar="N",
                   help="save a resumable checkpoint every N steps (default 100; always at the end)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batches, masking and dropout (default 0)")
    p.add_argument("--temperature", type=_number(0.0, "a temperature > 0"), default=2.0)
    for part in LOSS_PARTS:
        p.add_argument(f"--alpha-{part}", type=_number(0.0, "a weight >= 0", allow_equal=True), default=None,
                       help=f"weight of L_{part} (default: 5, 2, 1, 0 for ce, mlm, cos, mse with an MLM "
                            f"teacher; 0, 0, 1, 1 without)" if part == "ce" else None)  # fmt: skip
    p.add_argument("--no-dropout", action="store_true", help="train the student without dropout")
    p.add_argument("--cache-teacher", action="store_true",
                   help="a teacher without MLM head: compute its outputs for the whole file once, "
                        "not at every step (memory: tokens x hidden size floats)")
    p.add_argument("--float64", action="store_true", help="run everything in float64")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")


def _read_lines(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise DistillUsageError(f"--train {path}: no such file")
    texts = []
    with file.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise DistillUsageError(f"--train {path}, line {number}: not UTF-8 ({exc.reason})") from None
            if text:
                texts.append(text)
    if not texts:
        raise DistillUsageError(f"--train {path}: no text in it (every line is blank)")
    return texts


def _format(record: dict[str, Any], steps: int) -> str:
    parts = "  ".join(f"{part} {record['loss_' + part]:.4f}" for part in LOSS_PARTS
                      if record.get("loss_" + part) is not None)  # fmt: skip
    return f"step {record['step']}/{steps}  loss {record['loss']:.4f} ({parts})  lr {record['lr']:.2e}"


def run_distill(args: argparse.Namespace, show: Callable[[str, bool], None]) -> dict[str, Any]:
    """The `distill` command; returns the summary to print. `show(text, redraw)` reports progress
    on stderr (redraw: the line replaces the previous one). Errors: DistillUsageError for bad
    options, files or a run in OUT started with other options; ModelNotFoundError; ConfigError
    or CheckpointError when the teacher cannot be used."""
    from numpy_distilbert.distill import DistillOptions, LossWeights, distill

    texts = _read_lines(args.train)
    weights = None
    given = {part: getattr(args, f"alpha_{part}") for part in LOSS_PARTS}
    if any(value is not None for value in given.values()) or args.temperature != 2.0:
        defaults = LossWeights()
        weights = LossWeights(
            temperature=args.temperature,
            **{f"alpha_{part}": value if value is not None else getattr(defaults, f"alpha_{part}")
               for part, value in given.items()},
        )  # fmt: skip
    options = DistillOptions(
        teacher=args.teacher, layers=None if args.layers is None else tuple(args.layers), steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, max_length=args.max_length, seed=args.seed,
        dropout=not args.no_dropout, weights=weights, float64=args.float64, cache_teacher=args.cache_teacher,
    )  # fmt: skip
    redraw = not args.no_progress and sys.stderr is not None and sys.stderr.isatty()
    started = time.monotonic()
    every = max(1, args.steps // 20)

    def on_step(record: dict[str, Any]) -> None:
        line = _format(record, args.steps)
        if redraw:
            elapsed = time.monotonic() - started
            show(f"{line}  {record['seconds']:.2f} s/step  {elapsed:.0f} s", True)
        elif not args.no_progress and (record["step"] % every == 0 or record["step"] == args.steps):
            show(line, False)

    try:
        records = distill(options, texts, args.output, save_every=args.save_every, on_step=on_step)
    except FileExistsError as exc:
        raise DistillUsageError(str(exc)) from None
    last = records[-1] if records else None
    return {"output": str(args.output), "steps": args.steps, "last": last,
            "seconds": round(time.monotonic() - started, 3)}  # fmt: skip


__all__ = ["DistillUsageError", "add_distill_parser", "run_distill"]
