"""Shared plumbing of the tests/test_jobs_*.py modules: tiny checkpoints, a corpus with bad lines,
and the CLI started as a subprocess that a test can kill at a chosen moment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.random_weights import write_random_checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64)
LABELS = {0: "NEG", 1: "POS"}
WORDS = "the cat sat on a mat Paris Berlin café naïve straße 東京 running jumped quickly über".split()
# Every run of these tests uses one BLAS thread per process: OpenBLAS may round a product
# differently with another thread count, and the tests compare outputs byte for byte.
THREADS = ["--threads", "1"]


def write_models(root: Path, vocab_dir: Path) -> dict[str, Path]:
    config = DistilBertConfig(**TINY)
    return {
        "mlm": write_random_checkpoint(root / "mlm", config, seed=11, vocab_dir=vocab_dir),
        "cls": write_random_checkpoint(root / "cls", config, seed=12, vocab_dir=vocab_dir,
                                       architecture="DistilBertForSequenceClassification", id2label=LABELS),
    }


def write_corpus(path: Path, count: int, seed: int = 0, bad_every: int = 0) -> list[str]:
    """JSON lines {"id": "doc-N", "text": ...}; every `bad_every`-th line is broken JSON, and a blank
    line now and then (skipped, but it moves the line numbers)."""
    rng = np.random.default_rng(seed)
    lines = []
    for n in range(1, count + 1):
        if bad_every and n % bad_every == 0:
            lines.append('{"text": "unfinished')
        elif n % 37 == 0:
            lines.append("")
        else:
            text = " ".join(str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 24))))
            lines.append(json.dumps({"id": f"doc-{n}", "text": text}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def cli_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "numpy_distilbert", *map(str, args)]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}


def run_cli(*args: object, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), capture_output=True, text=True, encoding="utf-8",
                          env=cli_env(), stdin=subprocess.DEVNULL, timeout=600, **kwargs)


def start_cli(*args: object) -> subprocess.Popen:
    return subprocess.Popen(cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=cli_env())


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float = 300) -> bool:
    """SIGKILL `process` as soon as `ready()` holds (polled every millisecond).

    Returns whether it was killed while running (False: it had already finished)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and not ready():
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the job never reached the moment to kill it")
        time.sleep(0.001)
    running = process.poll() is None
    if running:
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    return running


def children_of(pid: int) -> list[int]:
    """The pids of a process's children (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
