"""Write a DistilBERT (or BERT) checkpoint of random weights, with NumPy and safetensors alone.

The real trained weights are large and not always at hand (the notebooks and the tests
run without them). A checkpoint of random numbers has the same shapes, the same tensor
names and the same config.json as a real one, so everything that reads a checkpoint, ours
and transformers' alike, loads it unchanged; only the predictions are meaningless.

    from numpy_distilbert.random_weights import write_random_checkpoint
    path = write_random_checkpoint("/tmp/random-distilbert", seed=0)    # real size, ~540 MB
    model = DistilBertForMaskedLM.from_pretrained(path)

No torch is needed to *write* a checkpoint: a safetensors file is a JSON header plus raw
little-endian bytes, and `safetensors.numpy.save_file` writes one from NumPy arrays.

What is written, in the layout transformers' `save_pretrained` uses:

* `config.json`: `model_type: distilbert`, `architectures`, every `DistilBertConfig` field,
  and the few keys transformers adds (dropout rates, `initializer_range`, ...);
* `model.safetensors`, float32, with the tensor names of the chosen architecture. Task
  models prefix the encoder's names with `distilbert.`; the bare `DistilBertModel` does not.
  The MLM head stores no `vocab_projector.weight`: it is tied to the word embeddings;
* for a BERT architecture (`BERT_ARCHITECTURES`, with a `BertConfig`), BERT's names: the
  encoder under `bert.` in task models, token-type embeddings, a pooler where transformers'
  class has one, `cls.predictions.*` without the tied decoder;
* with `vocab_dir`, copies of its `vocab.txt` and `tokenizer_config.json`, so that the
  directory is a complete model a tokenizer can load too.

Initialisation, deterministic from `seed`: every weight matrix, embedding table and bias
~ normal(0, 0.02) (`initializer_range`); LayerNorm gains ~ 1 + normal(0, 0.02) and LayerNorm
biases ~ normal(0, 0.02). Biases and gains are perturbed rather than left at exactly 0 and
1 (as transformers initialises them) so that a loader that mixes them up gives different
numbers and is caught.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from numpy_distilbert._checks import as_int
from numpy_distilbert.config import BertConfig, DistilBertConfig

DEFAULT_STD = 0.02  # transformers' DistilBertConfig.initializer_range

# architecture -> (encoder tensors prefixed with "distilbert."?, the head's tensors as
# {name: shape as a function of (dim, vocab_size, num_labels)}).
ARCHITECTURES: dict[str, tuple[bool, dict]] = {
    "DistilBertModel": (False, {}),
    "DistilBertForMaskedLM": (True, {
        "vocab_transform.weight": lambda d, v, n: (d, d),
        "vocab_transform.bias": lambda d, v, n: (d,),
        "vocab_layer_norm.weight": lambda d, v, n: (d,),
        "vocab_layer_norm.bias": lambda d, v, n: (d,),
        "vocab_projector.bias": lambda d, v, n: (v,),  # the weight is the word embeddings
    }),
    "DistilBertForSequenceClassification": (True, {
        "pre_classifier.weight": lambda d, v, n: (d, d),
        "pre_classifier.bias": lambda d, v, n: (d,),
        "classifier.weight": lambda d, v, n: (n, d),
        "classifier.bias": lambda d, v, n: (n,),
    }),
    "DistilBertForTokenClassification": (True, {
        "classifier.weight": lambda d, v, n: (n, d),
        "classifier.bias": lambda d, v, n: (n,),
    }),
    "DistilBertForQuestionAnswering": (True, {
        "qa_outputs.weight": lambda d, v, n: (2, d),  # start and end logits
        "qa_outputs.bias": lambda d, v, n: (2,),
    }),
    "DistilBertForMultipleChoice": (True, {
        "pre_classifier.weight": lambda d, v, n: (d, d),
        "pre_classifier.bias": lambda d, v, n: (d,),
        "classifier.weight": lambda d, v, n: (1, d),  # one score per choice
        "classifier.bias": lambda d, v, n: (1,),
    }),
}  # fmt: skip
_POOLER = {
    "pooler.dense.weight": lambda d, v, n: (d, d),
    "pooler.dense.bias": lambda d, v, n: (d,),
}
_BERT_MLM = {
    "cls.predictions.transform.dense.weight": lambda d, v, n: (d, d),
    "cls.predictions.transform.dense.bias": lambda d, v, n: (d,),
    "cls.predictions.transform.LayerNorm.weight": lambda d, v, n: (d,),
    "cls.predictions.transform.LayerNorm.bias": lambda d, v, n: (d,),
    "cls.predictions.bias": lambda d, v, n: (v,),  # the decoder's weight is the word embeddings
}
# BERT: architecture -> (encoder prefixed with "bert."?, has a pooler?, the head's tensors).
BERT_ARCHITECTURES: dict[str, tuple[bool, bool, dict]] = {
    "BertModel": (False, True, {}),
    "BertForMaskedLM": (True, False, _BERT_MLM),
    "BertForPreTraining": (True, True, {
        **_BERT_MLM,
        "cls.seq_relationship.weight": lambda d, v, n: (2, d),  # is-next, not-next
        "cls.seq_relationship.bias": lambda d, v, n: (2,),
    }),
    "BertForSequenceClassification": (True, True, {
        "classifier.weight": lambda d, v, n: (n, d),
        "classifier.bias": lambda d, v, n: (n,),
    }),
    "BertForTokenClassification": (True, False, {
        "classifier.weight": lambda d, v, n: (n, d),
        "classifier.bias": lambda d, v, n: (n,),
    }),
    "BertForQuestionAnswering": (True, False, {
        "qa_outputs.weight": lambda d, v, n: (2, d),
        "qa_outputs.bias": lambda d, v, n: (2,),
    }),
}  # fmt: skip
LABELLED = (
    "DistilBertForSequenceClassification", "DistilBertForTokenClassification",
    "BertForSequenceClassification", "BertForTokenClassification",
)  # fmt: skip
QUESTION_ANSWERING = ("DistilBertForQuestionAnswering", "BertForQuestionAnswering")

# Keys transformers writes in every DistilBERT config.json, with its defaults; a config read
# from a real file keeps its own values.
TRANSFORMERS_DEFAULTS = {
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "qa_dropout": 0.1,
    "seq_classif_dropout": 0.2,
    "initializer_range": DEFAULT_STD,
    "tie_word_embeddings": True,
    "dtype": "float32",
}
BERT_TRANSFORMERS_DEFAULTS = {
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": DEFAULT_STD,
    "tie_word_embeddings": True,
    "dtype": "float32",
}


def _sinusoidal_table(n_positions: int, dim: int) -> np.ndarray:
    """The fixed sin/cos position table that `sinusoidal_pos_embds` configs store.

    (The same table as `layers.sinusoidal_positions`; repeated here in three lines so that
    this module needs nothing of the model.)
    """
    angles = np.arange(n_positions)[:, None] / np.power(10000.0, 2.0 * (np.arange(dim) // 2) / dim)
    angles[:, 0::2], angles[:, 1::2] = np.sin(angles[:, 0::2]), np.cos(angles[:, 1::2])
    return angles.astype(np.float32)


def _labels(
    config: DistilBertConfig | BertConfig, architecture: str, num_labels: int | None, id2label: dict | None
) -> dict[int, str]:
    """The id2label to write: given, or LABEL_0..LABEL_{n-1}, or what the config had."""
    if id2label is not None:
        labels = {int(k): str(v) for k, v in id2label.items()}
        if sorted(labels) != list(range(len(labels))):
            raise ValueError(f"id2label keys must be 0..n-1, got {sorted(labels)}")
        if num_labels is not None and num_labels != len(labels):
            raise ValueError(f"num_labels={num_labels} disagrees with id2label ({len(labels)} labels)")
    elif num_labels is not None:
        labels = {i: f"LABEL_{i}" for i in range(as_int(num_labels, "num_labels", minimum=1))}
    else:
        labels = dict(config.id2label)
    if architecture in QUESTION_ANSWERING and labels and len(labels) != 2:
        raise ValueError(f"{architecture} needs exactly 2 labels (start, end), got {len(labels)}")
    if architecture in LABELLED and not labels:
        labels = {0: "LABEL_0", 1: "LABEL_1"}  # transformers' default num_labels=2
    return labels


def _tensor_shapes(config: DistilBertConfig, architecture: str, num_labels: int) -> dict[str, tuple]:
    """Every tensor name the architecture stores, in a fixed order, with its shape."""
    prefixed, head = ARCHITECTURES[architecture]
    p = "distilbert." if prefixed else ""
    d, f, v = config.dim, config.hidden_dim, config.vocab_size
    shapes = {
        f"{p}embeddings.word_embeddings.weight": (v, d),
        f"{p}embeddings.position_embeddings.weight": (config.max_position_embeddings, d),
        f"{p}embeddings.LayerNorm.weight": (d,),
        f"{p}embeddings.LayerNorm.bias": (d,),
    }
    for i in range(config.n_layers):
        layer = f"{p}transformer.layer.{i}."
        for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
            shapes[f"{layer}attention.{lin}.weight"] = (d, d)
            shapes[f"{layer}attention.{lin}.bias"] = (d,)
        shapes[f"{layer}sa_layer_norm.weight"] = (d,)
        shapes[f"{layer}sa_layer_norm.bias"] = (d,)
        shapes[f"{layer}ffn.lin1.weight"] = (f, d)
        shapes[f"{layer}ffn.lin1.bias"] = (f,)
        shapes[f"{layer}ffn.lin2.weight"] = (d, f)
        shapes[f"{layer}ffn.lin2.bias"] = (d,)
        shapes[f"{layer}output_layer_norm.weight"] = (d,)
        shapes[f"{layer}output_layer_norm.bias"] = (d,)
    for name, shape in head.items():
        shapes[name] = shape(d, v, num_labels)
    return shapes


def _bert_tensor_shapes(config: BertConfig, architecture: str, num_labels: int) -> dict[str, tuple]:
    """Every tensor name a BERT architecture stores, in a fixed order, with its shape."""
    prefixed, pooled, head = BERT_ARCHITECTURES[architecture]
    p = "bert." if prefixed else ""
    d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
    shapes = {
        f"{p}embeddings.word_embeddings.weight": (v, d),
        f"{p}embeddings.position_embeddings.weight": (config.max_position_embeddings, d),
        f"{p}embeddings.token_type_embeddings.weight": (config.type_vocab_size, d),
        f"{p}embeddings.LayerNorm.weight": (d,),
        f"{p}embeddings.LayerNorm.bias": (d,),
    }
    linears = {"attention.self.query": (d, d), "attention.self.key": (d, d), "attention.self.value": (d, d),
               "attention.output.dense": (d, d), "attention.output.LayerNorm": (d,),
               "intermediate.dense": (f, d), "output.dense": (d, f), "output.LayerNorm": (d,)}  # fmt: skip
    for i in range(config.num_hidden_layers):
        for name, shape in linears.items():
            shapes[f"{p}encoder.layer.{i}.{name}.weight"] = shape
            shapes[f"{p}encoder.layer.{i}.{name}.bias"] = (shape[0],)
    for name, make in (_POOLER if pooled else {}).items():
        shapes[p + name] = make(d, v, num_labels)
    for name, make in head.items():
        shapes[name] = make(d, v, num_labels)
    return shapes


def random_tensors(
    config: DistilBertConfig | BertConfig,
    architecture: str = "DistilBertForMaskedLM",
    seed: int = 0,
    num_labels: int = 2,
    std: float = DEFAULT_STD,
) -> dict[str, np.ndarray]:
    """{transformers tensor name: float32 array}, deterministic from `seed`."""
    rng = np.random.default_rng(seed)
    tensors = {}
    if isinstance(config, BertConfig):
        shapes = _bert_tensor_shapes(config, architecture, num_labels)
    else:
        shapes = _tensor_shapes(config, architecture, num_labels)
    for name, shape in shapes.items():
        # float32 straight from the generator: no float64 temporary of 135M numbers.
        values = rng.standard_normal(shape, dtype=np.float32)
        values *= np.float32(std)
        if "norm." in name.lower() and name.endswith(".weight"):
            values += np.float32(1.0)  # a LayerNorm gain: near 1, not near 0
        tensors[name] = values
    if isinstance(config, DistilBertConfig) and config.sinusoidal_pos_embds:
        # Those configs use a fixed table, not a learned one; store the table.
        name = next(n for n in tensors if n.endswith("position_embeddings.weight"))
        tensors[name] = _sinusoidal_table(config.max_position_embeddings, config.dim)
    return tensors


def _copy_vocab(vocab_dir: Path, directory: Path, config: DistilBertConfig | BertConfig) -> None:
    vocab = vocab_dir / "vocab.txt"
    if not vocab.is_file():
        raise FileNotFoundError(f"vocab_dir {vocab_dir} has no vocab.txt")
    with vocab.open(encoding="utf-8") as f:
        n_tokens = sum(1 for _ in f)
    if n_tokens > config.vocab_size:
        raise ValueError(
            f"{vocab} has {n_tokens} tokens but the config's vocab_size is {config.vocab_size}: "
            f"the tokenizer could produce ids the model has no embedding for"
        )
    if vocab.resolve() != (directory / "vocab.txt").resolve():
        shutil.copyfile(vocab, directory / "vocab.txt")
    tok_config = vocab_dir / "tokenizer_config.json"
    if tok_config.is_file() and tok_config.resolve() != (directory / tok_config.name).resolve():
        shutil.copyfile(tok_config, directory / tok_config.name)


def write_random_checkpoint(
    directory: str | Path,
    config: DistilBertConfig | BertConfig | None = None,
    seed: int = 0,
    architecture: str = "DistilBertForMaskedLM",
    vocab_dir: str | Path | None = None,
    num_labels: int | None = None,
    id2label: dict[int, str] | None = None,
) -> Path:
    """Write config.json and model.safetensors of a random-weight DistilBERT (or BERT) into `directory`.

    config: the sizes (default: `DistilBertConfig()`, the real distilbert-base-multilingual-cased
        sizes, 135M parameters, a 540 MB file). Its `architectures` and labels are replaced.
    seed: the same seed gives the same bytes.
    architecture: one of `ARCHITECTURES`, or of `BERT_ARCHITECTURES` with a `BertConfig`
        (default: `BertConfig()`, transformers' bert-base sizes), transformers' class names.
    vocab_dir: a directory whose vocab.txt (and tokenizer_config.json, if present) is copied in.
    num_labels / id2label: the classifier's labels, for sequence and token classification
        (default: the config's labels, else 2 labels LABEL_0, LABEL_1 as transformers).
    Returns the directory, as a Path.
    """
    bert = architecture in BERT_ARCHITECTURES
    if architecture not in ARCHITECTURES and not bert:
        raise ValueError(
            f"unknown architecture {architecture!r}; choose one of "
            f"{', '.join([*ARCHITECTURES, *BERT_ARCHITECTURES])}"
        )
    config_class = BertConfig if bert else DistilBertConfig
    config = config_class() if config is None else config
    if not isinstance(config, config_class):
        raise TypeError(f"{architecture} needs a {config_class.__name__}, got {type(config).__name__}")
    seed = as_int(seed, "seed", minimum=0)
    labels = _labels(config, architecture, num_labels, id2label)
    extra = {**(BERT_TRANSFORMERS_DEFAULTS if bert else TRANSFORMERS_DEFAULTS), **config.extra}
    config = dataclasses.replace(
        config,
        architectures=(architecture,),
        id2label=labels,
        label2id={label: i for i, label in labels.items()},
        extra=extra,
    )
    std = float(extra.get("initializer_range", DEFAULT_STD))
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"config's initializer_range must be a positive number, got {std!r}")

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if vocab_dir is not None:
        _copy_vocab(Path(vocab_dir), directory, config)
    n_labels = 2 if architecture in QUESTION_ANSWERING else max(len(labels), 1)
    tensors = random_tensors(config, architecture, seed, n_labels, std)
    # transformers reads the "format" metadata to know whose layout the file is in.
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})

    data = config.to_dict()
    if not labels:  # as transformers: no label maps written when there are none
        data.pop("id2label", None)
        data.pop("label2id", None)
    else:
        data["label2id"] = {label: i for i, label in labels.items()}
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    (directory / "config.json").write_text(text, encoding="utf-8")
    return directory


__all__ = ["ARCHITECTURES", "BERT_ARCHITECTURES", "random_tensors", "write_random_checkpoint"]
