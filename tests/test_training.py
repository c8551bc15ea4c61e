"""The training loop (numpy_distilbert/training.py).

* against torch: `train` in float64 without dropout, and a torch loop (transformers' model,
  torch.optim.AdamW with the same two parameter groups, transformers' linear schedule,
  clip_grad_norm_) over the very batches ours made: every step's loss and every final
  parameter, on tiny DistilBertForMaskedLM, DistilBertForSequenceClassification and
  BertForTokenClassification checkpoints;
* without torch: the same seed gives the same run bit for bit (dropout on), another seed
  another run; batches cover every example once per epoch and are length-bucketed; padding
  and labels of `collate`; the entity F1 against seqeval's documented example (and against
  seqeval itself on random tags when it is installed); the best epoch is the one saved; the
  progress bar draws only on a terminal.
"""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_distilbert import optim, tolerances, training
from numpy_distilbert.config import BertConfig, DistilBertConfig
from numpy_distilbert.random_weights import write_random_checkpoint

MEASURED: dict[str, float] = {}

TINY_DISTILBERT = dict(
    vocab_size=60, max_position_embeddings=40, n_layers=2, n_heads=2, dim=16, hidden_dim=24
)
TINY_BERT = dict(vocab_size=60, max_position_embeddings=40, num_hidden_layers=2, num_attention_heads=2,
                 hidden_size=16, intermediate_size=24)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    print("\n--- training loop vs torch (float64), largest relative difference ---")
    for name, diff in MEASURED.items():
        print(f"  {name:<40} {diff:.2e}")


def random_examples(rng: np.random.Generator, n: int, kind: str, num_labels: int = 3) -> list[dict]:
    """Token ids in [1, 60) (0 is padding), lengths 3..14; labels by the head's kind."""
    examples = []
    for _ in range(n):
        length = int(rng.integers(3, 15))
        ids = [int(i) for i in rng.integers(1, 60, length)]
        if kind == "sequence":
            labels: object = int(rng.integers(num_labels))
        else:
            labelled = rng.random(length) < 0.4
            labelled[rng.integers(length)] = True  # at least one label per example
            values = rng.integers(60 if kind == "mlm" else num_labels, size=length)
            labels = [
                int(v) if keep else training.IGNORE_INDEX for v, keep in zip(values, labelled, strict=True)
            ]
        examples.append({"input_ids": ids, "labels": labels})
    return examples


# ------------------------------------------------------------------------------ torch
CASES = {
    "DistilBertForMaskedLM": ("mlm", DistilBertConfig, TINY_DISTILBERT),
    "DistilBertForSequenceClassification": ("sequence", DistilBertConfig, TINY_DISTILBERT),
    "BertForTokenClassification": ("token", BertConfig, TINY_BERT),
}


@pytest.mark.parametrize("architecture", list(CASES))
def test_loop_equals_a_torch_loop_in_float64(
    torch_module, transformers_module, tmp_path, monkeypatch, architecture
):
    torch = torch_module
    import checkpoints

    from numpy_distilbert import load_model

    kind, _, sizes = CASES[architecture]
    labels = {} if kind == "mlm" else {"id2label": {0: "A", 1: "B", 2: "C"}}
    if architecture.startswith("Bert"):
        transformers = transformers_module
        torch.manual_seed(0)
        reference = getattr(transformers, architecture)(transformers.BertConfig(**sizes, **labels))
        checkpoints.perturb_(reference, seed=0)
        reference.save_pretrained(tmp_path, safe_serialization=True)
    else:
        checkpoints.build_checkpoint(tmp_path, architecture, seed=0, **sizes, **labels)
    ours = load_model(tmp_path, dtype=np.float64)
    theirs = getattr(transformers_module, architecture).from_pretrained(tmp_path, dtype=torch.float64).eval()

    examples = random_examples(np.random.default_rng(1), 21, kind)
    batches: list[training.Batch] = []
    real_collate = training.collate

    def recording_collate(chosen, pad_token_id=0):
        batches.append(real_collate(chosen, pad_token_id))
        return batches[-1]

    monkeypatch.setattr(training, "collate", recording_collate)
    hyper = {"lr": 3e-3, "weight_decay": 0.05}
    optimizer = optim.AdamW(ours.named_parameters(), no_decay=optim.is_bias_or_norm, **hyper)
    history = training.train(ours, examples, optimizer, epochs=2, batch_size=4, warmup_steps=2,
                             max_grad_norm=0.5, dropout=False, progress=False)  # fmt: skip
    assert len(batches) == len(history.losses) == 2 * 6

    named = dict(theirs.named_parameters())
    assert sorted(named) == sorted(ours.named_parameters())
    groups = [
        {"params": [p for n, p in named.items() if not optim.is_bias_or_norm(n)]},
        {"params": [p for n, p in named.items() if optim.is_bias_or_norm(n)], "weight_decay": 0.0},
    ]
    reference_optimizer = torch.optim.AdamW(groups, **hyper)
    schedule = transformers_module.get_linear_schedule_with_warmup(reference_optimizer, 2, len(batches))
    worst_loss = 0.0
    for step, batch in enumerate(batches):
        inputs = {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
            "labels": batch.labels,
        }
        output = theirs(**{name: torch.tensor(value) for name, value in inputs.items()})
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5)
        assert reference_optimizer.param_groups[0]["lr"] == history.learning_rates[step]
        reference_optimizer.step()
        schedule.step()
        reference_optimizer.zero_grad()
        worst_loss = max(
            worst_loss, abs(output.loss.item() - history.losses[step]) / max(1.0, output.loss.item())
        )
    worst_param = max(
        float(np.max(np.abs(p - named[n].detach().numpy()))) / max(1.0, float(np.max(np.abs(p))))
        for n, p in ours.named_parameters().items()
    )
    MEASURED[f"{architecture} losses"] = worst_loss
    MEASURED[f"{architecture} parameters"] = worst_param
    assert worst_loss <= tolerances.FP64
    assert worst_param <= tolerances.FP64


# --------------------------------------------------------------------------- no torch
@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    """A random tiny DistilBertForSequenceClassification (numpy + safetensors only)."""
    directory = tmp_path_factory.mktemp("tiny-classifier")
    config = DistilBertConfig(**TINY_DISTILBERT)
    architecture = "DistilBertForSequenceClassification"
    labels = {0: "A", 1: "B", 2: "C"}
    return write_random_checkpoint(directory, config, seed=3, architecture=architecture, id2label=labels)


def run_once(directory, seed, examples, output_dir=None, eval_examples=None):
    from numpy_distilbert import load_model

    model = load_model(directory, dtype=np.float64)
    optimizer = optim.AdamW(model.named_parameters(), lr=1e-2)
    history = training.train(model, examples, optimizer, epochs=2, batch_size=4, seed=seed, progress=False,
                             eval_examples=eval_examples, output_dir=output_dir)  # fmt: skip
    return history, model.named_parameters()


def test_same_seed_same_run_and_another_seed_another(tiny_classifier):
    examples = random_examples(np.random.default_rng(0), 13, "sequence")
    first, first_params = run_once(tiny_classifier, 7, examples)
    again, again_params = run_once(tiny_classifier, 7, examples)
    other, _ = run_once(tiny_classifier, 8, examples)
    assert first.losses == again.losses and first.grad_norms == again.grad_norms
    assert all(np.array_equal(first_params[n], again_params[n]) for n in first_params)
    assert first.losses != other.losses  # another shuffle and other dropout masks


def test_dropout_is_on_by_default(tiny_classifier):
    """Two runs that differ only in `dropout` see the same first batch, so their first losses
    differ only if dropout changed the forward pass."""
    from numpy_distilbert import load_model

    examples = random_examples(np.random.default_rng(0), 4, "sequence")
    losses = []
    for dropout in (True, False):
        model = load_model(tiny_classifier, dtype=np.float64)
        optimizer = optim.AdamW(model.named_parameters(), lr=0.0)
        losses.append(training.train(model, examples, optimizer, epochs=1, batch_size=4, dropout=dropout,
                                     progress=False).losses[0])  # fmt: skip
    assert losses[0] != losses[1]


def test_best_epoch_is_saved(tiny_classifier, tmp_path):
    from numpy_distilbert import load_model

    examples = random_examples(np.random.default_rng(0), 12, "sequence")
    history, _ = run_once(tiny_classifier, 0, examples, tmp_path / "out", eval_examples=examples[:6])
    scores = [e["accuracy"] for e in history.evaluations]
    assert history.best_epoch == 1 + scores.index(max(scores))
    saved = load_model(tmp_path / "out", dtype=np.float64)
    # the saved model scores what its epoch scored
    assert training.evaluate(saved, examples[:6]) == pytest.approx(
        history.evaluations[history.best_epoch - 1]
    )
    stored = json.loads((tmp_path / "out" / "training_history.json").read_text())
    assert stored["losses"] == history.losses


@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=300), batch_size=st.integers(1, 9),
       seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_batches_cover_every_example_once(lengths, batch_size, seed):
    batches = training.length_bucketed_batches(lengths, batch_size, np.random.default_rng(seed))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert sum(len(b) < batch_size for b in batches) <= -(
        -len(lengths) // (batch_size * training.BUCKET_BATCHES)
    )


def test_batches_are_bucketed_by_length():
    """With every example in one window, padding is what sorting by length leaves."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, 64).tolist()
    batches = training.length_bucketed_batches(lengths, 8, rng)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    ordered = sorted(lengths)
    least = sum(8 * max(ordered[i : i + 8]) for i in range(0, 64, 8))
    assert padded == least


def test_collate_pads_and_masks():
    examples = [{"input_ids": [5, 6, 7], "labels": [1, -100, 2]}, {"input_ids": [8], "labels": [0]}]
    batch = training.collate(examples, pad_token_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch.labels.tolist() == [[1, -100, 2], [0, -100, -100]]
    batch = training.collate(
        [{"input_ids": [5], "labels": 2}, {"input_ids": [8, 9], "labels": 0}], pad_token_id=3
    )
    assert batch.input_ids.tolist() == [[5, 3], [8, 9]] and batch.labels.tolist() == [2, 0]


def test_seqeval_documented_example():
    """seqeval's README example, with its documented scores: of 2 true and 2 predicted entities
    only PER [0, 1] matches (MISC [3, 5] was predicted as [2, 5]), so P = R = F1 = 0.5."""
    true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    predicted = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert training.seqeval_scores(true, predicted) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    # conlleval's leniency: an I- after O opens an entity; a type change closes one
    assert training.entity_spans(["O", "I-PER", "I-PER", "I-LOC", "O"]) == {("PER", 1, 2), ("LOC", 3, 3)}
    assert training.entity_spans(["B-LOC", "B-LOC", "S-PER", "O", "E-ORG"]) == {
        ("LOC", 0, 0), ("LOC", 1, 1), ("PER", 2, 2), ("ORG", 4, 4)}  # fmt: skip


TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-PER", "I-MISC"]


@given(st.lists(st.lists(st.sampled_from(TAGS), max_size=8), min_size=1, max_size=4), st.randoms())
def test_seqeval_against_seqeval(true, random):
    try:
        from seqeval.metrics import f1_score, precision_score, recall_score
    except ImportError:
        pytest.skip("seqeval is not installed (an optional cross-check)")
    predicted = [[random.choice(TAGS) for _ in sentence] for sentence in true]
    ours = training.seqeval_scores(true, predicted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when a score divides by zero
        theirs = {"precision": precision_score(true, predicted), "recall": recall_score(true, predicted),
                  "f1": f1_score(true, predicted)}  # fmt: skip
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_progress_bar_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped, terminal = io.StringIO(), Terminal()
    for stream in (piped, terminal):
        bar = training.ProgressBar(3, "epoch 1/1", stream)
        bar.update(loss=0.5)
        bar.close()
    assert piped.getvalue() == ""
    assert "1/3" in terminal.getvalue() and "loss 0.5" in terminal.getvalue()


def test_bad_arguments(tiny_classifier):
    from numpy_distilbert import load_model

    model = load_model(tiny_classifier)
    optimizer = optim.AdamW(model.named_parameters())
    examples = random_examples(np.random.default_rng(0), 3, "sequence")
    with pytest.raises(ValueError, match="no training examples"):
        training.train(model, [], optimizer)
    with pytest.raises(ValueError, match="epochs"):
        training.train(model, examples, optimizer, epochs=0)
    with pytest.raises(ValueError, match="metric"):
        training.train(model, examples, optimizer, metric="f1")
