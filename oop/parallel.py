"""Data parallelism on the OOP side: torch's DistributedDataParallel, launched by torchrun.

    torchrun --standalone --nproc-per-node 2 -m oop.train --model cnn_bn --dtype float64

torchrun starts N processes and gives each its place in the environment (`RANK`, `WORLD_SIZE`,
`MASTER_ADDR`, `MASTER_PORT`); `--standalone` picks a free port. Each process (docs/parallel.md):

- builds its own copy of the model and optimizer, from the same seed or file;
- wraps the model in `DistributedDataParallel`, which broadcasts rank 0's parameters and buffers
  when it is built and rank 0's buffers before every forward pass (BatchNorm's running
  statistics), and whose hooks all-reduce the gradients bucket by bucket during `backward()`
  and divide them by N;
- trains on its own contiguous 1/N of every batch of the shared order (no `DistributedSampler`,
  which pads and reshuffles), so the mean of the N gradients is the global batch's;
- writes nothing but on rank 0, which keeps the run folder.

The functional twin (functional/parallel.py) writes the same update as one pure function over a
mesh. Every collective here has a timeout (`shared.run.collective_timeout`), and a peer that
dies ends the others' runs with one line, not a hang.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from oop.layers import Dropout
from shared import errors
from shared.run import RunError, collective_timeout

_joins = 0  # runs of this process that joined a group so far


# -- devices --
@dataclass(frozen=True)
class Group:
    """This process's place among the N: `rank` of `world`."""

    rank: int
    world: int

    @property
    def writer(self) -> bool:
        """Rank 0 writes the run folder; the others train alike and write nothing."""
        return self.rank == 0

    def shard(self, batch_size: int) -> slice:
        """This rank's contiguous part of a batch: rank r of N takes the r-th of N equal parts
        (the functional side's device r takes the same, `P("data")`)."""
        part = batch_size // self.world
        return slice(self.rank * part, (self.rank + 1) * part)


def join(device: torch.device) -> Group:
    """Join the process group: gloo on a CPU, NCCL on GPUs. A port taken or a peer that never
    comes is refused in one line."""
    global _joins
    backend = "nccl" if device.type == "cuda" else "gloo"
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    wait = datetime.timedelta(seconds=collective_timeout())
    try:
        store, rank, world = next(dist.rendezvous("env://", timeout=wait))
        # each run of this process its own keys: a second run here (a notebook, a test's
        # sequence of runs) would otherwise read the first group's addresses from torchrun's store
        store = dist.PrefixStore(f"paradigms-run-{_joins}/", store)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=wait)
        _joins += 1
    except dist.DistError as e:
        raise errors.Refused(
            f"rank {os.environ['RANK']} could not join the others at {where} "
            f"({errors.one_line(e)[:200]}); if the port is taken, launch with torchrun "
            "--standalone (a free port) or another --master-port"
        ) from None
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Group(dist.get_rank(), dist.get_world_size())


def leave() -> None:
    """Destroy the process group, so that the next run (or the interpreter's exit) starts clean."""
    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def joined(device: torch.device, batch_size: int) -> Iterator[Group]:
    """`with joined(device, batch_size) as group:` one data-parallel run: the batch checked to
    split into equal parts, the group joined, and left at the end whatever happens. torchrun
    ends the other processes with SIGTERM when one fails: each then stops as at a Ctrl-C, in
    one line that names the last good checkpoint; a rank other than 0 says which it is."""
    world = int(os.environ["WORLD_SIZE"])
    if batch_size % world:
        raise errors.Refused(f"--batch-size {batch_size} does not split into {world} equal parts "
                             f"(one per process); choose a multiple of {world}")  # fmt: skip
    group = join(device)
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, signal.default_int_handler) if main else None
    try:
        yield group
    except KeyboardInterrupt:  # torchrun's SIGTERM, or Ctrl-C, outside the run folder's care
        raise RunError(f"rank {group.rank} of {group.world}: interrupted; stopped") from None
    except errors.Stopped as e:
        if group.writer:
            raise
        raise type(e)(f"rank {group.rank} of {group.world}: {e}") from None
    finally:
        leave()
        if main:
            signal.signal(signal.SIGTERM, before)


# -- the all-reduce --
class DataParallel(DistributedDataParallel):
    """torch's DDP, also answering for the attributes of the module it wraps (the recurrent
    models read `model.task` in their loss), so that every model's `train_step` runs on it
    unchanged."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def mean_over_ranks(losses: Tensor, group: Group) -> Tensor:
    """The mean over the ranks of each rank's losses (one all-reduce per chunk of updates, not
    per update): with equal shards, the loss of the global batch, as one process logs it."""
    total = losses.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / group.world


def is_collective_failure(error: RuntimeError) -> bool:
    """Whether `error` is a collective's: torch's DistError, or the plain RuntimeError that
    DDP's reducer raises in `backward()` when gloo's connection to a peer breaks."""
    text = str(error)
    return isinstance(error, dist.DistError) or any(
        mark in text for mark in ("gloo", "NCCL", "Connection reset", "Connection closed")
    )


def lost_peer(error: Exception, group: Group) -> str:
    """The one line for a collective that failed: a peer died or stopped answering."""
    reason = re.sub(r"^\[[^\]]*\] ", "", errors.one_line(error))  # gloo's source position
    reason = reason.split(". ")[0].rstrip(".")[:160]
    return (f"rank {group.rank} of {group.world}: a peer process ended or stopped answering "
            f"within {collective_timeout():g} s ({reason}); stopped")  # fmt: skip


# -- the steps --
def make_step(
    module, model: nn.Module, optimizer: torch.optim.Optimizer, clip_norm: float | None,
    group: Group, device: torch.device,
) -> Callable[[Tensor, Tensor], Tensor]:  # fmt: skip
    """The model's own `train_step` on `DataParallel(model)` and this rank's part of each
    batch: `(x, y) -> this part's loss`, the model and optimizer updated in place, as on one
    process. The optimizer holds the module's own parameters (DDP shares them)."""
    wrapped = DataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    for layer in model.modules():  # Dropout: this rank's rows of the global batch's masks
        if isinstance(layer, Dropout):
            layer.shard = (group.rank, group.world)

    def step(x: Tensor, y: Tensor) -> Tensor:
        part = group.shard(len(x))
        return module.train_step(wrapped, optimizer, x[part], y[part], clip_norm=clip_norm)

    return step
