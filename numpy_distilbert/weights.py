"""Reading DistilBERT checkpoints from safetensors files, with NumPy alone.

A safetensors file is three things in a row:

    [8 bytes: N, little-endian u64] [N bytes: JSON header] [raw tensor bytes]

The header maps each tensor name to its dtype, shape and `data_offsets` [begin, end),
counted from the first byte after the header. Reading one is therefore a memory map
plus a view per tensor: a 542 MB checkpoint costs no copy and no time at load, and the
operating system pages in only what the forward pass touches. Nothing here unpickles;
`pytorch_model.bin` files are refused with an explanation.

The memory map has one catch: the loaded arrays *are* the file. Rewriting a checkpoint
while a model loaded from it is alive silently changes that model's results, and
truncating it makes the next forward pass touch pages that no longer exist, which kills
the process with SIGBUS (a signal, not a Python exception). Replace checkpoints by
writing a new file and renaming it over the old one (the old mapping keeps the old
inode), or load with `mmap=False`, which reads the tensors into memory once and leaves
nothing tied to the file.

Every header is checked before any array is made: JSON that parses (no duplicate keys,
no runaway nesting), dtypes, shapes of at most 64 non-negative integer dimensions,
offsets inside the file, no overlaps. Shard indexes may only name plain files inside the
model directory.

Tensor names are mapped to one canonical form: without the `distilbert.` prefix that
task models add, and with LayerNorm's legacy `gamma`/`beta` renamed `weight`/`bias`.
"""

from __future__ import annotations

import hashlib
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
MAX_INDEX_BYTES = 100 * 1024 * 1024  # a shard index lists names; real ones are kilobytes
MAX_DIMENSIONS = 64  # NumPy's limit on an array's number of dimensions
# No tensor may claim more bytes than this even when a zero dimension makes it empty: a
# shape like [0, 2**70] would otherwise reach NumPy and fail inside `reshape`.
MAX_TENSOR_BYTES = 2**48

# safetensors dtype name -> how the bytes are stored. BF16 has no NumPy dtype: it is
# stored as uint16 and widened to float32 by `_bf16_to_float32`.
_DTYPES: dict[str, np.dtype] = {
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


class StrictJSONError(ValueError):
    """JSON that Python's json module would accept but a checkpoint must not contain."""


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """json `object_pairs_hook`: a key given twice is an error, not "the last one wins"."""
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError(f"not JSON a reader can trust (key {_short(key)} appears twice)")
        result[key] = value
    return result


def parse_json(raw: bytes | str) -> object:
    """Parse JSON strictly; raises ValueError with the reason (callers add file and field).

    Duplicate keys are refused: which tensor would be meant? (Python's json and the
    safetensors library, 0.8, both silently keep the last one.) So is nesting deep enough
    to exhaust Python's recursion limit.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise StrictJSONError(f"not JSON (not UTF-8: {exc})") from None
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"not JSON ({exc})") from None
    except RecursionError:
        raise StrictJSONError("not JSON a reader can trust (nested too deeply to parse)") from None


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
        header = parse_json(raw_header)
    except StrictJSONError as exc:
        raise CheckpointError(f"{path}: not a safetensors file (header is {exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header must be a JSON object")
    return header, 8 + header_len


def _is_count(value: object) -> bool:
    """A JSON integer >= 0; `true` is not one, though Python's bool is an int."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _short(value: object, limit: int = 80) -> str:
    """repr(value), cut to `limit` characters: error messages must stay one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_entry(path: Path, name: str, entry: object, data_size: int) -> tuple[np.dtype, tuple, int, int]:
    """Validate one header entry against the file; returns (storage dtype, shape, begin, end)."""
    where = f"{path}: tensor {name!r}"
    if not isinstance(entry, dict):
        raise CheckpointError(f"{where}: header entry is not an object")
    dtype_name = entry.get("dtype")
    if not isinstance(dtype_name, str) or dtype_name not in _DTYPES:  # a list is unhashable
        raise CheckpointError(f"{where}: unsupported dtype {_short(dtype_name)}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(_is_count(d) for d in shape)):
        raise CheckpointError(f"{where}: malformed shape {_short(shape)} (need a list of integers >= 0)")
    if len(shape) > MAX_DIMENSIONS:
        raise CheckpointError(
            f"{where}: malformed shape with {len(shape)} dimensions (at most {MAX_DIMENSIONS})"
        )
    if math.prod(d for d in shape if d) * _DTYPES[dtype_name].itemsize > MAX_TENSOR_BYTES:
        raise CheckpointError(f"{where}: malformed shape {_short(shape)} (absurdly large)")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise CheckpointError(f"{where}: malformed data_offsets {_short(offsets)}")
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


def _read_data(path: Path, data_start: int, data_size: int, mmap: bool) -> np.ndarray:
    """The data section as read-only uint8 [data_size]: a memory map, or a copy in memory."""
    if mmap:
        return np.memmap(path, dtype=np.uint8, mode="r", offset=data_start, shape=(data_size,))
    data = np.empty(data_size, dtype=np.uint8)
    with path.open("rb") as f:
        f.seek(data_start)
        n_read = f.readinto(data.data)  # the array's own buffer: no copy
    if n_read != data_size:  # the file shrank between the size check and the read
        raise CheckpointError(f"{path}: read {n_read} of {data_size} data bytes (file changed while loading)")
    data.flags.writeable = False
    return data


def read_safetensors(path: str | Path, mmap: bool = True) -> dict[str, np.ndarray]:
    """Read a .safetensors file and return {name: read-only array}.

    mmap=True (the default) maps the file and copies nothing; the arrays then stay tied to
    the file, so it must not be rewritten or truncated while they are in use (see the
    module docstring: truncation kills the process with SIGBUS). mmap=False reads the data
    into memory once, and later changes to the file cannot reach the arrays.

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
    data = _read_data(path, data_start, data_size, mmap)
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

    def leave_out(self, names: Iterable[str]) -> None:
        """Count `names` (those present) as used without loading them: tensors a model knowingly
        does without, as transformers' token-level BERT heads drop a checkpoint's pooler."""
        self._taken.update(name for name in names if name in self.tensors)

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


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read 1 MiB at a time (OSError when it cannot be read)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pickle_refusal(directory: Path, found: Iterable[str]) -> CheckpointError:
    """The one error for a model directory that holds only PyTorch pickles (hub.py raises it too)."""
    return CheckpointError(
        f"{directory} holds only PyTorch pickle weights ({', '.join(found)}). numpy-distilbert "
        f"never unpickles: loading a pickle can run arbitrary code. Convert once, where torch "
        f"and transformers are installed: `transformers.<the class config.json's architectures "
        f"names>.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)` writes "
        f"{SAFETENSORS_FILE}; or download {SAFETENSORS_FILE} from the Hub, which serves it for "
        f"most models (`hf download <model id> {SAFETENSORS_FILE}`)."
    )


def _is_plain_file_name(name: object) -> bool:
    """A name for a file directly inside the model directory: no separators, no `..`, not absolute."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and Path(name).name == name
        and not Path(name).is_absolute()
    )


def read_shard_index(index: Path) -> dict[str, str]:
    """{tensor name: shard file name} from `model.safetensors.index.json`, every value checked
    to be a plain file name, so that no index can make us open a file outside its directory."""
    if index.stat().st_size > MAX_INDEX_BYTES:
        raise CheckpointError(f"{index}: malformed shard index (larger than {MAX_INDEX_BYTES} bytes)")
    try:
        content = parse_json(index.read_bytes())
    except StrictJSONError as exc:
        raise CheckpointError(f"{index}: malformed shard index ({exc})") from None
    weight_map = content.get("weight_map") if isinstance(content, dict) else None
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index}: malformed shard index ('weight_map' is not an object)")
    for name, shard_name in weight_map.items():
        if not _is_plain_file_name(shard_name):
            raise CheckpointError(
                f"{index}: malformed shard index: weight_map[{_short(name)}] is {_short(shard_name)}, "
                f"which is not the name of a file inside {index.parent}"
            )
    return weight_map


def load_checkpoint(directory: str | Path, mmap: bool = True) -> Checkpoint:
    """Load `model.safetensors`, or the shards listed in `model.safetensors.index.json`.

    mmap=True maps the files (no copy; the files must then stay unchanged while the
    tensors are in use), mmap=False reads them into memory: see `read_safetensors`.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"model directory not found: {directory}")
    tensors: dict[str, np.ndarray] = {}
    sources: dict[str, Path] = {}
    single, index = directory / SAFETENSORS_FILE, directory / SAFETENSORS_INDEX_FILE
    if single.is_file():
        _merge(tensors, sources, read_safetensors(single, mmap), single)
    elif index.is_file():
        weight_map = read_shard_index(index)
        for shard_name in sorted(set(weight_map.values())):
            shard = directory / shard_name
            if not shard.is_file():
                raise FileNotFoundError(f"{index} lists shard {shard_name!r}, which is missing")
            shard_tensors = read_safetensors(shard, mmap)
            for name, listed_in in weight_map.items():
                if listed_in == shard_name and name not in shard_tensors:
                    raise CheckpointError(f"{index} says {name!r} is in {shard}, but it is not")
            _merge(tensors, sources, shard_tensors, shard)
    else:
        found = [name for name in PICKLE_FILES if (directory / name).is_file()]
        if found:
            raise pickle_refusal(directory, found)
        raise FileNotFoundError(
            f"{directory} has no {SAFETENSORS_FILE} or {SAFETENSORS_INDEX_FILE}"
        )
    return Checkpoint(directory, tensors, sources)
