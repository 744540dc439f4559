"""Train a model on the functional side: `python -m functional.train --help`.

The loop threads state by hand: `params, opt_state, loss = step(params, opt_state, x, y)`.
`step` is a pure function compiled once by `jax.jit`; losses stay on the device and reach the
host in chunks, so the loop never waits for the accelerator between boundaries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from functional import interface, parallel
from functional.convert import (
    canonical_like,
    from_canonical_with_state,
    opt_state_from_canonical,
    opt_state_to_canonical,
    to_canonical_with_state,
    to_device,
)
from functional.models import MODELS
from functional.optim import make_optimizer
from shared import checkpoint, data, errors
from shared.cli import train as cli
from shared.config import TrainConfig
from shared.run import (
    ReplicaFolder,
    RunError,
    RunFolder,
    RunOptions,
    ensemble_folders,
    launched,
    train_batches,
    writes_files,
)
from shared.weights import jitter

SIDE = "functional"


# -- device and precision --
def pick_device(name: str) -> jax.Device:
    """This process's first device of the kind asked for (of several processes, its own)."""
    if name == "cpu":
        return jax.local_devices(backend="cpu")[0]
    try:
        return jax.local_devices(backend="gpu")[0]
    except RuntimeError:
        raise errors.Refused(
            "--device gpu, but JAX sees no GPU; install jax[cuda] or use --device cpu"
        ) from None


def precision(cfg: TrainConfig) -> contextlib.AbstractContextManager:
    """The precision of float32 products and convolutions while tracing: on a GPU, IEEE float32
    (`"highest"`), or TF32 with `--tf32`, rather than JAX's own default there; on the CPU,
    nothing changes (XLA's CPU backend has no TF32)."""
    if cfg.device != "gpu":
        return contextlib.nullcontext()
    return jax.default_matmul_precision("tensorfloat32" if cfg.tf32 else "highest")


def versions() -> dict[str, str]:
    import equinox
    import optax

    return {"jax": jax.__version__, "equinox": equinox.__version__, "optax": optax.__version__}


# -- the loop --
def run(cfg: TrainConfig, model_cfg, opts: RunOptions, dataset: data.Dataset | None = None) -> dict:
    """Train, writing the run folder `opts.out`; returns a summary. Raises RunError."""
    writer, joined = True, launched()
    if joined:  # one of several processes (shared.launch): one mesh over all their devices
        opts, writer = _join(cfg, opts)
    elif opts.devices > 1 and cfg.device == "cpu":
        parallel.use_host_devices(opts.devices)  # before the backend starts, if it has not
    device = pick_device(cfg.device)
    try:
        with jax.enable_x64(cfg.dtype == "float64"), jax.default_device(device), precision(cfg):
            ds = dataset or data.load(cfg.dataset, cfg.seq_len)
            return _run(cfg, model_cfg, opts, ds, writer)
    finally:
        if joined:
            parallel.leave()


def _join(cfg: TrainConfig, opts: RunOptions) -> tuple[RunOptions, bool]:
    """Join the other processes; the run's options then count all their devices, one each."""
    if opts.devices > 1:
        raise errors.Refused("--devices counts one process's devices; under a launcher each "
                             "process has one: drop --devices, or launch one process")  # fmt: skip
    world = int(os.environ["WORLD_SIZE"])
    if cfg.batch_size % world:
        raise errors.Refused(f"--batch-size {cfg.batch_size} does not split into {world} equal "
                             f"parts (one per process); choose a multiple of {world}")  # fmt: skip
    rank, world = parallel.join(cfg.device)
    return dataclasses.replace(opts, devices=world), rank == 0


def _run(cfg: TrainConfig, model_cfg, opts: RunOptions, ds: data.Dataset, writer: bool) -> dict:
    module = MODELS[cfg.model]
    dtype = np.dtype(cfg.dtype)
    # a model with state (BatchNorm statistics) comes with it; the others have None
    ckpt = None
    if opts.init or opts.resume:  # the weights come from the file: nothing to draw
        model, mstate = interface.template(module, model_cfg, dtype=cfg.dtype)
        like = canonical_like(model, mstate)  # names, shapes and dtypes to expect
        ckpt = checkpoint.load_weights(
            opts.init or opts.resume,
            model=cfg.model,
            expected={k: v.shape for k, v in like.items()},
            dtype={k: v.dtype.name for k, v in like.items()},
        )
        model, mstate = from_canonical_with_state(model, mstate, ckpt.weights)
    else:
        key = jax.random.PRNGKey(cfg.seed)
        model, mstate = interface.init(module, model_cfg, key=key, dtype=cfg.dtype)
    if opts.jitter:  # the rounding control: one ulp away from the start
        jittered = jitter(to_canonical_with_state(model, mstate), cfg.seed)
        model, mstate = from_canonical_with_state(model, mstate, jittered)

    params, static = eqx.partition(model, eqx.is_array)  # arrays | everything else
    optimizer = make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)  # schedule included
    opt_state = optimizer.init(params)
    start = 0
    if opts.resume:  # the optimizer state and its step count come back from the file
        opt_state, start = opt_state_from_canonical(opt_state, ckpt.tensors), ckpt.step
    if opts.devices > 1:  # the same step, each batch split over a mesh of devices
        mesh = parallel.make_mesh(opts.devices, pick_device(cfg.device).platform)
        params, mstate, opt_state = parallel.replicate(mesh, (params, mstate, opt_state))
        step = parallel.make_step(opts.parallel, module, optimizer, static, cfg.seed, mesh)
        batch = functools.partial(parallel.global_batch, mesh)  # several processes: their rows
    else:
        step = jax.jit(interface.uniform_step(module, optimizer, static, cfg.seed))
        batch = tuple
    x_test, y_test = (to_device(data.as_dtype(a, dtype)) for a in (ds.x_test, ds.y_test))

    def state(params, mstate, opt_state, k):  # what a step-N or final checkpoint holds
        params, mstate, opt_state = parallel.local((params, mstate, opt_state))
        weights = to_canonical_with_state(eqx.combine(params, static), mstate)
        return {**weights, **opt_state_to_canonical(opt_state, k)}

    def evaluate(params, mstate):  # inference mode reads the statistics, if any
        params, mstate = parallel.local((params, mstate))
        return interface.evaluate(module, eqx.combine(params, static), mstate, x_test, y_test)

    # of several processes, process 0 writes the folder; the others decide alike, write nothing
    folder = (RunFolder if writer else ReplicaFolder)(opts, cfg, model_cfg, SIDE, versions())
    batches = train_batches(ds, cfg, opts, start)  # the shared order (--control: perturbed)
    pending: list[jax.Array] = []
    test_loss = accuracy = float("nan")
    with folder, folder.bar(start) as bar:
        if not opts.resume and writer:  # the first file: from here on, the folder holds this run
            folder.save("init", to_canonical_with_state(model, mstate), 0)
        t0 = time.perf_counter()
        try:
            for k in range(start + 1, cfg.steps + 1):
                x, y = batch(next(batches))
                params, mstate, opt_state, loss = step(params, mstate, opt_state, x, y, k)
                pending.append(loss)
                if not folder.boundary(k):
                    continue
                losses = np.asarray(jnp.stack(parallel.local(pending)))  # this chunk's sync
                folder.log_losses(k, losses, time.perf_counter() - t0, bar)
                pending = []
                if folder.wants_eval(k) and writer:
                    test_loss, accuracy = evaluate(params, mstate)
                    folder.log_eval(k, test_loss, accuracy, bar)
                if folder.wants_save(k) and writer:
                    folder.save_verified(f"step-{k}", state(params, mstate, opt_state, k), k)
        except errors.Stopped:
            raise
        except Exception as e:  # of several processes: a peer died, or stopped answering
            if not parallel.is_collective_failure(e):
                raise
            more = f" Go on with --resume {folder.last_good}" if folder._resumable() else ""
            raise RunError(f"{parallel.lost_peer(e)}. {folder._last_good()}{more}") from None
        if writer:
            folder.save("final", state(params, mstate, opt_state, cfg.steps), cfg.steps)
    return {
        "out": opts.out,
        "loss": float(losses[-1]),
        "test_loss": test_loss,
        "accuracy": accuracy,
    }


# -- the ensemble --
def run_ensemble(cfg: TrainConfig, model_cfg, opts: RunOptions) -> list[dict]:
    """`--ensemble N`: N members from seeds `cfg.seed + i`, each with its own initial weights
    and batch order, trained by one `jax.vmap`ped step; member i writes `OUT/seed-S/`, the run
    `--seed S` writes alone. Returns the members' summaries."""
    device = pick_device(cfg.device)
    with jax.enable_x64(cfg.dtype == "float64"), jax.default_device(device), precision(cfg):
        return _run_ensemble(cfg, model_cfg, opts, data.load(cfg.dataset, cfg.seq_len))


def _run_ensemble(cfg: TrainConfig, model_cfg, opts: RunOptions, ds: data.Dataset) -> list[dict]:
    module, dtype, n = MODELS[cfg.model], np.dtype(cfg.dtype), opts.ensemble
    cfgs = [dataclasses.replace(cfg, seed=cfg.seed + i) for i in range(n)]
    made = [interface.init(module, model_cfg, key=jax.random.PRNGKey(c.seed), dtype=cfg.dtype)
            for c in cfgs]  # fmt: skip
    parts = [eqx.partition(model, eqx.is_array) for model, _ in made]
    static = parts[0][1]  # the same for every member: only the arrays differ
    params = interface.stack([p for p, _ in parts])  # every array: (n, ...)
    mstate = interface.stack([s for _, s in made]) if module.HAS_STATE else None
    optimizer = make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)
    opt_state = jax.jit(jax.vmap(optimizer.init))(params)  # one program, not one per op
    step = jax.jit(interface.ensemble_step(module, optimizer, static, cfg.seed))
    x_train, y_train = data.as_dtype(ds.x_train, dtype), data.as_dtype(ds.y_train, dtype)
    streams = [data.batches(x_train, y_train, cfg.batch_size, seed=c.seed) for c in cfgs]
    x_test, y_test = (to_device(data.as_dtype(a, dtype)) for a in (ds.x_test, ds.y_test))

    def weights(i, params, mstate):
        model = eqx.combine(interface.member(params, i), static)
        return to_canonical_with_state(
            model, None if mstate is None else interface.member(mstate, i)
        )

    def state(i, params, mstate, opt_state, k):
        return {**weights(i, params, mstate),
                **opt_state_to_canonical(interface.member(opt_state, i), k)}  # fmt: skip

    pending: list[jax.Array] = []
    scores = [(float("nan"), float("nan"))] * n
    with contextlib.ExitStack() as stack:
        folders = ensemble_folders(stack, opts, cfgs, model_cfg, SIDE, versions())
        bars = []  # member 0's shows progress, the others' are off
        for i, folder in enumerate(folders):
            bars.append(stack.enter_context(folder.bar()))
            folder.save("init", weights(i, params, mstate), 0)
        t0 = time.perf_counter()
        for k in range(1, cfg.steps + 1):
            x, y = (np.stack(a) for a in zip(*(next(s) for s in streams), strict=True))
            params, mstate, opt_state, loss = step(params, mstate, opt_state, x, y, k)
            pending.append(loss)  # (n,)
            if not folders[0].boundary(k):
                continue
            losses = np.asarray(jnp.stack(pending))  # (updates, n): one host sync for all
            pending = []
            for i, folder in enumerate(folders):
                folder.log_losses(k, losses[:, i], time.perf_counter() - t0, bars[i])
                if folder.wants_eval(k):
                    model = eqx.combine(interface.member(params, i), static)
                    ms = None if mstate is None else interface.member(mstate, i)
                    scores[i] = interface.evaluate(module, model, ms, x_test, y_test)
                    folder.log_eval(k, *scores[i], bars[i])
                if folder.wants_save(k):
                    folder.save_verified(f"step-{k}", state(i, params, mstate, opt_state, k), k)
        for i, folder in enumerate(folders):
            folder.save("final", state(i, params, mstate, opt_state, cfg.steps), cfg.steps)
    return [{"out": f.out, "loss": float(losses[-1, i]), "test_loss": scores[i][0],
             "accuracy": scores[i][1]} for i, f in enumerate(folders)]  # fmt: skip


# -- command line --
@errors.entry_point(f"python -m {SIDE}.train")
def main(argv: list[str] | None = None) -> int:
    cfg, model_cfg, opts = cli.parse(SIDE, argv)
    if opts.ensemble > 1:
        for member in run_ensemble(cfg, model_cfg, opts):
            cli.report(SIDE, cfg.steps, member)
        return 0
    summary = run(cfg, model_cfg, opts)
    if writes_files():  # of several processes, process 0 reports for all
        cli.report(SIDE, cfg.steps, summary)
    return 0


if __name__ == "__main__":
    code = main()
    if parallel.peer_lost():  # JAX's exit handler would wait for the dead peer, then abort
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
