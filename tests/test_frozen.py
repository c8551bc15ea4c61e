"""The frozen tier: numpy-distilbert against transformers outputs stored in tests/fixtures/model.

Runs with numpy and safetensors alone (no torch, no transformers), so equivalence is
still checked on a machine without the reference installed. The .npz files are written
by `scripts/make_fixtures.py` from a tiny seeded transformers model (eager attention:
DistilBertForMaskedLM, or BertForPreTraining with token types) and hold the weights,
config.json, inputs, masks and every intermediate in float32 and float64; see that script.
Each stage is compared and its max abs/rel error printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from numpy_distilbert import tolerances
from numpy_distilbert.bert import BertForPreTraining
from numpy_distilbert.model import DistilBertForMaskedLM

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "model"
FORMAT_VERSION = 2  # the layout this test reads; scripts/make_fixtures.py writes the same
CASES = sorted(FIXTURES.glob(f"*.v{FORMAT_VERSION}.npz"))
TOLERANCES = {  # (stage kind, dtype) -> max abs difference
    ("hidden", "fp32"): tolerances.FP32_HIDDEN, ("attention", "fp32"): tolerances.FP32_ATTENTION,
    ("logits", "fp32"): tolerances.FP32_LOGITS,
    ("hidden", "fp64"): tolerances.FP64, ("attention", "fp64"): tolerances.FP64,
    ("logits", "fp64"): tolerances.FP64,
}  # fmt: skip
MODEL_CLASSES = {"DistilBertForMaskedLM": DistilBertForMaskedLM, "BertForPreTraining": BertForPreTraining}


def encoder_of(model):
    """The bare encoder inside a head model: `.distilbert` or `.bert`."""
    return model.bert if isinstance(model, BertForPreTraining) else model.distilbert


def run_model(model, ids, mask, types, **kwargs):
    """The head's main logits (MLM), whichever family; BERT also reads the token types."""
    if isinstance(model, BertForPreTraining):
        return model(ids, mask, types, **kwargs).prediction_logits
    return model(ids, mask, **kwargs).logits


def test_fixtures_are_present():
    """The fixtures are committed; an empty glob must not pass silently."""
    assert len(CASES) >= 3, f"no frozen fixtures in {FIXTURES}; run scripts/make_fixtures.py"
    architectures = set()
    for path in CASES:
        with np.load(path, allow_pickle=False) as data:
            architectures.add(str(data["architecture"]))
    assert architectures == set(MODEL_CLASSES), architectures


def load_case(path: Path, directory: Path) -> tuple[dict, Path]:
    """The fixture's arrays, and a model directory written from its weights and config."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    assert int(arrays["format_version"]) == FORMAT_VERSION
    weights = {
        key.removeprefix("weight/"): value for key, value in arrays.items() if key.startswith("weight/")
    }
    save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(str(arrays["config_json"]), encoding="utf-8")
    return arrays, directory


def stage_error(name: str, ours: np.ndarray, theirs: np.ndarray) -> float:
    assert ours.shape == theirs.shape, f"{name}: {ours.shape} vs {theirs.shape}"
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    rel = float(np.max(diff / np.maximum(np.abs(theirs.astype(np.float64)), 1e-6)))
    print(f"{name}: max abs diff {diff.max():.2e}, max rel diff {rel:.2e}")
    return float(diff.max())


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
@pytest.mark.parametrize("precision", ["fp32", "fp64"])
def test_every_stage_matches_the_frozen_reference(path, precision, tmp_path):
    arrays, directory = load_case(path, tmp_path)
    versions = json.loads(str(arrays["versions"]))
    print(f"\n{path.name} [{precision}], reference: transformers {versions['transformers']}, "
          f"torch {versions['torch']}, {versions['attention']} attention")  # fmt: skip
    dtype = np.float32 if precision == "fp32" else np.float64
    model = MODEL_CLASSES[str(arrays["architecture"])].from_pretrained(directory, dtype=dtype)
    ids, mask, types = arrays["input_ids"], arrays["attention_mask"], arrays["token_type_ids"]
    assert not mask[-1].any(), "the fixture's last row should be all padding"
    bert = isinstance(model, BertForPreTraining)
    encoder = encoder_of(model)
    out = (encoder(ids, mask, types, output_hidden_states=True, output_attentions=True) if bert
           else encoder(ids, mask, output_hidden_states=True, output_attentions=True))  # fmt: skip
    n_layers = model.config.n_layers
    assert len(out.hidden_states) == n_layers + 1

    checks = [("hidden", "embeddings", out.hidden_states[0])]
    for i in range(n_layers):
        checks.append(("attention", f"layer{i}_attention", out.attentions[i]))
        checks.append(("hidden", f"layer{i}_output", out.hidden_states[i + 1]))
    checks.append(("logits", "logits", run_model(model, ids, mask, types)))
    if bert:
        assert types[mask == 1].min() == 0 and types[mask == 1].max() == 1, "both token types"
        checks.append(("hidden", "pooler_output", out.pooler_output))
        checks.append(("logits", "seq_relationship_logits", model(ids, mask, types).seq_relationship_logits))
    failures = []
    for kind, key, ours in checks:
        assert ours.dtype == dtype, key
        diff = stage_error(f"{precision}/{key}", ours, arrays[f"{precision}/{key}"])
        if not diff <= TOLERANCES[kind, precision]:
            failures.append(f"{key}: {diff:.2e} > {TOLERANCES[kind, precision]:.0e}")
    assert not failures, failures


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_positions_path_matches_frozen_logits(path, tmp_path):
    arrays, directory = load_case(path, tmp_path)
    model = MODEL_CLASSES[str(arrays["architecture"])].from_pretrained(directory)
    mask = arrays["attention_mask"].astype(bool)
    selected = run_model(model, arrays["input_ids"], mask, arrays["token_type_ids"], positions=mask)
    assert stage_error("positions path", selected, arrays["fp32/logits"][mask]) <= tolerances.FP32_LOGITS


def test_runs_without_torch():
    """The frozen tier itself must not need torch: rerun it in a process where torch cannot import."""
    code = (
        "import sys\n"
        "for name in ('torch', 'transformers'):\n"
        "    sys.modules[name] = None  # any import of them now raises ImportError\n"
        "import pytest\n"
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', {__file__!r}, '-k', 'not without_torch']))\n"
    )
    env = {**os.environ, "NUMPY_DISTILBERT_REQUIRE_REFERENCE": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
