"""`numpy-distilbert finetune`: train a classifier from JSON lines, in NumPy.

    numpy-distilbert finetune --task text-classification --model ./all-MiniLM-L6-v2 \\
        --train train.jsonl --eval test.jsonl --epochs 3 --batch-size 16 --lr 5e-5 -o my-classifier

The files, one JSON object per line (blank lines are skipped; field names are set with
--text-field and --label-field):

* text-classification: {"text": "The match ended 2-1.", "label": "sport"}. A label is a string
  or an integer; integers are named by their decimal digits ("0", "1", ...).
* token-classification: {"text": ["Marie", "lives", "in", "Paris"], "label": ["B-PER", "O", "O",
  "B-LOC"]}: the words, already split, and one label per word. As transformers' run_ner
  example does, each word's first word piece is trained on its label and the other pieces
  (and [CLS], [SEP], padding) are not (label -100); evaluation reads the same positions.
  IOB2/IOBES labels get seqeval's entity F1 besides the accuracy.

Labels: a model without this task's head gets a new one (initialised as transformers does:
normal(0, initializer_range) weights, zero biases) for the training file's labels, sorted
(integers by value). A model that already has the head keeps its labels, and every label in
the files must be one of them. Either way an evaluation label must be known to the head.

What is refused, with the file and line: a file that cannot be read or holds no examples,
invalid JSON, a line that is not an object or lacks a field, a text or label of the wrong
type, an empty text or word, words and labels of different lengths, an unknown label, and a
training file with a single label (a classifier needs two). All of it is checked before any
training starts.

Output (-o DIR): the best epoch's model by held-out accuracy (entity F1 for IOB tags), or the
last epoch's without --eval, as config.json (with the labels) and model.safetensors, which our
pipelines and transformers load; the tokenizer's files; and training_history.json (loss,
learning rate and gradient norm per step, the evaluation per epoch).

This module imports only the standard library until it runs, so that the CLI's --help stays light.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "TASKS",
    "DataError",
    "Record",
    "add_parser",
    "encode_records",
    "finetune",
    "label_names",
    "model_with_head",
    "read_jsonl",
    "run",
]

TASKS = ("text-classification", "token-classification")
# The tokenizer files a trained model directory needs to be a complete pipeline model.
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
MAX_SHOWN_LABELS = 10


class DataError(ValueError):
    """A training or evaluation file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Record:
    """One example as the file gave it: a text (or words) and its label (or one per word)."""

    line: int
    text: str | list[str]
    label: str | list[str]  # label names: integers become their decimal digits


# ----------------------------------------------------------------------- the files
_JSON_KINDS = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
               bool: "true/false", type(None): "null"}  # fmt: skip


def _label_name(value: Any, where: str) -> str:
    """A JSON label as its name: strings as they are, integers (not true/false) as digits."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    shown = "an empty string" if value == "" else _JSON_KINDS.get(type(value), type(value).__name__)
    raise DataError(f"{where}: a label must be a non-empty string or an integer, got {shown}")


def _record(obj: Any, task: str, text_field: str, label_field: str, where: str, line: int) -> Record:
    if not isinstance(obj, dict):
        raise DataError(
            f"{where}: expected a JSON object with {text_field!r} and {label_field!r}, "
            f"got {_JSON_KINDS.get(type(obj), '?')}"
        )
    for name in (text_field, label_field):
        if name not in obj:
            raise DataError(f"{where}: no {name!r} field (the object has {sorted(obj)[:5]})")
    text, label = obj[text_field], obj[label_field]
    if task == "text-classification":
        if not isinstance(text, str):
            raise DataError(
                f"{where}: {text_field!r} must be a string, got {_JSON_KINDS.get(type(text), '?')}"
            )
        if not text.strip():
            raise DataError(f"{where}: {text_field!r} is empty")
        return Record(line, text, _label_name(label, f"{where}: {label_field!r}"))
    if not isinstance(text, list) or not all(isinstance(word, str) for word in text):
        raise DataError(f"{where}: {text_field!r} must be a list of words (strings) for token-classification")
    if not isinstance(label, list):
        raise DataError(f"{where}: {label_field!r} must be a list of labels, one per word")
    if len(text) != len(label):
        raise DataError(f"{where}: {len(text)} words but {len(label)} labels")
    if not text:
        raise DataError(f"{where}: {text_field!r} holds no words")
    for i, word in enumerate(text):
        if not word.strip():
            raise DataError(f"{where}: word {i} of {text_field!r} is empty")
    names = [_label_name(value, f"{where}: label {i} of {label_field!r}") for i, value in enumerate(label)]
    return Record(line, list(text), names)


def read_jsonl(
    path: str | Path, task: str, text_field: str = "text", label_field: str = "label"
) -> list[Record]:
    """Every example of a JSON-lines file, checked; a DataError names the file and line."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    records = []
    for number, line_bytes in enumerate(raw.split(b"\n"), start=1):
        where = f"{path}:{number}"
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: not UTF-8 (byte {exc.start + 1})") from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:  # huge integers, deep nesting
            raise DataError(f"{where}: not usable JSON ({type(exc).__name__})") from None
        records.append(_record(obj, task, text_field, label_field, where, number))
    if not records:
        raise DataError(f"{path}: no examples (the file is empty or blank)")
    return records


def _labels_of(record: Record) -> list[str]:
    return [record.label] if isinstance(record.label, str) else record.label


def label_names(records: Sequence[Record]) -> list[str]:
    """The distinct labels, sorted: by value when all are integers, else as strings."""
    names = {name for record in records for name in _labels_of(record)}
    if all(name.lstrip("-").isdigit() for name in names):
        return sorted(names, key=int)
    return sorted(names)


def check_labels(records: Sequence[Record], known: Sequence[str], path: str | Path, whose: str) -> None:
    """Every label of `records` must be one of `known` (the head's); else a DataError naming the line."""
    allowed = set(known)
    for record in records:
        for name in _labels_of(record):
            if name not in allowed:
                shown = ", ".join(list(known)[:MAX_SHOWN_LABELS]) + (
                    ", ..." if len(known) > MAX_SHOWN_LABELS else ""
                )
                raise DataError(f"{path}:{record.line}: unknown label {name!r}; {whose} labels are: {shown}")


# ------------------------------------------------------------------ to token ids
def encode_records(
    records: Sequence[Record], tokenizer: Any, task: str, label2id: dict[str, int], max_length: int
) -> tuple[list[dict[str, Any]], int]:
    """Records -> training examples {"input_ids", "labels"} (see training.py), and how many were
    cut at max_length. Token labels sit on each word's first word piece; the rest get -100."""
    from numpy_distilbert.training import IGNORE_INDEX

    examples: list[dict[str, Any]] = []
    truncated = 0
    for record in records:
        split = task == "token-classification"
        encoding = tokenizer(record.text, is_split_into_words=split, truncation=True, max_length=max_length)
        input_ids = list(encoding["input_ids"])
        if split:
            labels, previous = [], None
            for word in encoding.word_ids(0):
                first_piece = word is not None and word != previous
                labels.append(label2id[record.label[word]] if first_piece else IGNORE_INDEX)
                previous = word
            words_kept = len({w for w in encoding.word_ids(0) if w is not None})
            truncated += words_kept < len(record.text)
            examples.append({"input_ids": input_ids, "labels": labels})
        else:
            truncated += (
                len(input_ids) == max_length and len(tokenizer(record.text)["input_ids"]) > max_length
            )
            examples.append({"input_ids": input_ids, "labels": label2id[str(record.label)]})
    return examples, truncated


# ---------------------------------------------------------------------- the model
# task -> the head's class name per model_type, and its new tensors as name -> (rows, columns)
# given (model width d, number of labels n): transformers' layout.
HEADS: dict[str, dict[str, tuple[str, Callable[[int, int], dict[str, tuple[int, ...]]]]]] = {
    "distilbert": {
        "text-classification": ("DistilBertForSequenceClassification", lambda d, n: {
            "pre_classifier.weight": (d, d), "pre_classifier.bias": (d,),
            "classifier.weight": (n, d), "classifier.bias": (n,)}),
        "token-classification": ("DistilBertForTokenClassification", lambda d, n: {
            "classifier.weight": (n, d), "classifier.bias": (n,)}),
    },
    "bert": {
        "text-classification": ("BertForSequenceClassification", lambda d, n: {
            "classifier.weight": (n, d), "classifier.bias": (n,)}),
        "token-classification": ("BertForTokenClassification", lambda d, n: {
            "classifier.weight": (n, d), "classifier.bias": (n,)}),
    },
}  # fmt: skip
ENCODER_PREFIX = {"distilbert": "distilbert.", "bert": "bert."}
POOLER = ("pooler.dense.weight", "pooler.dense.bias")  # BERT's sequence head reads the pooled [CLS]


def _head_tensors(shapes: dict[str, tuple[int, ...]], std: float, seed: int) -> dict[str, Any]:
    """transformers' initialisation of a new nn.Linear: weight ~ normal(0, std), bias = 0."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        name: (rng.normal(0.0, std, shape) if name.endswith("weight") else np.zeros(shape)).astype(np.float32)
        for name, shape in shapes.items()
    }


def _write_with_head(directory: Path, target: Path, task: str, names: list[str], seed: int) -> None:
    """Write `target`: the encoder of the checkpoint in `directory`, a new head for `names`, a config."""
    from safetensors.numpy import save_file

    from numpy_distilbert.auto import read_family
    from numpy_distilbert.bert import strip_encoder_prefix
    from numpy_distilbert.weights import load_checkpoint, parse_json

    family, config = read_family(directory)
    architecture, head_shapes = HEADS[family.model_type][task]
    model_class = family.class_named(architecture)
    assert model_class is not None, architecture
    checkpoint = load_checkpoint(directory)
    if family.model_type == "bert":
        strip_encoder_prefix(checkpoint)
    dropped = (*model_class.known_head_prefixes, *model_class.ignored_prefixes)  # other heads, buffers
    encoder = {name: array for name, array in checkpoint.tensors.items() if not name.startswith(dropped)}
    shapes = head_shapes(config.dim, len(names))
    if family.model_type == "bert" and task == "text-classification":
        if POOLER[0] not in encoder:  # a base checkpoint saved without one: a new pooler
            shapes = {POOLER[0]: (config.dim, config.dim), POOLER[1]: (config.dim,), **shapes}
    else:  # transformers' other heads have no pooler (add_pooling_layer=False): none is written
        encoder = {name: array for name, array in encoder.items() if name not in POOLER}
    std = float(config.extra.get("initializer_range", 0.02))
    new = _head_tensors(shapes, std, seed)
    prefix = ENCODER_PREFIX[family.model_type]  # the names transformers saves a task model under
    tensors = {prefix + name: array for name, array in encoder.items()}
    tensors.update({(prefix + name if name in POOLER else name): array for name, array in new.items()})
    target.mkdir(parents=True, exist_ok=True)
    save_file(
        {name: a.astype("float32") for name, a in tensors.items()},
        str(target / "model.safetensors"),
        metadata={"format": "pt"},
    )
    data = parse_json((directory / "config.json").read_bytes())
    assert isinstance(data, dict)
    data.update(
        architectures=[architecture],
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
    )
    data.pop("num_labels", None)
    (target / "config.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def model_with_head(
    directory: Path, task: str, names: list[str] | None, seed: int = 0, dtype: Any = "float32"
) -> Any:
    """The model of `directory` for `task`: its own head if config.json names this task's class,
    else its encoder with a new head for `names` (None: keep the existing head's labels)."""
    from numpy_distilbert.auto import read_family

    family, config = read_family(directory)
    if family.model_type not in HEADS:
        raise DataError(f"{directory}: model_type {family.model_type!r} cannot be fine-tuned here")
    architecture = HEADS[family.model_type][task][0]
    model_class = family.class_named(architecture)
    assert model_class is not None, architecture
    if architecture in config.architectures:
        return model_class.from_pretrained(directory, dtype=dtype, mmap=False)
    if names is None:
        raise ValueError("a model without the head needs the label names")
    with tempfile.TemporaryDirectory(prefix="numpy-distilbert-head-") as scratch:
        _write_with_head(directory, Path(scratch), task, names, seed)
        return model_class.from_pretrained(scratch, dtype=dtype, mmap=False)


# -------------------------------------------------------------------------- running
def finetune(
    task: str,
    model: str | Path,
    train_file: str | Path,
    output_dir: str | Path,
    eval_file: str | Path | None = None,
    *,
    text_field: str = "text",
    label_field: str = "label",
    epochs: int = 3,
    batch_size: int = 16,
    lr: float = 5e-5,
    weight_decay: float = 0.01,
    warmup_steps: int = 0,
    max_grad_norm: float | None = 1.0,
    max_length: int = 128,
    seed: int = 0,
    dtype: str = "float32",
    revision: str | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> Any:
    """Read, check, tokenize, build the model, train, save. Returns the training History."""
    from numpy_distilbert.auto import AutoTokenizer, read_family
    from numpy_distilbert.hub import resolve_model
    from numpy_distilbert.optim import AdamW, is_bias_or_norm
    from numpy_distilbert.training import train

    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    train_records = read_jsonl(train_file, task, text_field, label_field)
    eval_records = None if eval_file is None else read_jsonl(eval_file, task, text_field, label_field)
    directory = resolve_model(model, revision=revision)
    family, config = read_family(directory)
    net = None
    if HEADS.get(family.model_type, {}).get(task, ("", None))[0] in config.architectures:
        net = model_with_head(directory, task, None, seed, dtype)  # fine-tune a classifier further
        names = [net.config.id2label[i] for i in range(len(net.config.id2label))]
        if len(names) < 2:
            raise DataError(
                f"{directory}: the model's head has {len(names)} output; finetune trains classifiers"
            )
        check_labels(train_records, names, train_file, "the model's")
    else:
        names = label_names(train_records)
        if len(names) < 2:
            raise DataError(
                f"{train_file}: every example has the label {names[0]!r}; a classifier needs two or more"
            )
    if eval_records is not None:
        check_labels(eval_records, names, eval_file or "", "the training file's (and the head's)")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    label2id = {name: i for i, name in enumerate(names)}
    limit = min(max_length, config.max_position_embeddings)
    train_examples, cut = encode_records(train_records, tokenizer, task, label2id, limit)
    eval_examples = None
    if eval_records is not None:
        eval_examples, eval_cut = encode_records(eval_records, tokenizer, task, label2id, limit)
        cut += eval_cut
    if cut and log:
        log(f"{cut} example(s) longer than {limit} tokens were cut (--max-length)")
    if net is None:
        net = model_with_head(directory, task, names, seed, dtype)
    optimizer = AdamW(net.named_parameters(), lr=lr, weight_decay=weight_decay, no_decay=is_bias_or_norm)
    history = train(net, train_examples, optimizer, epochs=epochs, batch_size=batch_size,
                    eval_examples=eval_examples, output_dir=output_dir, warmup_steps=warmup_steps,
                    max_grad_norm=max_grad_norm, seed=seed, pad_token_id=tokenizer.pad_token_id, log=log,
                    progress=progress)  # fmt: skip
    _copy_tokenizer_files(directory, Path(output_dir))
    return history


def _copy_tokenizer_files(source: Path, target: Path) -> None:
    for name in TOKENIZER_FILES:
        if (source / name).is_file() and not (target / name).exists():
            shutil.copyfile(source / name, target / name)


def add_parser(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    """The `finetune` subcommand's options (the CLI calls `run` with what they parse to)."""
    p = sub.add_parser(
        "finetune",
        help="fine-tune a text or token classifier on JSON lines (NumPy training)",
        description="Fine-tune a model (a directory or model id) on JSON lines: --train FILE with one "
        '{"text": ..., "label": ...} a line, or for token-classification {"text": [words], "label": '
        "[one label per word]}. The best epoch by --eval accuracy (entity F1 for IOB tags) is written "
        "to -o DIR, which our pipelines and transformers load. Prints a JSON summary.",
        parents=list(parents),
    )
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument(
        "-m", "--model", required=True, help="model directory or Hugging Face model id to start from"
    )
    p.add_argument("--revision", default=None, help="branch, tag or commit of a model id")
    p.add_argument(
        "--train", required=True, metavar="FILE.jsonl", help="training examples, one JSON object a line"
    )
    p.add_argument("--eval", metavar="FILE.jsonl", help="held-out examples, evaluated after every epoch")
    p.add_argument(
        "--text-field", default="text", help="the field holding the text (or words) (default: text)"
    )
    p.add_argument("--label-field", default="label", help="the field holding the label(s) (default: label)")
    p.add_argument("--epochs", type=int, default=3, help="passes over the training file (default: 3)")
    p.add_argument("--batch-size", type=int, default=16, help="examples per step (default: 16)")
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate of AdamW (default: 5e-5)")
    p.add_argument(
        "--weight-decay",
        type=float,
        default=0.01,
        help="AdamW's decoupled weight decay, not applied to biases and LayerNorm weights (default: 0.01)",
    )
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warmup steps (default: 0)")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="clip the gradient norm (default: 1.0)")
    p.add_argument(
        "--max-length", type=int, default=128, help="tokens per example, longer ones cut (default: 128)"
    )
    p.add_argument("--seed", type=int, default=0, help="shuffling, dropout and the new head (default: 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="where the trained model is written")
    return p


def run(args: argparse.Namespace, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run `finetune` from parsed arguments; returns the JSON summary the CLI prints."""
    from numpy_distilbert._checks import as_int

    for name, minimum in (
        ("epochs", 1),
        ("batch_size", 1),
        ("warmup_steps", 0),
        ("max_length", 2),
        ("seed", 0),
    ):
        as_int(getattr(args, name), f"--{name.replace('_', '-')}", minimum=minimum)
    history = finetune(
        args.task, args.model, args.train, args.output, args.eval, text_field=args.text_field,
        label_field=args.label_field, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, max_grad_norm=args.max_grad_norm,
        max_length=args.max_length, seed=args.seed, dtype=args.dtype, revision=args.revision,
        log=log or (lambda line: print(line, file=sys.stderr)), progress=not args.no_progress,
    )  # fmt: skip
    return {
        "output": str(args.output),
        "best_epoch": history.best_epoch,
        "steps": len(history.losses),
        "final_train_loss": history.losses[-1],
        "evaluations": history.evaluations,
    }
