"""Write the frozen reference fixtures for tests/test_frozen.py (needs torch + transformers).

    python scripts/make_fixtures.py            # writes tests/fixtures/model/*.npz

Like llm.c's reference dumps: a tiny seeded transformers DistilBertForMaskedLM or
BertForPreTraining (every parameter perturbed, as tests/checkpoints.py does) is run on fixed
padded inputs (BERT's with token types 0 and 1), and
everything is stored in one versioned .npz per case: the weights (under their transformers
names, so the test can write a safetensors file from them), config.json, inputs, masks and
every intermediate: the embeddings, each layer's attention probabilities (eager attention,
which is numpy-distilbert's semantics for fully padded rows) and output, the logits (BERT's
MLM logits, and its pooler output and NSP logits too); in
float32 and, from the same weights in float64, in float64. The torch, transformers and
numpy versions that produced them are recorded.

tests/test_frozen.py then checks numpy-distilbert against these files with numpy and
safetensors alone, so the core suite proves equivalence on a machine without torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "tests" / "fixtures" / "model"
# 2: `architecture` (the transformers class) and `token_type_ids` added, BERT cases with
# `pooler_output` and `seq_relationship_logits` stages.
FORMAT_VERSION = 2

CASES = {
    # learned positions, gelu: the real model's kinds of layers
    "tiny_gelu": dict(
        config=dict(vocab_size=64, max_position_embeddings=16, n_layers=2, n_heads=4, dim=32, hidden_dim=48,
                    activation="gelu", sinusoidal_pos_embds=False),
        seed=1234,
    ),
    # the other options: relu, sinusoidal positions, odd widths
    "tiny_relu_sinusoidal": dict(
        config=dict(vocab_size=37, max_position_embeddings=12, n_layers=3, n_heads=3, dim=15, hidden_dim=29,
                    activation="relu", sinusoidal_pos_embds=True),
        seed=99,
    ),
    # BERT (DistilmBERT's teacher's kind): token types, pooler, NSP head, gelu_new, eps 1e-6
    "tiny_bert_pretraining": dict(
        architecture="BertForPreTraining",
        config=dict(vocab_size=50, max_position_embeddings=14, num_hidden_layers=2, num_attention_heads=2,
                    hidden_size=14, intermediate_size=23, hidden_act="gelu_new", type_vocab_size=2,
                    layer_norm_eps=1e-6),
        seed=4321,
    ),
}  # fmt: skip
DEFAULT_ARCHITECTURE = "DistilBertForMaskedLM"


def make_inputs(vocab_size: int, max_len: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ragged rows padded to max_len: full, prefix-padded, scattered holes, and all padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab_size, size=(5, max_len)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, max_len // 2 :] = 0
    mask[2, 3:] = 0
    mask[3] = rng.integers(0, 2, size=max_len)
    mask[3, 0] = 1
    mask[4] = 0  # fully padded
    ids[mask == 0] = 0
    ids[4] = rng.integers(0, vocab_size, size=max_len)  # padding ids need not be 0
    return ids, mask


def make_token_types(mask: np.ndarray) -> np.ndarray:
    """Type 1 on the second half of each row's tokens, 0 on the first half and on padding."""
    types = np.zeros_like(mask)
    types[:, mask.shape[1] // 2 :] = 1
    types[mask == 0] = 0
    return types


def run(torch, model, ids, mask, types=None) -> dict[str, np.ndarray]:
    model.set_attn_implementation("eager")
    extra = {} if types is None else {"token_type_ids": torch.from_numpy(types)}
    with torch.no_grad():
        out = model(
            torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            output_hidden_states=True,
            output_attentions=True,
            **extra,
        )
    if hasattr(out, "prediction_logits"):  # BertForPreTraining
        arrays = {"embeddings": out.hidden_states[0].numpy(), "logits": out.prediction_logits.numpy(),
                  "seq_relationship_logits": out.seq_relationship_logits.numpy()}  # fmt: skip
        with torch.no_grad():
            arrays["pooler_output"] = model.bert.pooler(out.hidden_states[-1]).numpy()
    else:
        arrays = {"embeddings": out.hidden_states[0].numpy(), "logits": out.logits.numpy()}
    for i, (hidden, attention) in enumerate(zip(out.hidden_states[1:], out.attentions, strict=True)):
        arrays[f"layer{i}_attention"] = attention.numpy()
        arrays[f"layer{i}_output"] = hidden.numpy()
    return arrays


def make_case(name: str, spec: dict) -> Path:
    import torch
    import transformers

    sys.path.insert(0, str(REPO / "tests"))
    from checkpoints import build_bert_checkpoint, build_checkpoint

    torch.manual_seed(spec["seed"])
    architecture = spec.get("architecture", DEFAULT_ARCHITECTURE)
    bert = architecture.startswith("Bert")
    with tempfile.TemporaryDirectory() as directory:
        if bert:
            model = build_bert_checkpoint(directory, architecture, seed=spec["seed"], **spec["config"])
        else:
            model = build_checkpoint(directory, seed=spec["seed"], **spec["config"])
        config_json = (Path(directory) / "config.json").read_text(encoding="utf-8")
    tied = ("vocab_projector.weight", "cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
    weights = {f"weight/{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()
               if k not in tied}  # tied to the word embeddings (and the bias): not saved  # fmt: skip
    ids, mask = make_inputs(
        spec["config"]["vocab_size"], spec["config"]["max_position_embeddings"], spec["seed"]
    )
    types = make_token_types(mask) if bert else np.zeros_like(mask)

    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "versions": np.array(json.dumps({
            "torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__,
            "attention": "eager",
        })),
        "config_json": np.array(config_json),
        "architecture": np.array(architecture),
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": types,
        **weights,
    }  # fmt: skip
    for key, value in run(torch, model, ids, mask, types if bert else None).items():
        arrays[f"fp32/{key}"] = value
    for key, value in run(torch, model.double(), ids, mask, types if bert else None).items():
        arrays[f"fp64/{key}"] = value

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.v{FORMAT_VERSION}.npz"
    np.savez_compressed(path, **arrays)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES), help="which cases (default: all)")
    args = parser.parse_args(argv)
    for name in args.cases:
        path = make_case(name, CASES[name])
        print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
