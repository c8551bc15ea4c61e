"""Freeze transformers 4.57.6's question-answering pipeline outputs as test fixtures.

transformers 5 removed `pipeline("question-answering")`; numpy-distilbert keeps it with
4.57.6's semantics. This script records what 4.57.6 answers, so that
`tests/test_qa_pipeline.py` can compare our pipeline against it without 4.57.6 installed.

The model is a tiny random `DistilBertForQuestionAnswering` (dim 32, 2 layers) over the
real 119,547-token vocabulary. Its weights are *not* stored: they are a pure function of
a seed (`fixture_weights` below: a splitmix64 counter generator in NumPy integer
arithmetic, exact and the same on every platform and NumPy version), so the test rebuilds
the identical checkpoint with NumPy alone and checks its SHA-256 against the one recorded.

Run it in a separate environment holding the reference version (never in the project's):

    python -m venv /tmp/tf457
    /tmp/tf457/bin/pip install torch==2.13.0 'transformers==4.57.6' safetensors
    /tmp/tf457/bin/python scripts/make_qa_fixtures.py \
        --vocab-dir ../shared/models/distilbert-base-multilingual-cased

It writes `tests/fixtures/qa/qa_cases.json`: the generator's description, the config, the
weights' digest, the versions used, and for every case the call and 4.57.6's exact output.
This module imports only NumPy and the standard library at the top, so that the test can
import `fixture_weights` and `write_fixture_checkpoint` from it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_FILE = REPO_ROOT / "tests" / "fixtures" / "qa" / "qa_cases.json"
REFERENCE_TRANSFORMERS = "4.57.6"

SEED = 6_2024
CONFIG = {
    "vocab_size": 119547,
    "max_position_embeddings": 512,
    "n_layers": 2,
    "n_heads": 2,
    "dim": 32,
    "hidden_dim": 64,
    "activation": "gelu",
    "sinusoidal_pos_embds": False,
    "pad_token_id": 0,
}
GENERATOR = (
    "splitmix64: for tensor j (in the order of `fixture_tensor_specs`) and element i, "
    "z = seed*0x9E3779B97F4A7C15 + (j << 32) + i (mod 2**64), finalised by splitmix64; "
    "u = (z >> 40) / 2**23 - 1 in [-1, 1); value = center + scale*u, computed in float64, "
    "stored as float32"
)

_MASK64 = (1 << 64) - 1


# ------------------------------------------------------------------ the weights
def fixture_tensor_specs(config: dict) -> list[tuple[str, tuple[int, ...], float, float]]:
    """(name, shape, center, scale) for every tensor of transformers' DistilBertForQuestionAnswering."""
    d, f, v, p = config["dim"], config["hidden_dim"], config["vocab_size"], config["max_position_embeddings"]
    specs = [
        ("distilbert.embeddings.word_embeddings.weight", (v, d), 0.0, 0.5),
        ("distilbert.embeddings.position_embeddings.weight", (p, d), 0.0, 0.5),
        ("distilbert.embeddings.LayerNorm.weight", (d,), 1.0, 0.25),
        ("distilbert.embeddings.LayerNorm.bias", (d,), 0.0, 0.125),
    ]
    for i in range(config["n_layers"]):
        prefix = f"distilbert.transformer.layer.{i}."
        for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
            specs.append((f"{prefix}attention.{lin}.weight", (d, d), 0.0, 0.25))
            specs.append((f"{prefix}attention.{lin}.bias", (d,), 0.0, 0.125))
        specs += [
            (f"{prefix}sa_layer_norm.weight", (d,), 1.0, 0.25),
            (f"{prefix}sa_layer_norm.bias", (d,), 0.0, 0.125),
            (f"{prefix}ffn.lin1.weight", (f, d), 0.0, 0.25),
            (f"{prefix}ffn.lin1.bias", (f,), 0.0, 0.125),
            (f"{prefix}ffn.lin2.weight", (d, f), 0.0, 0.25),
            (f"{prefix}ffn.lin2.bias", (d,), 0.0, 0.125),
            (f"{prefix}output_layer_norm.weight", (d,), 1.0, 0.25),
            (f"{prefix}output_layer_norm.bias", (d,), 0.0, 0.125),
        ]
    specs += [("qa_outputs.weight", (2, d), 0.0, 0.5), ("qa_outputs.bias", (2,), 0.0, 0.125)]
    return specs


def _splitmix64_uniform(seed: int, stream: int, n: int) -> np.ndarray:
    """n exact values in [-1, 1) (multiples of 2**-23), a pure function of (seed, stream, index)."""
    base = (seed * 0x9E3779B97F4A7C15 + (stream << 32)) & _MASK64
    z = np.arange(n, dtype=np.uint64) + np.uint64(base)  # wraps modulo 2**64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 23) - 1.0


def fixture_weights(seed: int = SEED, config: dict | None = None) -> dict[str, np.ndarray]:
    """The fixture checkpoint's tensors (float32), named as transformers saves them."""
    config = CONFIG if config is None else config
    weights = {}
    with np.errstate(over="ignore"):
        for stream, (name, shape, center, scale) in enumerate(fixture_tensor_specs(config)):
            u = _splitmix64_uniform(seed, stream, int(np.prod(shape)))
            weights[name] = (center + scale * u).astype(np.float32).reshape(shape)
    return weights


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    """SHA-256 over names, shapes and little-endian float32 bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name], dtype="<f4")
        h.update(f"{name}:{list(array.shape)};".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def write_fixture_checkpoint(directory: str | Path, vocab_dir: str | Path, seed: int = SEED) -> Path:
    """Write config.json, model.safetensors, vocab.txt and tokenizer_config.json into `directory`."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "model_type": "distilbert",
        "architectures": ["DistilBertForQuestionAnswering"],
        **CONFIG,
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2,
        "initializer_range": 0.02,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file(fixture_weights(seed), str(directory / "model.safetensors"), metadata={"format": "pt"})
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copyfile(Path(vocab_dir) / name, directory / name)
    return directory


# -------------------------------------------------------------------- the cases
def _long_context() -> str:
    """About 900 words: several 384-token windows at the default max_seq_len / doc_stride."""
    facts = [
        "The river Elbe flows through Dresden and Hamburg before it reaches the North Sea.",
        "In 1889 the Eiffel Tower opened in Paris, built by the company of Gustave Eiffel.",
        "Der Bodensee liegt zwischen Deutschland, Österreich und der Schweiz.",
        "La Sagrada Família de Barcelona fue diseñada por Antoni Gaudí.",
        "東京タワーは1958年に完成しました。",
        "Marie Curie received the Nobel Prize in Physics in 1903 and in Chemistry in 1911.",
        "Москва — столица России, а Санкт-Петербург был столицей до 1918 года.",
        "The committee met on Tuesday, 14 March, to discuss the budget of 2.5 million euros.",
    ]
    sentences = []
    for i in range(40):
        sentences.append(f"Paragraph {i + 1}: {facts[i % len(facts)]}")
        if i == 27:
            sentences.append("The secret password of the archive is Thunderbird-42, said the librarian.")
    return " ".join(sentences)


LONG = _long_context()
BERLIN = "My name is Wolfgang and I live in Berlin."
MULTILINGUAL = (
    "Der Eiffelturm steht in Paris, Frankreich; er wurde 1889 eröffnet. Le café coûte 3,50 €. "
    "北京是中华人民共和国的首都。 Москва — столица России.  Tabs\tand   spaces, "
    "Donaudampfschifffahrtsgesellschaftskapitän and antidisestablishmentarianism."
)
NFD = "Cafe\u0301 au lait costs 2 euros at the cafe\u0301 near the station in Zu\u0308rich."
REPEATS = "the cat and the cat and the dog and the cat sat on the mat with the cat"
SHORTS = ["Berlin.", "Yes", "42", "It is raining.", "Paris", "no"]


def fixture_cases() -> list[dict]:
    """Each case: a name, the call's `args` and `kwargs` (inputs and options, JSON-able)."""
    cases = [
        {"name": "positional_pair", "args": ["Where do I live?", BERLIN], "kwargs": {}},
        {"name": "keywords", "args": [], "kwargs": {"question": "What is my name?", "context": BERLIN}},
        {"name": "dict_input_top3", "args": [{"question": "Where do I live?", "context": BERLIN}],
         "kwargs": {"top_k": 3}},
        {"name": "multilingual_top5", "args": [],
         "kwargs": {"question": "Wann wurde der Eiffelturm eröffnet?", "context": MULTILINGUAL, "top_k": 5}},
        {"name": "multilingual_no_align_top5", "args": [],
         "kwargs": {"question": "Quelle est la capitale ?", "context": MULTILINGUAL, "top_k": 5,
                    "align_to_words": False}},
        {"name": "nfd_accents_top4", "args": [],
         "kwargs": {"question": "Where is the café?", "context": NFD, "top_k": 4}},
        {"name": "repeats_merge_top6", "args": [],
         "kwargs": {"question": "Who sat on the mat?", "context": REPEATS, "top_k": 6}},
        {"name": "max_answer_len_2_top3", "args": [],
         "kwargs": {"question": "Where do I live?", "context": MULTILINGUAL, "max_answer_len": 2,
                    "top_k": 3}},
        {"name": "long_default_windows", "args": [],
         "kwargs": {"question": "What is the secret password of the archive?", "context": LONG}},
        {"name": "long_default_windows_top4", "args": [],
         "kwargs": {"question": "When did the Eiffel Tower open?", "context": LONG, "top_k": 4}},
        {"name": "long_small_windows_top5", "args": [],
         "kwargs": {"question": "Who designed the Sagrada Família?", "context": LONG[:2500],
                    "max_seq_len": 48, "doc_stride": 16, "top_k": 5}},
        {"name": "long_small_windows_impossible_top3", "args": [],
         "kwargs": {"question": "What is the password?", "context": LONG[:1500], "max_seq_len": 40,
                    "doc_stride": 10, "top_k": 3, "handle_impossible_answer": True}},
        {"name": "question_list_one_context", "args": [],
         "kwargs": {"question": ["Where do I live?", "What is my name?", "Who am I?"], "context": BERLIN}},
        {"name": "question_and_context_lists_top2", "args": [],
         "kwargs": {"question": ["Where do I live?", "Who sat on the mat?"], "context": [BERLIN, REPEATS],
                    "top_k": 2}},
        {"name": "list_of_dicts", "args": [[{"question": "Where?", "context": NFD},
                                             {"question": "What?", "context": MULTILINGUAL}]], "kwargs": {}},
        {"name": "single_item_lists_unwrap", "args": [],
         "kwargs": {"question": ["Where do I live?"], "context": [BERLIN], "top_k": 2}},
    ]
    # The no-answer score is the minimum over windows: a long list so that it shows up.
    cases.append({"name": "impossible_two_windows_top60", "args": [],
                  "kwargs": {"question": "Which river?", "context": LONG[:90], "max_seq_len": 24,
                             "doc_stride": 6, "top_k": 60, "handle_impossible_answer": True}})
    for i, short in enumerate(SHORTS):
        for top_k in (1, 3):
            cases.append({"name": f"impossible_short_{i}_top{top_k}", "args": [],
                          "kwargs": {"question": "What is the answer to this question?", "context": short,
                                     "handle_impossible_answer": True, "top_k": top_k}})
    # More answers asked for than the context has spans: transformers pads its candidate list
    # with zero-probability junk (see tests/test_qa_pipeline.py); we return only real spans.
    cases.append({"name": "few_spans_top15", "args": [],
                  "kwargs": {"question": "What?", "context": "Berlin is big.", "top_k": 15}})
    return cases


# ------------------------------------------------------------------------ main
def _run_reference(model_dir: Path) -> tuple[list[dict], dict]:
    import torch
    import transformers

    if transformers.__version__ != REFERENCE_TRANSFORMERS:
        sys.exit(f"needs transformers=={REFERENCE_TRANSFORMERS}, found {transformers.__version__}")
    model, info = transformers.DistilBertForQuestionAnswering.from_pretrained(
        model_dir, output_loading_info=True
    )
    if any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys")):
        sys.exit(f"checkpoint does not load cleanly into transformers: {info}")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    if not tokenizer.is_fast or tokenizer.padding_side != "right":
        sys.exit("expected a fast, right-padding tokenizer (the pipeline's common path)")
    qa = transformers.pipeline("question-answering", model=model.eval(), tokenizer=tokenizer, device="cpu")
    results = []
    for case in fixture_cases():
        with torch.no_grad():
            output = qa(*case["args"], **case["kwargs"])
        results.append({**case, "output": output})
        print(f"{case['name']}: {json.dumps(output, ensure_ascii=False)[:150]}")
    versions = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "python": sys.version.split()[0],
    }
    return results, versions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-dir", type=Path,
                        default=REPO_ROOT.parent / "shared" / "models" / "distilbert-base-multilingual-cased",
                        help="directory with the real vocab.txt and tokenizer_config.json")
    parser.add_argument("--out", type=Path, default=FIXTURE_FILE)
    args = parser.parse_args(argv)

    weights = fixture_weights()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_fixture_checkpoint(Path(tmp) / "qa-model", args.vocab_dir)
        results, versions = _run_reference(model_dir)
    impossible_wins = sum(
        1 for r in results if isinstance(r["output"], dict) and r["output"]["answer"] == ""
    )
    if impossible_wins == 0:
        sys.exit("no case has the impossible answer winning; change SHORTS or SEED")
    multi = next(r["output"] for r in results if r["name"] == "impossible_two_windows_top60")
    if not any(a["answer"] == "" and a["score"] > 0 for a in multi):
        sys.exit("impossible_two_windows_top60 does not list the empty answer; change it")
    fixture = {
        "description": "transformers 4.57.6 question-answering pipeline outputs on a seeded tiny QA "
                       "checkpoint; written by scripts/make_qa_fixtures.py",
        "versions": versions,
        "seed": SEED,
        "generator": GENERATOR,
        "config": CONFIG,
        "weights_sha256": weights_digest(weights),
        "cases": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(results)} cases, "
          f"{impossible_wins} with the impossible answer on top)")


if __name__ == "__main__":
    main()
