"""text-classification (alias sentiment-analysis), as transformers' TextClassificationPipeline.

Inputs: a text, a `{"text": ..., "text_pair": ...}` dict (a sentence pair), or a list of
those; in a list, a `(text, text_pair)` tuple (or two-string list) is a pair too; and
`text_pair="..."` pairs every plain-string input with that one second text:

    clf({"text": premise, "text_pair": hypothesis})
    clf([(premise, hypothesis), (premise2, hypothesis2)])
    clf(premise, text_pair=hypothesis)

(transformers 5.24 takes a list of tuples too, but tokenizes each tuple as a *batch* of two
texts and classifies the first alone; here the tuple is the pair it reads as.)

Outputs follow transformers, including its two shapes:

* `top_k` not given (the legacy form): the best label per input, `{"label": ..., "score": ...}`;
  a single *string* input gives a list holding that one dict;
* `top_k=k` (or None for all labels) in the call: per input, a list of the k best
  `{"label", "score"}` dicts, best first; a single input gives that list itself.
  (`top_k` set when the pipeline was built also lists labels, but a single string
  input is then wrapped in one more list, as transformers does.)

`function_to_apply`: "default" (regression: none; one label or multi-label: sigmoid;
otherwise softmax), "softmax", "sigmoid" or "none".
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from numpy_distilbert._checks import as_int
from numpy_distilbert.heads import DistilBertForSequenceClassification
from numpy_distilbert.pipelines.base import Pipeline, check_finite, nth_input, run_batched, sigmoid, softmax

FUNCTIONS = ("default", "softmax", "sigmoid", "none")
_LEGACY = object()  # top_k not given: one best label per input, as transformers' legacy output


def resolve_function(function_to_apply: str | None, config: Any) -> str:
    """The score function to use: an explicit choice, or the config's default."""
    name = "default" if function_to_apply is None else function_to_apply
    if not isinstance(name, str) or name.lower() not in FUNCTIONS:
        raise ValueError(f"function_to_apply must be one of {FUNCTIONS}, got {function_to_apply!r}")
    name = name.lower()
    if name != "default":
        return name
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def apply_function(logits: np.ndarray, function: str) -> np.ndarray:
    if function == "softmax":
        return softmax(logits)
    if function == "sigmoid":
        return sigmoid(logits)
    return np.asarray(logits, dtype=np.float64)


class TextClassificationPipeline(Pipeline):
    model_class = DistilBertForSequenceClassification
    task = "text-classification"
    default_options: ClassVar[dict[str, Any]] = {
        "top_k": _LEGACY,
        "function_to_apply": None,
        "truncation": False,
        "text_pair": None,
    }

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Classify one input or a list of inputs (see the module docstring for the output shapes)."""
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, str) and "top_k" not in kwargs:
            return [result]
        return result

    def _is_single(self, inputs: Any) -> bool:
        if isinstance(inputs, dict):
            return True
        return super()._is_single(inputs)

    def _encode(self, item: Any, truncation: bool, text_pair: str | None) -> tuple[list[int], list[int]]:
        """(ids, token types): BERT reads the pair's second text as type 1."""
        if isinstance(item, str):
            return self.encode_with_types(item, text_pair=text_pair, truncation=truncation)
        text, pair = _pair(item)
        if text_pair is not None:
            raise ValueError(f"text_pair= pairs plain strings with a second text; {item!r:.80} is a pair")
        return self.encode_with_types(text, text_pair=pair, truncation=truncation)

    def _run(
        self,
        items: list[Any],
        batch_size: int,
        top_k: Any,
        function_to_apply: str | None,
        truncation: bool,
        text_pair: str | None,
    ) -> list[Any]:
        if text_pair is not None and not isinstance(text_pair, str):
            raise TypeError(f"text_pair must be a string, got {type(text_pair).__name__}")
        if top_k is not _LEGACY and top_k is not None:
            top_k = as_int(top_k, "top_k (or None for every label)", minimum=1)
        config = self.model.config
        function = resolve_function(function_to_apply, config)
        encoded = [self._encode(item, truncation, text_pair) for item in items]
        logits = run_batched(
            [ids for ids, _ in encoded], batch_size, self.tokenizer.pad_token_id,
            lambda ids, mask, types: self.model(ids, mask, types).logits,
            token_types=[types for _, types in encoded],
        )  # fmt: skip
        results: list[Any] = []
        for i, row in enumerate(logits):
            scores = apply_function(check_finite(row, "logits", nth_input(i, len(logits))), function)
            if top_k is _LEGACY:
                best = int(np.argmax(scores))
                results.append({"label": config.id2label[best], "score": float(scores[best])})
                continue
            ranked = sorted(
                ({"label": config.id2label[i], "score": float(s)} for i, s in enumerate(scores)),
                key=lambda entry: entry["score"],
                reverse=True,
            )
            results.append(ranked if top_k is None else ranked[:top_k])
        return results


def _pair(item: Any) -> tuple[str, str | None]:
    """A dict {"text", "text_pair"} or a (text, text_pair) tuple/list -> (text, text_pair)."""
    if isinstance(item, dict) and "text" in item and set(item) <= {"text", "text_pair"}:
        text, pair = item["text"], item.get("text_pair")
    elif isinstance(item, (tuple, list)) and len(item) == 2:
        text, pair = item
    else:
        raise ValueError(
            "text-classification takes strings; for a sentence pair, a dict {'text': ..., 'text_pair': ...} "
            f"or a (text, text_pair) tuple; got {item!r:.80}"
        )
    if not isinstance(text, str) or not (pair is None or isinstance(pair, str)):
        raise TypeError(f"a sentence pair holds two strings, got {item!r:.80}")
    return text, pair
