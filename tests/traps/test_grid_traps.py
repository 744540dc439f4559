"""Traps the grid's corners meet: Flax NNX's defaults against torch's, and what objects on JAX
and functions on torch ask that their native sides never did (docs/paradigms.md).

Library defaults:
- `nnx-batchnorm-momentum`: `nnx.BatchNorm(momentum=0.1)`, torch's number, keeps 90% of the
  batch's mean where torch keeps 10%. Fix: `momentum=0.9` (1 - torch's).
- `nnx-batchnorm-variance`: with that fixed, flax moves the running variance with the batch's
  biased variance; torch with the unbiased one. Fix: `crossover.oop_jax.layers.BatchNorm2d`.
- `nnx-no-decay-names`: AdamW's `no_decay` patterns name torch's attributes (`*.weight`); read
  against NNX's (`kernel`), they match nothing. Fix: `crossover.oop_jax.convert.leaf_names`.

Of the paradigm:
- `jax-jit-over-nnx`: `jax.jit` over a function that updates NNX objects runs, returns a loss,
  and changes nothing outside: the trace's objects are copies. Fix: `nnx.jit`.
- `functional-call-writes-buffers`: `functional_call` in `train()` mode writes BatchNorm's new
  statistics into the dict it is given: the "pure" forward pass changed its input. Fix: copy.
- `vmap-randomness`: `torch.func.vmap` refuses a random op by default. Fix: `randomness=`.

(`nnx.LayerNorm`'s epsilon, 1e-6 against torch's 1e-5, is flax's: `layernorm-eps` in
test_attention_traps.py.) In float64, on the harness's MLP and moons, the cnn_bn on the
digits, and small random tensors.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pairs
import torch
from flax import nnx
from harness import STEPS, Trap, max_gap, naive_and_fixed_tests, problem
from torch.func import functional_call, vmap

import crossover.functional_torch.models.cnn_bn as tbn
import crossover.oop_jax.convert as nconvert
import crossover.oop_jax.layers as nlayers
import crossover.oop_jax.models.mlp as nmlp
import functional.optim as foptim
from shared import data
from shared.config import CNNBNConfig, TrainConfig
from shared.optim import OptimizerSpec

CHANNELS, CALLS = 3, 20


# -- nnx-batchnorm-momentum, nnx-batchnorm-variance --
def batchnorm_gaps(layer: str) -> np.ndarray:
    """After each of CALLS training calls on the same random batches, the largest gap between
    torch's `BatchNorm2d` running statistics and an NNX layer's."""
    rng = np.random.default_rng(0)
    xs = [rng.normal(1.0, 2.0, (4, CHANNELS, 3, 3)) for _ in range(CALLS)]  # NCHW
    torch_bn = torch.nn.BatchNorm2d(CHANNELS, dtype=torch.float64).train()
    with jax.enable_x64(True):
        rngs = nnx.Rngs(0)
        nnx_bn = {
            "momentum": lambda: nnx.BatchNorm(CHANNELS, momentum=0.1, use_fast_variance=False,
                                              param_dtype=jnp.float64, rngs=rngs),
            "variance": lambda: nnx.BatchNorm(CHANNELS, momentum=0.9, use_fast_variance=False,
                                              param_dtype=jnp.float64, rngs=rngs),
            "fixed": lambda: nlayers.BatchNorm2d(CHANNELS, dtype=jnp.float64, rngs=rngs),
        }[layer]()  # fmt: skip
        gaps = []
        for x in xs:
            torch_bn(torch.from_numpy(x))
            with warnings.catch_warnings():  # flax's own float32 statistics take float64 values
                warnings.filterwarnings("ignore", "scatter inputs have incompatible types")
                nnx_bn(jnp.asarray(x.transpose(0, 2, 3, 1)))  # NHWC
            mean, var = np.asarray(nnx_bn.mean[...]), np.asarray(nnx_bn.var[...])
            gaps.append(max(np.abs(mean - torch_bn.running_mean.numpy()).max(),
                            np.abs(var - torch_bn.running_var.numpy()).max()))  # fmt: skip
    return np.array(gaps)


# -- nnx-no-decay-names --
ADAMW = OptimizerSpec.create("adamw", lr=1e-2, weight_decay=0.5, no_decay=("*.weight",))


def no_decay_gaps(fixed: bool) -> np.ndarray:
    """Per update, the NNX MLP under AdamW with the hidden weights exempt from decay, against
    the functional MLP under the package's optax chain."""
    config, weights, batches = problem()
    cfg = TrainConfig(dtype="float64", optimizer=ADAMW)
    with jax.enable_x64(True):
        tx = foptim.make_optimizer(ADAMW, cfg.schedule, "float64")
        reference = pairs.run_functional("mlp", config, weights, batches, tx,
                                         pairs.make_step("mlp", config, tx, "float64"),
                                         dtype="float64", at=pairs.EVERY_UPDATE)  # fmt: skip
        model = nconvert.from_canonical(nmlp.init_model(config, seed=0, dtype="float64"), weights)
        names = {"names_of": nconvert.leaf_names(model)} if fixed else {}
        optimizer = nnx.Optimizer(model, foptim.make_optimizer(ADAMW, cfg.schedule, "float64",
                                                               **names), wrt=nnx.Param)  # fmt: skip
        runs = []
        for x, y in batches:
            nmlp.train_step(model, optimizer, jnp.asarray(x), jnp.asarray(y))
            runs.append(nconvert.to_canonical(model))
    return max_gap([reference.at[k] for k in range(1, STEPS + 1)], runs)


# -- jax-jit-over-nnx --
def jit_over_nnx_gaps(use_nnx_jit: bool) -> np.ndarray:
    """Per update, the NNX MLP stepped under `jax.jit` (naive) or `nnx.jit`, against the
    functional MLP under the same optax SGD."""
    config, weights, batches = problem()
    tx = optax.sgd(0.1)
    with jax.enable_x64(True):
        reference = pairs.run_functional("mlp", config, weights, batches, tx,
                                         pairs.make_step("mlp", config, tx, "float64"),
                                         dtype="float64", at=pairs.EVERY_UPDATE)  # fmt: skip
        model = nconvert.from_canonical(nmlp.init_model(config, seed=0, dtype="float64"), weights)
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

        def step(model, optimizer, x, y):
            loss, grads = nnx.value_and_grad(nmlp.loss_fn)(model, x, y)
            optimizer.update(model, grads)  # in place: on the trace's copies under jax.jit
            return loss

        step = nnx.jit(step) if use_nnx_jit else jax.jit(step)
        runs = []
        for x, y in batches:
            step(model, optimizer, jnp.asarray(x), jnp.asarray(y))
            runs.append(nconvert.to_canonical(model))
    return max_gap([reference.at[k] for k in range(1, STEPS + 1)], runs)


# -- functional-call-writes-buffers --
def buffer_gaps(copy_first: bool) -> np.ndarray:
    """The cnn_bn's forward pass in `train()` mode called twice on one batch with "the same"
    buffers dict: the gap between the two calls' new running statistics, per buffer."""
    ds = data.load("digits")
    config = CNNBNConfig.for_data(ds, width=4)
    canonical = pairs.initial_weights("cnn_bn", config)
    params, buffers = tbn.init_model(config, seed=0, dtype="float64")
    params = {k: torch.from_numpy(canonical[k].copy()) for k in params}
    buffers = {k: torch.from_numpy(canonical[k].copy()) for k in buffers}
    skeleton, x = tbn.skeleton(config, dtype="float64"), torch.from_numpy(ds.x_train[:32])
    outs = []
    for _ in range(2):
        if copy_first:  # the corner's own apply: clones, then returns the clones
            outs.append(tbn.apply(skeleton, params, buffers, x)[1])
        else:  # functional_call straight on the caller's dict
            functional_call(skeleton, {**params, **buffers}, (x,))
            outs.append({k: v.clone() for k, v in buffers.items()})
    return np.array(
        [float((outs[0][k].double() - outs[1][k].double()).abs().max()) for k in buffers]
    )


# -- vmap-randomness --
def vmapped_dropout(randomness: str | None) -> np.ndarray:
    """Dropout on three rows under `torch.func.vmap`: with `randomness="same"`, each row's mask
    is the one an unmapped call draws from the same seed; the gap to that, per row."""
    x = torch.ones(3, 8, dtype=torch.float64)

    def drop(row):
        return torch.nn.functional.dropout(row, 0.5, training=True)

    kw = {} if randomness is None else {"randomness": randomness}
    torch.manual_seed(0)
    mapped = vmap(drop, **kw)(x)
    torch.manual_seed(0)
    alone = drop(x[0])
    return (mapped - alone).abs().amax(dim=1).numpy()


TRAPS = [
    Trap("nnx-batchnorm-momentum", "nnx.BatchNorm's momentum is 1 - torch's",
         "max |Δ running statistic|", lambda: batchnorm_gaps("momentum"),
         lambda: batchnorm_gaps("fixed"), naive_at_least=0.1),
    Trap("nnx-batchnorm-variance", "nnx.BatchNorm's running variance is biased; torch's unbiased",
         "max |Δ running statistic|", lambda: batchnorm_gaps("variance"),
         lambda: batchnorm_gaps("fixed"), naive_at_least=0.05),
    Trap("nnx-no-decay-names", "no_decay patterns name torch's weight; NNX calls it kernel",
         "max |Δparam|", lambda: no_decay_gaps(False), lambda: no_decay_gaps(True),
         naive_at_least=1e-2),
    Trap("jax-jit-over-nnx", "jax.jit over NNX objects updates copies; use nnx.jit",
         "max |Δparam|", lambda: jit_over_nnx_gaps(False), lambda: jit_over_nnx_gaps(True),
         naive_at_least=0.1, kind="paradigm"),
    Trap("functional-call-writes-buffers", "functional_call writes BatchNorm's statistics "
         "into the dict it is given", "|Δ buffers| between two calls",
         lambda: buffer_gaps(False), lambda: buffer_gaps(True), naive_at_least=1e-3,
         fixed_tol=0.0, kind="paradigm"),
    Trap("vmap-randomness", "torch.func.vmap refuses random ops; pass randomness=",
         "|Δmask| per row", lambda: vmapped_dropout(None), lambda: vmapped_dropout("same"),
         naive_at_least=0.0, fixed_tol=0.0, kind="paradigm", raises=RuntimeError,
         match="randomness error mode"),
]  # fmt: skip

test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)
