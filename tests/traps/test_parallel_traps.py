"""Traps of data parallelism (docs/parallel.md), on two host devices (tests/conftest.py), float64.

- `sharded-batchnorm`: a sharded `jax.jit` (the batch annotated `P("data")`) computes BatchNorm's
  statistics over the global batch, one device's numbers; torch's DDP on a CPU normalises each
  rank's part with its own statistics and keeps rank 0's running ones (SyncBatchNorm is
  GPU-only). The same model, the same batches, the two "data-parallel" runs drift apart. Fix, to
  compute DDP's numbers: `--parallel shard_map` (functional.parallel.shard_map_step: the step
  per shard, `from_shard_0` for the running statistics).
- `shard-map-check-vma`: `jax.shard_map`'s default `check_vma=True` makes `jax.grad` of a
  replicated parameter return the sum of the shards' gradients (JAX inserts the psum); the
  classic recipe's `lax.pmean` then averages N equal sums: N times DDP's gradient. Fix:
  `check_vma=False`, each shard's gradient its own, the `pmean` the all-reduce.

The torch side is DDP's semantics written out in one process (each rank a replica of the OOP
model, `backward()` per part, the mean of the gradients, rank 0's buffers), the way PyTorch's
own DDP test checks DDP against a local model; tests/test_parallel.py runs the real thing.
"""

from __future__ import annotations

import copy
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import torch
from harness import Trap, naive_and_fixed_tests
from jax.sharding import PartitionSpec as P
from pairs import initial_weights

import functional.models.cnn_bn as fbn
import functional.models.mlp as fmlp
import oop.models.cnn_bn as obn
import oop.models.mlp as omlp
from functional import parallel as par
from functional.convert import (
    from_canonical,
    from_canonical_with_state,
    skeleton,
    to_canonical_with_state,
)
from functional.optim import make_optimizer
from oop.convert import from_canonical as oop_from_canonical
from oop.convert import to_canonical as oop_to_canonical
from oop.optim import make_optimizer as oop_optimizer
from shared import data
from shared.config import CNNBNConfig, MLPConfig
from shared.optim import OptimizerSpec, ScheduleSpec

RANKS, BATCH, UPDATES = 2, 8, 10  # two host devices or processes; 4 examples each
ADAM = OptimizerSpec.create("adam", lr=1e-2)
BN = CNNBNConfig(in_channels=1, image_size=8, out_features=10, width=2)


@functools.cache
def digits(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    ds = data.load("digits")
    stream = data.batches(ds.x_train.astype(np.float64), ds.y_train, BATCH, seed=0)
    return [next(stream) for _ in range(n)]


# -- sharded-batchnorm --
@functools.cache
def ddp_on_torch() -> list[dict[str, np.ndarray]]:
    """DDP's updates of the OOP cnn_bn, written out: per update, each rank's replica runs
    `backward()` on its part, the gradients are averaged (DDP's all-reduce), rank 0's optimizer
    steps, and every replica takes rank 0's weights and buffers (broadcast_buffers)."""
    start = initial_weights("cnn_bn", BN)
    ranks = [oop_from_canonical(obn.init_model(BN, seed=0, dtype="float64"), start)
             for _ in range(RANKS)]  # fmt: skip
    optimizer = oop_optimizer(ADAM, ranks[0].named_parameters())
    part, out = BATCH // RANKS, []
    for x, y in digits(UPDATES):
        grads = []
        for r, model in enumerate(ranks):
            model.train().zero_grad()
            xs, ys = (torch.from_numpy(a[r * part : (r + 1) * part]) for a in (x, y))
            obn.loss_fn(model, xs, ys.long()).backward()
            grads.append([p.grad for p in model.parameters()])
        for p, *gs in zip(ranks[0].parameters(), *grads, strict=True):
            p.grad = sum(gs) / RANKS
        optimizer.step()
        for model in ranks[1:]:
            model.load_state_dict(copy.deepcopy(ranks[0].state_dict()))
        out.append(oop_to_canonical(ranks[0]))
    return out


def sharded_jit(form: str) -> np.ndarray:
    """Per update, the largest gap between DDP's weights and BatchNorm statistics and the
    functional cnn_bn's, trained by `functional.parallel`'s step `form` on two devices."""
    with jax.enable_x64(True):
        mesh = par.make_mesh(RANKS, "cpu")
        model, state = from_canonical_with_state(*skeleton(fbn.init_model, BN, dtype="float64"),
                                                 initial_weights("cnn_bn", BN))  # fmt: skip
        params, static = eqx.partition(model, eqx.is_array)
        optimizer = make_optimizer(ADAM, ScheduleSpec(), "float64")
        step = par.make_step(form, fbn, optimizer, static, 0, mesh)
        params, state, opt_state = par.replicate(mesh, (params, state, optimizer.init(params)))
        gaps = []
        for k, ((x, y), ddp) in enumerate(zip(digits(UPDATES), ddp_on_torch(), strict=True)):
            params, state, opt_state, _ = step(params, state, opt_state, x, y, k + 1)
            ours = to_canonical_with_state(eqx.combine(params, static), state)
            gaps.append(max(float(np.abs(ours[n] - ddp[n]).max()) for n in ddp))
    return np.array(gaps)


# -- shard-map-check-vma --
MLP = MLPConfig(in_features=64, out_features=10, width=16, layers=1)


def ddp_gradient() -> dict[str, np.ndarray]:
    """What DDP's all-reduce hands the optimizer: the mean of the ranks' gradients, with
    equal parts the gradient of the whole batch's mean loss, here on one torch model."""
    model = oop_from_canonical(omlp.init_model(MLP, seed=0, dtype="float64"),
                               initial_weights("mlp", MLP))  # fmt: skip
    x, y = digits(1)[0]
    omlp.loss_fn(model, torch.from_numpy(x), torch.from_numpy(y).long()).backward()
    return {n: p.grad.numpy() for n, p in model.named_parameters()}


def shard_map_gradient(check_vma: bool) -> np.ndarray:
    """|Δ| between DDP's gradient and the classic shard_map recipe's: each shard's
    `jax.grad`, then `lax.pmean` over the mesh; per weight."""
    reference = ddp_gradient()
    with jax.enable_x64(True):
        mesh = par.make_mesh(RANKS, "cpu")
        model = from_canonical(skeleton(fmlp.init_model, MLP, dtype="float64"),
                               initial_weights("mlp", MLP))  # fmt: skip

        def per_shard(model, x, y):
            grads = jax.grad(fmlp.loss_fn)(model, x, y)
            return jax.lax.pmean(grads, par.AXIS)

        mapped = jax.shard_map(per_shard, mesh=mesh, in_specs=(P(), P(par.AXIS), P(par.AXIS)),
                               out_specs=P(), check_vma=check_vma)  # fmt: skip
        x, y = digits(1)[0]
        grads = jax.jit(mapped)(model, jnp.asarray(x), jnp.asarray(y))
        ours = {"layers.0.weight": grads.layers[0].weight, "layers.0.bias": grads.layers[0].bias}
    return np.array([float(np.abs(np.asarray(v) - reference[n]).max()) for n, v in ours.items()])


TRAPS = [
    Trap("sharded-batchnorm", "BatchNorm over devices: the global batch's, or each rank's",
         "max |Δ weights, statistics|", lambda: sharded_jit("auto"),
         lambda: sharded_jit("shard_map"), naive_at_least=1e-3),
    Trap("shard-map-check-vma", "shard_map's check_vma: a pmean after jax.grad doubles DDP's",
         "max |Δgrad| per weight", lambda: shard_map_gradient(True),
         lambda: shard_map_gradient(False), naive_at_least=1e-3),
]  # fmt: skip

test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)
