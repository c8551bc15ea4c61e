"""Dropout as torch applies it in training: each element kept with probability 1 - p and
then scaled by 1/(1 - p) ("inverted" dropout), so that its expected value is unchanged and
inference needs no rescaling.

A mask here is the array of factors itself, 0 or 1/(1 - p), in the activations' dtype:
the forward multiplies by it and the backward multiplies the gradient by the same array
(y = x·m gives d_x = d_y·m). None means "no dropout" (eval mode, or p = 0) and costs nothing.

This module is a leaf: it imports nothing of the project.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def dropout_mask(
    rng: np.random.Generator | None, shape: tuple[int, ...], p: float, dtype: np.dtype
) -> np.ndarray | None:
    """Factors 0 (probability p) or 1/(1 - p), of `shape`; None without a generator or when p = 0.

    p = 1 drops everything (factors all 0), as torch does.
    """
    if rng is None or p == 0.0:
        return None
    if p >= 1.0:
        return np.zeros(shape, dtype=dtype)
    keep = rng.random(shape) >= p  # [shape] bool, True with probability 1 - p
    return keep * np.asarray(1.0 / (1.0 - p), dtype=dtype)


def apply_dropout(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """x·mask, or x itself when mask is None."""
    return x if mask is None else x * mask


def dropout_rate(config_extra: dict[str, Any], key: str, default: float) -> float:
    """A dropout probability read from config.json's `key` (default when absent or null),
    refused unless it is a number in [0, 1]."""
    value = config_extra.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"config field {key!r} must be a probability in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"config field {key!r} must be a probability in [0, 1], got {value!r}")
    return float(value)


__all__ = ["apply_dropout", "dropout_mask", "dropout_rate"]
