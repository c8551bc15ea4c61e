"""`verify`'s verdict: PASS means a stated tolerance was met, and the tolerances are the
project's (`numpy_distilbert.tolerances`), not constants of its own.

Run in-process on a tiny random checkpoint; changing a limit in `tolerances` must change
the verdict, which it cannot if verify keeps private copies of the numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from numpy_distilbert import tolerances, verify
from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.random_weights import write_random_checkpoint

TEXTS = ["Hello I'm a [MASK] model.", "Zweiter Satz, etwas länger."]


@pytest.fixture(scope="module")
def mlm(tmp_path_factory, shared_model_path) -> Path:
    config = DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    return write_random_checkpoint(tmp_path_factory.mktemp("verify") / "mlm", config, seed=3,
                                   architecture="DistilBertForMaskedLM", vocab_dir=shared_model_path)


def _against_transformers(result: dict) -> list[dict]:
    return [c for c in result["comparisons"] if "transformers" in c["name"]]


def test_pass_means_the_tolerances_module_was_met(mlm, transformers_module):
    result = verify.run_verification(mlm, TEXTS)
    fp32, fp64 = _against_transformers(result)
    for comparison in (fp32, fp64):
        print(comparison["name"], [(r["layer"], f"{r['max_abs']:.2e}") for r in comparison["rows"]])
    assert fp32["tolerance"] == {"hidden": tolerances.FP32_HIDDEN, "logits": tolerances.FP32_LOGITS}
    assert fp64["tolerance"] == {"hidden": tolerances.FP64, "logits": tolerances.FP64}
    assert result["passed"] is True and result["result"] == "PASS"
    assert verify.format_report(result).rstrip().endswith("result: PASS")


def test_a_tighter_limit_in_tolerances_fails_verify(mlm, transformers_module, monkeypatch):
    # No difference is below a negative limit: every float64 row must now fail.
    monkeypatch.setattr(tolerances, "FP64", -1.0)
    result = verify.run_verification(mlm, TEXTS)
    fp32, fp64 = _against_transformers(result)
    assert fp32["passed"] is True
    assert fp64["passed"] is False and all(row["tolerance"] == -1.0 for row in fp64["rows"])
    assert result["passed"] is False and result["result"] == "FAIL"
    assert verify.format_report(result).rstrip().endswith("result: FAIL")


def test_nothing_checked_is_not_a_pass(mlm):
    result = verify.run_verification(mlm, TEXTS, with_transformers=False)
    (own,) = result["comparisons"]
    assert own["tolerance"] is None and own["passed"] is None
    assert result["passed"] is None and result["result"] == "NOT CHECKED"
    report = verify.format_report(result)
    assert "PASS" not in report
    last = report.rstrip().splitlines()[-1]
    assert last.startswith("result: NOT CHECKED against transformers") and "--no-transformers" in last
