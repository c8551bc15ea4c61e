"""`pipeline()` itself: the task registry, lazy imports, model resolution and option errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from numpy_distilbert import hub
from numpy_distilbert.pipelines import SUPPORTED_TASKS, pipeline, pipeline_class
from numpy_distilbert.weights import CheckpointError

TASKS = ["feature-extraction", "fill-mask", "question-answering", "text-classification",
         "token-classification", "zero-shot-classification"]  # fmt: skip


def test_supported_tasks_and_aliases():
    assert set(TASKS) | {"ner", "sentiment-analysis"} == set(SUPPORTED_TASKS)
    assert SUPPORTED_TASKS["question-answering"] == (
        "numpy_distilbert.pipelines.question_answering:QuestionAnsweringPipeline"
    )
    assert SUPPORTED_TASKS["ner"] == SUPPORTED_TASKS["token-classification"]
    assert SUPPORTED_TASKS["sentiment-analysis"] == SUPPORTED_TASKS["text-classification"]
    for task in TASKS:
        if task == "question-answering":
            continue  # a colleague's module; it has its own tests
        cls = pipeline_class(task)
        assert cls.task == task


def test_unknown_task_lists_the_supported_ones():
    with pytest.raises(KeyError, match=r"unknown task 'translation'.*fill-mask.*zero-shot-classification"):
        pipeline("translation", model="unused")


def test_import_is_light():
    code = (
        "import sys, numpy_distilbert\n"
        "heavy = [m for m in ('torch', 'transformers', 'tokenizer', 'numpy_distilbert.pipelines',"
        " 'huggingface_hub') if m in sys.modules]\n"
        "print(heavy)\n"
        "numpy_distilbert.pipeline\n"
        "print('numpy_distilbert.pipelines' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, shared_model_path, torch_module, transformers_module):
    from checkpoints import build_checkpoint

    directory = tmp_path_factory.mktemp("tiny")
    build_checkpoint(directory, "DistilBertForMaskedLM", seed=21, vocab_size=119547, dim=16,
                     n_layers=1, n_heads=2, hidden_dim=32)  # fmt: skip
    for name in ("vocab.txt", "tokenizer_config.json"):
        (directory / name).symlink_to(shared_model_path / name)
    return directory


def test_model_id_from_the_hf_cache(tmp_path, monkeypatch, tiny_model):
    # A fake cache whose snapshot links to the tiny model's files, reached by model id and revision.
    commit = "c" * 40
    repo = tmp_path / "hub" / "models--someone--tiny-distilbert"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in tiny_model.iterdir():
        (snapshot / file.name).symlink_to(file.resolve())
    (repo / "refs").mkdir()
    (repo / "refs" / "v1").write_text(commit)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    model_id = "someone/tiny-distilbert"
    by_id = pipeline("feature-extraction", model=model_id, revision="v1", return_tensors=True)
    by_dir = pipeline("feature-extraction", model=tiny_model, return_tensors=True)
    np.testing.assert_array_equal(by_id("Grüezi mitenand"), by_dir("Grüezi mitenand"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.ModelNotFoundError, match="no refs/main"):
        pipeline("feature-extraction", model="someone/tiny-distilbert")


def test_separate_tokenizer_directory(tmp_path, tiny_model, shared_model_path):
    weights_only = tmp_path / "weights"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        (weights_only / name).symlink_to(tiny_model / name)
    pipe = pipeline("fill-mask", model=weights_only, tokenizer=shared_model_path)
    reference = pipeline("fill-mask", model=tiny_model)
    assert pipe("Hallo [MASK].") == reference("Hallo [MASK].")
    with pytest.raises(FileNotFoundError):
        pipeline("fill-mask", model=weights_only)  # no vocab.txt beside the weights


def test_pickle_only_directory_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "distilbert"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(CheckpointError, match="never unpickles"):
        pipeline("fill-mask", model=tmp_path)


def test_options_are_checked(tiny_model):
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'topk'.*accepts: clean_up_tokenization_spaces"):
        pipeline("fill-mask", model=tiny_model, topk=3)
    pipe = pipeline("fill-mask", model=tiny_model, top_k=2)
    assert len(pipe("Hallo [MASK].")) == 2  # construction option is the default
    assert len(pipe("Hallo [MASK].", top_k=3)) == 3  # a call option overrides it, for that call
    assert len(pipe("Hallo [MASK].")) == 2
    with pytest.raises(ValueError, match="batch_size"):
        pipe("Hallo [MASK].", batch_size=0)
    assert pipe([]) == []


@pytest.mark.parametrize("mmap", [True, False])
def test_pipeline_mmap_option_reaches_the_model(tmp_path, shared_model_path, mmap):
    """pipeline(..., mmap=False) copies the weights: rewriting the file afterwards changes nothing
    (with the default mapping it does change the results: the hazard the option exists for)."""
    from test_hostile_loading import _replace_data_in_place

    from numpy_distilbert.config import DistilBertConfig
    from numpy_distilbert.random_weights import write_random_checkpoint

    config = DistilBertConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    directory = write_random_checkpoint(tmp_path / "m", config, seed=1, vocab_dir=shared_model_path)
    fill = pipeline("fill-mask", model=directory, mmap=mmap)
    before = fill("Paris is the [MASK] of France.", top_k=3)
    _replace_data_in_place(directory / "model.safetensors", seed=5)
    after = fill("Paris is the [MASK] of France.", top_k=3)
    assert (before == after) is (not mmap)
