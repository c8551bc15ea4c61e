"""The command line's conventions: JSON-line fields, text pairs, embeddings as arrays or a
matrix, --model where the default checkpoint has no head, --traceback, and option defaults
read from the pipeline classes.

Subprocess runs as tests/test_cli.py does; every result is compared with what the same
pipeline returns in-process (the pipelines are compared with transformers elsewhere).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_cli import TINY, assert_close, assert_one_error_line, cli, error_lines, jsonl, write_cli_models

from numpy_distilbert import cli as cli_module
from numpy_distilbert.pipelines import pipeline, pipeline_class


@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_model_path) -> dict[str, Path]:
    return write_cli_models(tmp_path_factory.mktemp("cli-conventions"), shared_model_path)


def records(*objects) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


# ------------------------------------------------------------- one source of truth
def _help_of(command: str) -> str:
    parser = cli_module.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, cli_module.argparse._SubParsersAction))
    return " ".join(subparsers.choices[command].format_help().split())


def test_option_defaults_are_read_from_the_pipeline_classes(monkeypatch):
    fill_mask = pipeline_class("fill-mask")
    monkeypatch.setattr(fill_mask, "default_options", {**fill_mask.default_options, "top_k": 7})
    assert "candidates per [MASK] (default: 7)" in _help_of("fill-mask")
    qa = pipeline_class("question-answering")
    monkeypatch.setattr(qa, "default_options", {**qa.default_options, "max_answer_len": 21})
    assert "in tokens (default: 21)" in _help_of("qa")
    monkeypatch.setattr("numpy_distilbert.pipelines.base.DEFAULT_BATCH_SIZE", 5)
    assert "inputs per forward pass (default: 5)" in _help_of("embed")
    # Left out on the command line, an option is not passed: the pipeline's default applies.
    parser = cli_module.build_parser()
    pipeline_defaults = {"top_k", "max_answer_len", "max_seq_len", "doc_stride", "hypothesis_template"}
    for argv in (["fill-mask", "[MASK]"], ["qa", "-q", "a", "-c", "b"], ["zero-shot", "--labels", "a", "b"]):
        args = parser.parse_args(argv)
        assert not pipeline_defaults & set(cli_module.COMMANDS_BY_NAME[argv[0]].options(args))
        assert args.batch_size is None


# ------------------------------------------------------------------ --model
@pytest.mark.parametrize("command", ["classify", "ner", "qa", "zero-shot"])
def test_commands_without_a_default_head_need_model(command, tmp_path):
    extra = {"qa": ["-q", "Where?", "-c", "Here."], "zero-shot": ["--labels", "a,b", "text"]}
    args = extra.get(command, ["text"])
    # An empty cache and no network: loading the default model would fail differently.
    env = {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = cli(command, *args, env=env)
    assert_one_error_line(proc, 2, f"{command} needs --model", "head")
    assert proc.stdout == ""


# ------------------------------------------------------------------- --field
def test_field_reads_json_lines_for_every_text_command(models):
    lines = records({"text": "Paris is the [MASK] of France.", "id": 1}, {"id": 2}, {"text": 3},
                    ["not", "an", "object"], {"text": "Der [MASK] ist hier."})  # fmt: skip
    proc = cli("fill-mask", "-m", models["mlm"], "--field", "text", "--top-k", "2", stdin=lines)
    assert proc.returncode == 1
    errors = proc.stderr.splitlines()
    assert [e.split(":")[2].strip() for e in errors] == ["stdin line 2", "stdin line 3", "stdin line 4"]
    assert "'text'" in errors[0] and "string" in errors[1] and "object" in errors[2]
    out = jsonl(proc.stdout)
    assert [o.get("line") for o in out[1:4]] == [2, 3, 4]
    unmasker = pipeline("fill-mask", model=models["mlm"])
    assert_close(out[0], unmasker("Paris is the [MASK] of France.", top_k=2))
    assert_close(out[4], unmasker("Der [MASK] ist hier.", top_k=2))

    sentence = "Angela wohnt in Berlin."
    ner = cli("ner", "-m", models["ner"], "--field", "sentence", stdin=records({"sentence": sentence}))
    assert ner.returncode == 0, ner.stderr
    assert_close(jsonl(ner.stdout), [pipeline("ner", model=models["ner"])(sentence)])
    tokens = cli("tokenize", "-m", models["vocab"], "--field", "t", stdin=records({"t": "Hallo Welt"}))
    from tokenizer import WordPieceTokenizer

    assert jsonl(tokens.stdout)[0]["tokens"] == WordPieceTokenizer.from_pretrained(models["vocab"]).tokenize(
        "Hallo Welt", add_special_tokens=True)


def test_field_does_not_apply_to_text_arguments(models):
    assert_one_error_line(cli("fill-mask", "-m", models["mlm"], "--field", "text", "a [MASK]"), 2, "--field")


def test_classify_text_pairs_from_json_lines_and_text_pair(models):
    classifier = pipeline("text-classification", model=models["nli"])
    premise, hypothesis = "Angela Merkel ist Politikerin.", "This text is about politics."
    lines = records({"premise": premise, "hypothesis": hypothesis}, {"premise": premise})
    fields = ["--field", "premise", "--pair-field", "hypothesis"]
    pairs = cli("classify", "-m", models["nli"], *fields, stdin=lines)
    assert pairs.returncode == 1 and "'hypothesis'" in pairs.stderr
    out = jsonl(pairs.stdout)
    assert_close(out[0], classifier({"text": premise, "text_pair": hypothesis}))
    assert out[1]["line"] == 2
    # --pair-field alone reads transformers' own dict keys for the first text: "text".
    default = cli("classify", "-m", models["nli"], "--pair-field", "text_pair",
                  stdin=records({"text": premise, "text_pair": hypothesis}))  # fmt: skip
    assert_close(jsonl(default.stdout), out[:1])
    one = cli("classify", "-m", models["nli"], "--text-pair", hypothesis, "--top-k", "0", premise)
    assert one.returncode == 0, one.stderr
    assert_close(json.loads(one.stdout), classifier(premise, text_pair=hypothesis, top_k=None))
    assert_close(json.loads(one.stdout), classifier({"text": premise, "text_pair": hypothesis}, top_k=None))
    assert_one_error_line(cli("classify", "-m", models["nli"], "--text-pair", "x", "--pair-field", "y",
                              stdin=records({"text": "a", "y": "b"})), 2, "--text-pair")  # fmt: skip


def test_qa_fields_can_be_renamed(models):
    context = "My name is Wolfgang and I live in Berlin."
    lines = records({"q": "Where do I live?", "passage": context}, {"question": "x", "context": "y"})
    proc = cli("qa", "-m", models["qa"], "--field", "q", "--pair-field", "passage", stdin=lines)
    assert proc.returncode == 1 and "'q'" in proc.stderr
    out = jsonl(proc.stdout)
    qa = pipeline("question-answering", model=models["qa"])
    assert_close(out[0], qa(question="Where do I live?", context=context))


# ------------------------------------------------------------------- embed
def test_embed_writes_one_line_per_input_even_for_one_argument(models):
    proc = cli("embed", "-m", models["mlm"], "Hello world")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    expected = pipeline("feature-extraction", model=models["mlm"], pooling="mean")("Hello world")[0]
    assert_close(json.loads(line), expected, tol=0.0)


def test_embed_normalize(models):
    texts = ["Hello world", "Ein etwas längerer Satz."]
    proc = cli("embed", "-m", models["mlm"], "--normalize", "--pooling", "cls", *texts)
    assert proc.returncode == 0, proc.stderr
    raw = np.array(pipeline("feature-extraction", model=models["mlm"], pooling="cls")(texts))[:, 0]  # [2, D]
    expected = raw / np.linalg.norm(raw, axis=-1, keepdims=True)
    got = np.array(jsonl(proc.stdout))
    assert got.shape == (2, TINY["dim"]) and np.abs(got - expected).max() < 1e-6
    assert np.allclose(np.linalg.norm(got, axis=-1), 1.0, atol=1e-6)


def test_embed_output_npy_matrix(models, tmp_path):
    texts = ["Hello world", "word " * 600, "Zweiter Satz."]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    target = tmp_path / "vectors.npy"
    target.write_bytes(b"old content")  # overwritten, as the help says
    proc = cli("embed", "-m", models["mlm"], "-i", source, "-o", target)
    assert proc.returncode == 1 and proc.stdout == ""
    (error,) = error_lines(proc.stderr)  # and perhaps the tokenizer's too-long notice, as a warning line
    assert "line 2" in error and "--truncation" in error
    matrix = np.load(target, allow_pickle=False)
    assert matrix.dtype == np.float32 and matrix.shape == (3, TINY["dim"])
    expected = pipeline("feature-extraction", model=models["mlm"], pooling="mean", return_tensors=True)
    assert np.array_equal(matrix[0], expected(texts[0])[0])
    assert np.array_equal(matrix[2], expected(texts[2])[0])
    assert np.isnan(matrix[1]).all()  # the failed input's row: aligned, and impossible to mistake
    assert_one_error_line(cli("embed", "-m", models["mlm"], "--pooling", "none", "-o", target, "x"), 2, "-o")


# ------------------------------------------------------------------ --traceback
def test_traceback_option_and_environment_variable(models, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (broken / name).write_bytes((models["mlm"] / name).read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")  # no tensors
    plain = cli("embed", "-m", broken, "x")
    assert_one_error_line(plain, 1, "cannot load")
    runs = [cli("--traceback", "embed", "-m", broken, "x"), cli("embed", "--traceback", "-m", broken, "x"),
            cli("embed", "-m", broken, "x", env={"NUMPY_DISTILBERT_TRACEBACK": "1"})]
    for proc in runs:
        assert proc.returncode == 1
        assert "Traceback (most recent call last)" in proc.stderr
        assert proc.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]
    quiet = cli("embed", "-m", broken, "x", env={"NUMPY_DISTILBERT_TRACEBACK": "0"})
    assert quiet.stderr == plain.stderr
    # Per-input errors too: the one line stays, the traceback comes before it.
    per_input = cli("--traceback", "fill-mask", "-m", models["mlm"], "no mask here")
    assert "Traceback" in per_input.stderr and "ValueError" in per_input.stderr


# ------------------------------------------------------------ in-process main
def test_main_restores_the_warning_handler(models, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # the second run warns again (not once per location)
        original = warnings.showwarning
        handlers = {name: list(logging.getLogger(name).handlers) for name in cli_module.LOGGERS}
        for _ in range(2):
            argv = ["fill-mask", "-m", str(models["mlm"]), "--targets", "Zzzqqx", "a [MASK] b"]
            assert cli_module.main(argv) == 0
            assert warnings.showwarning is original
            assert {name: logging.getLogger(name).handlers for name in handlers} == handlers
            err = capsys.readouterr().err
            assert err.startswith("numpy-distilbert: warning: target 'Zzzqqx'"), err


def test_json_lines_without_field_are_text_but_a_warning_says_so(models):
    lines = records({"text": "Hello [MASK]."}, {"text": "Bye [MASK]."})
    proc = cli("fill-mask", "-m", models["mlm"], "--top-k", "1", stdin=lines)
    assert proc.returncode == 0
    (warning,) = proc.stderr.splitlines()  # once, not per line
    assert warning.startswith("numpy-distilbert: warning: stdin line 1 is a JSON object")
    assert "--field" in warning
    unmasker = pipeline("fill-mask", model=models["mlm"])
    assert_close(jsonl(proc.stdout), [unmasker(line, top_k=1) for line in lines.splitlines()])


def test_ner_reads_pre_split_words(models):
    sentences = [["Angela", "Merkel", "wohnt", "in", "Berlin", "."], ["Jean-Pierre", "", "Zürich"]]
    lines = records(*({"tokens": words} for words in sentences), {"tokens": "not a list"})
    proc = cli("ner", "-m", models["ner"], "--field", "tokens", "--is-split-into-words",
               "--aggregation-strategy", "first", stdin=lines)  # fmt: skip
    assert proc.returncode == 1 and "line 3" in proc.stderr and "list of strings" in proc.stderr
    ner = pipeline("ner", model=models["ner"])
    expected = ner(sentences, is_split_into_words=True, aggregation_strategy="first")
    assert_close(jsonl(proc.stdout)[:2], expected)
    assert_one_error_line(cli("ner", "-m", models["ner"], "--is-split-into-words", "a b"), 2, "--field")
