"""The real trained weights, where present: the model card's fill-mask example.

Found through `NUMPY_DISTILBERT_REAL_MODEL=dir`, or in the Hugging Face cache
($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub) as
models--distilbert-base-multilingual-cased/snapshots/*/ with config.json and
model.safetensors. Real weights are never required: elsewhere these tests skip
(a plain skip, also in CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from numpy_distilbert.model import DistilBertForMaskedLM

REPO_ID = "distilbert-base-multilingual-cased"
# "Hello I'm a [MASK] model." as the real tokenizer encodes it; [MASK] (103) at position 6.
IDS = [101, 31178, 146, 112, 181, 169, 103, 13192, 119, 102]
MASK_POSITION = 6
# The model card's top 5: (token id, token, score rounded to 4 decimals).
MODEL_CARD_TOP5 = [
    (37859, "virtual", 0.0408),
    (22185, "big", 0.0200),
    (31178, "Hello", 0.0187),
    (13192, "model", 0.0174),
    (43477, "perfect", 0.0142),
]


def _complete(directory: Path) -> bool:
    return (directory / "config.json").is_file() and (directory / "model.safetensors").is_file()


def find_real_model(environ=os.environ, home: Path | None = None) -> Path | None:
    """The directory holding the real weights, or None."""
    if environ.get("NUMPY_DISTILBERT_REAL_MODEL"):
        directory = Path(environ["NUMPY_DISTILBERT_REAL_MODEL"])
        return directory if _complete(directory) else None
    home = Path.home() if home is None else home
    caches = []
    if environ.get("HF_HUB_CACHE"):
        caches.append(Path(environ["HF_HUB_CACHE"]))
    if environ.get("HF_HOME"):
        caches.append(Path(environ["HF_HOME"]) / "hub")
    caches.append(home / ".cache" / "huggingface" / "hub")
    for cache in caches:
        snapshots = cache / f"models--{REPO_ID}" / "snapshots"
        for snapshot in sorted(snapshots.glob("*/")) if snapshots.is_dir() else []:
            if _complete(snapshot):
                return snapshot
    return None


@pytest.fixture(scope="module")
def real_model_dir() -> Path:
    directory = find_real_model()
    if directory is None:
        pytest.skip(
            f"real {REPO_ID} weights not found (set NUMPY_DISTILBERT_REAL_MODEL or put them in the "
            f"Hugging Face cache); they are optional"
        )
    return directory


def test_model_card_fill_mask(real_model_dir):
    model = DistilBertForMaskedLM.from_pretrained(real_model_dir)
    logits = model(IDS, positions=([0], [MASK_POSITION]))[0].astype(np.float64)  # [V]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top5 = np.argsort(-probs, kind="stable")[:5]
    found = [(int(i), round(float(probs[i]), 4)) for i in top5]
    print("top 5:", found)
    assert [i for i, _ in found] == [i for i, _, _ in MODEL_CARD_TOP5]
    assert [p for _, p in found] == [p for _, _, p in MODEL_CARD_TOP5]


def test_model_card_fill_mask_float64(real_model_dir):
    model = DistilBertForMaskedLM.from_pretrained(real_model_dir, dtype=np.float64)
    logits = model(IDS, positions=([0], [MASK_POSITION]))[0]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top5 = np.argsort(-probs, kind="stable")[:5]
    assert [int(i) for i in top5] == [i for i, _, _ in MODEL_CARD_TOP5]
    assert [round(float(probs[i]), 4) for i in top5] == [p for _, _, p in MODEL_CARD_TOP5]


# ---------------------------------------------- the discovery itself (always runs)
def fake_snapshot(cache: Path, complete: bool = True) -> Path:
    snapshot = cache / f"models--{REPO_ID}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    if complete:
        (snapshot / "model.safetensors").write_bytes(b"")
    return snapshot


def test_discovery_env_var(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert find_real_model({"NUMPY_DISTILBERT_REAL_MODEL": str(tmp_path)}, home=tmp_path) is None
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert find_real_model({"NUMPY_DISTILBERT_REAL_MODEL": str(tmp_path)}, home=tmp_path) == tmp_path


def test_discovery_hf_caches(tmp_path):
    empty_home = tmp_path / "home"
    assert find_real_model({}, home=empty_home) is None
    snapshot = fake_snapshot(tmp_path / "hub_cache")
    assert find_real_model({"HF_HUB_CACHE": str(tmp_path / "hub_cache")}, home=empty_home) == snapshot
    snapshot = fake_snapshot(tmp_path / "hf_home" / "hub")
    assert find_real_model({"HF_HOME": str(tmp_path / "hf_home")}, home=empty_home) == snapshot
    snapshot = fake_snapshot(empty_home / ".cache" / "huggingface" / "hub")
    assert find_real_model({}, home=empty_home) == snapshot


def test_discovery_ignores_incomplete_snapshots(tmp_path):
    fake_snapshot(tmp_path / "hub", complete=False)
    assert find_real_model({"HF_HUB_CACHE": str(tmp_path / "hub")}, home=tmp_path / "home") is None
