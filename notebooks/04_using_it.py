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
# **question-answering**.
#
# **About the predictions.** Without the trained weights the model below is random and every
# prediction is **meaningless**: the outputs have the right form and nothing more. With
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
# mBERT does this only roughly; models fine-tuned for similarity do it well).
# **On random weights** the values are meaningless: all sentences look about equally similar.

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
# * `python -m numpy_distilbert fill-mask "..."` runs the same pipelines from the shell.
# * Any DistilBERT checkpoint saved as safetensors loads; a PyTorch pickle is refused
#   (loading one can run arbitrary code), with the one-line conversion in the error message.
