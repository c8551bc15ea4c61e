"""Finding a model's files: a local directory, the Hugging Face cache, or a download.

`resolve_model(model, revision=None)` tries, in order:

1. `model` as a local directory;
2. `model` as a model id in the Hugging Face cache, read directly, offline and without any
   extra dependency. The cache lays a repository out as

       <cache>/models--<org>--<name>/refs/<revision>          (a file holding a commit hash)
       <cache>/models--<org>--<name>/snapshots/<hash>/...     (the files of that commit)

   where <cache> is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
   `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`;
3. a download with `huggingface_hub.snapshot_download`, when the optional `hub` extra is
   installed and `HF_HUB_OFFLINE` is not set (imported only then, never at import time).

Failing all three, `ModelNotFoundError` says where it looked and how to get the files.
A directory holding only PyTorch pickle weights is refused with the reason and the fix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from numpy_distilbert.weights import (
    PICKLE_FILES,
    SAFETENSORS_FILE,
    SAFETENSORS_INDEX_FILE,
    CheckpointError,
)

DEFAULT_MODEL_ID = "distilbert-base-multilingual-cased"
# Legacy ids that the Hub now serves under an organisation: a cache may hold either folder.
ID_ALIASES = {DEFAULT_MODEL_ID: f"distilbert/{DEFAULT_MODEL_ID}"}
DEFAULT_REVISION = "main"
# What a pipeline needs; `snapshot_download` fetches only these.
DOWNLOAD_PATTERNS = [
    "config.json", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors",
    "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
]  # fmt: skip

_COMMIT_HASH = re.compile(r"^[0-9a-f]{40}$")
_MODEL_ID = re.compile(r"^(?:[\w.\-]+/)?[\w.\-]+$")


class ModelNotFoundError(FileNotFoundError):
    """No directory, no cached snapshot and no download: the message says how to get the files."""


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, with the same environment variables huggingface_hub reads."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_model_dir(directory: Path) -> Path:
    """`directory` must hold config.json and safetensors weights; pickle-only is refused with why."""
    if not (directory / "config.json").is_file():
        raise ModelNotFoundError(f"{directory} has no config.json; it is not a model directory")
    if (directory / SAFETENSORS_FILE).is_file() or (directory / SAFETENSORS_INDEX_FILE).is_file():
        return directory
    pickles = [name for name in PICKLE_FILES if (directory / name).is_file()]
    if pickles:
        raise CheckpointError(
            f"{directory} holds only PyTorch pickle weights ({', '.join(pickles)}). numpy-distilbert "
            f"never unpickles: loading a pickle can run arbitrary code. Convert once, where torch and "
            f"transformers are installed: `AutoModel...from_pretrained(dir).save_pretrained(dir, "
            f"safe_serialization=True)` writes {SAFETENSORS_FILE}; or download the safetensors file "
            f"from the Hub, which serves it for most models."
        )
    raise ModelNotFoundError(f"{directory} has no {SAFETENSORS_FILE} or {SAFETENSORS_INDEX_FILE}")


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or os.sep in model.strip("/").replace("/", "", 1) or (
        os.altsep is not None and os.altsep in model
    )


def cached_snapshot(model_id: str, revision: str | None = None, cache_dir: Path | None = None) -> Path | None:
    """The cached snapshot directory of `model_id` at `revision` (a branch, tag or commit hash).

    Returns None when the repository is not cached at all; raises ModelNotFoundError when it
    is, but the revision or its snapshot is missing (a partial or pruned cache).
    """
    cache = hf_cache_dir() if cache_dir is None else cache_dir
    revision = revision or DEFAULT_REVISION
    candidates = [model_id] + ([ID_ALIASES[model_id]] if model_id in ID_ALIASES else [])
    problems = []
    for repo_id in candidates:
        repo = cache / ("models--" + repo_id.replace("/", "--"))
        if not repo.is_dir():
            continue
        ref = repo / "refs" / revision
        if ref.is_file():
            commit = ref.read_text(encoding="utf-8").strip()
        elif _COMMIT_HASH.match(revision):
            commit = revision
        else:
            problems.append(f"{repo} has no refs/{revision}")
            continue
        snapshot = repo / "snapshots" / commit
        if snapshot.is_dir():
            return snapshot
        problems.append(f"{repo}: revision {revision!r} -> {commit}, but snapshots/{commit} is missing")
    if problems:
        raise ModelNotFoundError(
            f"model {model_id!r} is in the Hugging Face cache but not usable: {'; '.join(problems)}. "
            + _how_to_get(model_id, revision)
        )
    return None


def _how_to_get(model_id: str, revision: str | None, offer_extra: bool = True) -> str:
    rev = f" --revision {revision}" if revision and revision != DEFAULT_REVISION else ""
    extra = "`pip install 'numpy-distilbert[hub]'` and run again online (it downloads into the cache), or "
    return (
        f"To get the files: {extra if offer_extra else ''}`huggingface-cli download {model_id}{rev}` "
        f"(with network access), or download config.json, model.safetensors, vocab.txt and "
        f"tokenizer_config.json from https://huggingface.co/{model_id} into a directory and pass its path."
    )


def _download(model_id: str, revision: str | None) -> Path | None:
    """Download with huggingface_hub; None when it is not installed or offline mode is on."""
    if _offline():
        return None
    try:
        import huggingface_hub
    except ImportError:
        return None
    try:
        path = huggingface_hub.snapshot_download(
            model_id, revision=revision, allow_patterns=DOWNLOAD_PATTERNS
        )
    except Exception as exc:  # network, auth, missing repo: all mean "not found here"
        raise ModelNotFoundError(
            f"could not download {model_id!r} with huggingface_hub ({type(exc).__name__}: {exc}). "
            + _how_to_get(model_id, revision, offer_extra=False)
        ) from exc
    return Path(path)


def resolve_model(model: str | Path | None, revision: str | None = None) -> Path:
    """A directory holding `model`'s config.json and safetensors weights (see the module docstring).

    `model`: a directory, a model id ("org/name" or a legacy "name"), or None for
    `DEFAULT_MODEL_ID`. `revision`: branch, tag or commit hash for model ids (default "main").
    """
    if model is None:
        model = DEFAULT_MODEL_ID
    if not isinstance(model, (str, Path)):
        raise TypeError(f"model must be a directory path or a model id, got {type(model).__name__}")
    local = Path(model).expanduser()
    if local.is_dir():
        return check_model_dir(local)
    if local.exists():
        raise ModelNotFoundError(f"{local} is a file; pass the model's directory")
    text = str(model)
    if isinstance(model, Path) or _looks_like_path(text) or not _MODEL_ID.match(text):
        raise ModelNotFoundError(
            f"model directory not found: {local} (and {text!r} is not a Hugging Face model id)"
        )
    snapshot = cached_snapshot(text, revision)
    if snapshot is None:
        snapshot = _download(text, revision)
    if snapshot is None:
        why = "offline mode (HF_HUB_OFFLINE) is on" if _offline() else "huggingface_hub is not installed"
        raise ModelNotFoundError(
            f"model {text!r} is neither a local directory nor in the Hugging Face cache "
            f"({hf_cache_dir()}), and {why}. " + _how_to_get(text, revision)
        )
    return check_model_dir(snapshot)
