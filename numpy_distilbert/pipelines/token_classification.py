"""token-classification (alias ner), as transformers' TokenClassificationPipeline.

Per input, a list of entities. With `aggregation_strategy="none"` there is one per token:

    {"entity": "B-PER", "score": 0.99, "index": 1, "word": "Jean", "start": 0, "end": 4}

and with the other strategies one per group of adjacent tokens (or words) of the same type:

    {"entity_group": "PER", "score": 0.98, "word": "Jean-Pierre", "start": 0, "end": 11}

Strategies (as transformers):
* none:    every token, its best label;
* simple:  tokens' best labels, then adjacent tokens grouped (B-X starts a group, I-X continues one);
* first:   a word takes the label of its first token; then grouped;
* average: a word takes the label of its tokens' mean scores; then grouped;
* max:     a word takes the label of its most confident token; then grouped.
A word is a token plus the `##` continuation tokens after it. Entities whose label (or
group) is in `ignore_labels` (default ["O"]) are dropped. Special tokens never appear.

`word`, `start` and `end` come from the tokenizer's character offsets into the original
text: `word == text[start:end]`, with the text's own spacing, case and accents. (transformers
re-decodes tokens instead: "##ing" for a sub-token, "Jean - Pierre" for a group.)

Pre-split input, as in transformers: with `is_split_into_words=True` an input is a list of
words (a batch is a list of such lists). The words are joined with `delimiter` (default " ")
into the text that `start`, `end` and `word` refer to; a single list of words gives a list
holding its one result, as transformers does.

Long inputs are truncated to the model's length; with `stride=n` they are instead cut into
overlapping windows (n tokens of overlap) and overlapping entities are merged, keeping the
longer (then the more confident) one.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, ClassVar

import numpy as np

from numpy_distilbert._checks import as_int
from numpy_distilbert.heads import DistilBertForTokenClassification
from numpy_distilbert.pipelines.base import (
    Pipeline,
    check_finite,
    check_texts,
    nth_input,
    run_batched,
    softmax,
)

STRATEGIES = ("none", "simple", "first", "average", "max")


def _tag(label: str) -> tuple[str, str]:
    """"B-PER" -> ("B", "PER"); "I-PER" -> ("I", "PER"); anything else continues: ("I", label)."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


class TokenClassificationPipeline(Pipeline):
    model_class = DistilBertForTokenClassification
    task = "token-classification"
    default_options: ClassVar[dict[str, Any]] = {
        "aggregation_strategy": "none",
        "ignore_labels": None,
        "stride": None,
        "is_split_into_words": False,
        "delimiter": None,
    }

    def _collect_inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], bool]:
        split = kwargs.get("is_split_into_words", self.options["is_split_into_words"])
        if split is True and len(args) == 1 and isinstance(args[0], (list, tuple)):
            words = args[0]
            if words and all(isinstance(w, str) for w in words):
                return [words], False  # one list of words: a list of one result (transformers)
        return super()._collect_inputs(args, kwargs)


    # ----------------------------------------------------------------- running
    def _run(
        self,
        items: list[Any],
        batch_size: int,
        aggregation_strategy: Any,
        ignore_labels: Any,
        stride: Any,
        is_split_into_words: bool,
        delimiter: str | None,
    ) -> list[Any]:
        strategy = str(aggregation_strategy).lower() if aggregation_strategy is not None else "none"
        if strategy not in STRATEGIES:
            raise ValueError(
                f"unknown aggregation_strategy {aggregation_strategy!r}; "
                f"choose one of {', '.join(STRATEGIES)}"
            )
        ignore = ["O"] if ignore_labels is None else list(ignore_labels)
        if stride is not None:
            stride = as_int(stride, "stride", minimum=0)
            if stride >= self.max_length:
                raise ValueError(f"stride ({stride}) must be less than the model's maximum length "
                                 f"({self.max_length}), or even lower: special tokens count too")  # fmt: skip
            if strategy == "none":
                raise ValueError(
                    'stride windows overlap, and only aggregated entities can be merged; choose an '
                    'aggregation_strategy other than "none"'
                )
        if not isinstance(is_split_into_words, bool):
            raise TypeError(f"is_split_into_words must be True or False, got {is_split_into_words!r}")
        words: list[_WordOffsets | None]
        if is_split_into_words:
            texts, words = _joined_words(items, " " if delimiter is None else delimiter)
        else:
            if delimiter is not None:
                raise ValueError("delimiter joins pre-split words; pass it with is_split_into_words=True")
            texts, words = _checked_texts(items), [None] * len(items)
        chunks, owners = [], []  # every window of every text, and which text it belongs to
        for i, (text, split) in enumerate(zip(texts, words, strict=True)):
            for chunk in self._encode(text if split is None else split.spaced, stride):
                if split is not None:
                    chunk["offset_mapping"] = [split.to_joined(o) for o in chunk["offset_mapping"]]
                chunks.append(chunk)
                owners.append(i)

        def forward(ids: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
            logits = self.model(ids, mask).logits  # [B, L, C]
            return [logits[b, : mask[b].sum()] for b in range(len(ids))]  # [L_b, C] each

        pad_id = self.tokenizer.pad_token_id
        logits = run_batched([c["input_ids"] for c in chunks], batch_size, pad_id, forward)
        results: list[list[dict[str, Any]]] = [[] for _ in texts]
        counts = [0] * len(texts)
        for chunk, owner, chunk_logits in zip(chunks, owners, logits, strict=True):
            chunk_logits = check_finite(chunk_logits, "logits", nth_input(owner, len(texts)))  # [L_b, C]
            chunk_scores = softmax(chunk_logits)
            counts[owner] += 1
            pre = self._pre_entities(texts[owner], chunk, chunk_scores)
            entities = self._aggregate(texts[owner], pre, strategy)
            results[owner].extend(
                e for e in entities if e.get("entity", e.get("entity_group")) not in ignore
            )
        return [_merge_overlapping(r) if n > 1 else r for r, n in zip(results, counts, strict=True)]

    def _encode(self, text: str, stride: int | None) -> list[dict[str, list]]:
        """One dict (input_ids, offset_mapping, special_tokens_mask) per window of `text`."""
        extra = {"stride": stride, "return_overflowing_tokens": True} if stride is not None else {}
        enc = self.tokenizer(
            text,
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            **extra,
        )
        keys = ("input_ids", "offset_mapping", "special_tokens_mask")
        if enc["input_ids"] and isinstance(enc["input_ids"][0], list):  # windows: a list per window
            return [{k: enc[k][w] for k in keys} for w in range(len(enc["input_ids"]))]
        return [{k: enc[k] for k in keys}]

    # -------------------------------------------------------------- aggregation
    def _pre_entities(self, text: str, chunk: dict[str, list], scores: np.ndarray) -> list[dict[str, Any]]:
        """One record per real (non-special) token: its scores, offsets and whether it continues a word."""
        tok = self.tokenizer
        tokens = tok.convert_ids_to_tokens(list(chunk["input_ids"]))
        out = []
        for idx, (token_id, token) in enumerate(zip(chunk["input_ids"], tokens, strict=True)):
            if chunk["special_tokens_mask"][idx]:
                continue
            start, end = (int(x) for x in chunk["offset_mapping"][idx])
            out.append({
                "scores": scores[idx],
                "index": idx,
                "start": start,
                "end": end,
                "word": text[start:end],
                "is_subword": token.startswith("##") and token_id != tok.unk_token_id,
            })  # fmt: skip
        return out

    def _aggregate(self, text: str, pre: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        id2label = self.model.config.id2label
        if strategy in ("none", "simple"):
            entities = []
            for p in pre:
                best = int(np.argmax(p["scores"]))
                entities.append({
                    "entity": id2label[best],
                    "score": float(p["scores"][best]),
                    "index": p["index"],
                    "word": p["word"],
                    "start": p["start"],
                    "end": p["end"],
                })  # fmt: skip
            if strategy == "none":
                return entities
        else:
            entities = [self._aggregate_word(word, strategy) for word in _words(pre)]
        return _group(text, entities)

    def _aggregate_word(self, pieces: list[dict[str, Any]], strategy: str) -> dict[str, Any]:
        """A word's tokens -> one entity, its label chosen by `strategy`."""
        if strategy == "first":
            scores = pieces[0]["scores"]
        elif strategy == "max":
            scores = max(pieces, key=lambda p: p["scores"].max())["scores"]
        else:  # average
            scores = np.nanmean(np.stack([p["scores"] for p in pieces]), axis=0)
        best = int(np.argmax(scores))
        return {"entity": self.model.config.id2label[best], "score": float(scores[best]),
                "start": pieces[0]["start"], "end": pieces[-1]["end"]}  # fmt: skip


def _words(pre: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Tokens grouped into words: a word is a token and the continuation tokens after it."""
    words: list[list[dict[str, Any]]] = []
    for p in pre:
        if words and p["is_subword"]:
            words[-1].append(p)
        else:
            words.append([p])
    return words


def _group(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent entities of one type become one group; a B- tag always starts a new group."""
    groups: list[list[dict[str, Any]]] = []
    for entity in entities:
        bi, tag = _tag(entity["entity"])
        if groups and bi != "B" and _tag(groups[-1][-1]["entity"])[1] == tag:
            groups[-1].append(entity)
        else:
            groups.append([entity])
    return [
        {
            # The group's name: the first label without its "B-"/"I-" (any "X-") prefix.
            "entity_group": group[0]["entity"].split("-", 1)[-1],
            "score": float(np.nanmean([e["score"] for e in group])),
            "word": text[group[0]["start"]:group[-1]["end"]],
            "start": group[0]["start"],
            "end": group[-1]["end"],
        }
        for group in groups
    ]


def _merge_overlapping(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities found in overlapping windows: of those that overlap, keep the longer, then the surer."""
    if not entities:
        return entities
    ordered = sorted(entities, key=lambda e: e["start"])
    merged, previous = [], ordered[0]
    for entity in ordered:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            surer = entity["score"] > previous["score"]
            if length > previous_length or (length == previous_length and surer):
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged


class _WordOffsets:
    """Pre-split words, tokenized as `spaced` (the words joined by " ": the tokenizer splits on
    whitespace, so no token spans two words) and reported in `joined` (joined by the caller's
    delimiter, which may be any string)."""

    def __init__(self, words: list[str], delimiter: str) -> None:
        self.spaced, self.joined = " ".join(words), delimiter.join(words)
        self.spaced_starts: list[int] = []  # [W]: where word w starts in `spaced`
        self.joined_starts: list[int] = []  # [W]: where it starts in `joined`
        spaced_at = joined_at = 0
        for word in words:
            self.spaced_starts.append(spaced_at)
            self.joined_starts.append(joined_at)
            spaced_at += len(word) + 1
            joined_at += len(word) + len(delimiter)

    def to_joined(self, offset: Any) -> tuple[int, int]:
        """A token's (start, end) in `spaced` -> the same characters' (start, end) in `joined`."""
        start, end = (int(x) for x in offset)
        if start == end:  # a special token: (0, 0)
            return start, end
        word = bisect_right(self.spaced_starts, start) - 1
        shift = self.joined_starts[word] - self.spaced_starts[word]
        return start + shift, end + shift


def _joined_words(items: list[Any], delimiter: Any) -> tuple[list[str], list[_WordOffsets | None]]:
    if not isinstance(delimiter, str):
        raise TypeError(f"delimiter must be a string, got {type(delimiter).__name__}")
    offsets: list[_WordOffsets | None] = []
    joined: list[str] = []
    for i, words in enumerate(items):
        if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
            raise TypeError(
                f"with is_split_into_words=True, input {i} must be a list of word strings, "
                f"got {words!r:.80}"
            )
        split = _WordOffsets(list(words), delimiter)
        offsets.append(split)
        joined.append(split.joined)
    return joined, offsets


def _checked_texts(items: list[Any]) -> list[str]:
    for i, item in enumerate(items):
        if isinstance(item, (list, tuple)):
            raise TypeError(f"input {i} is a list of words; pass is_split_into_words=True for pre-split text")
    return check_texts(items)
