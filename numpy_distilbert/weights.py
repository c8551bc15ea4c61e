"""Reading DistilBERT checkpoints from safetensors files, with NumPy alone.

A safetensors file is three things in a row:

    [8 bytes: N, little-endian u64] [N bytes: JSON header] [raw tensor bytes]

The header maps each tensor name to its dtype, shape and `data_offsets` [begin, end),
counted from the first byte after the header. Reading one is therefore a memory map
plus a view per tensor: a 542 MB checkpoint costs no copy and no time at load, and the
operating system pages in only what the forward pass touches. Nothing here unpickles;
`pytorch_model.bin` files are refused with an explanation.

Tensor names are mapped to one canonical form: without the `distilbert.` prefix that
task models add, and with LayerNorm's legacy `gamma`/`beta` renamed `weight`/`bias`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.bin")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit

# safetensors dtype name -> how the bytes are stored. BF16 has no NumPy dtype: it is
# stored as uint16 and widened to float32 by `_bf16_to_float32`.
_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as DistilBERT weights; the message names file and key."""


# ----------------------------------------------------------------- one safetensors file
def _bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: shift the 16 bits up and reinterpret."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _read_header(path: Path, file_size: int) -> tuple[dict, int]:
    """Parse and validate the JSON header. Returns (header, offset of the data section)."""
    if file_size < 8:
        raise CheckpointError(f"{path}: not a safetensors file ({file_size} bytes, too short)")
    with path.open("rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        if header_len > MAX_HEADER_BYTES or 8 + header_len > file_size:
            raise CheckpointError(
                f"{path}: not a safetensors file, or truncated: its first 8 bytes announce a "
                f"{header_len}-byte header but the file has {file_size} bytes"
            )
        raw_header = f.read(header_len)
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a safetensors file (header is not JSON: {exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header must be a JSON object")
    return header, 8 + header_len


def _check_entry(path: Path, name: str, entry: object, data_size: int) -> tuple[np.dtype, tuple, int, int]:
    """Validate one header entry against the file; returns (storage dtype, shape, begin, end)."""
    where = f"{path}: tensor {name!r}"
    if not isinstance(entry, dict):
        raise CheckpointError(f"{where}: header entry is not an object")
    dtype_name = entry.get("dtype")
    if dtype_name not in _DTYPES:
        raise CheckpointError(f"{where}: unsupported dtype {dtype_name!r}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise CheckpointError(f"{where}: malformed shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and o >= 0 for o in offsets)):  # fmt: skip
        raise CheckpointError(f"{where}: malformed data_offsets {offsets!r}")
    begin, end = offsets
    if begin > end or end > data_size:
        raise CheckpointError(
            f"{where}: data_offsets [{begin}, {end}) lie outside the file's {data_size}-byte "
            f"data section (truncated or corrupt file)"
        )
    dtype = _DTYPES[dtype_name]
    expected = math.prod(shape) * dtype.itemsize
    if end - begin != expected:
        raise CheckpointError(
            f"{where}: {end - begin} bytes for shape {shape} of {dtype_name}, which needs {expected}"
        )
    return dtype, tuple(shape), begin, end


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Map a .safetensors file and return {name: read-only array}, without copying.

    F16 and BF16 tensors come back as float16 and float32 arrays (BF16 is widened, which
    copies that tensor). Raises CheckpointError naming the file and tensor on anything
    malformed: short or truncated files, non-JSON headers, offsets out of bounds,
    sizes that disagree with shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"safetensors file not found: {path}")
    file_size = path.stat().st_size
    header, data_start = _read_header(path, file_size)
    data_size = file_size - data_start
    header.pop("__metadata__", None)

    entries = {name: _check_entry(path, name, entry, data_size) for name, entry in header.items()}
    # The format forbids overlapping tensors; a file that has them is corrupt.
    spans = sorted((begin, end, name) for name, (_, _, begin, end) in entries.items())
    for (_, end_a, name_a), (begin_b, _, name_b) in itertools.pairwise(spans):
        if begin_b < end_a:
            raise CheckpointError(f"{path}: tensors {name_a!r} and {name_b!r} overlap")

    if data_size == 0:
        return {name: np.empty(shape, dtype) for name, (dtype, shape, _, _) in entries.items()}
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start, shape=(data_size,))
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        array = data[begin:end].view(dtype).reshape(shape)
        if header[name]["dtype"] == "BF16":
            array = _bf16_to_float32(array)
        tensors[name] = array
    return tensors


# ------------------------------------------------------------------------- names
def canonical_name(name: str) -> str:
    """One spelling per tensor: no `distilbert.` prefix, LayerNorm `gamma`/`beta` -> `weight`/`bias`."""
    if name.startswith("distilbert."):
        name = name[len("distilbert."):]
    stem, _, leaf = name.rpartition(".")
    if leaf in ("gamma", "beta") and "norm" in stem.lower():
        name = f"{stem}.{'weight' if leaf == 'gamma' else 'bias'}"
    return name


# ------------------------------------------------------------------- a checkpoint
class Checkpoint:
    """The tensors of one model directory under canonical names, with where each came from.

    Models pull what they need with `take`, which checks the shape; `unused` then tells
    what nobody asked for.
    """

    def __init__(self, directory: Path, tensors: dict[str, np.ndarray], sources: dict[str, Path]):
        self.directory = directory
        self.tensors = tensors
        self.sources = sources
        self._taken: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def take(self, name: str, shape: tuple[int, ...], dtype: np.dtype, why: str = "") -> np.ndarray:
        """The tensor `name` as `dtype` (no copy when it already is), checked against `shape`."""
        if name not in self.tensors:
            raise CheckpointError(
                f"{self.directory}: missing tensor {name!r}{f' ({why})' if why else ''}; "
                f"the checkpoint has {len(self.tensors)} tensors"
            )
        array = self.tensors[name]
        if array.shape != tuple(shape):
            raise CheckpointError(
                f"{self.sources[name]}: tensor {name!r} has shape {list(array.shape)}, but "
                f"config.json implies {list(shape)}{f' ({why})' if why else ''}"
            )
        self._taken.add(name)
        return array if array.dtype == dtype else array.astype(dtype)

    def take_affine(
        self, name: str, out_features: int, in_features: int | None, dtype: np.dtype, why: str = ""
    ) -> tuple[np.ndarray, np.ndarray]:
        """`name.weight` [out, in] (or [out] when in_features is None, as LayerNorm's gain)
        and `name.bias` [out]: the pair every nn.Linear and nn.LayerNorm stores."""
        shape = (out_features,) if in_features is None else (out_features, in_features)
        return (
            self.take(f"{name}.weight", shape, dtype, why),
            self.take(f"{name}.bias", (out_features,), dtype, why),
        )

    def unused(self) -> list[str]:
        return sorted(set(self.tensors) - self._taken)


def _merge(target: dict, sources: dict, tensors: dict[str, np.ndarray], path: Path) -> None:
    for raw_name, array in tensors.items():
        name = canonical_name(raw_name)
        if name in target:
            raise CheckpointError(
                f"{path}: tensor {raw_name!r} duplicates {name!r} from {sources[name]}"
            )
        target[name] = array
        sources[name] = path


def _refuse_pickle(directory: Path, found: Iterable[str]) -> None:
    names = ", ".join(found)
    raise CheckpointError(
        f"{directory} holds only PyTorch pickle weights ({names}). numpy-distilbert never "
        f"unpickles: loading a pickle can run arbitrary code. Convert once with transformers: "
        f"`DistilBertForMaskedLM.from_pretrained(dir).save_pretrained(dir, "
        f"safe_serialization=True)`, which writes model.safetensors."
    )


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Load `model.safetensors`, or the shards listed in `model.safetensors.index.json`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"model directory not found: {directory}")
    tensors: dict[str, np.ndarray] = {}
    sources: dict[str, Path] = {}
    single, index = directory / SAFETENSORS_FILE, directory / SAFETENSORS_INDEX_FILE
    if single.is_file():
        _merge(tensors, sources, read_safetensors(single), single)
    elif index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            if not isinstance(weight_map, dict):
                raise TypeError("weight_map is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index}: malformed shard index ({exc})") from None
        for shard_name in sorted(set(weight_map.values())):
            shard = directory / shard_name
            if not shard.is_file():
                raise FileNotFoundError(f"{index} lists shard {shard_name!r}, which is missing")
            shard_tensors = read_safetensors(shard)
            for name, listed_in in weight_map.items():
                if listed_in == shard_name and name not in shard_tensors:
                    raise CheckpointError(f"{index} says {name!r} is in {shard}, but it is not")
            _merge(tensors, sources, shard_tensors, shard)
    else:
        found = [name for name in PICKLE_FILES if (directory / name).is_file()]
        if found:
            _refuse_pickle(directory, found)
        raise FileNotFoundError(
            f"{directory} has no {SAFETENSORS_FILE} or {SAFETENSORS_INDEX_FILE}"
        )
    return Checkpoint(directory, tensors, sources)
