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
# # 06 · How DistilBERT was made: distillation
#
# DistilBERT (Sanh et al., 2019) is a BERT taught by a BERT. The recipe has four parts, and
# `numpy_distilbert.distill` (with `masking.py`) implements each in NumPy:
#
# | part | what | here |
# |---|---|---|
# | student | BERT without token-type embeddings and pooler, half the layers | a `DistilBertModel` |
# | init | the teacher's embeddings and one layer out of two | `init_student(teacher, out_dir, layers)` |
# | loss | L_ce (soft targets at temperature T) + L_mlm + L_cos | `distillation_loss(...)` |
# | data | dynamic masking: 15% of the tokens, 80/10/10 | `masking.mask_tokens(...)` |
#
# The teacher here is the real **all-MiniLM-L6-v2** (a 6-layer BERT that makes sentence
# embeddings); the student takes its layers 0, 2 and 4. The training itself (a few minutes) is
# not re-run: `scripts/distill_demo.py` ran it and saved what it measured in
# `docs/distill_demo.json`, which the last part of this notebook plots.

# %%
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from notebook_setup import minilm_directory, save_figure

from numpy_distilbert.config import BertConfig
from numpy_distilbert.distill import distillation_loss, init_student, student_name_map
from numpy_distilbert.random_weights import write_random_checkpoint

teacher_dir = minilm_directory()
work = Path(tempfile.mkdtemp(prefix="distillation-"))
if teacher_dir is None:  # the same sizes with random weights: the numbers below then mean little
    minilm_sizes = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                              intermediate_size=1536)  # fmt: skip
    teacher_dir = write_random_checkpoint(work / "teacher", minilm_sizes, architecture="BertModel")
student_dir = init_student(teacher_dir, work / "student", layers=[0, 2, 4])
print(sorted(p.name for p in student_dir.iterdir()))

# %% [markdown]
# ## Teacher and student
#
# The student keeps the teacher's width (384), its heads and its feed-forward size: only the
# depth halves. Counting the parameters of both files shows where they are. The word-embedding
# table (30,522 × 384) is shared by both designs and dominates this small model; the six
# layers of the teacher become three.

# %%
from safetensors.numpy import load_file


def parameter_groups(directory: Path) -> dict[str, int]:
    """Parameters per part of a checkpoint (buffers such as position_ids left out)."""
    groups: dict[str, int] = {}
    for name, array in load_file(str(directory / "model.safetensors")).items():
        name = name.removeprefix("bert.").removeprefix("distilbert.")
        if "position_ids" in name:
            continue
        if name.startswith("embeddings."):
            part = "word embeddings" if "word_embeddings" in name else "positions, types, LayerNorm"
        elif name.startswith(("encoder.layer.", "transformer.layer.")):
            part = f"layer {name.split('.')[2]}"
        else:
            part = name.split(".")[0]
        groups[part] = groups.get(part, 0) + array.size
    return groups


teacher_groups, student_groups = parameter_groups(teacher_dir), parameter_groups(student_dir)
for title, groups in (("teacher (all-MiniLM-L6-v2)", teacher_groups),
                      ("student (layers 0, 2, 4)", student_groups)):  # fmt: skip
    print(f"{title}: {sum(groups.values()):,} parameters")
    for part, count in groups.items():
        print(f"    {part:32s} {count:>12,}")

# %%
fig, ax = plt.subplots(figsize=(9, 5.5))
layer_size = teacher_groups["layer 0"]


def draw_stack(x: float, title: str, n_layers: int, groups: dict[str, int], color: str) -> list[float]:
    """Boxes for embeddings and layers, bottom to top; returns each layer's y."""
    ax.add_patch(plt.Rectangle((x, 0), 2.4, 0.8, color="#bbbbbb"))
    embedding_count = groups["word embeddings"] + groups["positions, types, LayerNorm"]
    ax.text(x + 1.2, 0.4, f"embeddings\n{embedding_count / 1e6:.2f}M", ha="center", va="center", fontsize=9)
    ys = []
    for i in range(n_layers):
        y = 1.0 + i * 0.75
        ax.add_patch(plt.Rectangle((x, y), 2.4, 0.6, color=color))
        label = f"layer {i}  ({layer_size / 1e6:.2f}M)"
        ax.text(x + 1.2, y + 0.3, label, ha="center", va="center", fontsize=9)
        ys.append(y)
    ax.text(x + 1.2, 1.0 + n_layers * 0.75 + 0.2, f"{title}\n{sum(groups.values()) / 1e6:.1f}M parameters",
            ha="center", fontsize=10, weight="bold")  # fmt: skip
    return ys


teacher_ys = draw_stack(0.0, "teacher: BERT, 6 layers", 6, teacher_groups, "#9ecae1")
student_ys = draw_stack(4.0, "student: DistilBERT, 3 layers", 3, student_groups, "#fdae6b")
for student_index, teacher_index in enumerate([0, 2, 4]):
    ax.annotate("", xy=(4.0, student_ys[student_index] + 0.3), xytext=(2.4, teacher_ys[teacher_index] + 0.3),
                arrowprops=dict(arrowstyle="->", color="#555555"))  # fmt: skip
ax.annotate("", xy=(4.0, 0.4), xytext=(2.4, 0.4), arrowprops=dict(arrowstyle="->", color="#555555"))
ax.text(3.2, 0.55, "copied\n(type 0 folded\ninto positions)", ha="center", fontsize=7)
ax.set_xlim(-0.3, 6.7)
ax.set_ylim(-0.2, 6.3)
ax.axis("off")
ax.set_title("init_student: the student is initialised from every other teacher layer")
save_figure(fig, "distillation_architecture")
plt.show()

# %% [markdown]
# ## Initialisation: one layer out of two, and the token types folded away
#
# `student_name_map` is the whole of the init: BERT's names on the left, DistilBERT's on the
# right. Teacher layer 4 becomes student layer 2.

# %%
mapping = student_name_map([0, 2, 4], with_mlm_head=False)
for teacher_name, student_name in list(mapping.items())[:3] + [
    (t, s) for t, s in mapping.items() if t.startswith("encoder.layer.4.")
][:6]:
    print(f"{teacher_name:48s} -> {student_name}")

# %% [markdown]
# DistilBERT has no token-type embeddings. BERT adds the type-0 row to every token of a
# single-segment input, so `init_student` adds it to every row of the position table instead:
# word + (position + type₀) is the same sum. The student's embedding layer then gives the
# teacher's output, up to one float32 rounding of the folded table. Copying *all six* layers
# makes a DistilBERT that computes the teacher; copying three does not, which is why the
# student must be trained.

# %%
from numpy_distilbert import AutoTokenizer, BertModel, DistilBertModel

tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
texts = ["A man is eating food.", "The student learns from every other layer of its teacher."]
encoding = tokenizer(texts, padding=True)
ids, mask = np.array(encoding["input_ids"]), np.array(encoding["attention_mask"])

teacher = BertModel.from_pretrained(teacher_dir, dtype=np.float64)
all_layers = DistilBertModel.from_pretrained(init_student(teacher_dir, work / "all", layers=range(6)),
                                             dtype=np.float64)  # fmt: skip
three_layers = DistilBertModel.from_pretrained(student_dir, dtype=np.float64)
t_out = teacher(ids, mask, output_hidden_states=True)
a_out = all_layers(ids, mask, output_hidden_states=True)
s_out = three_layers(ids, mask)
real = mask.astype(bool)
embedding_difference = np.abs(t_out.hidden_states[0] - a_out.hidden_states[0])[real].max()
copy_difference = np.abs(t_out.last_hidden_state - a_out.last_hidden_state)[real].max()
print(f"embedding output, teacher vs student:     max |difference| {embedding_difference:.1e}")
print(f"all 6 layers copied, last hidden state:   max |difference| {copy_difference:.1e}")


def token_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


three_layer_cosine = token_cosines(s_out.last_hidden_state, t_out.last_hidden_state)[real].mean()
print(f"3 layers copied: mean cosine to the teacher's last hidden state {three_layer_cosine:.3f}")

# %% [markdown]
# ## The triple loss
#
# For each real token (attention mask 1), with the student's logits s, the teacher's t and
# their last hidden states h_s, h_t:
#
# * **L_ce** = T² · KL(softmax(t/T) ‖ softmax(s/T)), summed over the tokens and divided by their
#   number (torch's KLDivLoss "batchmean", as `distiller.py`). Dividing the logits by T > 1
#   softens both distributions, so that the teacher's *second* choices (its "dark knowledge")
#   carry weight; the factor T² keeps the gradient's size independent of T: ∂L_ce/∂s =
#   T/N · (softmax(s/T) − softmax(t/T)).
# * **L_mlm**: the student's own cross-entropy at the masked tokens (labels ≠ −100).
# * **L_cos** = mean over the tokens of 1 − cos(h_s, h_t): the hidden states should point the
#   same way.
#
# DistilBERT weighted them 5 : 2 : 1 at T = 2. all-MiniLM-L6-v2 has no MLM head (no logits), so
# the demo uses L_cos and **L_mse**, the squared distance of the mean-pooled sentence
# embeddings (sentence-transformers' objective for distilling an embedding model).
#
# The temperature's effect, on one made-up distribution over ten words:

# %%
words = ["cat", "dog", "kitten", "animal", "pet", "car", "tree", "idea", "blue", "ran"]
logits = np.array([6.0, 4.2, 3.9, 3.1, 2.8, 0.5, 0.1, -0.6, -1.0, -1.5])
fig, ax = plt.subplots(figsize=(9, 3.5))
width = 0.2
for k, temperature in enumerate([0.5, 1.0, 2.0, 4.0]):
    p = np.exp(logits / temperature - np.max(logits / temperature))
    p /= p.sum()
    ax.bar(np.arange(len(words)) + (k - 1.5) * width, p, width, label=f"T = {temperature}")
ax.set_xticks(np.arange(len(words)), words)
ax.set_ylabel("softmax(logits / T)")
ax.set_title("Soft targets: a higher temperature shows the teacher's second choices")
ax.legend()
save_figure(fig, "distillation_temperature")
plt.show()

# %% [markdown]
# `distillation_loss` returns the loss, its parts and the gradients the backward pass takes.
# A check that needs no torch: the gradient against central finite differences, in float64.
# (`tests/test_distill_loss.py` also compares it with torch autograd on distiller.py's formulas.)

# %%
rng = np.random.default_rng(0)
batch, length, vocab, dim = 2, 5, 11, 8
inputs = dict(
    student_logits=rng.standard_normal((batch, length, vocab)),
    teacher_logits=rng.standard_normal((batch, length, vocab)),
    student_hidden=rng.standard_normal((batch, length, dim)),
    teacher_hidden=rng.standard_normal((batch, length, dim)),
    attention_mask=np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
    labels=np.array([[-100, 3, -100, -100, 7], [-100, -100, 5, -100, -100]]),
)  # fmt: skip
out = distillation_loss(**inputs, alpha_mse=1.0)
print(f"loss {out.loss:.6f} = 5·{out.loss_ce:.4f} + 2·{out.loss_mlm:.4f} + 1·{out.loss_cos:.4f} "
      f"+ 1·{out.loss_mse:.4f}")
step = 1e-6
for key, analytic in (("student_logits", out.d_student_logits), ("student_hidden", out.d_student_hidden)):
    index = (1, 2, 3)
    plus, minus = dict(inputs), dict(inputs)
    plus[key], minus[key] = inputs[key].copy(), inputs[key].copy()
    plus[key][index] += step
    minus[key][index] -= step
    up, down = distillation_loss(**plus, alpha_mse=1.0).loss, distillation_loss(**minus, alpha_mse=1.0).loss
    numeric = (up - down) / (2 * step)
    print(f"d loss / d {key}{list(index)}: analytic {analytic[index]:+.10f}, "
          f"finite difference {numeric:+.10f}")

# %% [markdown]
# ## Dynamic masking
#
# Each batch is masked afresh: ⌈15%⌉ of its real tokens are chosen (never [CLS], [SEP] or
# padding); 80% of them become [MASK], 10% a random token, 10% stay. The labels keep the
# original ids there, −100 elsewhere. (A teacher without MLM head, as here, trains on plain text.)

# %%
from numpy_distilbert.masking import mask_tokens

sentence = tokenizer(["Distillation trains a small student to imitate a large teacher on plain text."])
ids = np.array(sentence["input_ids"])
masked = mask_tokens(
    ids, np.ones_like(ids), np.random.default_rng(4), mask_token_id=tokenizer.mask_token_id,
    vocab_size=tokenizer.vocab_size, special_ids=tokenizer.all_special_ids, mask_prop=0.3,
)  # fmt: skip
print(" ".join(tokenizer.convert_ids_to_tokens(ids[0].tolist())))
print(" ".join(tokenizer.convert_ids_to_tokens(masked.input_ids[0].tolist())))
print("labels:", masked.labels[0].tolist())

# %% [markdown]
# ## The demonstration: all-MiniLM-L6-v2 → 3 layers
#
# `python scripts/distill_demo.py` trained the student above (300 steps of 32 sentences) on
# 4,000 sentences from the Python standard library's docstrings (`data/distill_corpus/`) and
# measured it on 400 held-out ones and on 40 everyday sentences of another domain. Training
# nearly closes the gap on held-out docstring sentences; on everyday English, a domain it never
# saw, it helps much less. Its saved results:

# %%
results_path = Path("..") / "docs" / "distill_demo.json"
results = json.loads(results_path.read_text())
for when in ("init", "trained"):
    for split in ("heldout", "everyday"):
        r = results[when][split]
        print(f"{when:8s} {split:9s} mean cosine to the teacher {r['mean_cosine']:.4f}   "
              f"Spearman of pairwise similarities {r['spearman_pairwise']:.4f}")
speed, params = results["speed"], results["parameters"]
print(f"parameters: teacher {params['teacher']['total']:,}, student {params['student']['total']:,} "
      f"(outside the word embeddings: {params['teacher']['without_word_embeddings']:,} vs "
      f"{params['student']['without_word_embeddings']:,})")
print(f"encoding {speed['texts']} sentences: teacher {speed['teacher_seconds']:.2f} s, student "
      f"{speed['student_seconds']:.2f} s ({speed['speedup']:.2f}x faster; the encoders alone "
      f"{speed['encoder_speedup']:.2f}x)")
print(f"run time of the demo: {results['run_seconds']:.0f} s, "
      f"of which training {results['train_seconds']:.0f} s")

# %%
curve = results["curve"]
steps = [c["step"] for c in curve]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
left.plot(steps, [c["loss_cos"] for c in curve], label="L_cos (tokens)", alpha=0.8)
left.plot(steps, [c["loss_mse"] for c in curve], label="L_mse (sentences)", alpha=0.8)
left.plot(steps, [c["loss"] for c in curve], label="loss", color="black", linewidth=1)
left.set_xlabel("step")
left.set_title("training losses")
left.legend()
right.plot(steps, [c["lr"] for c in curve])
right.set_xlabel("step")
right.set_title("learning rate (linear warmup, linear decay)")
save_figure(fig, "distillation_losses")
plt.show()

# %% [markdown]
# Does the student rank sentence pairs as the teacher does? Each dot is one pair of held-out
# sentences: its cosine similarity for the teacher (x) and for the student (y), right after
# init and after training. On the diagonal, the student agrees with the teacher.

# %%
scatter = results["scatter"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharey=True)
for ax, key, title in ((axes[0], "init", "after init"), (axes[1], "student", "after training")):
    ax.scatter(scatter["teacher"], scatter[key], s=4, alpha=0.4)
    ax.plot([-0.2, 1], [-0.2, 1], color="black", linewidth=0.8)
    r = results["init" if key == "init" else "trained"]["heldout"]
    ax.set_title(f"{title}: Spearman {r['spearman_pairwise']:.3f}")
    ax.set_xlabel("teacher similarity")
axes[0].set_ylabel("student similarity")
save_figure(fig, "distillation_similarity_scatter")
plt.show()
