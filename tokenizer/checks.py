"""The argument rules shared by the constructor, the config readers and `__call__`.

Each rule is one function that returns the checked value or raises an error naming the
argument (and, for a config file, the file: `where`). Integers are Python or numpy integers
(anything with ``__index__``), never bools, floats or strings.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from typing import Any

# transformers' stand-in for "no limit" (model_max_length when the config gives none).
VERY_LARGE_INTEGER = int(1e30)
# Above this, model_max_length means "no limit" (transformers' own threshold).
LARGE_INTEGER = int(1e20)


def is_int(x: Any) -> bool:
    """A Python or numpy integer (anything with ``__index__``), but not a bool."""
    if isinstance(x, bool) or type(x).__name__ in ("bool", "bool_"):
        return False
    try:
        operator.index(x)
    except TypeError:
        return False
    return True


def check_index(name: str, value: Any, minimum: int, where: str = "") -> int:
    """`value` as a Python int >= `minimum`; Python and numpy integers only (no bool, float, str)."""
    if not is_int(value) or operator.index(value) < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{where}{name} must be {what}, got {value!r}")
    return operator.index(value)


def check_bool(name: str, value: Any, what: str = "a bool", where: str = "") -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{where}{name} must be {what}, got {type(value).__name__} {value!r}")


def check_side(name: str, value: Any, where: str = "") -> str:
    """``"left"`` or ``"right"`` (padding_side, truncation_side)."""
    if value not in ("left", "right") or not isinstance(value, str):
        raise ValueError(f"{where}{name} must be 'left' or 'right', got {value!r}")
    return value


def check_model_max_length(value: Any, where: str = "") -> int:
    """None (no limit) or a non-negative integer. A float is accepted when it is a whole number
    (configs written by other tools say ``1e+30``); infinity means no limit. A negative value
    would silently turn truncation off, so it is refused, as are NaN, strings and bools."""
    if value is None:
        return VERY_LARGE_INTEGER
    if isinstance(value, float) and value == math.inf:
        return VERY_LARGE_INTEGER
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if is_int(value) and operator.index(value) >= 0:
        return operator.index(value)
    raise ValueError(f"{where}model_max_length must be a non-negative int or None, got {value!r}")


def check_never_split(value: Any, where: str = "") -> tuple[str, ...]:
    """A list of words, each non-empty and without whitespace (they are matched as whole
    whitespace-delimited chunks). A bare string is refused: transformers' legacy tokenizer
    would take ``"ab"`` as the two words ``a`` and ``b``, which is never what was meant."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{where}never_split must be a list of words, got the {type(value).__name__} {value!r} "
            f"(write [{value!r}] for one word)"
        )
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{where}never_split must be a list of words, got {type(value).__name__}")
    words = tuple(value)
    for word in words:
        if not isinstance(word, str):
            raise TypeError(f"{where}never_split entries must be str, got {type(word).__name__} {word!r}")
        if word == "" or any(ch.isspace() for ch in word):
            raise ValueError(
                f"{where}never_split entries must be non-empty words without whitespace, got {word!r}"
            )
    return words
