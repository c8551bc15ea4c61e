"""text-classification (alias sentiment-analysis), as transformers' TextClassificationPipeline.

Inputs: a text, a `{"text": ..., "text_pair": ...}` dict (a sentence pair), or a list of those.

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

    def _encode(self, item: Any, truncation: bool) -> list[int]:
        if isinstance(item, str):
            return self.encode(item, truncation=truncation)
        if isinstance(item, dict) and "text" in item and set(item) <= {"text", "text_pair"}:
            return self.encode(item["text"], text_pair=item.get("text_pair"), truncation=truncation)
        raise ValueError(
            "text-classification takes strings, or dicts {'text': ..., 'text_pair': ...} for a sentence "
            f"pair; got {item!r:.80}"
        )

    def _run(
        self, items: list[Any], batch_size: int, top_k: Any, function_to_apply: str | None, truncation: bool
    ) -> list[Any]:
        if top_k is not _LEGACY and top_k is not None:
            top_k = as_int(top_k, "top_k (or None for every label)", minimum=1)
        config = self.model.config
        function = resolve_function(function_to_apply, config)
        encoded = [self._encode(item, truncation) for item in items]
        logits = run_batched(
            encoded, batch_size, self.tokenizer.pad_token_id, lambda ids, mask: self.model(ids, mask).logits
        )
        results = []
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
