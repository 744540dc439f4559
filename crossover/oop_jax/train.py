"""Train a model as objects on JAX: `python -m crossover.oop_jax.train --help`.

Twin of `oop/train.py`: the loop reads as PyTorch's does. `step(x, y)` changes the model and the
optimizer in place and returns the loss, and nothing is threaded by hand; underneath, `nnx.jit`
runs one compiled pure function per update and writes its results back into the objects.
Batches come from `shared.data` as NumPy arrays, in the order every side draws them.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from crossover.oop_jax import interface
from crossover.oop_jax.convert import (
    canonical_like,
    from_canonical,
    optimizer_from_canonical,
    optimizer_to_canonical,
    rng_from_canonical,
    rng_to_canonical,
    to_canonical,
)
from crossover.oop_jax.models import MODELS
from functional.convert import to_device
from functional.train import pick_device, precision
from shared import checkpoint, data, errors
from shared.cli import train as cli
from shared.config import TrainConfig
from shared.run import RunFolder, RunOptions, train_batches
from shared.weights import jitter

SIDE = "oop_jax"


# -- device and precision --
def versions() -> dict[str, str]:
    import flax
    import optax

    return {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__}


# -- the loop --
def run(cfg: TrainConfig, model_cfg, opts: RunOptions, dataset: data.Dataset | None = None) -> dict:
    """Train, writing the run folder `opts.out`; returns a summary. Raises RunError."""
    device = pick_device(cfg.device)  # the same devices and precision as the functional side
    with jax.enable_x64(cfg.dtype == "float64"), jax.default_device(device), precision(cfg):
        return _run(cfg, model_cfg, opts, dataset or data.load(cfg.dataset, cfg.seq_len))


def _run(cfg: TrainConfig, model_cfg, opts: RunOptions, ds: data.Dataset) -> dict:
    module = MODELS[cfg.model]
    dtype = np.dtype(cfg.dtype)
    model = interface.init(module, model_cfg, seed=cfg.seed, dtype=cfg.dtype)  # state inside
    ckpt = None
    if opts.init or opts.resume:
        like = canonical_like(model)  # parameters and batch statistics
        ckpt = checkpoint.load_weights(
            opts.init or opts.resume,
            model=cfg.model,
            expected={k: v.shape for k, v in like.items()},
            dtype={k: v.dtype.name for k, v in like.items()},
        )
        from_canonical(model, ckpt.weights)
    if opts.jitter:  # the rounding control: one ulp away from the start
        from_canonical(model, jitter(to_canonical(model), cfg.seed))

    # the optimizer holds the optax state of the model's nnx.Params; its schedule is inside
    optimizer = interface.optimizer(model, cfg)
    start = 0
    if opts.resume:  # the optimizer state and its step count come back from the file
        optimizer_from_canonical(model, optimizer, ckpt.tensors)
        start = ckpt.step
        rng_from_canonical(model, ckpt.tensors)  # this corner's dropout streams, if it wrote them
    batches = train_batches(ds, cfg, opts, start)  # the shared order (--control: perturbed)
    x_test, y_test = (to_device(data.as_dtype(a, dtype)) for a in (ds.x_test, ds.y_test))

    def state(k):  # what a step-N or final checkpoint holds, with the dropout streams
        opt = optimizer_to_canonical(model, optimizer, k)
        return {**to_canonical(model), **opt, **rng_to_canonical(model)}

    folder = RunFolder(opts, cfg, model_cfg, SIDE, versions())
    pending: list[jax.Array] = []
    test_loss = accuracy = float("nan")
    step = interface.uniform_step(module, model, optimizer)
    with folder, folder.bar(start) as bar:
        if not opts.resume:  # the first file: from here on, the folder holds this run
            folder.save("init", to_canonical(model), 0)
        t0 = time.perf_counter()
        for k in range(start + 1, cfg.steps + 1):
            loss = step(*next(batches))  # model and optimizer move in place
            pending.append(loss)
            if not folder.boundary(k):
                continue
            losses = np.asarray(jnp.stack(pending))  # the one host sync of this chunk
            folder.log_losses(k, losses, time.perf_counter() - t0, bar)
            pending = []
            if folder.wants_eval(k):
                test_loss, accuracy = interface.evaluate(module, model, x_test, y_test)
                folder.log_eval(k, test_loss, accuracy, bar)
            if folder.wants_save(k):
                folder.save_verified(f"step-{k}", state(k), k)
        folder.save("final", state(cfg.steps), cfg.steps)
    return {
        "out": opts.out,
        "loss": float(losses[-1]),
        "test_loss": test_loss,
        "accuracy": accuracy,
    }


# -- command line --
@errors.entry_point(f"python -m crossover.{SIDE}.train")
def main(argv: list[str] | None = None) -> int:
    cfg, model_cfg, opts = cli.parse(SIDE, argv)
    cli.report(SIDE, cfg.steps, run(cfg, model_cfg, opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
