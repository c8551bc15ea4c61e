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

Nothing here reads or names a file outside the cache: a model id must be a Hub id
("name" or "org/name": ASCII letters, digits, `-`, `_`, `.`, no `--` or `..`); a revision
must be a 40-hex commit hash or a Hub ref name (`main`, `v1.0`, `refs/pr/1`: `/`-separated
parts that do not start with `.`); and a `refs/<revision>` file must hold a commit hash (at
most a few bytes of it are read). Anything else is an `InvalidModelReference`, which is a
ValueError and, so that callers that report "not found" report it too, a ModelNotFoundError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from numpy_distilbert.weights import (
    PICKLE_FILES,
    SAFETENSORS_FILE,
    SAFETENSORS_INDEX_FILE,
    pickle_refusal,
)

DEFAULT_MODEL_ID = "distilbert-base-multilingual-cased"
# Legacy ids that the Hub now serves under an organisation: a cache may hold either folder.
ID_ALIASES = {DEFAULT_MODEL_ID: f"distilbert/{DEFAULT_MODEL_ID}"}
DEFAULT_REVISION = "main"
# What a pipeline needs; `snapshot_download` fetches only these.
DOWNLOAD_PATTERNS = [
    "config.json", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors",
    "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
    # A sentence-transformers model's own pooling and normalisation.
    "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "*_Pooling/config.json",
]  # fmt: skip
# What a tokenizer alone needs (the `tokenize` command, AutoTokenizer): no weights.
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json")  # either one will do
TOKENIZER_PATTERNS = ["vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]

_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")
# Hub ids (huggingface_hub's `validate_repo_id`): "name" or "namespace/name", each part 1-96
# ASCII letters, digits, '-', '_' or '.', neither starting nor ending with '-' or '.'; no
# '--' or '..' anywhere (the cache folder joins parts with '--'), no trailing '.git'.
_ID_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,94}[A-Za-z0-9_])?"
_MODEL_ID = re.compile(rf"(?:{_ID_PART}/)?{_ID_PART}")
# A ref name as git and the Hub allow it, narrowed to what Hub names use: '/'-separated
# parts of ASCII letters, digits, '-', '_', '.', '+', none starting with '.' (so no '.' or
# '..' part, no hidden file) or ending with '.lock'; e.g. main, v1.0, refs/pr/1.
_REF_PART = r"[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]*"
_REVISION = re.compile(rf"{_REF_PART}(?:/{_REF_PART})*")
MAX_REVISION_CHARS = 255
MAX_REF_BYTES = 64  # a ref file holds a 40-character hash (and perhaps a newline)


class ModelNotFoundError(FileNotFoundError):
    """No directory, no cached snapshot and no download: the message says how to get the files."""


class InvalidModelReference(ModelNotFoundError, ValueError):
    """A model id or revision that cannot name anything in the cache (e.g. a path, `..`, '')."""


def is_model_id(text: str) -> bool:
    """True for a Hub model id: "name" or "org/name" by the Hub's rules."""
    return (
        bool(_MODEL_ID.fullmatch(text))
        and ".." not in text
        and "--" not in text
        and not text.endswith(".git")
    )


def check_revision(revision: str | None) -> str:
    """`revision`, checked to be a commit hash or a ref name; None means DEFAULT_REVISION."""
    if revision is None:
        return DEFAULT_REVISION
    if not isinstance(revision, str):
        raise TypeError(f"revision must be a string, got {type(revision).__name__}")
    if not (
        0 < len(revision) <= MAX_REVISION_CHARS
        and _REVISION.fullmatch(revision)
        and ".." not in revision
        and not any(part.endswith(".lock") for part in revision.split("/"))
    ):
        raise InvalidModelReference(
            f"revision {_short(revision)} is not a branch, tag or commit hash (e.g. 'main', "
            f"'v1.0', 'refs/pr/1' or 40 hex digits); a revision is a name, not a path"
        )
    return revision


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_ref(repo: Path, revision: str) -> str | None:
    """The commit hash `refs/<revision>` holds; None when there is no such ref.

    Reads at most MAX_REF_BYTES, refuses a ref that leads outside `refs/` (a symlink), and
    names what is wrong without echoing the file's content.
    """
    refs = repo / "refs"
    ref = refs / revision
    if not ref.is_file():
        return None
    if not ref.resolve().is_relative_to(refs.resolve()):
        raise ModelNotFoundError(f"{ref} leads outside {refs}; the cache is corrupt or tampered with")
    with ref.open("rb") as f:
        raw = f.read(MAX_REF_BYTES + 1)
    commit = raw.strip().decode("ascii", errors="replace")
    if len(raw) > MAX_REF_BYTES or not _COMMIT_HASH.fullmatch(commit):
        raise ModelNotFoundError(
            f"{ref} does not hold a commit hash (40 hex digits); the cache is corrupt or tampered "
            f"with. Delete {repo} and download the model again."
        )
    return commit


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
        raise pickle_refusal(directory, pickles)
    raise ModelNotFoundError(f"{directory} has no {SAFETENSORS_FILE} or {SAFETENSORS_INDEX_FILE}")


def check_tokenizer_dir(directory: Path) -> Path:
    """`directory` must hold a WordPiece vocabulary (vocab.txt or tokenizer.json)."""
    if any((directory / name).is_file() for name in TOKENIZER_FILES):
        return directory
    raise ModelNotFoundError(f"{directory} has no {' or '.join(TOKENIZER_FILES)}; it holds no tokenizer")


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or os.sep in model.strip("/").replace("/", "", 1) or (
        os.altsep is not None and os.altsep in model
    )


def cached_snapshot(model_id: str, revision: str | None = None, cache_dir: Path | None = None) -> Path | None:
    """The cached snapshot directory of `model_id` at `revision` (a branch, tag or commit hash).

    Returns None when the repository is not cached at all; raises ModelNotFoundError when it
    is, but the revision or its snapshot is missing (a partial or pruned cache) or a ref
    does not hold a commit hash; raises InvalidModelReference for an id or revision that
    is not a name (see the module docstring).
    """
    cache = hf_cache_dir() if cache_dir is None else cache_dir
    revision = check_revision(revision)
    if not is_model_id(model_id):
        raise InvalidModelReference(f"{_short(model_id)} is not a Hugging Face model id")
    candidates = [model_id] + ([ID_ALIASES[model_id]] if model_id in ID_ALIASES else [])
    problems = []
    for repo_id in candidates:
        repo = cache / ("models--" + repo_id.replace("/", "--"))
        if not repo.is_dir():
            continue
        commit = _read_ref(repo, revision)
        if commit is None and _COMMIT_HASH.fullmatch(revision):
            commit = revision
        if commit is None:
            problems.append(f"{repo} has no refs/{revision}")
            continue
        snapshot = repo / "snapshots" / commit
        if snapshot.is_dir():
            if not snapshot.resolve().is_relative_to(repo.resolve()):
                raise ModelNotFoundError(
                    f"{snapshot} leads outside {repo}; the cache is corrupt or tampered with"
                )
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
        f"To get the files: {extra if offer_extra else ''}`hf download {model_id}{rev}` "
        f"(with network access), or download config.json, model.safetensors, vocab.txt and "
        f"tokenizer_config.json from https://huggingface.co/{model_id} into a directory and pass its path."
    )


def _download(model_id: str, revision: str | None, patterns: list[str]) -> Path | None:
    """Download with huggingface_hub; None when it is not installed or offline mode is on."""
    if _offline():
        return None
    try:
        import huggingface_hub
    except ImportError:
        return None
    try:
        path = huggingface_hub.snapshot_download(
            model_id, revision=revision, allow_patterns=patterns
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
    return _resolve(model, revision, check_model_dir, DOWNLOAD_PATTERNS)


def resolve_tokenizer(model: str | Path | None, revision: str | None = None) -> Path:
    """A directory holding `model`'s tokenizer files, resolved as `resolve_model` resolves.

    Only vocab.txt (or tokenizer.json) is required, and a download fetches only the tokenizer
    files: no config.json, no weights.
    """
    return _resolve(model, revision, check_tokenizer_dir, TOKENIZER_PATTERNS)


def _resolve(
    model: str | Path | None, revision: str | None, check: Callable[[Path], Path], patterns: list[str]
) -> Path:
    """A local directory, else the cached snapshot, else a download; `check` vets the result."""
    if model is None:
        model = DEFAULT_MODEL_ID
    if not isinstance(model, (str, Path)):
        raise TypeError(f"model must be a directory path or a model id, got {type(model).__name__}")
    if isinstance(model, str) and not model.strip():
        # Path("") is the current directory: an empty --model must not load whatever is there.
        raise InvalidModelReference(
            f"model is empty ({model!r}); pass a model directory (use '.' for the current one) or a model id"
        )
    revision = check_revision(revision)
    local = Path(model).expanduser()
    if local.is_dir():
        return check(local)
    if local.exists():
        raise ModelNotFoundError(f"{local} is a file; pass the model's directory")
    text = str(model)
    if isinstance(model, Path) or _looks_like_path(text) or not is_model_id(text):
        raise ModelNotFoundError(
            f"model directory not found: {local} (and {text!r} is not a Hugging Face model id)"
        )
    snapshot = cached_snapshot(text, revision)
    if snapshot is None:
        snapshot = _download(text, revision, patterns)
    if snapshot is None:
        why = "offline mode (HF_HUB_OFFLINE) is on" if _offline() else "huggingface_hub is not installed"
        raise ModelNotFoundError(
            f"model {text!r} is neither a local directory nor in the Hugging Face cache "
            f"({hf_cache_dir()}), and {why}. " + _how_to_get(text, revision)
        )
    return check(snapshot)
