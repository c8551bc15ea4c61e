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
# # 05 · Backpropagation through a transformer, checked by finite differences
#
# Training needs the gradient of one number, the loss, with respect to every parameter. The
# model computes it backwards: each layer's `*_backward` function (in `layers.py`, right
# under its forward) turns the gradient of its output into the gradients of its inputs and
# weights. This notebook derives the four that are easy to get wrong and checks each one
# against **finite differences** in float64, which need nothing but the forward function:
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h\,e_i) - L(x - h\,e_i)}{2h}.$$
#
# Then it looks at the gradient of the real all-MiniLM-L6-v2, layer by layer, and at the
# loss curve of a fine-tuning run (`scripts/finetune_demo.py`).
#
# Every check uses the same trick: a layer with output $y$ gets the scalar loss
# $L = \sum_i y_i\,r_i$ for a fixed random $r$, so that $\partial L/\partial y = r$ is known
# exactly and the backward function receives it as `d_y`.

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
from notebook_setup import REPO_ROOT, minilm_directory, save_figure

from numpy_distilbert import layers

rng = np.random.default_rng(0)


def numeric_gradient(loss, x, h=1e-6):
    """Central differences of the scalar `loss()` with respect to every entry of x (x is restored)."""
    grad = np.zeros_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h
        up = loss()
        flat[i] = saved - h
        down = loss()
        flat[i] = saved
        out[i] = (up - down) / (2 * h)
    return grad


def report(name, analytic, numeric):
    error = np.max(np.abs(analytic - numeric)) / max(np.max(np.abs(numeric)), 1e-300)
    print(f"{name:<34} max relative difference {error:.1e}")
    return error


# %% [markdown]
# ## 1. LayerNorm
#
# $\hat x = (x-\mu)\,r$ with $r = 1/\sqrt{\sigma^2+\epsilon}$, $y = \gamma\hat x + \beta$. Both $\mu$
# and $\sigma^2$ depend on every $x_j$ of the row, so the Jacobian is not diagonal. Writing
# $g = \gamma \odot \partial L/\partial y$ and using $\partial\mu/\partial x_j = 1/D$,
# $\partial\sigma^2/\partial x_j = 2(x_j-\mu)/D$:
#
# $$\frac{\partial L}{\partial x} = r\,\big(g - \mathrm{mean}(g) - \hat x\,\mathrm{mean}(g\odot\hat x)\big).$$
#
# The two means remove the components of $g$ along $\mathbf 1$ and along $\hat x$: shifting a
# row or scaling it does not change LayerNorm's output, so those directions get no gradient.

# %%
x = rng.standard_normal((3, 8))
gamma, beta = 1 + 0.1 * rng.standard_normal(8), 0.1 * rng.standard_normal(8)
r = rng.standard_normal((3, 8))


def layer_norm_loss():
    return float(np.sum(layers.layer_norm(x, gamma, beta) * r))


d_x, d_gamma, d_beta = layers.layer_norm_backward(r, x, gamma)
errors = {"LayerNorm": report("LayerNorm d_x", d_x, numeric_gradient(layer_norm_loss, x))}
report("LayerNorm d_gamma", d_gamma, numeric_gradient(layer_norm_loss, gamma))
report("LayerNorm d_beta", d_beta, numeric_gradient(layer_norm_loss, beta))
print("d_x is orthogonal to 1 and to x_hat in every row:", np.allclose(d_x.sum(axis=1), 0))

# %% [markdown]
# ## 2. Softmax attention, through the padding mask
#
# $s = q k^\top/\sqrt{d_h} + b$, $w = \operatorname{softmax}(s)$, $c = w v$. The softmax Jacobian is
# $\operatorname{diag}(w) - w w^\top$, so
# $\partial L/\partial s = w \odot (\partial L/\partial w - \sum_j w_j\,\partial L/\partial w_j)$.
# The mask enters as the additive bias $b$ (0 for tokens, the dtype's minimum for padding): a
# constant, so it adds no term of its own, and a padded key has $w = 0$ exactly, which
# multiplies its score gradient to exactly 0. With $\bar s = \partial L/\partial s$ and
# $\bar c = \partial L/\partial c$: $\partial L/\partial q = \bar s\,k/\sqrt{d_h}$,
# $\partial L/\partial k = \bar s^\top q/\sqrt{d_h}$ and $\partial L/\partial v = w^\top \bar c$.

# %%
batch, heads, length, head_dim = 2, 2, 5, 4
q, k, v = (rng.standard_normal((batch, heads, length, head_dim)) for _ in range(3))
mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # the second sequence has two padded positions
bias = layers.attention_bias(mask, np.float64)
r_attention = rng.standard_normal((batch, heads, length, head_dim))


def attention_loss():
    return float(np.sum(layers.attention(q, k, v, bias)[0] * r_attention))


_, weights = layers.attention(q, k, v, bias)
d_q, d_k, d_v = layers.attention_backward(r_attention, q, k, v, weights)
errors["attention"] = report("attention d_q", d_q, numeric_gradient(attention_loss, q))
report("attention d_k", d_k, numeric_gradient(attention_loss, k))
report("attention d_v", d_v, numeric_gradient(attention_loss, v))
print("padded keys get exactly zero gradient:", np.all(d_k[1, :, 3:] == 0), np.all(d_v[1, :, 3:] == 0))

# %% [markdown]
# ## 3. GELU, the exact one
#
# BERT's "gelu" is $x\,\Phi(x)$ with $\Phi$ the normal CDF, so by the product rule and
# $\Phi' = \varphi$ (the normal density):
#
# $$\frac{d}{dx}\,x\Phi(x) = \Phi(x) + x\,\varphi(x).$$
#
# It is *not* the derivative of the tanh approximation ("gelu_new"); the plot shows both
# derivatives and how far apart they are.

# %%
grid = np.linspace(-5, 5, 401)
exact = layers.gelu_backward(np.ones_like(grid), grid)
h = 1e-6
numeric = (layers.gelu(grid + h) - layers.gelu(grid - h)) / (2 * h)
errors["GELU"] = report("GELU d_x (401 points)", exact, numeric)
tanh_form = layers.gelu_new_backward(np.ones_like(grid), grid)

figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
left.plot(grid, layers.gelu(grid), label="gelu(x) = xΦ(x)")
left.plot(grid, exact, label="Φ(x) + xφ(x)")
left.plot(grid[::20], numeric[::20], "k.", label="finite differences")
left.set(xlabel="x", title="exact GELU and its derivative")
left.legend()
right.plot(grid, tanh_form - exact)
right.set(xlabel="x", title="derivative: tanh form − exact")
save_figure(figure, "backprop_gelu")
plt.show()

# %% [markdown]
# ## 4. Embeddings: a scatter-add
#
# A lookup $E[\text{ids}]$ copies row $E_i$ to every position that holds token $i$, so the
# gradient of the table is the scatter-add
# $\partial L/\partial E_i = \sum_{b,l:\ \text{ids}_{bl}=i} \partial L/\partial x_{bl}$:
# a token used twice collects both contributions; an unused row gets zero. `d_E[ids] += g` would
# keep only one of the repeats (NumPy's buffered fancy indexing), hence `np.add.at`. With a tied
# MLM head the same table also receives the output projection's gradient, added into the same array.

# %%
vocab, positions, dim = 7, 6, 4
ids = np.array([[1, 3, 3, 0], [3, 5, 1, 1]])  # token 3 appears three times
word, position = rng.standard_normal((vocab, dim)), rng.standard_normal((positions, dim))
gamma, beta = np.ones(dim), np.zeros(dim)
r_embedding = rng.standard_normal((2, 4, dim))


def embedding_loss():
    return float(np.sum(layers.embed(ids, word, position, gamma, beta) * r_embedding))


summed = word[ids] + position[: ids.shape[1]]  # what embed normalises
d_sum, _, _ = layers.layer_norm_backward(r_embedding, summed, gamma)
d_word, d_position, _ = layers.embed_backward(d_sum, ids, vocab, positions)
errors["embeddings"] = report("embeddings d_word", d_word, numeric_gradient(embedding_loss, word))
report("embeddings d_position", d_position, numeric_gradient(embedding_loss, position))
print("rows of unused tokens (2, 4, 6) are zero:", np.all(d_word[[2, 4, 6]] == 0))

# %% [markdown]
# ### How small is small enough for h?
#
# A central difference has a truncation error $\propto h^2$ and a rounding error
# $\propto \varepsilon_{64}/h$, so the disagreement with the analytic gradient is V-shaped in
# $h$, smallest near $h \approx \varepsilon^{1/3} \approx 10^{-5}$. A wrong backward would show
# a floor far above that V: every layer above reaches ~1e-10 or better.

# %%
steps = np.logspace(-9, -1, 17)
x_ln = rng.standard_normal((3, 8))
gamma_ln, r_ln = 1 + 0.1 * rng.standard_normal(8), rng.standard_normal((3, 8))


def ln_loss():
    return float(np.sum(layers.layer_norm(x_ln, gamma_ln, np.zeros(8)) * r_ln))


ln_analytic = layers.layer_norm_backward(r_ln, x_ln, gamma_ln)[0]
curves = {"LayerNorm": [np.max(np.abs(ln_analytic - numeric_gradient(ln_loss, x_ln, h))) for h in steps]}
curves["GELU"] = [
    np.max(np.abs(exact - (layers.gelu(grid + h) - layers.gelu(grid - h)) / (2 * h))) for h in steps
]
curves["attention"] = [np.max(np.abs(d_q - numeric_gradient(attention_loss, q, h))) for h in steps]
figure, axes = plt.subplots(figsize=(6, 3.5))
for name, curve in curves.items():
    axes.loglog(steps, curve, marker="o", label=name)
axes.set(xlabel="step h", ylabel="max |analytic − finite difference|", title="finite differences in float64")
axes.legend()
save_figure(figure, "backprop_finite_differences")
plt.show()

# %% [markdown]
# ## 5. Gradient flow in the real all-MiniLM-L6-v2
#
# The real trained MiniLM (a 6-layer BERT) with a new 5-way classification head (the topics
# of `data/topics`), one batch of held-out sentences, eval mode: the norm of the gradient of
# every layer's parameters. The new head and the layers near it get the largest gradients;
# how fast the norm falls towards the embeddings shows how much a few steps of fine-tuning move
# the lower layers.

# %%
from numpy_distilbert import finetune
from numpy_distilbert.auto import AutoTokenizer
from numpy_distilbert.training import collate

minilm = minilm_directory()
if minilm is not None:
    topics = REPO_ROOT / "data" / "topics"
    records = finetune.read_jsonl(topics / "test.jsonl", "text-classification")[:16]
    names = ["food", "health", "sport", "technology", "weather"]
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    label2id = {name: i for i, name in enumerate(names)}
    examples, _ = finetune.encode_records(records, tokenizer, "text-classification", label2id, 128)
    batch = collate(examples)
    model = finetune.model_with_head(minilm, "text-classification", names, seed=0)
    loss, grads = model.loss_and_grads(
        batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels
    )

    def group(name):
        parts = name.split(".")
        if parts[1] == "encoder":
            return f"layer {parts[3]}"
        return {"embeddings": "embeddings", "pooler": "pooler"}.get(parts[1], parts[0])

    norms = {}
    for name, grad in grads.items():
        norms[group(name)] = norms.get(group(name), 0.0) + float(np.sum(grad.astype(np.float64) ** 2))
    print(f"loss {loss:.4f} (ln 5 = {np.log(5):.4f} for a uniform guess)")
    for name, total in norms.items():
        print(f"  {name:<12} |grad| = {np.sqrt(total):.3e}")
    figure, axes = plt.subplots(figsize=(7, 3))
    axes.bar(list(norms), np.sqrt(list(norms.values())))
    axes.set(yscale="log", ylabel="gradient norm", title="all-MiniLM-L6-v2 + new head: gradient per layer")
    axes.tick_params(axis="x", rotation=45)
    save_figure(figure, "backprop_gradient_norms")
    plt.show()

# %% [markdown]
# ## 6. Fine-tuning: the loss curve
#
# `scripts/finetune_demo.py` fine-tunes the same model on `data/topics` (215 training
# sentences, 65 held out; English with some French, German and Spanish) twice from the same
# new head: once training the head alone (encoder frozen), once training everything. It takes
# about half a minute on an idle 2-core machine (far longer on a busy one), so this notebook
# reads the figures that run recorded in `data/topics/demo_results.json` instead of training
# here (rerun the script to refresh them).

# %%
results = json.loads((REPO_ROOT / "data" / "topics" / "demo_results.json").read_text())
print(f"held-out accuracy before training: {results['before']['all']:.3f}")
figure, axes = plt.subplots(figsize=(7, 3.5))
for run in ("head_only", "full"):
    accuracy = results[run]["accuracy"]
    by_language = ", ".join(f"{lang} {value:.2f}" for lang, value in accuracy.items() if lang != "all")
    print(f"{run:>9}: held-out accuracy {accuracy['all']:.3f} (per language: {by_language})")
    axes.plot(results[run]["losses"], label=f"{run.replace('_', ' ')}: accuracy {accuracy['all']:.2f}")
axes.set(xlabel="optimizer step", ylabel="training loss", title="all-MiniLM-L6-v2 on data/topics")
axes.legend()
save_figure(figure, "finetune_loss_curve")
plt.show()
