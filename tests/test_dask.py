"""numpy_distilbert.dask.map_pipeline on a real multi-process Dask cluster.

The claim: distributing a job changes nothing. On a `distributed.LocalCluster` (2 worker
processes, 1 thread each) the results equal the single-process pipeline's exactly, in input
order; each worker loads a model once; a worker killed in the middle of a job is replaced
and the job still gives every result once.

"Exactly" needs the same batches: a row's float32 result moves in its last bits with the
padded length and the number of rows of its batch (BLAS blocks differently). So the
reference runs the single-process pipeline on each partition's items, as the worker does;
and, with batch_size=1 (every row alone, no padding), on the whole list at once, which shows
that partitioning itself moves nothing.

Dask is the `dask` extra, which CI installs: its absence fails there (needs_torch=False).
Nothing here needs torch: the checkpoints are written by numpy_distilbert.random_weights, and
the embedding test runs the real all-MiniLM-L6-v2.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, skip_or_fail
from test_cli import TINY, write_cli_models

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.pipelines import pipeline
from numpy_distilbert.random_weights import write_random_checkpoint

# Uneven partitions, one of a single item: some pipelines unwrap the result of a one-item list.
PARTITION_SIZES = (5, 1, 7, 3, 6, 2)
TIMEOUT = 600  # seconds for one compute: generous, for a loaded 2-core machine (never asserted)
WORDS = ("Paris Berlin Tokyo café naïve straße 東京 Москва العربية ελληνικά hello world model "
         "virtual running jumped quickly über größer привет 中文 日本語 emoji 🙂 12,345.67").split()


def python_path() -> str:
    """This checkout and the tests folder first: what subprocesses and workers import."""
    return os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH", "")])


def dask_modules():
    """(dask, dask.bag, distributed), or skip (fail in CI) when the `dask` extra is missing."""
    try:
        import dask
        import dask.bag
        import distributed
    except ImportError as exc:
        skip_or_fail(f"the dask extra is not installed: pip install -e '.[dask]' ({exc})", needs_torch=False)
    return dask, dask.bag, distributed


@contextmanager
def timed(label: str):
    start = time.perf_counter()
    yield
    print(f"[dask] {label}: {time.perf_counter() - start:.2f} s")


def sentences(seed: int, count: int, mask: bool = False) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(count):
        words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(2, 30)))]
        if mask:
            words[int(rng.integers(len(words)))] = "[MASK]"
        texts.append(" ".join(words))
    return texts


def chunks(items: list, sizes=PARTITION_SIZES) -> list[list]:
    assert sum(sizes) == len(items)
    starts = np.cumsum((0, *sizes))
    return [items[a:b] for a, b in itertools.pairwise(starts)]


def bag_of(chunked: list[list]):
    """A Bag whose partitions are exactly `chunked` (from_sequence would even them out)."""
    dask, bag, _ = dask_modules()
    return bag.from_delayed([dask.delayed(list)(c) for c in chunked])


# Pipelines that return the result itself, not a list of one, for a list of one input (their
# docstrings, as transformers); the batch_size=1 comparison checks this without the rule.
UNWRAPPED = ("fill-mask", "question-answering")


def single_process(run, chunked: list[list], unwrapped: bool) -> list:
    """The single-process results of each partition's items, concatenated in order."""
    results = []
    for chunk in chunked:
        result = run(chunk)
        results += [result] if len(chunk) == 1 and unwrapped else list(result)
    return results


def reference(task: str, model: Path, kwargs: dict, chunked: list[list], whole: bool = True) -> dict:
    """The single-process pipeline's results, computed in a fresh process with the BLAS threads
    Dask's nanny gives a worker (one): float32 results move in their last bits with the thread
    count, so only the same count can be compared bit for bit.

    {"partitions": per-partition results, concatenated; "whole": the whole list in batches of one}.
    """
    dask, _, _ = dask_modules()
    spec = {"task": task, "model": str(model), "kwargs": kwargs, "chunked": chunked, "whole": whole}
    worker_environment = dask.config.get("distributed.nanny.pre-spawn-environ")  # OMP_NUM_THREADS=1, ...
    env = {**os.environ, **{name: str(value) for name, value in worker_environment.items()},
           "PYTHONPATH": python_path()}  # fmt: skip
    with timed(f"single-process reference for {task}"):
        done = subprocess.run(
            [sys.executable, "-c", "import test_dask; test_dask.reference_main()"],
            input=json.dumps(spec), capture_output=True, text=True, env=env, timeout=TIMEOUT,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return from_json(json.loads(done.stdout))


def reference_main() -> None:
    """`reference`'s other side: the spec on stdin, the results as JSON on stdout."""
    spec = json.loads(sys.stdin.read())
    task, model, kwargs, chunked = spec["task"], Path(spec["model"]), spec["kwargs"], spec["chunked"]
    if task == "embed":
        from numpy_distilbert.sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(model)
        batch_size = kwargs.get("batch_size", 32)

        def run(texts, batch_size=batch_size):
            return list(encoder.encode(texts, batch_size=batch_size))
    else:
        pipe = pipeline(task, model=model, dtype=kwargs.get("dtype", "float32"))
        options = {k: v for k, v in kwargs.items() if k not in ("field", "pair_field", "dtype")}

        def as_input(item):  # the record fields, as the pipeline takes a pair
            if "field" in kwargs:
                return {"text": item[kwargs["field"]], "text_pair": item[kwargs["pair_field"]]}
            return item

        def run(items, **extra):
            return pipe([as_input(i) for i in items], **{**options, **extra})

    results = {"partitions": single_process(run, chunked, unwrapped=task in UNWRAPPED)}
    if spec["whole"]:
        results["whole"] = list(run([item for chunk in chunked for item in chunk], batch_size=1))
    print(json.dumps(to_json(results)))


def to_json(value):
    """Arrays as {"ndarray": values, "dtype": name}: a float32 is exact as a Python float."""
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": value.dtype.name}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def from_json(value):
    if isinstance(value, dict) and set(value) == {"ndarray", "dtype"}:
        return np.asarray(value["ndarray"], dtype=value["dtype"])
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def assert_identical(ours: list, expected: list) -> None:
    """Same length, order and values, bit for bit (arrays too)."""
    assert len(ours) == len(expected)
    for i, (o, e) in enumerate(zip(ours, expected, strict=True)):
        if isinstance(e, np.ndarray):
            assert isinstance(o, np.ndarray) and o.dtype == e.dtype, f"item {i}: {type(o)}"
            assert np.array_equal(o, e), f"item {i}: max diff {np.abs(o - e).max()}"
        else:
            assert o == e, f"item {i}: {o!r:.200} != {e!r:.200}"


def json_plain(value) -> bool:
    """Only what json writes back as it read: dict/list/str/int/float/bool/None."""
    return json.loads(json.dumps(value)) == value


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_model_path) -> dict[str, Path]:
    """The command line tests' tiny checkpoints (mlm, nli, ner, qa), and a bare encoder."""
    root = tmp_path_factory.mktemp("dask-models")
    dirs = write_cli_models(root, shared_model_path)
    dirs["encoder"] = write_random_checkpoint(root / "encoder", DistilBertConfig(**TINY), seed=5,
                                              architecture="DistilBertModel", vocab_dir=shared_model_path)
    return dirs


@pytest.fixture(scope="module")
def client():
    """A Client on LocalCluster(2 worker processes x 1 thread), started once for the module.

    The workers import this checkout (and this test module, for the crashing task) through
    PYTHONPATH; Dask's nanny gives each worker process one BLAS thread.
    """
    _, _, distributed = dask_modules()
    import logging

    with timed("LocalCluster(2 workers x 1 thread) start"):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
            silence_logs=logging.CRITICAL, env={"PYTHONPATH": python_path()}, death_timeout=TIMEOUT,
        )  # fmt: skip
        client = distributed.Client(cluster, timeout=TIMEOUT)
        client.wait_for_workers(2, timeout=TIMEOUT)
    import numpy_distilbert

    where = set(client.run(lambda: __import__("numpy_distilbert").__file__).values())
    assert where == {numpy_distilbert.__file__}, f"the workers import another numpy_distilbert: {where}"
    yield client
    with timed("LocalCluster close"):
        client.close()
        cluster.close()


def compute(client, collection, label: str):
    with timed(label):
        return client.compute(collection).result(timeout=TIMEOUT)


# ------------------------------------------------------------------ no Dask needed
def _run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": python_path()}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_the_package_imports_no_dask():
    """Only numpy_distilbert.dask imports Dask: the CLI and the pipelines never pay for it."""
    code = ("import sys, numpy_distilbert, numpy_distilbert.cli, numpy_distilbert.pipelines, "
            "numpy_distilbert.sentence_transformers\n"
            "from numpy_distilbert import pipeline, SentenceTransformer\n"
            "heavy = ('dask', 'distributed', 'pandas')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")  # fmt: skip
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_missing_dask_names_the_extra():
    code = ("import sys; sys.modules['dask'] = None\n"  # None: `import dask` raises ImportError
            "try:\n    import numpy_distilbert.dask\n"
            "except ImportError as exc:\n    print(exc)\n")  # fmt: skip
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert 'pip install "numpy-distilbert[dask]"' in done.stdout


# ------------------------------------------------------------------ bad input (no cluster)
def test_bad_inputs_are_refused_clearly(models):
    _, bag, _ = dask_modules()
    from numpy_distilbert.dask import map_pipeline

    texts = bag.from_sequence(["a [MASK] b"] * 4, npartitions=2)
    with pytest.raises(ValueError, match=r"unknown task 'translate'.*fill-mask"):
        map_pipeline(texts, "translate", models["mlm"])
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'topk'.*top_k"):
        map_pipeline(texts, "fill-mask", models["mlm"], topk=3)
    with pytest.raises(TypeError, match="pass the path, not a loaded model"):
        map_pipeline(texts, "fill-mask", pipeline("fill-mask", model=models["mlm"]))
    with pytest.raises(TypeError, match=r"a dask DataFrame, got builtins\.list"):
        map_pipeline(["a [MASK] b"], "fill-mask", models["mlm"])
    with pytest.raises(ValueError, match="pair_field gives a second text to"):
        map_pipeline(texts, "ner", models["ner"], field="text", pair_field="other")
    with pytest.raises(ValueError, match="dtype must be"):
        map_pipeline(texts, "fill-mask", models["mlm"], dtype=np.int32)

    def run(items, npartitions, task="fill-mask", **kwargs):
        job = map_pipeline(bag.from_sequence(items, npartitions=npartitions), task, models["mlm"], **kwargs)
        return job.compute(scheduler="sync")

    with pytest.raises(TypeError, match=r"partition 1, item 0 must be a string, got int: 7"):
        run(["a [MASK] b", "c [MASK] d", 7], npartitions=2)
    with pytest.raises(TypeError, match=r"partition 0, item 1 is a dict \(its fields: 'body'\): pass field="):
        run(["a [MASK]", {"body": "x [MASK]"}], npartitions=1)
    with pytest.raises(ValueError, match=r"partition 0, item 1 has no field 'text' \(its fields: 'body'\)"):
        run([{"text": "a [MASK]"}, {"body": "x [MASK]"}], npartitions=1, field="text")
    with pytest.raises(TypeError, match=r"partition 0, item 0, field 'text', must be a string, got NoneType"):
        run([{"text": None}], npartitions=1, field="text")
    with pytest.raises(TypeError, match=r"item 0 must be a dict with field 'question', got str"):
        run(["where?"], npartitions=1, task="qa")


def test_bad_dataframe_inputs_are_refused_clearly(models):
    dask_modules()
    pandas = pytest.importorskip("pandas")  # dask[dataframe] brings it
    import dask.dataframe as dd

    from numpy_distilbert.dask import map_pipeline

    frame = dd.from_pandas(pandas.DataFrame({"body": ["a [MASK]", None, "c [MASK]"]}, index=[10, 20, 30]),
                           npartitions=2)  # fmt: skip
    with pytest.raises(ValueError, match=r"the DataFrame has no column 'text'; its columns: body"):
        map_pipeline(frame, "fill-mask", models["mlm"], field="text")
    with pytest.raises(TypeError, match="a DataFrame needs field=COLUMN"):
        map_pipeline(frame, "fill-mask", models["mlm"])
    with pytest.raises(TypeError, match=r"row 20, field 'body', must be a string, got NoneType"):
        map_pipeline(frame, "fill-mask", models["mlm"], field="body").compute(scheduler="sync")


def test_a_model_directory_that_changes_during_a_job_fails_loudly(models, tmp_path):
    _, bag, _ = dask_modules()
    import shutil

    from numpy_distilbert.dask import ModelChangedError, map_pipeline

    directory = shutil.copytree(models["mlm"], tmp_path / "mlm")
    job = map_pipeline(bag.from_sequence(["a [MASK] b"] * 3, npartitions=3), "fill-mask", directory)
    config = directory / "config.json"
    config.write_text(config.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    changed = r"changed after map_pipeline built this job \(config\.json rewritten\)"
    with pytest.raises(ModelChangedError, match=changed):
        job.compute(scheduler="sync")
    # A job built now sees the new files, and reloads.
    again = map_pipeline(bag.from_sequence(["a [MASK] b"]), "fill-mask", directory)
    assert len(again.compute(scheduler="sync")) == 1
    # Workers with their own copies of the model opt out of the comparison.
    unchecked = map_pipeline(bag.from_sequence(["a [MASK] b"]), "fill-mask", directory, check_model=False)
    config.write_text(config.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert len(unchecked.compute(scheduler="sync")) == 1


def test_threads_of_one_process_share_one_load(models):
    """Eight threads asking for one model at once: one load, eight partitions, same results."""
    dask_modules()
    from numpy_distilbert.dask import Job, cache_info, clear_cache, run_texts

    clear_cache()
    job = Job("fill-mask", str(models["mlm"]), None, "float32", None)
    texts = sentences(1, 6, mask=True)
    results: list = [None] * 8
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = run_texts(texts, job)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT)
    info = cache_info()
    assert list(info["loads"].values()) == [1] and list(info["partitions"].values()) == [8]
    expected = pipeline("fill-mask", model=models["mlm"])(texts)
    assert all(r == expected for r in results)


# ------------------------------------------------------------------ on the cluster
TASKS = {
    # name: (model, make inputs, map_pipeline keyword arguments)
    "fill-mask": ("mlm", lambda n: sentences(2, n, mask=True), {"top_k": 3}),
    "feature-extraction": ("encoder", lambda n: sentences(3, n), {"pooling": "mean", "return_tensors": True}),
    "text-classification": ("nli", lambda n: [{"premise": a, "hypothesis": b} for a, b in
                                               zip(sentences(4, n), sentences(5, n), strict=True)],
                            {"field": "premise", "pair_field": "hypothesis", "top_k": None}),
    "token-classification": ("ner", lambda n: sentences(6, n), {"aggregation_strategy": "simple",
                                                                "ignore_labels": []}),
    "zero-shot-classification": ("nli", lambda n: sentences(7, n),
                                 {"candidate_labels": ["travel", "food", "science"], "multi_label": True}),
    "question-answering": ("qa", lambda n: [{"question": q, "context": c} for q, c in
                                            zip(sentences(8, n), sentences(9, n), strict=True)],
                           {"top_k": 2}),
}  # fmt: skip


@pytest.mark.parametrize("task", list(TASKS))
def test_results_equal_the_single_process_pipeline(client, models, task):
    from numpy_distilbert.dask import map_pipeline

    name, make, kwargs = TASKS[task]
    chunked = chunks(make(sum(PARTITION_SIZES)))
    ours = compute(client, map_pipeline(bag_of(chunked), task, models[name], **kwargs), f"{task}, 24 items")
    expected = reference(task, models[name], kwargs, chunked)
    assert_identical(ours, expected["partitions"])
    if task != "feature-extraction":  # arrays there, as asked (return_tensors=True)
        assert json_plain(ours)

    # Rows one per batch: partitioning itself changes no bit against one call on the whole list.
    ours = compute(client, map_pipeline(bag_of(chunked), task, models[name], batch_size=1, **kwargs),
                   f"{task}, 24 items, batch_size=1")  # fmt: skip
    assert_identical(ours, expected["whole"])


def test_real_minilm_embeddings_equal_the_single_process_model(client, minilm_path):
    from numpy_distilbert.dask import map_pipeline

    chunked = chunks(sentences(10, 80), (17, 1, 30, 12, 20))
    ours = compute(client, map_pipeline(bag_of(chunked), "embed", minilm_path, batch_size=8),
                   "embed, MiniLM, 80 sentences")  # fmt: skip
    expected = reference("embed", minilm_path, {"batch_size": 8}, chunked)
    assert_identical(ours, expected["partitions"])
    assert ours[0].shape == (384,) and ours[0].dtype == np.float32
    ours = compute(client, map_pipeline(bag_of(chunked), "embed", minilm_path, batch_size=1),
                   "embed, MiniLM, 80 sentences, batch_size=1")  # fmt: skip
    assert_identical(ours, expected["whole"])


def test_a_dataframe_column_gives_a_series_in_index_order(client, models):
    pandas = pytest.importorskip("pandas")
    import dask.dataframe as dd

    from numpy_distilbert.dask import map_pipeline

    texts = sentences(11, 20)
    index = [f"doc-{i:02d}" for i in range(20)]
    frame = pandas.DataFrame({"body": texts, "n": range(20)}, index=index)
    ddf = dd.from_pandas(frame, npartitions=3)
    result = map_pipeline(ddf, "ner", models["ner"], field="body", ignore_labels=[])
    assert result.npartitions == 3 and tuple(result.divisions) == tuple(ddf.divisions)
    series = compute(client, result, "ner on a DataFrame, 20 rows")
    assert list(series.index) == index and series.dtype == object and series.name == "token-classification"
    sizes = [int(n) for n in ddf.map_partitions(len).compute(scheduler="sync")]
    expected = reference("ner", models["ner"], {"ignore_labels": []}, chunks(texts, sizes), whole=False)
    assert_identical(list(series), expected["partitions"])
    # A Series of texts works the same way.
    series = compute(client, map_pipeline(ddf["body"], "ner", models["ner"], ignore_labels=[]),
                     "ner on a Series")  # fmt: skip
    assert list(series.index) == index
    assert_identical(list(series), expected["partitions"])


def test_each_worker_loads_the_model_once(client, models):
    """Twelve partitions on two workers: no worker loads the model twice (float64: a fresh key)."""
    from numpy_distilbert.dask import cache_info, map_pipeline

    chunked = chunks(sentences(12, 36, mask=True), (3,) * 12)
    ours = compute(client, map_pipeline(bag_of(chunked), "fill-mask", models["mlm"], dtype=np.float64),
                   "fill-mask float64, 12 partitions")  # fmt: skip
    expected = reference("fill-mask", models["mlm"], {"dtype": "float64"}, chunked, whole=False)
    assert_identical(ours, expected["partitions"])
    infos = client.run(cache_info)
    key = f"fill-mask {Path(models['mlm']).resolve()} float64"
    counts = {i["pid"]: (i["loads"].get(key, 0), i["partitions"].get(key, 0)) for i in infos.values()}
    print("[dask] per worker pid: (loads, partitions):", counts)
    assert os.getpid() not in counts
    assert all(loads == (1 if partitions else 0) for loads, partitions in counts.values())
    assert sum(partitions for _, partitions in counts.values()) == 12


def crash_once(items: list, flag: str, victim: str) -> list:
    """Kill this worker process the first time the `victim` item is seen (the flag file says)."""
    if victim in items:
        try:
            os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return items  # the retry: go on
        os._exit(1)  # no cleanup, no exception: as a killed process
    return items


def test_a_worker_killed_mid_job_is_retried_without_losing_or_repeating_results(client, models, tmp_path):
    from numpy_distilbert.dask import map_pipeline

    items = sentences(13, 40, mask=True)
    chunked = chunks(items, (5,) * 8)
    flag = tmp_path / "crashed"
    pids = set(client.run(os.getpid).values())
    victim = chunked[5][2]  # partition 5 of 8: the others are running or done when it dies
    doomed = bag_of(chunked).map_partitions(crash_once, str(flag), victim)
    ours = compute(client, map_pipeline(doomed, "fill-mask", models["mlm"], top_k=2),
                   "fill-mask, 8 partitions, one worker killed")  # fmt: skip
    assert flag.exists(), "the victim partition never ran"
    client.wait_for_workers(2, timeout=TIMEOUT)
    assert set(client.run(os.getpid).values()) != pids, "no worker process was replaced"
    expected = reference("fill-mask", models["mlm"], {"top_k": 2}, chunked, whole=False)
    assert_identical(ours, expected["partitions"])
