"""The teacher's shape: a random BertForPreTraining at bert-base-multilingual-cased's full size.

12 layers, hidden 768, 12 heads, FFN 3072, vocab 119,547, 2 token types, 512 positions: built
once for this module by transformers, every parameter perturbed, saved as safetensors (the tied
MLM decoder absent from the file, as transformers 5 writes it). Compared with max differences
printed:
  * MLM and NSP logits on a padded batch of sentence pairs (token types 0 and 1): float32
    within 1e-4 (or twice transformers' own float32 error from our float64 oracle, if larger),
    float64 against torch `.double()` within 1e-10;
  * the fill-mask pipeline against transformers' fill-mask pipeline on the same directory.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
from max_diffs import MaxDiffs

from numpy_distilbert import AutoModelForMaskedLM, BertForMaskedLM, BertForPreTraining, pipeline, tolerances

pytestmark = pytest.mark.slow

LENGTHS = ((20, 30), (5, 9), (60, 40), (3, 2))  # (first segment, second segment) per row
MEASURED = MaxDiffs("BertForPreTraining, real multilingual size")  # printed, then tabled at the end
record = MEASURED.record


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    MEASURED.print_summary()


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, shared_model_path, torch_module, transformers_module):
    from checkpoints import BERT_REAL_SIZE, build_bert_checkpoint
    from safetensors import safe_open

    directory = tmp_path_factory.mktemp("bert_real_size")
    # A peaked MLM distribution (as test_pipeline_tasks does), so fill-mask's ranking is stable.
    torch_model = build_bert_checkpoint(
        directory, "BertForPreTraining", seed=2025,
        scale_up=lambda m: m.cls.predictions.transform.LayerNorm.weight.mul_(6), **BERT_REAL_SIZE,
    )  # fmt: skip
    with safe_open(str(directory / "model.safetensors"), "np") as f:
        assert "cls.predictions.decoder.weight" not in set(f.keys()), "the tied decoder should be absent"
    for name in ("vocab.txt", "tokenizer_config.json"):
        (directory / name).symlink_to(shared_model_path / name)
    torch_model.set_attn_implementation("eager")
    return SimpleNamespace(
        directory=directory,
        torch=torch_model,
        ours=BertForPreTraining.from_pretrained(directory),
        oracle=BertForPreTraining.from_pretrained(directory, dtype=np.float64),
    )


def make_pairs(vocab_size: int, seed: int) -> SimpleNamespace:
    """[CLS] a [SEP] b [SEP] of random ids, padded with 0; types 0 then 1, 0 on padding."""
    rng = np.random.default_rng(seed)
    width = max(a + b + 3 for a, b in LENGTHS)
    ids, types, mask = (np.zeros((len(LENGTHS), width), dtype=np.int64) for _ in range(3))
    for row, (a, b) in enumerate(LENGTHS):
        n = a + b + 3
        ids[row, :n] = rng.integers(1000, vocab_size, size=n)
        ids[row, 0], ids[row, a + 1], ids[row, n - 1] = 101, 102, 102
        types[row, a + 2 : n] = 1
        mask[row, :n] = 1
    return SimpleNamespace(ids=ids, types=types, mask=mask)


def run_torch(torch, model, batch):
    with torch.no_grad():
        out = model(
            torch.from_numpy(batch.ids),
            attention_mask=torch.from_numpy(batch.mask),
            token_type_ids=torch.from_numpy(batch.types),
        )
    return out.prediction_logits.numpy(), out.seq_relationship_logits.numpy()


def test_float32_mlm_and_nsp_logits(teacher, torch_module):
    batch = make_pairs(119547, seed=3)
    theirs_mlm, theirs_nsp = run_torch(torch_module, teacher.torch, batch)
    ours = teacher.ours(batch.ids, batch.mask, batch.types)
    exact = teacher.oracle(batch.ids, batch.mask, batch.types)
    keep = batch.mask.astype(bool)  # padded positions' logits are not compared (nobody reads them)
    for name, mine, theirs, oracle in (
        ("MLM", ours.prediction_logits[keep], theirs_mlm[keep], exact.prediction_logits[keep]),
        ("NSP", ours.seq_relationship_logits, theirs_nsp, exact.seq_relationship_logits),
    ):
        own = record(f"fp32 {name} logits (transformers fp32 vs our fp64)", theirs, oracle)
        limit = tolerances.derived_bound(tolerances.FP32_LOGITS, own)
        assert record(f"fp32 {name} logits", mine, theirs) <= limit


def test_float64_mlm_and_nsp_logits(teacher, torch_module):
    batch = make_pairs(119547, seed=4)
    reference = copy.deepcopy(teacher.torch).double().eval()
    theirs_mlm, theirs_nsp = run_torch(torch_module, reference, batch)
    del reference
    exact = teacher.oracle(batch.ids, batch.mask, batch.types)
    assert exact.prediction_logits.dtype == np.float64 and theirs_mlm.dtype == np.float64
    keep = batch.mask.astype(bool)
    assert record("fp64 MLM logits", exact.prediction_logits[keep], theirs_mlm[keep]) <= tolerances.FP64
    assert record("fp64 NSP logits", exact.seq_relationship_logits, theirs_nsp) <= tolerances.FP64


def test_positions_path(teacher):
    batch = make_pairs(119547, seed=5)
    rows, cols = np.nonzero(batch.ids == 102)
    selected = teacher.oracle(batch.ids, batch.mask, batch.types, positions=(rows, cols))
    full = teacher.oracle(batch.ids, batch.mask, batch.types)
    assert record("fp64 positions path vs full", selected.prediction_logits,
                  full.prediction_logits[rows, cols]) <= tolerances.FP64  # fmt: skip


FILL_INPUTS = [
    "Hello I'm a [MASK] model.",
    "Paris est la [MASK] de la France.",
    "Der [MASK] ist heute sehr [MASK].",
]


def test_fill_mask_equals_transformers(teacher, transformers_module):
    """Our fill-mask (BertForMaskedLM, chosen by model_type) equals transformers' on the directory."""
    directory = str(teacher.directory)
    assert AutoModelForMaskedLM.model_class_for(directory) is BertForMaskedLM
    theirs = transformers_module.pipeline("fill-mask", model=directory, tokenizer=directory)
    # The decoded sequence's space clean-up is the tokenizer's setting; both sides get the same.
    clean_up = bool(theirs.tokenizer.clean_up_tokenization_spaces)
    ours = pipeline("fill-mask", model=directory, clean_up_tokenization_spaces=clean_up)
    assert type(ours.model) is BertForMaskedLM
    worst = 0.0
    for text in FILL_INPUTS:
        want, got = theirs(text), ours(text)
        rows_want = want if isinstance(want[0], list) else [want]
        rows_got = got if isinstance(got[0], list) else [got]
        for w_row, g_row in zip(rows_want, rows_got, strict=True):
            assert [e["token"] for e in g_row] == [e["token"] for e in w_row], text
            assert [e["token_str"] for e in g_row] == [e["token_str"] for e in w_row], text
            assert [e["sequence"] for e in g_row] == [e["sequence"] for e in w_row], text
            worst = max(worst, max(abs(g["score"] - w["score"]) for g, w in zip(g_row, w_row, strict=True)))
    MEASURED["fill-mask max |score diff|"] = worst
    assert worst <= 1e-5
