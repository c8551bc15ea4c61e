"""Fine-tuning in NumPy: batches, one training step, evaluation, and the loop that ties them.

    model = AutoModelForSequenceClassification.from_pretrained(path)
    optimizer = AdamW(model.named_parameters(), lr=5e-5, no_decay=is_bias_or_norm)
    history = train(model, examples, optimizer, epochs=3, batch_size=16,
                    eval_examples=held_out, output_dir="my-classifier")

An example is a dict: {"input_ids": [101, ..., 102], "labels": 2} for a sequence label, or
"labels": [-100, 3, 0, -100, ...] (one per token, -100 where no loss is taken) for token
labels. `finetune.py` makes them from JSON lines; any tokenizer's ids will do.

The loop (`train`), one screen long:
    every epoch: shuffled, length-bucketed batches -> `training_step` (loss and gradients with
    dropout, clip the gradient norm, AdamW, the linear schedule) -> `evaluate` on the held-out
    examples -> the best epoch's model saved with `save_pretrained`.
Everything random comes from `seed`: the same seed, data and model give the same numbers.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from numpy_distilbert._checks import as_int
from numpy_distilbert.losses import (  # IGNORE_INDEX: padding, special tokens, later word pieces
    IGNORE_INDEX,
    log_softmax,
)
from numpy_distilbert.optim import AdamW, clip_grad_norm, get_linear_schedule_with_warmup

__all__ = [
    "Batch",
    "History",
    "ProgressBar",
    "collate",
    "entity_spans",
    "evaluate",
    "length_bucketed_batches",
    "seqeval_scores",
    "train",
    "training_step",
]

BUCKET_BATCHES = 50  # batches sorted by length together: transformers' LengthGroupedSampler's megabatch


# --------------------------------------------------------------------------- batches
@dataclass
class Batch:
    """Examples padded to their longest: what `loss_and_grads` takes."""

    input_ids: np.ndarray  # [B, L] int64, pad_token_id after each sequence's end
    attention_mask: np.ndarray  # [B, L] int64, 1 for tokens, 0 for padding
    labels: np.ndarray  # [B] int64 (sequence labels) or [B, L] (token labels, -100 at padding)


def collate(examples: Sequence[Mapping[str, Any]], pad_token_id: int = 0) -> Batch:
    """Pad a list of examples (right-padding, as BERT's tokenizers do) into one Batch."""
    lengths = [len(example["input_ids"]) for example in examples]
    batch, length = len(examples), max(lengths)
    input_ids = np.full((batch, length), pad_token_id, dtype=np.int64)
    attention_mask = np.zeros((batch, length), dtype=np.int64)
    token_labels = not np.isscalar(examples[0]["labels"])
    labels = np.full((batch, length) if token_labels else (batch,), IGNORE_INDEX, dtype=np.int64)
    for row, (example, n) in enumerate(zip(examples, lengths, strict=True)):
        input_ids[row, :n] = example["input_ids"]
        attention_mask[row, :n] = 1
        if token_labels:
            labels[row, :n] = example["labels"]
        else:
            labels[row] = example["labels"]
    return Batch(input_ids, attention_mask, labels)


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Indices of the examples, in batches of similar length, in a random order.

    Shuffle; sort each window of BUCKET_BATCHES batches by length (so a batch pads little);
    cut into batches; shuffle the batches (so the epoch does not run short to long).
    """
    order = rng.permutation(len(lengths))
    window = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort([lengths[i] for i in chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


# ----------------------------------------------------------------------------- a step
def training_step(
    model: Any,
    batch: Batch,
    optimizer: AdamW,
    max_grad_norm: float | None,
    dropout_rng: np.random.Generator | None,
) -> tuple[float, float]:
    """Loss and gradients (dropout from `dropout_rng`; None: none), clipping, one AdamW step.
    Returns (loss, gradient norm before clipping).

    Only the parameters the optimizer holds are clipped and trained, as torch's frozen
    parameters (requires_grad=False) have no gradient: an AdamW over the head alone trains the
    head of a frozen encoder.
    """
    loss, all_grads = model.loss_and_grads(
        batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels, dropout_rng=dropout_rng
    )
    grads = {name: all_grads[name] for name in optimizer.params}
    if not math.isfinite(loss):
        raise FloatingPointError(f"the loss is {loss}: lower the learning rate, or check the labels")
    norm = clip_grad_norm(grads, max_grad_norm if max_grad_norm is not None else math.inf)
    optimizer.step(grads)
    return loss, norm


# ------------------------------------------------------------------------- evaluation
def entity_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, first, last) of every entity in one sentence's IOB/IOBES tags, read as CoNLL's
    conlleval (and seqeval's default mode) reads them: leniently, so that an I- after O, or
    after another type, starts an entity instead of being dropped."""
    spans = set()
    previous_tag, previous_type, start = "O", "", 0
    for i, label in enumerate([*tags, "O"]):  # a final O closes the last entity
        tag, kind = label[:1], label[1:].split("-", maxsplit=1)[-1] or "_"
        ends = (
            previous_tag in ("E", "S")
            or (previous_tag in ("B", "I") and tag in ("B", "S", "O"))
            or (previous_tag not in ("O", ".") and previous_type != kind)
        )
        if ends:
            spans.add((previous_type, start, i - 1))
        starts = (
            tag in ("B", "S")
            or (previous_tag in ("E", "S", "O") and tag in ("E", "I"))
            or (tag not in ("O", ".") and previous_type != kind)
        )
        if starts:
            start = i
        previous_tag, previous_type = tag, kind
    return spans


def seqeval_scores(
    true_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Entity-level micro precision, recall and F1 over sentences, as transformers' run_ner
    reports them (seqeval's overall_*): an entity counts only when its type and both ends match."""
    true = {(s, *span) for s, tags in enumerate(true_tags) for span in entity_spans(tags)}
    predicted = {(s, *span) for s, tags in enumerate(predicted_tags) for span in entity_spans(tags)}
    hits = len(true & predicted)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _is_iob(names: Sequence[str]) -> bool:
    return all(name == "O" or (name[:2] in ("B-", "I-", "E-", "S-") and len(name) > 2) for name in names)


def evaluate(
    model: Any, examples: Sequence[Mapping[str, Any]], batch_size: int = 32, pad_token_id: int = 0
) -> dict[str, float]:
    """Loss (mean cross-entropy) and accuracy on the examples, in eval mode (no dropout); for
    token labels also seqeval's entity precision, recall and F1 when the labels are IOB tags."""
    names = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    total_loss, correct, counted = 0.0, 0, 0
    true_tags: list[list[str]] = []
    predicted_tags: list[list[str]] = []
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_token_id)
        logits = model(batch.input_ids, attention_mask=batch.attention_mask).logits  # [B, C] or [B, L, C]
        keep = batch.labels != IGNORE_INDEX  # [B] or [B, L]
        log_probabilities = log_softmax(logits.astype(np.float64))[keep]  # [N, C]
        gold = batch.labels[keep]  # [N]
        total_loss -= float(log_probabilities[np.arange(len(gold)), gold].sum())
        predicted = logits.argmax(axis=-1)
        correct += int((predicted[keep] == gold).sum())
        counted += len(gold)
        if keep.ndim == 2:  # one tag sequence per sentence, over its labelled (first) word pieces
            for row in range(len(keep)):
                true_tags.append([names[i] for i in batch.labels[row][keep[row]]])
                predicted_tags.append([names[i] for i in predicted[row][keep[row]]])
    scores = {"loss": total_loss / max(counted, 1), "accuracy": correct / max(counted, 1)}
    if true_tags and _is_iob(names):
        scores.update(seqeval_scores(true_tags, predicted_tags))
    return scores


# ------------------------------------------------------------------------ the loop
@dataclass
class History:
    """What a run measured: per optimizer step, and per epoch's evaluation."""

    losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)  # the lr each step used
    grad_norms: list[float] = field(default_factory=list)  # before clipping
    evaluations: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based; the epoch whose model was saved
    metric: str = "accuracy"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")


class ProgressBar:
    """One line on `stream`, redrawn in place, only when `stream` is a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None):
        self.total, self.label, self.done = total, label, 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()

    def update(self, **values: float) -> None:
        self.done += 1
        if self.enabled:
            filled = 30 * self.done // max(self.total, 1)
            shown = "  ".join(f"{name} {value:.4g}" for name, value in values.items())
            rate = self.done / max(time.monotonic() - self.started, 1e-9)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}"
            self.stream.write(f"\r{self.label} {bar}  {shown}  {rate:.2f} steps/s\033[K")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def train(
    model: Any,
    train_examples: Sequence[Mapping[str, Any]],
    optimizer: AdamW,
    *,
    epochs: int = 3,
    batch_size: int = 16,
    eval_examples: Sequence[Mapping[str, Any]] | None = None,
    output_dir: str | Path | None = None,
    warmup_steps: int = 0,
    max_grad_norm: float | None = 1.0,
    dropout: bool = True,
    seed: int = 0,
    pad_token_id: int = 0,
    metric: str | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> History:
    """Fine-tune `model` in place on `train_examples`; return the `History`.

    optimizer: an AdamW over `model.named_parameters()`; its lr is the peak of a linear schedule
        (`warmup_steps` up from 0, then down to 0 at the last step).
    eval_examples: evaluated after every epoch; the best epoch by `metric` ("accuracy", or "f1"
        for IOB token labels) is saved to `output_dir`. Without them the last epoch is saved.
    max_grad_norm: clip the gradients' global norm (None: no clipping).
    dropout: as the config says (False: none, the deterministic steps that match torch's eval mode).
    log: called with one line per epoch (e.g. print); progress: a bar on stderr if it is a terminal.
    The model keeps the last epoch's weights; output_dir holds the best epoch's, and
    training_history.json (this History).
    """
    epochs, batch_size = as_int(epochs, "epochs", minimum=1), as_int(batch_size, "batch_size", minimum=1)
    if not train_examples:
        raise ValueError("no training examples")
    order_seed, dropout_seed = np.random.SeedSequence(as_int(seed, "seed", minimum=0)).spawn(2)
    order_rng, dropout_rng = np.random.default_rng(order_seed), np.random.default_rng(dropout_seed)
    lengths = [len(example["input_ids"]) for example in train_examples]
    steps_per_epoch = math.ceil(len(train_examples) / batch_size)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup_steps, epochs * steps_per_epoch)
    token_labels = not np.isscalar(train_examples[0]["labels"])
    names = list(model.config.id2label.values())
    iob = bool(names) and _is_iob(names)
    history = History(metric=metric or ("f1" if token_labels and iob else "accuracy"))
    if history.metric not in ("accuracy", "f1") or (history.metric == "f1" and not iob):
        raise ValueError(f"metric must be 'accuracy', or 'f1' for IOB token labels, got {history.metric!r}")
    for epoch in range(1, epochs + 1):
        bar = ProgressBar(steps_per_epoch, f"epoch {epoch}/{epochs}", None) if progress else None
        for indices in length_bucketed_batches(lengths, batch_size, order_rng):
            history.learning_rates.append(optimizer.lr)
            batch = collate([train_examples[i] for i in indices], pad_token_id)
            loss, norm = training_step(
                model, batch, optimizer, max_grad_norm, dropout_rng if dropout else None
            )
            schedule.step()
            history.losses.append(loss)
            history.grad_norms.append(norm)
            if bar:
                bar.update(loss=loss, lr=history.learning_rates[-1])
        if bar:
            bar.close()
        line = f"epoch {epoch}/{epochs}: train loss {np.mean(history.losses[-steps_per_epoch:]):.4f}"
        if eval_examples:
            scores = evaluate(model, eval_examples, max(batch_size, 32), pad_token_id)
            history.evaluations.append(scores)
            line += "  eval " + "  ".join(f"{name} {value:.4f}" for name, value in scores.items())
            best = max(e[history.metric] for e in history.evaluations[:-1]) if epoch > 1 else -math.inf
            if scores[history.metric] > best:
                history.best_epoch = epoch
                if output_dir is not None:
                    model.save_pretrained(output_dir)
                    line += "  (saved)"
        if log:
            log(line)
    if not eval_examples:
        history.best_epoch = epochs
        if output_dir is not None:
            model.save_pretrained(output_dir)
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        history.save(Path(output_dir) / "training_history.json")
    return history
