"""Argument rules shared by the pipelines, the CLI and the loaders: one spelling of each.

A leaf module: it imports nothing of the project (and not numpy), so that the CLI can
use it while `--help` stays light.
"""

from __future__ import annotations

import operator
from typing import Any


def _integer_wanted(minimum: int | None) -> str:
    if minimum == 1:
        return "a positive integer"
    if minimum == 0:
        return "a non-negative integer"
    return "an integer" if minimum is None else f"an integer >= {minimum}"


def as_int(value: Any, name: str, minimum: int | None = None, error: type[Exception] = ValueError) -> int:
    """`value` as a Python int, or `error` naming `name` and the value.

    Accepts int and anything that is an integer by `operator.index` (numpy.int64, ...);
    refuses bool (True is not a count of 1) and numpy.bool_, floats (3.0 included) and
    strings. With `minimum`, smaller values are refused too.
    """
    wanted = _integer_wanted(minimum)
    if isinstance(value, bool) or _is_numpy_bool(value):
        raise error(f"{name} must be {wanted}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise error(f"{name} must be {wanted}, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise error(f"{name} must be {wanted}, got {number}")
    return number


def _is_numpy_bool(value: Any) -> bool:
    """numpy.bool_ (numpy 1.x still lets operator.index turn it into 0 or 1), without importing numpy."""
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ in ("bool_", "bool")


def comma_list(text: str) -> list[str]:
    """ "a, b,,c " -> ["a", "b", "c"]: items stripped, empty ones dropped ("" gives [])."""
    return [item.strip() for item in text.split(",") if item.strip()]
