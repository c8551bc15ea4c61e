"""What the models return: dataclasses with transformers' names, read like transformers' outputs.

Every model returns one of these. A field is read as an attribute (`out.logits`), by key
(`out["logits"]`) or by position (`out[0]`, `out.to_tuple()`), and `out.keys()` lists the
fields that were computed, as transformers' `ModelOutput` does:

    BaseModelOutput                 last_hidden_state [B, L, D]
    BaseModelOutputWithPooling      last_hidden_state [B, L, D], pooler_output [B, D] (BERT)
    BertForPreTrainingOutput        prediction_logits [B, L, V], seq_relationship_logits [B, 2]
    MaskedLMOutput                  logits [B, L, V] (or [N, V] with `positions=`)
    SequenceClassifierOutput        logits [B, C]
    TokenClassifierOutput           logits [B, L, C]
    QuestionAnsweringModelOutput    start_logits [B, L], end_logits [B, L]
    MultipleChoiceModelOutput       logits [B, K]

and, in every one, when asked for with `output_hidden_states=True` / `output_attentions=True`:
`hidden_states`, n_layers + 1 arrays [B, L, D] (the embeddings first), and `attentions`,
n_layers arrays [B, H, L, L]. A field that was not computed is None; it is left out of
`keys()`, `to_tuple()` and positions, and `out["attentions"]` is then a KeyError.

There is no `loss` field: `model.loss_and_grads(...)` returns the loss together with the
gradients (model.py), and `model.forward_train(...)` returns these same dataclasses.

This module is a leaf: it imports nothing of the project.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

Layers = tuple[NDArray[np.floating], ...]


@dataclass(eq=False)  # `==` on arrays has no single truth value: compare fields yourself
class ModelOutput:
    """The shared behaviour: attribute, key and position access to the fields that are set."""

    def keys(self) -> list[str]:
        """The names of the fields that hold a value, in declaration order."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list[Any]:
        return [getattr(self, name) for name in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in self.keys()]

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that hold a value, in order: `out.to_tuple()[0]` is the main output."""
        return tuple(self.values())

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                fields = [f.name for f in dataclasses.fields(self)]
                why = "was not computed" if key in fields else "is not a field"
                raise KeyError(f"{key!r} {why} of {type(self).__name__} (set: {self.keys()})")
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        """Iterates over the keys, as a dict does (so `dict(out)` and `{**out}` work)."""
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __array__(self, dtype: object = None, copy: object = None) -> NoReturn:
        """Refused: NumPy would otherwise make an array of the *field names* (iterating keys),
        and `out - reference` would compute garbage. Name the field: `np.asarray(out.logits)`."""
        raise TypeError(
            f"{type(self).__name__} is not an array; take a field: {', '.join(f'.{k}' for k in self.keys())}"
        )


@dataclass(eq=False)
class BaseModelOutput(ModelOutput):
    last_hidden_state: NDArray[np.floating]  # [B, L, D]
    hidden_states: Layers | None = None  # n_layers + 1 of [B, L, D]: embeddings first
    attentions: Layers | None = None  # n_layers of [B, H, L, L]


@dataclass(eq=False)
class BaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: NDArray[np.floating]  # [B, L, D]
    # [B, D]: tanh(dense(h[:, 0])); None when the checkpoint has no pooler (saved from a head
    # without one, e.g. BertForMaskedLM), where transformers would draw it at random
    pooler_output: NDArray[np.floating] | None = None
    hidden_states: Layers | None = None
    attentions: Layers | None = None


@dataclass(eq=False)
class BertForPreTrainingOutput(ModelOutput):
    prediction_logits: NDArray[np.floating]  # [B, L, V], or [N, V] for N selected positions
    seq_relationship_logits: NDArray[np.floating]  # [B, 2]: is-next, not-next
    hidden_states: Layers | None = None
    attentions: Layers | None = None


@dataclass(eq=False)
class MaskedLMOutput(ModelOutput):
    logits: NDArray[np.floating]  # [B, L, V], or [N, V] for N selected positions
    hidden_states: Layers | None = None
    attentions: Layers | None = None


@dataclass(eq=False)
class SequenceClassifierOutput(ModelOutput):
    logits: NDArray[np.floating]  # [B, C]
    hidden_states: Layers | None = None
    attentions: Layers | None = None


@dataclass(eq=False)
class TokenClassifierOutput(ModelOutput):
    logits: NDArray[np.floating]  # [B, L, C]
    hidden_states: Layers | None = None
    attentions: Layers | None = None


@dataclass(eq=False)
class QuestionAnsweringModelOutput(ModelOutput):
    start_logits: NDArray[np.floating]  # [B, L]
    end_logits: NDArray[np.floating]  # [B, L]
    hidden_states: Layers | None = None
    attentions: Layers | None = None


@dataclass(eq=False)
class MultipleChoiceModelOutput(ModelOutput):
    logits: NDArray[np.floating]  # [B, K]
    hidden_states: Layers | None = None  # of [B·K, L, D]: the choices run as one batch
    attentions: Layers | None = None  # of [B·K, H, L, L]


__all__ = [
    "BaseModelOutput",
    "BaseModelOutputWithPooling",
    "BertForPreTrainingOutput",
    "MaskedLMOutput",
    "ModelOutput",
    "MultipleChoiceModelOutput",
    "QuestionAnsweringModelOutput",
    "SequenceClassifierOutput",
    "TokenClassifierOutput",
]
