"""`numpy-distilbert finetune` (numpy_distilbert/finetune.py and its cli.py entry).

* end to end, in-process through `cli.main`, from tiny base checkpoints without a head (a
  DistilBertModel with the real multilingual vocabulary, a BertModel with all-MiniLM-L6-v2's),
  on data/topics and on a small NER file: exit status 0, the JSON summary, and the output
  directory loading in our pipelines (labels by name) and in transformers (no missing or
  unexpected keys, equal logits, its tokenizer);
* word-piece label alignment against transformers' tokenizer and run_ner's rule (first piece
  labelled, the rest -100);
* every refusal names the file and the line, exits 2, and trains nothing: bad JSON, an empty
  file, a missing field, wrong types, empty texts and words, words and labels of different
  lengths, an unknown evaluation label, labels that do not fit an existing head, one label only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module

from numpy_distilbert import cli, finetune, tolerances
from numpy_distilbert.config import BertConfig, DistilBertConfig
from numpy_distilbert.pipelines import pipeline
from numpy_distilbert.random_weights import write_random_checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent
TOPICS = REPO_ROOT / "data" / "topics"
NER_LINES = [
    {
        "text": ["Marie", "Curie", "worked", "in", "Paris", "."],
        "label": ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],
    },
    {"text": ["Angela", "visited", "Berlin", "yesterday"], "label": ["B-PER", "O", "B-LOC", "O"]},
    {"text": ["The", "Rhine", "flows", "through", "Basel"], "label": ["O", "B-LOC", "O", "O", "B-LOC"]},
    {"text": ["Unbelievably", ",", "Jean-Pierre", "left"], "label": ["O", "O", "B-PER", "O"]},
]


@pytest.fixture(scope="module")
def bases(tmp_path_factory, shared_model_path, request) -> dict[str, Path]:
    """Tiny base encoders (no head), each with a real vocabulary, written when first asked for:
    "distilbert" (the multilingual vocabulary) and "bert" (all-MiniLM-L6-v2's, so only the BERT
    tests need the MiniLM package)."""
    root = tmp_path_factory.mktemp("finetune-bases")

    class Bases(dict):
        def __missing__(self, family: str) -> Path:
            if family == "distilbert":
                config = DistilBertConfig(n_layers=2, n_heads=2, dim=16, hidden_dim=32)
                vocab_dir, architecture = shared_model_path, "DistilBertModel"
            else:
                sizes = {"num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 16}
                config = BertConfig(vocab_size=30522, intermediate_size=32, **sizes)
                vocab_dir, architecture = request.getfixturevalue("minilm_path"), "BertModel"
            directory = root / family
            self[family] = write_random_checkpoint(
                directory, config, architecture=architecture, vocab_dir=vocab_dir
            )
            return self[family]

    return Bases()


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(["finetune", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write_lines(path: Path, lines: list) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines), "utf-8"
    )
    return path


# ------------------------------------------------------------------ end to end
@pytest.mark.parametrize("family", ["distilbert", "bert"])
def test_text_classification_end_to_end(bases, tmp_path, capsys, family):
    out = tmp_path / "out"
    status, stdout, stderr = run_cli(
        capsys,
        "--task",
        "text-classification",
        "--model",
        str(bases[family]),
        "--train",
        str(TOPICS / "train.jsonl"),
        "--eval",
        str(TOPICS / "test.jsonl"),
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--lr",
        "1e-3",
        "-o",
        str(out),
    )
    assert status == 0, stderr
    summary = json.loads(stdout)
    assert summary["steps"] == 2 * 7 and len(summary["evaluations"]) == 2
    assert summary["best_epoch"] in (1, 2) and "epoch 2/2" in stderr
    history = json.loads((out / "training_history.json").read_text())
    assert len(history["losses"]) == 14 and all(np.isfinite(history["losses"]))
    # our pipeline, labels by name
    classify = pipeline("text-classification", model=str(out))
    assert classify("The striker scored twice.")[0]["label"] in {
        "food",
        "health",
        "sport",
        "technology",
        "weather",
    }
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "food", "1": "health", "2": "sport", "3": "technology", "4": "weather"}


def test_token_classification_end_to_end(bases, tmp_path, capsys):
    train = write_lines(tmp_path / "ner.jsonl", NER_LINES * 3)
    out = tmp_path / "out"
    status, stdout, stderr = run_cli(
        capsys,
        "--task",
        "token-classification",
        "--model",
        str(bases["distilbert"]),
        "--train",
        str(train),
        "--eval",
        str(train),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "-o",
        str(out),
    )
    assert status == 0, stderr
    evaluation = json.loads(stdout)["evaluations"][0]
    assert {"accuracy", "precision", "recall", "f1", "loss"} <= set(evaluation)
    entities = pipeline("token-classification", model=str(out))("Marie lives in Paris")
    assert all(entity["entity"] in {"O", "B-LOC", "B-PER", "I-PER"} for entity in entities)


@pytest.mark.parametrize("family", ["distilbert", "bert"])
def test_output_loads_in_transformers(bases, tmp_path, capsys, family, torch_module, transformers_module):
    from numpy_distilbert import load_model

    out = tmp_path / "out"
    train = write_lines(tmp_path / "ner.jsonl", NER_LINES)
    for task, data in (("text-classification", TOPICS / "train.jsonl"), ("token-classification", train)):
        status, _, stderr = run_cli(
            capsys,
            "--task",
            task,
            "--model",
            str(bases[family]),
            "--train",
            str(data),
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "-o",
            str(out / task),
        )
        assert status == 0, stderr
        auto = {
            "text-classification": transformers_module.AutoModelForSequenceClassification,
            "token-classification": transformers_module.AutoModelForTokenClassification,
        }[task]
        theirs, info = auto.from_pretrained(out / task, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        tokenizer = transformers_module.AutoTokenizer.from_pretrained(out / task)
        encoded = tokenizer(
            ["Das Spiel endete zwei zu eins.", "Heavy rain tonight"], padding=True, return_tensors="np"
        )
        ours = load_model(out / task)
        logits = ours(encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
        with torch_module.no_grad():
            reference = theirs.eval()(
                **{k: torch_module.tensor(v) for k, v in encoded.items()}
            ).logits.numpy()
        keep = encoded["attention_mask"].astype(bool) if logits.ndim == 3 else slice(None)
        assert np.max(np.abs(logits[keep] - reference[keep])) <= tolerances.FP32_LOGITS
        assert theirs.config.id2label == ours.config.id2label


# ------------------------------------------------------------------ alignment
def test_labels_sit_on_first_word_pieces_as_run_ner(shared_model_path):
    """run_ner's rule, computed with transformers' fast tokenizer's word_ids: the first piece of a
    word gets its label, later pieces and special tokens -100."""
    transformers = require_module("transformers")
    from numpy_distilbert.auto import AutoTokenizer

    theirs = transformers.BertTokenizerFast.from_pretrained(shared_model_path)
    ours = AutoTokenizer.from_pretrained(shared_model_path)
    label2id = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3}
    records = [finetune.Record(i, line["text"], line["label"]) for i, line in enumerate(NER_LINES)]
    for max_length in (128, 6):
        examples, _ = finetune.encode_records(records, ours, "token-classification", label2id, max_length)
        for record, example in zip(records, examples, strict=True):
            encoding = theirs(record.text, is_split_into_words=True, truncation=True, max_length=max_length)
            expected, previous = [], None
            for word in encoding.word_ids():
                expected.append(-100 if word is None or word == previous else label2id[record.label[word]])
                previous = word
            assert example["input_ids"] == encoding["input_ids"]
            assert example["labels"] == expected
    assert any(
        label == -100 for example in examples for label in example["labels"][1:-1]
    )  # some later pieces


# ------------------------------------------------------------------ refusals
BAD_LINES = [
    ('{"text": "fine", "label": "a"}\n{"text": "broken", "label": ', "2: not valid JSON"),
    ('{"text": "fine", "label": "a"}\n["a list"]', "2: expected a JSON object"),
    ('{"txt": "typo", "label": "a"}', "1: no 'text' field"),
    ('{"text": 3, "label": "a"}', "1: 'text' must be a string"),
    ('{"text": "  ", "label": "a"}', "1: 'text' is empty"),
    ('{"text": "fine", "label": 1.5}', "1: 'label': a label must be a non-empty string or an integer"),
    ('{"text": "fine", "label": true}', "1: 'label': a label must be"),
    ('{"text": "fine", "label": null}', "1: 'label': a label must be"),
]


@pytest.mark.parametrize(("content", "message"), BAD_LINES)
def test_bad_lines_are_named(tmp_path, content, message):
    path = tmp_path / "train.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(finetune.DataError, match=re.escape(f"{path}:{message}")):
        finetune.read_jsonl(path, "text-classification")


BAD_TOKEN_LINES = [
    ({"text": "Marie lives", "label": ["B-PER", "O"]}, "must be a list of words"),
    ({"text": ["Marie", "lives"], "label": "B-PER"}, "must be a list of labels"),
    ({"text": ["Marie", "lives"], "label": ["B-PER"]}, "2 words but 1 labels"),
    ({"text": ["Marie", " "], "label": ["B-PER", "O"]}, "word 1 of 'text' is empty"),
    ({"text": [], "label": []}, "holds no words"),
    ({"text": ["Marie"], "label": [None]}, "label 0 of 'label'"),
]


@pytest.mark.parametrize(("line", "message"), BAD_TOKEN_LINES)
def test_bad_token_lines_are_named(tmp_path, line, message):
    path = write_lines(tmp_path / "ner.jsonl", [NER_LINES[0], line])
    with pytest.raises(finetune.DataError, match=rf"ner\.jsonl:2: .*{re.escape(message)}"):
        finetune.read_jsonl(path, "token-classification")


def test_empty_unreadable_and_non_utf8_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(finetune.DataError, match=r"empty\.jsonl: no examples"):
        finetune.read_jsonl(empty, "text-classification")
    with pytest.raises(finetune.DataError, match=r"missing\.jsonl: cannot be read"):
        finetune.read_jsonl(tmp_path / "missing.jsonl", "text-classification")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "a"}\n')
    with pytest.raises(finetune.DataError, match=r"latin\.jsonl:2: not UTF-8"):
        finetune.read_jsonl(latin, "text-classification")


def test_integer_labels_sort_by_value(tmp_path):
    path = write_lines(
        tmp_path / "t.jsonl", [{"text": f"t{i}", "label": label} for i, label in enumerate([10, 2, 1])]
    )
    assert finetune.label_names(finetune.read_jsonl(path, "text-classification")) == ["1", "2", "10"]


def test_refusals_exit_2_naming_the_line(bases, tmp_path, capsys):
    base = str(bases["distilbert"])
    train = write_lines(tmp_path / "train.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    unknown = write_lines(tmp_path / "eval.jsonl", [{"text": "c", "label": "x"}, {"text": "d", "label": "z"}])
    single = write_lines(
        tmp_path / "single.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}]
    )
    out = tmp_path / "out"
    common = ["--task", "text-classification", "--model", base, "-o", str(out)]
    status, _, stderr = run_cli(capsys, *common, "--train", str(train), "--eval", str(unknown))
    assert status == 2 and "eval.jsonl:2: unknown label 'z'" in stderr
    status, _, stderr = run_cli(capsys, *common, "--train", str(single))
    assert status == 2 and "every example has the label 'x'" in stderr
    status, _, stderr = run_cli(capsys, *common, "--train", str(tmp_path / "nope.jsonl"))
    assert status == 2 and "nope.jsonl: cannot be read" in stderr
    status, _, stderr = run_cli(capsys, *common, "--train", str(train), "--epochs", "0")
    assert status == 2 and "--epochs" in stderr
    assert not out.exists()  # nothing was trained or written
    # a model that has the head keeps its labels: a new label does not fit it
    status, _, stderr = run_cli(capsys, *common, "--train", str(train), "--epochs", "1")
    assert status == 0, stderr
    more = write_lines(tmp_path / "more.jsonl", [{"text": "a", "label": "x"}, {"text": "e", "label": "w"}])
    status, _, stderr = run_cli(
        capsys,
        "--task",
        "text-classification",
        "--model",
        str(out),
        "--train",
        str(more),
        "-o",
        str(tmp_path / "again"),
    )
    assert status == 2 and "more.jsonl:2: unknown label 'w'; the model's labels are: x, y" in stderr


def test_help_lists_finetune(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "finetune" in capsys.readouterr().out
