"""Run a pipeline over a Dask collection, for corpora that outgrow one machine.

    import dask.bag as db
    from numpy_distilbert.dask import map_pipeline

    lines = db.read_text("corpus-*.txt").map(str.rstrip)
    vectors = map_pipeline(lines, "embed", "path/to/all-MiniLM-L6-v2")     # a Bag of [384] arrays
    labels = map_pipeline(frame, "ner", "path/to/ner-model", field="body")  # a Series, one per row

`map_pipeline(collection, task, model, **options)` takes

* a `dask.bag.Bag` of texts, or of dicts whose `field` holds the text (JSON lines read with
  `db.read_text(...).map(json.loads)`); the result is a Bag with one result per item, in
  the same partitions and the same order;
* a `dask.dataframe` Series of texts, or a DataFrame and the `field` column that holds them;
  the result is a Series of object dtype with the input's index and divisions.

Tasks: every `pipeline` task (fill-mask, feature-extraction, text-classification,
token-classification, zero-shot-classification, question-answering and the aliases ner,
sentiment-analysis), the command line's names for them (classify, zero-shot, qa), and
"embed": sentence embeddings by `SentenceTransformer` (its pooling and normalisation).
`**options` go to the pipeline call (`top_k=3`, `candidate_labels=[...]`, ...) or to
`SentenceTransformer.encode` (`normalize_embeddings`, `output_value`).

One result per input, as the single-process call returns it:

    fill-mask                  a list of {"score", "token", "token_str", "sequence"} (one list per
                               [MASK] when a text has several)
    feature-extraction         nested lists [1][L][D] (np.ndarray with return_tensors=True)
    embed                      np.ndarray [D] (float32 unless dtype=np.float64)
    text-classification        {"label", "score"}; with top_k, a list of them
    token-classification       a list of entity dicts
    zero-shot-classification   {"sequence", "labels", "scores"}
    question-answering         {"score", "start", "end", "answer"}; with top_k > 1, a list

Only plain Python values and NumPy arrays travel back; the model never does. What travels
to the workers is the model's *path* (or model id) and the options: each worker process
loads the model the first time one of its tasks needs it and keeps it in a process-level
cache (keyed by task, model, revision and dtype, and guarded by a lock for workers with
several threads), so a worker loads it once however many partitions it runs. The weights
are memory-mapped, so the worker processes of one machine share one copy in the page cache.

A model directory that changes while a job runs (a file added, removed, rewritten) fails
that job with `ModelChangedError` instead of mixing two models' results: `map_pipeline`
records the files' sizes, modification times and inodes (`jobs.model_signature`, as the
command line's jobs do) when it builds the graph, and each partition checks them before it
runs. A later job sees the new files and reloads. Workers
that hold their own copies of a model (other modification times) pass `check_model=False`.

Bad input is refused with the partition and item (Bag) or the index label (DataFrame) that
holds it: a non-string text, a record without the field. An unknown task or option, or a
missing column, is refused by `map_pipeline` itself, before anything runs.

Dask itself moves tasks and results between processes with pickle (that is its transport,
inside a cluster one trusts); this module sends no model object through it, and loads
weights only from safetensors files, as everywhere in the package.

This module is the only one that imports Dask; it needs the `dask` extra:
`pip install "numpy-distilbert[dask]"`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from numpy_distilbert.jobs import ModelChangedError, model_signature, signature_changes
from numpy_distilbert.pipelines import SUPPORTED_TASKS, TASK_ALIASES, pipeline, pipeline_class

INSTALL_HINT = 'numpy_distilbert.dask needs Dask: pip install "numpy-distilbert[dask]"'

EMBED = "embed"
# The command line's names for the pipeline tasks, accepted here too.
COMMAND_NAMES = {"classify": "text-classification", "zero-shot": "zero-shot-classification",
                 "qa": "question-answering"}  # fmt: skip
# SentenceTransformer.encode's options that make sense per item (batch_size is map_pipeline's own).
EMBED_OPTIONS = ("normalize_embeddings", "output_value")
# Pipelines that unwrap the result of a one-item list (as transformers does); a partition of
# one item must still give a list of one result.
UNWRAPS_ONE = ("fill-mask", "question-answering")
# Each task's (text field, second text field) of a record; QA's records always hold both.
RECORD_FIELDS = {"question-answering": ("question", "context")}
PAIRED_TASKS = ("text-classification", "question-answering")


def _import_dask() -> Any:
    """`dask.bag`, or an ImportError that names the extra to install."""
    try:
        import dask.bag
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    return dask.bag


_import_dask()  # at import, so that a missing Dask says so at once


# --------------------------------------------------------------------- the job
@dataclass(frozen=True)
class Job:
    """What travels to the workers: names and plain values, never a loaded model."""

    task: str  # canonical: a SUPPORTED_TASKS key that is not an alias, or "embed"
    model: str  # an absolute directory, or a model id each worker resolves
    revision: str | None
    dtype: str  # np.dtype name, "float32" or "float64"
    batch_size: int | None  # None: the pipeline's (or SentenceTransformer's) default
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    text_field: str | None = None  # None: the items are the texts themselves
    pair_field: str | None = None
    # jobs.model_signature of the model directory when the job was built; None when the client
    # could not see the directory (a model id).
    fingerprint: dict[str, list[int]] | None = None


def canonical_task(task: Any) -> str:
    """A pipeline task, an alias or a command name -> the task's one name; ValueError if unknown."""
    if not isinstance(task, str):
        raise TypeError(f"task must be a string, got {type(task).__name__}")
    name = COMMAND_NAMES.get(task, TASK_ALIASES.get(task, task))
    if name != EMBED and name not in SUPPORTED_TASKS:
        known = sorted({EMBED, *SUPPORTED_TASKS, *COMMAND_NAMES})
        raise ValueError(f"unknown task {task!r}; map_pipeline runs: {', '.join(known)}")
    return name


def _check_options(task: str, options: dict[str, Any]) -> None:
    accepted = EMBED_OPTIONS if task == EMBED else tuple(pipeline_class(task).default_options)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"{task} got unknown option(s) {', '.join(map(repr, unknown))}; it accepts: "
            f"{', '.join(sorted(accepted))} (and map_pipeline's own batch_size, dtype, revision, field, "
            f"pair_field)"
        )


def _check_fields(task: str, text_field: Any, pair_field: Any) -> tuple[str | None, str | None]:
    """(text field, pair field) of a record, with QA's defaults; None: items are plain texts."""
    for name, value in (("field", text_field), ("pair_field", pair_field)):
        if value is not None and (not isinstance(value, str) or not value):
            raise TypeError(f"{name} must be a non-empty string (a field or column name), got {value!r}")
    if pair_field is not None and task not in PAIRED_TASKS:
        raise ValueError(
            f"pair_field gives a second text to {' and '.join(PAIRED_TASKS)}, not to {task}"
        )
    default_text, default_pair = RECORD_FIELDS.get(task, (None, None))
    if pair_field is not None and text_field is None:
        text_field = default_text or "text"
    return text_field or default_text, pair_field or default_pair


def _dtype_name(dtype: Any) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}") from None
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be np.float32 or np.float64, got {name}")
    return name


def _model_reference(model: Any) -> tuple[str, dict[str, list[int]] | None]:
    """(what the workers load, the directory's fingerprint): an existing directory travels as
    its absolute path (workers may run elsewhere than the client's current directory)."""
    if not isinstance(model, (str, Path)):
        raise TypeError(
            f"model must be a directory or a model id, got {type(model).__name__}: the path travels "
            f"to the workers and each loads the model once, so pass the path, not a loaded model"
        )
    local = Path(model).expanduser()
    if local.is_dir():
        directory = local.resolve()
        return str(directory), model_signature(directory)
    return str(model), None


# --------------------------------------------------------------------- the public call
def map_pipeline(
    collection: Any,
    task: str,
    model: str | Path,
    *,
    field: str | None = None,
    pair_field: str | None = None,
    batch_size: int | None = None,
    dtype: Any = np.float32,
    revision: str | None = None,
    check_model: bool = True,
    **options: Any,
) -> Any:
    """Run `task` with `model` on every item of a Dask collection, lazily; see the module docstring.

    collection: a `dask.bag.Bag` of texts (or of dicts, with `field`), a dask Series of texts,
        or a dask DataFrame with `field` naming the column of texts.
    task: a pipeline task ("fill-mask", "ner", "question-answering", ...) or "embed".
    model: a model directory (sent as an absolute path) or a model id (each worker resolves it).
    field / pair_field: the record field (DataFrame column) holding the text, and the second
        text for text-classification pairs; question-answering reads "question" and "context"
        unless renamed here.
    batch_size: rows per forward pass inside a partition (default: the pipeline's).
    dtype: np.float32 (default) or np.float64.  revision: for model ids.
    check_model: compare the model directory's files (sizes, modification times) on every
        partition with what they were here, when the job was built (ModelChangedError if they
        differ). Pass False when the workers hold their own copies of the model, whose
        modification times differ from the client's.
    options: the pipeline's call options (`top_k`, `candidate_labels`, ...), or
        SentenceTransformer.encode's `normalize_embeddings` / `output_value` for "embed".

    Returns a Bag (for a Bag) or a Series of objects (for a Series or DataFrame), with one
    result per input in input order; nothing runs until it is computed.
    """
    bag_module = _import_dask()
    name = canonical_task(task)
    _check_options(name, options)
    text_field, pair = _check_fields(name, field, pair_field)
    if batch_size is not None:
        from numpy_distilbert._checks import as_int

        batch_size = as_int(batch_size, "batch_size", minimum=1)
    if not isinstance(check_model, bool):
        raise TypeError(f"check_model must be True or False, got {check_model!r}")
    reference, prints = _model_reference(model)
    prints = prints if check_model else None
    job = Job(name, reference, revision, _dtype_name(dtype), batch_size, dict(options),
              text_field, pair, prints)  # fmt: skip

    if isinstance(collection, bag_module.Bag):
        numbers = bag_module.range(collection.npartitions, npartitions=collection.npartitions)
        return collection.map_partitions(run_bag_partition, numbers, job)
    dataframe = _dataframe_module(collection)
    if dataframe is not None:
        if isinstance(collection, dataframe.DataFrame):
            columns = [c for c in (text_field, pair) if c is not None]
            if not columns:
                raise TypeError("a DataFrame needs field=COLUMN, the column that holds the texts")
            missing = [c for c in columns if c not in collection.columns]
            if missing:
                raise ValueError(
                    f"the DataFrame has no column {missing[0]!r}; its columns: "
                    f"{', '.join(map(str, collection.columns))}"
                )
            collection = collection[columns]
        elif not isinstance(collection, dataframe.Series):
            raise TypeError(f"map_pipeline takes a dask Series or DataFrame, got {type(collection).__name__}")
        return collection.map_partitions(run_frame_partition, job, meta=(name, "object"))
    raise TypeError(
        f"map_pipeline takes a dask.bag.Bag, a dask Series or a dask DataFrame, got "
        f"{type(collection).__module__}.{type(collection).__name__}"
    )


def _dataframe_module(collection: Any) -> Any:
    """`dask.dataframe` when `collection` comes from it (imported only then: it pulls pandas)."""
    if not type(collection).__module__.startswith("dask.dataframe"):
        return None
    import dask.dataframe

    return dask.dataframe


# --------------------------------------------------------------------- on the workers
def run_bag_partition(items: list[Any], number: list[int], job: Job) -> list[Any]:
    """One Bag partition -> its results; `number` is [the partition's index], for messages."""
    where = f"partition {number[0]}, item"
    texts = [_pipeline_input(item, job, f"{where} {i}") for i, item in enumerate(items)]
    return run_texts(texts, job)


def run_frame_partition(part: Any, job: Job) -> Any:
    """One pandas partition (a Series, or the text and pair columns) -> a Series of results."""
    if part.ndim == 1:  # a Series: its values are the items
        rows, column = list(part.items()), part
    else:  # the text (and pair) columns: each row is a record
        records = part.to_dict(orient="records")
        rows, column = list(zip(part.index, records, strict=True)), part[job.text_field]
    texts = [_pipeline_input(value, job, f"row {label!r}") for label, value in rows]
    out = np.empty(len(texts), dtype=object)  # filled one by one: results may be lists or arrays
    for i, result in enumerate(run_texts(texts, job)):
        out[i] = result
    return type(column)(out, index=part.index, name=job.task, dtype=object)  # pandas, unnamed here


def _pipeline_input(item: Any, job: Job, where: str) -> Any:
    """One item -> what the pipeline takes: a text, a list of words, or a QA / pair dict."""
    if job.text_field is None:
        if isinstance(item, Mapping):
            raise TypeError(f"{where} is a dict ({_keys(item)}): pass field=NAME to read the text from it")
        return _check_text(item, job, where)
    if not isinstance(item, Mapping):
        raise TypeError(f"{where} must be a dict with field {job.text_field!r}, got {type(item).__name__}")
    values = {}
    for role, name in (("text", job.text_field), ("pair", job.pair_field)):
        if name is None:
            continue
        if name not in item:
            raise ValueError(f"{where} has no field {name!r} ({_keys(item)})")
        values[role] = _check_text(item[name], job, f"{where}, field {name!r},")
    if job.task == "question-answering":
        return {"question": values["text"], "context": values["pair"]}
    if "pair" in values:
        return {"text": values["text"], "text_pair": values["pair"]}
    return values["text"]


def _keys(record: Mapping[Any, Any]) -> str:
    names = list(record)
    shown = ", ".join(map(repr, names[:8])) + (", ..." if len(names) > 8 else "")
    return f"its fields: {shown}" if names else "it has no fields"


def _check_text(value: Any, job: Job, where: str) -> Any:
    if job.options.get("is_split_into_words") is True:
        if not isinstance(value, (list, tuple)) or not all(isinstance(w, str) for w in value):
            raise TypeError(f"{where} must be a list of words (is_split_into_words=True), got {value!r:.80}")
        return list(value)
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a string, got {type(value).__name__}: {value!r:.80}")
    return value


def run_texts(texts: list[Any], job: Job) -> list[Any]:
    """The pipeline's results for one partition's inputs, by this process's cached model."""
    if not texts:
        return []  # an empty partition loads nothing
    results = _runner(job)(texts, job.batch_size, job.options)
    if len(results) != len(texts):
        raise RuntimeError(f"{job.task} returned {len(results)} results for {len(texts)} inputs")
    with _lock:
        _partitions[_describe(job)] += 1
    return results


# --------------------------------------------------------------------- the per-process cache
# (texts, batch_size or None for the default, options) -> one result per text
Runner = Callable[[list[Any], "int | None", dict[str, Any]], list[Any]]

@dataclass
class _Entry:
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    runner: Runner | None = None
    fingerprint: dict[str, list[int]] | None = None


_lock = threading.Lock()  # guards the three tables below; a model loads under its entry's own lock
_entries: dict[tuple[str, str, str | None, str], _Entry] = {}
_loads: Counter[str] = Counter()
_partitions: Counter[str] = Counter()


def _describe(job: Job) -> str:
    return f"{job.task} {job.model} {job.dtype}" + (f" @{job.revision}" if job.revision else "")


def _runner(job: Job) -> Runner:
    """This process's runner for `job`'s model: loaded at first use, reloaded when its files
    changed between jobs; ModelChangedError when they differ from what the job was built with."""
    from numpy_distilbert.hub import resolve_model

    directory = resolve_model(job.model, revision=job.revision)
    now = model_signature(directory)
    if job.fingerprint is not None and now != job.fingerprint:
        raise ModelChangedError(
            f"model directory {directory} changed after map_pipeline built this job "
            f"({signature_changes(job.fingerprint, now)}); results would mix two models, so run the job again"
        )
    key = (job.task, job.model, job.revision, job.dtype)
    with _lock:
        entry = _entries.setdefault(key, _Entry())
    with entry.lock:  # one load per process, even when several threads ask at once
        if entry.runner is None or entry.fingerprint != now:
            entry.runner = None  # drop the old model before loading the new one
            entry.runner = _load(job, directory)
            entry.fingerprint = now
            with _lock:
                _loads[_describe(job)] += 1
        return entry.runner


def _load(job: Job, directory: Path) -> Runner:
    """A function (texts, batch_size, options) -> one result per text, on a freshly loaded model."""
    if job.task == EMBED:
        from numpy_distilbert.sentence_transformers import SentenceTransformer

        model = SentenceTransformer(directory, dtype=job.dtype)

        def embed(texts: list[str], batch_size: int | None, options: dict[str, Any]) -> list[Any]:
            batch: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
            return list(model.encode(texts, **batch, **options))

        return embed

    pipe = pipeline(job.task, model=directory, dtype=job.dtype)

    def run(texts: list[Any], batch_size: int | None, options: dict[str, Any]) -> list[Any]:
        batch = {} if batch_size is None else {"batch_size": batch_size}
        results = pipe(texts, **batch, **options)
        return [results] if len(texts) == 1 and job.task in UNWRAPS_ONE else list(results)

    return run


def cache_info() -> dict[str, Any]:
    """This process's cache: {"pid", "loads": {model: times loaded}, "partitions": {model: count}}.

    Run it on every worker with `client.run(cache_info)` to see that each loaded a model once.
    """
    with _lock:
        return {"pid": os.getpid(), "loads": dict(_loads), "partitions": dict(_partitions)}


def clear_cache() -> None:
    """Forget this process's loaded models and counts (the next partition loads again)."""
    with _lock:
        _entries.clear()
        _loads.clear()
        _partitions.clear()


__all__ = ["INSTALL_HINT", "Job", "ModelChangedError", "cache_info", "canonical_task", "clear_cache",
           "map_pipeline"]  # fmt: skip
