"""`embed` on sentence-transformers directories, `similarity` and `search`, run as users run them.

A tiny random DistilBERT (the real vocabulary) is written with NumPy alone, and a
sentence-transformers directory is made of it by hand (modules.json, CLS pooling, Normalize,
max_seq_length 8), so these tests need no torch. The command line's numbers are compared with
`SentenceTransformer` in-process (itself differential-tested against sentence-transformers in
tests/test_sentence_transformer.py) and, where sentence-transformers is installed, with it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module
from test_cli import cli, jsonl

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.random_weights import write_random_checkpoint
from numpy_distilbert.sentence_transformers import SentenceTransformer

LINES = [
    "A man is eating food.",
    "",
    "A man is eating a piece of bread, slowly, at a very long table by the window.",
    "Die Katze schläft auf dem Sofa.",
    "A monkey is playing drums.",
    "   ",
    "Le train part à huit heures.",
    "Two men pushed carts through the woods.",
]
NUMBERED = [(n, text) for n, text in enumerate(LINES, 1) if text.strip()]  # blank lines are skipped


@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_model_path) -> dict[str, Path]:
    """{"plain": an encoder directory, "st": the same encoder as a sentence-transformers model}."""
    root = tmp_path_factory.mktemp("cli-st")
    config = DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    plain = write_random_checkpoint(root / "plain", config, seed=7, architecture="DistilBertModel",
                                    vocab_dir=shared_model_path)
    st = root / "st"
    shutil.copytree(plain, st)
    (st / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))  # fmt: skip
    (st / "1_Pooling").mkdir()
    pooling = {"embedding_dimension": 32, "pooling_mode": "cls"}
    (st / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (st / "2_Normalize").mkdir()
    (st / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 8, "do_lower_case": False}))
    return {"plain": plain, "st": st}


@pytest.fixture()
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def test_embed_uses_the_sentence_transformers_pooling(models, corpus, tmp_path):
    proc = cli("embed", "-m", models["st"], "-i", corpus)
    assert proc.returncode == 0, proc.stderr
    got = np.array(jsonl(proc.stdout))
    texts = [text for _, text in NUMBERED]
    expected = SentenceTransformer(models["st"]).encode(texts)  # CLS, normalised, cut at 8 tokens
    np.testing.assert_array_equal(got, expected)  # float32 values round-trip through JSON exactly
    mean_proc = cli("embed", "-m", models["st"], "--pooling", "mean", "--truncation", "-i", corpus)
    mean = np.array(jsonl(mean_proc.stdout))
    assert np.abs(mean - got).max() > 1e-3  # --pooling still overrides the directory's own
    proc = cli("embed", "-m", models["st"], "-i", corpus, "-o", tmp_path / "out.npy", "--normalize")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-7)


def test_embed_equals_sentence_transformers(st, models, corpus):
    proc = cli("embed", "-m", models["st"], "-i", corpus)
    assert proc.returncode == 0, proc.stderr
    expected = st.SentenceTransformer(str(models["st"]), device="cpu").encode([text for _, text in NUMBERED])
    diff = float(np.abs(np.array(jsonl(proc.stdout)) - expected).max())
    print(f"cli embed vs sentence-transformers: max diff {diff:.2e}")
    assert diff <= 2e-6


@pytest.mark.parametrize("kind", ["plain", "st"])
def test_similarity_ranks_the_lines(models, corpus, kind):
    query = "Someone is eating bread."
    proc = cli("similarity", "-m", models[kind], "-q", query, "-i", corpus, "--top-k", "4")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    model = SentenceTransformer(models[kind])
    scores = model.similarity(model.encode([query]), model.encode([text for _, text in NUMBERED]))[0]
    order = sorted(range(len(NUMBERED)), key=lambda i: -scores[i])[:4]
    assert [(m["line"], m["text"]) for m in got] == [NUMBERED[i] for i in order]
    np.testing.assert_allclose([m["score"] for m in got], scores[order], atol=1e-6)
    everything = jsonl(cli("similarity", "-m", models[kind], "-q", query, "--top-k", "0", "--jsonl",
                           stdin="\n".join(LINES)).stdout)  # fmt: skip
    assert len(everything) == len(NUMBERED) and everything[:4] == got


def test_similarity_without_lines_is_a_usage_error(models, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    proc = cli("similarity", "-m", models["st"], "-q", "hello", "-i", empty)
    assert proc.returncode == 2 and "holds no text" in proc.stderr


def brute_force(model: SentenceTransformer, queries: list[str], k: int) -> list[list[tuple[int, str, float]]]:
    vectors = model.encode([text for _, text in NUMBERED], normalize_embeddings=True)
    found = []
    for query in queries:
        scores = vectors @ model.encode(query, normalize_embeddings=True)
        order = sorted(range(len(NUMBERED)), key=lambda i: (-scores[i], i))[:k]
        found.append([(*NUMBERED[i], float(scores[i])) for i in order])
    return found


def test_search_builds_the_index_once_and_answers_from_it(models, corpus, tmp_path):
    index = tmp_path / "corpus.npy"
    queries = ["eating", "a cat on a sofa", "trains"]
    proc = cli("search", "-m", models["st"], "--corpus", corpus, "--index", index, "--top-k", "3",
               "--block-rows", "2", *queries)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    model = SentenceTransformer(models["st"])
    expected = brute_force(model, queries, 3)
    for record, query, want in zip(jsonl(proc.stdout), queries, expected, strict=True):
        assert record["query"] == query
        assert [(r["line"], r["text"]) for r in record["results"]] == [(n, t) for n, t, _ in want]
        np.testing.assert_allclose([r["score"] for r in record["results"]], [s for *_, s in want], atol=1e-6)
    matrix = np.load(index, mmap_mode="r")
    assert matrix.shape == (len(NUMBERED), 32) and matrix.dtype == np.float32
    np.testing.assert_array_equal(np.load(f"{index}.lines.npy"), [n for n, _ in NUMBERED])
    before = (index.stat().st_mtime_ns, index.read_bytes())
    again = cli("search", "-m", models["st"], "--corpus", corpus, "--index", index, "--top-k", "1",
                stdin="trains\n")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert jsonl(again.stdout)[0]["results"][0]["line"] == expected[2][0][0]
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before  # answered from the index, not rebuilt


def test_search_refuses_an_index_of_another_corpus_or_model(models, corpus, tmp_path):
    index = tmp_path / "corpus.npy"
    assert cli("search", "-m", models["st"], "--corpus", corpus, "--index", index, "x").returncode == 0
    proc = cli("search", "-m", models["plain"], "--corpus", corpus, "--index", index, "x")
    assert proc.returncode == 2 and "was built for something else" in proc.stderr and "model" in proc.stderr
    with corpus.open("a", encoding="utf-8") as stream:
        stream.write("one more line\n")
    proc = cli("search", "-m", models["st"], "--corpus", corpus, "--index", index, "x")
    assert proc.returncode == 2 and "the corpus has changed" in proc.stderr


def test_search_refuses_a_damaged_index(models, corpus, tmp_path):
    index = tmp_path / "corpus.npy"
    assert cli("search", "-m", models["st"], "--corpus", corpus, "--index", index, "x").returncode == 0
    Path(f"{index}.json").write_text("[1, 2")
    proc = cli("search", "-m", models["st"], "--corpus", corpus, "--index", index, "x")
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    index.write_bytes(b"not an npy file")
    proc = cli("search", "-m", models["st"], "--corpus", corpus, "--index", index, "x")
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="session")  # the session scope of minilm_path: torch is asked for first
def st():
    require_module("torch")
    return require_module("sentence_transformers")


def test_similarity_on_all_minilm_equals_sentence_transformers(st, minilm_path, tmp_path):
    """Real weights: the ranking and scores of sentence-transformers' own model.similarity."""
    lines = ["A man is eating a piece of bread.", "A man is riding a horse.", "A monkey is playing drums.",
             "Ein Mann isst Brot."]  # fmt: skip
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    proc = cli("similarity", "-m", minilm_path, "-q", "A man is eating food.", "-i", path, "--top-k", "0")
    assert proc.returncode == 0, proc.stderr
    reference = st.SentenceTransformer(str(minilm_path), device="cpu")
    query = reference.encode(["A man is eating food."])
    scores = reference.similarity(query, reference.encode(lines))[0].numpy()
    got = json.loads(proc.stdout)
    assert [m["text"] for m in got] == [lines[i] for i in np.argsort(-scores)]
    diff = max(abs(m["score"] - float(scores[lines.index(m["text"])])) for m in got)
    print(f"cli similarity on all-MiniLM-L6-v2 vs sentence-transformers: max diff {diff:.2e}")
    assert diff <= 1e-6


def test_help_lists_the_commands():
    proc = cli("--help")
    assert proc.returncode == 0
    for command in ("similarity", "search"):
        assert f"    {command}" in proc.stdout
        assert cli(command, "--help").returncode == 0


def test_a_line_that_is_not_utf8_is_reported_and_skipped(models, tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"first line\nbad \xff byte\nthird line\n")
    proc = cli("similarity", "-m", models["st"], "-q", "line", "-i", path, "--top-k", "0")
    assert proc.returncode == 0, proc.stderr
    assert "line 2: not valid UTF-8" in proc.stderr
    assert sorted(m["line"] for m in json.loads(proc.stdout)) == [1, 3]
    index = tmp_path / "mixed.npy"
    proc = cli("search", "-m", models["st"], "--corpus", path, "--index", index, "--top-k", "0", "line")
    assert proc.returncode == 0 and "line 2: not valid UTF-8" in proc.stderr
    assert sorted(r["line"] for r in jsonl(proc.stdout)[0]["results"]) == [1, 3]
