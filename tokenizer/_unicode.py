"""Character rules of BERT's basic tokenizer, in two flavours.

BERT's pre-processing sorts every character into one of five classes:

* **removed**   - control/format characters, NUL and U+FFFD, dropped by text cleaning;
* **whitespace** - split points that are themselves discarded;
* **chinese**   - CJK ideographs, each made a word of its own;
* **punctuation** - each made a word of its own;
* **word**      - everything else; runs of these form words for WordPiece.

The rules come from google-research/bert's ``tokenization.py``. Two implementations of them
exist in transformers and they do *not* agree on every code point:

``"rust"``    the ``tokenizers`` crate's ``BertNormalizer`` + ``BertPreTokenizer`` (what
              transformers 5.x's default ``BertTokenizer`` runs). Its control and punctuation
              tests use the ``unicode_categories`` crate, whose tables are from Unicode 8.0;
              its whitespace test is Rust's ``char::is_whitespace`` (the White_Space property);
              its CJK table skips U+2B820-U+2B91F.
``"python"``  ``BertTokenizerLegacy``: ``unicodedata`` of the running Python (3.11 -> Unicode
              14.0), where *unassigned* code points count as control characters (category Cn)
              and are removed.

We derive both flavours from ``unicodedata`` and express the Rust one as a few small, named
exception sets (code points whose category changed between Unicode 8.0 and 14.0). They were
found by probing the installed ``tokenizers`` on every code point (``_make_tables.py`` does
that and prints them) and the exhaustive test in ``tests/test_tokenizer_exhaustive.py``
re-checks every code point against transformers, so a drift (say a newer Python with a newer
``unicodedata``) fails loudly instead of silently changing tokens.
"""

from __future__ import annotations

import functools
import re
import unicodedata

MAX_CODE_POINT = 0x10FFFF

# --- exception tables (Rust flavour) -----------------------------------------------------
# Format characters (Cf) added after Unicode 8.0: Rust's table does not know them, so it
# keeps them as ordinary word characters, while unicodedata says Cf and BERT would drop them.
RUST_KEPT_FORMAT: frozenset[int] = frozenset(
    [0x0890, 0x0891, 0x08E2, 0x110CD, *range(0x13430, 0x13439)]
)

# Punctuation (P*) added after Unicode 8.0: not punctuation for Rust, so not split off.
RUST_NOT_PUNCTUATION: frozenset[int] = frozenset(
    [
        0x061D, 0x09FD, 0x0A76, 0x0C77, 0x0C84, 0x1B7D, 0x1B7E,
        *range(0x2E43, 0x2E50), *range(0x2E52, 0x2E5E),
        0x10EAD, *range(0x10F55, 0x10F5A), *range(0x10F86, 0x10F8A),
        *range(0x1144B, 0x11450), 0x1145A, 0x1145B, 0x1145D,
        *range(0x11660, 0x1166D), 0x116B9, 0x1183B, *range(0x11944, 0x11947), 0x119E2,
        *range(0x11A3F, 0x11A47), *range(0x11A9A, 0x11A9D), *range(0x11A9E, 0x11AA3),
        *range(0x11C41, 0x11C46), 0x11C70, 0x11C71, 0x11EF7, 0x11EF8, 0x11FFF,
        0x12FF1, 0x12FF2, *range(0x16E97, 0x16E9B), 0x16FE2, 0x1E95E, 0x1E95F,
    ]
)  # fmt: skip

# Punctuation in Unicode 8.0 whose category changed later (U+166D became So, U+111C9 Mn).
RUST_EXTRA_PUNCTUATION: frozenset[int] = frozenset([0x166D, 0x111C9])

# Nonspacing marks (Mn) added after Unicode 8.0: accent stripping keeps them in Rust.
RUST_NOT_NONSPACING_MARK: frozenset[int] = frozenset(
    [
        0x07FD, *range(0x0898, 0x08A0), *range(0x08CA, 0x08E2), 0x09FE, *range(0x0AFA, 0x0B00),
        0x0B55, 0x0C04, 0x0C3C, 0x0D00, *range(0x0D3B, 0x0D3D), 0x0D81, 0x0EBA, 0x180F,
        *range(0x1885, 0x1887), *range(0x1ABF, 0x1ACF), *range(0x1DF6, 0x1DFC), 0xA82C, 0xA8C5,
        0xA8FF, 0xA9BD, *range(0x10D24, 0x10D28), *range(0x10EAB, 0x10EAD),
        *range(0x10F46, 0x10F51), *range(0x10F82, 0x10F86), 0x11070, *range(0x11073, 0x11075),
        0x110C2, 0x111C9, 0x111CF, 0x1123E, 0x1133B, *range(0x11438, 0x11440),
        *range(0x11442, 0x11445), 0x11446, 0x1145E, *range(0x1182F, 0x11838),
        *range(0x11839, 0x1183B), *range(0x1193B, 0x1193D), 0x1193E, 0x11943,
        *range(0x119D4, 0x119D8), *range(0x119DA, 0x119DC), 0x119E0, *range(0x11A01, 0x11A0B),
        *range(0x11A33, 0x11A39), *range(0x11A3B, 0x11A3F), 0x11A47, *range(0x11A51, 0x11A57),
        *range(0x11A59, 0x11A5C), *range(0x11A8A, 0x11A97), *range(0x11A98, 0x11A9A),
        *range(0x11C30, 0x11C37), *range(0x11C38, 0x11C3E), 0x11C3F, *range(0x11C92, 0x11CA8),
        *range(0x11CAA, 0x11CB1), *range(0x11CB2, 0x11CB4), *range(0x11CB5, 0x11CB7),
        *range(0x11D31, 0x11D37), 0x11D3A, *range(0x11D3C, 0x11D3E), *range(0x11D3F, 0x11D46),
        0x11D47, *range(0x11D90, 0x11D92), 0x11D95, 0x11D97, *range(0x11EF3, 0x11EF5), 0x16F4F,
        0x16FE4, *range(0x1CF00, 0x1CF2E), *range(0x1CF30, 0x1CF47), *range(0x1E000, 0x1E007),
        *range(0x1E008, 0x1E019), *range(0x1E01B, 0x1E022), *range(0x1E023, 0x1E025),
        *range(0x1E026, 0x1E02B), *range(0x1E130, 0x1E137), 0x1E2AE, *range(0x1E2EC, 0x1E2F0),
        *range(0x1E944, 0x1E94B),
    ]
)  # fmt: skip
# ...and one Unicode 8.0 nonspacing mark that later became spacing (Mc): Rust strips it.
RUST_EXTRA_NONSPACING_MARK: frozenset[int] = frozenset([0x1734])

# Rust's char::is_whitespace is the Unicode White_Space property (stable since Unicode 6).
WHITE_SPACE: frozenset[int] = frozenset(
    [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
     0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
)  # fmt: skip

# CJK ideograph blocks. Rust's table has a hole at U+2B820-U+2B91F (CJK Extension E's start
# was mistyped); the Python table covers it.
_CJK_COMMON = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)  # fmt: skip
RUST_CJK_RANGES = (*_CJK_COMMON, (0x2B920, 0x2CEAF))
PYTHON_CJK_RANGES = (*_CJK_COMMON, (0x2B820, 0x2CEAF))

FLAVOURS = ("rust", "python")


def is_ascii_punctuation(cp: int) -> bool:
    """ASCII symbols like ``$+<=>^`|~`` are not Unicode punctuation but BERT splits them too."""
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126


def is_whitespace(ch: str, flavour: str = "rust") -> bool:
    """A split point. Tab, newline and carriage return are controls but count as space."""
    if flavour == "rust":
        return ord(ch) in WHITE_SPACE
    # BertTokenizerLegacy maps " \t\n\r" and Zs to a space, then splits with str.split(),
    # which also splits on Zl/Zp (U+2028/U+2029); the other isspace() characters are controls
    # and are removed first.
    return ch.isspace()


def is_control(ch: str, flavour: str = "rust") -> bool:
    """Removed by text cleaning (besides NUL and U+FFFD, see `is_removed`)."""
    if ch in "\t\n\r":
        return False
    cat = unicodedata.category(ch)
    if flavour == "rust":
        # Rust's unicode_categories `is_other` knows Cc/Cf/Co/Cs of Unicode 8.0 but no Cn:
        # unassigned code points survive as word characters.
        return cat in ("Cc", "Cf", "Co", "Cs") and ord(ch) not in RUST_KEPT_FORMAT
    return cat.startswith("C")  # includes Cn: unassigned code points are dropped


def is_removed(ch: str, flavour: str = "rust") -> bool:
    """What `clean_text` drops: NUL, the replacement character and control characters."""
    return ch in "\x00\ufffd" or is_control(ch, flavour)


def is_punctuation(ch: str, flavour: str = "rust") -> bool:
    """Split off as a one-character word: ASCII symbols and Unicode P* categories."""
    cp = ord(ch)
    if is_ascii_punctuation(cp):
        return True
    if flavour == "rust":
        if cp in RUST_EXTRA_PUNCTUATION:
            return True
        if cp in RUST_NOT_PUNCTUATION:
            return False
    return unicodedata.category(ch).startswith("P")


def is_nonspacing_mark(ch: str, flavour: str = "rust") -> bool:
    """What accent stripping drops after NFD (category Mn: combining accents, not ß's parts)."""
    if flavour == "rust":
        cp = ord(ch)
        if cp in RUST_EXTRA_NONSPACING_MARK:
            return True
        if cp in RUST_NOT_NONSPACING_MARK:
            return False
    return unicodedata.category(ch) == "Mn"


def is_chinese_char(cp: int, flavour: str = "rust") -> bool:
    """A CJK ideograph (not Hangul or kana, which are written with spaces between words)."""
    ranges = RUST_CJK_RANGES if flavour == "rust" else PYTHON_CJK_RANGES
    return any(lo <= cp <= hi for lo, hi in ranges)


# --- regex character classes ---------------------------------------------------------------

# One letter per general category, so that a string of 1.1M letters can be scanned by `re`.
_CATEGORIES = (
    "Cc Cf Cn Co Cs Ll Lm Lo Lt Lu Mc Me Mn Nd Nl No Pc Pd Pe Pf Pi Po Ps "
    "Sc Sk Sm So Zl Zp Zs"
).split()
_LETTER = {cat: chr(ord("a") + i) for i, cat in enumerate(_CATEGORIES)}


def _letters(cats: str) -> str:
    return "".join(_LETTER[c] for c in cats.split())


@functools.cache
def _category_string() -> str:
    """Letter i is the general category of code point i (built once, ~0.2 s)."""
    category = unicodedata.category
    return "".join(map(_LETTER.__getitem__, map(category, map(chr, range(MAX_CODE_POINT + 1)))))


def _category_ranges(letters: str) -> list[tuple[int, int]]:
    cats = _category_string()
    return [(m.start(), m.end() - 1) for m in re.finditer(f"[{letters}]+", cats)]


@functools.cache
def code_point_classes(flavour: str) -> dict[str, tuple[tuple[int, int], ...]]:
    """Sorted, merged code point ranges of each class: ``removed``, ``space``, ``punct``, ``cjk``
    (and ``space_controls``, the controls that split words when text cleaning is off).

    The same rules as the functions above, computed for all code points at once from runs of
    equal general category (cached; a test checks both agree on every code point).
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown character-rule flavour {flavour!r}; expected one of {FLAVOURS}")
    rust = flavour == "rust"
    tab_nl_cr = {9, 10, 13}
    removed = _category_ranges(_letters("Cc Cf Co" if rust else "Cc Cf Co Cn"))
    removed = _subtract(removed, tab_nl_cr | (RUST_KEPT_FORMAT if rust else set()))
    removed = _add(removed, {0xFFFD})
    space = _add(_category_ranges(_letters("Zs Zl Zp")), tab_nl_cr)
    ascii_punct = {cp for cp in range(128) if is_ascii_punctuation(cp)}
    punct = _add(_category_ranges(_letters("Pc Pd Pe Pf Pi Po Ps")), ascii_punct)
    if rust:
        punct = _add(_subtract(punct, RUST_NOT_PUNCTUATION), RUST_EXTRA_PUNCTUATION)
    # Controls that are also whitespace (VT, FF, NEL, and for Python's isspace() also
    # U+001C-U+001F): cleaning removes them first, but without cleaning they split words.
    space_controls = [(cp, cp) for cp in range(0x100) if is_whitespace(chr(cp), flavour)]
    space_controls = [r for r in space_controls if unicodedata.category(chr(r[0])) == "Cc"]
    cjk = RUST_CJK_RANGES if rust else PYTHON_CJK_RANGES
    return {
        "space_controls": tuple(r for r in space_controls if r[0] not in tab_nl_cr),
        "removed": tuple(removed),
        "space": tuple(space),
        "punct": tuple(punct),
        "cjk": tuple(sorted(cjk)),
    }


def _subtract(ranges: list[tuple[int, int]], cps: set[int] | frozenset[int]) -> list[tuple[int, int]]:
    """`ranges` without the code points `cps` (which are few)."""
    out = []
    for lo, hi in ranges:
        for cp in sorted(c for c in cps if lo <= c <= hi):
            if lo <= cp - 1:
                out.append((lo, cp - 1))
            lo = cp + 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def _add(ranges: list[tuple[int, int]], cps: set[int] | frozenset[int]) -> list[tuple[int, int]]:
    """`ranges` plus the code points `cps`, sorted and merged."""
    merged: list[list[int]] = []
    for lo, hi in sorted([*ranges, *((cp, cp) for cp in cps)]):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def ranges_to_class_body(ranges: tuple[tuple[int, int], ...]) -> str:
    """The inside of a regex ``[...]`` for the given inclusive ranges (escaped, no brackets)."""
    parts = []
    for lo, hi in ranges:
        parts.append(_esc(lo) if lo == hi else f"{_esc(lo)}-{_esc(hi)}")
    return "".join(parts)


def _esc(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
