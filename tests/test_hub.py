"""Model resolution: local directories, a fake Hugging Face cache, downloads, and refusals.

The cache layout is built by hand in tmp dirs (models--org--name/{refs,snapshots}), the
environment variables are monkeypatched, and huggingface_hub is made unimportable or
replaced where a test is about the download step; nothing touches the network.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from numpy_distilbert import hub
from numpy_distilbert.weights import CheckpointError

HASH_A = "a" * 40
HASH_B = "b" * 40
ENV_VARS = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HF_HUB_OFFLINE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.cache/huggingface/hub is empty here


@pytest.fixture
def no_hub(monkeypatch):
    """huggingface_hub unimportable: `import huggingface_hub` raises ImportError."""
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)


def _model_files(directory: Path, weights: str = "model.safetensors") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text("{}")
    (directory / weights).write_bytes(b"")
    return directory


def _cache_repo(cache: Path, repo_id: str, refs: dict[str, str], snapshots: list[str]) -> Path:
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    for name, commit in refs.items():
        (repo / "refs" / name).write_text(commit)  # huggingface_hub writes no trailing newline
    for commit in snapshots:
        _model_files(repo / "snapshots" / commit)
    return repo


def test_local_directory(tmp_path):
    model = _model_files(tmp_path / "model")
    assert hub.resolve_model(model) == model
    assert hub.resolve_model(str(model)) == model


def test_cache_via_hf_hub_cache_with_refs(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    repo = _cache_repo(cache, "org/name", {"main": HASH_A, "v2": HASH_B}, [HASH_A, HASH_B])
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert hub.resolve_model("org/name") == repo / "snapshots" / HASH_A
    assert hub.resolve_model("org/name", revision="v2") == repo / "snapshots" / HASH_B
    assert hub.resolve_model("org/name", revision=HASH_B) == repo / "snapshots" / HASH_B


def test_ref_with_trailing_newline(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    repo = _cache_repo(cache, "org/name", {}, [HASH_A])
    (repo / "refs" / "main").write_text(HASH_A + "\n")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert hub.resolve_model("org/name") == repo / "snapshots" / HASH_A


def test_hf_home(tmp_path, monkeypatch):
    home = tmp_path / "hf_home"
    repo = _cache_repo(home / "hub", "org/name", {"main": HASH_A}, [HASH_A])
    monkeypatch.setenv("HF_HOME", str(home))
    assert hub.resolve_model("org/name") == repo / "snapshots" / HASH_A


def test_hf_hub_cache_takes_precedence_over_hf_home(tmp_path, monkeypatch):
    home, cache = tmp_path / "hf_home", tmp_path / "cache"
    _cache_repo(home / "hub", "org/name", {"main": HASH_A}, [HASH_A])
    in_cache = _cache_repo(cache, "org/name", {"main": HASH_B}, [HASH_B])
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert hub.hf_cache_dir() == cache
    assert hub.resolve_model("org/name") == in_cache / "snapshots" / HASH_B


def test_default_cache_location_under_home(tmp_path):
    repo = _cache_repo(tmp_path / "home" / ".cache" / "huggingface" / "hub", "org/name",
                       {"main": HASH_A}, [HASH_A])  # fmt: skip
    assert hub.resolve_model("org/name") == repo / "snapshots" / HASH_A


def test_default_model_id_and_its_org_alias(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert hub.DEFAULT_MODEL_ID == "distilbert-base-multilingual-cased"
    # The Hub now serves the legacy id under the `distilbert` organisation; either cache folder works.
    repo = _cache_repo(cache, "distilbert/distilbert-base-multilingual-cased", {"main": HASH_A}, [HASH_A])
    assert hub.resolve_model(None) == repo / "snapshots" / HASH_A
    legacy = _cache_repo(cache, "distilbert-base-multilingual-cased", {"main": HASH_B}, [HASH_B])
    assert hub.resolve_model(None) == legacy / "snapshots" / HASH_B


def test_missing_snapshot_is_reported(tmp_path, monkeypatch, no_hub):
    cache = tmp_path / "cache"
    _cache_repo(cache, "org/name", {"main": HASH_A}, [])
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(hub.ModelNotFoundError, match=f"snapshots/{HASH_A} is missing"):
        hub.resolve_model("org/name")


def test_missing_ref_is_reported(tmp_path, monkeypatch, no_hub):
    cache = tmp_path / "cache"
    _cache_repo(cache, "org/name", {"main": HASH_A}, [HASH_A])
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(hub.ModelNotFoundError, match="no refs/v9"):
        hub.resolve_model("org/name", revision="v9")


def test_not_found_says_how_to_get_it(tmp_path, monkeypatch, no_hub):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(hub.ModelNotFoundError) as info:
        hub.resolve_model("org/name")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "huggingface_hub is not installed" in message
    assert "pip install 'numpy-distilbert[hub]'" in message
    assert "hf download org/name" in message  # huggingface_hub 1.x ships `hf`, not `huggingface-cli`
    assert "https://huggingface.co/org/name" in message
    assert str(tmp_path / "empty") in message


def test_offline_mode_skips_the_download(tmp_path, monkeypatch):
    called = []
    fake = types.ModuleType("huggingface_hub")
    fake.snapshot_download = lambda *a, **k: called.append(a)  # must not be reached
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.ModelNotFoundError, match="offline mode"):
        hub.resolve_model("org/name")
    assert called == []


def test_download_through_huggingface_hub(tmp_path, monkeypatch):
    downloaded = _model_files(tmp_path / "downloaded")
    calls = []

    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return str(downloaded)

    fake = types.ModuleType("huggingface_hub")
    fake.snapshot_download = snapshot_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert hub.resolve_model("org/name", revision="v1") == downloaded
    assert calls[0][:2] == ("org/name", "v1")
    assert "model.safetensors" in calls[0][2] and "vocab.txt" in calls[0][2]


def test_failed_download_is_a_not_found_error(tmp_path, monkeypatch):
    def snapshot_download(*args, **kwargs):
        raise OSError("no network")

    fake = types.ModuleType("huggingface_hub")
    fake.snapshot_download = snapshot_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(hub.ModelNotFoundError, match=r"could not download 'org/name'.*no network"):
        hub.resolve_model("org/name")


def test_import_does_not_load_huggingface_hub():
    import subprocess

    code = "import sys, numpy_distilbert.hub, numpy_distilbert; print('huggingface_hub' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_pickle_only_directory_is_refused_with_the_reason(tmp_path):
    model = _model_files(tmp_path / "model", weights="pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin.*never unpickles.*safe_serialization"):
        hub.resolve_model(model)


def test_missing_local_directory(tmp_path, no_hub):
    with pytest.raises(hub.ModelNotFoundError, match="model directory not found"):
        hub.resolve_model(tmp_path / "nope")
    with pytest.raises(hub.ModelNotFoundError, match="model directory not found"):
        hub.resolve_model("./nope/really")


def test_directory_without_weights_or_config(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(hub.ModelNotFoundError, match=r"no model\.safetensors"):
        hub.resolve_model(tmp_path)
    with pytest.raises(hub.ModelNotFoundError, match=r"no config\.json"):
        hub.resolve_model(tmp_path / "..")


def test_file_instead_of_directory(tmp_path):
    path = _model_files(tmp_path / "m") / "config.json"
    with pytest.raises(hub.ModelNotFoundError, match="is a file"):
        hub.resolve_model(path)


def test_bad_type():
    with pytest.raises(TypeError, match="model must be"):
        hub.resolve_model(42)


# ------------------------------------------------------------ hostile caches and names
def _cache_with_outside_model(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A cache holding org/name at main, and a valid model directory outside the cache."""
    cache = tmp_path / "cache"
    repo = _cache_repo(cache, "org/name", {"main": HASH_A}, [HASH_A])
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return repo, _model_files(tmp_path / "outside")


@pytest.mark.parametrize("content", ["absolute", "../../../outside", "../../../outside\n"])
def test_ref_content_cannot_lead_outside_the_cache(tmp_path, monkeypatch, no_hub, content):
    repo, outside = _cache_with_outside_model(tmp_path, monkeypatch)
    (repo / "refs" / "main").write_text(str(outside) if content == "absolute" else content)
    with pytest.raises(hub.ModelNotFoundError, match=r"refs/main does not hold a commit hash"):
        hub.resolve_model("org/name")


def test_ref_symlink_out_of_refs_is_refused(tmp_path, monkeypatch, no_hub):
    repo, _ = _cache_with_outside_model(tmp_path, monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(HASH_A)
    (repo / "refs" / "v1").symlink_to(elsewhere)
    with pytest.raises(hub.ModelNotFoundError, match=r"refs/v1 leads outside"):
        hub.resolve_model("org/name", revision="v1")


@pytest.mark.parametrize("raw", [b"\xff\xfe" + b"a" * 38, b"", b"A" * 40, b"a" * 41, b"a" * 39 + b"\x00"])
def test_ref_that_is_not_a_commit_hash(tmp_path, monkeypatch, no_hub, raw):
    repo, _ = _cache_with_outside_model(tmp_path, monkeypatch)
    (repo / "refs" / "main").write_bytes(raw)
    with pytest.raises(hub.ModelNotFoundError, match=r"refs/main does not hold a commit hash") as info:
        hub.resolve_model("org/name")
    assert "\\xff" not in str(info.value)  # names the problem, does not echo the bytes


def test_huge_ref_is_not_read_whole(tmp_path, monkeypatch, no_hub):
    import tracemalloc

    repo, _ = _cache_with_outside_model(tmp_path, monkeypatch)
    with (repo / "refs" / "main").open("wb") as f:
        f.write(HASH_A.encode())
        f.truncate(64 * 2**20)  # sparse: 64 MiB on paper, nothing on disk
    tracemalloc.start()
    try:
        with pytest.raises(hub.ModelNotFoundError, match=r"refs/main does not hold a commit hash"):
            hub.resolve_model("org/name")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"peak traced allocation: {peak / 2**10:.0f} KiB")
    assert peak < 2**20


@pytest.mark.parametrize(
    "revision",
    ["/etc/passwd", "../../../secret", "..", ".", "", "refs/../../x", "main/", "/main", "a//b",
     ".hidden", "main.lock", "v1 0", "main\n", "x" * 300, "refs\\pr\\1"],
)  # fmt: skip
def test_revision_must_be_a_name_not_a_path(tmp_path, monkeypatch, no_hub, revision):
    _cache_with_outside_model(tmp_path, monkeypatch)
    secret = tmp_path / "secret"
    secret.write_text("TOP SECRET CONTENT")
    if revision == "/etc/passwd":
        revision = str(secret)
    with pytest.raises(hub.InvalidModelReference, match="is not a branch, tag or commit hash") as info:
        hub.resolve_model("org/name", revision=revision)
    assert "TOP SECRET" not in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, hub.ModelNotFoundError)


@pytest.mark.parametrize("revision", ["main", "v1.0", "refs/pr/1", "release-2024_01", "v1.0+cu118", HASH_B])
def test_valid_revisions_resolve(tmp_path, monkeypatch, revision):
    cache = tmp_path / "cache"
    refs = {} if revision == HASH_B else {revision: HASH_B}
    repo = _cache_repo(cache, "org/name", {}, [HASH_B])
    for name, commit in refs.items():
        (repo / "refs" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / name).write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert hub.resolve_model("org/name", revision=revision) == repo / "snapshots" / HASH_B


@pytest.mark.parametrize("model", ["", "   "])
def test_empty_model_is_refused_not_the_current_directory(tmp_path, monkeypatch, model):
    monkeypatch.chdir(_model_files(tmp_path / "cwd"))  # a loadable model right here
    with pytest.raises(hub.InvalidModelReference, match="model is empty"):
        hub.resolve_model(model)
    assert hub.resolve_model(".") == Path(".")  # the current directory, asked for explicitly


MODEL_IDS = [
    "name", "org/name", "distilbert-base-multilingual-cased", "Org_1/a.b-c", "a" * 96, "a" * 97,
    "", "/", "org/", "/name", "a/b/c", "org/..", "../x", "a..b", "a--b", "-a", "a-", ".a", "a.",
    "name.git", "café", "a b", "a\\b", "org/na\nme", "_a", "a_",
]  # fmt: skip


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_model_id_rules_are_huggingface_hubs(transformers_module, model_id):
    """Differential: our id check agrees with huggingface_hub's own validator."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model_id)
        theirs = model_id != ""
    except HFValidationError:
        theirs = False
    assert hub.is_model_id(model_id) is theirs


def test_pickle_refusal_is_one_message(tmp_path):
    """hub.py and weights.py refuse a pickle-only directory with the same words and advice."""
    from numpy_distilbert.weights import load_checkpoint

    model = _model_files(tmp_path / "model", weights="pytorch_model.bin")
    with pytest.raises(CheckpointError) as from_hub:
        hub.resolve_model(model)
    with pytest.raises(CheckpointError) as from_weights:
        load_checkpoint(model)
    assert str(from_hub.value) == str(from_weights.value)
    assert "hf download" in str(from_hub.value) and "huggingface-cli" not in str(from_hub.value)


# ------------------------------------------------------------ tokenizer-only resolution
def test_tokenizer_resolution_needs_no_weights(tmp_path, monkeypatch):
    """A cached snapshot with only vocab.txt serves a tokenizer; it does not serve a model."""
    cache = tmp_path / "cache"
    repo = cache / "models--org--name"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(HASH_A)
    snapshot = repo / "snapshots" / HASH_A
    snapshot.mkdir(parents=True)
    (snapshot / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert hub.resolve_tokenizer("org/name") == snapshot
    with pytest.raises(hub.ModelNotFoundError, match=r"no config\.json"):
        hub.resolve_model("org/name")
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    with pytest.raises(hub.ModelNotFoundError, match=r"vocab.txt or tokenizer.json"):
        hub.resolve_tokenizer(empty)
    with pytest.raises(hub.InvalidModelReference, match="empty"):
        hub.resolve_tokenizer("")


def test_tokenizer_download_fetches_no_weights(tmp_path, monkeypatch):
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    (downloaded / "tokenizer.json").write_text("{}")
    calls = []

    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append(allow_patterns)
        return str(downloaded)

    fake = types.ModuleType("huggingface_hub")
    fake.snapshot_download = snapshot_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert hub.resolve_tokenizer("org/name") == downloaded
    assert "vocab.txt" in calls[0] and not any("safetensors" in p or p == "config.json" for p in calls[0])
