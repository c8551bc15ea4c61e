"""`WordPieceTokenizer.pad`: padding inputs that were encoded earlier, as transformers' ``pad``.

The input is one encoded text (a dict of flat lists), a batch (a dict of lists of rows) or a
list of such dicts; numpy arrays are read as lists. ``input_ids`` get the pad id,
``attention_mask`` 0, ``token_type_ids`` 0 and ``special_tokens_mask`` 1, on the padding
side; other keys are left as they are (transformers does not pad ``offset_mapping`` either).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .checks import is_int
from .postprocess import Settings, round_up

# What each padded column gets in the padding positions.
PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "special_tokens_mask": 1}


def _as_list(value: Any) -> Any:
    """numpy arrays (anything with ``tolist``) as nested lists; lists as they are."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_as_list(v) for v in value]
    return value


def padding_input(encoded_inputs: Any) -> tuple[dict[str, Any], bool]:
    """(columns as lists, whether numpy arrays were given)."""
    if (
        isinstance(encoded_inputs, (list, tuple))
        and encoded_inputs
        and isinstance(encoded_inputs[0], Mapping)
    ):
        keys = list(encoded_inputs[0])
        for i, example in enumerate(encoded_inputs):
            if not isinstance(example, Mapping) or list(example) != keys:
                raise ValueError(
                    f"pad: encoded_inputs[{i}] must be a dict with the keys of the first ({keys})"
                )
        encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in keys}
    if not isinstance(encoded_inputs, Mapping):
        raise TypeError(
            f"pad: expected a dict of encoded inputs or a list of them, got {type(encoded_inputs).__name__}"
        )
    if "input_ids" not in encoded_inputs:
        raise ValueError(f"pad: encoded_inputs must include 'input_ids', got the keys {list(encoded_inputs)}")
    ids = encoded_inputs["input_ids"]
    was_numpy = hasattr(ids, "tolist") or (
        isinstance(ids, Sequence) and len(ids) > 0 and hasattr(ids[0], "tolist")
    )
    return {key: _as_list(value) for key, value in encoded_inputs.items()}, was_numpy


def pad_columns(
    data: dict[str, Any], settings: Settings, pad_id: int, make_attention_mask: bool
) -> dict[str, Any]:
    """The columns of `data` padded to the target `settings` give (one input or a batch)."""
    ids = data["input_ids"]
    single = len(ids) == 0 or is_int(ids[0])
    batch = {key: [value] if single else value for key, value in data.items()}
    rows = _checked_rows(batch)
    if make_attention_mask and "attention_mask" not in batch:
        batch["attention_mask"] = [[1] * len(row) for row in rows]
    target = _target(rows, settings)
    if target is not None:
        for key, fill in (("input_ids", pad_id), *PAD_VALUES.items()):
            if key in batch:
                batch[key] = [_pad(r, target - len(ids_row), fill, settings.padding_side)
                              for r, ids_row in zip(batch[key], rows, strict=True)]  # fmt: skip
    return {key: value[0] if single else value for key, value in batch.items()}


def _checked_rows(batch: dict[str, Any]) -> list[list[int]]:
    """The input_ids rows, after checking that every column has one row per row."""
    rows = batch["input_ids"]
    for key, value in batch.items():
        if not isinstance(value, list) or len(value) != len(rows):
            raise ValueError(f"pad: {key!r} has not one row per row of 'input_ids' ({len(rows)})")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or not all(is_int(t) for t in row):
            raise TypeError(f"pad: input_ids row {i} must be a list of int")
    return rows


def _target(rows: list[list[int]], settings: Settings) -> int | None:
    """The padded length (None: no padding)."""
    if settings.padding is None or not rows:
        return None
    if settings.padding == "max_length" and settings.max_length is not None:
        target = settings.max_length
    else:
        target = max(len(row) for row in rows)
    return round_up(target, settings.pad_to_multiple_of)


def _pad(row: list[Any], k: int, fill: Any, side: str) -> list[Any]:
    if k <= 0:
        return row
    return [fill] * k + row if side == "left" else row + [fill] * k
