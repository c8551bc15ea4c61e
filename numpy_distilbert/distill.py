"""How DistilBERT was made: distillation from a BERT teacher (Sanh et al., 2019), in NumPy.

The recipe has four parts, and this module holds three of them (the fourth, dynamic masking,
is `masking.py`):

    student     BERT without token-type embeddings and pooler, half the layers (a DistilBERT)
    init        `init_student`: the teacher's embeddings, every other layer, its MLM head
    loss        `distillation_loss`: a weighted sum of
                  L_ce   KL(teacher ‖ student) of the distributions softened at temperature T, × T²
                  L_mlm  the student's own masked-LM cross-entropy
                  L_cos  1 − cos(student, teacher) of the last hidden states, token by token
                  L_mse  (an addition for sentence-embedding teachers) the squared distance of
                         the mean-pooled sentence embeddings
    training    `distill_step`: teacher forward, student forward, loss, backward, AdamW

Positions and reductions are those of transformers' research script
`examples/research_projects/distillation/distiller.py`, the code DistilBERT was trained
with; its weights (α_ce = 5, α_mlm = 2, α_cos = 1, T = 2) are the defaults here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from numpy_distilbert._checks import as_int
from numpy_distilbert.bert import BERT_BLOCK_NAMES, MLM_PREFIX, strip_encoder_prefix
from numpy_distilbert.config import ACTIVATIONS, BertConfig, ConfigError, DistilBertConfig, read_config_json
from numpy_distilbert.hub import resolve_model
from numpy_distilbert.losses import IGNORE_INDEX, cross_entropy, log_softmax
from numpy_distilbert.model import DISTILBERT_BLOCK_NAMES, BlockNames
from numpy_distilbert.sentence_transformers import mean_pool_backward, pool
from numpy_distilbert.weights import (
    SAFETENSORS_FILE,
    Checkpoint,
    CheckpointError,
    file_sha256,
    load_checkpoint,
)

# torch's cosine_embedding_loss adds this to both squared norms, so that a zero vector
# gives cos = 0 rather than 0/0.
COSINE_EPS = 1e-12


# ------------------------------------------------------------------------ the loss
@dataclass(frozen=True)
class DistillationLoss:
    """The triple loss (plus L_mse) of one batch and its gradients.

    `loss` = α_ce·loss_ce + α_mlm·loss_mlm + α_cos·loss_cos + α_mse·loss_mse. A part whose
    weight is 0 is not computed and is None. The gradients are those of `loss` with respect
    to the student's outputs, in their shapes and dtype, ready for the model's backward:
    `d_student_logits` (None when no logits were given) and `d_student_hidden` [B, L, D].
    """

    loss: float
    loss_ce: float | None
    loss_mlm: float | None
    loss_cos: float | None
    loss_mse: float | None
    d_student_logits: np.ndarray | None
    d_student_hidden: np.ndarray


def soft_target_kl(
    student_logits: np.ndarray, teacher_logits: np.ndarray, temperature: float
) -> tuple[float, np.ndarray]:
    """L_ce = T² · Σ_rows KL(p_t ‖ p_s) / N, and its gradient with respect to the student's logits.

    student_logits, teacher_logits: [N, V], one row per real token. p = softmax(logits / T).
    torch's KLDivLoss(reduction="batchmean") divides the sum over all N·V terms by N; the
    factor T² keeps the gradient's size independent of T (Hinton et al., 2015).

    Gradient: ∂/∂s of T²/N · Σ p_t (log p_t − log p_s) = T²/N · (p_s − p_t) / T = T/N · (p_s − p_t).
    """
    n_rows = student_logits.shape[0]
    log_p_student = log_softmax(student_logits / temperature)  # [N, V]
    log_p_teacher = log_softmax(teacher_logits / temperature)  # [N, V]
    p_teacher = np.exp(log_p_teacher)
    # p_t · log p_t is 0 where p_t underflows to 0 (torch's xlogy convention)
    kl = np.sum(p_teacher * (log_p_teacher - log_p_student), where=p_teacher > 0)
    loss = float(kl) * temperature**2 / n_rows
    d_logits = (np.exp(log_p_student) - p_teacher) * (temperature / n_rows)  # [N, V]
    return loss, d_logits


def cosine_embedding_loss(student: np.ndarray, teacher: np.ndarray) -> tuple[float, np.ndarray]:
    """L_cos = mean over rows of 1 − cos(s, t), torch's CosineEmbeddingLoss with target 1.

    student, teacher: [N, D]. cos = s·t / sqrt((|s|² + ε)(|t|² + ε)), ε = 1e-12 as torch.
    Gradient of one row's cos: with a = |s|² + ε, b = |t|² + ε,
        ∂cos/∂s = t / sqrt(ab) − cos · s / a,
    so ∂L/∂s = −(t / sqrt(ab) − cos · s / a) / N.
    """
    n_rows = student.shape[0]
    dot = np.einsum("nd,nd->n", student, teacher)  # [N]
    a = np.einsum("nd,nd->n", student, student) + COSINE_EPS  # [N]
    b = np.einsum("nd,nd->n", teacher, teacher) + COSINE_EPS  # [N]
    root = np.sqrt(a * b)
    cos = dot / root
    loss = float(np.sum(1.0 - cos)) / n_rows
    d_student = -(teacher / root[:, None] - (cos / a)[:, None] * student) / n_rows
    return loss, d_student


def sentence_mse(
    student_hidden: np.ndarray, teacher_hidden: np.ndarray, mask: np.ndarray
) -> tuple[float, np.ndarray]:
    """L_mse = mean over B·D of (pool(s) − pool(t))², on mean-pooled sentence embeddings.

    This is sentence-transformers' MSELoss, the usual objective for distilling a sentence
    embedding model (Reimers & Gurevych, 2020). Gradient: 2 (pool(s) − pool(t)) / (B·D),
    carried back through the mean pooling. (distiller.py's own `alpha_mse` is an MSE on
    the logits; a teacher without MLM head has none, hence this sentence-level one.)
    """
    difference = pool(student_hidden, mask, "mean") - pool(teacher_hidden, mask, "mean")  # [B, D]
    loss = float(np.mean(np.square(difference)))
    d_pooled = 2.0 * difference / difference.size
    return loss, mean_pool_backward(d_pooled, mask, student_hidden.dtype)


def _check_weight(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _as_mask(attention_mask: ArrayLike, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(attention_mask)
    if mask.shape != shape:
        raise ValueError(f"attention_mask has shape {mask.shape}, the hidden states {shape}")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
    mask = mask.astype(bool)
    if not mask.any():
        raise ValueError("attention_mask has no real token: there is nothing to distil")
    return mask


def _as_labels(labels: ArrayLike | None, mask: np.ndarray, vocab_size: int) -> np.ndarray:
    if labels is None:
        raise ValueError("alpha_mlm > 0 needs labels ([B, L], -100 where nothing is predicted)")
    array = np.asarray(labels)
    if array.shape != mask.shape:
        raise ValueError(f"labels have shape {array.shape}, the attention mask {mask.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {array.dtype}")
    bad = (array != IGNORE_INDEX) & ((array < 0) | (array >= vocab_size))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"label {int(array[row, col])} at position ({row}, {col}) is neither -100 nor a token "
            f"id in [0, {vocab_size})"
        )
    padded = (array != IGNORE_INDEX) & ~mask
    if padded.any():
        row, col = np.argwhere(padded)[0]
        raise ValueError(
            f"label {int(array[row, col])} at padding position ({row}, {col}): padding is never "
            f"predicted, its label must be -100"
        )
    if not (array != IGNORE_INDEX).any():
        raise ValueError(
            "labels are all -100: with alpha_mlm > 0 the MLM loss needs at least one masked token"
        )
    return array.astype(np.int64, copy=False)


def _logit_rows(logits: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    """Student or teacher logits as [N, V] rows at the real tokens (row-major order)."""
    n_real = int(mask.sum())
    if logits.ndim == 3:
        if logits.shape[:2] != mask.shape:
            raise ValueError(f"{name} has shape {logits.shape}; the attention mask is {mask.shape}")
        return logits[mask]
    if logits.ndim == 2 and logits.shape[0] == n_real:
        return logits
    raise ValueError(
        f"{name} must be [B, L, V] or [N, V] with one row per real token (N = {n_real}, the "
        f"attention mask's 1s in row-major order), got shape {logits.shape}"
    )


def distillation_loss(
    student_logits: ArrayLike | None,
    teacher_logits: ArrayLike | None,
    student_hidden: ArrayLike,
    teacher_hidden: ArrayLike,
    attention_mask: ArrayLike,
    labels: ArrayLike | None,
    temperature: float = 2.0,
    alpha_ce: float = 5.0,
    alpha_mlm: float = 2.0,
    alpha_cos: float = 1.0,
    alpha_mse: float = 0.0,
) -> DistillationLoss:
    """DistilBERT's triple loss (and a sentence-level MSE) with its gradients, as distiller.py.

    student_hidden, teacher_hidden: [B, L, D], the encoders' last hidden states.
    attention_mask: [B, L], 1 for a real token, 0 for padding. N = its number of 1s.
    labels: [B, L] token ids at the masked positions, -100 elsewhere (padding included).
    student_logits, teacher_logits: the MLM heads' logits, either [B, L, V] or only the rows
        at the real tokens, [N, V] in row-major order (what `model(..., positions=mask)`
        returns); None when the teacher has no MLM head (then α_ce = α_mlm = 0).

    Positions and reductions, as distiller.py computes them:
      * loss_ce: KL divergence between softmax(teacher/T) and softmax(student/T) at every real
        token (the attention mask), summed and divided by N (KLDivLoss "batchmean"), × T².
      * loss_mlm: the student's cross-entropy at the positions whose label is not -100, mean.
      * loss_cos: 1 − cos(student_hidden, teacher_hidden) at every real token, mean over N
        (CosineEmbeddingLoss with target 1, reduction "mean").
      * loss_mse: our addition for a teacher without MLM head: mean squared difference of the
        mean-pooled sentence embeddings, mean over B·D (sentence-transformers' MSELoss).
        distiller.py's `alpha_mse` weights an MSE on the logits instead; this is not that.

    The cost of the logits: L_ce needs the vocabulary projection at *every* real token (N rows
    of D × V), not only at the ~15% masked ones that plain MLM training projects. For
    DistilmBERT (V = 119,547) that is most of a step's time, in the teacher's forward and the
    student's forward and backward. Passing [N, V] rows skips the padding rows; [B, L, V]
    is accepted too (padding rows then get zero gradient).

    Returns a `DistillationLoss`: `.loss` and its parts (None where a weight is 0), and the
    gradients `.d_student_logits` (shape as given) and `.d_student_hidden` [B, L, D], in the
    inputs' dtype. A non-finite loss raises FloatingPointError naming the part.
    """
    temperature = float(temperature)
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    weights = {
        name: _check_weight(name, value)
        for name, value in (("alpha_ce", alpha_ce), ("alpha_mlm", alpha_mlm),
                            ("alpha_cos", alpha_cos), ("alpha_mse", alpha_mse))
    }  # fmt: skip
    if not any(weights.values()):
        raise ValueError("every loss weight is 0: nothing to optimise")

    s_hidden = np.asarray(student_hidden)
    t_hidden = np.asarray(teacher_hidden)
    if s_hidden.ndim != 3 or s_hidden.shape != t_hidden.shape:
        raise ValueError(
            f"student_hidden and teacher_hidden must both be [B, L, D], got {s_hidden.shape} "
            f"and {t_hidden.shape}"
        )
    dtype = np.result_type(s_hidden.dtype, np.float32)
    mask = _as_mask(attention_mask, s_hidden.shape[:2])
    d_hidden = np.zeros(s_hidden.shape, dtype=dtype)
    parts: dict[str, float | None] = dict.fromkeys(("ce", "mlm", "cos", "mse"))

    d_logits = None
    needs_logits = weights["alpha_ce"] > 0 or weights["alpha_mlm"] > 0
    if needs_logits and (student_logits is None or (weights["alpha_ce"] > 0 and teacher_logits is None)):
        raise ValueError(
            "alpha_ce > 0 needs student and teacher logits, alpha_mlm > 0 the student's; a teacher "
            "without MLM head distils with alpha_ce = alpha_mlm = 0 (alpha_cos, alpha_mse)"
        )
    if needs_logits:
        assert student_logits is not None
        s_logits = np.asarray(student_logits)
        s_rows = _logit_rows(s_logits, mask, "student_logits")
        d_rows = np.zeros(s_rows.shape, dtype=dtype)
        if weights["alpha_ce"] > 0:
            t_rows = _logit_rows(np.asarray(teacher_logits), mask, "teacher_logits")
            if t_rows.shape != s_rows.shape:
                raise ValueError(
                    f"teacher_logits rows {t_rows.shape} differ from the student's {s_rows.shape}"
                )
            parts["ce"], d_ce = soft_target_kl(s_rows, t_rows, temperature)
            d_rows += weights["alpha_ce"] * d_ce
        if weights["alpha_mlm"] > 0:
            label_rows = _as_labels(labels, mask, s_rows.shape[-1])[mask]  # [N]
            parts["mlm"], d_mlm = cross_entropy(s_rows, label_rows)  # mean over the labelled rows
            d_rows += weights["alpha_mlm"] * d_mlm
        if s_logits.ndim == 3:
            d_logits = np.zeros(s_logits.shape, dtype=dtype)
            d_logits[mask] = d_rows
        else:
            d_logits = d_rows

    if weights["alpha_cos"] > 0:
        parts["cos"], d_cos = cosine_embedding_loss(s_hidden[mask], t_hidden[mask])
        d_hidden[mask] += weights["alpha_cos"] * d_cos
    if weights["alpha_mse"] > 0:
        parts["mse"], d_mse = sentence_mse(s_hidden, t_hidden, mask)
        d_hidden += weights["alpha_mse"] * d_mse

    total = 0.0
    for key, value in parts.items():
        if value is None:
            continue
        if not np.isfinite(value):
            raise FloatingPointError(f"loss_{key} is {value}: non-finite logits or hidden states")
        total += weights[f"alpha_{key}"] * value
    return DistillationLoss(
        loss=total, loss_ce=parts["ce"], loss_mlm=parts["mlm"], loss_cos=parts["cos"],
        loss_mse=parts["mse"], d_student_logits=d_logits, d_student_hidden=d_hidden,
    )  # fmt: skip


# ------------------------------------------------------------------ the student's init
# Files copied from the teacher's directory as they are: the tokenizer's, and a
# sentence-transformers model's description (so that the student pools as the teacher does).
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SENTENCE_TRANSFORMERS_FILES = (
    "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
)  # fmt: skip
# DistilBERT's config.json keys that transformers adds, from the teacher's BERT equivalents.
DROPOUT_KEYS = {"dropout": "hidden_dropout_prob", "attention_dropout": "attention_probs_dropout_prob"}
DISTILBERT_LAYER_NORM_EPS = 1e-12  # fixed in DistilBERT; BERT reads its config's


def every_other_layer(n_teacher_layers: int) -> list[int]:
    """The paper's choice: teacher layers 0, 2, 4, … (one out of two)."""
    return list(range(0, n_teacher_layers, 2))


def _check_layers(layers: Sequence[int] | None, n_teacher_layers: int) -> list[int]:
    if layers is None:
        return every_other_layer(n_teacher_layers)
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of teacher layer indices, got {layers!r}")
    chosen = [as_int(layer, "each of layers", minimum=0) for layer in layers]
    if not chosen:
        raise ValueError("layers is empty: the student needs at least one layer")
    outside = [layer for layer in chosen if layer >= n_teacher_layers]
    if outside:
        raise ValueError(
            f"layers {outside} are out of range: the teacher has {n_teacher_layers} layers "
            f"(0 to {n_teacher_layers - 1})"
        )
    repeated = sorted({layer for layer in chosen if chosen.count(layer) > 1})
    if repeated:
        raise ValueError(f"layers lists teacher layer(s) {repeated} more than once")
    if chosen != sorted(chosen):
        raise ValueError(f"layers must be in increasing order (the teacher's), got {chosen}")
    return chosen


def _teacher_config(directory: Path) -> BertConfig:
    data = read_config_json(directory / "config.json")
    model_type = data.get("model_type") if isinstance(data, dict) else None
    if model_type != "bert":
        raise ConfigError(
            f"{directory / 'config.json'}: model_type is {model_type!r}; init_student takes a BERT "
            f"teacher (model_type 'bert') and makes a DistilBERT of it"
        )
    config = BertConfig.from_dict(data)
    if config.hidden_act not in ACTIVATIONS:
        raise ConfigError(
            f"{directory / 'config.json'}: hidden_act {config.hidden_act!r} has no DistilBERT "
            f"equivalent (DistilBERT's activation is one of {ACTIVATIONS})"
        )
    return config


def _block_tensor_names(names: BlockNames, i: int) -> list[str]:
    """Every tensor name of block `i` under one family's layout, in a fixed order."""
    prefix = names.layer.format(i=i)
    modules = (names.query, names.key, names.value, names.attention_out, names.attention_norm,
               names.ffn_in, names.ffn_out, names.output_norm)  # fmt: skip
    return [f"{prefix}{module}.{leaf}" for module in modules for leaf in ("weight", "bias")]


# BERT's MLM head -> DistilBERT's (the decoder's weight is the word embeddings, tied, in both).
MLM_HEAD_NAMES = {
    MLM_PREFIX + "transform.dense.weight": "vocab_transform.weight",
    MLM_PREFIX + "transform.dense.bias": "vocab_transform.bias",
    MLM_PREFIX + "transform.LayerNorm.weight": "vocab_layer_norm.weight",
    MLM_PREFIX + "transform.LayerNorm.bias": "vocab_layer_norm.bias",
    MLM_PREFIX + "bias": "vocab_projector.bias",
}


def student_name_map(layers: Sequence[int], with_mlm_head: bool) -> dict[str, str]:
    """{BERT tensor name (without `bert.`): DistilBERT tensor name (without `distilbert.`)}.

    Embeddings keep their names; block `layers[j]` of the teacher becomes block j of the
    student (`encoder.layer.4.attention.self.query` -> `transformer.layer.2.attention.q_lin`);
    the MLM head's `cls.predictions.*` become `vocab_transform`, `vocab_layer_norm`,
    `vocab_projector.bias`. The position table is not in the map: it is folded (see
    `init_student`).
    """
    mapping = {
        "embeddings.word_embeddings.weight": "embeddings.word_embeddings.weight",
        "embeddings.LayerNorm.weight": "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias": "embeddings.LayerNorm.bias",
    }
    for student_index, teacher_index in enumerate(layers):
        teacher_names = _block_tensor_names(BERT_BLOCK_NAMES, teacher_index)
        student_names = _block_tensor_names(DISTILBERT_BLOCK_NAMES, student_index)
        mapping.update(zip(teacher_names, student_names, strict=True))
    if with_mlm_head:
        mapping.update(MLM_HEAD_NAMES)
    return mapping


def _bert_shape(name: str, config: BertConfig) -> tuple[int, ...]:
    """The shape config.json implies for a BERT tensor of `student_name_map`'s keys."""
    d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
    if name == "embeddings.word_embeddings.weight":
        return (v, d)
    if name == MLM_PREFIX + "bias":
        return (v,)
    if name.endswith("intermediate.dense.weight"):
        return (f, d)
    if name.endswith("intermediate.dense.bias"):
        return (f,)
    if name.endswith(".output.dense.weight") and ".attention." not in name:
        return (d, f)
    if name.endswith(".weight") and ("LayerNorm" not in name):
        return (d, d)
    return (d,)


def _has_mlm_head(checkpoint: Checkpoint) -> bool:
    return any(name.startswith(MLM_PREFIX + "transform.") for name in checkpoint.tensors)


def _student_config(teacher: BertConfig, n_layers: int, with_mlm_head: bool) -> DistilBertConfig:
    extra = {key: teacher.extra[name] for key, name in DROPOUT_KEYS.items() if name in teacher.extra}
    extra.setdefault("dropout", 0.1)
    extra.setdefault("attention_dropout", 0.1)
    extra.update(
        qa_dropout=0.1, seq_classif_dropout=0.2,
        initializer_range=teacher.extra.get("initializer_range", 0.02),
        tie_word_embeddings=True, dtype="float32",
    )  # fmt: skip
    return DistilBertConfig(
        vocab_size=teacher.vocab_size, max_position_embeddings=teacher.max_position_embeddings,
        sinusoidal_pos_embds=False, n_layers=n_layers, n_heads=teacher.num_attention_heads,
        dim=teacher.hidden_size, hidden_dim=teacher.intermediate_size, activation=teacher.hidden_act,
        pad_token_id=teacher.pad_token_id,
        architectures=("DistilBertForMaskedLM" if with_mlm_head else "DistilBertModel",),
        extra=extra,
    )  # fmt: skip


def _copy_side_files(teacher_dir: Path, out_dir: Path) -> list[str]:
    """Copy the tokenizer files and a sentence-transformers description (JSON only) that exist."""
    copied = []
    for name in (*TOKENIZER_FILES, *SENTENCE_TRANSFORMERS_FILES):
        if (teacher_dir / name).is_file():
            shutil.copyfile(teacher_dir / name, out_dir / name)
            copied.append(name)
    modules = teacher_dir / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{modules}: not valid JSON ({exc})") from None
        for entry in entries if isinstance(entries, list) else []:
            folder = entry.get("path") if isinstance(entry, dict) else None
            # Only a plain folder name directly inside the teacher's directory, and only its JSON.
            if not isinstance(folder, str) or Path(folder).name != folder or folder in ("", ".", ".."):
                continue
            source = teacher_dir / folder
            if not source.is_dir():
                continue
            (out_dir / folder).mkdir(exist_ok=True)
            for file in sorted(source.glob("*.json")):
                if file.is_file():
                    shutil.copyfile(file, out_dir / folder / file.name)
                    copied.append(f"{folder}/{file.name}")
    return copied


def _write_atomically(path: Path, write: Callable[[str], object]) -> None:
    """Write through a temporary file in the same directory, then rename it over `path`: a
    reader never sees half a file, and a model memory-mapping the old one keeps its bytes."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)  # mkstemp made the file private (0600); give it the usual mode
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_checkpoint(directory: Path, config_dict: dict, tensors: dict[str, np.ndarray]) -> None:
    """config.json and model.safetensors (safetensors' own writer; never pickle), atomically."""
    from safetensors.numpy import save_file

    text = json.dumps(config_dict, indent=2, sort_keys=True) + "\n"
    _write_atomically(directory / "config.json", lambda p: Path(p).write_text(text, encoding="utf-8"))
    contiguous = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    _write_atomically(
        directory / SAFETENSORS_FILE, lambda p: save_file(contiguous, p, metadata={"format": "pt"})
    )


def init_student(
    teacher: str | Path, out_dir: str | Path, layers: Sequence[int] | None = None, *, overwrite: bool = False
) -> Path:
    """Write a DistilBERT student initialised from a BERT teacher, as DistilBERT was (Sanh et al.).

    teacher: a BERT model directory or a model id (resolved as `from_pretrained` does); its
        config.json must say model_type "bert".
    out_dir: where config.json, model.safetensors (safetensors, no pickle) and the teacher's
        tokenizer files go (and its sentence-transformers files, modules.json and the pooling
        folder's JSON, when it has them). An existing model there is refused unless `overwrite`.
    layers: the teacher layers the student's blocks are copied from, increasing; None takes
        every other layer, 0, 2, 4, … as the paper does (distiller's own script used
        0, 2, 4, 7, 9, 11 for a 12-layer teacher: pass that to reproduce it).

    What is copied, with BERT's names mapped to DistilBERT's (`student_name_map`): the word
    embeddings, the embedding LayerNorm, the chosen blocks, and the MLM head when the teacher
    has one (`cls.predictions.*` -> `vocab_transform`, `vocab_layer_norm`,
    `vocab_projector.bias`; the decoder stays tied to the word embeddings, or is stored as
    `vocab_projector.weight` when the teacher's file holds a different one). The pooler, the
    NSP head and any task head are dropped: DistilBERT has none.

    Token types: DistilBERT has no token-type embeddings. The teacher's type-0 row is added
    to every row of the position table, so that word + position' = word + position + type₀:
    for single-segment input (all token types 0, the usual case) the student computes the
    teacher's embedding-layer output. The sum is rounded once to float32 when stored, so the
    two agree to float32 rounding (tests measure ≤ 1e-6 after the LayerNorm), not bit for
    bit; a second segment's type-1 offset is lost, as in DistilBERT itself. This holds when
    the teacher's layer_norm_eps is DistilBERT's fixed 1e-12 (BERT's default, and
    all-MiniLM-L6-v2's); another epsilon makes every LayerNorm differ slightly.

    Returns out_dir as a Path. Raises ConfigError for a teacher that is not BERT or whose
    activation DistilBERT lacks, ValueError for bad `layers`, FileExistsError for an
    existing model in out_dir.
    """
    teacher_dir = resolve_model(teacher)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out_dir {out} exists and is not a directory")
    if out.is_dir() and out.resolve() == teacher_dir.resolve():
        raise ValueError(f"out_dir {out} is the teacher's own directory; choose another")
    if (out / SAFETENSORS_FILE).exists() and not overwrite:
        raise FileExistsError(f"{out / SAFETENSORS_FILE} exists; pass overwrite=True to replace it")
    config = _teacher_config(teacher_dir)
    chosen = _check_layers(layers, config.num_hidden_layers)
    checkpoint = load_checkpoint(teacher_dir)
    strip_encoder_prefix(checkpoint)
    with_head = _has_mlm_head(checkpoint)

    d = config.hidden_size
    tensors: dict[str, np.ndarray] = {}
    for teacher_name, student_name in student_name_map(chosen, with_head).items():
        shape = _bert_shape(teacher_name, config)
        tensors[student_name] = checkpoint.take(teacher_name, shape, np.dtype(np.float32), why="BERT teacher")
    positions = checkpoint.take("embeddings.position_embeddings.weight", (config.max_position_embeddings, d),
                                np.dtype(np.float32))  # fmt: skip
    types = checkpoint.take("embeddings.token_type_embeddings.weight", (config.type_vocab_size, d),
                            np.dtype(np.float32))  # fmt: skip
    tensors["embeddings.position_embeddings.weight"] = positions + types[0]  # [P, D] + [D]
    untied = False
    words = tensors["embeddings.word_embeddings.weight"]
    decoder_name = MLM_PREFIX + "decoder.weight"
    if with_head and decoder_name in checkpoint:
        decoder = checkpoint.take(decoder_name, words.shape, np.dtype(np.float32), why="MLM head")
        if not np.array_equal(decoder, words):  # an untied output matrix is kept as it is
            tensors["vocab_projector.weight"] = decoder
            untied = True

    student = _student_config(config, len(chosen), with_head)
    config_dict = student.to_dict()
    config_dict.pop("id2label", None)  # no labels: as transformers writes a config without them
    config_dict.pop("label2id", None)
    if untied:
        config_dict["tie_word_embeddings"] = False
    if with_head:  # transformers' DistilBertForMaskedLM keeps the encoder under `distilbert.`
        tensors = {(n if n.startswith("vocab_") else f"distilbert.{n}"): a for n, a in tensors.items()}
    out.mkdir(parents=True, exist_ok=True)
    write_checkpoint(out, config_dict, tensors)
    _copy_side_files(teacher_dir, out)
    return out


# ------------------------------------------------------------------------ the student step
def has_mlm_head(model: Any) -> bool:
    """Whether a model (teacher or student) has an MLM head: our MLM classes have `mlm_logits`."""
    return callable(getattr(model, "mlm_logits", None))


def teacher_forward(
    teacher: Any, input_ids: np.ndarray, attention_mask: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray]:
    """The teacher's (logits at the real tokens [N, V] or None without MLM head, last hidden [B, L, D]).

    Single-segment input (token types all 0), which the student's folded position table
    reproduces. The vocabulary projection runs at the real tokens only (L_ce needs no more).
    """
    encoder = getattr(teacher, "bert", teacher)  # BertForMaskedLM keeps the encoder as `.bert`
    hidden = encoder(input_ids, attention_mask).last_hidden_state  # [B, L, D]
    if not has_mlm_head(teacher):
        return None, hidden
    logits = teacher.mlm_logits(hidden[attention_mask.astype(bool)])
    return logits, hidden


@dataclass(frozen=True)
class LossWeights:
    """The triple loss's temperature and weights (distiller.py's defaults)."""

    temperature: float = 2.0
    alpha_ce: float = 5.0
    alpha_mlm: float = 2.0
    alpha_cos: float = 1.0
    alpha_mse: float = 0.0

    @classmethod
    def for_teacher(cls, teacher: Any) -> LossWeights:
        """distiller's weights for an MLM teacher; cosine + sentence MSE for a bare encoder."""
        if has_mlm_head(teacher):
            return cls()
        return cls(alpha_ce=0.0, alpha_mlm=0.0, alpha_cos=1.0, alpha_mse=1.0)


def distill_step(
    student: Any,
    teacher: Any,
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    labels: np.ndarray | None,
    optimizer: Any,
    weights: LossWeights = LossWeights(),
    *,
    max_grad_norm: float | None = None,
    dropout_rng: np.random.Generator | None = None,
    teacher_outputs: tuple[np.ndarray | None, np.ndarray] | None = None,
) -> DistillationLoss:
    """One optimisation step: teacher forward, student forward, loss, backward, AdamW.

    student: DistilBertForMaskedLM (then its logits at the real tokens enter L_ce and L_mlm)
        or DistilBertModel (hidden states only); its parameters are the optimizer's.
    teacher: BertForMaskedLM or BertModel (or any model with the same calls); only run forward.
    input_ids, attention_mask, labels: [B, L] (labels -100 where nothing is predicted; None
        without MLM loss). teacher_outputs: the teacher's (logits, hidden) when already
        computed, e.g. cached for a fixed batch.
    max_grad_norm: clip the global gradient norm first (distiller: 5.0), as torch does.
    Returns the loss and its parts (`DistillationLoss`) before the update.
    """
    from numpy_distilbert.optim import clip_grad_norm

    mask = np.asarray(attention_mask).astype(bool)
    t_logits, t_hidden = teacher_outputs if teacher_outputs is not None else teacher_forward(
        teacher, input_ids, attention_mask
    )
    with_logits = has_mlm_head(student) and (weights.alpha_ce > 0 or weights.alpha_mlm > 0)
    extra = {"positions": mask} if with_logits else {}
    outputs, tape = student.forward_train(
        input_ids, attention_mask, dropout_rng=dropout_rng, **extra
    )
    result = distillation_loss(
        outputs.logits if with_logits else None, t_logits if with_logits else None,
        tape.last_hidden_state, t_hidden, attention_mask, labels,
        temperature=weights.temperature, alpha_ce=weights.alpha_ce, alpha_mlm=weights.alpha_mlm,
        alpha_cos=weights.alpha_cos, alpha_mse=weights.alpha_mse,
    )  # fmt: skip
    output_grads = {"last_hidden_state": result.d_student_hidden}
    if with_logits and result.d_student_logits is not None:
        output_grads["logits"] = result.d_student_logits
    grads = student.backward(tape, **output_grads)
    if max_grad_norm is not None:
        clip_grad_norm(grads, max_norm=max_grad_norm)
    optimizer.step(grads)
    return result


# ------------------------------------------------------------------ a resumable run
STATE_FILE = "distill_state.json"  # the run's options and where its last checkpoint is
LOG_FILE = "distill_log.jsonl"  # one line per step: the loss and its parts, the learning rate
CHECKPOINT_DIR = ".distill"  # checkpoint-<step>/{model,optimizer}.safetensors
STATE_FORMAT = 1


@dataclass(frozen=True)
class DistillOptions:
    """What defines a run; a resumed run must be given the same (`distill_state.json` keeps them)."""

    teacher: str
    layers: tuple[int, ...] | None = None
    steps: int = 1000
    batch_size: int = 32
    lr: float = 5e-4
    max_length: int = 128
    seed: int = 0
    warmup: float = 0.05  # distiller's warmup_prop: this share of the steps warms the lr up
    max_grad_norm: float | None = 5.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)  # distiller's
    eps: float = 1e-6
    dropout: bool = True  # the student trains with its config's dropout (distiller's student.train())
    mask_prop: float = 0.15  # masking applies to an MLM teacher only: a bare encoder sees plain text
    weights: LossWeights | None = None  # None: LossWeights.for_teacher
    float64: bool = False
    # A teacher without MLM head sees the same plain text every epoch: its last hidden states
    # can be computed once for the whole corpus (memory: tokens x dim floats) instead of every step.
    cache_teacher: bool = False

    def as_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["layers"] = None if self.layers is None else list(self.layers)
        data["betas"] = list(self.betas)
        data["weights"] = None if self.weights is None else vars(self.weights)
        return data


def _sha256_of_texts(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def batch_rows(step: int, n_texts: int, batch_size: int, seed: int) -> np.ndarray:
    """The corpus rows of `step` (0-based): each epoch is a fresh seeded permutation, cut in
    batches. A function of (seed, step) alone, so that a resumed run draws what an
    uninterrupted one would have drawn."""
    per_epoch = -(-n_texts // batch_size)
    epoch, index = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_texts)
    return order[index * batch_size : (index + 1) * batch_size]


def teacher_cache(teacher: Any, encoded: Sequence[Sequence[int]], pad_id: int) -> list[np.ndarray]:
    """The teacher's last hidden state of every text, [len_i, D] each, computed in a fixed order
    (length-sorted batches of 64), so that a resumed run gets the very same numbers."""
    from numpy_distilbert.pipelines.base import length_sorted_batches, pad_batch

    cache: list[np.ndarray] = [np.empty(0)] * len(encoded)
    for rows in length_sorted_batches([len(e) for e in encoded], 64):
        ids, mask = pad_batch([encoded[r] for r in rows], pad_id)
        _, hidden = teacher_forward(teacher, ids, mask)
        for i, r in enumerate(rows):
            cache[r] = hidden[i, : len(encoded[r])].copy()
    return cache


def _cached_hidden(cache: list[np.ndarray], rows: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The cached teacher states of `rows`, right-padded with zeros to [B, L, D]."""
    dim = cache[int(rows[0])].shape[-1]
    hidden = np.zeros((*shape, dim), dtype=cache[int(rows[0])].dtype)
    for i, r in enumerate(rows):
        hidden[i, : len(cache[int(r)])] = cache[int(r)]
    return hidden


def _load_teacher(path: Path, dtype: Any) -> Any:
    from numpy_distilbert.bert import BertForMaskedLM, BertModel

    checkpoint = load_checkpoint(path)
    strip_encoder_prefix(checkpoint)
    model_class = BertForMaskedLM if _has_mlm_head(checkpoint) else BertModel
    return model_class.from_pretrained(path, dtype=dtype)


def _load_student(directory: Path, dtype: Any) -> Any:
    from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel

    config = DistilBertConfig.from_pretrained(directory)
    with_head = "DistilBertForMaskedLM" in config.architectures
    model_class = DistilBertForMaskedLM if with_head else DistilBertModel
    return model_class.from_pretrained(directory, dtype=dtype, mmap=False)


def _save_tensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    from safetensors.numpy import save_file

    contiguous = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    _write_atomically(path, lambda p: save_file(contiguous, p, metadata={"format": "pt", **metadata}))


def _save_run(out: Path, step: int, student: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Checkpoint `step`: new files first, then the state file that points at them (one atomic
    rename), then the old checkpoints go. An interruption at any moment leaves a state file that
    names a complete checkpoint. The student itself (out/model.safetensors) is rewritten too."""
    params = student.named_parameters()
    folder = out / CHECKPOINT_DIR / f"checkpoint-{step}"
    folder.mkdir(parents=True, exist_ok=True)
    _save_tensors(folder / "model.safetensors", params, {"step": str(step)})
    moments = {f"exp_avg.{n}": a for n, a in optimizer.exp_avg.items()}
    moments.update({f"exp_avg_sq.{n}": a for n, a in optimizer.exp_avg_sq.items()})
    _save_tensors(folder / "optimizer.safetensors", moments, {"step": str(step)})
    files = ("model.safetensors", "optimizer.safetensors")
    state = {**state, "step": step, "checkpoint": folder.name, "lr": optimizer.lr,
             "optimizer_steps": optimizer.steps,
             "sha256": {name: file_sha256(folder / name) for name in files}}  # fmt: skip
    text = json.dumps(state, indent=2) + "\n"
    _write_atomically(out / STATE_FILE, lambda p: Path(p).write_text(text, encoding="utf-8"))
    for old in (out / CHECKPOINT_DIR).glob("checkpoint-*"):
        if old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)
    _save_tensors(out / SAFETENSORS_FILE, params, {})


def _restore_run(out: Path, state: dict[str, Any], student: Any, optimizer: Any) -> None:
    from safetensors.numpy import load_file

    folder = out / CHECKPOINT_DIR / str(state.get("checkpoint", ""))
    if Path(str(state.get("checkpoint", ""))).name != state.get("checkpoint") or not folder.is_dir():
        raise FileNotFoundError(
            f"{out / STATE_FILE} names checkpoint {state.get('checkpoint')!r}, which is missing"
        )
    for name, expected in state["sha256"].items():
        if file_sha256(folder / name) != expected:
            raise CheckpointError(f"{folder / name} does not match {out / STATE_FILE}: it was changed")
    params = student.named_parameters()
    saved = load_file(str(folder / "model.safetensors"))
    if set(saved) != set(params):
        raise CheckpointError(f"{folder}: the saved parameters are not the student's")
    for name, array in params.items():
        array[...] = saved[name]
    moments = load_file(str(folder / "optimizer.safetensors"))
    for prefix, target in (("exp_avg.", optimizer.exp_avg), ("exp_avg_sq.", optimizer.exp_avg_sq)):
        target.clear()
        target.update({n[len(prefix):]: a for n, a in moments.items() if n.startswith(prefix)})
    optimizer.steps = {name: int(count) for name, count in state["optimizer_steps"].items()}


def _read_log(out: Path, up_to_step: int) -> list[dict[str, Any]]:
    """The log's records of steps 1..up_to_step (a resumed run drops what came after its checkpoint)."""
    path = out / LOG_FILE
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if r["step"] <= up_to_step]


def distill(
    options: DistillOptions,
    texts: Sequence[str],
    out_dir: str | Path,
    *,
    save_every: int = 100,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Distil `options.teacher` into a DistilBERT in `out_dir`, or resume the run already there.

    texts: the training corpus, one text per item. A fresh out_dir (or one without a model) gets
    `init_student(teacher, out_dir, layers)` first; an out_dir holding `distill_state.json`
    resumes from its last checkpoint and must be given the same options and texts (a difference
    raises ValueError naming the option). Every step: the rows `batch_rows` picks, tokenized by
    the teacher's tokenizer (cut at max_length); for an MLM teacher, dynamic masking
    (`masking.mask_tokens`, seeded by (seed, step)); the teacher's outputs; `distill_step` with
    AdamW (distiller's betas and eps), a linear warmup/decay schedule and gradient clipping.
    Every `save_every` steps and at the end: a checkpoint (model, optimizer moments, state), and
    the student in out_dir, which our pipelines and transformers load.
    on_step: called after each step with its record {"step", "loss", "loss_ce", …, "lr"}.
    Returns the records of all steps (also in out_dir/distill_log.jsonl).
    """
    from numpy_distilbert.auto import AutoTokenizer
    from numpy_distilbert.masking import mask_tokens
    from numpy_distilbert.optim import AdamW, get_linear_schedule_with_warmup
    from numpy_distilbert.pipelines.base import pad_batch

    out = Path(out_dir)
    if not texts:
        raise ValueError("the training corpus is empty")
    steps = as_int(options.steps, "steps", minimum=1)
    batch_size = as_int(options.batch_size, "batch_size", minimum=1)
    max_length = as_int(options.max_length, "max_length", minimum=2)
    save_every = as_int(save_every, "save_every", minimum=1)
    dtype = np.float64 if options.float64 else np.float32
    teacher_dir = resolve_model(options.teacher)
    identity = {"format": STATE_FORMAT, "options": options.as_json(), "texts_sha256": _sha256_of_texts(texts),
                "n_texts": len(texts)}  # fmt: skip

    state_path = out / STATE_FILE
    state: dict[str, Any] | None = None
    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        for key in ("format", "n_texts", "texts_sha256"):
            if state.get(key) != identity[key]:
                raise ValueError(
                    f"{state_path}: the run there used other {key.replace('_', ' ')}; resume with "
                    f"the same training texts, or choose another output directory"
                )
        for key, value in options.as_json().items():
            saved = state["options"].get(key)
            if saved != value:
                raise ValueError(
                    f"{state_path}: the run there has {key}={saved!r}, not {value!r}; resume with "
                    f"the same options, or choose another output directory"
                )
    elif (out / SAFETENSORS_FILE).exists():
        raise FileExistsError(f"{out} holds a model that is not a distillation run ({STATE_FILE} is missing)")
    else:
        init_student(teacher_dir, out, options.layers)

    teacher = _load_teacher(teacher_dir, dtype)
    student = _load_student(out, dtype)
    tokenizer = AutoTokenizer.from_pretrained(out)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    weights = options.weights or LossWeights.for_teacher(teacher)
    masking = has_mlm_head(teacher) and options.mask_prop > 0
    cache = None
    if options.cache_teacher:
        if has_mlm_head(teacher):
            raise ValueError(
                "cache_teacher needs a teacher without MLM head: masking changes its input every step"
            )
        cache = teacher_cache(teacher, encoded, tokenizer.pad_token_id)
    optimizer = AdamW(student.named_parameters(), lr=options.lr, betas=options.betas, eps=options.eps,
                      weight_decay=options.weight_decay)  # fmt: skip
    first = 0
    if state is not None:
        _restore_run(out, state, student, optimizer)
        first = int(state["step"])
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(options.warmup * steps), steps)
    for _ in range(first):  # the schedule is a function of the step: replay it
        schedule.step()
    records = _read_log(out, first)
    with (out / LOG_FILE).open("w", encoding="utf-8") as log:
        for record in records:
            log.write(json.dumps(record) + "\n")
    for step in range(first, steps):
        started = time.perf_counter()
        rows = batch_rows(step, len(encoded), batch_size, options.seed)
        ids, mask = pad_batch([encoded[r] for r in rows], tokenizer.pad_token_id)
        labels = None
        if masking:
            masked = mask_tokens(
                ids, mask, np.random.default_rng([options.seed, step, 1]),
                mask_token_id=tokenizer.mask_token_id, vocab_size=student.config.vocab_size,
                special_ids=tokenizer.all_special_ids, mask_prop=options.mask_prop,
            )  # fmt: skip
            ids, labels = masked.input_ids, masked.labels
        dropout_rng = np.random.default_rng([options.seed, step, 2]) if options.dropout else None
        lr = optimizer.lr
        cached = None if cache is None else (None, _cached_hidden(cache, rows, ids.shape))
        result = distill_step(student, teacher, ids, mask, labels, optimizer, weights,
                              max_grad_norm=options.max_grad_norm, dropout_rng=dropout_rng,
                              teacher_outputs=cached)  # fmt: skip
        schedule.step()
        record = {"step": step + 1, "loss": result.loss, "loss_ce": result.loss_ce,
                  "loss_mlm": result.loss_mlm, "loss_cos": result.loss_cos, "loss_mse": result.loss_mse,
                  "lr": lr, "seconds": time.perf_counter() - started}  # fmt: skip
        records.append(record)
        with (out / LOG_FILE).open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        if (step + 1) % save_every == 0 or step + 1 == steps:
            _save_run(out, step + 1, student, optimizer, identity)
        if on_step is not None:
            on_step(record)
    return records
