"""Train a model with Keras 3, `compile` and `fit`: `python -m keras3.train --backend jax --help`.

Twin of `oop/train.py`, the Keras way: the script builds the model and the optimizer, calls
`model.compile`, and hands `fit` the batches in the order every side draws them (a generator
over `shared.data.batches`: Keras shuffles nothing). `fit` runs one epoch of one step per
update (`steps_per_epoch=1`), so that the loss Keras logs at each epoch's end is that update's
loss, not a running mean; a `keras.callbacks.Callback` writes the run folder at the
boundaries, as the other loops do between their steps. The backend is chosen before keras is
imported (`--backend`, default jax): everything that imports keras is imported inside `run`.
"""

from __future__ import annotations

import sys
import time
from importlib import metadata

import numpy as np

from keras3 import backend
from shared import checkpoint, data, errors
from shared.cli import train as cli
from shared.config import TrainConfig
from shared.run import RunFolder, RunOptions, train_batches
from shared.weights import jitter

SIDE = "keras3"


# -- device and precision --
def versions() -> dict[str, str]:
    """Keras's version, the backend's name and the backend's version (read from the installed
    distribution: the Keras side imports no backend itself)."""
    import keras

    name = keras.backend.backend()
    dist = {"jax": ("jax",), "torch": ("torch",), "tensorflow": ("tensorflow-cpu", "tensorflow")}
    for d in dist[name]:
        try:
            return {"keras": keras.__version__, "backend": name, name: metadata.version(d)}
        except metadata.PackageNotFoundError:
            continue
    return {"keras": keras.__version__, "backend": name}


def backend_of(argv: list[str] | None) -> str:
    """The `--backend` of a command line, read before keras loads (the parser checks it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, a in enumerate(argv):
        if a == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--backend="):
            return a.split("=", 1)[1]
    return backend.BACKENDS[0]


# -- the loop --
def run(cfg: TrainConfig, model_cfg, opts: RunOptions, dataset: data.Dataset | None = None) -> dict:
    """Train, writing the run folder `opts.out`; returns a summary. Raises RunError. The
    process's backend must be chosen already (`keras3.backend.use`)."""
    return _run(cfg, model_cfg, opts, dataset or data.load(cfg.dataset, cfg.seq_len))


def _run(cfg: TrainConfig, model_cfg, opts: RunOptions, ds: data.Dataset) -> dict:
    import keras

    from keras3 import interface
    from keras3.convert import (
        canonical_like,
        from_canonical,
        optimizer_from_canonical,
        optimizer_to_canonical,
        rng_from_canonical,
        rng_to_canonical,
        to_canonical,
    )
    from keras3.models import MODELS

    # what fit's loss tracker (so the logged loss) keeps, and, on torch, the dtype that every
    # Python number in the model's arithmetic (0.5, a momentum, an epsilon) is made first
    keras.config.set_floatx(cfg.dtype)
    module = MODELS[cfg.model]
    dtype = np.dtype(cfg.dtype)
    model = interface.init(module, model_cfg, seed=cfg.seed, dtype=cfg.dtype)
    ckpt = None
    if opts.init or opts.resume:
        like = canonical_like(model)  # weights and BatchNorm statistics
        ckpt = checkpoint.load_weights(
            opts.init or opts.resume,
            model=cfg.model,
            expected={k: s for k, (s, _) in like.items()},
            dtype={k: d for k, (_, d) in like.items()},
        )
        from_canonical(model, ckpt.weights)
    if opts.jitter:  # the rounding control: one ulp away from the start
        from_canonical(model, jitter(to_canonical(model), cfg.seed))

    optimizer = interface.optimizer(model, cfg)  # torch's formulas, the schedule inside
    start = 0
    if opts.resume:  # the slots and the step count come back from the file
        optimizer_from_canonical(model, optimizer, ckpt.tensors)
        start = ckpt.step
        rng_from_canonical(model, ckpt.tensors)  # the seed generators, if this side wrote them
    interface.compile_model(module, model, optimizer)
    batches = train_batches(ds, cfg, opts, start)  # the shared order (--control: perturbed)
    x_test, y_test = (data.as_dtype(a, dtype) for a in (ds.x_test, ds.y_test))

    def state(k):  # what a step-N or final checkpoint holds, with the seed generators
        opt = optimizer_to_canonical(model, optimizer, k)
        return {**to_canonical(model), **opt, **rng_to_canonical(model)}

    folder = RunFolder(opts, cfg, model_cfg, SIDE, versions())
    summary = {"loss": float("nan"), "test_loss": float("nan"), "accuracy": float("nan")}

    class RunFolderCallback(keras.callbacks.Callback):
        """After each one-step epoch: its loss; at the boundaries, the run folder's records,
        evaluations and checkpoints (Keras has synchronised the variables by then)."""

        def __init__(self, bar):
            super().__init__()
            self.bar, self.pending, self.t0 = bar, [], time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            k = epoch + 1  # the update just done
            self.pending.append(logs["loss"])
            if not folder.boundary(k):
                return
            losses = np.asarray(self.pending, dtype=np.float64)
            folder.log_losses(k, losses, time.perf_counter() - self.t0, self.bar)
            summary["loss"], self.pending = float(losses[-1]), []
            if folder.wants_eval(k):
                loss, accuracy = interface.evaluate(module, self.model, x_test, y_test)
                summary.update(test_loss=loss, accuracy=accuracy)
                folder.log_eval(k, loss, accuracy, self.bar)
            if folder.wants_save(k):
                folder.save_verified(f"step-{k}", state(k), k)

    with folder, folder.bar(start) as bar:
        if not opts.resume:  # the first file: from here on, the folder holds this run
            folder.save("init", to_canonical(model), 0)
        if start < cfg.steps:
            model.fit(
                (batch for batch in batches),  # the shared order, drawn as fit asks
                epochs=cfg.steps,
                initial_epoch=start,
                steps_per_epoch=1,  # one update per epoch: the epoch's loss is the update's
                shuffle=False,
                verbose=0,
                callbacks=[RunFolderCallback(bar)],
            )
        folder.save("final", state(cfg.steps), cfg.steps)
    return {"out": opts.out, **summary}


# -- command line --
@errors.entry_point(f"python -m {SIDE}.train")
def main(argv: list[str] | None = None) -> int:
    if backend_of(argv) in backend.BACKENDS:  # an unknown one: the parser's one-line error
        backend.use(backend_of(argv))  # before anything imports keras
    cfg, model_cfg, opts = cli.parse(SIDE, argv)
    cli.report(SIDE, cfg.steps, run(cfg, model_cfg, opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
