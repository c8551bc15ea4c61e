"""Time erf and gelu (erf.py, through layers) on one FFN activation (32×128×3072, 12.6 M elements).

    python benchmarks/bench_erf.py [--threads N] [--repeat R]

Prints ns/element and ms per call, best of R, for float32 and float64, next to
torch.nn.functional.gelu (exact, approximate="none") on the same data. Ours always runs on one
thread (erf.py says why); --threads sets torch's thread count (default 1, the same).
A timing script, not a test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from numpy_distilbert import layers

SHAPE = (32, 128, 3072)  # batch × sequence × FFN width


def best_time(fn, repeat: int) -> tuple[float, float]:
    """Best wall-clock seconds and best CPU seconds (all threads) of `repeat` calls.

    CPU time is printed too because on a shared machine wall time also counts other processes.
    """
    fn()  # warm up (thread pool, scratch buffers)
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch's threads (ours use one)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x32 = (rng.standard_normal(SHAPE) * 1.5).astype(np.float32)  # FFN pre-activations are ~N(0, 1)
    n = x32.size
    rows = []
    for dtype in (np.float32, np.float64):
        x = x32.astype(dtype)
        name = np.dtype(dtype).name
        rows.append((f"numpy erf  {name}", best_time(lambda x=x: layers.erf(x), args.repeat)))
        rows.append((f"numpy gelu {name}", best_time(lambda x=x: layers.gelu(x), args.repeat)))
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
        gelu = torch.nn.functional.gelu
        for dtype in (torch.float32, torch.float64):
            t = torch.from_numpy(x32).to(dtype)
            timing = best_time(lambda t=t: gelu(t, approximate="none"), args.repeat)
            rows.append((f"torch gelu {str(dtype)[6:]}", timing))
    print(f"{n / 1e6:.1f} M elements, ours 1 thread, torch {args.threads} thread(s), best of {args.repeat}")
    print(f"{'':<20} {'wall ns/el':>10} {'wall ms':>9} {'cpu ns/el':>10} {'cpu ms':>9}")
    for name, (wall, cpu) in rows:
        print(f"{name:<20} {wall * 1e9 / n:10.2f} {wall * 1e3:9.1f} {cpu * 1e9 / n:10.2f} {cpu * 1e3:9.1f}")


if __name__ == "__main__":
    main()
