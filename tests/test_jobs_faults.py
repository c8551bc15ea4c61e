"""Faults of corpus jobs: a full disk, a worker that dies, a model rewritten under a running job, and
bad lines; and the bound on how far ahead of the results the input is read (flat memory).

A full disk is made two ways: in-process, a write layer that writes part of a batch and then
fails with ENOSPC; and for real, a subprocess whose file-size limit (RLIMIT_FSIZE) makes the
kernel take a short write and then refuse with EFBIG, as a full file system would.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import time

import pytest
from jobs_helpers import (
    THREADS,
    children_of,
    records,
    run_cli,
    size,
    start_cli,
    write_corpus,
    write_models,
)

from numpy_distilbert import jobs
from numpy_distilbert.jobs import InProcess, InputRecord, JsonLinesOutput, ModelChangedError, OutputWriteError

BATCH = 4


@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_model_path):
    return write_models(tmp_path_factory.mktemp("faults-models"), shared_model_path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults-corpus") / "corpus.jsonl"
    write_corpus(path, 600, seed=3, bad_every=50)
    return path


def classify_args(models, corpus, output, *extra):
    return ("classify", "-m", models["cls"], "-i", corpus, "--field", "text", "--batch-size", BATCH,
            "-o", output, "--no-progress", *THREADS, *extra)


@pytest.fixture(scope="module")
def reference(models, corpus, tmp_path_factory):
    output = tmp_path_factory.mktemp("faults-reference") / "out.jsonl"
    proc = run_cli(*classify_args(models, corpus, output))
    assert proc.returncode == 1, proc.stderr
    return output.read_bytes()


# ---------------------------------------------------------------- full disk
def test_enospc_mid_batch_leaves_only_complete_batches(tmp_path):
    path = tmp_path / "out.jsonl"
    output = JsonLinesOutput(path, {"format": 1}, batch_size=2, resume=False)
    batch = [{"line": n, "result": {"label": "x" * 50}} for n in (1, 2)]
    output.write(batch)
    complete = path.read_bytes()
    calls = []

    def full_disk(fd: int, data) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return os.write(fd, bytes(data[: len(data) // 2]))  # the disk took half of it
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    output._write = full_disk
    with pytest.raises(OutputWriteError) as caught:
        output.write([{"line": 3, "result": {"label": "y" * 50}}, {"line": 4, "result": {}}])
    message = str(caught.value)
    assert str(path) in message and "No space left on device" in message and "up to input line 2" in message
    assert len(calls) == 2  # half was written before the failure: and it is gone again
    assert path.read_bytes() == complete
    output.close()


def file_size_limit(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_file_that_cannot_grow_gives_a_clear_error_then_resumes(models, corpus, reference, tmp_path):
    output = tmp_path / "out.jsonl"
    limit = len(reference) // 3
    proc = run_cli(*classify_args(models, corpus, output), preexec_fn=file_size_limit(limit))
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "cannot write" in line]
    assert len(errors) == 1 and str(output) in errors[0] and "too large" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    data = output.read_bytes()
    assert 0 < len(data) <= limit and data.endswith(b"\n")
    assert data.count(b"\n") % BATCH == 0 and reference.startswith(data)  # whole batches, nothing torn
    resumed = run_cli(*classify_args(models, corpus, output, "--resume"))
    assert resumed.returncode == 1 and output.read_bytes() == reference, resumed.stderr


def test_a_shard_index_that_cannot_grow_keeps_complete_shards_only(models, corpus, tmp_path):
    from numpy_distilbert.shards import open_shards

    args = ("embed", "-m", models["mlm"], "-i", corpus, "--field", "text", "--batch-size", BATCH,
            "--shard-rows", 16, "--no-progress", *THREADS)
    whole = tmp_path / "whole"
    run_cli(*args, "-o", whole)
    target = tmp_path / "limited"
    proc = run_cli(*args, "-o", target, preexec_fn=file_size_limit(4000))  # shards fit; the index fills up
    assert proc.returncode == 1 and "cannot write shard" in proc.stderr, proc.stderr
    index = (target / "index.jsonl").read_bytes()
    assert index.endswith(b"\n") and 0 < index.count(b"\n") < len(open_shards(whole).vectors)
    listed = {json.loads(line)["vectors"] for line in index.splitlines()}
    on_disk = {p.name for p in target.glob("shard-*.npy") if not p.name.endswith(".lines.npy")}
    assert on_disk == listed and not list(target.glob("*.partial"))  # the failed shard's files are gone
    run_cli(*args, "-o", target, "--resume")
    assert (target / "index.jsonl").read_bytes() == (whole / "index.jsonl").read_bytes()
    for name in listed:
        assert (target / name).read_bytes() == (whole / name).read_bytes()


# ------------------------------------------------------------------ workers
def test_a_worker_killed_mid_job_is_reported_then_resumed(models, corpus, reference, tmp_path):
    output = tmp_path / "out.jsonl"
    process = start_cli(*classify_args(models, corpus, output, "--workers", 2))
    deadline = time.monotonic() + 120
    while size(output) == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.002)
    workers = children_of(process.pid)
    assert len(workers) == 2 and process.poll() is None
    os.kill(workers[1], signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    (error,) = [line for line in stderr.decode().splitlines() if "worker" in line]
    assert "worker 2" in error and f"pid {workers[1]}" in error and "SIGKILL" in error and "--resume" in error
    data = output.read_bytes()
    assert reference.startswith(data) and data.count(b"\n") % BATCH == 0
    resumed = run_cli(*classify_args(models, corpus, output, "--resume", "--workers", 2))
    assert output.read_bytes() == reference, resumed.stderr


def test_the_input_is_read_only_a_few_batches_ahead(models):
    """Flat memory: however long the input, the pool holds at most 2 x 2 batches per worker."""
    pulled = 0

    def endless():
        nonlocal pulled
        while True:
            pulled += 1
            yield InputRecord(pulled, "some text to tokenize")

    argv = ["tokenize", "-m", str(models["mlm"])]
    command = jobs_worker_command()
    pool = jobs.WorkerPool(command, {"argv": argv, "signature": None}, workers=2, env=worker_env())
    try:
        answers = pool.map(jobs.batches(endless(), 3))
        for n, outputs in enumerate(answers, 1):
            assert [o["line"] for o in outputs] == [3 * n - 2, 3 * n - 1, 3 * n]
            assert pulled <= 3 * (n + 2 * jobs.WORKER_BATCHES_IN_FLIGHT * 2)
            if n == 50:
                break
    finally:
        pool.close()


def jobs_worker_command() -> list[str]:
    import sys

    return [sys.executable, "-c", "import sys; from numpy_distilbert.cli import serve_worker; "
                                  "sys.exit(serve_worker())"]


def worker_env() -> dict[str, str]:
    from jobs_helpers import cli_env

    return cli_env()


# ------------------------------------------------------------ model changes
def test_a_model_rewritten_between_batches_stops_the_job(models, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    for path in models["cls"].iterdir():
        (model / path.name).write_bytes(path.read_bytes())
    signature = jobs.model_signature(model)
    executor = InProcess(lambda values: [len(v) for v in values], model, signature)
    answers = executor.map([[InputRecord(1, "a")], [InputRecord(2, "b")]])
    assert next(answers) == [{"line": 1, "result": 1}]
    weights = model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1))
    with pytest.raises(ModelChangedError, match=r"model\.safetensors"):
        next(answers)


def test_the_signature_names_each_change_and_ignores_hidden_entries(tmp_path):
    model = tmp_path / "model"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"x")
    (model / "1_Pooling" / "config.json").write_text("{}")
    before = jobs.model_signature(model)
    assert sorted(before) == ["1_Pooling/config.json", "config.json", "model.safetensors"]
    (model / ".git").mkdir()
    (model / ".git" / "index").write_bytes(b"git status rewrites this")  # a git clone of a model
    (model / ".gitattributes").write_text("*.safetensors filter=lfs")
    assert jobs.model_signature(model) == before
    (model / "model.safetensors").write_bytes(b"xy")
    (model / "config.json").unlink()
    (model / "vocab.txt").write_text("[PAD]")
    changes = jobs.signature_changes(before, jobs.model_signature(model))
    assert changes == "config.json removed, vocab.txt added, model.safetensors rewritten"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_model_rewritten_during_a_cli_job_fails_loudly(models, corpus, tmp_path, workers):
    model = tmp_path / "model"
    model.mkdir()
    for path in models["cls"].iterdir():
        (model / path.name).write_bytes(path.read_bytes())
    big = tmp_path / "big.jsonl"
    write_corpus(big, 20000, seed=5)
    output = tmp_path / "out.jsonl"
    args = ("classify", "-m", model, "-i", big, "--field", "text", "--batch-size", BATCH, "-o", output,
            "--no-progress", "--workers", workers, *THREADS)
    process = start_cli(*args)
    deadline = time.monotonic() + 120
    while size(output) == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.002)
    (model / "config.json").write_text((model / "config.json").read_text() + " ")  # rewritten in place
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1
    text = stderr.decode()
    assert "changed during the job" in text and "config.json" in text and "Traceback" not in text, text
    assert output.read_bytes().endswith(b"\n")
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 2 and "another job" in resumed.stderr and "model" in resumed.stderr


# -------------------------------------------------------------- bad lines
def test_bad_lines_get_one_error_record_each_and_the_others_keep_theirs(models, tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": 1, "text": "fine"}), "not json", json.dumps({"text": "no id"}),
             json.dumps({"id": [1], "text": "list id"}), "", json.dumps({"id": "z", "text": "also fine"})]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    proc = run_cli("classify", "-m", models["cls"], "-i", source, "--field", "text", "--id-field", "id",
                   "-o", output, "--workers", 2, *THREADS)
    assert proc.returncode == 1
    got = records(output)
    assert [r["line"] for r in got] == [1, 2, 3, 4, 6]
    assert [r.get("id") for r in got] == [1, None, None, None, "z"]
    assert "result" in got[0] and "result" in got[4]
    assert "not valid JSON" in got[1]["error"] and "'id'" in got[2]["error"] and "'id'" in got[3]["error"]
    assert sum("error:" in line for line in proc.stderr.splitlines()) == 3
    one = run_cli("classify", "-m", models["cls"], "-i", source, "--field", "text", "--id-field", "id",
                  "-o", tmp_path / "one.jsonl", *THREADS)
    assert (tmp_path / "one.jsonl").read_bytes() == output.read_bytes(), one.stderr


def test_job_options_are_checked(models, tmp_path):
    assert "--resume" in run_cli("classify", "-m", models["cls"], "--resume", "x").stderr
    proc = run_cli("embed", "-m", models["mlm"], "-o", tmp_path / "m.npy", "--resume", "x")
    assert proc.returncode == 2 and "written whole" in proc.stderr
    proc = run_cli("classify", "-m", models["cls"], "--id-field", "id", "x")
    assert proc.returncode == 2 and "--field" in proc.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    proc = run_cli("embed", "-m", models["mlm"], "-o", tmp_path / "full", "x")
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep me"


# ------------------------------------------------------- processes x threads
def test_the_cores_are_shared_out_and_an_override_wins():
    assert jobs.threads_per_worker(2, cores=2) == 1 and jobs.threads_per_worker(1, cores=2) == 2
    assert jobs.threads_per_worker(3, cores=2) == 1  # never 0 threads
    assert jobs.threads_per_worker(2, threads=3, cores=2) == 3
    assert jobs.blas_thread_environment(1)["OPENBLAS_NUM_THREADS"] == "1"


def test_workers_left_out_means_one_per_core_only_for_a_long_file():
    import argparse

    from numpy_distilbert import cli

    def chosen(workers, total, pretty=False):
        return cli._workers(argparse.Namespace(workers=workers), total, batch_size=8, pretty=pretty)

    long_file = cli.AUTO_WORKERS_MIN_BATCHES * 8
    assert chosen(None, long_file) == jobs.available_cores()
    assert chosen(None, long_file - 1) == 1 and chosen(None, None) == 1  # short, or stdin
    assert chosen(None, long_file, pretty=True) == 1
    assert chosen(3, 5) == 3
