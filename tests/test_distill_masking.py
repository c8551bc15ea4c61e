"""Dynamic masking (numpy_distilbert.masking) by exact behaviour and by statistics. No torch.

The rules are distiller.py's `prepare_batch_mlm`: exactly ⌈15% of the real tokens⌉ targets
per batch, never a special token or padding, each target [MASK] / kept / random at 80/10/10.
The statistical tests use many seeded batches and bounds of 5 standard deviations, so a
correct implementation fails them with probability < 1e-6, while a wrong split (e.g. 80/20/0,
or per-token coin flips) moves them by far more.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from numpy_distilbert.masking import IGNORE_INDEX, mask_tokens, smoothed_token_weights

VOCAB = 1000
PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
SPECIALS = (PAD, UNK, CLS, SEP, MASK)


def make_batch(seed: int, batch: int = 16, length: int = 40):
    """[CLS] words [SEP] [PAD]…, right padded, words drawn from the non-special ids."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, length + 1, size=batch)
    words = rng.integers(104, VOCAB, size=(batch, length))
    ids = np.full((batch, length), PAD)
    for row, n in enumerate(lengths):
        ids[row, 0], ids[row, 1 : n - 1], ids[row, n - 1] = CLS, words[row, : n - 2], SEP
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    return ids, mask


def run(ids, mask, seed, **options):
    options = {"mask_token_id": MASK, "vocab_size": VOCAB, "special_ids": SPECIALS, **options}
    return mask_tokens(ids, mask, np.random.default_rng(seed), **options)


# ------------------------------------------------------------------------------ exact
@pytest.mark.parametrize("seed", range(5))
def test_exact_rules_on_seeded_batches(seed):
    ids, mask = make_batch(seed)
    before = ids.copy()
    out = run(ids, mask, seed)
    np.testing.assert_array_equal(ids, before)  # the input is not modified
    targets = out.labels != IGNORE_INDEX
    assert targets.sum() == math.ceil(0.15 * mask.sum())  # an exact count, not coin flips
    np.testing.assert_array_equal(out.labels[targets], ids[targets])  # labels are the originals
    assert not np.isin(ids[targets], SPECIALS).any() and mask[targets].all()  # never special or padding
    np.testing.assert_array_equal(out.input_ids[~targets], ids[~targets])  # nothing else moves
    # the same seed gives the same batch; another seed another
    again = run(ids, mask, seed)
    np.testing.assert_array_equal(again.input_ids, out.input_ids)
    np.testing.assert_array_equal(again.labels, out.labels)
    assert not np.array_equal(run(ids, mask, seed + 100).labels, out.labels)


def test_split_extremes_are_exact():
    ids, mask = make_batch(1)
    all_mask = run(ids, mask, 0, word_mask=1.0, word_keep=0.0, word_rand=0.0)
    targets = all_mask.labels != IGNORE_INDEX
    assert (all_mask.input_ids[targets] == MASK).all()
    all_keep = run(ids, mask, 0, word_mask=0.0, word_keep=1.0, word_rand=0.0)
    np.testing.assert_array_equal(all_keep.input_ids, ids)
    np.testing.assert_array_equal(all_keep.labels != IGNORE_INDEX, targets)  # the same draw of targets


def test_mask_prop_one_takes_every_eligible_token_and_zero_none():
    ids, mask = make_batch(2)
    eligible = mask.astype(bool) & ~np.isin(ids, SPECIALS)
    everything = run(ids, mask, 0, mask_prop=1.0)
    np.testing.assert_array_equal(everything.labels != IGNORE_INDEX, eligible)  # capped at the eligible
    nothing = run(ids, mask, 0, mask_prop=0.0)
    assert (nothing.labels == IGNORE_INDEX).all()
    np.testing.assert_array_equal(nothing.input_ids, ids)


def test_zero_weight_tokens_are_never_chosen():
    ids, mask = make_batch(3, batch=32)
    counts = np.ones(VOCAB)
    weights = smoothed_token_weights(counts, SPECIALS)
    assert (weights[list(SPECIALS)] == 0).all() and weights[500] == 1.0
    banned = np.unique(ids[(ids >= 104)])[::2]  # half the words present
    weights[banned] = 0.0
    for seed in range(10):
        out = run(ids, mask, seed, token_weights=weights)
        chosen = ids[out.labels != IGNORE_INDEX]
        assert chosen.size == math.ceil(0.15 * mask.sum()) and not np.isin(chosen, banned).any()


def test_smoothing_prefers_rare_tokens():
    weights = smoothed_token_weights([1000, 10, 0], [], 0.7)
    assert weights[1] > weights[0]
    np.testing.assert_allclose(weights, [1000**-0.7, 10**-0.7, 1.0])  # a count of 0 counts as 1


# ------------------------------------------------------------------------- statistics
def _within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_80_10_10_split_and_uniform_positions():
    kinds = np.zeros(3, dtype=np.int64)
    chosen_per_position = np.zeros(40)
    eligible_per_position = np.zeros(40)
    random_ids = []
    for seed in range(200):
        ids, mask = make_batch(seed)
        out = run(ids, mask, seed)
        targets = out.labels != IGNORE_INDEX
        new = out.input_ids[targets]
        old = ids[targets]
        is_mask = new == MASK
        is_kept = new == old
        is_random = ~is_mask & ~is_kept  # a random draw equal to the original counts as kept
        kinds += [is_mask.sum(), is_kept.sum(), is_random.sum()]
        random_ids.append(new[is_random])
        chosen_per_position += targets.sum(axis=0)
        eligible_per_position += (mask.astype(bool) & ~np.isin(ids, SPECIALS)).sum(axis=0)
    n = int(kinds.sum())
    # a random id equals the original (or [MASK]) with probability 2/VOCAB: folded into the bounds
    assert _within(kinds[0], n, 0.8 + 0.1 / VOCAB), kinds
    assert _within(kinds[1], n, 0.1 + 0.1 / VOCAB), kinds
    assert _within(kinds[2], n, 0.1 - 0.2 / VOCAB), kinds
    # random replacements are uniform over the vocabulary: mean and spread of a discrete uniform
    drawn = np.concatenate(random_ids)
    mean, std = (VOCAB - 1) / 2, math.sqrt((VOCAB**2 - 1) / 12)
    assert abs(drawn.mean() - mean) <= 5 * std / math.sqrt(drawn.size)
    assert (drawn >= 0).all() and (drawn < VOCAB).all()
    # every eligible position is equally likely: the chosen share per position is the same
    share = chosen_per_position.sum() / eligible_per_position.sum()
    for chosen, eligible in zip(chosen_per_position, eligible_per_position, strict=True):
        if eligible >= 200:
            assert _within(int(chosen), int(eligible), share, sigmas=5.5)


# ------------------------------------------------------------------------------ hostile
@pytest.mark.parametrize(
    "options, message",
    [
        (dict(word_mask=0.8, word_keep=0.1, word_rand=0.2), "must be 1"),
        (dict(mask_prop=1.5), "mask_prop must be a probability"),
        (dict(mask_token_id=VOCAB), "outside the vocabulary"),
        (dict(vocab_size=500), "outside the vocabulary"),
        (dict(token_weights=np.ones(3)), "token_weights must be"),
        (dict(token_weights=-np.ones(VOCAB)), "token_weights must be"),
    ],
)
def test_bad_arguments_are_refused(options, message):
    ids, mask = make_batch(0, batch=2)
    with pytest.raises(ValueError, match=message):
        run(ids, mask, 0, **options)


def test_shape_mismatch_is_refused():
    ids, mask = make_batch(0, batch=2)
    with pytest.raises(ValueError, match=r"both be \[B, L\]"):
        run(ids, mask[:, :-1], 0)
