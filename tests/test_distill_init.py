"""init_student: a DistilBERT made of a BERT teacher's embeddings, every other layer and MLM head.

Proof, on tiny random BERTs (transformers-built, every parameter perturbed; with and without
an MLM head) and on the real all-MiniLM-L6-v2:
* every tensor the student holds equals the teacher's tensor it was mapped from (read back
  from the written file, compared with the teacher's file; the position table with the
  type-0 row added, in float32);
* transformers' DistilBertModel / DistilBertForMaskedLM load it with no missing or
  unexpected keys, and so do ours;
* single-segment input gives the teacher's embedding-layer output (transformers' BertModel
  embeddings vs transformers' DistilBertModel embeddings of the student), and a student
  initialised with *all* layers computes the teacher's whole encoder;
* hostile arguments get clear errors.
The checks that need no torch (the tensor mapping, our own loading, the all-layer student on
the real MiniLM) also run in the no-torch tier.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from numpy_distilbert import tolerances
from numpy_distilbert.config import BertConfig, ConfigError
from numpy_distilbert.distill import init_student, student_name_map
from numpy_distilbert.random_weights import write_random_checkpoint

TINY_BERT = dict(vocab_size=61, hidden_size=16, num_hidden_layers=5, num_attention_heads=4,
                 intermediate_size=24, max_position_embeddings=24, type_vocab_size=2)  # fmt: skip


def teacher_tensors(directory) -> dict[str, np.ndarray]:
    """The teacher's file, names without `bert.` (as student_name_map's keys)."""
    raw = load_file(str(directory / "model.safetensors"))
    return {name.removeprefix("bert."): array for name, array in raw.items()}


def student_tensors(directory) -> dict[str, np.ndarray]:
    raw = load_file(str(directory / "model.safetensors"))
    return {name.removeprefix("distilbert."): array for name, array in raw.items()}


def check_mapping(teacher_dir, student_dir, layers, with_head: bool) -> None:
    """Every student tensor equals, bit for bit, the teacher's under the name map; nothing else."""
    teacher, student = teacher_tensors(teacher_dir), student_tensors(student_dir)
    mapping = student_name_map(layers, with_head)
    expected_names = {*mapping.values(), "embeddings.position_embeddings.weight"}
    assert set(student) == expected_names
    for teacher_name, student_name in mapping.items():
        np.testing.assert_array_equal(student[student_name], teacher[teacher_name], err_msg=student_name)
        assert student[student_name].dtype == np.float32
    type_zero = teacher["embeddings.token_type_embeddings.weight"][0]
    folded = teacher["embeddings.position_embeddings.weight"] + type_zero
    np.testing.assert_array_equal(student["embeddings.position_embeddings.weight"], folded)
    # the map itself, checked by hand on one block: teacher layer layers[-1] -> student's last
    last = len(layers) - 1
    assert mapping[f"encoder.layer.{layers[-1]}.attention.self.query.weight"] == (
        f"transformer.layer.{last}.attention.q_lin.weight"
    )
    assert mapping[f"encoder.layer.{layers[-1]}.output.LayerNorm.bias"] == (
        f"transformer.layer.{last}.output_layer_norm.bias"
    )


# ------------------------------------------------------------------ no torch needed
@pytest.mark.parametrize("architecture", ["BertForMaskedLM", "BertModel", "BertForPreTraining"])
def test_random_teacher_tensors_map_exactly(tmp_path, architecture):
    teacher = write_random_checkpoint(tmp_path / "teacher", BertConfig(**TINY_BERT), seed=3,
                                      architecture=architecture)  # fmt: skip
    student = init_student(teacher, tmp_path / "student")
    with_head = architecture != "BertModel"
    check_mapping(teacher, student, [0, 2, 4], with_head)
    config = json.loads((student / "config.json").read_text())
    assert config["model_type"] == "distilbert" and config["n_layers"] == 3
    assert config["architectures"] == ["DistilBertForMaskedLM" if with_head else "DistilBertModel"]
    from numpy_distilbert import AutoModel, load_model

    assert type(load_model(student)).__name__ == config["architectures"][0]
    AutoModel.from_pretrained(student)


def test_all_layers_student_is_the_teacher_on_single_segment_input(tmp_path):
    """Taking every layer (and folding type 0) gives a DistilBERT that computes the teacher."""
    from numpy_distilbert import BertModel, DistilBertModel

    teacher = write_random_checkpoint(tmp_path / "teacher", BertConfig(**TINY_BERT), seed=4,
                                      architecture="BertModel")  # fmt: skip
    student = init_student(teacher, tmp_path / "student", layers=range(5))
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 61, (3, 11))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    for dtype in (np.float32, np.float64):
        bert = BertModel.from_pretrained(teacher, dtype=dtype)
        distilbert = DistilBertModel.from_pretrained(student, dtype=dtype)
        ours_teacher = bert(ids, mask, output_hidden_states=True)
        ours_student = distilbert(ids, mask, output_hidden_states=True)
        bound = tolerances.FP32_HIDDEN if dtype == np.float32 else tolerances.INIT_FOLD_FP64
        for t, s in zip(ours_teacher.hidden_states, ours_student.hidden_states, strict=True):
            assert np.max(np.abs(t - s)) <= bound


@pytest.mark.parametrize(
    "layers, message",
    [
        ([0, 5], r"layers \[5\] are out of range: the teacher has 5 layers"),
        ([1, 1, 3], r"teacher layer\(s\) \[1\] more than once"),
        ([3, 1], "increasing order"),
        ([], "layers is empty"),
        ([0, -1], "non-negative integer"),
        ([0, 1.0], "non-negative integer"),
        ([True], "non-negative integer"),
        ("0,2", "sequence of teacher layer indices"),
    ],
)
def test_bad_layers_are_refused(tmp_path, layers, message):
    teacher = write_random_checkpoint(tmp_path / "teacher", BertConfig(**TINY_BERT), architecture="BertModel")
    with pytest.raises((ValueError, TypeError), match=message):
        init_student(teacher, tmp_path / "student", layers=layers)
    assert not (tmp_path / "student" / "model.safetensors").exists()


def test_non_bert_teacher_is_refused(tmp_path):
    from numpy_distilbert.config import DistilBertConfig

    distilbert = write_random_checkpoint(
        tmp_path / "distilbert", DistilBertConfig(vocab_size=30, dim=8, n_heads=2, hidden_dim=12, n_layers=2,
                                                  max_position_embeddings=16)
    )  # fmt: skip
    with pytest.raises(ConfigError, match="model_type is 'distilbert'; init_student takes a BERT teacher"):
        init_student(distilbert, tmp_path / "student")


def test_teacher_activation_without_distilbert_equivalent_is_refused(tmp_path):
    config = BertConfig(**TINY_BERT, hidden_act="gelu_new")
    teacher = write_random_checkpoint(tmp_path / "teacher", config, architecture="BertModel")
    with pytest.raises(ConfigError, match="hidden_act 'gelu_new' has no DistilBERT equivalent"):
        init_student(teacher, tmp_path / "student")


def test_existing_student_and_teacher_directory_are_not_overwritten(tmp_path):
    teacher = write_random_checkpoint(tmp_path / "teacher", BertConfig(**TINY_BERT), architecture="BertModel")
    with pytest.raises(ValueError, match="teacher's own directory"):
        init_student(teacher, teacher)
    init_student(teacher, tmp_path / "student")
    before = (tmp_path / "student" / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        init_student(teacher, tmp_path / "student", layers=[1])
    assert (tmp_path / "student" / "model.safetensors").read_bytes() == before
    init_student(teacher, tmp_path / "student", layers=[1], overwrite=True)
    assert json.loads((tmp_path / "student" / "config.json").read_text())["n_layers"] == 1


def test_missing_teacher_tensor_is_named(tmp_path):
    from safetensors.numpy import save_file

    teacher = write_random_checkpoint(tmp_path / "teacher", BertConfig(**TINY_BERT), architecture="BertModel")
    tensors = load_file(str(teacher / "model.safetensors"))
    del tensors["encoder.layer.2.intermediate.dense.weight"]
    save_file(tensors, str(teacher / "model.safetensors"))
    with pytest.raises(ValueError, match=r"encoder\.layer\.2\.intermediate\.dense\.weight"):
        init_student(teacher, tmp_path / "student")


def test_real_minilm_student_maps_exactly_and_all_layers_reproduce_it(minilm_path, tmp_path):
    student = init_student(minilm_path, tmp_path / "student")
    check_mapping(minilm_path, student, [0, 2, 4], with_head=False)
    for name in ("vocab.txt", "tokenizer_config.json", "modules.json", "1_Pooling/config.json"):
        assert (student / name).read_bytes() == (minilm_path / name).read_bytes()
    from numpy_distilbert import BertModel, DistilBertModel, SentenceTransformer

    full = init_student(minilm_path, tmp_path / "full", layers=range(6))
    texts = ["A man is eating food.", "Distillation keeps every other layer of the teacher."]
    teacher_model = SentenceTransformer(minilm_path)
    student_model = SentenceTransformer(full)
    difference = np.max(np.abs(teacher_model.encode(texts) - student_model.encode(texts)))
    print(f"all-MiniLM-L6-v2 vs its all-layer DistilBERT copy: embeddings differ by {difference:.1e}")
    assert difference <= tolerances.FP32_HIDDEN
    assert DistilBertModel.from_pretrained(student).config.n_layers == 3
    ids = np.array([[101, 1037, 2158, 2003, 5983, 2833, 1012, 102]])
    teacher_hidden = BertModel.from_pretrained(minilm_path, dtype=np.float64)(ids).last_hidden_state
    student_hidden = DistilBertModel.from_pretrained(full, dtype=np.float64)(ids).last_hidden_state
    assert np.max(np.abs(teacher_hidden - student_hidden)) <= tolerances.INIT_FOLD_FP64


# ------------------------------------------------------------------ against transformers
@pytest.fixture(scope="module")
def transformers(transformers_module):
    return transformers_module


@pytest.mark.parametrize("architecture", ["BertForMaskedLM", "BertModel", "BertForPreTraining"])
def test_transformers_loads_the_student_and_its_embeddings_are_the_teachers(
    tmp_path, transformers, architecture
):
    import checkpoints
    import torch

    teacher_model = checkpoints.build_bert_checkpoint(tmp_path / "teacher", architecture, seed=7, **TINY_BERT)
    student_dir = init_student(tmp_path / "teacher", tmp_path / "student")
    check_mapping(tmp_path / "teacher", student_dir, [0, 2, 4], architecture != "BertModel")
    student_class = "DistilBertModel" if architecture == "BertModel" else "DistilBertForMaskedLM"
    loader = getattr(transformers, student_class)
    student, info = loader.from_pretrained(student_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    bert = teacher_model if architecture == "BertModel" else teacher_model.bert
    distilbert = student if architecture == "BertModel" else student.distilbert
    ids = torch.randint(0, TINY_BERT["vocab_size"], (3, 13), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for dtype in (torch.float32, torch.float64):
            teacher_model.to(dtype), student.to(dtype)
            expected = bert.embeddings(input_ids=ids)  # token types default to 0
            got = distilbert.embeddings(ids)
            difference = (expected - got).abs().max().item()
            print(f"{architecture} {dtype}: single-segment embeddings, max difference {difference:.1e}")
            bound = tolerances.INIT_FOLD_FP32 if dtype == torch.float32 else tolerances.INIT_FOLD_FP64
            assert difference <= bound
            if architecture == "BertForMaskedLM":  # the MLM head moved with its weights
                hidden = torch.randn(2, 5, TINY_BERT["hidden_size"], dtype=dtype)
                expected_logits = teacher_model.cls(hidden)
                got_logits = student.vocab_projector(student.vocab_layer_norm(
                    student.activation(student.vocab_transform(hidden))))  # fmt: skip
                logits_bound = tolerances.FP64 if dtype == torch.float64 else tolerances.FP32_LOGITS
                assert (expected_logits - got_logits).abs().max().item() <= logits_bound


def test_transformers_loads_the_real_minilm_student(minilm_path, tmp_path, transformers):
    student_dir = init_student(minilm_path, tmp_path / "student")
    _, info = transformers.DistilBertModel.from_pretrained(student_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
