"""The command line, run as users run it: `python -m numpy_distilbert ...` in a subprocess.

Small random checkpoints (dim 64, 2 layers, the real 119,547-token vocabulary) are written
once for the module with NumPy alone. Every command's JSON is compared with what the same
pipeline returns in-process, so the CLI can only pass by passing options and inputs through
faithfully.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import reference_required

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.pipelines import pipeline
from numpy_distilbert.random_weights import write_random_checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = dict(dim=64, n_layers=2, n_heads=4, hidden_dim=128)
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
SUBCOMMANDS = ("fill-mask", "embed", "classify", "zero-shot", "ner", "qa", "tokenize", "verify")


@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_model_path) -> dict[str, Path]:
    return write_cli_models(tmp_path_factory.mktemp("cli-models"), shared_model_path)


def write_cli_models(root: Path, shared_model_path: Path) -> dict[str, Path]:
    """{name: directory}: tiny mlm, nli, ner and qa checkpoints, and a tokenizer-only "vocab"."""
    config = DistilBertConfig(**TINY)
    specs = {
        "mlm": ("DistilBertForMaskedLM", None),
        "nli": ("DistilBertForSequenceClassification", NLI_LABELS),
        "ner": ("DistilBertForTokenClassification", NER_LABELS),
        "qa": ("DistilBertForQuestionAnswering", None),
    }
    dirs = {
        name: write_random_checkpoint(root / name, config, seed=i + 1, architecture=arch,
                                      vocab_dir=shared_model_path, id2label=labels)
        for i, (name, (arch, labels)) in enumerate(specs.items())
    }
    # A tokenizer-only directory: `tokenize` must not need config.json or weights.
    dirs["vocab"] = root / "vocab-only"
    dirs["vocab"].mkdir()
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copyfile(shared_model_path / name, dirs["vocab"] / name)
    return dirs


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, **kwargs
        ) -> subprocess.CompletedProcess:
    """Run `python -m numpy_distilbert *args`; stdin is empty unless given; `env` adds variables."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "numpy_distilbert", *map(str, args)],
        input=stdin if stdin is not None else "",
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=300, **kwargs,
    )


def jsonl(stdout: str) -> list:
    return [json.loads(line) for line in stdout.splitlines()]


def assert_close(ours, expected, tol: float = 1e-6, where: str = "") -> None:
    """Equal structure, strings and ints; floats within `tol`."""
    if isinstance(expected, float):
        assert isinstance(ours, (int, float)), f"{where}: {ours!r} vs {expected}"
        assert abs(ours - expected) <= tol, f"{where}: {ours} vs {expected}"
    elif isinstance(expected, dict):
        assert isinstance(ours, dict) and set(ours) == set(expected), f"{where}: {ours} vs {expected}"
        for key in expected:
            assert_close(ours[key], expected[key], tol, f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(expected), f"{where}: {ours} vs {expected}"
        for i, (o, e) in enumerate(zip(ours, expected, strict=True)):
            assert_close(o, e, tol, f"{where}[{i}]")
    else:
        assert ours == expected, f"{where}: {ours!r} vs {expected!r}"


def error_lines(stderr: str) -> list[str]:
    """The error lines of stderr; every other line must be a one-line warning of ours."""
    lines = stderr.splitlines()
    others = [line for line in lines if not line.startswith("numpy-distilbert: error: ")]
    assert all(line.startswith("numpy-distilbert: warning: ") for line in others), stderr
    return [line for line in lines if line not in others]


def assert_one_error_line(proc: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("numpy-distilbert: error: "), proc.stderr
    for word in words:
        assert word in lines[0]


# ---------------------------------------------------------------------- help
def test_help_lists_commands_and_imports_nothing_heavy():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "numpy_distilbert", "--help"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    for command in SUBCOMMANDS:
        assert re.search(rf"^\s+{re.escape(command)}\b", proc.stdout, re.M), f"{command} not in --help"
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    heavy = {"numpy_distilbert.pipelines", "tokenizer", "torch", "transformers", "safetensors",
             "numpy_distilbert.verify"}
    assert not heavy & imported, f"--help imported {sorted(heavy & imported)}"


def test_usage_errors_are_one_line_and_exit_2(models):
    assert_one_error_line(cli("fill-mask", "--top-k", "0", "a [MASK]"), 2, "--top-k")
    assert_one_error_line(cli("qa", "-m", models["qa"], "--question", "Where?"), 2, "--context")
    assert_one_error_line(cli("frobnicate"), 2, "frobnicate")
    assert_one_error_line(cli("zero-shot", "-m", models["nli"], "text"), 2, "--labels")


def test_nonexistent_model_is_one_clear_line(tmp_path):
    missing = tmp_path / "no-such-model"
    proc = cli("fill-mask", "-m", missing, "Hello [MASK].")
    assert_one_error_line(proc, 2, str(missing), "not found")
    assert proc.stdout == ""


# ----------------------------------------------------------------- fill-mask
def test_fill_mask_matches_the_pipeline(models):
    text = "Hello I'm a [MASK] model."
    proc = cli("fill-mask", "-m", models["mlm"], "--top-k", "3", text)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("[\n"), "a single argument prints indented JSON"
    expected = pipeline("fill-mask", model=models["mlm"])(text, top_k=3)
    assert_close(json.loads(proc.stdout), expected, tol=0.0)


def test_fill_mask_batch_file_keeps_good_lines_and_reports_bad_ones(models, tmp_path):
    too_long = "word " * 600 + "[MASK]"
    lines = ["Paris is the [MASK] of France.", "", "no mask on this line", "The [MASK] sat on the mat.",
             too_long, "Berlin ist die [MASK] Deutschlands."]
    batch = tmp_path / "batch.txt"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = cli("fill-mask", "-m", models["mlm"], "--top-k", "2", "--batch-size", "8", "-i", batch)
    assert proc.returncode == 1
    errors = error_lines(proc.stderr)  # the tokenizer's too-long notice may come as a warning line
    assert len(errors) == 2, proc.stderr
    assert errors[0].startswith(f"numpy-distilbert: error: {batch} line 3: ") and "[MASK]" in errors[0]
    assert errors[1].startswith(f"numpy-distilbert: error: {batch} line 5: ")
    out = jsonl(proc.stdout)
    assert len(out) == 5  # one per non-blank line, errors included, in order
    assert [o.get("line") for o in out if isinstance(o, dict)] == [3, 5]
    unmasker = pipeline("fill-mask", model=models["mlm"])
    for result, text in zip([out[0], out[2], out[4]], [lines[0], lines[3], lines[5]], strict=True):
        assert_close(result, unmasker(text, top_k=2))

    # The same lines on stdin give the same output.
    piped = cli("fill-mask", "-m", models["mlm"], "--top-k", "2", stdin=batch.read_text(encoding="utf-8"))
    assert piped.returncode == 1
    assert [e.replace("stdin", str(batch)) for e in error_lines(piped.stderr)] == errors
    assert_close(jsonl(piped.stdout), out, tol=0.0)


def test_fill_mask_jsonl_stdin_batches(models):
    texts = [f"Sentence number {i} has a [MASK] in it." for i in range(5)] + ["[MASK] [MASK] two masks."]
    proc = cli("fill-mask", "-m", models["mlm"], "--batch-size", "4", "-i", "-", stdin="\n".join(texts))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    out = jsonl(proc.stdout)
    assert len(out) == len(texts)
    assert_close(out, pipeline("fill-mask", model=models["mlm"], batch_size=4)(texts))


# ------------------------------------------------------------ other pipelines
def test_embed(models):
    texts = ["Hello world", "Ein etwas längerer Satz auf Deutsch."]
    proc = cli("embed", "-m", models["mlm"], *texts)
    assert proc.returncode == 0, proc.stderr
    out = jsonl(proc.stdout)
    assert len(out) == 2 and all(len(v) == TINY["dim"] for v in out)
    expected = pipeline("feature-extraction", model=models["mlm"], pooling="mean")(texts)
    assert_close(out, [e[0] for e in expected])
    cls = cli("embed", "-m", models["mlm"], "--pooling", "none", "--dtype", "float64", "--jsonl", texts[0])
    tokens = jsonl(cls.stdout)
    expected = pipeline("feature-extraction", model=models["mlm"], dtype=np.float64)(texts[0])
    assert_close(tokens, [expected[0]], tol=1e-12)


def test_classify_and_zero_shot(models):
    texts = ["I love this film.", "Das war furchtbar."]
    best = cli("classify", "-m", models["nli"], *texts)
    every = cli("classify", "-m", models["nli"], "--top-k", "0", "--jsonl", texts[0])
    assert best.returncode == every.returncode == 0, best.stderr + every.stderr
    classifier = pipeline("text-classification", model=models["nli"])
    assert_close(jsonl(best.stdout), classifier(texts))
    assert_close(jsonl(every.stdout), [classifier(texts[0], top_k=None)])

    zs = cli("zero-shot", "-m", models["nli"], "--labels", "politics, sport,cooking", "--multi-label",
             texts[1])
    assert zs.returncode == 0, zs.stderr
    expected = pipeline("zero-shot-classification", model=models["nli"])(
        texts[1], candidate_labels=["politics", "sport", "cooking"], multi_label=True
    )
    assert_close(json.loads(zs.stdout), expected)


def test_ner(models):
    text = "Angela Merkel wohnt in Berlin."
    ner = pipeline("ner", model=models["ner"])
    proc = cli("ner", "-m", models["ner"], "--aggregation-strategy", "simple", text)
    assert proc.returncode == 0, proc.stderr
    assert_close(json.loads(proc.stdout), ner(text, aggregation_strategy="simple"))
    every = cli("ner", "-m", models["ner"], "--ignore-labels", "", "--jsonl", text)
    assert every.returncode == 0, every.stderr
    expected = ner(text, ignore_labels=[])
    assert len(expected) == len(ner.tokenizer.tokenize(text))  # one row per token, "O" included
    assert_close(jsonl(every.stdout), [expected])


def test_qa_arguments_and_jsonl(models):
    context = "My name is Wolfgang and I live in Berlin."
    qa = pipeline("question-answering", model=models["qa"])
    proc = cli("qa", "-m", models["qa"], "-q", "Where do I live?", "--context", context, "--top-k", "2")
    assert proc.returncode == 0, proc.stderr
    assert_close(json.loads(proc.stdout), qa(question="Where do I live?", context=context, top_k=2))

    records = [
        json.dumps({"question": "Where do I live?", "context": context}),
        "{not json",
        json.dumps({"question": "What is my name?", "context": context, "id": "q3"}),
        json.dumps({"question": "Where?"}),
        json.dumps({"question": "Who?", "context": "  "}),
    ]
    proc = cli("qa", "-m", models["qa"], "--handle-impossible-answer", stdin="\n".join(records) + "\n")
    assert proc.returncode == 1
    errors = proc.stderr.splitlines()
    numbers = [re.match(r"numpy-distilbert: error: stdin line (\d+): ", e).group(1) for e in errors]
    assert numbers == ["2", "4", "5"]
    assert "JSON" in errors[0] and "context" in errors[1] and "empty" in errors[2]
    out = jsonl(proc.stdout)
    assert len(out) == 5 and [o.get("line") for o in out[1:2] + out[3:]] == [2, 4, 5]
    for result, question in zip([out[0], out[2]], ["Where do I live?", "What is my name?"], strict=True):
        assert_close(result, qa(question=question, context=context, handle_impossible_answer=True))


# ------------------------------------------------------------------ tokenize
def test_tokenize_needs_only_the_tokenizer(models):
    from tokenizer import WordPieceTokenizer

    text = "Hello wörld, 東京!"
    proc = cli("tokenize", "-m", models["vocab"], text)
    assert proc.returncode == 0, proc.stderr
    tok = WordPieceTokenizer.from_pretrained(models["vocab"])
    enc = tok(text, return_offsets_mapping=True)
    assert json.loads(proc.stdout) == {
        "tokens": enc.tokens(0),
        "input_ids": list(enc["input_ids"]),
        "offsets": [list(o) for o in enc["offset_mapping"]],
    }
    bare = jsonl(cli("tokenize", "-m", models["vocab"], "--no-special-tokens", "--jsonl", text).stdout)
    assert bare[0]["tokens"] == tok.tokenize(text)


def test_a_line_of_bad_utf8_is_one_bad_input(models, tmp_path):
    batch = tmp_path / "mixed.txt"
    batch.write_bytes("\ufefffirst line\n".encode() + b"caf\xe9 latin-1\n" + b"dritte Zeile\n")
    proc = cli("tokenize", "-m", models["vocab"], "--no-special-tokens", "-i", batch)
    assert proc.returncode == 1
    assert_one_error_line(proc, 1, f"{batch} line 2:", "UTF-8")
    from tokenizer import WordPieceTokenizer

    tok = WordPieceTokenizer.from_pretrained(models["vocab"])
    out = jsonl(proc.stdout)
    assert len(out) == 3 and set(out[1]) == {"error", "line"} and out[1]["line"] == 2
    assert out[0]["tokens"] == tok.tokenize("first line")  # the byte-order mark is dropped
    assert out[2]["tokens"] == tok.tokenize("dritte Zeile")


# ------------------------------------------------------------------ progress
def _run_on_tty_stderr(*args, stdin: str) -> str:
    """Run with stderr on a pseudo-terminal (so it `isatty()`); return what was written there."""
    leader, follower = pty.openpty()
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        command = [sys.executable, "-m", "numpy_distilbert", *map(str, args)]
        proc = subprocess.run(command, input=stdin.encode(), stdout=subprocess.PIPE, stderr=follower,
                              env=env, timeout=120)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        assert proc.returncode == 0
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


def test_progress_bar_only_on_a_terminal_and_can_be_turned_off(models, tmp_path):
    lines = "\n".join(f"line {i}" for i in range(12))
    batch = tmp_path / "lines.txt"
    batch.write_text(lines, encoding="utf-8")
    shown = _run_on_tty_stderr("tokenize", "-m", models["vocab"], "--batch-size", "2", "-i", batch, stdin="")
    assert "[###" in shown and "12/12" in shown, shown  # a file: the total is known
    streamed = _run_on_tty_stderr("tokenize", "-m", models["vocab"], "--batch-size", "2", stdin=lines)
    assert "12 inputs" in streamed, streamed  # stdin: a count
    hidden = _run_on_tty_stderr("tokenize", "-m", models["vocab"], "--batch-size", "2", "--no-progress",
                                stdin=lines)
    assert hidden == ""
    piped = cli("tokenize", "-m", models["vocab"], "--batch-size", "2", stdin=lines)
    assert piped.returncode == 0 and piped.stderr == ""  # stderr not a terminal: no bar


# -------------------------------------------------------------------- verify
ROW = re.compile(r"^\s+(embeddings|block \d+|logits)\s+([0-9.e+-]+)\s+([0-9.e+-]+)", re.M)


def _sections(report: str) -> dict[str, list[tuple[str, float, float]]]:
    sections = {}
    for block in report.split("\n\n"):
        rows = [(m.group(1), float(m.group(2)), float(m.group(3))) for m in ROW.finditer(block)]
        if rows:
            sections[block.splitlines()[0]] = rows
    return sections


def test_verify_prints_per_layer_tables(models):
    proc = cli("verify", "-m", models["mlm"], "Hello I'm a [MASK] model.", "Zweiter Satz, etwas länger.")
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr  # 3: transformers absent, nothing checked
    sections = _sections(proc.stdout)
    own = next(rows for title, rows in sections.items() if title.startswith("float32 vs float64"))
    assert [r[0] for r in own] == ["embeddings", "block 1", "block 2", "logits"]
    for layer, max_abs, max_rel in own:
        assert 1e-9 < max_abs < 1e-3 and 1e-10 < max_rel < 1e-3, (layer, max_abs, max_rel)
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        if reference_required():
            pytest.fail("torch/transformers are required (NUMPY_DISTILBERT_REQUIRE_REFERENCE is set)")
        assert "not installed" in proc.stdout and proc.returncode == 3
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fp32 = next(rows for title, rows in sections.items() if title.startswith("float32 vs transformers"))
    fp64 = next(rows for title, rows in sections.items() if title.startswith("float64 vs transformers"))
    assert [r[0] for r in fp32] == [r[0] for r in fp64] == [r[0] for r in own]
    assert all(r[1] <= 1e-4 for r in fp32) and all(r[1] <= 1e-10 for r in fp64)
    assert proc.stdout.rstrip().endswith("result: PASS")


def test_verify_json_without_transformers(models):
    proc = cli("verify", "-m", models["qa"], "--json", "--no-transformers")
    assert proc.returncode == 3, proc.stderr  # measured, but nothing was checked against a tolerance
    result = json.loads(proc.stdout)
    assert result["architecture"] == "DistilBertForQuestionAnswering" and result["transformers"] is None
    assert result["passed"] is None and result["result"] == "NOT CHECKED"
    (own,) = result["comparisons"]
    assert [row["layer"] for row in own["rows"]] == ["embeddings", "block 1", "block 2", "logits"]
    assert all(1e-9 < row["max_abs"] < 1e-3 for row in own["rows"])
