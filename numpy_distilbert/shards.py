"""Embeddings at corpus scale: float32 `.npy` shards with an index of line ids, and top-k cosine
search over them that memory-maps the shards and reads them in blocks.

A shard directory (`embed -o DIR`):

    DIR/job.json                what made it (command, options, model files): a resume must match
    DIR/shard-00000.npy         float32 [rows, D], one row per input that succeeded
    DIR/shard-00000.lines.npy   int64 [rows], the input line number of every row
    DIR/index.jsonl             one line per finished shard, appended after both files are in place:
                                {"shard": 0, "vectors": ..., "lines": ..., "rows": r, "records": n,
                                 "dim": D, "first_line": a, "last_line": b, "errors": [{"line", "error"}]}

A shard holds a whole number of batches; it is written to `*.partial`, synced and renamed, and
only then listed in the index. So after a kill the index lists complete shards only; a torn last
index line, a `.partial` file or a shard not (or not correctly) listed is removed and redone.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from numpy_distilbert.jobs import (
    OutputWriteError,
    ResumeError,
    check_description,
    write_all,
    write_description,
)

INDEX_NAME = "index.jsonl"
DESCRIPTION_NAME = "job.json"
SHARD_DTYPE = np.float32
DEFAULT_SHARD_ROWS = 16384  # 16,384 x 384 float32 = 24 MB per shard: little to redo after a kill
SEARCH_BLOCK_ROWS = 65536


def shard_names(number: int) -> tuple[str, str]:
    """(vectors file, line numbers file) of shard `number`."""
    return f"shard-{number:05d}.npy", f"shard-{number:05d}.lines.npy"


def is_shard_directory(path: str | Path) -> bool:
    return (Path(path) / DESCRIPTION_NAME).is_file() and Path(path).is_dir()


@dataclass(frozen=True)
class ShardEntry:
    """One line of index.jsonl."""

    shard: int
    vectors: str
    lines: str
    rows: int
    records: int
    dim: int
    first_line: int
    last_line: int
    errors: tuple[tuple[int, str], ...]

    def as_json(self) -> dict[str, Any]:
        return {"shard": self.shard, "vectors": self.vectors, "lines": self.lines, "rows": self.rows,
                "records": self.records, "dim": self.dim, "first_line": self.first_line,
                "last_line": self.last_line, "errors": [{"line": n, "error": e} for n, e in self.errors]}


def _entry_from_json(raw: bytes, where: str) -> ShardEntry:
    try:
        data = json.loads(raw)
        entry = ShardEntry(int(data["shard"]), str(data["vectors"]), str(data["lines"]), int(data["rows"]),
                           int(data["records"]), int(data["dim"]), int(data["first_line"]),
                           int(data["last_line"]),
                           tuple((int(e["line"]), str(e["error"])) for e in data["errors"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ResumeError(f"{where} is not a shard index entry ({exc})") from None
    if (entry.vectors, entry.lines) != shard_names(entry.shard):
        raise ResumeError(f"{where} names files that are not shard {entry.shard}'s")
    return entry


def _read_index(directory: Path) -> tuple[list[ShardEntry], list[int]]:
    """The complete entries of DIR/index.jsonl and the byte offset after each (a torn last line left out)."""
    entries: list[ShardEntry] = []
    ends: list[int] = []
    offset = 0
    path = directory / INDEX_NAME
    if not path.exists():
        return [], []
    with open(path, "rb") as stream:
        for n, raw in enumerate(stream, 1):
            if not raw.endswith(b"\n"):
                break
            entry = _entry_from_json(raw, f"{path} line {n}")
            if entry.shard != len(entries):
                raise ResumeError(f"{path} line {n} is shard {entry.shard}, expected {len(entries)}")
            offset += len(raw)
            entries.append(entry)
            ends.append(offset)
    return entries, ends


def _shard_is_whole(directory: Path, entry: ShardEntry) -> bool:
    """Whether both files of a listed shard are there with the shapes the index says."""
    try:
        vectors = np.load(directory / entry.vectors, mmap_mode="r", allow_pickle=False)
        lines = np.load(directory / entry.lines, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    if vectors.dtype != SHARD_DTYPE or vectors.shape != (entry.rows, entry.dim):
        return False
    if lines.dtype != np.int64 or lines.shape != (entry.rows,):
        return False
    return entry.rows == 0 or (int(lines[0]) >= entry.first_line and int(lines[-1]) <= entry.last_line)


def entry_record_lines(directory: Path, entry: ShardEntry) -> Iterator[int]:
    """Every input line number a shard covers, in order: its rows' and its errors', merged."""
    rows = np.load(directory / entry.lines, mmap_mode="r", allow_pickle=False)
    yield from heapq.merge((int(n) for n in rows), (n for n, _ in entry.errors))


def vector_problem(result: Any, width: int | None, into: str, of_width: str) -> str | None:
    """Why an embedding result (JSON-ready) cannot be one row of `into` whose rows hold `width`
    values (None: not known yet), or None. `of_width` names those rows in the message."""
    if not isinstance(result, list) or not result or isinstance(result[0], list):
        return f"one vector per input is needed for {into}: --pooling none gives one per token"
    if width is not None and len(result) != width:
        return f"a vector of {len(result)} values does not fit {of_width}"
    return None


class ShardWriter:
    """`embed -o DIR`: output records gathered into float32 shards, each a whole number of batches.

    Same protocol as `jobs.JsonLinesOutput`: `finished_lines()` after a resume, `write(records)`
    for every batch in order, `close()` to write the last, shorter shard.
    """

    def __init__(self, directory: str | Path, description: dict[str, Any], batch_size: int,
                 shard_rows: int, resume: bool, warn: Any = None) -> None:
        self.directory = Path(directory)
        self.batch_size = batch_size
        # Whole batches per shard, so that a resumed run cuts the rest of the input as the first did.
        self.shard_records = max(1, -(-shard_rows // batch_size)) * batch_size
        self.warn = warn or (lambda message: None)
        self.entries: list[ShardEntry] = []
        self.pending: list[dict[str, Any]] = []
        self.last_line = 0
        self.dim: int | None = None
        try:
            self._open(description, resume)
        except OSError as exc:
            raise OutputWriteError(f"cannot write shards to {self.directory}: {exc.strerror or exc}"
                                   ) from None

    def _open(self, description: dict[str, Any], resume: bool) -> None:
        description_path = self.directory / DESCRIPTION_NAME
        if self.directory.exists() and not self.directory.is_dir():
            raise ResumeError(f"{self.directory} is a file, not a shard directory; use FILE.npy or "
                              f"FILE.jsonl for one file")
        if self.directory.is_dir() and any(self.directory.iterdir()):
            if not resume:
                raise ResumeError(f"{self.directory} is not empty: pass --resume to go on with the job in "
                                  f"it, or give a new directory")
            check_description(description_path, description, str(self.directory))
            entries, ends = _read_index(self.directory)
            whole = 0
            while whole < len(entries) and _shard_is_whole(self.directory, entries[whole]):
                whole += 1
            if whole < len(entries):
                self.warn(f"{self.directory}: shard {whole} is damaged; it and every later shard are redone")
            self.entries = entries[:whole]
            end = ends[whole - 1] if whole else 0
            with open(self.directory / INDEX_NAME, "ab") as stream:
                stream.truncate(end)  # drop a torn last line and the entries of damaged shards
            self._remove_unlisted()
            if self.entries:
                self.dim = self.entries[0].dim
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_description(description_path, description)
            (self.directory / INDEX_NAME).touch()

    def _remove_unlisted(self) -> None:
        """Shard files the index does not list (a shard being written when the run died)."""
        listed = {name for entry in self.entries for name in (entry.vectors, entry.lines)}
        for path in self.directory.glob("shard-*"):
            if path.name not in listed:
                path.unlink()

    def finished_lines(self) -> Iterator[tuple[int, Any]]:
        """(input line number, None) of every record the kept shards cover, in order."""
        for entry in self.entries:
            for line in entry_record_lines(self.directory, entry):
                self.last_line = line
                yield line, None

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        # Vectors wait as float32 arrays (4 bytes a value, not a Python float's 24) until their shard.
        self.pending.extend({**r, "result": np.asarray(r["result"], dtype=SHARD_DTYPE)}
                            if "result" in r else r for r in records)
        while len(self.pending) >= self.shard_records:
            self._write_shard(self.pending[: self.shard_records])
            self.pending = self.pending[self.shard_records:]

    def close(self) -> None:
        if self.pending:
            self._write_shard(self.pending)
            self.pending = []

    def problem(self, result: Any) -> str | None:
        """Why a result cannot be a shard row (not one vector, or another length), or None."""
        return vector_problem(result, self.dim, "shards", f"shards of {self.dim}")

    def _write_shard(self, records: Sequence[dict[str, Any]]) -> None:
        rows = [r for r in records if "result" in r]
        if self.dim is None and rows:
            self.dim = len(rows[0]["result"])
        dim = self.dim or 0
        vectors = np.asarray([r["result"] for r in rows], dtype=SHARD_DTYPE).reshape(len(rows), dim)
        lines = np.asarray([r["line"] for r in rows], dtype=np.int64)
        entry = ShardEntry(len(self.entries), *shard_names(len(self.entries)), rows=len(rows),
                           records=len(records), dim=dim, first_line=records[0]["line"],
                           last_line=records[-1]["line"],
                           errors=tuple((r["line"], r["error"]) for r in records if "error" in r))
        try:
            _save_atomically(self.directory / entry.lines, lines)
            _save_atomically(self.directory / entry.vectors, vectors)
            self._append_to_index(entry)
        except OSError as exc:
            for name in (entry.lines, entry.vectors):
                for path in (self.directory / name, self.directory / (name + ".partial")):
                    with contextlib.suppress(OSError):
                        path.unlink()
            raise OutputWriteError(
                f"cannot write shard {entry.shard} to {self.directory}: {exc.strerror or exc}; the "
                f"{len(self.entries)} shards before it are complete, up to input line {self.last_line} "
                f"(rerun with --resume to go on)") from None
        self.entries.append(entry)
        self.last_line = entry.last_line

    def _append_to_index(self, entry: ShardEntry) -> None:
        path = self.directory / INDEX_NAME
        data = (json.dumps(entry.as_json(), ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            try:
                write_all(fd, data)
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # nothing half-written after the last complete entry
                raise
        finally:
            os.close(fd)


def _save_atomically(path: Path, array: NDArray[Any]) -> None:
    """np.save to PATH.partial, synced, then renamed: PATH is only ever a complete file."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as stream:
        np.save(stream, array, allow_pickle=False)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)


# -------------------------------------------------------------------- search
@dataclass(frozen=True)
class Shards:
    """The shards of a directory, memory-mapped: vectors[i] [rows_i, D] and lines[i] [rows_i]."""

    directory: Path
    description: dict[str, Any]
    vectors: tuple[NDArray[np.float32], ...]
    lines: tuple[NDArray[np.int64], ...]
    errors: tuple[tuple[int, str], ...]

    @property
    def rows(self) -> int:
        return sum(len(v) for v in self.vectors)

    @property
    def dim(self) -> int:
        return int(self.vectors[0].shape[1]) if self.vectors else 0


def open_shards(directory: str | Path) -> Shards:
    """Memory-map every shard listed in DIR/index.jsonl (nothing is read yet); ValueError naming the
    problem when the directory is not a complete, consistent set of shards."""
    root = Path(directory)
    try:
        description = json.loads((root / DESCRIPTION_NAME).read_text(encoding="utf-8"))
        entries, _ = _read_index(root)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{root} is not a shard directory: {exc}") from None
    vectors: list[NDArray[np.float32]] = []
    lines: list[NDArray[np.int64]] = []
    errors: list[tuple[int, str]] = []
    for entry in entries:
        if not _shard_is_whole(root, entry):
            raise ValueError(f"{root}: shard {entry.shard} ({entry.vectors}) is missing or damaged; rerun "
                             f"the embed job with --resume to redo it")
        vectors.append(np.load(root / entry.vectors, mmap_mode="r", allow_pickle=False))
        lines.append(np.load(root / entry.lines, mmap_mode="r", allow_pickle=False))
        errors.extend(entry.errors)
    dims = {v.shape[1] for v in vectors if len(v)}
    if len(dims) > 1:
        raise ValueError(f"{root}: shards of different widths {sorted(dims)}")
    return Shards(root, description, tuple(vectors), tuple(lines), tuple(errors))


def top_k_cosine(
    shards: Sequence[NDArray[np.floating]], queries: NDArray[np.floating], k: int,
    block_rows: int = SEARCH_BLOCK_ROWS,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The k rows most cosine-similar to each query, over shards read `block_rows` rows at a time.

    shards: [rows_i, D] arrays (memory-mapped: only one block is in memory at a time);
    queries: [Q, D]. Returns (global row numbers [Q, k'], cosines [Q, k']) best first, k' = min(k,
    rows); equal scores keep the earlier row first. A zero vector has cosine 0 with everything.
    """
    if k < 1 or block_rows < 1:
        raise ValueError(f"k and block_rows must be positive, got {k} and {block_rows}")
    queries = np.asarray(queries, dtype=np.float32)
    q_norms = np.linalg.norm(queries, axis=1, keepdims=True)  # [Q, 1]
    unit_queries = queries / np.where(q_norms > 0, q_norms, 1)  # [Q, D]
    best_rows = np.zeros((len(queries), 0), np.int64)
    best_scores = np.zeros((len(queries), 0), np.float32)
    offset = 0
    for shard in shards:
        for start in range(0, len(shard), block_rows):
            block = np.asarray(shard[start : start + block_rows], dtype=np.float32)  # [b, D], read here
            norms = np.sqrt(np.einsum("bd,bd->b", block, block))  # [b]
            scores = (unit_queries @ block.T) / np.where(norms > 0, norms, 1)  # [Q, b]
            rows = np.arange(offset + start, offset + start + len(block), dtype=np.int64)
            top_rows, top_scores = _block_candidates(rows, scores, k)
            best_rows, best_scores = _keep_best(np.hstack([best_rows, top_rows]),
                                                np.hstack([best_scores, top_scores]), k)
        offset += len(shard)
    return best_rows, best_scores.astype(np.float64)


def _block_candidates(rows: NDArray[np.int64], scores: NDArray[np.float32],
                      k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Per query, a few more than the k best of one block ([Q, b] -> [Q, c]) in O(b): every score
    at least the k-th best is kept, so ties at the boundary are decided later by row number."""
    if scores.shape[1] <= k:
        return np.broadcast_to(rows, scores.shape).copy(), scores
    order = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # [Q, k]: the k best, in no order
    kth = np.take_along_axis(scores, order, axis=1).min(axis=1)  # [Q]: each query's k-th best score
    width = int((scores >= kth[:, None]).sum(axis=1).max())
    if width > k:  # more scores equal the k-th best: keep them all (rarely needed)
        order = np.argpartition(-scores, width - 1, axis=1)[:, :width]
    return rows[order], np.take_along_axis(scores, order, axis=1)


def _keep_best(rows: NDArray[np.int64], scores: NDArray[np.float32],
               k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Per query: the k highest scores, ties by the lower row number."""
    order = np.lexsort((rows, -scores), axis=-1)[:, :k]
    return np.take_along_axis(rows, order, axis=-1), np.take_along_axis(scores, order, axis=-1)


def row_lines(shards: Shards, rows: NDArray[np.int64]) -> NDArray[np.int64]:
    """Global row numbers -> the input line numbers stored beside the shards."""
    bounds = np.cumsum([0] + [len(v) for v in shards.vectors])  # [S + 1]
    shard_of = np.searchsorted(bounds, rows, side="right") - 1
    return np.array([int(shards.lines[s][r - bounds[s]]) for s, r in zip(shard_of.ravel(), rows.ravel(),
                                                                           strict=True)],
                    dtype=np.int64).reshape(rows.shape)
