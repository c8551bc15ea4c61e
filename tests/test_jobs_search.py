"""Top-k cosine search over memory-mapped shards, block by block, against a brute-force float64
ranking of the whole matrix (NumPy only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jobs_helpers import THREADS, run_cli, write_corpus, write_models

from numpy_distilbert.pipelines import pipeline
from numpy_distilbert.shards import open_shards, top_k_cosine
from numpy_distilbert.tolerances import BLAS_THREADS_FP32, COSINE_FP32


def brute_force(matrix: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """cosine [Q, N] in float64; a zero vector scores 0."""
    m = matrix.astype(np.float64)
    q = queries.astype(np.float64)
    norms = np.linalg.norm(m, axis=1)
    q_norms = np.linalg.norm(q, axis=1)
    return (q @ m.T) / np.outer(np.where(q_norms > 0, q_norms, 1), np.where(norms > 0, norms, 1))


@st.composite
def shard_sets(draw):
    dim = draw(st.integers(1, 6))
    sizes = draw(st.lists(st.integers(0, 40), min_size=1, max_size=4))
    values = st.integers(-3, 3)  # small integers: many exact ties and some zero rows
    shards = [np.array(draw(st.lists(st.lists(values, min_size=dim, max_size=dim), min_size=n, max_size=n)),
                       dtype=np.float32).reshape(n, dim) for n in sizes]
    queries = np.array(draw(st.lists(st.lists(values, min_size=dim, max_size=dim), min_size=1, max_size=3)),
                       dtype=np.float32)
    return shards, queries, draw(st.integers(1, 25)), draw(st.integers(1, 17))


@given(shard_sets())
def test_blockwise_top_k_equals_brute_force(case):
    shards, queries, k, block_rows = case
    matrix = np.concatenate(shards)
    if len(matrix) == 0:
        return
    rows, scores = top_k_cosine(shards, queries, k, block_rows)
    exact = brute_force(matrix, queries)  # [Q, N]
    kept = min(k, len(matrix))
    assert rows.shape == scores.shape == (len(queries), kept)
    for q in range(len(queries)):
        best = np.sort(exact[q])[::-1][:kept]
        assert np.abs(scores[q] - best).max() <= COSINE_FP32  # the k best scores, best first
        assert np.abs(exact[q, rows[q]] - scores[q]).max() <= COSINE_FP32  # each row has its score
        assert len(set(rows[q].tolist())) == kept
        for a, b in zip(range(kept - 1), range(1, kept), strict=True):  # ties: the earlier row first
            if scores[q, a] == scores[q, b]:
                assert rows[q, a] < rows[q, b]


def test_equal_rows_rank_by_row_number_across_shards_and_blocks():
    row = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    shards = [np.repeat(row, 5, axis=0), np.repeat(row, 4, axis=0)]
    rows, scores = top_k_cosine(shards, row, k=6, block_rows=2)
    assert rows.tolist() == [[0, 1, 2, 3, 4, 5]] and np.allclose(scores, 1.0)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, shared_model_path):
    root = tmp_path_factory.mktemp("search")
    models = write_models(root, shared_model_path)
    corpus = root / "corpus.jsonl"
    lines = write_corpus(corpus, 300, seed=7)
    plain = root / "corpus.txt"  # the texts, one per line, with the same line numbers
    plain.write_text("\n".join(json.loads(t)["text"] if t else "" for t in lines) + "\n", encoding="utf-8")
    directory = root / "vectors"
    proc = run_cli("embed", "-m", models["mlm"], "-i", corpus, "--field", "text", "--shard-rows", 40,
                   "-o", directory, *THREADS)
    assert proc.returncode == 0, proc.stderr
    return models, plain, directory


def test_cli_search_over_shards_equals_brute_force(embedded):
    models, plain, directory = embedded
    queries = ["the cat sat on a mat", "Berlin über alles café"]
    proc = run_cli("search", "--index", directory, "--corpus", plain, "--top-k", 5, "--block-rows", 32,
                   *queries)
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    shards = open_shards(directory)
    matrix, lines = np.concatenate(shards.vectors), np.concatenate(shards.lines)
    embed = pipeline("feature-extraction", model=models["mlm"], pooling="mean", return_tensors=True)
    texts = plain.read_text(encoding="utf-8").split("\n")
    for answer, query in zip(got, queries, strict=True):
        exact = brute_force(matrix, embed(query)[0][None])[0]
        best = np.argsort(-exact, kind="stable")[:5]
        assert answer["query"] == query
        assert [r["line"] for r in answer["results"]] == lines[best].tolist()
        differences = [abs(r["score"] - exact[b]) for r, b in zip(answer["results"], best, strict=True)]
        assert max(differences) <= BLAS_THREADS_FP32 + COSINE_FP32
        assert all(r["text"] == texts[r["line"] - 1] for r in answer["results"])


def test_search_refuses_another_model_and_a_damaged_directory(embedded, tmp_path):
    models, _, directory = embedded
    proc = run_cli("search", "--index", directory, "-m", models["cls"], "a query")
    assert proc.returncode == 2 and "same model" in proc.stderr
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for path in directory.iterdir():
        (damaged / path.name).write_bytes(path.read_bytes())
    victim = damaged / "shard-00001.npy"
    victim.write_bytes(victim.read_bytes()[:100])
    proc = run_cli("search", "--index", damaged, "a query")
    assert proc.returncode == 2 and "shard 1" in proc.stderr and "--resume" in proc.stderr


def test_a_result_that_is_not_one_vector_of_the_same_length_is_refused_by_both_embed_outputs(tmp_path):
    from numpy_distilbert.cli import NpyMatrix
    from numpy_distilbert.shards import vector_problem

    matrix = NpyMatrix(str(tmp_path / "out.npy"), "float32")
    assert "one vector per input is needed for a matrix" in matrix.problem([[0.1, 0.2], [0.3, 0.4]])
    assert matrix.problem([0.1, 0.2]) is None
    matrix.write([{"line": 1, "result": [0.1, 0.2]}])
    assert matrix.problem([0.1, 0.2, 0.3]) == "a vector of 3 values does not fit a matrix of other lengths"
    assert "needed for shards" in vector_problem("text", None, "shards", "shards of 2")
    assert vector_problem([], None, "shards", "shards of 2") is not None
    too_short = vector_problem([1.0], 2, "shards", "shards of 2")
    assert too_short == "a vector of 1 values does not fit shards of 2"
