"""DistilBertConfig: reading config.json, and refusing configs that cannot describe a model.

Needs neither torch nor transformers; the real config.json comes from ../shared (conftest).
"""

from __future__ import annotations

import json

import pytest

from numpy_distilbert.config import ConfigError, DistilBertConfig

VALID = dict(
    vocab_size=100, max_position_embeddings=16, n_layers=2, n_heads=4, dim=32, hidden_dim=64,
    activation="gelu", sinusoidal_pos_embds=False, model_type="distilbert",
)  # fmt: skip


# ------------------------------------------------------------------ the real config
def test_real_config_has_the_documented_sizes(shared_model_path):
    """DEVELOPERS.md: 6 layers, dim 768, 12 heads, FFN 3072, vocab 119,547, learned positions, gelu."""
    config = DistilBertConfig.from_pretrained(shared_model_path)
    assert (config.n_layers, config.dim, config.n_heads, config.hidden_dim) == (6, 768, 12, 3072)
    assert config.vocab_size == 119547
    assert config.max_position_embeddings == 512
    assert config.head_dim == 64
    assert config.activation == "gelu"
    assert config.sinusoidal_pos_embds is False
    assert config.pad_token_id == 0
    assert config.architectures == ("DistilBertForMaskedLM",)


def test_real_config_keeps_every_key(shared_model_path):
    """Nothing in the file is silently dropped: typed fields plus `extra` hold every key and value."""
    raw = json.loads((shared_model_path / "config.json").read_text(encoding="utf-8"))
    config = DistilBertConfig.from_pretrained(shared_model_path)
    round_trip = config.to_dict()
    for key, value in raw.items():
        assert key in round_trip, key
        expected = value if key != "id2label" else {str(k): v for k, v in value.items()}
        assert round_trip[key] == expected, key
    assert config.extra["dropout"] == raw["dropout"]
    assert config.extra["output_past"] is True


def test_vocab_file_agrees_with_config(shared_model_path):
    with open(shared_model_path / "vocab.txt", encoding="utf-8") as f:
        n_tokens = sum(1 for _ in f)
    assert DistilBertConfig.from_pretrained(shared_model_path).vocab_size == n_tokens


def test_dict_round_trip():
    config = DistilBertConfig.from_dict({**VALID, "id2label": {"0": "NEG", "1": "POS"}, "foo": [1, 2]})
    assert config.id2label == {0: "NEG", 1: "POS"}
    assert config.num_labels == 2
    assert config.extra == {"model_type": "distilbert", "foo": [1, 2]}
    assert DistilBertConfig.from_dict(config.to_dict()) == config


def test_transformers_defaults_match_ours(transformers_module):
    """Keys absent from a config.json take transformers' defaults, so both read a file alike.

    The class's own vocab_size default is the multilingual vocabulary (119,547), but a file
    without the key reads as transformers reads it (30,522).
    """
    theirs = transformers_module.DistilBertConfig()
    ours = DistilBertConfig()
    for name in ("max_position_embeddings", "sinusoidal_pos_embds", "n_layers", "n_heads",
                 "dim", "hidden_dim", "activation", "pad_token_id"):  # fmt: skip
        assert getattr(ours, name) == getattr(theirs, name), name
    assert DistilBertConfig.from_dict({}).vocab_size == theirs.vocab_size
    assert ours.vocab_size == 119547


def test_reads_a_config_transformers_wrote(tmp_path, transformers_module):
    theirs = transformers_module.DistilBertConfig(
        vocab_size=77, dim=48, n_heads=3, n_layers=2, hidden_dim=50, activation="relu",
        sinusoidal_pos_embds=True, max_position_embeddings=33, id2label={0: "a", 1: "b", 2: "c"},
    )  # fmt: skip
    theirs.save_pretrained(tmp_path)
    ours = DistilBertConfig.from_pretrained(tmp_path)
    assert (ours.vocab_size, ours.dim, ours.n_heads, ours.n_layers, ours.hidden_dim) == (77, 48, 3, 2, 50)
    assert (ours.activation, ours.sinusoidal_pos_embds, ours.max_position_embeddings) == ("relu", True, 33)
    assert ours.id2label == {0: "a", 1: "b", 2: "c"}
    assert ours.head_dim == 16


# --------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"dim": 30, "n_heads": 4}, "n_heads"),
        ({"n_heads": 0}, "n_heads"),
        ({"dim": -32}, "dim"),
        ({"dim": 32.0}, "dim"),
        ({"dim": True}, "dim"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"vocab_size": "100"}, "vocab_size"),
        ({"max_position_embeddings": 0}, "max_position_embeddings"),
        ({"n_layers": -1}, "n_layers"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"activation": "tanh"}, "activation"),
        ({"activation": "gelu_new"}, "activation"),
        ({"sinusoidal_pos_embds": "false"}, "sinusoidal_pos_embds"),
        ({"sinusoidal_pos_embds": 1}, "sinusoidal_pos_embds"),
        ({"model_type": "bert"}, "model_type"),
        ({"problem_type": "ranking"}, "problem_type"),
        ({"id2label": ["a", "b"]}, "id2label"),
        ({"id2label": {"zero": "a"}}, "id2label"),
    ],
)
def test_invalid_field_is_named(override, field):
    with pytest.raises(ConfigError, match=field):
        DistilBertConfig.from_dict({**VALID, **override})


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_null_label2id_as_transformers_writes_it():
    """transformers writes `"label2id": null` next to an id2label it was given."""
    config = DistilBertConfig.from_dict({**VALID, "id2label": {"0": "a"}, "label2id": None})
    assert config.id2label == {0: "a"}
    assert config.label2id == {}


def test_not_an_object():
    with pytest.raises(ConfigError, match="JSON object"):
        DistilBertConfig.from_dict([1, 2, 3])


def test_bad_file_names_the_path_and_field(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**VALID, "activation": "swish"}))
    with pytest.raises(ConfigError, match=r"config\.json.*activation"):
        DistilBertConfig.from_pretrained(tmp_path)


def test_non_json_file(tmp_path):
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(ConfigError, match=r"config\.json is not valid JSON"):
        DistilBertConfig.from_pretrained(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        DistilBertConfig.from_pretrained(tmp_path)


# ------------------------------------------------------ transformers' generic names
GENERIC = {"hidden_size": "dim", "num_attention_heads": "n_heads", "num_hidden_layers": "n_layers"}


def test_generic_names_in_config_json_read_as_transformers_reads_them(transformers_module):
    """transformers' attribute_map: a config.json may say hidden_size for dim, and so on."""
    assert transformers_module.DistilBertConfig.attribute_map == GENERIC == DistilBertConfig.attribute_map
    data = {"model_type": "distilbert", "hidden_size": 24, "num_attention_heads": 3, "num_hidden_layers": 4}
    theirs = transformers_module.DistilBertConfig.from_dict(data)
    ours = DistilBertConfig.from_dict(data)
    for generic, own in GENERIC.items():
        assert getattr(ours, own) == getattr(theirs, own) == data[generic], own
        assert getattr(ours, generic) == getattr(theirs, generic), generic
    assert ours.intermediate_size == ours.hidden_dim == theirs.hidden_dim


def test_generic_names_as_constructor_keywords():
    config = DistilBertConfig(hidden_size=24, num_attention_heads=3, num_hidden_layers=4)
    assert (config.dim, config.n_heads, config.n_layers) == (24, 3, 4)
    assert DistilBertConfig(dim=24, hidden_size=24).dim == 24  # both, agreeing: fine


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 32, "hidden_size": 24}, r"'hidden_size' \(24\) and 'dim' \(32\) name the same size"),
        ({"n_heads": 2, "num_attention_heads": 4}, r"'num_attention_heads' \(4\) and 'n_heads' \(2\)"),
        ({"intermediate_size": 64}, r"feed-forward size is 'hidden_dim', not 'intermediate_size'"),
    ],
)
def test_generic_names_that_cannot_be_honoured_are_refused(kwargs, message):
    """transformers lets hidden_size silently win over dim, and keeps intermediate_size unused
    (its hidden_dim stays 3072): both would build another model than the one asked for."""
    with pytest.raises(ConfigError, match=message):
        DistilBertConfig(**kwargs)


def test_intermediate_size_in_config_json_must_agree_with_hidden_dim(tmp_path):
    agreeing = tmp_path / "agreeing"
    agreeing.mkdir()
    (agreeing / "config.json").write_text(json.dumps({**VALID, "intermediate_size": VALID["hidden_dim"]}))
    assert DistilBertConfig.from_pretrained(agreeing).intermediate_size == VALID["hidden_dim"]
    (tmp_path / "config.json").write_text(json.dumps({**VALID, "intermediate_size": 3072, "hidden_dim": 64}))
    with pytest.raises(ConfigError, match=r"config\.json: config field 'intermediate_size' \(3072\)"):
        DistilBertConfig.from_pretrained(tmp_path)
