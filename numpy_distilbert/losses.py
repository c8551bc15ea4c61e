"""The training losses transformers computes, each with its gradient (forward and backward
side by side). Every function returns (loss, gradient of the loss with respect to its
logits), the gradient in the logits' shape and dtype.

This module is a leaf: it imports nothing of the project.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = -100  # torch's CrossEntropyLoss default: targets equal to it contribute nothing


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log(softmax(x)) along the last axis, without forming exp(x) of large numbers."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(
    logits: np.ndarray, targets: np.ndarray, ignore_index: int = IGNORE_INDEX
) -> tuple[float, np.ndarray]:
    """Mean of -log softmax(logits)[target] over the rows whose target is not `ignore_index`.

    logits: [N, C]; targets: [N] integers in [0, C) or `ignore_index`.
    Returns (loss, d_logits [N, C]): (softmax - one_hot(target)) / n_counted on counted rows, 0 elsewhere.
    Raises ValueError when no row counts (torch would return NaN) or a target is out of range.
    """
    targets = np.asarray(targets).reshape(-1)
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"class labels must be integers, got dtype {targets.dtype}")
    n_rows, n_classes = logits.shape
    if targets.shape[0] != n_rows:
        raise ValueError(f"{targets.shape[0]} labels for {n_rows} rows of logits")
    counted = targets != ignore_index  # [N]
    bad = counted & ((targets < 0) | (targets >= n_classes))
    if bad.any():
        raise ValueError(
            f"label {int(targets[bad][0])} is outside [0, {n_classes}) "
            f"(and is not the ignored value {ignore_index})"
        )
    n_counted = int(counted.sum())
    if n_counted == 0:
        raise ValueError(f"every label is the ignored value {ignore_index}: the loss is undefined (0/0)")
    every_row = n_counted == n_rows  # the MLM case: only labelled rows were projected
    rows = np.arange(n_rows) if every_row else np.nonzero(counted)[0]
    picked = targets[rows]
    # One exp over the (possibly [N, 119547]) logits serves the loss and the gradient:
    # log p = s - log Σ exp(s) with s = logits - max, and softmax = exp(s) / Σ exp(s).
    selected = logits if every_row else logits[rows]
    shifted = selected - selected.max(axis=-1, keepdims=True)  # [n, C], a fresh array
    probs = np.exp(shifted)
    totals = probs.sum(axis=-1, keepdims=True)  # [n, 1]
    index = np.arange(rows.size)
    loss = -float(np.sum(shifted[index, picked] - np.log(totals[:, 0]))) / n_counted
    probs /= totals
    probs[index, picked] -= 1.0
    probs /= np.asarray(n_counted, dtype=logits.dtype)
    if every_row:
        return loss, probs
    d_logits = np.zeros_like(logits)
    d_logits[rows] = probs
    return loss, d_logits


def mse(predictions: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of (prediction - target)² over every element; d = 2·(prediction - target)/n."""
    targets = np.asarray(targets, dtype=predictions.dtype)
    if targets.size != predictions.size:
        raise ValueError(f"{targets.size} regression targets for {predictions.size} outputs")
    diff = predictions - targets.reshape(predictions.shape)
    return float(np.mean(diff * diff)), diff * np.asarray(2.0 / diff.size, dtype=diff.dtype)


def bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], element by element.

    Written as max(x, 0) - x·t + log(1 + e^(-|x|)), which never overflows; d = (sigmoid(x) - t)/n.
    """
    targets = np.asarray(targets, dtype=logits.dtype)
    if targets.shape != logits.shape:
        raise ValueError(f"multi-label targets have shape {targets.shape}, logits {logits.shape}")
    losses = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    sigmoid = 0.5 * (1.0 + np.tanh(0.5 * logits))  # stable for any sign
    return float(np.mean(losses)), (sigmoid - targets) / np.asarray(logits.size, dtype=logits.dtype)


PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


def sequence_classification_loss(
    logits: np.ndarray, labels: np.ndarray, problem_type: str | None
) -> tuple[float, np.ndarray]:
    """transformers' choice for a sequence classifier's logits [B, C]: MSE when C == 1 or
    problem_type "regression"; cross-entropy for integer labels; BCE-with-logits otherwise
    (problem_type "multi_label_classification", float labels [B, C])."""
    labels = np.asarray(labels)
    n_labels = logits.shape[-1]
    if problem_type is None:
        if n_labels == 1:
            problem_type = "regression"
        elif np.issubdtype(labels.dtype, np.integer):
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    if problem_type == "regression":
        return mse(logits, labels)
    if problem_type == "single_label_classification":
        return cross_entropy(logits.reshape(-1, n_labels), labels.reshape(-1))
    if problem_type == "multi_label_classification":
        return bce_with_logits(logits, labels)
    raise ValueError(f"problem_type must be one of {PROBLEM_TYPES} or None, got {problem_type!r}")


def question_answering_loss(
    start_logits: np.ndarray, end_logits: np.ndarray, start_positions: np.ndarray, end_positions: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """(CE(start) + CE(end)) / 2 over a batch, start/end_logits [B, L], positions [B].

    As transformers: positions are clamped to [0, L], and L (a position past the input, e.g.
    an answer truncated away) is ignored. Returns (loss, d_start [B, L], d_end [B, L]).
    """
    seq_len = start_logits.shape[1]
    halves = []
    for logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
        positions = np.asarray(positions)
        if positions.ndim > 1 and positions.shape[-1] == 1:
            positions = positions[..., 0]  # [B, 1] -> [B], as transformers squeezes
        if positions.shape != (logits.shape[0],):
            raise ValueError(
                f"start/end positions must have shape [{logits.shape[0]}], got {positions.shape}"
            )
        positions = np.clip(positions, 0, seq_len)
        loss, d_logits = cross_entropy(logits, positions, ignore_index=seq_len)
        halves.append((loss, d_logits * np.asarray(0.5, dtype=logits.dtype)))
    (start_loss, d_start), (end_loss, d_end) = halves
    return (start_loss + end_loss) / 2.0, d_start, d_end


__all__ = [
    "IGNORE_INDEX",
    "bce_with_logits",
    "cross_entropy",
    "log_softmax",
    "mse",
    "question_answering_loss",
    "sequence_classification_loss",
]
