"""feature-extraction: the encoder's last hidden state, as transformers' FeatureExtractionPipeline.

    pipe("Hello")                        -> nested lists [1][L][D] of float ([CLS] and [SEP] included)
    pipe("Hello", return_tensors=True)   -> np.ndarray [1, L, D]
    pipe(["a", "b c"])                   -> a list of those, one per input, each at its own length

Beyond transformers: `pooling="cls"` (the [CLS] vector) or `pooling="mean"` (the mean over
the input's tokens, special tokens included, padding excluded) gives [1][D] per input
instead, keeping the leading batch axis of one so the nesting matches the unpooled output.
`truncation=True` cuts inputs to the model's maximum length (default: longer inputs are an error).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from numpy_distilbert.model import DistilBertModel
from numpy_distilbert.pipelines.base import Pipeline, check_finite, check_texts, nth_input, run_batched

POOLINGS = (None, "cls", "mean")


class FeatureExtractionPipeline(Pipeline):
    model_class = DistilBertModel
    task = "feature-extraction"
    default_options: ClassVar[dict[str, Any]] = {
        "return_tensors": False,
        "pooling": None,
        "truncation": False,
    }

    def _run(
        self, items: list[Any], batch_size: int, return_tensors: bool, pooling: str | None, truncation: bool
    ) -> list[Any]:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        tok = self.tokenizer
        encoded = [self.encode(text, truncation=bool(truncation)) for text in check_texts(items)]

        def forward(ids: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
            hidden = self.model(ids, mask).last_hidden_state  # [B, L, D]
            lengths = mask.sum(axis=1)
            if pooling == "cls":
                return [hidden[b, None, 0] for b in range(len(ids))]  # [1, D] each
            if pooling == "mean":
                weights = mask[..., None].astype(hidden.dtype)  # [B, L, 1]
                pooled = (hidden * weights).sum(axis=1) / lengths[:, None].astype(hidden.dtype)  # [B, D]
                return [pooled[b, None] for b in range(len(ids))]
            return [hidden[b, None, : lengths[b]] for b in range(len(ids))]  # [1, L_b, D] each

        features = run_batched(encoded, batch_size, tok.pad_token_id, forward)
        for i, f in enumerate(features):
            check_finite(f, "hidden states", nth_input(i, len(features)))
        if return_tensors:
            return [np.ascontiguousarray(f) for f in features]
        return [f.tolist() for f in features]
