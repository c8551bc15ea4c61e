"""One pipeline shared by many threads gives exactly what sequential calls give.

A web server or a thread pool shares one loaded pipeline (and so one tokenizer with its word
cache, and one model) between threads. Each thread's results must be bit-identical to the
same calls made one after another, whatever the tokenizer's cache size: a cache of 16 words
evicts all the time, which is where a race would show.
"""

from __future__ import annotations

import string
import sys
import threading

import numpy as np
import pytest

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.pipelines import pipeline
from numpy_distilbert.random_weights import write_random_checkpoint

THREADS = 8
TINY = dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64)
WORDS = ("Paris Berlin Tokyo café naïve straße 東京 Москва العربية ελληνικά hello world model "
         "virtual running jumped quickly über größer привет 中文 日本語 한국어 emoji 🙂 12,345.67").split()


def sentences(seed: int, count: int) -> list[str]:
    """Real words mixed with made-up ones, so that the word cache keeps filling and evicting."""
    rng = np.random.default_rng(seed)
    letters = np.array(list(string.ascii_letters))

    def word() -> str:
        if rng.random() < 0.5:
            return str(rng.choice(WORDS))
        return "".join(rng.choice(letters, size=int(rng.integers(2, 9))))

    return [" ".join(word() for _ in range(int(rng.integers(3, 60)))) for _ in range(count)]


@pytest.fixture(autouse=True)
def frequent_thread_switches():
    """Switch threads every microsecond instead of every 5 ms, so that races show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, shared_model_path):
    root = tmp_path_factory.mktemp("threads")
    config = DistilBertConfig(**TINY)
    return {
        "mlm": write_random_checkpoint(root / "mlm", config, seed=3, vocab_dir=shared_model_path),
        "ner": write_random_checkpoint(root / "ner", config, seed=4, vocab_dir=shared_model_path,
                                       architecture="DistilBertForTokenClassification",
                                       id2label={0: "O", 1: "B-LOC", 2: "I-LOC"}),
    }


def run_in_threads(work, inputs: list[list[str]]) -> list:
    """work(inputs[i]) in thread i, all started together; the exceptions are re-raised."""
    results: list = [None] * len(inputs)
    errors: list[BaseException] = []
    start = threading.Barrier(len(inputs))

    def target(i: int) -> None:
        try:
            start.wait()
            results[i] = [work(text) for text in inputs[i]]
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a thread hangs"
    if errors:
        raise errors[0]
    return results


def tokenize_and_embed(checkpoint, word_cache_size: int):
    """A function of one text using one shared tokenizer and one shared pipeline."""
    from tokenizer import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.from_pretrained(checkpoint, word_cache_size=word_cache_size)
    features = pipeline("feature-extraction", model=checkpoint, tokenizer=tokenizer)

    def work(text: str) -> tuple:
        encoding = tokenizer(text, return_offsets_mapping=True)
        vectors = np.asarray(features(text, pooling="mean"))
        return encoding["input_ids"], encoding["offset_mapping"], vectors.tobytes()

    return work


@pytest.mark.parametrize("word_cache_size", [16, 256, 65536])
def test_shared_tokenizer_and_model_match_sequential_calls(checkpoints, word_cache_size):
    per_thread = [sentences(seed, 40) for seed in range(THREADS)]
    threaded = run_in_threads(tokenize_and_embed(checkpoints["mlm"], word_cache_size), per_thread)
    work = tokenize_and_embed(checkpoints["mlm"], word_cache_size)  # fresh caches
    sequential = [[work(text) for text in texts] for texts in per_thread]
    assert threaded == sequential


def test_shared_ner_pipeline_matches_sequential_calls(checkpoints):
    ner = pipeline("token-classification", model=checkpoints["ner"], aggregation_strategy="simple")
    per_thread = [sentences(100 + seed, 15) for seed in range(THREADS)]
    threaded = run_in_threads(ner, per_thread)
    sequential = [[ner(text) for text in texts] for texts in per_thread]
    assert threaded == sequential
