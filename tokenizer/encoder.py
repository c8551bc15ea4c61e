"""Text to token ids: special tokens split out, basic tokenization, WordPiece, the word cache.

For one text:

1. reject what is not text (`check_text`: TypeError for non-str, ValueError for lone
   surrogates);
2. cut the text at the special tokens written in it (``"the[MASK]of"`` -> ``the [MASK] of``),
   matched on the raw text, case-sensitively, longest first (`TextEncoder.chunks`);
3. basic tokenization of the chunks in between (`basic.Segmenter`): one regular expression
   finds the words;
4. WordPiece on each word (`wordpiece.wordpiece`), through a bounded word -> pieces cache of
   `WordEntry`s.

`TextEncoder.ids` is the fast path (ids only); `TextEncoder.seq` also gives each token's
character offsets into the original string and its word index (a `TokenSeq`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .basic import Segmenter
from .wordpiece import CONTINUATION_PREFIX, wordpiece

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class WordEntry(NamedTuple):
    """What the cache remembers of one raw word (as the word regex found it)."""

    ids: tuple[int, ...]  # the token ids of its pieces
    spans: tuple[tuple[int, int], ...]  # each piece's (start, end) in the raw word
    sub_words: tuple[int, ...]  # per piece, which sub-word it belongs to (see below)
    n_sub_words: int  # lower-casing/accent stripping can create split points: 1 or more


@dataclass(slots=True)
class TokenSeq:
    """One encoded text before post-processing: ids, offsets and word index of its tokens
    (offsets and words are empty on the fast path)."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    words: list[int]

    def window(self, lo: int, hi: int) -> TokenSeq:
        return TokenSeq(self.ids[lo:hi], self.offsets[lo:hi], self.words[lo:hi])


def check_text(text: Any, what: str = "text") -> str:
    """`text` itself if it is a str of valid Unicode; otherwise an error naming the problem."""
    if not isinstance(text, str):
        hint = " (decode bytes to str first)" if isinstance(text, (bytes, bytearray)) else ""
        raise TypeError(f"{what} must be str, got {type(text).__name__}{hint}")
    if not text.isascii():
        m = _SURROGATE_RE.search(text)
        if m:
            raise ValueError(
                f"{what} is not valid Unicode: lone surrogate U+{ord(m.group()):04X} at index "
                f"{m.start()} (decode the source with errors='replace' or fix it)"
            )
    return text


def evict_older_half(cache: dict[str, WordEntry]) -> None:
    """Drop the older half of the word cache (dicts keep insertion order).

    One tokenizer may be shared by threads that fill and evict the same cache at once, and no
    lock guards it (the hot path stays lock-free): a key another thread already evicted is
    skipped, and if the dict changes size while its keys are listed this eviction is skipped
    too - the next insertion tries again. Entries are pure functions of their word, so which
    ones survive never changes a result, only the speed.
    """
    try:
        old = list(itertools.islice(cache, len(cache) // 2))
    except RuntimeError:  # "dictionary changed size during iteration", from another thread
        return
    for key in old:
        cache.pop(key, None)


class TextEncoder:
    """Text -> token ids for one vocabulary and one set of options (no special tokens added)."""

    def __init__(
        self,
        vocab: dict[str, int],
        segmenter: Segmenter,
        *,
        unk_token: str,
        special_tokens: Sequence[str],
        never_split: Sequence[str],
        max_input_chars_per_word: int,
        cache_size: int,
    ) -> None:
        self.vocab = vocab
        self.unk_id = vocab[unk_token]
        self.segmenter = segmenter
        self.max_input_chars_per_word = max_input_chars_per_word
        self.max_token_chars = max(len(t) for t in vocab)
        self.cache: dict[str, WordEntry] = {}
        self.cache_size = cache_size
        self.word_re = segmenter.word_re
        self.nfc = segmenter.nfc
        # Words need no per-character work unless they are lower-cased or accent-stripped.
        self.plain_words = not segmenter.changes_words
        self.special_re = _special_tokens_pattern(special_tokens, never_split)

    # -- the rules, one small function each ------------------------------------------------

    def has_special_tokens(self, text: str) -> bool:
        """Special tokens (or never_split words) written in the text."""
        return self.special_re.search(text) is not None

    def is_plain_word(self, word: str) -> bool:
        """A word that needs no normalization: no lower-casing or accent stripping, and no
        character that cleaning removes. Its pieces' offsets are their spans in the word."""
        removed_re = self.segmenter.removed_re
        return self.plain_words and (removed_re is None or not removed_re.search(word))

    def is_too_long(self, word: str) -> bool:
        """Words over max_input_chars_per_word characters are [UNK] without trying WordPiece."""
        return len(word) > self.max_input_chars_per_word

    def pieces(self, word: str) -> list[tuple[int, int]] | None:
        """WordPiece spans of one (normalized) word, None when it is [UNK]."""
        if self.is_too_long(word):
            return None
        return wordpiece(word, self.vocab, self.max_token_chars)

    def piece_id(self, word: str, start: int, end: int) -> int:
        """The id of ``word[start:end]``: the first piece as is, later ones with ``##``."""
        piece = word[start:end]
        return self.vocab[piece if start == 0 else CONTINUATION_PREFIX + piece]

    # -- words -----------------------------------------------------------------------------

    def word_entry(self, word: str) -> WordEntry:
        """The cached entry of one raw word; computed (and remembered) on a miss.

        Cached: natural text repeats words, and WordPiece is the expensive part. The cache is
        bounded: when full, the older half is dropped.
        """
        entry = self.cache.get(word)
        if entry is None:
            entry = self._plain_entry(word) if self.is_plain_word(word) else self._normalized_entry(word)
            if len(self.cache) >= self.cache_size:
                evict_older_half(self.cache)
            self.cache[word] = entry
        return entry

    def _plain_entry(self, word: str) -> WordEntry:
        """A word already normalized: one sub-word, offsets 1:1."""
        pieces = self.pieces(word)
        if pieces is None:
            return WordEntry((self.unk_id,), ((0, len(word)),), (0,), 1)
        ids = tuple(self.piece_id(word, a, b) for a, b in pieces)
        return WordEntry(ids, tuple(pieces), (0,) * len(pieces), 1)

    def _normalized_entry(self, word: str) -> WordEntry:
        """Clean, lower-case and/or strip accents, split again where that created split
        points, then WordPiece each sub-word; spans point back into the raw word."""
        seg = self.segmenter
        chars, origin = seg.normalize_word(word)
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        subs: list[int] = []
        ranges = seg.split_normalized(chars)
        for k, (lo, hi) in enumerate(ranges):
            sub = "".join(chars[lo:hi])
            pieces = self.pieces(sub)
            if pieces is None:  # too long, or some part matches nothing: the whole word is UNK
                ids.append(self.unk_id)
                spans.append((origin[lo], origin[hi - 1] + 1))
            else:
                for a, b in pieces:
                    ids.append(self.piece_id(sub, a, b))
                    spans.append((origin[lo + a], origin[lo + b - 1] + 1))
            subs.extend([k] * (len(ids) - len(subs)))
        return WordEntry(tuple(ids), tuple(spans), tuple(subs), len(ranges))

    # -- texts -----------------------------------------------------------------------------

    def chunks(self, text: str) -> Iterator[tuple[str, int, int | None]]:
        """(chunk, start, special_id or None): the text cut at special tokens."""
        pos = 0
        for m in self.special_re.finditer(text):
            if m.start() > pos:
                yield text[pos : m.start()], pos, None
            yield m.group(), m.start(), self.vocab.get(m.group(), self.unk_id)
            pos = m.end()
        if pos < len(text):
            yield text[pos:], pos, None

    def ids(self, text: str) -> list[int]:
        """Token ids of `text`: the fast path, without offsets."""
        ids: list[int] = []
        # Local names: this loop runs once per word of every text.
        cache, entry_of, word_re = self.cache, self.word_entry, self.word_re
        chunks: Iterable[tuple[str, int, int | None]]
        if self.has_special_tokens(text):
            chunks = self.chunks(text)
        else:
            chunks = ((text, 0, None),)
        for chunk, _, special in chunks:
            if special is not None:
                ids.append(special)
                continue
            if self.nfc:
                chunk = self.segmenter.prepare_text(chunk)
            for word in word_re.findall(chunk):
                entry = cache.get(word)
                if entry is None:
                    entry = entry_of(word)
                ids.extend(entry[0])  # entry.ids: indexing a tuple is the faster of the two here
        return ids

    def seq(self, text: str) -> TokenSeq:
        """Ids, character offsets into `text` and word index of its tokens."""
        out = TokenSeq([], [], [])
        n_words = 0
        for chunk, base, special in self.chunks(text):
            if special is not None:
                out.ids.append(special)
                out.offsets.append((base, base + len(chunk)))
                out.words.append(n_words)
                n_words += 1
            else:
                n_words = self._add_words(out, chunk, base, n_words)
        return out

    def _add_words(self, out: TokenSeq, chunk: str, base: int, n_words: int) -> int:
        """Append the tokens of one chunk (no special tokens in it) starting at character
        `base` of the text, its words numbered from `n_words`; returns the next word number."""
        starts = ends = None
        if self.nfc:  # NFC may change the length: map each character back to the original
            chunk, starts, ends = self.segmenter.prepare_text_with_map(chunk)
        for m in self.word_re.finditer(chunk):
            entry = self.word_entry(m.group())
            out.ids.extend(entry.ids)
            w0 = m.start()
            if starts is None or ends is None:
                at = base + w0
                out.offsets.extend([(at + a, at + b) for a, b in entry.spans])
            else:
                out.offsets.extend([(base + starts[w0 + a], base + ends[w0 + b - 1]) for a, b in entry.spans])
            out.words.extend([n_words + k for k in entry.sub_words])
            n_words += entry.n_sub_words
        return n_words


def seq_of_words(encoder: TextEncoder, words: Sequence[str], detail: bool) -> TokenSeq:
    """Pre-split words (``is_split_into_words=True``): each word is encoded on its own, its
    tokens get the word's index in the list as word id, and offsets within the word (as the
    Rust tokenizer gives them)."""
    out = TokenSeq([], [], [])
    for index, word in enumerate(words):
        if detail:
            part = encoder.seq(word)
            out.offsets.extend(part.offsets)
            out.words.extend([index] * len(part.ids))
            out.ids.extend(part.ids)
        else:
            out.ids.extend(encoder.ids(word))
    return out


def _special_tokens_pattern(special_tokens: Sequence[str], never_split: Sequence[str]) -> re.Pattern[str]:
    """Special tokens, longest first, and never_split entries as whole whitespace-delimited
    chunks."""
    specials = sorted(set(special_tokens), key=len, reverse=True)
    alternatives = [re.escape(t) for t in specials]
    if never_split:
        words = sorted(set(never_split), key=len, reverse=True)
        alternatives.append(r"(?<!\S)(?:" + "|".join(map(re.escape, words)) + r")(?!\S)")
    return re.compile("|".join(alternatives))
