"""The central difference every gradient test without torch relies on (float64)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numpy_distilbert.tolerances import FD_STEP


def central_difference(
    scalar: Callable[[], float], array: np.ndarray, index: Any, step: float = FD_STEP
) -> float:
    """(scalar() with array[index] + step − with array[index] − step) / 2·step; array[index] is
    perturbed in place and restored, so `scalar` reads the live array."""
    saved = array[index]
    array[index] = saved + step
    plus = scalar()
    array[index] = saved - step
    minus = scalar()
    array[index] = saved
    return (plus - minus) / (2 * step)
