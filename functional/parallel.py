"""Data parallelism on the functional side: one pure step, each batch split over a device mesh.

The same update in two forms (docs/parallel.md):

- **automatic** (`--devices N`): each batch is annotated as split along its first axis over a
  one-axis mesh (`NamedSharding(mesh, P("data"))`), the parameters, optimizer state and
  BatchNorm statistics as replicated (`P()`). `jax.jit` compiles the step as written, and XLA's
  partitioner inserts the all-reduce that the mean over the global batch needs. BatchNorm's
  statistics are the global batch's: the numbers of one device.
- **explicit** (`--devices N --parallel shard_map`): `jax.shard_map` runs the step once per
  shard, and `lax.pmean` averages the gradients before the optimizer sees them, where torch's
  `DistributedDataParallel` all-reduces them during `backward()`. BatchNorm's statistics are the
  shard's own, as under DDP on a CPU, and the running statistics are shard 0's, broadcast to the
  others, as DDP broadcasts rank 0's buffers before each forward pass.

On a CPU the devices are host devices: `use_host_devices(N)` before JAX starts its backend.

**Several processes** (`python -m shared.launch --nproc-per-node N -m functional.train`, or any
launcher that sets torchrun's variables): `join` calls `jax.distributed.initialize`, and the
mesh spans every process's devices, one program running in each (multi-controller). Every
process holds the whole batch of the shared order and hands JAX the parts its own devices hold
(`global_batch`); process 0 writes the run folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import PyTree

from functional import interface
from shared import errors
from shared.run import collective_timeout

AXIS = "data"  # the mesh's one axis: the batch is split along it


# -- devices --
def use_host_devices(n: int) -> None:
    """Give JAX's CPU backend `n` devices (`jax_num_cpu_devices`), which it takes only before
    it starts; afterwards, refuse if it has fewer than `n`."""
    try:
        jax.config.update("jax_num_cpu_devices", max(n, 1))
    except RuntimeError:  # the backend has started: its devices are what they are
        if len(jax.devices("cpu")) < n:
            raise errors.Refused(
                f"--devices {n}, but JAX started with {len(jax.devices('cpu'))} CPU device(s); "
                f"start a fresh process (python -m functional.train --devices {n} ...)"
            ) from None


def join(platform: str) -> tuple[int, int]:
    """`jax.distributed.initialize` from the launcher's variables, before JAX's backend starts:
    returns `(process index, process count)`. On a CPU the collectives run over gloo. A process
    that has joined already (an earlier run in it) stays joined: JAX joins once per process."""
    if jax.distributed.is_initialized():
        return jax.process_index(), jax.process_count()
    seconds = math.ceil(collective_timeout())
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    devices = None  # one device per process, as under torchrun: on GPUs, LOCAL_RANK's
    if platform == "cpu":
        jax.config.update("jax_num_cpu_devices", 1)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    else:
        devices = [int(os.environ.get("LOCAL_RANK", "0"))]
    try:
        jax.distributed.initialize(
            coordinator_address=where, num_processes=int(os.environ["WORLD_SIZE"]),
            process_id=int(os.environ["RANK"]), local_device_ids=devices,
            initialization_timeout=seconds, heartbeat_timeout_seconds=seconds,
        )  # fmt: skip
    except (RuntimeError, ValueError) as e:
        raise errors.Refused(
            f"process {os.environ['RANK']} could not join the others at {where} "
            f"({errors.one_line(e)[:200]}); start them together (python -m shared.launch), "
            "or give another --master-port"
        ) from None
    return jax.process_index(), jax.process_count()


_peer_lost = False  # a collective failed: JAX's own shutdown would now wait, then abort


def leave() -> None:
    """End the distributed session: a barrier with the others, unless one was lost."""
    if jax.process_count() > 1 and not _peer_lost:
        jax.distributed.shutdown()


def is_collective_failure(error: Exception) -> bool:
    """Whether `error` is a failed cross-process collective (gloo's broken connection, or
    JAX's coordination service reporting a dead task)."""
    text = str(error)
    return jax.process_count() > 1 and any(
        mark in text for mark in ("gloo", "Connection reset", "Connection closed", "heartbeat",
                                  "DEADLINE_EXCEEDED", "UNAVAILABLE")
    )  # fmt: skip


def lost_peer(error: Exception) -> str:
    """The one line for a failed collective; from then on the session is not shut down (its
    barrier would wait for the dead peer, and JAX then aborts the process)."""
    global _peer_lost
    _peer_lost = True
    reason = errors.one_line(error).split(". ")[0][:160]
    return (f"process {jax.process_index()} of {jax.process_count()}: a peer process ended or "
            f"stopped answering ({reason}); stopped")  # fmt: skip


def peer_lost() -> bool:
    """Whether this process lost a peer: then it must leave without JAX's exit handler, which
    shuts the session down at a barrier the dead peer never reaches, and aborts."""
    return _peer_lost


def make_mesh(n: int, platform: str) -> Mesh:
    """A one-axis mesh, `("data",)`, over the first `n` devices of `platform`."""
    devices = jax.devices(platform)
    if len(devices) < n:
        raise errors.Refused(f"--devices {n}, but JAX sees {len(devices)} {platform} device(s)")
    return Mesh(np.array(devices[:n]), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def split(mesh: Mesh) -> NamedSharding:
    """Along the first axis, one equal part per device."""
    return NamedSharding(mesh, P(AXIS))


def replicate(mesh: Mesh, tree: PyTree) -> PyTree:
    """Every array of `tree` copied to every device of `mesh` (of every process: each gives
    its own devices their copy)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, replicated(mesh))
    rep = replicated(mesh)
    return jax.tree_util.tree_map(
        lambda a: jax.make_array_from_callback(np.shape(a), rep, lambda i: np.asarray(a)[i]), tree
    )


def global_batch(mesh: Mesh, batch: tuple[np.ndarray, ...]) -> tuple:
    """The shared order's batch as arrays split over the mesh: each process, holding the whole
    batch, hands its own devices their rows. (One process: the step's `in_shardings` do it.)"""
    if jax.process_count() == 1:
        return batch
    data = split(mesh)
    return tuple(jax.make_array_from_callback(a.shape, data, lambda i, a=a: a[i]) for a in batch)


def local(tree: PyTree) -> PyTree:
    """A replicated tree's copy on this process's first device, to read on the host."""
    return jax.tree_util.tree_map(
        lambda a: a if a.is_fully_addressable else a.addressable_data(0), tree
    )


# -- the all-reduce --
def pmean_gradients(
    optimizer: optax.GradientTransformation, axis: str = AXIS
) -> optax.GradientTransformation:
    """`optimizer`, its gradients first averaged over the mesh axis `axis` (`lax.pmean`).

    Inside `jax.shard_map(..., check_vma=False)`, each shard's gradient is its own batch's;
    with equal shards, their mean is the gradient of the global batch's mean loss, and every
    shard then applies the same update to the same parameters. The optax form of what DDP's
    hooks do between `backward()` and `optimizer.step()`."""

    def update(grads, state, params=None):
        return optimizer.update(jax.lax.pmean(grads, axis), state, params)

    return optax.GradientTransformation(optimizer.init, update)


# -- the steps --
def auto_step(
    module: interface.Model, optimizer: optax.GradientTransformation, static: PyTree, seed: int,
    mesh: Mesh,
) -> Callable:  # fmt: skip
    """The one-device step (`interface.uniform_step`), compiled for the mesh: the batch split,
    all else replicated, in and out. `(params, state, opt_state, x, y, k)` as on one device."""
    rep, data = replicated(mesh), split(mesh)
    return jax.jit(
        interface.uniform_step(module, optimizer, static, seed),
        in_shardings=(rep, rep, rep, data, data, rep),
        out_shardings=(rep, rep, rep, rep),
    )


def shard_map_step(
    module: interface.Model, optimizer: optax.GradientTransformation, static: PyTree, seed: int,
    mesh: Mesh,
) -> Callable:  # fmt: skip
    """The one-device step run per shard (`jax.shard_map`), the gradients averaged by
    `pmean_gradients`; the loss returned is the mean of the shards' means (the global batch's,
    with equal shards), and BatchNorm's state is shard 0's. `check_vma=False`: with JAX's
    default replication checking, `jax.grad` of a replicated parameter already sums the shards'
    gradients, and a `pmean` after it would then average N equal sums (docs/traps.md)."""
    step = interface.uniform_step(module, pmean_gradients(optimizer), static, seed)

    def per_shard(params, mstate, opt_state, x, y, k):
        params, mstate, opt_state, loss = step(params, mstate, opt_state, x, y, k)
        if mstate is not None:  # DDP's broadcast_buffers: rank 0's statistics for all
            mstate = from_shard_0(mstate)
        return params, mstate, opt_state, jax.lax.pmean(loss, AXIS)

    mapped = jax.shard_map(
        per_shard, mesh=mesh, in_specs=(P(), P(), P(), P(AXIS), P(AXIS), P()),
        out_specs=(P(), P(), P(), P()), check_vma=False,
    )  # fmt: skip
    rep, data = replicated(mesh), split(mesh)
    return jax.jit(
        mapped, in_shardings=(rep, rep, rep, data, data, rep), out_shardings=(rep, rep, rep, rep)
    )


def from_shard_0(tree: PyTree, axis: str = AXIS) -> PyTree:
    """Inside `shard_map`: every shard's `tree` replaced by shard 0's, exactly (the others add
    zeros): a broadcast from rank 0. (`lax.pbroadcast` in JAX 0.10 reads a string axis name
    as a sequence of names.)"""
    first = jax.lax.axis_index(axis) == 0
    return jax.tree_util.tree_map(
        lambda a: jax.lax.psum(jnp.where(first, a, jnp.zeros_like(a)), axis), tree
    )


def make_step(
    form: str, module: interface.Model, optimizer: optax.GradientTransformation,
    static: PyTree, seed: int, mesh: Mesh,
) -> Callable:  # fmt: skip
    """`--parallel auto|shard_map`: the step for the mesh, compiled (and made to wait for each
    update where XLA:CPU's collectives could otherwise deadlock: `one_update_in_flight`)."""
    step = {"auto": auto_step, "shard_map": shard_map_step}[form](
        module, optimizer, static, seed, mesh
    )
    return one_update_in_flight(step) if _collectives_can_stall(mesh) else step


def _collectives_can_stall(mesh: Mesh) -> bool:
    """Host devices: XLA:CPU runs each device's part of an update on a thread pool, and with
    updates dispatched ahead of the running one, the all-reduce now and then waits for a device
    whose part never starts, until XLA's collective timeout aborts the process. Measured with
    JAX 0.10.2 on a loaded 2-core machine, runs of 10 x 100 updates on two host devices: 6 of
    43 aborted (with XLA's default threading and single-threaded Eigen alike, async dispatch on
    or off), 0 of 44 with one update in flight."""
    return mesh.devices.flat[0].platform == "cpu"


def one_update_in_flight(step: Callable) -> Callable:
    """`step`, returning only once its update is computed (JAX otherwise returns at dispatch
    and queues the next updates behind the running one). The numbers are the same."""

    def waited(*args):
        return jax.block_until_ready(step(*args))

    return waited
