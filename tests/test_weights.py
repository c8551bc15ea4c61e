"""The safetensors reader and checkpoint loader, with NumPy and safetensors alone (no torch).

Valid files are written with the `safetensors` package (an independent writer); corrupt
ones byte by byte. Every corrupt file must raise a clear error that names the file and,
where there is one, the tensor.
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from numpy_distilbert.config import ConfigError
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel
from numpy_distilbert.weights import CheckpointError, canonical_name, load_checkpoint, read_safetensors

TINY = dict(vocab_size=30, max_position_embeddings=10, n_layers=2, n_heads=2, dim=8, hidden_dim=12)


# ----------------------------------------------------------------------- helpers
def tiny_state(config: dict = TINY, seed: int = 0, prefix: str = "distilbert.", head: bool = True) -> dict:
    """Every tensor of a DistilBertForMaskedLM checkpoint as transformers names it, random."""
    rng = np.random.default_rng(seed)
    d, f, v, p = config["dim"], config["hidden_dim"], config["vocab_size"], config["max_position_embeddings"]
    shapes = {
        "embeddings.word_embeddings.weight": (v, d),
        "embeddings.position_embeddings.weight": (p, d),
        "embeddings.LayerNorm.weight": (d,),
        "embeddings.LayerNorm.bias": (d,),
    }
    for i in range(config["n_layers"]):
        layer = f"transformer.layer.{i}."
        for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
            shapes[f"{layer}attention.{lin}.weight"] = (d, d)
            shapes[f"{layer}attention.{lin}.bias"] = (d,)
        shapes[f"{layer}ffn.lin1.weight"], shapes[f"{layer}ffn.lin1.bias"] = (f, d), (f,)
        shapes[f"{layer}ffn.lin2.weight"], shapes[f"{layer}ffn.lin2.bias"] = (d, f), (d,)
        for norm in ("sa_layer_norm", "output_layer_norm"):
            shapes[f"{layer}{norm}.weight"], shapes[f"{layer}{norm}.bias"] = (d,), (d,)
    state = {prefix + name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    if head:
        state.update({
            "vocab_transform.weight": rng.standard_normal((d, d)).astype(np.float32),
            "vocab_transform.bias": rng.standard_normal(d).astype(np.float32),
            "vocab_layer_norm.weight": rng.standard_normal(d).astype(np.float32),
            "vocab_layer_norm.bias": rng.standard_normal(d).astype(np.float32),
            "vocab_projector.bias": rng.standard_normal(v).astype(np.float32),
        })  # fmt: skip
    return state


def write_checkpoint(directory: Path, state: dict, config: dict = TINY) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "distilbert", **config}))
    save_file(state, str(directory / "model.safetensors"))
    return directory


def write_raw(path: Path, header: dict | bytes, data: bytes = b"", header_len: int | None = None) -> Path:
    """A safetensors-shaped file, byte by byte: [u64 header length][header][data]."""
    raw_header = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw_header) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + raw_header + data)
    return path


def f32(name_offsets: dict[str, tuple[list[int], int, int]]) -> dict:
    return {
        name: {"dtype": "F32", "shape": s, "data_offsets": [b, e]} for name, (s, b, e) in name_offsets.items()
    }


# ------------------------------------------------------------------ valid files
def test_reads_what_safetensors_wrote(tmp_path):
    rng = np.random.default_rng(1)
    tensors = {
        "f64": rng.standard_normal((3, 2)),
        "f32": rng.standard_normal((4, 5)).astype(np.float32),
        "f16": rng.standard_normal((7,)).astype(np.float16),
        "i64": rng.integers(-5, 5, size=(2, 2, 2)),
        "i32": rng.integers(-5, 5, size=(3,)).astype(np.int32),
        "u8": rng.integers(0, 255, size=(5,)).astype(np.uint8),
        "bool": rng.integers(0, 2, size=(4,)).astype(bool),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    save_file(tensors, str(tmp_path / "a.safetensors"), metadata={"format": "pt"})
    ours = read_safetensors(tmp_path / "a.safetensors")
    theirs = load_file(str(tmp_path / "a.safetensors"))
    assert set(ours) == set(theirs) == set(tensors)
    for name, expected in theirs.items():
        assert ours[name].dtype == expected.dtype, name
        assert ours[name].shape == expected.shape, name
        np.testing.assert_array_equal(ours[name], expected)
    assert ours["f16"].dtype == np.float16  # F16 stays float16


def test_arrays_are_read_only_memory_maps(tmp_path):
    save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(tmp_path / "a.safetensors"))
    array = read_safetensors(tmp_path / "a.safetensors")["w"]
    assert not array.flags.writeable
    assert isinstance(array.base, np.memmap) or isinstance(array, np.memmap) or array.base is not None
    with pytest.raises(ValueError, match="read-only"):
        array[0, 0] = 1.0


def test_bf16_is_widened_exactly(tmp_path):
    """BF16 is the top 16 bits of a float32: values exactly representable in bf16 come back equal."""
    values = np.array(
        [0.0, -0.0, 1.0, -2.5, 0.15625, 2.0**127, -(2.0**-126), np.inf, 65280.0], dtype=np.float32
    )
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    assert np.array_equal((bits.astype(np.uint32) << 16).view(np.float32), values)  # all representable
    header = {"b": {"dtype": "BF16", "shape": [3, 3], "data_offsets": [0, bits.nbytes]}}
    array = read_safetensors(write_raw(tmp_path / "bf16.safetensors", header, bits.tobytes()))["b"]
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array.ravel(), values)


def test_nan_bf16_stays_nan(tmp_path):
    bits = np.array([0x7FC0, 0xFF80], dtype="<u2")  # NaN, -inf
    header = {"b": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}
    array = read_safetensors(write_raw(tmp_path / "x.safetensors", header, bits.tobytes()))["b"]
    assert np.isnan(array[0]) and array[1] == -np.inf


# ---------------------------------------------------------------- corrupt files
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors"):
        read_safetensors(tmp_path / "nope.safetensors")


def test_file_shorter_than_the_length_prefix(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x01\x02\x03")
    with pytest.raises(CheckpointError, match=r"short\.safetensors.*too short"):
        read_safetensors(path)


def test_truncated_file(tmp_path):
    """A valid file cut short: the last tensor's bytes are missing."""
    path = tmp_path / "cut.safetensors"
    save_file({"a": np.ones(4, np.float32), "b": np.ones(100, np.float32)}, str(path))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors.*tensor 'b'.*outside.*truncated"):
        read_safetensors(path)


def test_truncated_inside_the_header(tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file({"a": np.ones(4, np.float32)}, str(path))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors.*header.*has 20 bytes"):
        read_safetensors(path)


def test_header_length_larger_than_file(tmp_path):
    path = write_raw(tmp_path / "long.safetensors", b"{}", header_len=10_000)
    with pytest.raises(CheckpointError, match=r"long\.safetensors.*10000-byte header"):
        read_safetensors(path)


def test_absurd_header_length(tmp_path):
    path = write_raw(tmp_path / "huge.safetensors", b"{}", header_len=2**63)
    with pytest.raises(CheckpointError, match=r"huge\.safetensors"):
        read_safetensors(path)


@pytest.mark.parametrize("raw", [b"not json at all", b"\xff\xfe\x00", b'{"a": '])
def test_non_json_header(tmp_path, raw):
    path = write_raw(tmp_path / "bad.safetensors", raw)
    with pytest.raises(CheckpointError, match=r"bad\.safetensors.*not JSON"):
        read_safetensors(path)


def test_header_not_an_object(tmp_path):
    path = write_raw(tmp_path / "list.safetensors", b"[1, 2]")
    with pytest.raises(CheckpointError, match=r"list\.safetensors.*JSON object"):
        read_safetensors(path)


def test_data_offsets_out_of_bounds(tmp_path):
    header = f32({"w": ([4], 0, 16), "far": ([4], 16, 32)})
    path = write_raw(tmp_path / "oob.safetensors", header, bytes(16))
    with pytest.raises(CheckpointError, match=r"oob\.safetensors.*'far'.*\[16, 32\).*16-byte"):
        read_safetensors(path)


def test_reversed_offsets(tmp_path):
    path = write_raw(tmp_path / "rev.safetensors", f32({"w": ([0], 8, 4)}), bytes(16))
    with pytest.raises(CheckpointError, match=r"rev\.safetensors.*'w'"):
        read_safetensors(path)


def test_size_disagrees_with_shape(tmp_path):
    path = write_raw(tmp_path / "size.safetensors", f32({"w": ([3, 3], 0, 32)}), bytes(32))
    with pytest.raises(CheckpointError, match=r"size\.safetensors.*'w'.*32 bytes for shape \[3, 3\].*36"):
        read_safetensors(path)


def test_overlapping_tensors(tmp_path):
    path = write_raw(tmp_path / "overlap.safetensors", f32({"a": ([4], 0, 16), "b": ([4], 8, 24)}), bytes(24))
    with pytest.raises(CheckpointError, match=r"overlap\.safetensors.*'a' and 'b' overlap"):
        read_safetensors(path)


@pytest.mark.parametrize("dtype", ["F8_E4M3", "C64", "U64", "float32", None])
def test_unsupported_dtype(tmp_path, dtype):
    header = {"w": {"dtype": dtype, "shape": [2], "data_offsets": [0, 8]}}
    path = write_raw(tmp_path / "dtype.safetensors", header, bytes(8))
    with pytest.raises(CheckpointError, match=r"dtype\.safetensors.*'w'.*unsupported dtype"):
        read_safetensors(path)


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "shape"),
        ({"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}, "shape"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [0]}, "data_offsets"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}, "data_offsets"),
        ({"dtype": "F32", "shape": [4]}, "data_offsets"),
        ([1, 2, 3], "not an object"),
    ],
)
def test_malformed_entry(tmp_path, entry, what):
    path = write_raw(tmp_path / "entry.safetensors", {"w": entry}, bytes(16))
    with pytest.raises(CheckpointError, match=rf"entry\.safetensors.*'w'.*{what}"):
        read_safetensors(path)


def test_errors_are_value_errors():
    assert issubclass(CheckpointError, ValueError)


# ------------------------------------------------------------------------ names
@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("distilbert.embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
        ("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
        ("distilbert.embeddings.LayerNorm.gamma", "embeddings.LayerNorm.weight"),
        ("distilbert.embeddings.LayerNorm.beta", "embeddings.LayerNorm.bias"),
        ("transformer.layer.3.sa_layer_norm.gamma", "transformer.layer.3.sa_layer_norm.weight"),
        ("transformer.layer.3.output_layer_norm.beta", "transformer.layer.3.output_layer_norm.bias"),
        ("vocab_layer_norm.gamma", "vocab_layer_norm.weight"),
        ("vocab_projector.weight", "vocab_projector.weight"),
        ("classifier.gamma", "classifier.gamma"),  # not a norm: left alone
        ("transformer.layer.0.attention.q_lin.weight", "transformer.layer.0.attention.q_lin.weight"),
    ],
)
def test_canonical_name(raw, canonical):
    assert canonical_name(raw) == canonical


# ----------------------------------------------------------- checkpoint folders
def test_loads_a_written_checkpoint(tmp_path):
    state = tiny_state()
    ckpt = load_checkpoint(write_checkpoint(tmp_path, state))
    assert set(ckpt.tensors) == {canonical_name(name) for name in state}
    for name, array in state.items():
        np.testing.assert_array_equal(ckpt.tensors[canonical_name(name)], array)
    assert ckpt.sources[canonical_name("vocab_transform.weight")] == tmp_path / "model.safetensors"


def test_directory_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        DistilBertForMaskedLM.from_pretrained(tmp_path / "missing")


def test_missing_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors or model\.safetensors\.index\.json"):
        DistilBertForMaskedLM.from_pretrained(tmp_path)


def test_missing_config(tmp_path):
    save_file(tiny_state(), str(tmp_path / "model.safetensors"))
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        DistilBertForMaskedLM.from_pretrained(tmp_path)


def test_invalid_config_names_field(tmp_path):
    write_checkpoint(tmp_path, tiny_state(), config={**TINY, "n_heads": 3})
    with pytest.raises(ConfigError, match="n_heads"):
        DistilBertForMaskedLM.from_pretrained(tmp_path)


class _Explode:
    """Unpickling this touches a sentinel file: proof that something ran."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


@pytest.mark.parametrize("name", ["pytorch_model.bin", "pytorch_model.bin.index.json"])
def test_pickle_only_checkpoint_is_refused_unopened(tmp_path, name):
    sentinel = tmp_path / "unpickled"
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    (tmp_path / name).write_bytes(pickle.dumps(_Explode(sentinel)))
    # Sanity: this file really would run code if unpickled.
    pickle.loads((tmp_path / name).read_bytes())
    assert sentinel.exists()
    sentinel.unlink()

    with pytest.raises(CheckpointError, match=rf"{name.replace('.', '[.]')}.*pickle.*safetensors"):
        DistilBertForMaskedLM.from_pretrained(tmp_path)
    assert not sentinel.exists()


def test_config_weight_shape_mismatch(tmp_path):
    """config.json says dim 16 but the weights are 8 wide: named file, tensor and both shapes."""
    write_checkpoint(tmp_path, tiny_state(), config={**TINY, "dim": 16})
    expected = r"model\.safetensors: tensor 'embeddings.word_embeddings.weight' has shape \[30, 8\]"
    with pytest.raises(CheckpointError, match=expected + r".*config\.json implies \[30, 16\]"):
        DistilBertModel.from_pretrained(tmp_path)


def test_config_vocab_mismatch_in_the_head(tmp_path):
    state = tiny_state()
    state["vocab_projector.bias"] = state["vocab_projector.bias"][:-1]
    write_checkpoint(tmp_path, state)
    with pytest.raises(CheckpointError, match=r"'vocab_projector.bias' has shape \[29\].*\[30\].*MLM head"):
        DistilBertForMaskedLM.from_pretrained(tmp_path)


def test_config_with_more_layers_than_the_weights(tmp_path):
    write_checkpoint(tmp_path, tiny_state(), config={**TINY, "n_layers": 3})
    with pytest.raises(CheckpointError, match=r"missing tensor 'transformer.layer.2.attention.q_lin.weight'"):
        DistilBertModel.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "name",
    ["distilbert.transformer.layer.1.ffn.lin2.bias", "distilbert.embeddings.LayerNorm.weight",
     "vocab_transform.weight", "vocab_projector.bias"],
)  # fmt: skip
def test_missing_tensor(tmp_path, name):
    state = tiny_state()
    del state[name]
    write_checkpoint(tmp_path, state)
    with pytest.raises(CheckpointError, match=rf"missing tensor '{canonical_name(name)}'"):
        DistilBertForMaskedLM.from_pretrained(tmp_path)


def test_unexpected_tensor(tmp_path):
    state = tiny_state()
    state["distilbert.transformer.layer.7.ffn.lin1.weight"] = np.zeros((2, 2), np.float32)
    write_checkpoint(tmp_path, state)
    with pytest.raises(CheckpointError, match=r"unexpected tensors.*transformer.layer.7.ffn.lin1.weight"):
        DistilBertForMaskedLM.from_pretrained(tmp_path)


def test_duplicate_after_renaming(tmp_path):
    """`LayerNorm.gamma` and `LayerNorm.weight` in one file are the same tensor twice."""
    state = tiny_state()
    state["distilbert.embeddings.LayerNorm.gamma"] = state["distilbert.embeddings.LayerNorm.weight"]
    write_checkpoint(tmp_path, state)
    with pytest.raises(CheckpointError, match=r"duplicates 'embeddings.LayerNorm.weight'"):
        load_checkpoint(tmp_path)


def test_base_model_checkpoint_lacks_the_mlm_head(tmp_path):
    write_checkpoint(tmp_path, tiny_state(prefix="", head=False))
    DistilBertModel.from_pretrained(tmp_path)  # the encoder alone loads
    with pytest.raises(CheckpointError, match=r"missing tensor 'vocab_transform.weight' \(MLM head\)"):
        DistilBertForMaskedLM.from_pretrained(tmp_path)


def test_position_ids_buffer_is_ignored(tmp_path):
    state = tiny_state()
    state["distilbert.embeddings.position_ids"] = np.arange(TINY["max_position_embeddings"])[None]
    write_checkpoint(tmp_path, state)
    DistilBertForMaskedLM.from_pretrained(tmp_path)


def test_dtype_must_be_float32_or_float64(tmp_path):
    write_checkpoint(tmp_path, tiny_state())
    for dtype in (np.float16, np.int32, "bfloat16"):
        with pytest.raises((ValueError, TypeError), match=r"float32 or float64|bfloat16"):
            DistilBertForMaskedLM.from_pretrained(tmp_path, dtype=dtype)


# ---------------------------------------------------------------------- shards
def write_shards(directory: Path, state: dict, n_shards: int = 3) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "distilbert", **TINY}))
    names = sorted(state)
    weight_map = {}
    for k in range(n_shards):
        shard = f"model-{k + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {name: state[name] for name in names[k::n_shards]}
        save_file(part, str(directory / shard))
        weight_map.update(dict.fromkeys(part, shard))
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return weight_map


def test_sharded_equals_single_file(tmp_path):
    state = tiny_state()
    write_checkpoint(tmp_path / "single", state)
    write_shards(tmp_path / "sharded", state)
    ids = np.array([[1, 5, 7, 2, 0], [3, 3, 3, 0, 0]])
    mask = (ids > 0).astype(int)
    single = DistilBertForMaskedLM.from_pretrained(tmp_path / "single")(ids, mask).logits
    sharded = DistilBertForMaskedLM.from_pretrained(tmp_path / "sharded")(ids, mask).logits
    np.testing.assert_array_equal(single, sharded)
    sources = load_checkpoint(tmp_path / "sharded").sources
    assert len(set(sources.values())) == 3


def test_missing_shard(tmp_path):
    write_shards(tmp_path, tiny_state())
    (tmp_path / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model-00002-of-00003\.safetensors.*missing"):
        load_checkpoint(tmp_path)


def test_index_lists_a_tensor_its_shard_lacks(tmp_path):
    weight_map = write_shards(tmp_path, tiny_state())
    weight_map["vocab_transform.ghost"] = "model-00001-of-00003.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match=r"'vocab_transform.ghost'.*model-00001-of-00003.*is not"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("content", ["{not json", '{"metadata": {}}', '{"weight_map": [1, 2]}'])
def test_malformed_index(tmp_path, content):
    (tmp_path / "model.safetensors.index.json").write_text(content)
    with pytest.raises(CheckpointError, match=r"model\.safetensors\.index\.json: malformed shard index"):
        load_checkpoint(tmp_path)


def test_corrupt_shard_is_named(tmp_path):
    write_shards(tmp_path, tiny_state())
    shard = tmp_path / "model-00003-of-00003.safetensors"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(CheckpointError, match=r"model-00003-of-00003\.safetensors.*truncated"):
        load_checkpoint(tmp_path)
