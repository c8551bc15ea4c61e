"""AdamW, its linear warmup schedule and gradient clipping: torch's arithmetic, in NumPy.

    optimizer = AdamW(model.named_parameters(), lr=5e-5, no_decay=is_bias_or_norm)
    schedule = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=10, num_training_steps=100)
    for batch in batches:
        loss, grads = model.loss_and_grads(**batch)
        clip_grad_norm(grads, max_norm=1.0)
        optimizer.step(grads)          # updates the parameter arrays in place
        schedule.step()                # sets optimizer.lr for the next step

Each piece follows its torch/transformers counterpart operation by operation, so that N steps in
float64 stay within a few units in the last place of torch's (tests/test_optim.py measures it):

* `AdamW` is `torch.optim.AdamW` on CPU (its single-tensor path, `_single_tensor_adam` with
  `decoupled_weight_decay=True`);
* `get_linear_schedule_with_warmup` is transformers' (a `LambdaLR` with the linear factor);
* `clip_grad_norm` is `torch.nn.utils.clip_grad_norm_`, except for a non-finite norm: torch's
  default (`error_if_nonfinite=False`) multiplies every gradient by max_norm / inf = 0 or by
  NaN, silently; here that raises `FloatingPointError` naming the tensors, and nothing changes.

Every function takes the parameter and gradient dicts keyed by transformers' parameter names
(`model.named_parameters()`, `model.loss_and_grads`); nothing imports the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from numpy_distilbert._checks import as_int

__all__ = [
    "AdamW",
    "LinearSchedule",
    "adamw_update",
    "clip_grad_norm",
    "get_linear_schedule_with_warmup",
    "is_bias_or_norm",
    "linear_warmup_factor",
]

# The update runs over blocks of about this many elements (whole rows of a parameter), so that
# its scratch arrays stay small and in cache: the word embeddings (119,547 x 768) would
# otherwise need two more copies of themselves at once.
UPDATE_BLOCK_ELEMENTS = 1 << 16


def is_bias_or_norm(name: str) -> bool:
    """The parameters transformers' Trainer exempts from weight decay: biases and LayerNorm
    weights (BERT's `LayerNorm.weight`, DistilBERT's `sa_layer_norm.weight`, `vocab_layer_norm`...)."""
    lowered = name.lower()
    return name.endswith("bias") or "layernorm" in lowered or "layer_norm" in lowered


# ---------------------------------------------------------------------------- AdamW
def adamw_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdamW step on one tensor (or a block of one), in place, in torch's order:

        θ ← θ·(1 − lr·λ)                                decoupled weight decay, first
        m ← lerp(m, g, 1 − β1)                          = m + (1 − β1)(g − m)
        v ← v·β2 + (1 − β2)·g·g
        θ ← θ − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)

    `step` is t, counted from 1. All arrays have one shape and dtype; the Python-float
    coefficients become that dtype, as torch turns its scalars into the tensor's type.
    """
    if weight_decay != 0:
        param *= 1 - lr * weight_decay
    scratch = grad - exp_avg  # g − m
    # torch's lerp picks its formula by the weight's size, for accuracy near weight 1
    weight = 1 - beta1
    if abs(weight) < 0.5:
        scratch *= weight
        exp_avg += scratch  # m + w·(g − m)
    else:
        scratch *= 1 - weight
        np.subtract(grad, scratch, out=exp_avg)  # g − (1 − w)·(g − m)
    exp_avg_sq *= beta2
    np.multiply(grad, 1 - beta2, out=scratch)
    scratch *= grad
    exp_avg_sq += scratch  # addcmul: v + ((1 − β2)·g)·g
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / bias_correction1
    denominator = np.sqrt(exp_avg_sq)
    denominator /= bias_correction2_sqrt
    denominator += eps
    np.multiply(exp_avg, -step_size, out=scratch)
    scratch /= denominator
    param += scratch  # addcdiv: θ + (−step_size·m) / denominator


def _row_blocks(array: np.ndarray) -> Iterable[slice]:
    """Slices of whole rows (first axis) of about UPDATE_BLOCK_ELEMENTS elements; views of any layout."""
    rows = max(1, UPDATE_BLOCK_ELEMENTS // max(1, array[0].size))
    for start in range(0, array.shape[0], rows):
        yield slice(start, start + rows)


def _check_float(
    value: float, name: str, low: float = 0.0, high: float = math.inf, high_open: bool = False
) -> float:
    number = float(value)
    if not (low <= number and (number < high if high_open else number <= high)):
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")
    return number


class AdamW:
    """torch.optim.AdamW over a dict of named NumPy parameters (updated in place).

    params: name -> writable float32/float64 array, e.g. `model.named_parameters()`. The dict
        is kept, not copied: `step` writes into its arrays.
    lr, betas, eps, weight_decay: as torch's. `lr` is an attribute a schedule sets between steps.
    no_decay: the parameters that get no weight decay, as a predicate on names (e.g.
        `is_bias_or_norm`, what transformers' Trainer does) or a collection of names; torch's
        two parameter groups `[{"params": decay, ...}, {"params": rest, "weight_decay": 0.0}]`.
        None (the default, torch's): every parameter decays.

    State, created at a parameter's first step as torch does: `exp_avg`, `exp_avg_sq` (dicts of
    arrays like the parameters) and `steps` (name -> how many updates it received).
    """

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        no_decay: Callable[[str], bool] | Iterable[str] | None = None,
    ):
        self.lr = _check_float(lr, "lr", high=math.inf, high_open=True)
        self.initial_lr = self.lr  # what a schedule scales (torch's group["initial_lr"])
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (
            _check_float(betas[0], "beta1", high=1.0, high_open=True),
            _check_float(betas[1], "beta2", high=1.0, high_open=True),
        )
        self.eps = _check_float(eps, "eps")
        self.weight_decay = _check_float(weight_decay, "weight_decay")
        for name, param in params.items():
            if not isinstance(param, np.ndarray) or param.dtype not in (np.float32, np.float64):
                kind = param.dtype if isinstance(param, np.ndarray) else type(param).__name__
                raise TypeError(f"parameter {name!r} must be a float32 or float64 numpy array, got {kind}")
            if not param.flags.writeable:
                raise ValueError(
                    f"parameter {name!r} is read-only (memory-mapped weights?): pass "
                    "model.named_parameters(), "
                    "which copies the weights into writable arrays"
                )
        self.params = params
        self.decays = {name: True for name in params}
        if callable(no_decay):
            self.decays = {name: not no_decay(name) for name in params}
        elif no_decay is not None:
            exempt = set([no_decay] if isinstance(no_decay, str) else no_decay)
            unknown = sorted(exempt - set(params))
            if unknown:
                raise KeyError(f"no_decay names parameters that do not exist: {unknown[:5]}")
            self.decays = {name: name not in exempt for name in params}
        self.exp_avg: dict[str, np.ndarray] = {}
        self.exp_avg_sq: dict[str, np.ndarray] = {}
        self.steps: dict[str, int] = {}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter named in `grads` (others are skipped, as torch skips
        `grad is None`). Checks everything first, so that a refused step changes nothing:
        unknown names, wrong shapes and non-finite gradients raise, naming the tensor."""
        for name, grad in grads.items():
            if name not in self.params:
                raise KeyError(f"gradient for {name!r}, which is not a parameter of this optimizer")
            param = self.params[name]
            if np.shape(grad) != param.shape:
                raise ValueError(
                    f"gradient for {name!r} has shape {np.shape(grad)}, the parameter {param.shape}"
                )
            if not np.isfinite(grad).all():
                raise FloatingPointError(f"gradient for {name!r} has non-finite values (NaN or inf)")
        beta1, beta2 = self.betas
        for name, grad in grads.items():
            param = self.params[name]
            grad = np.asarray(grad, dtype=param.dtype)
            if name not in self.steps:
                self.exp_avg[name] = np.zeros_like(param)
                self.exp_avg_sq[name] = np.zeros_like(param)
                self.steps[name] = 0
            self.steps[name] += 1
            decay = self.weight_decay if self.decays[name] else 0.0
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            if param.ndim == 0:  # a scalar parameter as a one-element view, so that it has rows
                param, grad, m, v = param.reshape(1), grad.reshape(1), m.reshape(1), v.reshape(1)
            for rows in _row_blocks(param):
                adamw_update(
                    param[rows],
                    grad[rows],
                    m[rows],
                    v[rows],
                    self.steps[name],
                    self.lr,
                    beta1,
                    beta2,
                    self.eps,
                    decay,
                )


# ------------------------------------------------------------------------- schedule
def linear_warmup_factor(step: int, num_warmup_steps: int, num_training_steps: int) -> float:
    """transformers' linear schedule: 0 → 1 over the warmup steps, then 1 → 0 at the last step."""
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    remaining = float(num_training_steps - step) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, remaining)


class LinearSchedule:
    """torch's LambdaLR with `linear_warmup_factor`: sets `optimizer.lr = initial_lr · factor(t)`.

    Created at t = last_epoch + 1 (so lr starts at 0 with warmup); each `step()`, called after
    `optimizer.step`, advances t by one.
    """

    def __init__(
        self, optimizer: AdamW, num_warmup_steps: int, num_training_steps: int, last_epoch: int = -1
    ):
        self.num_warmup_steps = as_int(num_warmup_steps, "num_warmup_steps", minimum=0)
        self.num_training_steps = as_int(num_training_steps, "num_training_steps", minimum=0)
        self.optimizer = optimizer
        if as_int(last_epoch, "last_epoch", minimum=-1) == -1:
            optimizer.initial_lr = optimizer.lr  # LambdaLR records the lr it starts from
        self.base_lr = optimizer.initial_lr
        self.last_epoch = last_epoch
        self.step()

    def step(self) -> None:
        self.last_epoch += 1
        factor = linear_warmup_factor(self.last_epoch, self.num_warmup_steps, self.num_training_steps)
        self.optimizer.lr = self.base_lr * factor

    def get_last_lr(self) -> list[float]:
        return [self.optimizer.lr]


def get_linear_schedule_with_warmup(
    optimizer: AdamW, num_warmup_steps: int, num_training_steps: int, last_epoch: int = -1
) -> LinearSchedule:
    """transformers.get_linear_schedule_with_warmup for our AdamW (same signature)."""
    return LinearSchedule(optimizer, num_warmup_steps, num_training_steps, last_epoch)


# ------------------------------------------------------------------------- clipping
def _vector_norm(array: np.ndarray, norm_type: float) -> float:
    """‖array.ravel()‖, accumulated in float64 whatever the dtype. (A float32 sum over 92M
    embedding gradients drifts: BLAS sdot by 0.1%, torch's float32 vector_norm by 1% here.)
    einsum casts in buffered chunks, so no float64 copy of the array is made."""
    if array.size == 0:
        return 0.0
    if norm_type == math.inf:
        return float(max(array.max(), -array.min()))
    flat = array.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return math.sqrt(float(np.einsum("i,i->", flat, flat, dtype=np.float64)))


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float, norm_type: float = 2.0) -> float:
    """Scale all gradients in place by min(1, max_norm / (‖g‖ + 1e-6)); return ‖g‖.

    ‖g‖ is the norm of every gradient flattened into one vector (norm_type 2 or inf), as torch
    computes it: the norm of the per-tensor norms, rounded to the gradients' dtype, which the
    factor is computed in (its sums run in float64, see `_vector_norm`). Like torch, the
    factor is applied even when it is 1. A non-finite ‖g‖ raises FloatingPointError naming
    the offending tensors and leaves the gradients as they were (torch would scale by 0 or NaN).
    """
    max_norm = _check_float(max_norm, "max_norm")
    norm_type = float(norm_type)
    if norm_type not in (2.0, math.inf):
        raise ValueError(f"norm_type must be 2 or inf, got {norm_type}")
    arrays = [np.asarray(grad) for grad in grads.values()]
    if not arrays:
        return 0.0
    dtype = np.result_type(*arrays)
    norms = [_vector_norm(a, norm_type) for a in arrays]
    with np.errstate(over="ignore"):  # a float32 overflow is reported just below
        total = dtype.type(math.sqrt(math.fsum(n * n for n in norms)) if norm_type == 2.0 else max(norms))
    if not np.isfinite(total):
        bad = [name for name, a in zip(grads, arrays, strict=True) if not np.isfinite(a).all()]
        raise FloatingPointError(
            f"gradient norm is {total}: non-finite values in {bad[:5]}"
            if bad
            else f"gradient norm overflows {dtype} ({total}); no gradient is non-finite itself"
        )
    factor = min(dtype.type(max_norm) / (total + dtype.type(1e-6)), dtype.type(1.0))
    for grad in grads.values():
        grad *= factor
    return float(total)
