"""Corpus jobs on this machine: processes x BLAS threads, memory over a long input, search latency.

Run by hand (not part of the test suite):

    python benchmarks/bench_jobs.py throughput [--lines 256] [--batch-sizes 8,32] [--repeats 2]
    python benchmarks/bench_jobs.py memory [--lines 1000000] [--workers 2]
    python benchmarks/bench_jobs.py search [--rows 1000000] [--dim 384]

throughput: for each task and batch size, lines per second of the same batches run
  * in one process with 2 BLAS threads (the reference: what `--workers 1` does by default here),
  * by 2 worker processes x 1 BLAS thread (`--workers 2`),
  * by 1 worker process x 2 BLAS threads (the worker machinery alone, for its overhead),
  timed from the first batch to the last answer (model loading excluded; every configuration
  loads once and runs one warm-up batch), configurations interleaved, the best of --repeats.
  Tasks: embed with the real all-MiniLM-L6-v2 (sentence-transformers pooling) and classify on a
  random-weight DistilBERT at the real size (written once to a temporary directory).
memory: peak resident memory (ru_maxrss, parent and workers) of `tokenize` and of `embed -o DIR`
  (a tiny random checkpoint) over 10 k, 100 k and --lines lines: flat means the same at every size.
search: a synthetic [rows, dim] float32 unit matrix written as shards, then `shards.top_k_cosine`
  over the memory-mapped shards (page cache warm), for 1 and 32 queries, top 10.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "models" / "distilbert-base-multilingual-cased"
WORDS = ("the a river bank money music city people small large quickly Paris Berlin report said new "
         "market school water light night house children world made found").split()
CONFIGS = {  # name: (mode, workers, threads)
    "1 process x 2 threads": ("single", 1, 2),
    "2 workers x 1 thread": ("pool", 2, 1),
    "1 worker x 2 threads": ("pool", 1, 2),
}


def sentences(count: int, seed: int = 0) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 28))) for _ in range(count)]


def env_with(threads: int) -> dict[str, str]:
    from numpy_distilbert.jobs import blas_thread_environment

    return {**os.environ, **blas_thread_environment(threads),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


# ---------------------------------------------------------------- throughput
def child_throughput(spec: dict) -> None:
    """(In a subprocess started with the configuration's BLAS threads.) Print lines per second."""
    from numpy_distilbert import cli
    from numpy_distilbert.jobs import InProcess, InputRecord, WorkerPool, batches

    records = [InputRecord(n, text) for n, text in enumerate(sentences(spec["lines"]), 1)]
    warm = [InputRecord(0, text) for text in sentences(spec["batch_size"], seed=1)]
    if spec["mode"] == "single":
        args = cli.build_parser().parse_args(spec["argv"])
        executor = InProcess(cli._job_runner(cli.COMMANDS_BY_NAME[args.command], args))
    else:
        worker = [sys.executable, "-c", "import sys; from numpy_distilbert.cli import serve_worker; "
                                        "sys.exit(serve_worker())"]
        executor = WorkerPool(worker, {"argv": spec["argv"], "signature": None}, spec["workers"],
                              env=env_with(spec["threads"]))
    # One warm-up batch per process first, in the same stream: the clock starts at its last answer.
    work = [warm] * spec["workers"] + list(batches(records, spec["batch_size"]))
    done, start = 0, 0.0
    for n, out in enumerate(executor.map(work), 1):
        if n == spec["workers"]:
            start = time.perf_counter()
        elif n > spec["workers"]:
            done += len(out)
    seconds = time.perf_counter() - start
    executor.close()
    print(json.dumps({"lines_per_second": done / seconds}))


def throughput(options: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "notebooks"))
    from notebook_setup import minilm_directory

    from numpy_distilbert.config import DistilBertConfig
    from numpy_distilbert.random_weights import write_random_checkpoint

    minilm = minilm_directory(verbose=False)
    root = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    print("writing a real-size random DistilBERT classifier ...", flush=True)
    distilbert = write_random_checkpoint(root / "cls", DistilBertConfig(), seed=0, vocab_dir=SHARED,
                                         architecture="DistilBertForSequenceClassification",
                                         id2label={0: "NEG", 1: "POS"})
    tasks = {"embed, all-MiniLM-L6-v2": ["embed", "-m", str(minilm)],
             "classify, DistilBERT (random, real size)": ["classify", "-m", str(distilbert)]}
    rows = []
    for task, argv in tasks.items():
        for batch_size in options.batch_sizes:
            lines = options.lines if "MiniLM" in task else options.lines // 2
            best: dict[str, float] = {}
            for _ in range(options.repeats):
                for name, (mode, workers, threads) in CONFIGS.items():
                    spec = {"mode": mode, "workers": workers, "threads": threads, "lines": lines,
                            "batch_size": batch_size, "argv": [*argv, "--batch-size", str(batch_size)]}
                    out = subprocess.run([sys.executable, __file__, "child", json.dumps(spec)],
                                         env=env_with(threads), capture_output=True, text=True, check=True)
                    rate = json.loads(out.stdout.splitlines()[-1])["lines_per_second"]
                    best[name] = max(best.get(name, 0.0), rate)
            reference = best["1 process x 2 threads"]
            row = [task, str(batch_size), str(lines)]
            row += [f"{best[n]:.1f} ({best[n] / reference:.2f}x)" for n in CONFIGS]
            rows.append(row)
            print(" | ".join(row), flush=True)
    print("\n| task | batch | lines | " + " | ".join(CONFIGS) + " |")
    print("|---|---|---|" + "---|" * len(CONFIGS))
    for row in rows:
        print("| " + " | ".join(row) + " |")


# -------------------------------------------------------------------- memory
def memory(options: argparse.Namespace) -> None:
    from numpy_distilbert.config import DistilBertConfig
    from numpy_distilbert.random_weights import write_random_checkpoint

    root = Path(tempfile.mkdtemp(prefix="bench-jobs-memory-"))
    tiny = DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64)
    model = write_random_checkpoint(root / "mlm", tiny, seed=0, vocab_dir=SHARED)
    corpus = root / "corpus.txt"
    with open(corpus, "w", encoding="utf-8") as stream:
        for text in sentences(options.lines, seed=3):
            stream.write(text + "\n")
    for command in ("tokenize", "embed"):
        for lines in sorted({10_000, 100_000, options.lines}):
            part = root / f"corpus-{lines}.txt"
            with open(corpus, encoding="utf-8") as source, open(part, "w", encoding="utf-8") as target:
                for _, text in zip(range(lines), source, strict=False):
                    target.write(text)
            target_path = root / (f"{command}-{lines}" + ("" if command == "embed" else ".jsonl"))
            argv = [command, "-m", str(model), "-i", str(part), "-o", str(target_path), "--no-progress",
                    "--batch-size", "64", "--workers", str(options.workers)]
            # A fresh interpreter per size, so that ru_maxrss is this size's own high-water mark.
            code = ("import json, resource, subprocess, sys, time\n"
                    "t = time.perf_counter()\n"
                    f"subprocess.run([sys.executable, '-m', 'numpy_distilbert', *{argv!r}])\n"
                    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
                    "print(json.dumps([time.perf_counter() - t, peak]))")
            out = subprocess.run([sys.executable, "-c", code], env=env_with(1), capture_output=True,
                                 text=True, check=True)
            seconds, peak = json.loads(out.stdout.splitlines()[-1])
            print(f"| {command} | {options.workers} | {lines:,} | {seconds:.1f} s | {peak:.0f} MB |",
                  flush=True)


# -------------------------------------------------------------------- search
def search(options: argparse.Namespace) -> None:
    import numpy as np

    from numpy_distilbert.shards import SEARCH_BLOCK_ROWS, top_k_cosine

    root = Path(tempfile.mkdtemp(prefix="bench-jobs-search-"))
    rng = np.random.default_rng(0)
    shard_rows = 65536
    paths = []
    for start in range(0, options.rows, shard_rows):
        block = rng.standard_normal((min(shard_rows, options.rows - start), options.dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        path = root / f"shard-{len(paths):05d}.npy"
        np.save(path, block, allow_pickle=False)
        paths.append(path)
    shards = [np.load(p, mmap_mode="r", allow_pickle=False) for p in paths]
    print(f"{options.rows:,} x {options.dim} float32 in {len(shards)} shards "
          f"({sum(p.stat().st_size for p in paths) / 1e9:.2f} GB), block {SEARCH_BLOCK_ROWS} rows")
    for queries in (1, 32):
        q = rng.standard_normal((queries, options.dim), dtype=np.float32)
        top_k_cosine(shards, q, 10)  # warm the page cache
        times = []
        for _ in range(options.repeats):
            start = time.perf_counter()
            top_k_cosine(shards, q, 10)
            times.append(time.perf_counter() - start)
        median = sorted(times)[len(times) // 2]
        print(f"| {queries} | {min(times) * 1000:.0f} ms | {median * 1000:.0f} ms |", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = options.rows * options.dim * 4 / 1e6
    # RSS counts the mapped file's pages that were read (shared page cache, dropped under memory
    # pressure); RssAnon is this process's own memory: the blocks and scores.
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    print(f"peak RSS of this process: {peak:.0f} MB (the matrix is {size:.0f} MB); now RssAnon "
          f"{status['RssAnon'].strip()}, RssFile {status['RssFile'].strip()}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        child_throughput(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("throughput", "memory", "search"))
    parser.add_argument("--lines", type=int, default=None)
    parser.add_argument("--batch-sizes", type=lambda t: [int(x) for x in t.split(",")], default=[8, 32])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    options = parser.parse_args()
    if options.what == "throughput":
        options.lines = options.lines or 256
        options.repeats = options.repeats or 2
        throughput(options)
    elif options.what == "memory":
        options.lines = options.lines or 1_000_000
        memory(options)
    else:
        options.repeats = options.repeats or 5
        search(options)


if __name__ == "__main__":
    main()
