"""SentenceTransformer against sentence-transformers itself, on checkpoints it wrote.

Tiny random DistilBERT and BERT encoders (the real multilingual vocabulary) are wrapped by
sentence-transformers' own `Transformer` + `Pooling` (+ `Normalize`) and saved with `.save()`,
one directory per pooling mode; every mode must give sentence-transformers' `encode` to
2e-6 per element, with texts past max_seq_length and `normalize_embeddings` both ways.
The real all-MiniLM-L6-v2 (conftest's `minilm_path`) is checked the same way, and its
similarities against sentence-transformers' own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module

from numpy_distilbert import SentenceTransformer
from numpy_distilbert.config import ConfigError, DistilBertConfig
from numpy_distilbert.random_weights import write_random_checkpoint
from numpy_distilbert.sentence_transformers import POOLING_MODES, similarity_matrix
from numpy_distilbert.tolerances import FP32_HIDDEN

SENTENCE_TOLERANCE = 2e-6  # per element, float32 sentence embeddings vs sentence-transformers
MAX_SEQ_LENGTH = 16
TEXTS = [
    "Hello world",
    "A much longer sentence that goes on and on, well past the sixteen tokens this model keeps.",
    "Überraschung: 東京 ist groß, and naïve café owners agree.",
    "x",
    "",
    "Zwei Wörter",
    "Le chat est sur le tapis, et le chien dort sous la table de la cuisine depuis ce matin.",
]
# Every mode alone, and all of them at once (concatenated in sentence-transformers' order).
POOLINGS = [(mode,) for mode in POOLING_MODES] + [POOLING_MODES]


@pytest.fixture(scope="session")  # the session scope of minilm_path: torch is asked for first
def st():
    require_module("torch")
    module = require_module("sentence_transformers")
    require_module("sentence_transformers.sentence_transformer.modules")  # Transformer, Pooling, ...
    require_module("sentence_transformers.util")
    return module


@pytest.fixture(scope="module")
def encoders(tmp_path_factory, shared_model_path, st) -> dict[str, Path]:
    """{"distilbert": dir, "bert": dir}: tiny random encoders with the real vocabulary."""
    import torch
    import transformers

    root = tmp_path_factory.mktemp("st-encoders")
    distil = write_random_checkpoint(root / "distilbert", DistilBertConfig(dim=32, n_layers=2, n_heads=2,
                                     hidden_dim=64), seed=3, architecture="DistilBertModel",
                                     vocab_dir=shared_model_path)  # fmt: skip
    torch.manual_seed(4)
    config = transformers.BertConfig(vocab_size=119547, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, type_vocab_size=2)
    bert = transformers.BertModel(config, add_pooling_layer=True).eval()
    with torch.no_grad():  # LayerNorm gains and biases away from 1 and 0, so a mix-up shows
        for name, param in bert.named_parameters():
            if "LayerNorm" in name:
                param.add_(torch.randn_like(param) * 0.1)
    bert.save_pretrained(root / "bert", safe_serialization=True)
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copyfile(shared_model_path / name, root / "bert" / name)
    return {"distilbert": distil, "bert": root / "bert"}


def save_st_model(st, encoder: Path, out: Path, modes: tuple[str, ...], normalize: bool) -> Path:
    """A sentence-transformers directory written by sentence-transformers itself."""
    models = st.sentence_transformer.modules
    transformer = models.Transformer(str(encoder), max_seq_length=MAX_SEQ_LENGTH)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode=modes)
    modules = [transformer, pooling] + ([models.Normalize()] if normalize else [])
    st.SentenceTransformer(modules=modules, device="cpu").save(str(out))
    return out


def max_diff(ours, theirs) -> float:
    return float(np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64)).max())


@pytest.mark.parametrize("family", ["distilbert", "bert"])
@pytest.mark.parametrize("modes", POOLINGS, ids=lambda m: "+".join(m))
def test_every_pooling_mode_equals_sentence_transformers(st, encoders, tmp_path, family, modes):
    normalize_module = len(modes) > 1 or modes[0] in ("mean", "max", "lasttoken")
    path = save_st_model(st, encoders[family], tmp_path / "st", modes, normalize_module)
    reference = st.SentenceTransformer(str(path), device="cpu")
    ours = SentenceTransformer(path)
    assert ours.max_seq_length == MAX_SEQ_LENGTH
    assert len(ours.tokenize(TEXTS[1])) == MAX_SEQ_LENGTH  # the long text is cut
    for normalize in (False, True):
        expected = reference.encode(TEXTS, batch_size=3, normalize_embeddings=normalize)
        got = ours.encode(TEXTS, batch_size=3, normalize_embeddings=normalize)
        assert got.dtype == np.float32 and got.shape == expected.shape
        diff = max_diff(got, expected)
        print(f"{family} {'+'.join(modes)} normalize={normalize}: max |ours - reference| {diff:.2e}")
        assert diff <= SENTENCE_TOLERANCE
    if normalize_module:
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("family", ["distilbert", "bert"])
def test_token_embeddings_and_one_string(st, encoders, tmp_path, family):
    path = save_st_model(st, encoders[family], tmp_path / "st", ("mean",), normalize=True)
    reference = st.SentenceTransformer(str(path), device="cpu")
    ours = SentenceTransformer(path)
    expected = reference.encode(TEXTS, output_value="token_embeddings", batch_size=2)
    got = ours.encode(TEXTS, output_value="token_embeddings", batch_size=2)
    assert isinstance(got, list) and len(got) == len(TEXTS)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == tuple(e.shape)
        assert max_diff(g, e.numpy()) <= FP32_HIDDEN
    one = ours.encode(TEXTS[2])
    assert one.shape == (ours.get_sentence_embedding_dimension(),)
    assert max_diff(one, reference.encode(TEXTS[2])) <= SENTENCE_TOLERANCE
    assert ours.encode(TEXTS[2], output_value="token_embeddings").shape == tuple(expected[2].shape)


@pytest.mark.parametrize("family", ["distilbert", "bert"])
def test_plain_model_directory_gets_mean_pooling(st, encoders, family):
    reference = st.SentenceTransformer(str(encoders[family]), device="cpu")
    ours = SentenceTransformer(encoders[family])
    assert ours.pooling is not None and ours.pooling.modes == ("mean",) and not ours.normalize
    assert max_diff(ours.encode(TEXTS), reference.encode(TEXTS)) <= SENTENCE_TOLERANCE


def test_legacy_configs_flags_and_lowercasing(st, encoders, tmp_path):
    """Files as sentence-transformers 2.x wrote them: pooling flags, max_seq_length and
    do_lower_case in sentence_bert_config.json, `sentence_transformers.models.*` types."""
    path = save_st_model(st, encoders["distilbert"], tmp_path / "st", ("mean",), normalize=False)
    (path / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": True, "pooling_mode_mean_sqrt_len_tokens": True,
    }))  # fmt: skip
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12, "do_lower_case": True}))
    modules = json.loads((path / "modules.json").read_text())
    for module, name in zip(modules, ("Transformer", "Pooling"), strict=True):
        module["type"] = f"sentence_transformers.models.{name}"
    (path / "modules.json").write_text(json.dumps(modules))
    reference = st.SentenceTransformer(str(path), device="cpu")
    ours = SentenceTransformer(path)
    assert ours.pooling is not None and ours.pooling.modes == ("cls", "max", "mean_sqrt_len_tokens")
    assert ours.max_seq_length == 12
    texts = [*TEXTS, "UPPER Case ÄÖÜ Words", "upper case äöü words"]
    expected = reference.encode(texts)
    got = ours.encode(texts)
    print(f"legacy flags, do_lower_case: max diff {max_diff(got, expected):.2e}")
    assert max_diff(got, expected) <= SENTENCE_TOLERANCE
    np.testing.assert_array_equal(got[-1], got[-2])  # lowercased before tokenizing


def test_similarity_equals_sentence_transformers(st, encoders, tmp_path):
    path = save_st_model(st, encoders["bert"], tmp_path / "st", ("mean",), normalize=False)
    reference = st.SentenceTransformer(str(path), device="cpu")
    ours = SentenceTransformer(path)
    a, b = ours.encode(TEXTS[:4]), ours.encode(TEXTS[3:])
    assert reference.similarity_fn_name == ours.similarity_fn_name == "cosine"
    assert max_diff(ours.similarity(a, b), reference.similarity(a, b).numpy()) <= 1e-6
    util = st.util
    for name, function in (("dot", util.dot_score), ("euclidean", util.euclidean_sim),
                           ("manhattan", util.manhattan_sim)):  # fmt: skip
        assert max_diff(similarity_matrix(a, b, name), function(a, b).numpy()) <= 1e-5, name
    assert similarity_matrix(a[0], b).shape == (1, len(b))


# ----------------------------------------------------------------- refusals
@pytest.fixture()
def st_dir(st, encoders, tmp_path) -> Path:
    return save_st_model(st, encoders["distilbert"], tmp_path / "st", ("mean",), normalize=True)


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(edit(data)))


def test_unknown_module_refused(st_dir):
    def add_dense(modules):
        dense = {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
        return [*modules, dense]

    _edit_json(st_dir / "modules.json", add_dense)
    expected = r"modules.json: module 3 has type 'sentence_transformers\.models\.Dense'"
    with pytest.raises(ConfigError, match=expected):
        SentenceTransformer(st_dir)


def test_module_path_outside_the_directory_refused(st_dir):
    def escape(modules):
        modules[1]["path"] = "../../elsewhere"
        return modules

    _edit_json(st_dir / "modules.json", escape)
    with pytest.raises(ConfigError, match="leads outside"):
        SentenceTransformer(st_dir)


@pytest.mark.parametrize(("config", "message"), [
    ({"embedding_dimension": 32, "pooling_mode": "attention"}, "pooling mode 'attention' is not implemented"),
    ({"embedding_dimension": 48, "pooling_mode": "mean"}, "embedding_dimension 48 is not the encoder's"),
    ({"embedding_dimension": 32, "pooling_mode": []}, "pooling_mode must be"),
    ({"embedding_dimension": 32, "pooling_mode_fancy_tokens": True}, "unknown pooling option"),
    ({"embedding_dimension": 32, "pooling_mode": "mean", "include_prompt": "no"}, "include_prompt"),
])  # fmt: skip
def test_bad_pooling_config_refused(st_dir, config, message):
    (st_dir / "1_Pooling" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        SentenceTransformer(st_dir)


@pytest.mark.parametrize(("file", "edit", "message"), [
    ("config_sentence_transformers.json", {"default_prompt_name": "query", "prompts": {"query": "q: "}},
     "default_prompt_name 'query'"),
    ("config_sentence_transformers.json", {"similarity_fn_name": "jaccard"}, "similarity_fn_name 'jaccard'"),
    ("sentence_bert_config.json", {"max_seq_length": 4096}, "max_seq_length 4096 is more than"),
    ("sentence_bert_config.json", {"max_seq_length": "long"}, "max_seq_length"),
    ("sentence_bert_config.json", {"transformer_task": "fill-mask"}, "transformer_task"),
    ("sentence_bert_config.json", {"do_lower_case": "yes"}, "do_lower_case"),
])  # fmt: skip
def test_unimplemented_options_refused(st_dir, file, edit, message):
    _edit_json(st_dir / file, lambda data: {**data, **edit})
    with pytest.raises(ConfigError, match=message):
        SentenceTransformer(st_dir)


def test_bad_encode_arguments(st_dir):
    model = SentenceTransformer(st_dir)
    with pytest.raises(TypeError, match=r"sentences\[1\] must be a string"):
        model.encode(["a", 3])
    with pytest.raises(TypeError, match="sentences must be a string or a list"):
        model.encode(b"bytes")
    with pytest.raises(ValueError, match="batch_size"):
        model.encode(["a"], batch_size=0)
    with pytest.raises(ValueError, match="output_value"):
        model.encode(["a"], output_value=None)
    assert model.encode([]).shape == (0, model.get_sentence_embedding_dimension())
    np.testing.assert_array_equal(model.encode(np.array(["a", "bc"])), model.encode(["a", "bc"]))


# ------------------------------------------------------------ all-MiniLM-L6-v2
@pytest.fixture(scope="module")
def minilm_pair(st, minilm_path):
    return st.SentenceTransformer(str(minilm_path), device="cpu"), SentenceTransformer(minilm_path)


def test_minilm_encode_equals_sentence_transformers(minilm_pair):
    reference, ours = minilm_pair
    assert ours.max_seq_length == 256 and ours.normalize and ours.pooling.modes == ("mean",)
    long_text = " ".join(["The quick brown fox jumps over the lazy dog."] * 40)  # ~400 tokens
    texts = [*TEXTS, long_text, "A man is eating food.", "Ein Mann isst Brot."]
    assert len(ours.tokenize(long_text)) == 256
    for normalize in (False, True):
        diff = max_diff(ours.encode(texts, batch_size=4, normalize_embeddings=normalize),
                        reference.encode(texts, batch_size=4, normalize_embeddings=normalize))
        print(f"all-MiniLM-L6-v2 normalize_embeddings={normalize}: max diff {diff:.2e}")
        assert diff <= SENTENCE_TOLERANCE


def test_minilm_similarities_equal_sentence_transformers(minilm_pair):
    reference, ours = minilm_pair
    pairs = [("A man is eating food.", "A man is eating a piece of bread."),
             ("A man is eating food.", "A monkey is playing drums."),
             ("The new movie is awesome", "Der Himmel ist blau.")]  # fmt: skip  (the last is negative)
    for a, b in pairs:
        got = float(ours.similarity(ours.encode(a), ours.encode(b))[0, 0])
        expected = float(reference.similarity(reference.encode(a), reference.encode(b))[0, 0])
        print(f"{a!r} vs {b!r}: ours {got:.6f}, sentence-transformers {expected:.6f}")
        assert abs(got - expected) <= 1e-6


def test_broken_modules_json_and_missing_pooling_config(st_dir):
    modules = json.loads((st_dir / "modules.json").read_text())
    (st_dir / "modules.json").write_text(json.dumps({"modules": modules}))
    with pytest.raises(ConfigError, match="expected a non-empty JSON list of modules"):
        SentenceTransformer(st_dir)
    modules[1]["path"] = "1_Pooling\x00"
    (st_dir / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConfigError, match=r"module 1 path .* cannot be used"):
        SentenceTransformer(st_dir)
    modules[1]["path"] = "1_Pooling"
    (st_dir / "modules.json").write_text(json.dumps(modules[::-1]))
    with pytest.raises(ConfigError, match="not a Transformer followed by Pooling and/or Normalize"):
        SentenceTransformer(st_dir)
    (st_dir / "modules.json").write_text(json.dumps(modules))
    (st_dir / "1_Pooling" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"1_Pooling/config.json"):
        SentenceTransformer(st_dir)
