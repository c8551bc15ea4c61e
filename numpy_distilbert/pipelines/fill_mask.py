"""fill-mask: the most likely tokens for each [MASK], as transformers' FillMaskPipeline.

    pipe("Hello I'm a [MASK] model.")
    -> [{"score": 0.1, "token": 12345, "token_str": "fashion", "sequence": "Hello I'm a fashion model."}, ...]

* one mask: a list of `top_k` candidates; several masks: one such list per mask, and each
  `sequence` then keeps the special tokens (as transformers: the other masks stay visible);
* a list of inputs gives a list of those results, except that a list of *one* input is
  unwrapped (transformers does the same);
* `targets` restricts the candidates to the given tokens; a target that is not one
  vocabulary token is replaced by the first token it tokenizes to, with a warning;
* the vocabulary projection (D x 119,547, the costliest matrix of the model) runs only at
  the mask positions;
* `clean_up_tokenization_spaces` is passed to the tokenizer's decode (None: the tokenizer's
  default), for `sequence` and `token_str`.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from numpy_distilbert._checks import as_int
from numpy_distilbert.model import DistilBertForMaskedLM
from numpy_distilbert.pipelines.base import (
    Pipeline,
    check_finite,
    check_texts,
    nth_input,
    run_batched,
    softmax,
)


class FillMaskPipeline(Pipeline):
    model_class = DistilBertForMaskedLM
    task = "fill-mask"
    default_options: ClassVar[dict[str, Any]] = {
        "top_k": 5,
        "targets": None,
        "clean_up_tokenization_spaces": None,
    }

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Fill the [MASK] token(s) of one text or a list of texts."""
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            return result[0]
        return result

    def _target_ids(self, targets: Any) -> list[int] | None:
        if targets is None:
            return None
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise TypeError("targets must be a string or a list of strings")
        tok = self.tokenizer
        ids = []
        for target in targets:
            token_id = tok.convert_tokens_to_ids(target)
            if token_id == tok.unk_token_id and target != tok.unk_token:
                pieces = tok.encode(target, add_special_tokens=False)
                if not pieces:
                    warnings.warn(
                        f"target {target!r} does not exist in the vocabulary and tokenizes to nothing; "
                        f"ignoring it",
                        stacklevel=3,
                    )
                    continue
                token_id = pieces[0]
                warnings.warn(
                    f"target {target!r} is not a vocabulary token; using its first token "
                    f"{tok.convert_ids_to_tokens(token_id)!r} instead",
                    stacklevel=3,
                )
            ids.append(int(token_id))
        ids = list(dict.fromkeys(ids))  # duplicates would repeat a candidate
        if not ids:
            raise ValueError("At least one target must be provided when passed.")
        return ids

    def _run(
        self,
        items: list[Any],
        batch_size: int,
        top_k: int,
        targets: Any,
        clean_up_tokenization_spaces: bool | None,
    ) -> list[Any]:
        top_k = as_int(top_k, "top_k", minimum=1)
        tok = self.tokenizer
        mask_id = tok.mask_token_id
        if mask_id is None:
            raise ValueError("the tokenizer defines no mask token; fill-mask needs one")
        target_ids = self._target_ids(targets)
        encoded = [tok.encode(text) for text in check_texts(items)]
        for i, ids in enumerate(encoded):
            if mask_id not in ids:
                where = "" if len(encoded) == 1 else f" (input {i})"
                raise ValueError(f"No mask_token ({tok.mask_token}) found on the input{where}")

        def forward(ids: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
            rows, cols = np.nonzero(ids == mask_id)
            logits = self.model(ids, mask, positions=(rows, cols)).logits  # [N, V], N = masks in batch
            return [logits[rows == r] for r in range(len(ids))]  # per row: [masks, V]

        logits = run_batched(encoded, batch_size, tok.pad_token_id, forward)
        # A NaN logit makes the whole row's softmax NaN, and then no candidate passes the top-k.
        probabilities = [
            softmax(check_finite(row, "logits", nth_input(i, len(logits)))) for i, row in enumerate(logits)
        ]
        return [
            self._postprocess(ids, probs, top_k, target_ids, clean_up_tokenization_spaces)
            for ids, probs in zip(encoded, probabilities, strict=True)
        ]

    def _postprocess(
        self,
        ids: list[int],
        probs: np.ndarray,
        top_k: int,
        target_ids: list[int] | None,
        clean_up: bool | None,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        tok = self.tokenizer
        positions = [i for i, t in enumerate(ids) if t == tok.mask_token_id]
        single_mask = len(positions) == 1
        if target_ids is not None:
            probs = probs[:, target_ids]  # [masks, C]
        k = min(top_k, probs.shape[1])
        results = []
        for position, row in zip(positions, probs, strict=True):
            entries = []
            for j in _top_k(row, k):
                token_id = int(j) if target_ids is None else int(target_ids[j])
                filled = list(ids)
                filled[position] = token_id
                filled = [t for t in filled if t != tok.pad_token_id]
                entries.append({
                    "score": float(row[j]),
                    "token": token_id,
                    "token_str": tok.decode([token_id], clean_up_tokenization_spaces=clean_up),
                    "sequence": tok.decode(
                        filled, skip_special_tokens=single_mask, clean_up_tokenization_spaces=clean_up
                    ),
                })  # fmt: skip
            results.append(entries)
        return results[0] if single_mask else results


def _top_k(row: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, best first; ties go to the lowest index.

    Sorting all 119,547 scores per mask is the slow way: np.partition finds the k-th largest
    value, and only the entries at or above it (every tie included) are sorted, stably.
    """
    threshold = np.partition(row, row.size - k)[row.size - k]
    contenders = np.flatnonzero(row >= threshold)  # ascending index order
    return contenders[np.argsort(-row[contenders], kind="stable")][:k]
