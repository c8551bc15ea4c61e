"""Resumable jobs, proven by killing them: a job SIGKILLed at any moment and resumed (perhaps
killed again) writes exactly the bytes of an uninterrupted run: no line lost, none twice.

The CLI runs as a subprocess on a tiny random checkpoint (NumPy only, so this runs on every
Python tier). Kills land at chosen moments (before any output, after the first batch, a third
and two thirds of the way), with one worker and with two. A kill in the middle of a write leaves
a prefix of the file's bytes: every such prefix near the end (a torn line, half a batch, a cut
just after a newline) is made by truncating a finished output, and resumed.
"""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
from jobs_helpers import THREADS, kill_when, records, run_cli, size, start_cli, write_corpus, write_models

from numpy_distilbert.pipelines import pipeline
from numpy_distilbert.tolerances import BLAS_THREADS_FP32

LINES = 1200
BATCH = 4
BAD_EVERY = 97
NEWLINE = b"\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_model_path):
    return write_models(tmp_path_factory.mktemp("jobs-models"), shared_model_path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("jobs-corpus") / "corpus.jsonl"
    return path, write_corpus(path, LINES, bad_every=BAD_EVERY)


def classify_args(models, corpus_path, output, *extra):
    return ("classify", "-m", models["cls"], "-i", corpus_path, "--field", "text", "--id-field", "id",
            "--batch-size", BATCH, "-o", output, "--no-progress", *THREADS, *extra)


@pytest.fixture(scope="module")
def reference(models, corpus, tmp_path_factory):
    """The uninterrupted run's output (bytes), checked against the pipeline run in this process."""
    path, lines = corpus
    output = tmp_path_factory.mktemp("jobs-reference") / "out.jsonl"
    proc = run_cli(*classify_args(models, path, output))
    assert proc.returncode == 1, proc.stderr  # the broken JSON lines failed; the others did not
    got = records(output)
    numbered = [(n, text) for n, text in enumerate(lines, 1) if text.strip()]
    assert [r["line"] for r in got] == [n for n, _ in numbered]  # every input once, in input order
    classify = pipeline("text-classification", model=models["cls"])
    for record, (n, text) in zip(got, numbered, strict=True):
        if n % BAD_EVERY == 0:
            assert "result" not in record and "not valid JSON" in record["error"]
            assert f"line {n}: not valid JSON" in proc.stderr
        else:
            assert record["id"] == f"doc-{n}"
            (expected,) = classify([json.loads(text)["text"]])
            assert record["result"]["label"] == expected["label"]
            assert abs(record["result"]["score"] - expected["score"]) <= BLAS_THREADS_FP32
    return output.read_bytes()


def complete_records(data: bytes) -> int:
    return data.count(NEWLINE)


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_at_several_moments_then_resumed_gives_the_uninterrupted_output(
    models, corpus, reference, tmp_path, workers
):
    output = tmp_path / "out.jsonl"
    args = classify_args(models, corpus[0], output, "--workers", workers)
    moments = {
        "at start, before any output": lambda: True,
        "after the first batch": lambda: size(output) > 0,
        "a third of the way": lambda: size(output) > len(reference) // 3,
        "two thirds of the way": lambda: size(output) > 2 * len(reference) // 3,
    }
    log = []
    for what, ready in moments.items():
        process = start_cli(*args, "--resume")
        killed = kill_when(process, ready)
        data = output.read_bytes() if output.exists() else b""
        torn = len(data) - (data.rfind(NEWLINE) + 1)
        log.append(f"{what}: killed={killed}, {complete_records(data)} complete lines, torn tail {torn} B")
        assert reference.startswith(data[: data.rfind(b"\n") + 1])  # what is there is right, so far
    final = run_cli(*args, "--resume")
    assert final.returncode == 1, final.stderr  # the bad lines, again: reported, not skipped
    print(f"workers={workers}: " + "; ".join(log))
    assert output.read_bytes() == reference


def test_two_workers_write_what_one_writes(models, corpus, reference, tmp_path):
    output = tmp_path / "two.jsonl"
    proc = run_cli(*classify_args(models, corpus[0], output, "--workers", 2))
    assert proc.returncode == 1
    assert output.read_bytes() == reference


def cuts_near_the_end(data: bytes) -> list[int]:
    """Byte lengths a kill mid-write could leave around the last batch: just after each newline
    (a whole batch, or half of one), in the middle of each line, one byte into the last line and
    one byte short of its newline."""
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    last = ends[-BATCH - 2:]
    cuts = set(last[1:])
    for start, end in itertools.pairwise(last):
        cuts.add((start + end) // 2)
    cuts.update({last[-2] + 1, last[-1] - 1})
    return sorted(cuts)


def test_a_torn_or_half_written_tail_is_redone(models, corpus, reference, tmp_path):
    output = tmp_path / "out.jsonl"
    first = run_cli(*classify_args(models, corpus[0], output))
    assert output.read_bytes() == reference, first.stderr
    for cut in cuts_near_the_end(reference):
        with open(output, "r+b") as stream:
            stream.truncate(cut)
        proc = run_cli(*classify_args(models, corpus[0], output, "--resume"))
        assert output.read_bytes() == reference, f"resumed from {cut} bytes: {proc.stderr}"


def test_resume_refuses_another_input_or_other_options(models, corpus, reference, tmp_path):
    output = tmp_path / "out.jsonl"
    assert run_cli(*classify_args(models, corpus[0], output)).returncode == 1  # writes out.jsonl.job.json
    half = reference[: reference.index(NEWLINE, len(reference) // 2) + 1]
    other = tmp_path / "other.jsonl"
    lines = corpus[1][:]
    lines.insert(5, json.dumps({"id": "extra", "text": "an extra line"}))  # same numbering up to a blank
    other.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output.write_bytes(half)
    proc = run_cli(*classify_args(models, other, output, "--resume"))
    assert proc.returncode == 2 and "cannot resume" in proc.stderr, proc.stderr
    assert "another input" in proc.stderr
    assert "line 6" in proc.stderr  # found by the --id-field, before the line numbers drift
    for option, value, named in (("--top-k", "2", "options"), ("--batch-size", "5", "batch_size")):
        output.write_bytes(half)
        proc = run_cli(*classify_args(models, corpus[0], output, "--resume", option, value))
        assert proc.returncode == 2 and "another job" in proc.stderr and named in proc.stderr, proc.stderr
        assert output.read_bytes() == half  # refused before anything was touched
    (tmp_path / "out.jsonl.job.json").unlink()
    proc = run_cli(*classify_args(models, corpus[0], output, "--resume"))
    assert proc.returncode == 2 and "job.json is missing" in proc.stderr, proc.stderr


# -------------------------------------------------------------------- shards
def embed_args(models, corpus_path, directory, *extra):
    return ("embed", "-m", models["mlm"], "-i", corpus_path, "--field", "text", "--batch-size", BATCH,
            "--shard-rows", 64, "-o", directory, "--no-progress", *THREADS, *extra)


@pytest.fixture(scope="module")
def shard_reference(models, corpus, tmp_path_factory):
    directory = tmp_path_factory.mktemp("jobs-shards") / "vectors"
    proc = run_cli(*embed_args(models, corpus[0], directory))
    assert proc.returncode == 1, proc.stderr
    return directory


def shard_contents(directory) -> tuple[bytes, list[bytes]]:
    """(index.jsonl, the bytes of every shard file it lists, in order)."""
    index = (directory / "index.jsonl").read_bytes()
    files = []
    for line in index.splitlines():
        entry = json.loads(line)
        files += [(directory / entry["vectors"]).read_bytes(), (directory / entry["lines"]).read_bytes()]
    return index, files


def test_shards_hold_every_vector_once_with_its_line(models, corpus, shard_reference):
    from numpy_distilbert.shards import open_shards

    shards = open_shards(shard_reference)
    lines = np.concatenate(shards.lines)
    numbered = [(n, text) for n, text in enumerate(corpus[1], 1) if text.strip()]
    good = [(n, json.loads(t)["text"]) for n, t in numbered if n % BAD_EVERY]
    assert lines.tolist() == [n for n, _ in good]
    assert [n for n, _ in shards.errors] == [n for n, _ in numbered if n % BAD_EVERY == 0]
    assert all(len(v) <= 64 for v in shards.vectors) and len(shards.vectors) > 5
    embed = pipeline("feature-extraction", model=models["mlm"], pooling="mean", return_tensors=True)
    vectors = np.concatenate(shards.vectors)
    for row in (0, 1, len(good) // 2, len(good) - 1):
        expected = embed(good[row][1])[0]
        assert np.abs(vectors[row] - expected).max() <= BLAS_THREADS_FP32


@pytest.mark.parametrize("workers", [1, 2])
def test_shards_killed_at_several_moments_then_resumed(models, corpus, shard_reference, tmp_path, workers):
    directory = tmp_path / "vectors"
    index = directory / "index.jsonl"
    args = embed_args(models, corpus[0], directory, "--workers", workers)
    expected = shard_contents(shard_reference)
    moments = [lambda: True, lambda: size(index) > 0,
               lambda: index.exists() and index.read_bytes().count(NEWLINE) >= 5,
               lambda: any(directory.glob("*.partial"))]
    log = []
    for ready in moments:
        killed = kill_when(start_cli(*args, "--resume"), ready)
        listed = index.read_bytes().count(NEWLINE) if index.exists() else 0
        log.append(f"killed={killed} with {listed} shards listed, "
                   f"{len(list(directory.glob('*.partial')))} partial files")
    run_cli(*args, "--resume")
    print(f"workers={workers}: " + "; ".join(log))
    assert shard_contents(directory) == expected


def test_torn_index_torn_shard_and_damaged_shard_are_redone(models, corpus, shard_reference, tmp_path):
    directory = tmp_path / "vectors"
    expected = shard_contents(shard_reference)
    index = directory / "index.jsonl"
    for damage in ("torn index line", "partial shard file", "unlisted shard", "damaged listed shard"):
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(shard_reference, directory)
        data = index.read_bytes()
        entries = data.splitlines(keepends=True)
        if damage == "torn index line":
            index.write_bytes(b"".join(entries[:-2]) + entries[-2][:40])
        elif damage == "partial shard file":
            index.write_bytes(b"".join(entries[:-1]))
            (directory / "shard-00099.npy.partial").write_bytes(b"\x93NUMPY half")
        elif damage == "unlisted shard":
            index.write_bytes(b"".join(entries[:-3]))  # the last three shards' files stay, unlisted
        else:
            victim = directory / "shard-00002.npy"
            victim.write_bytes(victim.read_bytes()[:-7])
        proc = run_cli(*embed_args(models, corpus[0], directory, "--resume"))
        assert shard_contents(directory) == expected, f"{damage}: {proc.stderr}"
        assert not list(directory.glob("*.partial"))
        if damage == "damaged listed shard":
            assert "shard 2 is damaged" in proc.stderr
