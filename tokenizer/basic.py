"""Basic tokenization: cleaning, CJK splitting, accent stripping, lower-casing, splitting.

This is BERT's "basic tokenizer" - everything that happens before WordPiece - written as one
regular expression plus a per-word function:

1. **Segmentation** (`Segmenter.word_re`): a word is a run of *word* characters, possibly
   interrupted by characters that text cleaning removes (``"a\\u200bb"`` is one word ``ab``);
   every punctuation character and every CJK ideograph is a word of its own; whitespace and
   removed characters between words vanish. The character classes come from `_unicode`.
2. **Per-word normalization** (`Segmenter.normalize_word`): drop removed characters,
   lower-case, strip accents (NFD, then drop nonspacing marks), each step remembering which
   character of the original word every output character came from, so that token offsets
   point into the original text. If these steps created whitespace or punctuation the word is
   split again there, exactly as the Rust pre-tokenizer (which runs after normalization) does.

With ``unicode_normalization="NFC"`` (the `BertTokenizerLegacy` behaviour) cleaning, NFC and
lower-casing run on the whole text first (`Segmenter.prepare_text`), because NFC composes
characters across what would otherwise be word boundaries (``"=\\u0338"`` becomes ``"≠"``) and
Python lower-cases a final sigma by context.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from . import _unicode


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return _unicode.ranges_to_class_body(ranges)


class Segmenter:
    """Compiled character classes and the normalization steps for one set of options."""

    def __init__(
        self,
        *,
        flavour: str,
        clean_text: bool,
        tokenize_chinese_chars: bool,
        lowercase: bool,
        strip_accents: bool,
        nfc: bool,
    ) -> None:
        classes = _unicode.code_point_classes(flavour)
        self.flavour = flavour
        self.clean_text = clean_text
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.nfc = nfc
        removed = _char_class(classes["removed"]) if clean_text else ""
        space = _char_class(classes["space"])
        if not clean_text:
            space += _char_class(classes["space_controls"])
        punct = _char_class(classes["punct"])
        cjk = _char_class(classes["cjk"]) if tokenize_chinese_chars else ""
        # Everything that is not removed/space/punctuation/CJK is a word character.
        word = f"[^{removed}{space}{punct}{cjk}]"
        single = f"[{punct}{cjk}]"
        if removed and not nfc:
            # Removed characters inside a word are skipped over but do not end it.
            self.word_re = re.compile(f"{word}+(?:[{removed}]+{word}+)*|{single}")
        else:
            # NFC mode cleans the whole text first (prepare_text), so no removed chars remain.
            self.word_re = re.compile(f"{word}+|{single}")
        self.removed_re = re.compile(f"[{removed}]") if removed else None
        self.removed_runs_re = re.compile(f"[^{removed}]+") if removed else None
        # After lower-casing / accent stripping a word may contain new split points.
        self.space_char_re = re.compile(f"[{space}]")
        self.punct_char_re = re.compile(f"[{punct}]")
        self.changes_words = lowercase or strip_accents

    # -- whole-text preparation (NFC mode only) ------------------------------------------

    def prepare_text(self, text: str) -> str:
        """Clean, NFC-normalize and lower-case `text` (NFC mode), without offsets."""
        if self.removed_re is not None:
            text = self.removed_re.sub("", text)
        text = unicodedata.normalize("NFC", text)
        return text.lower() if self.lowercase else text

    def prepare_text_with_map(self, text: str) -> tuple[str, list[int] | None, list[int] | None]:
        """Like `prepare_text`, plus for each output character the [start, end) range of the
        original characters it came from (``None, None`` when the text did not change)."""
        starts: list[int] | None = None
        kept_runs = self.removed_runs_re
        if self.removed_re is not None and kept_runs is not None and self.removed_re.search(text):
            parts, starts = [], []
            for m in kept_runs.finditer(text):
                parts.append(m.group())
                starts.extend(range(m.start(), m.end()))
            text = "".join(parts)
        ends = None if starts is None else [s + 1 for s in starts]
        if not unicodedata.is_normalized("NFC", text):
            text, starts, ends = _nfc_with_map(text, starts, ends)
        if self.lowercase:
            lowered = text.lower()
            if len(lowered) != len(text):  # some character lower-cases to several (İ -> i̇)
                starts = list(range(len(text))) if starts is None else starts
                ends = [s + 1 for s in starts] if ends is None else ends
                new_s, new_e = [], []
                for i, ch in enumerate(text):
                    k = len(ch.lower())
                    new_s.extend([starts[i]] * k)
                    new_e.extend([ends[i]] * k)
                starts, ends = new_s, new_e
            text = lowered
        return text, starts, ends

    # -- per-word normalization -----------------------------------------------------------

    def normalize_word(self, word: str) -> tuple[list[str], list[int]]:
        """The normalized characters of `word` and, for each, its index in `word`."""
        chars = list(word)
        origin = list(range(len(word)))
        if self.removed_re is not None and not self.nfc and self.removed_re.search(word):
            kept = [i for i, ch in enumerate(chars) if not self.removed_re.match(ch)]
            chars, origin = [chars[i] for i in kept], kept
        if self.lowercase and not self.nfc:
            # Rust lower-cases character by character: no final-sigma rule.
            chars, origin = _expand(chars, origin, str.lower)
        if self.strip_accents:
            chars, origin = _expand(chars, origin, self._strip_accents_char)
        return chars, origin

    def _strip_accents_char(self, ch: str) -> str:
        """Canonical decomposition, minus the nonspacing marks (é -> e, but ß stays ß)."""
        if ch.isascii():
            return ch
        flavour = self.flavour
        return "".join(
            c for c in unicodedata.normalize("NFD", ch) if not _unicode.is_nonspacing_mark(c, flavour)
        )

    def split_normalized(self, chars: list[str]) -> list[tuple[int, int]]:
        """Sub-word [start, end) ranges of normalized characters.

        Lower-casing or accent stripping can turn a word character into whitespace or
        punctuation (NFD maps U+1FEF to a backquote); the Rust pre-tokenizer runs after the
        normalizer and the legacy tokenizer splits punctuation after stripping, so split there.
        """
        if not self.changes_words:
            return [(0, len(chars))] if chars else []
        out: list[tuple[int, int]] = []
        start = None
        for i, ch in enumerate(chars):
            is_punct = self.punct_char_re.match(ch) is not None
            if is_punct or self.space_char_re.match(ch):
                if start is not None:
                    out.append((start, i))
                    start = None
                if is_punct:
                    out.append((i, i + 1))
            elif start is None:
                start = i
        if start is not None:
            out.append((start, len(chars)))
        return out


def _expand(chars: list[str], origin: list[int], f: Callable[[str], str]) -> tuple[list[str], list[int]]:
    """Apply a char -> str function, keeping each output character's origin."""
    out_c, out_o = [], []
    for ch, o in zip(chars, origin, strict=True):
        for c in f(ch):
            out_c.append(c)
            out_o.append(o)
    return out_c, out_o


def _nfc_with_map(
    text: str, starts: list[int] | None, ends: list[int] | None
) -> tuple[str, list[int], list[int]]:
    """NFC of `text` computed cluster by cluster, so every output character can point back
    to the original characters of its cluster.

    A cluster is a starter (canonical combining class 0) with the non-starters after it, plus
    any following starter it composes with (Hangul LV + T). Composition never crosses such
    a boundary, so the joined result equals ``unicodedata.normalize("NFC", text)``.
    """
    if starts is None or ends is None:
        starts = list(range(len(text)))
        ends = [s + 1 for s in starts]
    combining = unicodedata.combining
    normalize = unicodedata.normalize
    out_chars: list[str] = []
    out_s: list[int] = []
    out_e: list[int] = []
    cluster_start = 0

    def flush(i: int, j: int) -> None:
        if i >= j:
            return
        raw = text[i:j]
        piece = normalize("NFC", raw)
        out_chars.append(piece)
        # Characters NFC left in place (common prefix and suffix) keep their own offsets;
        # the ones it composed or reordered point at the span they came from.
        n = min(len(raw), len(piece))
        p = 0
        while p < n and raw[p] == piece[p]:
            p += 1
        q = 0
        while q < n - p and raw[-1 - q] == piece[-1 - q]:
            q += 1
        out_s.extend(starts[i : i + p])
        out_e.extend(ends[i : i + p])
        mid = len(piece) - p - q
        if mid:
            out_s.extend([starts[i + p]] * mid)
            out_e.extend([ends[j - 1 - q]] * mid)
        out_s.extend(starts[j - q : j])
        out_e.extend(ends[j - q : j])

    for i in range(1, len(text)):
        ch = text[i]
        if combining(ch):
            continue
        prev = text[i - 1]
        if not combining(prev) and len(normalize("NFC", text[cluster_start:i] + ch)) <= len(
            normalize("NFC", text[cluster_start:i])
        ):
            continue  # ch composes with the cluster's last starter: keep them together
        flush(cluster_start, i)
        cluster_start = i
    flush(cluster_start, len(text))
    result = "".join(out_chars)
    if result != normalize("NFC", text):  # pragma: no cover - guards the reasoning above
        raise AssertionError("internal error: cluster-wise NFC differs from NFC")
    return result, out_s, out_e
