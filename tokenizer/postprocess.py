"""After text -> ids: truncation (with `stride` overflow windows), ``[CLS] A [SEP] (B [SEP])``,
and padding, as `tokenizers` does them.

Each call of the tokenizer is first reduced to `Settings` (transformers' rules for combining
`padding`, `truncation` and `max_length`: `resolve_settings`). Then, for each input:
`kept_lengths` says how many tokens of the text and of the pair the main row keeps,
`row_combinations` cuts them into windows and pairs the windows up, `build_row` adds the special
tokens, and `pad_rows` makes every row the same length.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from .checks import LARGE_INTEGER, check_index, check_side
from .encoder import TokenSeq

T = TypeVar("T")

_PADDING = {False: None, "do_not_pad": None, True: "longest", "longest": "longest",
            "max_length": "max_length"}  # fmt: skip
_TRUNCATION = {None: None, False: None, "do_not_truncate": None, True: "longest_first",
               "longest_first": "longest_first", "only_first": "only_first",
               "only_second": "only_second"}  # fmt: skip


class Settings(NamedTuple):
    """What one call asks for, after transformers' rules (`resolve_settings`). (A NamedTuple:
    one is built per call, and a frozen dataclass costs a microsecond more.)"""

    add_special_tokens: bool
    padding: str | None  # None, "longest" or "max_length"
    truncation: str | None  # None, "longest_first", "only_first" or "only_second"
    max_length: int | None
    stride: int
    overflow: bool  # return_overflowing_tokens
    pad_to_multiple_of: int | None = None
    padding_side: str = "right"
    truncation_side: str = "right"

    def n_special(self, has_pair: bool) -> int:
        """How many special tokens a row gets: [CLS] A [SEP] (B [SEP])."""
        if not self.add_special_tokens:
            return 0
        return 3 if has_pair else 2


class SpecialIds(NamedTuple):
    cls: int
    sep: int
    pad: int
    pad_token: str


@dataclass(slots=True)
class Row:
    """One output row (what the model sees). The per-token detail for the Encoding's
    accessors (offsets, word ids, sequence ids, tokens) is None unless it was asked for."""

    ids: list[int]
    type_ids: list[int]
    special: list[int]
    attention: list[int]
    offsets: list[tuple[int, int]] | None = None
    words: list[int | None] | None = None
    seq_ids: list[int | None] | None = None
    tokens: list[str] | None = None


def resolve_settings(
    padding: Any,
    truncation: Any,
    max_length: Any,
    stride: Any,
    *,
    add_special_tokens: bool,
    overflow: bool,
    model_max_length: int,
    pad_to_multiple_of: Any = None,
    padding_side: str = "right",
    truncation_side: str = "right",
) -> Settings:
    """transformers' rules: `max_length` alone turns truncation on; without `max_length`,
    padding to "max_length" and truncation use `model_max_length` (and are off when the
    model has no limit)."""
    if max_length is not None:
        max_length = check_index("max_length", max_length, 0)
    if max_length is not None and padding is False and truncation is None:
        truncation = "longest_first"
    pad, trunc = _padding_strategy(padding), _truncation_strategy(truncation)
    if max_length is None:
        unlimited = model_max_length > LARGE_INTEGER
        if pad == "max_length":
            pad, max_length = (None, None) if unlimited else (pad, model_max_length)
        if trunc is not None:
            trunc, max_length = (None, max_length) if unlimited else (trunc, model_max_length)
    stride = _check_stride_fits(check_index("stride", stride, 0), trunc, max_length)
    if pad_to_multiple_of is not None:
        pad_to_multiple_of = check_index("pad_to_multiple_of", pad_to_multiple_of, 1)
        _check_multiple_fits(pad_to_multiple_of, pad, trunc, max_length)
    padding_side = check_side("padding_side", padding_side)
    truncation_side = check_side("truncation_side", truncation_side)
    return Settings(add_special_tokens, pad, trunc, max_length, stride, overflow, pad_to_multiple_of,
                    padding_side, truncation_side)  # fmt: skip


def _check_stride_fits(stride: int, trunc: str | None, max_length: int | None) -> int:
    """A stride must leave each overflow window at least one new token of a single text."""
    if trunc is not None and max_length is not None and max_length >= 2 and stride >= max_length - 1:
        raise ValueError(
            f"stride ({stride}) must be smaller than max_length ({max_length}) minus the "
            f"special tokens of a single text (2), i.e. at most {max_length - 2}"
        )
    return stride


def _check_multiple_fits(multiple: int, pad: str | None, trunc: str | None, max_length: int | None) -> None:
    """transformers refuses a truncation length that padding to the multiple would exceed."""
    if pad and trunc and max_length is not None and max_length % multiple:
        raise ValueError(
            f"truncation and padding are both on, but max_length ({max_length}) is not a "
            f"multiple of pad_to_multiple_of ({multiple})"
        )


def _padding_strategy(padding: Any) -> str | None:
    try:
        return _PADDING[padding]
    except (KeyError, TypeError):
        raise ValueError(f"padding must be False, True, 'longest' or 'max_length', got {padding!r}") from None


def _truncation_strategy(truncation: Any) -> str | None:
    try:
        return _TRUNCATION[truncation]
    except (KeyError, TypeError):
        raise ValueError(
            "truncation must be False, True, 'longest_first', 'only_first' or 'only_second', "
            f"got {truncation!r}"
        ) from None


# -- truncation -----------------------------------------------------------------------------


def kept_lengths(a: TokenSeq, b: TokenSeq | None, settings: Settings) -> tuple[int | None, int | None]:
    """How many tokens of the text and of the pair the main row keeps (None: all of them).

    Mirrors `tokenizers`: the budget is max_length minus the special tokens; if that is
    negative nothing is truncated, if it is 0 both sequences are cut to nothing.
    """
    strategy, max_length = settings.truncation, settings.max_length
    if strategy is None or max_length is None:
        return None, None
    budget = max_length - settings.n_special(b is not None)
    if budget < 0:
        return None, None
    if budget == 0:
        return 0, (0 if b is not None else None)
    a_len, b_len = len(a.ids), len(b.ids) if b is not None else 0
    if a_len + b_len <= budget:
        return None, None
    if strategy == "longest_first":
        return (budget, None) if b is None else longest_first(a_len, b_len, budget)
    if strategy == "only_second" and b is None:
        raise ValueError("truncation='only_second' needs a text_pair")
    target_len = a_len if strategy == "only_first" else b_len
    to_remove = a_len + b_len - budget
    if target_len <= to_remove:
        raise ValueError(
            f"truncation={strategy!r} cannot fit max_length={max_length}: the sequence to "
            f"truncate has {target_len} tokens but {to_remove} must go"
        )
    keep = target_len - to_remove
    return (keep, None) if strategy == "only_first" else (None, keep)


def longest_first(n1: int, n2: int, budget: int) -> tuple[int, int]:
    """Lengths to keep of two sequences: cut the longer one first, then both evenly."""
    swap = n1 > n2
    if swap:
        n1, n2 = n2, n1
    n2 = n1 if n1 > budget else max(n1, budget - n1)
    if n1 + n2 > budget:
        n1 = budget // 2
        n2 = n1 + budget % 2
    return (n2, n1) if swap else (n1, n2)


def check_stride(n: int, stride: int) -> None:
    if stride >= n:
        raise ValueError(
            f"stride ({stride}) must be smaller than the tokens left for the text after "
            f"truncation and special tokens ({n})"
        )


def first_window(seq: TokenSeq, n: int | None, stride: int, side: str) -> TokenSeq:
    """`seq` cut to its first `n` tokens (the last ones when `side` is "left"; None: uncut),
    i.e. ``windows(seq, n, stride, side)[0]``."""
    length = len(seq.ids)
    if n is None or n >= length:
        return seq
    if n > 0:
        check_stride(n, stride)  # tokenizers refuses it even when the overflow is not returned
    return seq.window(length - n, length) if side == "left" else seq.window(0, n)


def longest_window(seq: TokenSeq | None, n: int | None) -> int:
    """The length of the longest of `windows(seq, n, ...)` (0 for no sequence)."""
    if seq is None:
        return 0
    length = len(seq.ids)
    return length if n is None or n == 0 else min(n, length)


def window_count(length: int, n: int | None, stride: int) -> int:
    """``len(windows(seq, n, stride))`` for a sequence of `length` tokens, without building them."""
    if n is None or n >= length:
        return 1
    if n == 0:
        return 2
    check_stride(n, stride)
    return 1 + -(-(length - n) // (n - stride))


def windows(seq: TokenSeq, n: int | None, stride: int, side: str = "right") -> list[TokenSeq]:
    """`seq` cut to its first `n` tokens, followed by the overflow windows: each of at most
    `n` tokens, starting `n - stride` tokens after the previous one. With `side` "left" the
    same from the end: the last `n` tokens, then windows ending `n - stride` tokens earlier."""
    length = len(seq.ids)
    if n is None or n >= length:
        return [seq]
    if n == 0:
        return [seq.window(0, 0), seq]
    check_stride(n, stride)
    spans = _window_spans(length, n, n - stride)
    if side == "left":  # the mirror image: span (a, b) from the start is (L - b, L - a)
        spans = [(length - stop, length - start) for start, stop in spans]
    return [seq.window(start, stop) for start, stop in spans]


def _window_spans(length: int, n: int, step: int) -> list[tuple[int, int]]:
    """(start, stop) of windows of at most `n` of `length` tokens, `step` apart, the last one
    ending at `length`."""
    spans, start = [], 0
    while True:
        stop = min(start + n, length)
        spans.append((start, stop))
        if stop == length:
            return spans
        start += step


def row_combinations(
    a: TokenSeq,
    b: TokenSeq | None,
    settings: Settings,
    index: int,
    max_overflow_tokens: int,
) -> list[tuple[TokenSeq, TokenSeq | None]]:
    """The (text, pair) windows of the output rows of input `index`, main one first.

    Mirrors `tokenizers`: each truncated sequence becomes windows (the first is kept, the
    rest overflow); rows are then: (A0, B0), every A overflow with every B window, and
    finally A0 with every B overflow - ``windows(A) * windows(B)`` rows, which is why the
    count is checked against `max_overflow_tokens` before any row is built. Without
    overflow only the main row is built.
    """
    if settings.truncation is None and not settings.overflow:
        return [(a, b)]  # nothing to cut: the common case, decided without a call
    keep_a, keep_b = kept_lengths(a, b, settings)
    stride, side = settings.stride, settings.truncation_side
    if not settings.overflow:
        b_kept = None if b is None else first_window(b, keep_b, stride, side)
        return [(first_window(a, keep_a, stride, side), b_kept)]
    n_a = window_count(len(a.ids), keep_a, stride)
    n_b = window_count(len(b.ids), keep_b, stride) if b is not None else 1
    if n_a * n_b > 1:
        # The longest row: kept lengths, or whole sequences when the budget is 0 (their
        # overflow "window" is the whole sequence).
        row_len = longest_window(a, keep_a) + longest_window(b, keep_b) + settings.n_special(b is not None)
        check_overflow_size(index, n_a, n_b, row_len, settings, max_overflow_tokens)
    a_wins = windows(a, keep_a, stride, side)
    b_wins: list[TokenSeq | None] = [None] if b is None else list(windows(b, keep_b, stride, side))
    combos = [(a_wins[0], b_wins[0])]
    combos += [(x, y) for x in a_wins[1:] for y in b_wins]
    combos += [(a_wins[0], y) for y in b_wins[1:]]
    return combos


def check_overflow_size(
    index: int,
    n_a: int,
    n_b: int,
    row_len: int,
    settings: Settings,
    max_overflow_tokens: int,
) -> None:
    """Refuse an overflow that would build more than `max_overflow_tokens` tokens for one
    input: a pair truncated on both sides gives ``n_a * n_b`` rows (2,000 tokens each with
    max_length=5 would be 4,000,000 rows)."""
    rows = n_a * n_b
    if rows * row_len <= max_overflow_tokens:
        return
    pair = f" x {n_b:,} windows of the pair" if n_b > 1 else ""
    raise ValueError(
        f"input {index}: return_overflowing_tokens with truncation={settings.truncation!r}, "
        f"max_length={settings.max_length}, stride={settings.stride} would build {rows:,} rows "
        f"({n_a:,} windows of the text{pair}, as transformers does), about {rows * row_len:,} "
        f"tokens, over the limit of {max_overflow_tokens:,} (max_overflow_tokens). Use "
        "truncation='only_first' or 'only_second', a larger max_length or a smaller stride."
    )


# -- special tokens and padding -----------------------------------------------------------


def build_row(
    a: TokenSeq,
    b: TokenSeq | None,
    add_special_tokens: bool,
    specials: SpecialIds,
    ids_to_tokens: Mapping[int, str] | None,
) -> Row:
    """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` with type ids and masks; with
    `ids_to_tokens` (detail asked for) also offsets, word ids, sequence ids and tokens."""
    na, nb = len(a.ids), (len(b.ids) if b is not None else 0)
    if add_special_tokens:
        ids = [specials.cls, *a.ids, specials.sep]
        type_ids = [0] * (na + 2)
        special = [1, *([0] * na), 1]
        if b is not None:
            ids += [*b.ids, specials.sep]
            type_ids += [1] * (nb + 1)
            special += [*([0] * nb), 1]
    else:
        ids = a.ids + (b.ids if b is not None else [])
        type_ids = [0] * na + [1] * nb
        special = [0] * (na + nb)
    row = Row(ids, type_ids, special, [1] * len(ids))
    if ids_to_tokens is not None:
        _add_detail(row, a, b, add_special_tokens, ids_to_tokens)
    return row


def _add_detail(
    row: Row,
    a: TokenSeq,
    b: TokenSeq | None,
    add_special_tokens: bool,
    ids_to_tokens: Mapping[int, str],
) -> None:
    """Per-token offsets, word ids, sequence ids and tokens; special tokens get (0, 0)/None."""
    z: list[tuple[int, int]] = [(0, 0)] if add_special_tokens else []
    none: list[int | None] = [None] if add_special_tokens else []
    row.offsets = z + a.offsets + z
    row.words = none + list(a.words) + none
    row.seq_ids = none + [0] * len(a.ids) + none
    if b is not None:
        row.offsets += b.offsets + z
        row.words += list(b.words) + none
        row.seq_ids += [1] * len(b.ids) + none
    row.tokens = [ids_to_tokens[i] for i in row.ids]


def padding_target(groups: list[list[Row]], settings: Settings) -> int:
    """The length every row is padded to.

    transformers pads to the longest *main* row (or max_length) and leaves longer rows
    ragged; rows can only be longer when max_length leaves no room for the text (it is at
    most the number of special tokens), and there we pad to the longest row instead.
    """
    longest = max((len(row.ids) for g in groups for row in g), default=0)  # 0: an empty batch
    if settings.padding == "max_length" and settings.max_length is not None:
        target = settings.max_length
    else:
        target = longest
    # pad_to_multiple_of rounds transformers' target; longer rows are padded to the longest
    # (not rounded: transformers leaves them as they are)
    return max(round_up(target, settings.pad_to_multiple_of), longest)


def round_up(length: int, multiple: int | None) -> int:
    """`length` rounded up to a multiple of `multiple` (pad_to_multiple_of; None: as is)."""
    if multiple is None:
        return length
    return -(-length // multiple) * multiple


def pad_row(row: Row, target: int, specials: SpecialIds, side: str = "right") -> None:
    """Pad `row` up to `target` tokens, after its tokens (or before them, `side` "left")."""
    k = target - len(row.ids)
    if k <= 0:
        return
    row.ids = _padded(row.ids, [specials.pad] * k, side)
    row.type_ids = _padded(row.type_ids, [0] * k, side)
    row.attention = _padded(row.attention, [0] * k, side)
    row.special = _padded(row.special, [1] * k, side)
    if row.offsets is not None:  # with detail: all four are there
        assert row.words is not None and row.seq_ids is not None and row.tokens is not None
        row.offsets = _padded(row.offsets, [(0, 0)] * k, side)
        row.words = _padded(row.words, [None] * k, side)
        row.seq_ids = _padded(row.seq_ids, [None] * k, side)
        row.tokens = _padded(row.tokens, [specials.pad_token] * k, side)


def _padded(values: list[T], padding: list[T], side: str) -> list[T]:
    return padding + values if side == "left" else values + padding
