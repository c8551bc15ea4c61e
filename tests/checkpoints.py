"""Build reference checkpoints with transformers, for differential tests.

The real trained weights are not available where the tests run, so equivalence is
proven on checkpoints that transformers itself builds and saves: seeded, with *every*
parameter perturbed away from its initial value (LayerNorm gains and biases included,
which start at exactly 1 and 0 and would otherwise hide mistakes in them), then saved
with `save_pretrained(safe_serialization=True)`.

Import this module only from tests that already required torch and transformers
(see `conftest.require_module`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

REAL_SIZE = dict(
    vocab_size=119547, max_position_embeddings=512, n_layers=6, n_heads=12, dim=768, hidden_dim=3072
)


def perturb_(model, seed: int, scale: float = 0.05) -> None:
    """Add seeded noise to every parameter in place; LayerNorm gains stay near 1."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            param.add_(noise * scale)


def build_checkpoint(
    directory: str | Path,
    model_class: str = "DistilBertForMaskedLM",
    seed: int = 0,
    scale: float = 0.05,
    **config_overrides: Any,
):
    """Create `transformers.<model_class>(DistilBertConfig(**config_overrides))`, perturb it,
    save it to `directory` as safetensors, and return the model (eval mode, float32).

    `config_overrides` go straight to transformers' DistilBertConfig (e.g. dim, n_layers,
    activation, sinusoidal_pos_embds, id2label).
    """
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.DistilBertConfig(**config_overrides)
    model = getattr(transformers, model_class)(config).eval()
    perturb_(model, seed, scale)
    directory = Path(directory)
    model.save_pretrained(directory, safe_serialization=True)
    return model


# bert-base-multilingual-cased, DistilmBERT's teacher: transformers' BertConfig names.
BERT_REAL_SIZE = dict(
    vocab_size=119547, max_position_embeddings=512, num_hidden_layers=12, num_attention_heads=12,
    hidden_size=768, intermediate_size=3072, type_vocab_size=2,
)  # fmt: skip


def build_bert_checkpoint(
    directory: str | Path,
    model_class: str = "BertForPreTraining",
    seed: int = 0,
    scale: float = 0.05,
    scale_up: Callable[[Any], Any] | None = None,
    **config_overrides: Any,
):
    """As `build_checkpoint`, for `transformers.<model_class>(BertConfig(**config_overrides))`.

    `scale_up(model)` runs (under no_grad) after the perturbation and before saving, e.g. to
    make a random MLM's distributions peaked. transformers 5 saves a tied MLM decoder without
    its weight (the word embeddings are it).
    """
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.BertConfig(**config_overrides)
    model = getattr(transformers, model_class)(config).eval()
    perturb_(model, seed, scale)
    if scale_up is not None:
        with torch.no_grad():
            scale_up(model)
    model.save_pretrained(Path(directory), safe_serialization=True)
    return model


def load_reference(directory: str | Path, model_class: str = "DistilBertForMaskedLM", **kwargs):
    """Reload a saved checkpoint with transformers (eval mode)."""
    import transformers

    return getattr(transformers, model_class).from_pretrained(directory, **kwargs).eval()


def saved_config(directory: str | Path) -> dict:
    return json.loads((Path(directory) / "config.json").read_text())
