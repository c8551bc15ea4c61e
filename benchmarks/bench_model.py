"""numpy-distilbert against transformers-on-PyTorch, side by side, on this machine's CPU.

Run by hand (not part of the test suite):

    python benchmarks/bench_model.py [--repeats 7] [--threads N] [--skip-cold]

Both libraries run in the same invocation with the same thread count (NumPy's BLAS
threads = `torch.set_num_threads`), interleaved, on the same random-weight checkpoint at
the real size (written with numpy alone by `numpy_distilbert.random_weights`). Each row
reports medians and the ratio numpy-distilbert / transformers (lower is better) and
prints a markdown table at the end.

Needs torch and transformers (the `test` extra).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "models" / "distilbert-base-multilingual-cased"
SENTENCE = "Hello I'm a [MASK] model."


def blas_threads() -> int:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            return int(os.environ[var])
    return os.cpu_count() or 1


def interleaved(fns: dict[str, callable], repeats: int) -> dict[str, float]:
    """Median seconds per function, calling them in turn (after one warm-up call each)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def encoder_flops(batch: int, length: int, dim: int = 768, ffn: int = 3072, layers: int = 6) -> float:
    """Multiply-adds x 2 of the encoder's matrix products (projections, FFN, attention)."""
    tokens = batch * length
    per_token = 4 * dim * dim + 2 * dim * ffn  # q, k, v, out + lin1, lin2
    attention = 2 * length * dim  # q·kᵀ and weights·v, per token
    return 2.0 * layers * tokens * (per_token + attention)


def gemm_rate(np, repeats: int) -> float:
    """NumPy's own float32 GEMM rate on a 1024x768 @ 768x3072 product, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 768), dtype=np.float32)
    b = rng.standard_normal((768, 3072), dtype=np.float32)
    seconds = interleaved({"gemm": lambda: a @ b}, repeats)["gemm"]
    return 2 * 1024 * 768 * 3072 / seconds / 1e9


COLD_CHILD = r"""
import sys, time
start = time.perf_counter()
impl, model_dir, big = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sentence = "Hello I'm a [MASK] model."
if impl == "ours":
    import numpy as np
    from numpy_distilbert import pipeline
    fill = pipeline("fill-mask", model=model_dir)
    fill(sentence)
    answered = time.perf_counter() - start
    if big:
        ids = np.random.default_rng(0).integers(1000, 100000, (32, 128))
        fill.model.distilbert(ids)
else:
    import torch
    from transformers import pipeline
    torch.set_num_threads(int(sys.argv[4]))
    fill = pipeline("fill-mask", model=model_dir, tokenizer=model_dir)
    fill(sentence)
    answered = time.perf_counter() - start
    if big:
        with torch.no_grad():
            fill.model(torch.randint(1000, 100000, (32, 128)))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so a child of this big
# benchmark process would report at least the parent's size.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(answered, peak_kb / 1024)
"""


def cold_start(model_dir: Path, threads: int, repeats: int) -> dict[str, tuple[float, float]]:
    """(seconds to first answer incl. interpreter start, peak RSS MB after a 32x128 run)."""
    results = {}
    for impl in ("ours", "transformers"):
        walls, rss = [], []
        for i in range(repeats):
            big = "1" if i == 0 else "0"
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", COLD_CHILD, impl, str(model_dir), big, str(threads)],
                capture_output=True, text=True, check=True,
            ).stdout.split()
            wall = time.perf_counter() - start
            if big == "1":
                rss.append(float(out[1]))
            else:
                walls.append(wall)
        results[impl] = (statistics.median(walls), rss[0])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=blas_threads())
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold-start/RSS rows")
    parser.add_argument("--model-dir", type=Path, help="reuse a checkpoint directory")
    args = parser.parse_args()

    import numpy as np
    import torch
    import transformers

    from numpy_distilbert import AutoModel, pipeline
    from numpy_distilbert.random_weights import write_random_checkpoint

    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    model_dir = args.model_dir or Path(tmp.name)
    if not (model_dir / "model.safetensors").is_file():
        write_random_checkpoint(model_dir, seed=0, vocab_dir=SHARED if SHARED.is_dir() else None)
    print(f"numpy {np.__version__}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"threads {args.threads}, checkpoint {model_dir}")

    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, ours: float, theirs: float, unit: str = "ms", scale: float = 1000.0) -> None:
        ours_text, theirs_text = f"{ours * scale:.1f} {unit}", f"{theirs * scale:.1f} {unit}"
        rows.append((name, ours_text, theirs_text, f"{ours / theirs:.2f}"))
        print(rows[-1])

    # The same line on both sides: AutoModel is the bare encoder of the (MLM) checkpoint.
    ours_model = AutoModel.from_pretrained(model_dir)
    theirs_model = transformers.AutoModel.from_pretrained(model_dir).eval()
    rng = np.random.default_rng(0)
    rate = gemm_rate(np, args.repeats)
    gflops = []
    for batch, length in [(1, 128), (8, 128), (32, 128), (1, 512)]:
        ids = rng.integers(1000, 100000, (batch, length))
        ids_t = torch.from_numpy(ids)

        def theirs(ids_t=ids_t):
            with torch.no_grad():
                theirs_model(ids_t)

        t = interleaved({"ours": lambda ids=ids: ours_model(ids), "theirs": theirs}, args.repeats)
        row(f"encoder forward {batch}×{length}", t["ours"], t["theirs"])
        gflops.append((f"{batch}×{length}", encoder_flops(batch, length) / t["ours"] / 1e9,
                       encoder_flops(batch, length) / t["theirs"] / 1e9))

    ours_fill = pipeline("fill-mask", model=model_dir)
    theirs_fill = transformers.pipeline("fill-mask", model=str(model_dir), tokenizer=str(model_dir))
    t = interleaved(
        {"ours": lambda: ours_fill(SENTENCE), "theirs": lambda: theirs_fill(SENTENCE)}, args.repeats
    )
    row("fill-mask end to end, one sentence, warm", t["ours"], t["theirs"])

    if not args.skip_cold:
        cold = cold_start(model_dir, args.threads, max(3, args.repeats // 2))
        row("cold start: fresh process answers one fill-mask", cold["ours"][0], cold["transformers"][0],
            unit="s", scale=1.0)
        rows.append(("peak RSS of that process after a 32×128 run", f"{cold['ours'][1]:.0f} MB",
                     f"{cold['transformers'][1]:.0f} MB", f"{cold['ours'][1] / cold['transformers'][1]:.2f}"))
        print(rows[-1])

    print()
    print("| row | numpy-distilbert | transformers | ratio |")
    print("|---|---|---|---|")
    for name, ours, theirs, ratio in rows:
        print(f"| {name} | {ours} | {theirs} | {ratio} |")
    print()
    print(f"NumPy float32 GEMM (1024×768 @ 768×3072) in this run: {rate:.0f} GFLOP/s")
    print("| encoder | numpy-distilbert GFLOP/s | % of GEMM rate | transformers GFLOP/s |")
    print("|---|---|---|---|")
    for name, ours, theirs in gflops:
        print(f"| {name} | {ours:.0f} | {100 * ours / rate:.0f}% | {theirs:.0f} |")


if __name__ == "__main__":
    main()
