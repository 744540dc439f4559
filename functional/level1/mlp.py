"""The MLP at level 1 on the functional side: a parameter pytree, `jax.grad`, `tree_map` updates.

    python -m functional.level1.mlp --epochs 30

No equinox and no optax: the parameters are a plain nested dict, the model is a function of
them, `jax.value_and_grad` derives every gradient that level 0 wrote by hand, and the
optimizers are a few `jax.tree_util.tree_map` calls. Twin of `oop/level1/mlp.py`.
"""

from __future__ import annotations

import math
import sys

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from shared import data, errors
from shared.cli import ladder
from shared.config import MLPConfig, TrainConfig
from shared.optim import OptimizerSpec

# -- config --

Params = dict  # {"layers": [{"weight": (out, in), "bias": (out,)}, ...]}: canonical names
tree_map = jax.tree_util.tree_map


# -- layers --
def linear(p: dict, x: Float[Array, "batch fan_in"]) -> Float[Array, "batch fan_out"]:
    return x @ p["weight"].T + p["bias"]


# -- model --
def init(config: MLPConfig, *, key: PRNGKeyArray, dtype=jnp.float32) -> Params:
    """Weights and biases from U(-1/sqrt(in), 1/sqrt(in)), torch's default distribution."""
    layers = []
    for (fan_in, fan_out), k in zip(
        config.sizes, jax.random.split(key, len(config.sizes)), strict=True
    ):
        kw, kb = jax.random.split(k)
        bound = 1.0 / fan_in**0.5
        layers.append(
            {
                "weight": jax.random.uniform(kw, (fan_out, fan_in), dtype, -bound, bound),
                "bias": jax.random.uniform(kb, (fan_out,), dtype, -bound, bound),
            }
        )
    return {"layers": layers}


def apply(params: Params, x: Float[Array, "batch features"]) -> Float[Array, "batch classes"]:
    for p in params["layers"][:-1]:
        x = jax.nn.relu(linear(p, x))  # (batch, width)
    return linear(params["layers"][-1], x)  # (batch, classes)


# -- loss --
def loss_fn(
    params: Params, x: Float[Array, "batch features"], y: Int[Array, " batch"]
) -> Float[Array, ""]:
    log_probs = jax.nn.log_softmax(apply(params, x))  # (batch, classes)
    return -jnp.take_along_axis(log_probs, y[:, None], axis=1).mean()


# -- train step --
def sgd_init(params: Params) -> Params:
    return tree_map(jnp.zeros_like, params)  # momentum buffers, one per parameter


def sgd_update(params: Params, grads: Params, bufs: Params, opt: OptimizerSpec):
    """torch.optim.SGD as three tree_maps: decay, momentum buffer, parameter."""
    if opt.weight_decay:
        grads = tree_map(lambda g, p: g + opt.weight_decay * p, grads, params)
    if opt.momentum:
        bufs = tree_map(lambda b, g: opt.momentum * b + g, bufs, grads)
        if opt.nesterov:
            grads = tree_map(lambda g, b: g + opt.momentum * b, grads, bufs)
        else:
            grads = bufs
    return tree_map(lambda p, g: p - opt.lr * g, params, grads), bufs


def adam_init(params: Params) -> dict:
    zeros = tree_map(jnp.zeros_like, params)
    return {"step": jnp.zeros((), jnp.int32), "exp_avg": zeros, "exp_avg_sq": zeros}


def adam_update(params: Params, grads: Params, state: dict, opt: OptimizerSpec):
    """torch.optim.Adam: moments, bias corrections, eps outside the square root. torch takes
    the corrections `1 - beta**t` in Python floats; under jit t is traced, so they are
    `-expm1(t * log(beta))`: `1 - beta**t` in float32 would lose 1.3e-5 of it (beta2 = 0.999
    is 0.99900001287 in float32), and the first updates would come out 6e-6 too small."""
    if opt.weight_decay:
        grads = tree_map(lambda g, p: g + opt.weight_decay * p, grads, params)
    t = state["step"] + 1
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    bc1, bc2 = (-jnp.expm1(t.astype(dtype) * math.log(b)) for b in (opt.beta1, opt.beta2))
    m = tree_map(lambda m, g: opt.beta1 * m + (1 - opt.beta1) * g, state["exp_avg"], grads)
    v = tree_map(lambda v, g: opt.beta2 * v + (1 - opt.beta2) * g * g, state["exp_avg_sq"], grads)
    params = tree_map(
        lambda p, m, v: p - (opt.lr / bc1) * m / (jnp.sqrt(v) / jnp.sqrt(bc2) + opt.eps),
        params,
        m,
        v,
    )
    return params, {"step": t, "exp_avg": m, "exp_avg_sq": v}


OPTIMIZERS = {"sgd": (sgd_init, sgd_update), "adam": (adam_init, adam_update)}


def make_step(cfg: TrainConfig):
    """A pure update `(params, opt_state, x, y) -> (params, opt_state, loss)`; jit it."""
    update = OPTIMIZERS[cfg.optimizer.name][1]

    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)  # grads: same tree as params
        params, opt_state = update(params, grads, opt_state, cfg.optimizer)
        return params, opt_state, loss

    return step


# -- evaluate --
def evaluate(params: Params, x, y) -> tuple[float, float]:
    logits = apply(params, x)
    return float(loss_fn(params, x, y)), float((logits.argmax(axis=1) == y).mean())


@errors.entry_point("python -m functional.level1.mlp")
def main(argv: list[str] | None = None) -> int:
    ds, cfg, config, weights = ladder.parse_ladder("functional.level1.mlp", "level-1 JAX", argv)
    params = init(config, key=jax.random.PRNGKey(cfg.seed))
    if weights is not None:  # --init: by canonical name, into this level's nested dicts
        params = {"layers": [
            {k: jnp.asarray(weights[f"layers.{i}.{k}"], jnp.float32) for k in ("weight", "bias")}
            for i in range(len(params["layers"]))
        ]}  # fmt: skip
    opt_state = OPTIMIZERS[cfg.optimizer.name][0](params)
    step = jax.jit(make_step(cfg))
    batches = data.batches(ds.x_train.astype("float32"), ds.y_train, cfg.batch_size, seed=cfg.seed)
    for _ in range(cfg.steps):
        params, opt_state, loss = step(params, opt_state, *next(batches))
    accuracy = evaluate(params, ds.x_test.astype("float32"), ds.y_test)[1]
    ladder.print_ladder("level 1 (JAX)", cfg, float(loss), accuracy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
