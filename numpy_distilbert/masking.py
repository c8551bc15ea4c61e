"""Dynamic masking for masked-LM distillation, as DistilBERT's training script does it.

Every batch is masked afresh ("dynamic", RoBERTa's word for it) rather than once when the
corpus is prepared, so that each pass over the data predicts other tokens:

    targets   mask_prop = 15% of the batch's real tokens, ⌈0.15 · Σ lengths⌉ of them, drawn
              without replacement from the positions that may be predicted: real tokens
              (attention mask 1) that are not special ([CLS], [SEP], [PAD], [MASK], [UNK] …),
              optionally weighted per token id (distiller.py: count^-0.7, so rare words are
              chosen more often than their frequency says)
    each target becomes  [MASK] with probability 0.8
                         itself (kept) with probability 0.1
                         a uniformly random token id with probability 0.1
    labels    the original id at every target, -100 everywhere else

These are the rules of transformers' `research_projects/distillation/distiller.py`
(`prepare_batch_mlm`): an exact count of targets per batch rather than a coin flip per token,
special tokens never chosen (their weight is 0), the random replacement drawn from the whole
vocabulary. One difference: when fewer tokens are eligible than the 15% asks for (a batch of
very short sentences where [CLS]/[SEP] are a large share), every eligible token is taken; the
reference script would fail there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from numpy_distilbert._checks import as_int
from numpy_distilbert.losses import IGNORE_INDEX


@dataclass(frozen=True)
class MaskedBatch:
    """input_ids [B, L] with the targets replaced; labels [B, L]: original id at targets, -100 elsewhere."""

    input_ids: np.ndarray
    labels: np.ndarray


def smoothed_token_weights(
    counts: ArrayLike, special_ids: Iterable[int], smoothing: float = 0.7
) -> np.ndarray:
    """distiller's per-token choice weights: max(count, 1) ** -smoothing, 0 for special tokens.

    counts: [V] occurrences of each token id in the corpus. smoothing 0 weights all tokens
    equally; 0.7 (the script's default) favours rare tokens.
    """
    weights = np.maximum(np.asarray(counts, dtype=np.float64), 1.0) ** -float(smoothing)
    weights[list(special_ids)] = 0.0
    return weights


def _check_probability(name: str, value: float) -> float:
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value


def mask_tokens(
    input_ids: ArrayLike,
    attention_mask: ArrayLike,
    rng: np.random.Generator,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_ids: Iterable[int],
    mask_prop: float = 0.15,
    word_mask: float = 0.8,
    word_keep: float = 0.1,
    word_rand: float = 0.1,
    token_weights: ArrayLike | None = None,
) -> MaskedBatch:
    """Choose ⌈mask_prop · real tokens⌉ targets and replace them 80/10/10 (see the module docstring).

    input_ids, attention_mask: [B, L] (right or left padding; the mask decides). The inputs
    are not modified. rng: a numpy Generator; the same seed gives the same batch.
    special_ids: ids never chosen as targets (with `token_weights`, their weight is ignored:
    they are never chosen either way). token_weights: [V] non-negative choice weights per
    token id (None: every eligible position equally likely); see `smoothed_token_weights`.
    """
    ids = np.asarray(input_ids)
    mask = np.asarray(attention_mask)
    if ids.ndim != 2 or mask.shape != ids.shape:
        raise ValueError(
            f"input_ids and attention_mask must both be [B, L], got {ids.shape} and {mask.shape}"
        )
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"input_ids must be integers, got dtype {ids.dtype}")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
    vocab_size = as_int(vocab_size, "vocab_size", minimum=1)
    mask_token_id = as_int(mask_token_id, "mask_token_id", minimum=0)
    if mask_token_id >= vocab_size:
        raise ValueError(f"mask_token_id {mask_token_id} is outside the vocabulary [0, {vocab_size})")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"input_ids hold ids outside the vocabulary [0, {vocab_size})")
    mask_prop = _check_probability("mask_prop", mask_prop)
    named = (("word_mask", word_mask), ("word_keep", word_keep), ("word_rand", word_rand))
    split = np.array([_check_probability(name, value) for name, value in named])
    if not math.isclose(split.sum(), 1.0, abs_tol=1e-9):
        raise ValueError(f"word_mask + word_keep + word_rand must be 1, got {split.sum()!r}")

    real = mask.astype(bool)
    specials = np.array(sorted({as_int(i, "special id", minimum=0) for i in special_ids}), dtype=np.int64)
    eligible = real & ~np.isin(ids, specials)  # [B, L]
    weights = eligible.astype(np.float64).ravel()  # [B·L]
    if token_weights is not None:
        table = np.asarray(token_weights, dtype=np.float64)
        if table.shape != (vocab_size,) or not np.all(np.isfinite(table)) or (table < 0).any():
            raise ValueError(
                f"token_weights must be [{vocab_size}] finite numbers >= 0, got shape {table.shape}"
            )
        weights *= table[ids.ravel()]
    # distiller: ⌈mask_prop · Σ lengths⌉, the lengths counting [CLS] and [SEP]
    n_targets = min(math.ceil(mask_prop * int(real.sum())), int(np.count_nonzero(weights)))

    flat_chosen = np.zeros(ids.size, dtype=bool)
    if n_targets:
        picked = rng.choice(ids.size, size=n_targets, replace=False, p=weights / weights.sum())
        flat_chosen[picked] = True
    chosen = flat_chosen.reshape(ids.shape)  # [B, L]

    originals = ids[chosen]  # [N] in row-major order
    kind = rng.choice(3, size=originals.size, p=split)  # 0: [MASK], 1: keep, 2: random
    random_ids = rng.integers(0, vocab_size, size=originals.size)
    replaced = np.where(kind == 0, mask_token_id, np.where(kind == 1, originals, random_ids))
    new_ids = ids.astype(np.int64, copy=True)
    new_ids[chosen] = replaced
    labels = np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
    labels[chosen] = originals
    return MaskedBatch(input_ids=new_ids, labels=labels)
