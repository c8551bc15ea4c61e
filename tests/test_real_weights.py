"""The real trained weights, where present: the model card's fill-mask example.

Found through `NUMPY_DISTILBERT_REAL_MODEL=dir`, or in the Hugging Face cache by the
package's own offline search (`numpy_distilbert.hub.cached_snapshot`). Real weights are
never required: elsewhere these tests skip (a plain skip, also in CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from numpy_distilbert.hub import DEFAULT_MODEL_ID, ModelNotFoundError, cached_snapshot, check_model_dir
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


def find_real_model() -> Path | None:
    """The directory holding the real weights, or None: the same look-up the notebooks use.

    `$NUMPY_DISTILBERT_REAL_MODEL`, else the package's own offline Hugging Face cache search
    (`hub.cached_snapshot`: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub, refs, and
    the hub's newer `distilbert/` name). A directory without config.json and safetensors
    weights does not count.
    """
    explicit = os.environ.get("NUMPY_DISTILBERT_REAL_MODEL")
    try:
        if explicit:
            return check_model_dir(Path(explicit))
        snapshot = cached_snapshot(DEFAULT_MODEL_ID)
        return None if snapshot is None else check_model_dir(snapshot)
    except (ModelNotFoundError, ValueError):
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
    logits = model(IDS, positions=([0], [MASK_POSITION])).logits[0].astype(np.float64)  # [V]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top5 = np.argsort(-probs, kind="stable")[:5]
    found = [(int(i), round(float(probs[i]), 4)) for i in top5]
    print("top 5:", found)
    assert [i for i, _ in found] == [i for i, _, _ in MODEL_CARD_TOP5]
    assert [p for _, p in found] == [p for _, _, p in MODEL_CARD_TOP5]


def test_model_card_fill_mask_float64(real_model_dir):
    model = DistilBertForMaskedLM.from_pretrained(real_model_dir, dtype=np.float64)
    logits = model(IDS, positions=([0], [MASK_POSITION])).logits[0]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top5 = np.argsort(-probs, kind="stable")[:5]
    assert [int(i) for i in top5] == [i for i, _, _ in MODEL_CARD_TOP5]
    assert [round(float(probs[i]), 4) for i in top5] == [p for _, _, p in MODEL_CARD_TOP5]


# ---------------------------------------------- the discovery itself (always runs)
@pytest.fixture
def no_caches(monkeypatch, tmp_path):
    """An environment with no real model anywhere; HOME points at an empty directory."""
    for var in ("NUMPY_DISTILBERT_REAL_MODEL", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME",
                "XDG_CACHE_HOME"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def fake_snapshot(cache: Path, complete: bool = True) -> Path:
    repo = cache / f"models--{REPO_ID}"
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (snapshot / "config.json").write_text("{}")
    if complete:
        (snapshot / "model.safetensors").write_bytes(b"")
    return snapshot


def test_discovery_env_var(no_caches, tmp_path):
    no_caches.setenv("NUMPY_DISTILBERT_REAL_MODEL", str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert find_real_model() is None
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert find_real_model() == tmp_path


def test_discovery_hf_caches(no_caches, tmp_path):
    assert find_real_model() is None
    snapshot = fake_snapshot(tmp_path / "home" / ".cache" / "huggingface" / "hub")
    assert find_real_model() == snapshot
    snapshot = fake_snapshot(tmp_path / "hf_home" / "hub")
    no_caches.setenv("HF_HOME", str(tmp_path / "hf_home"))
    assert find_real_model() == snapshot
    snapshot = fake_snapshot(tmp_path / "hub_cache")
    no_caches.setenv("HF_HUB_CACHE", str(tmp_path / "hub_cache"))
    assert find_real_model() == snapshot


def test_discovery_ignores_incomplete_snapshots(no_caches, tmp_path):
    fake_snapshot(tmp_path / "hub", complete=False)
    no_caches.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert find_real_model() is None
