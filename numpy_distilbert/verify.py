"""The numerical-verification harness behind `numpy-distilbert verify`.

For each text, the model runs four times: ours in float32 and float64, and, when torch and
transformers are installed, transformers' in float32 and float64 on the same checkpoint and
the same token ids. Every layer's output is compared (the embeddings, each transformer
block, then the logits of the checkpoint's head) over the real tokens, and the largest
differences are reported:

    float32 vs float64                  how much float32 rounding moves our own numbers
                                        (measured only: there is no right answer to meet)
    float32 vs transformers float32     tolerance: hidden states 1e-5, logits 1e-4
    float64 vs transformers float64     tolerance: 1e-10 everywhere

(the tolerances are those of `numpy_distilbert.tolerances`). The verdict, `passed`:
True only when a comparison with a tolerance ran and every one held; False when one did
not; None when nothing was checked against a tolerance (transformers not installed, or not
asked for), so that "not checked" can never read as "passed".

"max rel" is the largest absolute difference divided by the largest magnitude of the
reference at that layer: the error relative to the layer's scale (an elementwise ratio
would be dominated by values near zero). A layer of ours holding NaN or infinity is an
error (ValueError) naming the layer: there is no difference to measure.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from numpy_distilbert import tolerances
from numpy_distilbert.auto import model_class_for
from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.heads import DistilBertForMultipleChoice
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel

DEFAULT_TEXT = "Hello I'm a [MASK] model."


def _tolerance(dtype: str) -> dict[str, float]:
    """The project's limits for ours vs transformers in `dtype`, read when a comparison is made."""
    if dtype == "float32":
        return {"hidden": tolerances.FP32_HIDDEN, "logits": tolerances.FP32_LOGITS}
    return {"hidden": tolerances.FP64, "logits": tolerances.FP64}


# ------------------------------------------------------------------ tracing
def _trace_ours(model: Any, ids: list[int]) -> list[tuple[str, np.ndarray]]:
    """[(layer name, output [L, ...])]: embeddings, block 1..n, and the head's logits if any."""
    batch = np.asarray([ids], dtype=np.int64)  # [1, L]
    encoder = model if isinstance(model, DistilBertModel) else model.distilbert
    hidden = encoder(batch, output_hidden_states=True).hidden_states
    assert hidden is not None  # asked for: output_hidden_states=True
    rows = [("embeddings", hidden[0][0])] + [(f"block {i}", h[0]) for i, h in enumerate(hidden[1:], 1)]
    if isinstance(model, DistilBertModel):
        return rows
    if isinstance(model, DistilBertForMaskedLM):
        logits = model.mlm_logits(hidden[-1])[0]  # [L, V]
    elif isinstance(model, DistilBertForMultipleChoice):
        logits = model(batch[:, None, :]).logits[0]  # one choice: [1]
    else:
        out = model(batch)
        if hasattr(out, "start_logits"):
            logits = np.stack([out.start_logits[0], out.end_logits[0]], axis=-1)  # [L, 2]
        else:
            logits = out.logits[0]  # [C] or [L, C]
    return [*rows, ("logits", logits)]


def _check_finite(rows: list[tuple[str, np.ndarray]], text_index: int, dtype: str) -> None:
    """Our traced layers must be finite: NaN would make every comparison vacuously silent."""
    for layer, values in rows:
        finite = np.isfinite(values)
        if not finite.all():
            bad = values[~finite]
            found = {"NaN": np.isnan(bad), "inf": bad > 0, "-inf": bad < 0}  # NaN compares False to 0
            kinds = [kind for kind, hits in found.items() if hits.any()]
            raise ValueError(
                f"model produced non-finite values ({', '.join(kinds)}) at the {layer} layer in {dtype} "
                f"for text {text_index}: the checkpoint's weights may be corrupt"
            )


def _trace_reference(torch: Any, model: Any, ids: list[int], multiple_choice: bool) -> list[np.ndarray]:
    """The same rows from a transformers model, as NumPy arrays."""
    batch = torch.tensor([ids], dtype=torch.long)
    if multiple_choice:
        batch = batch[:, None, :]
    with torch.no_grad():
        out = model(input_ids=batch, output_hidden_states=True)
    rows = [h.reshape(-1, h.shape[-1])[: len(ids)].numpy() for h in out.hidden_states]
    if hasattr(out, "start_logits"):
        rows.append(torch.stack([out.start_logits[0], out.end_logits[0]], dim=-1).numpy())
    elif hasattr(out, "logits"):
        rows.append(out.logits[0].numpy())
    return rows


class _Max:
    """Running maxima of |a - b| and |b| for one layer, over all texts."""

    def __init__(self) -> None:
        self.abs = 0.0
        self.scale = 0.0

    def add(self, ours: np.ndarray, reference: np.ndarray) -> None:
        ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
        if ours.shape != reference.shape:
            raise ValueError(f"shapes differ: {ours.shape} vs reference {reference.shape}")
        self.abs = max(self.abs, float(np.abs(ours - reference).max()))
        self.scale = max(self.scale, float(np.abs(reference).max()))

    def row(self, layer: str) -> dict[str, Any]:
        return {"layer": layer, "max_abs": self.abs, "max_rel": self.abs / self.scale if self.scale else 0.0}


def _comparison(
    name: str, layers: list[str], maxima: list[_Max], tolerance: dict[str, float] | None
) -> dict[str, Any]:
    rows = [m.row(layer) for layer, m in zip(layers, maxima, strict=True)]
    passed = None
    if tolerance is not None:
        for row in rows:
            limit = tolerance["logits"] if row["layer"] == "logits" else tolerance["hidden"]
            row["tolerance"] = limit
            row["ok"] = row["max_abs"] <= limit
        passed = all(row["ok"] for row in rows)
    return {"name": name, "rows": rows, "tolerance": tolerance, "passed": passed}


# --------------------------------------------------------------------- run
def _load_transformers() -> tuple[Any, Any, str | None]:
    """(torch, transformers, None), or (None, None, why they cannot be used)."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        return None, None, f"torch and transformers are not installed: {exc}"
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # no "Loading weights" bar in the report
    return torch, transformers, None


def run_verification(path: str | Path, texts: list[str], with_transformers: bool = True) -> dict[str, Any]:
    """Measure float32 vs float64, and both against transformers when it is installed.

    Returns a JSON-able dict: the model, the input size, a list of comparisons (each with
    per-layer rows {layer, max_abs, max_rel} and, against transformers, the tolerance and
    whether it held), why transformers was not compared (or None), and `passed`.
    """
    from numpy_distilbert._tokenizer_package import wordpiece_tokenizer_class

    path = Path(path)
    config = DistilBertConfig.from_pretrained(path)
    cls = model_class_for(config)
    ours32 = cls.from_pretrained(path, dtype=np.float32)
    ours64 = cls.from_pretrained(path, dtype=np.float64)
    tok = wordpiece_tokenizer_class().from_pretrained(path)
    encoded = [tok.encode(t, truncation=True, max_length=config.max_position_embeddings) for t in texts]

    torch: Any = None
    transformers: Any = None
    skipped: str | None = "not requested: --no-transformers"
    if with_transformers:
        torch, transformers, skipped = _load_transformers()
    if transformers is not None:
        name = cls.__name__ if hasattr(transformers, cls.__name__) else "DistilBertModel"
        ref32 = getattr(transformers, name).from_pretrained(path).eval()
        ref64 = copy.deepcopy(ref32).to(torch.float64)

    layers: list[str] = []
    own, vs32, vs64 = [], [], []
    for index, ids in enumerate(encoded):
        ours_32, ours_64 = _trace_ours(ours32, ids), _trace_ours(ours64, ids)
        _check_finite(ours_32, index, "float32")
        _check_finite(ours_64, index, "float64")
        if not layers:
            layers = [layer for layer, _ in ours_32]
            own, vs32, vs64 = ([_Max() for _ in layers] for _ in range(3))
        for m, (_, a), (_, b) in zip(own, ours_32, ours_64, strict=True):
            m.add(a, b)
        if transformers is not None:
            multiple_choice = isinstance(ours32, DistilBertForMultipleChoice)
            for ref, ours, maxima in ((ref32, ours_32, vs32), (ref64, ours_64, vs64)):
                reference = _trace_reference(torch, ref, ids, multiple_choice)
                for m, (_, a), b in zip(maxima, ours, reference, strict=True):
                    m.add(a, b)

    comparisons = [_comparison("float32 vs float64 (numpy-distilbert)", layers, own, None)]
    if transformers is not None:
        version = transformers.__version__
        comparisons.append(_comparison(
            f"float32 vs transformers {version} float32", layers, vs32, _tolerance("float32")
        ))
        comparisons.append(_comparison(
            f"float64 vs transformers {version} float64", layers, vs64, _tolerance("float64")
        ))
    passed = _verdict(comparisons)
    return {
        "model": str(path),
        "architecture": cls.__name__,
        "n_layers": config.n_layers,
        "dim": config.dim,
        "texts": len(texts),
        "tokens": sum(len(ids) for ids in encoded),
        "comparisons": comparisons,
        "transformers": None if transformers is None else transformers.__version__,
        "transformers_skipped": skipped,
        "passed": passed,
        "result": "PASS" if passed else "FAIL" if passed is False else "NOT CHECKED",
    }


def _verdict(comparisons: list[dict[str, Any]]) -> bool | None:
    """True when every comparison with a tolerance held, False when one did not, None with none."""
    checked = [c["passed"] for c in comparisons if c["passed"] is not None]
    if not checked:
        return None
    return all(checked)


def not_checked_reason(result: dict[str, Any]) -> str:
    """Why `result` (with `passed` None) is no verdict, as one line."""
    return (
        f"NOT CHECKED against transformers ({result['transformers_skipped']}): "
        f"float32 vs float64 measured only, no tolerance applied"
    )


def format_report(result: dict[str, Any]) -> str:
    """The result of `run_verification` as readable tables."""
    lines = [
        "numpy-distilbert verify",
        f"  model   {result['model']}",
        f"          {result['architecture']}: {result['n_layers']} layers, dim {result['dim']}",
        f"  input   {result['texts']} text(s), {result['tokens']} tokens",
        "",
    ]
    for comparison in result["comparisons"]:
        tolerance = comparison["tolerance"]
        title = comparison["name"]
        if tolerance is not None:
            if tolerance["hidden"] == tolerance["logits"]:
                title += f"   (tolerance {tolerance['hidden']:.0e})"
            else:
                title += (f"   (tolerance: hidden states {tolerance['hidden']:.0e}, "
                          f"logits {tolerance['logits']:.0e})")
        lines.append(title)
        header = f"  {'layer':<12}{'max abs':>12}{'max rel':>12}"
        lines.append(header + ("   check" if tolerance is not None else ""))
        for row in comparison["rows"]:
            line = f"  {row['layer']:<12}{row['max_abs']:>12.3e}{row['max_rel']:>12.3e}"
            if tolerance is not None:
                line += "   ok" if row["ok"] else "   FAIL"
            lines.append(line)
        if comparison["passed"] is not None:
            lines.append(f"  {'PASS' if comparison['passed'] else 'FAIL'}")
        lines.append("")
    if result["transformers"] is None:
        lines.append(f"transformers comparison: not run: {result['transformers_skipped']}.")
        if "not installed" in (result["transformers_skipped"] or ""):
            lines.append("  To compare: pip install torch==2.13.0 'transformers>=5,<6'")
        lines.append("")
    lines.append("max rel = max abs / largest |value| of the reference at that layer")
    if result["passed"] is None:
        lines.append(f"result: {not_checked_reason(result)}")
    else:
        lines.append(f"result: {result['result']}")
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_TEXT", "format_report", "not_checked_reason", "run_verification"]
