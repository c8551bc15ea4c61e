"""The resumable distillation run (`distill.distill`) and the `distill` command.

On a tiny random BERT teacher with an MLM head (numpy-built, no torch) and a small vocabulary,
so that masking, dropout, the triple loss, clipping and the schedule all run:
* an interrupted run, resumed, ends bit for bit where the uninterrupted run ends (parameters,
  and every step's loss);
* the command writes a student that our pipelines load, and transformers too (with torch);
* a resumed run refuses other options or texts, a tampered checkpoint, a directory holding some
  other model; bad files and options are usage errors naming the problem.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from numpy_distilbert import tolerances
from numpy_distilbert.cli import main
from numpy_distilbert.config import BertConfig
from numpy_distilbert.distill import DistillOptions, distill
from numpy_distilbert.random_weights import write_random_checkpoint

WORDS = ("the a cat dog sat on mat ran fast slow red blue big small house tree river bird sings "
         "loud quiet over under near far and or but with").split()  # fmt: skip


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A 4-layer random BertForMaskedLM with a 35-token vocabulary (specials + WORDS)."""
    root = tmp_path_factory.mktemp("teacher")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (root / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}), encoding="utf-8")
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=20, max_position_embeddings=32)  # fmt: skip
    return write_random_checkpoint(root, config, seed=2, architecture="BertForMaskedLM", vocab_dir=root)


@pytest.fixture(scope="module")
def bare_teacher(teacher, tmp_path_factory) -> Path:
    """The same sizes as `teacher`, a BertModel without MLM head (a sentence-embedding teacher)."""
    root = tmp_path_factory.mktemp("bare")
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=20, max_position_embeddings=32)  # fmt: skip
    return write_random_checkpoint(root, config, seed=5, architecture="BertModel", vocab_dir=teacher)


def corpus(n: int = 23, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 9)))) for _ in range(n)]


def options(teacher: Path, **changes) -> DistillOptions:
    base = dict(teacher=str(teacher), steps=5, batch_size=4, lr=1e-2, max_length=12, seed=3, warmup=0.2,
                max_grad_norm=1.0)  # fmt: skip
    return DistillOptions(**{**base, **changes})


def losses(records) -> list[tuple]:
    return [(r["step"], r["loss"], r["loss_ce"], r["loss_mlm"], r["loss_cos"], r["lr"]) for r in records]


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_uninterrupted_result(teacher, tmp_path):
    texts = corpus()
    whole = distill(options(teacher), texts, tmp_path / "whole", save_every=2)
    assert [r["step"] for r in whole] == [1, 2, 3, 4, 5]
    # an MLM teacher: the triple loss
    assert all(r["loss_ce"] is not None and r["loss_mlm"] is not None for r in whole)

    def stop_after_three(record):
        if record["step"] == 3:
            raise Interrupt  # as a Ctrl-C after step 3: the last checkpoint is step 2's

    with pytest.raises(Interrupt):
        distill(options(teacher), texts, tmp_path / "resumed", save_every=2, on_step=stop_after_three)
    state = json.loads((tmp_path / "resumed" / "distill_state.json").read_text())
    assert state["step"] == 2
    resumed = distill(options(teacher), texts, tmp_path / "resumed", save_every=2)
    assert losses(resumed) == losses(whole)  # the log keeps steps 1-2, the resumed run adds 3-5
    final_whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    final_resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert set(final_whole) == set(final_resumed)
    for name, array in final_whole.items():
        np.testing.assert_array_equal(final_resumed[name], array, err_msg=name)
    initial = load_file(str(tmp_path / "resumed" / ".distill" / "checkpoint-5" / "model.safetensors"))
    np.testing.assert_array_equal(initial["vocab_projector.bias"], final_whole["vocab_projector.bias"])
    assert [p.name for p in (tmp_path / "resumed" / ".distill").iterdir()] == ["checkpoint-5"]  # old ones go

    # a finished run, run again, does nothing more
    again = distill(options(teacher), texts, tmp_path / "resumed", save_every=2)
    assert losses(again) == losses(whole)


def test_resume_refuses_other_options_texts_and_tampering(teacher, tmp_path):
    texts = corpus()
    distill(options(teacher, steps=2), texts, tmp_path / "run", save_every=1)
    with pytest.raises(ValueError, match=r"lr=0\.01, not 0\.02"):
        distill(options(teacher, steps=2, lr=2e-2), texts, tmp_path / "run")
    with pytest.raises(ValueError, match="other texts sha256"):
        distill(options(teacher, steps=2), [*texts[:-1], "something else"], tmp_path / "run")
    checkpoint = tmp_path / "run" / ".distill" / "checkpoint-2" / "optimizer.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ValueError, match="does not match"):
        distill(options(teacher, steps=2), texts, tmp_path / "run")
    with pytest.raises(FileExistsError, match="not a distillation run"):
        distill(options(teacher, steps=2), texts, teacher)  # the teacher's own directory


def test_command_writes_a_student_our_pipelines_load(teacher, tmp_path, capsys):
    train = tmp_path / "train.txt"
    train.write_text("\n".join(corpus()) + "\n\n", encoding="utf-8")
    out = tmp_path / "student"
    argv = ["distill", "--teacher", str(teacher), "--layers", "1,3", "--train", str(train),
            "--steps", "3", "--batch-size", "4", "--lr", "1e-3", "--max-length", "12", "-o", str(out),
            "--save-every", "2"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["last"]["step"] == 3 and summary["steps"] == 3
    assert "step 3/3" in captured.err and "ce " in captured.err and "cos " in captured.err
    config = json.loads((out / "config.json").read_text())
    assert config["n_layers"] == 2 and config["architectures"] == ["DistilBertForMaskedLM"]

    from numpy_distilbert import DistilBertForMaskedLM, pipeline

    fill = pipeline("fill-mask", model=str(out))
    assert len(fill("the cat [MASK] on the mat")) == 5
    model = DistilBertForMaskedLM.from_pretrained(out)
    saved = load_file(str(out / "model.safetensors"))
    np.testing.assert_array_equal(model.projector_bias, saved["vocab_projector.bias"])

    # the same command again: the run is complete, nothing changes
    before = (out / "model.safetensors").read_bytes()
    assert main(argv) == 0
    assert (out / "model.safetensors").read_bytes() == before
    # other options on the same output: a usage error naming the option
    assert main([*argv[:-4], "--lr", "5e-3", *argv[-4:]]) == 2
    assert "lr=0.001, not 0.005" in capsys.readouterr().err


def test_command_student_loads_in_transformers(teacher, tmp_path, transformers_module):
    import torch

    train = tmp_path / "train.txt"
    train.write_text("\n".join(corpus()) + "\n", encoding="utf-8")
    out = tmp_path / "student"
    argv = ["distill", "--teacher", str(teacher), "--train", str(train), "--steps", "2",
            "--batch-size", "4", "--max-length", "12", "-o", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    reference, info = transformers_module.DistilBertForMaskedLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    from numpy_distilbert import DistilBertForMaskedLM

    ids = np.array([[2, 5, 7, 9, 4, 3]])
    ours = DistilBertForMaskedLM.from_pretrained(out)(ids).logits
    with torch.no_grad():
        theirs = reference.eval()(torch.tensor(ids)).logits.numpy()
    assert np.max(np.abs(ours - theirs)) <= tolerances.FP32_LOGITS


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        (None, ["--train", "missing.txt"], "no such file"),
        ("\n\n  \n", [], "every line is blank"),
        (b"the cat\n\xff\xfe sat\n", [], "line 2: not UTF-8"),
        ("the cat\n", ["--layers", "0,9"], r"layers \[9\] are out of range"),
        ("the cat\n", ["--layers", "x"], "comma-separated layer numbers"),
        ("the cat\n", ["--lr", "-1"], "a learning rate > 0"),
        ("the cat\n", ["--teacher", "/nonexistent/teacher"], "not found"),
    ],
)
def test_command_usage_errors(teacher, tmp_path, capsys, setup, extra, message):
    train = tmp_path / "train.txt"
    if isinstance(setup, bytes):
        train.write_bytes(setup)
    elif setup is not None:
        train.write_text(setup, encoding="utf-8")
    argv = ["distill", "--teacher", str(teacher), "--train", str(train), "--steps", "1",
            "-o", str(tmp_path / "o")]  # fmt: skip
    for i in range(0, len(extra), 2):  # an option given in `extra` replaces the default one
        if extra[i] in argv:
            value = str(tmp_path / extra[i + 1]) if extra[i] == "--train" else extra[i + 1]
            argv[argv.index(extra[i]) + 1] = value
        else:
            argv += extra[i : i + 2]
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors (bad option values) exit from the parser
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("numpy-distilbert: error:") and re.search(message, err), err


def test_cached_teacher_run_resumes_exactly_and_matches_the_uncached_run(bare_teacher, tmp_path):
    texts = corpus(n=30, seed=1)
    plain = distill(options(bare_teacher), texts, tmp_path / "plain", save_every=5)
    cached = distill(options(bare_teacher, cache_teacher=True), texts, tmp_path / "cached", save_every=2)
    assert all(r["loss_ce"] is None and None not in (r["loss_cos"], r["loss_mse"]) for r in plain)
    # the cache holds what the teacher computes in other batches: the same up to float32 rounding
    for a, b in zip(plain, cached, strict=True):
        assert abs(a["loss"] - b["loss"]) <= tolerances.LOSS_FP32_REL * abs(a["loss"])

    def stop_after_three(record):
        if record["step"] == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        distill(options(bare_teacher, cache_teacher=True), texts, tmp_path / "resumed", save_every=2,
                on_step=stop_after_three)  # fmt: skip
    resumed = distill(options(bare_teacher, cache_teacher=True), texts, tmp_path / "resumed", save_every=2)
    assert losses(resumed) == losses(cached)
    final_cached = load_file(str(tmp_path / "cached" / "model.safetensors"))
    final_resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    for name, array in final_cached.items():
        np.testing.assert_array_equal(final_resumed[name], array, err_msg=name)


def test_cache_teacher_is_refused_for_an_mlm_teacher(teacher, tmp_path):
    with pytest.raises(ValueError, match="cache_teacher needs a teacher without MLM head"):
        distill(options(teacher, cache_teacher=True), corpus(), tmp_path / "run")
