"""Extractive question answering: find the span of the context that answers the question.

    qa = pipeline("question-answering", model="path/to/a/distilbert-squad-checkpoint")
    qa(question="Where do I live?", context="My name is Wolfgang and I live in Berlin.")
    # {'score': 0.97, 'start': 34, 'end': 40, 'answer': 'Berlin'}

transformers 5 removed this pipeline; this one keeps transformers 4.57.6's semantics and
output format. How an answer is found, for one question and its context:

1. **Windows.** The pair is tokenized as ``[CLS] question [SEP] context [SEP]``. A context
   too long for ``max_seq_len`` tokens (default ``min(model_max_length, 384)``) is cut into
   overlapping windows, each repeating the question; consecutive windows share
   ``doc_stride`` context tokens (default ``min(max_seq_len // 2, 128)``).
2. **Logits.** The QA head gives every token a start logit and an end logit.
3. **Probabilities, per window.** Only context tokens may hold an answer; the question,
   [SEP] and padding get logit -10000 (exactly as transformers), so their probability is 0.
   The [CLS] token stays in: a softmax over [CLS] + context turns each window's start logits
   into probabilities p_start, and likewise p_end.
4. **Spans.** A span (s, e) of context tokens with s <= e < s + ``max_answer_len`` scores
   p_start[s] * p_end[e]. Each window proposes its best ``2 * top_k + 10`` spans when
   ``align_to_words`` (some collapse into the same answer, see 5), else ``top_k``.
5. **Characters.** A span becomes the characters from its first token's start to its last
   token's end in the context, widened to whole words when ``align_to_words`` (a "word" is
   what the tokenizer's pre-split makes: a run of letters/digits, or one punctuation mark).
   Proposals whose text is equal ignoring case -- within a window or across windows -- are
   merged: their scores add up, the first one's position is kept.
6. **No answer.** With ``handle_impossible_answer=True``, the empty answer
   ``{"answer": "", "start": 0, "end": 0}`` is added with score
   min over windows of p_start[CLS] * p_end[CLS].
7. **Result.** The ``top_k`` highest scores, best first. As in transformers, a question
   with exactly one answer gives that answer's dict, otherwise a list (possibly empty);
   and a call with exactly one question gives that question's result, several give a list.

Differences from transformers 4.57.6, all in corner cases where it returns nonsense:

* When fewer valid spans exist than step 4 asks for, transformers fills its list with
  zero-probability "spans" (starting at [CLS], or ending before they start) and can report
  them as answers with score 0.0 (e.g. ``top_k=3`` on a one-word context). Here only real
  spans are proposed, so fewer than ``top_k`` answers come back, as transformers' own
  documentation promises.
* transformers keeps any token whose id is [CLS] out of the mask, so a literal "[CLS]"
  typed into a question could become part of an answer. Here only the first token is the
  [CLS] that stands for "no answer".
* A whitespace-only question or context is refused like an empty one, and bad options
  (``max_seq_len`` beyond the model's positions, a question leaving no room for the
  context, ``doc_stride`` too large) raise a ValueError naming the option, where
  transformers' tokenizer panics or the model fails on an index.
* ``max_question_len`` is accepted and, as in transformers' fast-tokenizer path (the one
  every BERT model uses), has no effect.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from numpy_distilbert import layers
from numpy_distilbert._checks import as_int
from numpy_distilbert.heads import DistilBertForQuestionAnswering
from numpy_distilbert.pipelines.base import (
    Pipeline,
    check_finite,
    length_sorted_batches,
    nth_input,
    pad_batch,
)

MASKED_LOGIT = -10000.0  # what transformers writes over the logits of tokens that cannot be an answer
DEFAULT_MAX_SEQ_LEN = 384
DEFAULT_DOC_STRIDE = 128


@dataclass
class _Window:
    """One model input: [CLS] question [SEP] context-slice [SEP], and where its tokens came from."""

    example: int  # index of the question this window belongs to
    input_ids: list[int]
    offsets: list[tuple[int, int]]  # character span of each token in its own text
    sequence_ids: list[int | None]  # 0 question, 1 context, None special
    word_ids: list[int | None]  # word index within its text, None for special tokens
    token_type_ids: list[int]  # 0 question (with [CLS] and its [SEP]), 1 context and the last [SEP]
    start_logits: np.ndarray | None = None  # [len(input_ids)]
    end_logits: np.ndarray | None = None


class QuestionAnsweringPipeline(Pipeline):
    """Answer questions by pointing at a span of a context (transformers 4.57.6 semantics).

    Call it as ``qa(question=..., context=...)`` (strings, or a list of questions with one
    context or with a list of contexts of the same length), ``qa(question, context)``,
    ``qa({"question": ..., "context": ...})`` or ``qa([dict, dict, ...])``.

    Options (at construction or per call): ``top_k`` (1), ``max_answer_len`` (15 tokens),
    ``max_seq_len`` (min(model_max_length, 384) tokens per window), ``doc_stride``
    (min(max_seq_len // 2, 128) tokens of overlap), ``handle_impossible_answer`` (False),
    ``align_to_words`` (True), ``max_question_len`` (no effect, as in transformers),
    ``batch_size`` (windows per forward pass).

    Returns, per question, ``{"score", "start", "end", "answer"}`` or a list of them
    (see the module docstring for when which); ``start``/``end`` index characters of the
    context, ``answer == context[start:end]``.
    """

    model_class: ClassVar[type[Any]] = DistilBertForQuestionAnswering
    task: ClassVar[str] = "question-answering"
    default_options: ClassVar[dict[str, Any]] = {
        "top_k": 1,
        "max_answer_len": 15,
        "max_seq_len": None,
        "doc_stride": None,
        "max_question_len": 64,
        "handle_impossible_answer": False,
        "align_to_words": True,
    }

    # ------------------------------------------------------------------ inputs
    def _collect_inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], bool]:
        """question=/context= (popped from kwargs) or positional inputs -> the checked examples.

        One question gives its result, several a list (transformers 4.57.6's rule).
        """
        examples = self._examples(args, kwargs.pop("question", None), kwargs.pop("context", None))
        return examples, len(examples) == 1

    @staticmethod
    def _examples(args: tuple, question: Any, context: Any) -> list[dict[str, str]]:
        """Every accepted input form -> a list of {"question", "context"} dicts, checked."""
        if args and (question is not None or context is not None):
            raise TypeError("pass the inputs either positionally or as question=/context=, not both")
        if args:
            if len(args) == 2 and all(isinstance(a, str) for a in args):
                inputs: Any = [{"question": args[0], "context": args[1]}]
            elif len(args) == 1:
                inputs = args[0]
            else:
                inputs = list(args)
        elif question is None and context is None:
            raise TypeError(
                "QuestionAnsweringPipeline needs inputs: question=... and context=..., "
                "a {'question': ..., 'context': ...} dict, or a list of such dicts"
            )
        elif question is None or context is None:
            missing = "question" if question is None else "context"
            raise TypeError(f"QuestionAnsweringPipeline got no {missing}=; pass question= and context=")
        elif isinstance(question, str) and isinstance(context, str):
            inputs = [{"question": question, "context": context}]
        elif isinstance(question, (list, tuple)) and isinstance(context, str):
            inputs = [{"question": q, "context": context} for q in question]
        elif isinstance(question, (list, tuple)) and isinstance(context, (list, tuple)):
            if len(question) != len(context):
                raise ValueError(
                    f"got {len(question)} questions and {len(context)} contexts; pass one context "
                    f"for all questions, or one per question"
                )
            inputs = [{"question": q, "context": c} for q, c in zip(question, context, strict=True)]
        else:
            raise TypeError(
                f"question= and context= must be strings, or a list of questions with a string or a "
                f"list of contexts; got {type(question).__name__} and {type(context).__name__}"
            )

        if isinstance(inputs, dict):
            inputs = [inputs]
        elif isinstance(inputs, str):
            raise TypeError(
                "a single string is not a question-answering input; pass question=... and context=..."
            )
        elif isinstance(inputs, Iterable):
            inputs = list(inputs)
        else:
            raise TypeError(
                f"question-answering inputs must be dicts with 'question' and 'context', "
                f"got {type(inputs).__name__}"
            )
        return [_check_example(i, item) for i, item in enumerate(inputs)]

    def _check_options(self, options: dict[str, Any]) -> tuple[int, int]:
        """Validate options; returns the effective (max_seq_len, doc_stride)."""
        for name in ("top_k", "max_answer_len"):
            options[name] = as_int(options[name], name, minimum=1)
        for name in ("handle_impossible_answer", "align_to_words"):
            if not isinstance(options[name], bool):
                raise TypeError(f"{name} must be True or False, got {options[name]!r}")
        max_seq_len = options["max_seq_len"]
        if max_seq_len is None:
            max_seq_len = min(self.tokenizer.model_max_length, DEFAULT_MAX_SEQ_LEN)
        max_seq_len = as_int(max_seq_len, "max_seq_len", minimum=4)
        positions = self.model.config.max_position_embeddings
        if max_seq_len > positions:
            raise ValueError(
                f"max_seq_len={max_seq_len} exceeds the model's max_position_embeddings ({positions})"
            )
        doc_stride = options["doc_stride"]
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, DEFAULT_DOC_STRIDE)
        doc_stride = as_int(doc_stride, "doc_stride", minimum=0)
        if doc_stride > max_seq_len:
            raise ValueError(f"doc_stride ({doc_stride}) is larger than max_seq_len ({max_seq_len})")
        return max_seq_len, doc_stride

    # --------------------------------------------------------------- the work
    def _run(self, items: list[dict[str, str]], batch_size: int, **options: Any) -> list[Any]:
        max_seq_len, doc_stride = self._check_options(options)
        windows = []
        for i, item in enumerate(items):
            windows.extend(self._windows(i, item, max_seq_len, doc_stride))
        self._score_windows(windows, batch_size)
        by_example: list[list[_Window]] = [[] for _ in items]
        for window in windows:
            by_example[window.example].append(window)
        return [
            self._answers(item["context"], example_windows, options)
            for item, example_windows in zip(items, by_example, strict=True)
        ]

    def _windows(self, index: int, item: dict[str, str], max_seq_len: int, doc_stride: int) -> list[_Window]:
        """Tokenize one question/context pair into overlapping windows of at most max_seq_len tokens."""
        question_tokens = len(self.tokenizer.tokenize(item["question"]))
        room = max_seq_len - question_tokens - self.tokenizer.num_special_tokens_to_add(pair=True)
        where = f"question {index}" if index else "the question"
        if room < 1:
            raise ValueError(
                f"{where} is {question_tokens} tokens long, which leaves no room for the context in "
                f"max_seq_len={max_seq_len} tokens; shorten the question or raise max_seq_len"
            )
        if doc_stride >= room:
            raise ValueError(
                f"doc_stride={doc_stride} must be smaller than the {room} context tokens that fit in "
                f"each window beside {where} (max_seq_len={max_seq_len}); lower doc_stride"
            )
        encoding = self.tokenizer(
            item["question"],
            item["context"],
            truncation="only_second",
            max_length=max_seq_len,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        return [
            _Window(
                example=index,
                input_ids=list(ids),
                offsets=[tuple(o) for o in encoding["offset_mapping"][row]],
                sequence_ids=encoding.sequence_ids(row),
                word_ids=encoding.word_ids(row),
                token_type_ids=list(encoding["token_type_ids"][row]),
            )
            for row, ids in enumerate(encoding["input_ids"])
        ]

    def _score_windows(self, windows: list[_Window], batch_size: int) -> None:
        """Run the model on all windows (padded batches of similar length); store their logits."""
        lengths = [len(w.input_ids) for w in windows]
        questions = windows[-1].example + 1 if windows else 0  # windows come in question order
        for batch in length_sorted_batches(lengths, batch_size):
            ids, mask = pad_batch([windows[i].input_ids for i in batch], self.tokenizer.pad_token_id)
            types, _ = pad_batch([windows[i].token_type_ids for i in batch], 0)
            output = self.model(ids, mask, types)
            for row, i in enumerate(batch):
                start, end = output.start_logits[row, : lengths[i]], output.end_logits[row, : lengths[i]]
                question = nth_input(windows[i].example, questions, "question")
                check_finite(np.stack([start, end], axis=-1), "logits", question)  # [L_i, 2]
                windows[i].start_logits, windows[i].end_logits = start, end

    def _answers(self, context: str, windows: list[_Window], options: dict[str, Any]) -> Any:
        """Steps 3-7 of the module docstring for one question: its windows' logits -> answers."""
        top_k, align = options["top_k"], options["align_to_words"]
        proposals = 2 * top_k + 10 if align else top_k
        answers: list[dict[str, Any]] = []
        null_score = math.inf
        for window in windows:
            if window.start_logits is None or window.end_logits is None:
                raise RuntimeError("_score_windows must run before _answers")  # a bug, not an input error
            spans, null = best_spans(
                window.start_logits,
                window.end_logits,
                context_mask=np.array([s == 1 for s in window.sequence_ids]),
                has_cls=window.input_ids[0] == self.tokenizer.cls_token_id,
                max_answer_len=options["max_answer_len"],
                count=proposals,
            )
            if null is not None:
                null_score = min(null_score, null)
            for s, e, score in spans:
                start, end = _char_span(window, s, e, align)
                text = context[start:end]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += score
                else:
                    answers.append({"score": score, "start": start, "end": end, "answer": text})
        if options["handle_impossible_answer"] and null_score != math.inf:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


# ------------------------------------------------------------------ helpers
def _check_example(index: int, item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        raise TypeError(
            f"question-answering input {index} must be a dict with 'question' and 'context', "
            f"got {type(item).__name__}"
        )
    for key in ("question", "context"):
        if key not in item:
            raise KeyError(f"question-answering input {index} has no {key!r} key")
        value = item[key]
        if not isinstance(value, str):
            raise TypeError(f"{key} of input {index} must be a string, got {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"{key} of input {index} is empty")
    unknown = sorted(set(item) - {"question", "context"})
    if unknown:
        raise KeyError(f"question-answering input {index} has unknown key(s) {', '.join(map(repr, unknown))}")
    return {"question": item["question"], "context": item["context"]}


def _masked_softmax(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Softmax over one window's logits, disallowed tokens first set to -10000 (in the logits' dtype)."""
    return layers.softmax(np.where(allowed, logits, np.asarray(MASKED_LOGIT, dtype=logits.dtype)))


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context_mask: np.ndarray,
    has_cls: bool,
    max_answer_len: int,
    count: int,
) -> tuple[list[tuple[int, int, float]], float | None]:
    """The `count` best answer spans of one window, and its no-answer score.

    start_logits, end_logits: [L]; context_mask: [L] bool, True where a token is context.
    Returns ([(start token, end token, score), ...] best first, p_start[0] * p_end[0] or
    None without a [CLS] at position 0). Scores are products of per-window softmax
    probabilities over [CLS] + context (module docstring, steps 3-4), as Python floats.
    """
    allowed = context_mask.copy()
    if has_cls:
        allowed[0] = True  # [CLS] takes part in the softmax: it stands for "no answer"
    p_start = _masked_softmax(start_logits, allowed)  # [L]
    p_end = _masked_softmax(end_logits, allowed)  # [L]
    null = float(p_start[0] * p_end[0]) if has_cls else None

    s_idx, e_idx = np.nonzero(np.outer(context_mask, context_mask))  # row-major: flat order
    keep = (e_idx >= s_idx) & (e_idx - s_idx < max_answer_len)
    s_idx, e_idx = s_idx[keep], e_idx[keep]
    scores = p_start[s_idx] * p_end[e_idx]  # [N] in the logits' dtype
    # Best first; equal scores in token order (stable sort on the negated scores).
    order = np.argsort(-scores, kind="stable")[:count]
    return [(int(s_idx[i]), int(e_idx[i]), float(scores[i])) for i in order], null


def _char_span(window: _Window, s: int, e: int, align_to_words: bool) -> tuple[int, int]:
    """Tokens s..e of a window -> (start, end) characters of the context, widened to words if asked."""
    if not align_to_words:
        return window.offsets[s][0], window.offsets[e][1]
    # The word's first and last tokens *in this window* (a window may cut a word in two).
    first = s
    while first > 0 and _same_word(window, first - 1, s):
        first -= 1
    last = e
    while last + 1 < len(window.input_ids) and _same_word(window, last + 1, e):
        last += 1
    return window.offsets[first][0], window.offsets[last][1]


def _same_word(window: _Window, i: int, j: int) -> bool:
    return window.sequence_ids[i] == window.sequence_ids[j] and (
        window.word_ids[i] is not None and window.word_ids[i] == window.word_ids[j]
    )


__all__ = ["QuestionAnsweringPipeline", "best_spans"]
