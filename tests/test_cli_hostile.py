"""The command line under hostile conditions: pipes, FIFOs, closed or full streams, odd
encodings, malicious JSON lines and checkpoints that compute NaN.

Every case runs `python -m numpy_distilbert` in a subprocess with explicit stdin/stdout
handles, and checks what a user would see: the exit status, exactly one error line per
problem (never a traceback), and strict JSON on stdout (no NaN, no Infinity).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from test_cli import REPO_ROOT, assert_close, write_cli_models

from numpy_distilbert.pipelines import pipeline

TIMEOUT = 120  # seconds: a hang fails the test instead of hanging the suite
TRACEBACK_MARKERS = ("Traceback", "Exception ignored")


@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_model_path) -> dict[str, Path]:
    return write_cli_models(tmp_path_factory.mktemp("cli-models"), shared_model_path)


def command(*args) -> list[str]:
    return [sys.executable, "-m", "numpy_distilbert", *map(str, args)]


def environment(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


def run(*args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=None, **kwargs):
    """Run the CLI with explicit handles; stdout/stderr come back as text when piped."""
    proc = subprocess.run(command(*args), stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                          env=env or environment(), timeout=TIMEOUT, **kwargs)
    out = proc.stdout.decode("utf-8") if isinstance(proc.stdout, bytes) else proc.stdout
    return proc.returncode, out, proc.stderr.decode("utf-8", "replace")


def assert_no_traceback(stderr: str) -> None:
    assert not any(marker in stderr for marker in TRACEBACK_MARKERS), stderr


def error_lines(stderr: str) -> list[str]:
    assert_no_traceback(stderr)
    lines = stderr.splitlines()
    assert all(line.startswith("numpy-distilbert: ") for line in lines), stderr
    return [line for line in lines if line.startswith("numpy-distilbert: error: ")]


def strict_jsonl(stdout: str) -> list:
    """Parse JSON lines, refusing NaN/Infinity (which json.loads accepts by default)."""

    def refuse(constant: str):
        raise AssertionError(f"non-standard JSON constant {constant} in the output")

    return [json.loads(line, parse_constant=refuse) for line in stdout.splitlines()]


def tokenized(models_dir: Path, texts: list[str]) -> list[dict]:
    from tokenizer import WordPieceTokenizer

    tok = WordPieceTokenizer.from_pretrained(models_dir)
    out = []
    for text in texts:
        enc = tok(text, return_offsets_mapping=True)
        out.append({"tokens": enc.tokens(0), "input_ids": list(enc["input_ids"]),
                    "offsets": [list(o) for o in enc["offset_mapping"]]})
    return out


# ----------------------------------------------------------- inputs read once
TEXTS = ["erste Zeile", "second line"]
PAYLOAD = "".join(f"{t}\n" for t in TEXTS).encode()


def test_dev_stdin_pipe_is_read_once(models):
    # `printf ... | numpy-distilbert tokenize -i /dev/stdin`
    proc = subprocess.run(command("tokenize", "-m", models["vocab"], "-i", "/dev/stdin"), input=PAYLOAD,
                          capture_output=True, env=environment(), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert strict_jsonl(proc.stdout.decode()) == tokenized(models["vocab"], TEXTS)


@pytest.mark.skipif(shutil.which("bash") is None or not Path("/dev/fd").exists(),
                    reason="needs bash process substitution (/dev/fd)")
def test_process_substitution_is_read_once(models):
    script = 'exec "$@" -i <(printf "erste Zeile\\nsecond line\\n")'
    proc = subprocess.run(["bash", "-c", script, "bash", *command("tokenize", "-m", models["vocab"])],
                          capture_output=True, text=True, env=environment(), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert strict_jsonl(proc.stdout) == tokenized(models["vocab"], TEXTS)


def _with_fifo_writer(fifo: Path, payload: bytes) -> threading.Thread:
    """Write `payload` into the FIFO from a thread (open blocks until the reader opens)."""

    def write() -> None:
        try:
            fd = os.open(fifo, os.O_WRONLY)
        except OSError:
            return
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _unblock(fifo: Path) -> None:
    """If the CLI never opened the FIFO, open it for reading so the writer thread can end."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.close(fd)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_fifo_does_not_hang(models, tmp_path):
    fifo = tmp_path / "lines.fifo"
    os.mkfifo(fifo)
    writer = _with_fifo_writer(fifo, PAYLOAD)
    try:
        code, out, err = run("tokenize", "-m", models["vocab"], "-i", fifo)
    finally:
        _unblock(fifo)
        writer.join(timeout=10)
    assert code == 0, err
    assert strict_jsonl(out) == tokenized(models["vocab"], TEXTS)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_verify_reads_a_fifo_and_a_pipe_once(models, tmp_path):
    fifo = tmp_path / "texts.fifo"
    os.mkfifo(fifo)
    writer = _with_fifo_writer(fifo, PAYLOAD)
    try:
        code, out, err = run("verify", "-m", models["mlm"], "--json", "--no-transformers", "-i", fifo)
    finally:
        _unblock(fifo)
        writer.join(timeout=10)
    assert code == 3, err  # measured only: nothing checked against a tolerance
    assert json.loads(out)["texts"] == len(TEXTS)
    proc = subprocess.run(command("verify", "-m", models["mlm"], "--json", "--no-transformers",
                                  "-i", "/dev/stdin"),
                          input=PAYLOAD, capture_output=True, env=environment(), timeout=TIMEOUT)
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout)["texts"] == len(TEXTS)


def test_regular_file_still_counts_for_the_progress_total(models, tmp_path):
    # The file is opened once, counted and rewound: every line still comes out.
    batch = tmp_path / "lines.txt"
    lines = [f"line {i}" for i in range(5)]
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run("tokenize", "-m", models["vocab"], "--batch-size", "2", "-i", batch)
    assert code == 0, err
    assert strict_jsonl(out) == tokenized(models["vocab"], lines)


# ------------------------------------------------------------------- streams
def test_stdout_on_a_full_device_is_one_error_line(models):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        code, _, err = run("tokenize", "-m", models["vocab"], "a few words", stdout=full)
    assert code == 1
    (line,) = error_lines(err)
    assert "cannot write the output" in line, err


@pytest.mark.parametrize("args", [
    ["tokenize", "a few words"],
    ["verify", "--no-transformers"],  # one report, written at the end
    ["verify", "--no-transformers", "--json"],
])
def test_reader_gone_before_the_first_write_is_quiet(models, args):
    # A pipe whose read end is already closed: every write is EPIPE (`| head -0`, or a
    # reader that died). The Python docs' handling: stop quietly, exit 1, nothing on stderr
    # (not even "Exception ignored ... BrokenPipeError" from the flush at exit).
    read_end, write_end = os.pipe()
    os.close(read_end)
    name, *rest = args
    try:
        code, _, err = run(name, "-m", models["vocab" if name == "tokenize" else "mlm"], *rest,
                           stdout=write_end)
    finally:
        os.close(write_end)
    assert code == 1 and err == "", err


def test_reader_leaving_mid_stream_is_quiet(models, tmp_path):
    batch = tmp_path / "many.txt"
    batch.write_text("".join(f"line number {i}\n" for i in range(3000)), encoding="utf-8")
    proc = subprocess.Popen(command("tokenize", "-m", models["vocab"], "-i", batch),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=environment())
    try:
        first = proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=TIMEOUT)
    finally:
        proc.kill() if proc.poll() is None else None
    assert json.loads(first)["tokens"][1:3] == ["line", "number"]
    assert code == 1 and err == "", err


@pytest.mark.parametrize("stderr_state", ["reader gone", "closed"])
def test_stderr_gone_does_not_cost_the_results(models, stderr_state):
    # Nowhere to report an error is no reason to drop the results on stdout.
    payload = b"eins\ncaf\xe9\ndrei\n"
    read_end, write_end = os.pipe()
    os.close(read_end)
    options = {"stderr": write_end} if stderr_state == "reader gone" else {"preexec_fn": _close_fd(2)}
    try:
        proc = subprocess.run(command("tokenize", "-m", models["vocab"], "-i", "-"), input=payload,
                              stdout=subprocess.PIPE, env=environment(), timeout=TIMEOUT, **options)
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    out = strict_jsonl(proc.stdout.decode())
    assert [out[0], out[2]] == tokenized(models["vocab"], ["eins", "drei"])
    assert out[1]["line"] == 2 and "UTF-8" in out[1]["error"]


def _close_fd(fd: int):
    return lambda: os.close(fd)


def test_closed_stdout_is_one_error_line(models):
    code, _, err = run("tokenize", "-m", models["vocab"], "words", stdout=None, preexec_fn=_close_fd(1))
    assert code == 1
    (line,) = error_lines(err)
    assert "standard output is closed" in line


def test_closed_stdin_with_dash_is_one_error_line(models):
    code, out, err = run("tokenize", "-m", models["vocab"], "-i", "-", stdin=None, preexec_fn=_close_fd(0))
    assert code == 2 and out == ""
    (line,) = error_lines(err)
    assert "standard input is closed" in line


def test_ascii_output_encoding_still_gives_the_same_json(models):
    texts = ["Grüße aus Köln", "東京は日本の首都です"]
    env = environment(PYTHONIOENCODING="ascii")
    code, out, err = run("tokenize", "-m", models["vocab"], "--jsonl", *texts, env=env)
    assert code == 0, err
    assert out.isascii()
    assert strict_jsonl(out) == tokenized(models["vocab"], texts)
    # One argument: indented JSON, same data.
    code, out, err = run("tokenize", "-m", models["vocab"], texts[0], env=env)
    assert code == 0, err
    assert json.loads(out) == tokenized(models["vocab"], texts[:1])[0]


# ------------------------------------------------------------ hostile JSON lines
def test_qa_lines_nested_too_deep_or_with_huge_numbers_fail_alone(models):
    context = "My name is Wolfgang and I live in Berlin."
    good = [{"question": "Where do I live?", "context": context},
            {"question": "Who am I?", "context": context}]
    lines = [
        json.dumps(good[0]),
        "[" * 100_000 + "]" * 100_000,  # deeper than any recursion limit
        '{"question": ' + "9" * 5000 + ', "context": "x"}',  # more digits than int() converts
        json.dumps(good[1]),
    ]
    proc = subprocess.run(command("qa", "-m", models["qa"]), input="\n".join(lines).encode() + b"\n",
                          capture_output=True, env=environment(), timeout=TIMEOUT)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    errors = error_lines(err)
    assert [e.split(":")[2].strip() for e in errors] == ["stdin line 2", "stdin line 3"], err
    out = strict_jsonl(proc.stdout.decode())
    assert len(out) == 4 and [out[1]["line"], out[2]["line"]] == [2, 3]
    qa = pipeline("question-answering", model=models["qa"])
    assert_close(out[0], qa(**good[0]))
    assert_close(out[3], qa(**good[1]))


# --------------------------------------------------------- non-finite weights
def _with_bad_value(source: Path, target: Path, tensor: str, value: float) -> Path:
    """A copy of a checkpoint with one entry of `tensor` set to `value` (NaN or inf)."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(source, target)
    tensors = load_file(target / "model.safetensors")
    (name,) = [n for n in tensors if n in (tensor, f"distilbert.{tensor}")]
    tensors[name] = tensors[name].copy()
    tensors[name][1] = value
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


@pytest.fixture(scope="module")
def broken(models, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("non-finite")
    specs = {
        "mlm-nan": ("mlm", "vocab_projector.bias", np.nan),
        "mlm-inf": ("mlm", "vocab_projector.bias", np.inf),
        "nli-nan": ("nli", "classifier.bias", np.nan),
        "ner-inf": ("ner", "classifier.bias", -np.inf),
        "qa-nan": ("qa", "qa_outputs.bias", np.nan),
        "encoder-nan": ("mlm", "embeddings.LayerNorm.bias", np.nan),
    }
    return {name: _with_bad_value(models[src], root / name, tensor, value)
            for name, (src, tensor, value) in specs.items()}


@pytest.mark.parametrize(("name", "args", "kind"), [
    ("mlm-nan", ["fill-mask", "Paris is the [MASK] of France.", "A [MASK] day."], "NaN"),
    ("mlm-inf", ["fill-mask", "Paris is the [MASK] of France.", "A [MASK] day."], "inf"),
    ("nli-nan", ["classify", "I love it.", "I hate it."], "NaN"),
    ("nli-nan", ["zero-shot", "--labels", "a,b", "I love it.", "I hate it."], "NaN"),
    ("ner-inf", ["ner", "Angela Merkel wohnt in Berlin.", "Paris"], "inf"),
    ("encoder-nan", ["embed", "Hello world", "Zweiter Satz"], "NaN"),
    ("qa-nan", ["qa", "-q", "Where?", "-c", "I live in Berlin.", "--jsonl"], "NaN"),
])
def test_non_finite_outputs_are_errors_not_json_nan(broken, name, args, kind):
    command_name, *rest = args
    code, out, err = run(command_name, "-m", broken[name], *rest)
    assert code == 1, err
    errors = error_lines(err)
    inputs = 1 if command_name == "qa" else len(rest) - (2 if command_name == "zero-shot" else 0)
    assert len(errors) == inputs, err
    assert all(kind in e and "non-finite" in e for e in errors), err
    results = strict_jsonl(out)
    assert len(results) == inputs and all(set(r) == {"error", "line"} for r in results), out


def test_verify_refuses_non_finite_layers(broken):
    code, out, err = run("verify", "-m", broken["encoder-nan"], "--no-transformers")
    assert code == 1 and out == ""
    (line,) = error_lines(err)
    assert "NaN" in line and "embeddings" in line


# ------------------------------------------------------------------ tokenize
def test_tokenize_needs_only_the_tokenizer_files_of_a_cached_model(models, tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tokenizer-only"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    for name in ("vocab.txt", "tokenizer_config.json"):  # no config.json, no weights
        shutil.copyfile(models["vocab"] / name, snapshot / name)
    env = environment(HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    code, out, err = run("tokenize", "-m", "someone/tokenizer-only", "--jsonl", *TEXTS, env=env)
    assert code == 0, err
    assert strict_jsonl(out) == tokenized(models["vocab"], TEXTS)
    # An id that is not cached at all is still a one-line usage error.
    code, out, err = run("tokenize", "-m", "someone/not-cached", "x", env=env)
    assert code == 2 and out == ""
    (line,) = error_lines(err)
    assert "someone/not-cached" in line


def test_tokenize_with_an_empty_model_is_not_the_default_model(models, tmp_path):
    # A cached default model must not stand in for `--model ''` (nor must the current directory).
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--distilbert--distilbert-base-multilingual-cased"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    shutil.copyfile(models["vocab"] / "vocab.txt", repo / "snapshots" / commit / "vocab.txt")
    env = environment(HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    code, out, err = run("tokenize", "-m", "", "x", env=env, cwd=models["vocab"])
    assert code == 2 and out == "", err
    (line,) = error_lines(err)
    assert "empty" in line, line
    code, out, err = run("tokenize", "x", env=env)  # no --model: the default, from the cache
    assert code == 0, err


# -------------------------------------------------------------------- verify
def test_verify_without_transformers_is_not_a_pass(models, tmp_path):
    # A `transformers` that cannot be imported, ahead of the real one on the path.
    hidden = tmp_path / "hide" / "transformers"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("hidden by the test")\n', encoding="utf-8")
    path = os.pathsep.join([str(REPO_ROOT), str(hidden.parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    code, out, err = run("verify", "-m", models["mlm"], env=env)
    assert code == 3, out + err
    assert "PASS" not in out
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("result: NOT CHECKED against transformers") and "not installed" in last
    assert_no_traceback(err)
    code, out, err = run("verify", "-m", models["mlm"], "--json", env=env)
    result = json.loads(out)
    assert code == 3 and result["passed"] is None and result["result"] == "NOT CHECKED"
    assert all(c["tolerance"] is None for c in result["comparisons"])


def test_a_result_holding_nan_becomes_that_inputs_error_line(capsys):
    # The last line of defence, whatever a pipeline lets through: strict JSON or an error.
    from numpy_distilbert import cli

    def scores(values: list[str]) -> list[dict]:
        return [{"text": v, "score": float("nan") if v == "bad" else 0.5} for v in values]

    items = [cli.Item(f"line {i}", i, text) for i, text in enumerate(["good", "bad", "also good"], 1)]
    progress = cli.Progress("test", None, enabled=False)
    status = cli.run_inputs(scores, items, total=None, pretty=False, batch_size=8, progress=progress)
    captured = capsys.readouterr()
    assert status == cli.EXIT_FAILED
    out = strict_jsonl(captured.out)
    assert out[0] == {"text": "good", "score": 0.5} and out[2] == {"text": "also good", "score": 0.5}
    assert out[1]["line"] == 2 and "JSON" in out[1]["error"]
    (line,) = error_lines(captured.err)
    assert line.startswith("numpy-distilbert: error: line 2: ")
