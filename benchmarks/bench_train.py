"""One training step (forward + backward + AdamW), numpy-distilbert against torch eager.

Run by hand (not part of the test suite):

    python benchmarks/bench_train.py [--repeats 3] [--threads N] [--cases mlm,classification] [--no-profile]

Cases, on random-weight checkpoints of the real DistilmBERT size (written with numpy alone by
`numpy_distilbert.random_weights`, 135M parameters, vocabulary 119,547):

* mlm: DistilBertForMaskedLM, batch 8 x 128 tokens, 15% of the positions labelled;
* classification: DistilBertForSequenceClassification (2 labels), batch 16 x 128.

A step is what a training loop does: the loss with dropout on (torch: `model.train()`; ours:
`dropout_rng`), its gradients, then AdamW (torch.optim.AdamW / numpy_distilbert.AdamW, default
hyper-parameters, every parameter). Each implementation runs in its own subprocess with the
same thread count (NumPy's BLAS threads through the *_NUM_THREADS variables;
torch.set_num_threads); both are loaded side by side and their steps alternate (one warm-up
step each, then --repeats rounds), so that a busy shared machine slows both alike. Peak memory
is each process's own VmHWM from /proc (the resident high-water mark: the weights, the
optimizer's moments, the gradients and every activation). Times are the median (and the
fastest) step; the ratio is ours / torch (lower is better). Then, unless --no-profile, one
step of ours under cProfile (top three functions by own time) and one of torch's under
torch.profiler (top three operators by self CPU time), each in a fresh process.

Needs torch and transformers (the `test` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CASES = {
    # name: (architecture, batch, length, labels)
    "mlm": ("DistilBertForMaskedLM", 8, 128, "mlm"),
    "classification": ("DistilBertForSequenceClassification", 16, 128, "sequence"),
}

CHILD = r"""
import json, statistics, sys, time
from pathlib import Path
impl, model_dir, kind, batch, length, threads, profile = sys.argv[1:8]
batch, length, threads, profile = int(batch), int(length), int(threads), profile == "1"
import numpy as np

rng = np.random.default_rng(0)
ids = rng.integers(1000, 100000, (batch, length))
mask = np.ones((batch, length), dtype=np.int64)
if kind == "mlm":
    labels = np.full((batch, length), -100)
    chosen = rng.random((batch, length)) < 0.15
    labels[chosen] = rng.integers(1000, 100000, int(chosen.sum()))
else:
    labels = rng.integers(0, 2, batch)


def peak_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024


top = []
if impl == "ours":
    from numpy_distilbert import AdamW, load_model

    model = load_model(model_dir)
    optimizer = AdamW(model.named_parameters())
    dropout = np.random.default_rng(1)

    def step():
        loss, grads = model.loss_and_grads(ids, attention_mask=mask, labels=labels, dropout_rng=dropout)
        optimizer.step(grads)
        return loss

    if profile:
        import cProfile, pstats
        step()
        profiler = cProfile.Profile()
        profiler.enable()
        step()
        profiler.disable()
        stats = pstats.Stats(profiler)
        total = sum(row[2] for row in stats.stats.values())
        rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:3]
        top = [(f"{Path(f).name}:{line} {name}", own, own / total)
               for (f, line, name), (_, _, own, _, _) in rows]
else:
    import torch
    import transformers

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    auto = transformers.AutoModelForSequenceClassification
    auto = transformers.AutoModelForMaskedLM if kind == "mlm" else auto
    model = auto.from_pretrained(model_dir).train()
    optimizer = torch.optim.AdamW(model.parameters())
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    inputs = {name: torch.tensor(value) for name, value in inputs.items()}

    def step():
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile
        step()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events)
        top = [(e.key, e.self_cpu_time_total / 1e6, e.self_cpu_time_total / total) for e in events[:3]]

print("ready", flush=True)
for command in sys.stdin:  # the parent alternates "step" between the two children
    if command.strip() == "step":
        start = time.perf_counter()
        step()
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
    else:
        break
print(json.dumps({"peak_mb": peak_mb(), "top": top}), flush=True)
"""


class Child:
    """One implementation in its own process: loads the model, then runs a step per request."""

    def __init__(self, impl: str, model_dir: Path, case: str, threads: int, profile: bool):
        _, batch, length, kind = CASES[case]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        argv = [impl, str(model_dir), kind, str(batch), str(length), str(threads), "1" if profile else "0"]
        self.name = f"{impl} {case}"
        self.process = subprocess.Popen([sys.executable, "-c", CHILD, *argv], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
        self._expect("ready")

    def _expect(self, prefix: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(prefix):
            raise RuntimeError(f"{self.name}: the child said {line!r} (its stderr is above)")
        return line

    def step(self) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write("step\n")
        self.process.stdin.flush()
        return json.loads(self._expect("{"))["seconds"]

    def finish(self) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        result = json.loads(self._expect("{"))
        self.process.wait()
        return result


def measure(model_dir: Path, case: str, repeats: int, threads: int) -> dict[str, dict]:
    """Both children loaded side by side; one warm-up step each, then `repeats` alternating steps."""
    children = {impl: Child(impl, model_dir, case, threads, False) for impl in ("ours", "torch")}
    times: dict[str, list[float]] = {impl: [] for impl in children}
    for round_ in range(repeats + 1):
        for impl, child in children.items():
            seconds = child.step()
            if round_:
                times[impl].append(seconds)
    results = {}
    for impl, child in children.items():
        results[impl] = child.finish()
        results[impl].update(seconds=statistics.median(times[impl]), fastest=min(times[impl]))
    return results


def profile(model_dir: Path, case: str, impl: str, threads: int) -> list:
    return Child(impl, model_dir, case, threads, True).finish()["top"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from numpy_distilbert.random_weights import write_random_checkpoint

    rows, profiles = [], []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        for case in args.cases.split(","):
            architecture = CASES[case][0]
            model_dir = write_random_checkpoint(Path(scratch) / case, seed=0, architecture=architecture)
            result = measure(model_dir, case, args.repeats, args.threads)  # fmt: skip
            ours, torch = result["ours"], result["torch"]
            _, batch, length, _ = CASES[case]
            rows.append((f"{case} {batch}x{length}", ours, torch))
            print(f"{case}: ours {ours['seconds']:.2f} s, {ours['peak_mb']:.0f} MB; "
                  f"torch {torch['seconds']:.2f} s, {torch['peak_mb']:.0f} MB", flush=True)  # fmt: skip
            if not args.no_profile:
                for impl in ("ours", "torch"):
                    profiles.append((case, impl, profile(model_dir, case, impl, args.threads)))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nOne training step (forward + backward + AdamW), {args.threads} threads, "
          f"median (fastest) of {args.repeats} steps; load average after: {load}\n")  # fmt: skip
    print("| case | ours (s) | torch (s) | time ratio | ours peak (MB) | torch peak (MB) | memory ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, ours, torch in rows:
        ratio = ours["seconds"] / torch["seconds"]
        timing = (
            f"{ours['seconds']:.2f} ({ours['fastest']:.2f}) | {torch['seconds']:.2f} ({torch['fastest']:.2f})"
        )
        memory = f"{ours['peak_mb']:.0f} | {torch['peak_mb']:.0f} | {ours['peak_mb'] / torch['peak_mb']:.2f}"
        print(f"| {name} | {timing} | {ratio:.2f} | {memory} |")
    for case, impl, top in profiles:
        print(f"\n{case}, {impl}: top three by own time")
        for name, seconds, share in top:
            print(f"  {seconds:7.3f} s  {share:5.1%}  {name}")


if __name__ == "__main__":
    main()
