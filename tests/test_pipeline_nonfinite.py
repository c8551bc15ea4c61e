"""A model that computes NaN or infinity is refused by every pipeline, naming what and where.

Before, a single NaN among fill-mask's vocabulary biases turned the top-k threshold into NaN
and the result into [] (no error), and the other pipelines returned NaN scores. The
checkpoints here are tiny random ones written with NumPy alone; the bad value is put into
the loaded model's arrays, so the test does not depend on what the loader accepts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.pipelines import pipeline
from numpy_distilbert.pipelines.base import NonFiniteOutputError, check_finite
from numpy_distilbert.random_weights import write_random_checkpoint

TINY = dict(dim=32, n_layers=1, n_heads=2, hidden_dim=64)
ARCHITECTURES = {
    "fill-mask": ("DistilBertForMaskedLM", None),
    "text-classification": ("DistilBertForSequenceClassification",
                            {0: "contradiction", 1: "neutral", 2: "entailment"}),
    "token-classification": ("DistilBertForTokenClassification", {0: "O", 1: "B-PER", 2: "I-PER"}),
    "question-answering": ("DistilBertForQuestionAnswering", None),
    "feature-extraction": ("DistilBertModel", None),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, shared_model_path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("non-finite-pipelines")
    return {
        task: write_random_checkpoint(root / task.replace("-", "_"), DistilBertConfig(**TINY), seed=i,
                                      architecture=arch, vocab_dir=shared_model_path, id2label=labels)
        for i, (task, (arch, labels)) in enumerate(ARCHITECTURES.items())
    }


def with_value(array: np.ndarray, index, value: float) -> np.ndarray:
    """A writable copy of `array` with one entry (or row) replaced."""
    array = np.array(array, copy=True)
    array[index] = value
    return array


def poison_bias(pipe, value: float) -> None:
    """Put `value` into the bias of the head's last layer (the encoder's for the bare model)."""
    model = pipe.model
    if hasattr(model, "projector_bias"):  # masked LM: one bias per vocabulary token
        model.projector_bias = with_value(model.projector_bias, 1, value)
        return
    name = next(n for n in ("classifier", "qa_outputs", "embedding_norm") if hasattr(model, n))
    weight, bias = getattr(model, name)
    setattr(model, name, (weight, with_value(bias, 1, value)))


def run(pipe, task: str, texts: list[str], **options):
    if task == "question-answering":
        return pipe(question=["Where?"] * len(texts), context=texts, **options)
    if task == "fill-mask":
        return pipe([f"{t} [MASK]." for t in texts], **options)
    return pipe(texts, **options)


@pytest.mark.parametrize("task", list(ARCHITECTURES))
@pytest.mark.parametrize(("value", "kind"), [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_a_non_finite_bias_is_an_error_naming_it(checkpoints, task, value, kind):
    pipe = pipeline(task, model=checkpoints[task])
    run(pipe, task, ["Hello world", "Zweiter Satz"])  # finite: no error
    poison_bias(pipe, value)
    with pytest.raises(NonFiniteOutputError) as caught:
        run(pipe, task, ["Hello world", "Zweiter Satz"])
    message = str(caught.value)
    what = "hidden states" if task == "feature-extraction" else "logits"
    assert f"non-finite {what}" in message and "corrupt" in message, message
    # A softmax of inf is NaN: either kind may be named for inf, but never "finite" silence.
    assert kind in message or "NaN" in message, message


@pytest.mark.parametrize("task", list(ARCHITECTURES))
def test_the_message_names_the_input_that_went_wrong(checkpoints, task):
    pipe = pipeline(task, model=checkpoints[task])
    token = pipe.tokenizer.convert_tokens_to_ids("Berlin")
    encoder = pipe.model if task == "feature-extraction" else pipe.model.distilbert
    if task == "fill-mask":
        # The MLM projection is tied to the word embeddings: a NaN row there is a NaN logit
        # column for every input. Poison instead a position that only the third (longest)
        # input reaches, one input per forward pass so that padding cannot carry it over.
        texts = ["Hello world", "Paris", "Berlin Berlin Berlin Berlin Berlin Berlin"]
        lengths = [len(pipe.tokenizer(f"{t} [MASK].")["input_ids"]) for t in texts]
        assert max(lengths[:2]) < lengths[2]
        encoder.position_embeddings = with_value(encoder.position_embeddings, lengths[2] - 1, np.nan)
        options = {"batch_size": 1}
    else:
        texts = ["Hello world", "Paris", "Berlin"]
        encoder.word_embeddings = with_value(encoder.word_embeddings, token, np.nan)  # row of "Berlin"
        options = {}
    with pytest.raises(NonFiniteOutputError, match="NaN") as caught:
        run(pipe, task, texts, **options)
    noun = "question" if task == "question-answering" else "input"
    assert f"for {noun} 2," in str(caught.value), caught.value
    # The same input alone is "the input" / "the question".
    with pytest.raises(NonFiniteOutputError, match=f"for the {noun},"):
        run(pipe, task, texts[2:])


def test_zero_shot_refuses_nan_logits(checkpoints):
    pipe = pipeline("zero-shot-classification", model=checkpoints["text-classification"])
    poison_bias(pipe, np.nan)
    with pytest.raises(NonFiniteOutputError, match=r"non-finite logits \(NaN\) for the input"):
        pipe("Hello world", candidate_labels=["a", "b"])


def test_fill_mask_with_targets_still_sees_a_nan_elsewhere(checkpoints):
    # The NaN sits outside the targets, but it poisons the softmax over the vocabulary.
    pipe = pipeline("fill-mask", model=checkpoints["fill-mask"])
    poison_bias(pipe, np.nan)
    with pytest.raises(NonFiniteOutputError):
        pipe("Hello [MASK].", targets=["world"])


def test_check_finite_passes_finite_values_through_and_names_kinds():
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert check_finite(values, "logits", "the input") is values
    bad = with_value(values, (1, 2), np.nan)
    bad[0, 1] = -np.inf
    with pytest.raises(NonFiniteOutputError) as caught:
        check_finite(bad, "logits", "input 4")
    message = str(caught.value)
    assert "(NaN, -inf)" in message and "input 4" in message and "(0, 1)" in message, message
