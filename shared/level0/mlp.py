r"""The MLP at level 0: NumPy only, every gradient derived by hand.

    python -m shared.level0.mlp --epochs 30

The forward pass, for a batch `X` of shape `(B, D)` and `L = layers + 1` linear maps:

    H_0 = X
    Z_l = H_{l-1} W_l^T + b_l          W_l: (out, in), torch's layout      l = 1..L
    H_l = relu(Z_l)                    for l < L;  Z_L are the logits  (B, C)
    loss = -(1/B) sum_i log softmax(Z_L)_{i, y_i}

The backward pass, by the chain rule, one layer at a time from the top:

    dZ_L = (softmax(Z_L) - onehot(y)) / B        the derivative of mean cross-entropy
    dW_l = dZ_l^T H_{l-1}                         (out, in): the same layout as W_l
    db_l = sum_i dZ_l[i]                          (out,)
    dH_{l-1} = dZ_l W_l                           (B, in)
    dZ_{l-1} = dH_{l-1} * [Z_{l-1} > 0]           relu passes the gradient where it was active

The subgradient of relu at exactly 0 is taken as 0, as jax and torch both do. Changing the
architecture means deriving and writing all of this again: that is what levels 1 and 2 remove.
The optimizers follow the formulas of `torch.optim.SGD` and `torch.optim.Adam`.
"""

from __future__ import annotations

import math
import sys

import numpy as np

# -- config --
from shared import data, errors
from shared.cli import ladder
from shared.config import MLPConfig, TrainConfig
from shared.optim import OptimizerSpec

Params = dict[str, np.ndarray]  # canonical name -> array, e.g. "layers.0.weight" -> (256, 64)


# -- layers --
def linear(h: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return h @ w.T + b  # (B, in) @ (in, out) + (out,) -> (B, out)


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


# -- model --
def n_linear(params: Params) -> int:
    return sum(1 for k in params if k.endswith(".weight"))


def init(config: MLPConfig, seed: int = 0, dtype=np.float64) -> Params:
    """Weights and biases from U(-1/sqrt(in), 1/sqrt(in)), torch's default distribution."""
    rng = np.random.default_rng(seed)
    params: Params = {}
    for i, (fan_in, fan_out) in enumerate(config.sizes):
        bound = 1.0 / np.sqrt(fan_in)
        params[f"layers.{i}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(dtype)
        params[f"layers.{i}.bias"] = rng.uniform(-bound, bound, (fan_out,)).astype(dtype)
    return params


def forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits `(B, C)` and the cache the backward pass needs: `[H_0, Z_1, ..., Z_L]`."""
    cache = [x]
    h = x
    for i in range(n_linear(params)):
        z = linear(h, params[f"layers.{i}.weight"], params[f"layers.{i}.bias"])
        cache.append(z)
        h = relu(z)
    return cache[-1], cache


# -- loss --
def cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # (B, C), stable
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    batch = len(y)
    loss = -log_probs[np.arange(batch), y].mean()
    dlogits = np.exp(log_probs)
    dlogits[np.arange(batch), y] -= 1.0
    return float(loss), dlogits / batch


def loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """The loss and the hand-derived gradient of every parameter (see the module docstring)."""
    logits, cache = forward(params, x)
    loss, dz = cross_entropy(logits, y)
    grads: Params = {}
    for i in reversed(range(n_linear(params))):
        h_prev = cache[i] if i == 0 else relu(cache[i])  # H_{l-1}
        grads[f"layers.{i}.weight"] = dz.T @ h_prev  # (out, in)
        grads[f"layers.{i}.bias"] = dz.sum(axis=0)  # (out,)
        if i > 0:
            dz = (dz @ params[f"layers.{i}.weight"]) * (cache[i] > 0)  # dZ_{l-1}
    return loss, {k: grads[k] for k in params}


# -- train step --
def sgd_init(params: Params) -> Params:
    return {k: np.zeros_like(v) for k, v in params.items()}  # momentum buffers


def sgd_update(
    params: Params, grads: Params, bufs: Params, opt: OptimizerSpec
) -> tuple[Params, Params]:
    """torch.optim.SGD: g += wd p; buf = momentum buf + g; p -= lr (g + momentum buf | buf)."""
    new_params, new_bufs = {}, {}
    for k, p in params.items():
        g = grads[k] + opt.weight_decay * p if opt.weight_decay else grads[k]
        if opt.momentum:
            buf = opt.momentum * bufs[k] + g
            g = g + opt.momentum * buf if opt.nesterov else buf
            new_bufs[k] = buf
        new_params[k] = p - opt.lr * g
    return new_params, new_bufs or bufs


def adam_init(params: Params) -> dict:
    zeros = {k: np.zeros_like(v) for k, v in params.items()}
    return {"step": 0, "exp_avg": zeros, "exp_avg_sq": dict(zeros)}


def adam_update(
    params: Params, grads: Params, state: dict, opt: OptimizerSpec
) -> tuple[Params, dict]:
    """torch.optim.Adam: moments, bias corrections, eps outside the square root."""
    t = state["step"] + 1
    bc1, bc2 = 1 - opt.beta1**t, 1 - opt.beta2**t
    m, v, new_params = {}, {}, {}
    for k, p in params.items():
        g = grads[k] + opt.weight_decay * p if opt.weight_decay else grads[k]
        m[k] = opt.beta1 * state["exp_avg"][k] + (1 - opt.beta1) * g
        v[k] = opt.beta2 * state["exp_avg_sq"][k] + (1 - opt.beta2) * g * g
        denom = np.sqrt(v[k]) / math.sqrt(bc2) + opt.eps  # a Python float keeps the dtype
        new_params[k] = p - (opt.lr / bc1) * m[k] / denom
    return new_params, {"step": t, "exp_avg": m, "exp_avg_sq": v}


OPTIMIZERS = {"sgd": (sgd_init, sgd_update), "adam": (adam_init, adam_update)}


def train_step(params: Params, opt_state, x, y, cfg: TrainConfig):
    """One update: `(params, opt_state) -> (params, opt_state, loss)`."""
    loss, grads = loss_and_grads(params, x, y)
    params, opt_state = OPTIMIZERS[cfg.optimizer.name][1](params, grads, opt_state, cfg.optimizer)
    return params, opt_state, loss


# -- evaluate --
def evaluate(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    logits, _ = forward(params, x)
    loss, _ = cross_entropy(logits, y)
    return loss, float((logits.argmax(axis=1) == y).mean())


@errors.entry_point("python -m shared.level0.mlp")
def main(argv: list[str] | None = None) -> int:
    ds, cfg, config, weights = ladder.parse_ladder("shared.level0.mlp", "level-0 NumPy", argv)
    params = init(config, seed=cfg.seed)
    if weights is not None:  # --init: the canonical names are this level's own
        params = {k: np.asarray(weights[k], np.float64) for k in params}
    opt_state = OPTIMIZERS[cfg.optimizer.name][0](params)
    batches = data.batches(ds.x_train, ds.y_train, cfg.batch_size, seed=cfg.seed)
    for _ in range(cfg.steps):
        params, opt_state, loss = train_step(params, opt_state, *next(batches), cfg)
    ladder.print_ladder("level 0 (NumPy)", cfg, loss, evaluate(params, ds.x_test, ds.y_test)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
