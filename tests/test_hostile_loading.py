"""Hostile checkpoints and configs (issue 9): every one must end in a clear CheckpointError or
ConfigError naming the file and field, never a raw TypeError/RecursionError, an escape out
of the model directory, an unbounded allocation, or a silently wrong model.

Checkpoints are tiny random ones from `numpy_distilbert.random_weights` (no torch needed);
corrupt files are written byte by byte.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

from numpy_distilbert.auto import family_for, load_model
from numpy_distilbert.config import ConfigError, DistilBertConfig
from numpy_distilbert.heads import (
    DistilBertForMultipleChoice,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
)
from numpy_distilbert.model import (
    ARCHITECTURE_NAMES,
    MAX_COMPUTED_POSITION_ELEMENTS,
    DistilBertForMaskedLM,
    DistilBertModel,
)
from numpy_distilbert.random_weights import ARCHITECTURES, write_random_checkpoint
from numpy_distilbert.weights import CheckpointError, load_checkpoint, read_safetensors

TINY = DistilBertConfig(
    vocab_size=40, max_position_embeddings=16, n_layers=2, n_heads=2, dim=8, hidden_dim=12
)
REPO_ROOT = Path(__file__).resolve().parent.parent


def tiny_checkpoint(directory: Path, architecture: str = "DistilBertForMaskedLM", seed: int = 0) -> Path:
    return write_random_checkpoint(directory, TINY, seed=seed, architecture=architecture)


def rewrite_config(directory: Path, **changes) -> Path:
    config = json.loads((directory / "config.json").read_text())
    config.update(changes)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def write_raw(path: Path, raw_header: bytes, data: bytes = b"") -> Path:
    """A safetensors-shaped file, byte by byte: [u64 header length][header][data]."""
    path.write_bytes(struct.pack("<Q", len(raw_header)) + raw_header + data)
    return path


def f32_entry(shape: list, begin: int = 0, end: int = 4) -> dict:
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, end]}


# ----------------------------------------------------------- safetensors headers
@pytest.mark.parametrize(
    ("entry", "what"),
    [
        ({"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}, "unsupported dtype"),  # unhashable
        ({"dtype": {"F32": 1}, "shape": [1], "data_offsets": [0, 4]}, "unsupported dtype"),
        (f32_entry([True]), "malformed shape"),  # JSON true is not a dimension
        (f32_entry([1] * 65), "65 dimensions"),  # NumPy stops at 64
        (f32_entry([0, 2**70], 0, 0), "malformed shape"),  # empty, yet too big for NumPy
        ({"dtype": "F32", "shape": [1], "data_offsets": [False, 4]}, "data_offsets"),
    ],
)
def test_hostile_header_entry_is_a_checkpoint_error(tmp_path, entry, what):
    path = write_raw(tmp_path / "h.safetensors", json.dumps({"w": entry}).encode(), bytes(4))
    with pytest.raises(CheckpointError, match=rf"h\.safetensors.*'w'.*{what}"):
        read_safetensors(path)


def test_deeply_nested_header(tmp_path):
    depth = 100_000
    raw = b'{"__metadata__": ' + b"[" * depth + b"]" * depth + b"}"
    path = write_raw(tmp_path / "deep.safetensors", raw)
    with pytest.raises(CheckpointError, match=r"deep\.safetensors.*nested too deeply"):
        read_safetensors(path)


def test_duplicate_header_keys_are_refused(tmp_path):
    """Two entries named 'w' of different shapes: which one is meant? (The safetensors library,
    0.8, and Python's json silently keep the last; a checkpoint must not be read two ways.)"""
    first, second = json.dumps(f32_entry([1], 0, 4)), json.dumps(f32_entry([2], 0, 8))
    raw = f'{{"w": {first}, "w": {second}}}'.encode()
    path = write_raw(tmp_path / "dup.safetensors", raw, bytes(8))
    with pytest.raises(CheckpointError, match=r"dup\.safetensors.*'w' appears twice"):
        read_safetensors(path)


# --------------------------------------------------------------------- shard index
def _sharded(directory: Path) -> dict:
    """A tiny MLM checkpoint split in two shards; returns the index's weight_map."""
    tiny_checkpoint(directory)
    tensors = load_file(str(directory / "model.safetensors"))
    (directory / "model.safetensors").unlink()
    names = sorted(tensors)
    weight_map = {}
    for k, part in enumerate((names[::2], names[1::2])):
        shard = f"model-0000{k + 1}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, str(directory / shard))
        weight_map.update(dict.fromkeys(part, shard))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return weight_map


@pytest.mark.parametrize("escape", ["absolute", "dotdot", "subdir"])
def test_shard_index_cannot_name_a_file_outside_the_directory(tmp_path, escape):
    weight_map = _sharded(tmp_path / "model")
    # A valid shard, outside the model directory, that an escaping index would load.
    outside = tmp_path / "outside.safetensors"
    victim = "vocab_projector.bias"
    replacement = {victim: np.zeros(TINY.vocab_size, np.float32)}
    save_file(replacement, str(outside))
    (tmp_path / "model" / "sub").mkdir()
    save_file(replacement, str(tmp_path / "model" / "sub" / "x.safetensors"))
    names = {"absolute": str(outside), "dotdot": "../outside.safetensors", "subdir": "sub/x.safetensors"}
    weight_map[victim] = names[escape]
    index = tmp_path / "model" / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match=rf"index\.json.*{victim}.*not the name of a file inside"):
        load_checkpoint(tmp_path / "model")


@pytest.mark.parametrize("value", [5, None, ["a.safetensors"], {"x": 1}, "", ".."])
def test_shard_index_values_must_be_file_names(tmp_path, value):
    weight_map = _sharded(tmp_path)
    weight_map["vocab_projector.bias"] = value
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match=r"model\.safetensors\.index\.json.*'vocab_projector\.bias'"):
        load_checkpoint(tmp_path)


def test_shard_index_with_duplicate_keys(tmp_path):
    _sharded(tmp_path)
    shard = "model-00001-of-00002.safetensors"
    raw = f'{{"weight_map": {{"a": "{shard}", "a": "{shard}"}}}}'
    (tmp_path / "model.safetensors.index.json").write_text(raw)
    with pytest.raises(CheckpointError, match=r"index\.json.*malformed shard index.*'a' appears twice"):
        load_checkpoint(tmp_path)


# ----------------------------------------------------------------------- config.json
def _config_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "config.json").write_text(text)
    return tmp_path


VALID = TINY.to_dict()


HOSTILE_CONFIGS = [
    (json.dumps({**VALID, "architectures": 5}), "architectures"),
    (json.dumps({**VALID, "architectures": "DistilBertForMaskedLM"}), "architectures.*list"),
    (json.dumps({**VALID, "architectures": [1, 2]}), "architectures"),
    (json.dumps({**VALID, "pad_token_id": "0"}), "pad_token_id"),
    (json.dumps({**VALID, "pad_token_id": -1}), "pad_token_id"),
    (json.dumps({**VALID, "num_labels": 0}), "num_labels"),
    (json.dumps({**VALID, "num_labels": True}), "num_labels"),
    (json.dumps({**VALID, "layer_norm_eps": float("nan")}), "layer_norm_eps.*finite"),  # writes NaN
    (json.dumps({**VALID, "dropout": float("inf")}), "dropout.*finite"),
    (json.dumps(VALID)[:-1] + ', "initializer_range": 1e999}', "initializer_range.*finite"),
    (json.dumps({**VALID, "extra": {"deep": [1.0, -float("inf")]}}), "extra.deep.1"),
    (json.dumps({**VALID, "id2label": {"0": ["a"]}}), "id2label"),  # not str()-ed into "['a']"
    (json.dumps({**VALID, "label2id": {"a": 1.7}}), "label2id"),  # not int()-ed into 1
    (json.dumps({**VALID, "id2label": {"1e3": "a"}}), "id2label"),
    (json.dumps({**VALID, "dim": -8}), "dim"),
    (json.dumps({**VALID, "n_layers": 2.5}), "n_layers"),
    ('{"dim": 8, "dim": 16}', "'dim' appears twice"),
    ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nested more than"),
]


@pytest.mark.parametrize(
    ("text", "field"), HOSTILE_CONFIGS, ids=[f"{i}-{field}" for i, (_, field) in enumerate(HOSTILE_CONFIGS)]
)
def test_hostile_config_names_the_file_and_field(tmp_path, text, field):
    directory = _config_file(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"config\.json.*{field}"):
        DistilBertConfig.from_pretrained(directory)


def test_architectures_string_is_not_a_list_of_characters(tmp_path):
    """transformers keeps a bare string as it is and then iterates its characters; refuse it."""
    directory = tiny_checkpoint(tmp_path)
    rewrite_config(directory, architectures="DistilBertForMaskedLM")
    with pytest.raises(ConfigError, match=r"architectures.*write \['DistilBertForMaskedLM'\]"):
        load_model(directory)


# ------------------------------------------------------- sinusoidal table allocation
def test_sinusoidal_table_from_config_alone_is_bounded(tmp_path):
    """A computed table is sized by config.json alone: a huge one is refused before allocating."""
    directory = tiny_checkpoint(tmp_path)
    tensors = load_file(str(directory / "model.safetensors"))
    del tensors["distilbert.embeddings.position_embeddings.weight"]
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    positions = 2 * MAX_COMPUTED_POSITION_ELEMENTS // TINY.dim  # twice the bound
    rewrite_config(directory, sinusoidal_pos_embds=True, max_position_embeddings=positions)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=rf"max_position_embeddings={positions}"):
            DistilBertForMaskedLM.from_pretrained(directory)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"peak traced allocation while refusing: {peak / 2**20:.2f} MiB")
    assert peak < 16 * 2**20  # the refused table alone would be 2 x 8M float64 = 128 MiB

    # Within the bound the table is computed, and the model runs.
    rewrite_config(directory, max_position_embeddings=64)
    model = DistilBertForMaskedLM.from_pretrained(directory)
    assert model(np.arange(1, 40)[None]).logits.shape == (1, 39, TINY.vocab_size)


# --------------------------------------------------------------- head mismatches
HEAD_CLASSES = {
    "DistilBertForMaskedLM": DistilBertForMaskedLM,
    "DistilBertForSequenceClassification": DistilBertForSequenceClassification,
    "DistilBertForTokenClassification": DistilBertForTokenClassification,
    "DistilBertForQuestionAnswering": DistilBertForQuestionAnswering,
    "DistilBertForMultipleChoice": DistilBertForMultipleChoice,
}


@pytest.fixture(scope="module")
def head_checkpoints(tmp_path_factory):
    return {
        name: tiny_checkpoint(tmp_path_factory.mktemp(name), name, seed=i)
        for i, name in enumerate(ARCHITECTURES)
    }


def test_architecture_names_are_the_implemented_classes():
    registered = {cls.__name__ for cls in family_for("distilbert").models.values()}
    assert set(ARCHITECTURE_NAMES) == registered == set(ARCHITECTURES)


@pytest.mark.parametrize("made_for", list(HEAD_CLASSES))
@pytest.mark.parametrize("loaded_as", list(HEAD_CLASSES))
def test_a_head_refuses_another_heads_checkpoint(head_checkpoints, made_for, loaded_as):
    cls = HEAD_CLASSES[loaded_as]
    if made_for == loaded_as:
        assert type(cls.from_pretrained(head_checkpoints[made_for])) is cls
        return
    with pytest.raises(CheckpointError, match=rf"{made_for}.*{loaded_as}|{loaded_as}.*{made_for}"):
        cls.from_pretrained(head_checkpoints[made_for])


def test_ner_on_a_sentiment_checkpoint_is_refused_by_its_tensors(tmp_path, head_checkpoints):
    """Without architectures in config.json, pre_classifier.* still says 'sequence classification'."""
    directory = tmp_path / "undeclared"
    directory.mkdir()
    source = head_checkpoints["DistilBertForSequenceClassification"]
    (directory / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    (directory / "config.json").write_text((source / "config.json").read_text())
    rewrite_config(directory, architectures=[])
    foreign = r"pre_classifier\.bias, pre_classifier\.weight belong to another head"
    with pytest.raises(CheckpointError, match=foreign):
        DistilBertForTokenClassification.from_pretrained(directory)
    sentiment = DistilBertForSequenceClassification.from_pretrained(directory)
    assert type(sentiment) is DistilBertForSequenceClassification


@pytest.mark.parametrize("made_for", list(ARCHITECTURES))
def test_bare_encoder_loads_from_any_checkpoint_alike(head_checkpoints, made_for):
    """As transformers: the base model from a head checkpoint ignores the head."""
    ids = np.array([[1, 5, 7, 2, 9]])
    encoder = DistilBertModel.from_pretrained(head_checkpoints[made_for])
    # The same seed gives the same encoder tensors only per checkpoint; compare to the head's own encoder.
    if made_for != "DistilBertModel":
        inner = HEAD_CLASSES[made_for].from_pretrained(head_checkpoints[made_for]).distilbert
        np.testing.assert_array_equal(encoder(ids).last_hidden_state, inner(ids).last_hidden_state)


def test_declared_bare_encoder_on_a_head_checkpoint_loads_the_head_by_tensors(tmp_path, head_checkpoints):
    """architectures: ["DistilBertModel"] declares no head; the tensors decide."""
    source = head_checkpoints["DistilBertForQuestionAnswering"]
    directory = tmp_path / "qa"
    directory.mkdir()
    (directory / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    (directory / "config.json").write_text((source / "config.json").read_text())
    rewrite_config(directory, architectures=["DistilBertModel"])
    assert type(load_model(directory)) is DistilBertModel
    DistilBertForQuestionAnswering.from_pretrained(directory)
    with pytest.raises(CheckpointError, match=r"qa_outputs\.\w+ belong to another head"):
        DistilBertForTokenClassification.from_pretrained(directory)


# ------------------------------------------------------------------ memory maps
def _replace_data_in_place(path: Path, seed: int) -> None:
    """Overwrite the file's bytes with another seed's tensors of the same names and shapes
    (same header, same size), in place, as an editor or a failed copy might."""
    tensors = load_file(str(path))
    rng = np.random.default_rng(seed)
    other = {name: rng.standard_normal(a.shape).astype(a.dtype) for name, a in tensors.items()}
    scratch = path.with_suffix(".tmp")
    save_file(other, str(scratch), metadata={"format": "pt"})
    new = scratch.read_bytes()
    assert len(new) == path.stat().st_size
    with path.open("r+b") as f:
        f.write(new)


@pytest.mark.parametrize("mmap", [True, False])
def test_rewriting_the_file_after_loading(tmp_path, mmap):
    """mmap=True: the model *is* the file, a rewrite changes its results (the documented hazard,
    shown here so that the mmap=False case is known to be able to fail); mmap=False: it cannot."""
    directory = tiny_checkpoint(tmp_path)
    ids = np.array([[1, 5, 7, 2, 9, 3]])
    model = DistilBertForMaskedLM.from_pretrained(directory, mmap=mmap)
    before = model(ids).logits.copy()
    _replace_data_in_place(directory / "model.safetensors", seed=99)
    after = model(ids).logits
    assert np.array_equal(before, after) is (not mmap)


@pytest.mark.parametrize("architecture", ["DistilBertForMaskedLM", "DistilBertForTokenClassification"])
def test_mmap_false_gives_the_same_model(tmp_path, architecture):
    directory = tiny_checkpoint(tmp_path, architecture)
    ids = np.array([[1, 5, 7, 2, 9, 3], [4, 4, 8, 1, 0, 0]])
    mask = (ids > 0).astype(int)
    mapped, copied = (load_model(directory, mmap=mmap) for mmap in (True, False))
    np.testing.assert_array_equal(copied(ids, mask).logits, mapped(ids, mask).logits)


TRUNCATE_AFTER_LOADING = textwrap.dedent(
    """
    import sys
    import numpy as np
    from numpy_distilbert.config import DistilBertConfig
    from numpy_distilbert.auto import AutoModelForQuestionAnswering, load_model
    from numpy_distilbert.heads import DistilBertForSequenceClassification
    from numpy_distilbert.model import DistilBertForMaskedLM
    from numpy_distilbert.random_weights import write_random_checkpoint

    config = DistilBertConfig(vocab_size=40, max_position_embeddings=16, n_layers=2, n_heads=2,
                              dim=8, hidden_dim=12)
    root = sys.argv[1]
    ids = np.array([[1, 5, 7, 2, 9, 3]])
    loaders = {
        "mlm": (DistilBertForMaskedLM.from_pretrained, "DistilBertForMaskedLM"),
        "head": (DistilBertForSequenceClassification.from_pretrained, "DistilBertForSequenceClassification"),
        "load_model": (load_model, "DistilBertForTokenClassification"),
        "auto": (AutoModelForQuestionAnswering.from_pretrained, "DistilBertForQuestionAnswering"),
    }
    for name, (load, architecture) in loaders.items():
        directory = write_random_checkpoint(f"{root}/{name}", config, architecture=architecture)
        model = load(directory, mmap=False)

        def outputs():
            return list(model(ids).values())

        before = outputs()
        with open(directory / "model.safetensors", "r+b") as f:
            f.truncate(100)  # with a memory map, the next forward pass would die of SIGBUS
        after = outputs()
        assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True)), name
        print(name, "unchanged")
    """
)


def test_truncating_the_file_after_loading_with_mmap_false(tmp_path):
    """Run in a child process: were the weights still mapped, SIGBUS would kill it, not pytest."""
    result = subprocess.run(
        [sys.executable, "-c", TRUNCATE_AFTER_LOADING, str(tmp_path)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    print(result.stdout, result.stderr)
    assert result.returncode == 0, f"child exited with {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.split() == ["mlm", "unchanged", "head", "unchanged", "load_model", "unchanged",
                                     "auto", "unchanged"]  # fmt: skip


def test_mmap_false_arrays_own_their_memory(tmp_path):
    directory = tiny_checkpoint(tmp_path)
    for array in load_checkpoint(directory, mmap=False).tensors.values():
        base = array
        while base.base is not None:
            base = base.base
        assert not isinstance(base, np.memmap)
        assert not array.flags.writeable


# --------------------------------------------------------------------- threads
def test_one_model_serves_eight_threads(tmp_path):
    """8 threads, one model, different inputs: exactly the results of sequential calls."""
    model = DistilBertForMaskedLM.from_pretrained(tiny_checkpoint(tmp_path))
    rng = np.random.default_rng(3)
    inputs = [rng.integers(1, TINY.vocab_size, size=(2, int(rng.integers(3, 16)))) for _ in range(8)]
    expected = [model(ids).logits for ids in inputs]
    results: list = [None] * len(inputs)
    barrier = threading.Barrier(len(inputs))

    def work(i: int) -> None:
        barrier.wait()  # start together, so the calls overlap
        results[i] = [model(inputs[i]).logits for _ in range(20)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for want, got in zip(expected, results, strict=True):
        for out in got:
            np.testing.assert_array_equal(out, want)


# ------------------------------------------------------------------- fuzzing
json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
CONFIG_FIELDS = [
    "vocab_size", "max_position_embeddings", "sinusoidal_pos_embds", "n_layers", "n_heads", "dim",
    "hidden_dim", "activation", "pad_token_id", "architectures", "id2label", "label2id", "problem_type",
    "model_type", "num_labels", "layer_norm_eps",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(CONFIG_FIELDS), json_values, max_size=4))
def test_any_json_config_is_accepted_or_a_config_error(overrides):
    try:
        config = DistilBertConfig.from_dict({**VALID, **overrides})
    except ConfigError:
        return
    assert DistilBertConfig.from_dict(config.to_dict()) == config  # what is accepted is coherent


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["dtype", "shape", "data_offsets"]), json_values, max_size=3))
def test_any_json_header_entry_is_read_or_a_checkpoint_error(tmp_path_factory, entry):
    base = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    path = write_raw(tmp_path_factory.mktemp("fuzz") / "f.safetensors",
                     json.dumps({"w": {**base, **entry}}).encode(), bytes(16))  # fmt: skip
    try:
        tensors = read_safetensors(path)
    except CheckpointError:
        return
    assert tensors["w"].nbytes <= 16
