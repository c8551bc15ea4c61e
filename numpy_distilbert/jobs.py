"""Corpus-scale jobs: numbered input records in, numbered output records out, in input order.

A job reads its input lazily, runs it in fixed batches (in this process or in worker
processes), and appends the results to an output that survives being killed at any moment:

    records ──batches(size)──► run_records(run, batch) ──► JsonLinesOutput / shards.ShardWriter
                                  (here, or in workers)         (appends whole batches, in order)

* **Batches are fixed by position**: batch k holds the input records k*size … k*size+size-1.
  Padding a batch changes a result's last bits (BLAS kernels see other shapes), so the same
  input gives the same bits only if it is cut into the same batches: one worker or many, and
  a resumed run, all cut it the same way.
* **Resume is verified by line number.** Every output record carries its input line number.
  On `--resume` the kept output is read back record by record and each must name the line
  number of the input record at the same position; the output is cut back to the last whole
  batch (a torn last line, or half a batch, is redone), and the job goes on from there.
* **Nothing half-written stays.** A batch is appended with one write; if that write fails
  (a full disk), the file is cut back to the last complete batch before the error is raised.
* **Workers are fresh interpreters** (spawned, as multiprocessing's "spawn", so they share the
  memory-mapped weights through the page cache and import no state by fork) that speak JSON
  lines over their stdin/stdout: no pickle. Each is given BLAS threads so that workers x threads
  does not exceed the cores. A worker that dies is reported with what it was running.
* **The model must not change under a job**: its files' sizes and modification times are
  checked before every batch, in every process, and against the job's description on resume.

`run_records(run, records)` is the pure core (a list of input records and a loaded pipeline's
batch function -> one output record each), for any engine that distributes batches itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOB_FORMAT = 1
# Every BLAS the wheels of numpy ship read one of these when they load: set before numpy is imported.
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                         "VECLIB_MAXIMUM_THREADS")
WORKER_BATCHES_IN_FLIGHT = 2  # per worker: one running, one waiting in its pipe (no idle gap)
READ_BUFFER_BYTES = 1 << 16  # reading the workers' answers: a pipe's capacity per system call
WORKER_STOP_SECONDS = 10.0


class JobError(Exception):
    """The job cannot go on; the message names the file, line or worker."""


class ResumeError(JobError):
    """The existing output cannot be continued (another job's, damaged, or another input's)."""


class OutputWriteError(JobError):
    """The output could not be written (e.g. a full disk); what was written before is intact."""


class WorkerError(JobError):
    """A worker process died, or reported an error that ends the job."""


class ModelChangedError(JobError):
    """The model directory's files changed while the job was running (or since it started)."""


# ------------------------------------------------------------------ records
@dataclass(frozen=True)
class InputRecord:
    """One input: its 1-based line number, its pipeline input (or why it has none), its --id-field."""

    line: int
    value: Any = None
    id: Any = None
    problem: str | None = None


def one_line(exc: BaseException | str) -> str:
    """An exception (or text) as one line: KeyError's quotes dropped, newlines folded (the CLI's
    messages too)."""
    if isinstance(exc, BaseException):
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        text = text or type(exc).__name__
    else:
        text = exc
    return " ".join(text.split())


def output_record(record: InputRecord, *, result: Any = None, error: str | None = None) -> dict[str, Any]:
    """{"line": N, ["id": ...,] "result": ...} or {"line": N, ["id": ...,] "error": "..."}."""
    out: dict[str, Any] = {"line": record.line}
    if record.id is not None:
        out["id"] = record.id
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    return out


def json_ready(result: Any) -> Any:
    """A result as plain JSON values (arrays as nested lists); ValueError when it holds NaN or infinity."""
    if type(result).__module__ == "numpy":
        import numpy as np

        if np.issubdtype(result.dtype, np.inexact) and not np.isfinite(result).all():
            raise ValueError("the result holds NaN or infinity")
        return result.tolist()
    try:  # strict JSON has no spelling for NaN or infinity: refuse them here, where the line is known
        json.dumps(result, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"the result cannot be written as JSON: {one_line(exc)}") from None
    return result


def run_records(
    run: Callable[[list[Any]], list[Any]], records: Sequence[InputRecord],
    on_error: Callable[[BaseException], None] | None = None,
) -> list[dict[str, Any]]:
    """The job function: input records -> one JSON-ready output record each, in the same order.

    `run` maps a list of pipeline inputs to one result each (a loaded pipeline with its options).
    The records' good inputs run as one batch; if that batch fails, each runs alone, so a bad
    input costs only its own result and becomes `{"line": N, "error": ...}`. `on_error` sees the
    exception of each failed input (e.g. to print its traceback).
    """
    good = [record for record in records if record.problem is None]
    results: dict[int, Any] = {}
    errors: dict[int, str] = {}
    if good:
        try:
            results = dict(zip((id(r) for r in good), run([r.value for r in good]), strict=True))
        except Exception:
            for record in good:
                try:
                    results[id(record)] = run([record.value])[0]
                except Exception as exc:
                    if on_error is not None:
                        on_error(exc)
                    errors[id(record)] = one_line(exc)
    outputs = []
    for record in records:
        if record.problem is not None:
            outputs.append(output_record(record, error=record.problem))
        elif id(record) in errors:
            outputs.append(output_record(record, error=errors[id(record)]))
        else:
            try:
                outputs.append(output_record(record, result=json_ready(results[id(record)])))
            except ValueError as exc:
                outputs.append(output_record(record, error=one_line(exc)))
    return outputs


def batches(records: Iterable[InputRecord], size: int) -> Iterator[list[InputRecord]]:
    """Consecutive batches of `size` records (the last may be shorter)."""
    batch: list[InputRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_record(record: dict[str, Any]) -> str:
    """One output record as one line of strict JSON (UTF-8 text, never a raw newline inside)."""
    return json.dumps(record, ensure_ascii=False, allow_nan=False)


# ------------------------------------------------------------ model identity
def model_signature(directory: str | Path) -> dict[str, list[int]]:
    """{relative file name: [size, mtime_ns, inode]} of every file of a model directory (and one
    level of sub-directories, e.g. a sentence-transformers 1_Pooling/): what a rewrite changes.
    Hidden entries (.git/, .cache/) are not the model's: `git status` rewriting .git/index must
    not stop a job. Files are stat'ed through symlinks (the HF cache's snapshots point at blobs)."""
    root = Path(directory)
    signature: dict[str, list[int]] = {}
    for path in sorted([*root.glob("*"), *root.glob("*/*")]):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            info = path.stat()
        except OSError:
            continue  # vanished between listing and stat: the next check sees it gone
        if path.is_file():
            signature[path.relative_to(root).as_posix()] = [info.st_size, info.st_mtime_ns, info.st_ino]
    return signature


def signature_changes(before: dict[str, list[int]], now: dict[str, list[int]]) -> str:
    """What differs between two model signatures, in words: the first five files."""
    words = [f"{name} removed" for name in sorted(before.keys() - now.keys())]
    words += [f"{name} added" for name in sorted(now.keys() - before.keys())]
    words += [f"{name} rewritten" for name in sorted(before.keys() & now.keys()) if before[name] != now[name]]
    return ", ".join(words[:5]) + (f" and {len(words) - 5} more" if len(words) > 5 else "")


def check_model_unchanged(directory: str | Path, signature: dict[str, list[int]]) -> None:
    """ModelChangedError naming the files that differ from `signature`."""
    now = model_signature(directory)
    if now == signature:
        return
    raise ModelChangedError(f"the model directory {directory} changed during the job "
                            f"({signature_changes(signature, now)}); "
                            f"its results would mix two models: stop, and rerun on a stable copy")


# ------------------------------------------------------------------- threads
def available_cores() -> int:
    """The cores this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, threads: int | None = None, cores: int | None = None) -> int:
    """BLAS threads for each of `workers` processes: `threads` if given, else the cores shared out
    (at least 1), so that workers x threads does not oversubscribe the machine."""
    if threads is not None:
        return threads
    return max(1, (cores or available_cores()) // workers)


def blas_thread_environment(threads: int | None) -> dict[str, str]:
    """Environment variables that give a process started with them `threads` BLAS threads."""
    return {} if threads is None else dict.fromkeys(BLAS_THREAD_VARIABLES, str(threads))


# ---------------------------------------------------------- job descriptions
def write_description(path: Path, description: dict[str, Any]) -> None:
    """Write a job description (JSON) atomically: a reader sees the old file or the whole new one."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as stream:
        json.dump(description, stream, indent=2, sort_keys=True)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)


def check_description(path: Path, wanted: dict[str, Any], output: str) -> None:
    """ResumeError unless the job description at `path` is `wanted` (same command, options, model)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResumeError(f"cannot resume {output}: {path} is missing, so what produced it is unknown; "
                          f"remove {output} to start again") from None
    except (OSError, ValueError) as exc:
        raise ResumeError(f"cannot resume {output}: {path} cannot be read ({one_line(exc)})") from None
    if not isinstance(stored, dict):
        raise ResumeError(f"cannot resume {output}: {path} is not a job description")
    differ = sorted(key for key in set(stored) | set(wanted) if stored.get(key) != wanted.get(key))
    if differ:
        details = []
        for key in differ:
            old, new = stored.get(key), wanted.get(key)
            if isinstance(old, dict) and isinstance(new, dict):
                inner = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                details.append(f"{key}: {', '.join(map(str, inner))}")
            else:
                details.append(key)
        raise ResumeError(f"cannot resume {output}: it was made by another job ({'; '.join(details)} "
                          f"differ{'s' if len(details) == 1 else ''}); rerun with the same options and "
                          f"model, or remove it to start again")


# -------------------------------------------------------------- writing
def write_all(fd: int, data: bytes, write: Callable[[int, Any], int] = os.write) -> None:
    """os.write until every byte is written (a regular file may take fewer at a time)."""
    view = memoryview(data)
    while view:
        written = write(fd, view)
        view = view[written:]


class JsonLinesOutput:
    """`-o FILE.jsonl`: output records appended batch by batch, resumable.

    The description of the job is kept beside it, in FILE.job.json. `finished_lines()` gives
    the line numbers already done (after `--resume`), which `skip_finished` checks against the
    input; `write(records)` appends one batch with one write.
    """

    def __init__(self, path: str | Path, description: dict[str, Any], batch_size: int, resume: bool) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self.description_path = self.path.with_name(self.path.name + ".job.json")
        self.kept = 0  # output records kept from an earlier run
        self.last_line = 0  # line number of the last record in the file
        self._write = os.write
        try:
            if resume and self.path.exists():
                check_description(self.description_path, description, str(self.path))
                self.kept, end = self._keep_whole_batches()
                self.fd = os.open(self.path, os.O_WRONLY)
                os.ftruncate(self.fd, end)
                os.lseek(self.fd, end, os.SEEK_SET)
            else:
                write_description(self.description_path, description)
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                end = 0
        except OSError as exc:
            raise OutputWriteError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.committed = end  # bytes of whole batches: what a failed write is cut back to

    def _keep_whole_batches(self) -> tuple[int, int]:
        """(records to keep, their byte length): the file's complete lines, checked, cut to whole batches.

        A last line without its newline (the run was killed mid-write) is not counted; nor are the
        records after the last whole batch, so that the redone batch is cut as it was the first time.
        """
        count, offset, end, previous = 0, 0, 0, 0
        with open(self.path, "rb") as stream:
            for raw in stream:
                if not raw.endswith(b"\n"):
                    break  # torn: the last write did not finish
                line = _record_line_number(raw, self.path, count + 1)
                if line <= previous:
                    raise ResumeError(f"cannot resume {self.path}: record {count + 1} is line {line}, not "
                                      f"after line {previous}; the file is not a job's output")
                previous = line
                count += 1
                offset += len(raw)
                if count % self.batch_size == 0:
                    end = offset
        return count - count % self.batch_size, end

    def finished_lines(self) -> Iterator[tuple[int, Any]]:
        """(input line number, id) of the kept records, read back from the file, in order."""
        if not self.kept:
            return
        with open(self.path, "rb") as stream:
            for n, raw in enumerate(stream, 1):
                if n > self.kept:
                    return
                line = _record_line_number(raw, self.path, n)
                self.last_line = line
                yield line, json.loads(raw).get("id")

    def problem(self, result: Any) -> str | None:
        return None  # any JSON result fits a JSON lines file

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        data = "".join(encode_record(record) + "\n" for record in records).encode("utf-8")
        try:
            write_all(self.fd, data, self._write)
        except OSError as exc:
            cut = self._cut_back()
            raise OutputWriteError(
                f"cannot write {self.path}: {exc.strerror or exc}; it holds every result up to input line "
                f"{self.last_line}{cut} (rerun with --resume to go on)") from None
        self.committed += len(data)
        self.last_line = records[-1]["line"]

    def _cut_back(self) -> str:
        try:
            os.ftruncate(self.fd, self.committed)
            return ", complete"
        except OSError as exc:  # say so rather than claim a clean file
            return f" (and could not cut off a partial line after it: {exc.strerror or exc})"

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError as exc:
            raise OutputWriteError(f"cannot write {self.path}: {exc.strerror or exc}") from None


def _record_line_number(raw: bytes, path: Path, n: int) -> int:
    """The "line" of output record n (a complete line of the file), or ResumeError naming it."""
    try:
        record = json.loads(raw)
    except ValueError:
        raise ResumeError(f"cannot resume {path}: its line {n} is not a JSON record; the file is not a "
                          f"job's output (or was edited)") from None
    line = record.get("line") if isinstance(record, dict) else None
    if not isinstance(line, int) or isinstance(line, bool) or line < 1:
        raise ResumeError(f"cannot resume {path}: its line {n} has no input line number (\"line\")")
    return line


def skip_finished(records: Iterable[InputRecord], finished: Iterable[tuple[int, Any]], output: str,
                  source: str) -> Iterator[InputRecord]:
    """The records not yet done. The first ones must be exactly the `finished` (line number, id)
    pairs, in order (the output was made from this input; an id of None is not compared); the
    rest are yielded."""
    iterator = iter(records)
    for position, (done, done_id) in enumerate(finished, 1):
        record = next(iterator, None)
        if record is None:
            raise ResumeError(f"cannot resume {output}: it has a result for line {done}, but {source} ends "
                              f"before it; the output was made from another input")
        if record.line != done:
            raise ResumeError(f"cannot resume {output}: its record {position} is for line {done}, but input "
                              f"{position} of {source} is line {record.line}; the output was made from "
                              f"another input")
        if done_id is not None and record.id != done_id:
            raise ResumeError(f"cannot resume {output}: its record for line {done} has id {done_id!r}, but "
                              f"{source} line {done} has id {record.id!r}; the output was made from another "
                              f"input")
    yield from iterator


# ----------------------------------------------------------------- executors
class InProcess:
    """Run batches here, one after another, checking the model before each."""

    def __init__(self, run: Callable[[list[Any]], list[Any]], model_dir: str | Path | None = None,
                 signature: dict[str, list[int]] | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.run, self.model_dir, self.signature, self.on_error = run, model_dir, signature, on_error

    def map(self, work: Iterable[list[InputRecord]]) -> Iterator[list[dict[str, Any]]]:
        for batch in work:
            if self.model_dir is not None and self.signature is not None:
                check_model_unchanged(self.model_dir, self.signature)
            yield run_records(self.run, batch, self.on_error)

    def close(self) -> None:
        pass


def record_to_wire(record: InputRecord) -> list[Any]:
    return [record.line, record.value, record.id, record.problem]


def record_from_wire(item: Any) -> InputRecord:
    line, value, ident, problem = item
    return InputRecord(int(line), value, ident, problem)


@dataclass
class _Worker:
    number: int
    process: subprocess.Popen[bytes]
    slots: threading.Semaphore
    running: dict[int, list[InputRecord]]  # batch number -> its records, until the answer comes


class WorkerPool:
    """`workers` spawned processes running batches; `map` yields the answers in batch order.

    `command` starts one worker (e.g. [python, -c, "...serve_worker()"]); its first line on stdin
    is `hello` (what to load). Every worker takes the next batch as soon as it has a free slot, so
    a slow batch does not hold the others; answers wait in order, at most a few batches each.
    """

    def __init__(self, command: Sequence[str], hello: dict[str, Any], workers: int,
                 env: dict[str, str] | None = None) -> None:
        self.answers: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self.todo: queue.Queue[tuple[int, list[InputRecord]] | None] = queue.Queue()
        self.workers: list[_Worker] = []
        self.threads: list[threading.Thread] = []
        self.used = False
        hello_line = (json.dumps(hello) + "\n").encode("utf-8")
        try:
            for number in range(1, workers + 1):
                process = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           env=env, bufsize=0)
                assert process.stdin is not None and process.stdout is not None
                # bufsize=0 sends each batch line at once; but an unbuffered pipe's readline reads
                # one byte per system call (an embedding batch's answer is ~250 KB), so answers are
                # read through a buffer. Nothing has been read yet, so nothing is lost.
                process.stdout = io.BufferedReader(process.stdout, READ_BUFFER_BYTES)  # type: ignore[type-var]
                process.stdin.write(hello_line)
                worker = _Worker(number, process, threading.Semaphore(WORKER_BATCHES_IN_FLIGHT), {})
                self.workers.append(worker)
            for worker in self.workers:
                self._wait_ready(worker)
            for worker in self.workers:
                for target in (self._send, self._receive):
                    thread = threading.Thread(target=target, args=(worker,), daemon=True)
                    thread.start()
                    self.threads.append(thread)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        raw = worker.process.stdout.readline()
        if not raw:
            raise WorkerError(f"worker {worker.number} (pid {worker.process.pid}) "
                              f"{_how_it_ended(worker.process)} before it was ready")
        message = json.loads(raw)
        if "fatal" in message:
            raise WorkerError(f"worker {worker.number}: {message['fatal']}")

    def _send(self, worker: _Worker) -> None:
        assert worker.process.stdin is not None
        while True:
            worker.slots.acquire()
            job = self.todo.get()
            if job is None:  # no more work: closing stdin lets the worker finish and exit
                self.todo.put(None)  # for the other senders
                with contextlib.suppress(OSError):
                    worker.process.stdin.close()
                return
            number, batch = job
            worker.running[number] = batch
            line = json.dumps({"batch": number, "records": [record_to_wire(r) for r in batch]},
                              ensure_ascii=False) + "\n"
            try:
                worker.process.stdin.write(line.encode("utf-8"))
            except (OSError, ValueError):
                return  # the worker died (its receiver reports it), or the pool is closing

    def _receive(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        for raw in worker.process.stdout:
            message = json.loads(raw)
            if "fatal" in message:
                self.answers.put(("fatal", worker.number, message["fatal"]))
                return
            number = int(message["batch"])
            worker.running.pop(number, None)
            worker.slots.release()
            self.answers.put(("batch", number, message["outputs"]))
        self.answers.put(("ended", worker.number, None))

    def map(self, work: Iterable[list[InputRecord]]) -> Iterator[list[dict[str, Any]]]:
        """Answers in batch order; the input is read only as far as the workers can take it.

        Once per pool: the end of `work` is the end of the workers' input."""
        if self.used:
            raise RuntimeError("WorkerPool.map runs once per pool")
        self.used = True
        source = iter(enumerate(work))
        pending: dict[int, list[dict[str, Any]]] = {}
        sent = next_out = 0
        exhausted = False
        ended: set[int] = set()
        while True:
            while not exhausted and sent - next_out < 2 * WORKER_BATCHES_IN_FLIGHT * len(self.workers):
                item = next(source, None)
                if item is None:
                    exhausted = True
                    self.todo.put(None)
                    break
                self.todo.put(item)  # read-ahead bounded by the window above
                sent += 1
            if exhausted and next_out == sent:
                return
            kind, number, payload = self.answers.get()
            if kind == "batch":
                pending[number] = payload
                while next_out in pending:
                    yield pending.pop(next_out)
                    next_out += 1
            elif kind == "fatal":
                raise WorkerError(f"worker {number}: {payload}")
            else:
                ended.add(number)
                worker = self.workers[number - 1]
                if worker.running or not exhausted:
                    raise WorkerError(self._crash_message(worker))
                if len(ended) == len(self.workers) and next_out < sent:
                    raise WorkerError("the workers ended before every batch was answered")

    def _crash_message(self, worker: _Worker) -> str:
        lines = sorted(r.line for batch in worker.running.values() for r in batch)
        doing = f" while running input lines {lines[0]}-{lines[-1]}" if lines else ""
        return (f"worker {worker.number} (pid {worker.process.pid}) {_how_it_ended(worker.process)}{doing}; "
                f"the results before those lines are written: rerun with --resume to go on")

    def close(self) -> None:
        """Stop every worker (they exit at the end of their stdin; those that do not are killed)."""
        self.todo.put(None)
        for worker in self.workers:
            if worker.process.stdin is not None:
                with contextlib.suppress(OSError):
                    worker.process.stdin.close()
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        for worker in self.workers:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            if worker.process.stdout is not None:
                worker.process.stdout.close()


def _how_it_ended(process: subprocess.Popen[bytes]) -> str:
    try:
        code = process.wait(timeout=WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


def serve_worker(load: Callable[[dict[str, Any]], tuple[Callable[[list[Any]], list[Any]], str | None]],
                 stdin: Any = None, stdout: Any = None,
                 on_error: Callable[[BaseException], None] | None = None) -> int:
    """A worker's main loop: read `hello`, `load(hello)` -> (run, model directory), then answer
    every batch line with its output records, until stdin ends. Returns the exit status.

    hello["signature"] is the model's `model_signature` when the job started: checked before
    every batch, so that a model rewritten mid-job stops the job instead of mixing two models.
    """
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else _protocol_stdout()

    def send(message: dict[str, Any]) -> None:
        stdout.write((json.dumps(message, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8"))
        stdout.flush()

    try:
        return _serve(load, stdin, send, on_error)
    except BrokenPipeError:  # the job's process is gone (killed): nobody is left to answer
        return 1


def _serve(load: Callable[[dict[str, Any]], tuple[Callable[[list[Any]], list[Any]], str | None]],
           stdin: Any, send: Callable[[dict[str, Any]], None],
           on_error: Callable[[BaseException], None] | None) -> int:
    line = stdin.readline()
    if not line:
        return 1
    hello = json.loads(line)
    try:
        run, model_dir = load(hello)
    except Exception as exc:
        send({"fatal": f"cannot load the model: {one_line(exc)}"})
        return 1
    send({"ready": True, "pid": os.getpid()})
    signature = hello.get("signature")
    for raw in stdin:
        message = json.loads(raw)
        try:
            if model_dir is not None and signature is not None:
                check_model_unchanged(model_dir, signature)
        except ModelChangedError as exc:
            send({"fatal": one_line(exc)})
            return 1
        records = [record_from_wire(item) for item in message["records"]]
        send({"batch": message["batch"], "outputs": run_records(run, records, on_error)})
    return 0


def _protocol_stdout() -> Any:
    """The real stdout (fd 1) for the protocol, and sys.stdout pointed at stderr, so that a stray
    print in any library cannot corrupt the answers."""
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol
