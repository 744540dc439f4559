"""Train a model as functions on PyTorch: `python -m crossover.functional_torch.train --help`.

Twin of `functional/train.py`: the loop threads state by hand, `params, buffers, opt_state, loss
= step(params, buffers, opt_state, x, y, k)`, with a pure step over dicts of tensors that runs
the OOP side's module through `torch.func.functional_call`. Batches come from `shared.data` as
NumPy arrays, in the order every side draws them; losses reach the host in chunks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time

import numpy as np
import torch

from crossover.functional_torch import interface
from crossover.functional_torch.convert import (
    canonical_like,
    from_canonical,
    opt_state_from_canonical,
    opt_state_to_canonical,
    to_canonical,
)
from crossover.functional_torch.models import MODELS
from crossover.functional_torch.optim import OptState, make_optimizer
from oop.models import MODELS as OOP_MODELS
from oop.train import pick_device, set_precision
from shared import checkpoint, data, errors
from shared.cli import train as cli
from shared.config import TrainConfig
from shared.run import RunFolder, RunOptions, ensemble_folders, train_batches
from shared.weights import jitter

SIDE = "functional_torch"


# -- device and precision --
def versions() -> dict[str, str]:
    return {"torch": torch.__version__}


# -- the loop --
def run(cfg: TrainConfig, model_cfg, opts: RunOptions, dataset: data.Dataset | None = None) -> dict:
    """Train, writing the run folder `opts.out`; returns a summary. Raises RunError."""
    device = pick_device(cfg.device)  # the same devices and precision as the OOP side
    set_precision(cfg, device)
    return _run(cfg, model_cfg, opts, dataset or data.load(cfg.dataset, cfg.seq_len), device)


def _run(
    cfg: TrainConfig, model_cfg, opts: RunOptions, ds: data.Dataset, device: torch.device
) -> dict:
    module = MODELS[cfg.model]
    dtype = np.dtype(cfg.dtype)
    params, buffers = interface.init(module, model_cfg, seed=cfg.seed, dtype=cfg.dtype)
    ckpt = None
    if opts.init or opts.resume:
        like = canonical_like(params, buffers)  # names, shapes and dtypes to expect
        ckpt = checkpoint.load_weights(
            opts.init or opts.resume,
            model=cfg.model,
            expected={k: s for k, (s, _) in like.items()},
            dtype={k: d for k, (_, d) in like.items()},
        )
        params, buffers = from_canonical(params, buffers, ckpt.weights)
    if opts.jitter:  # the rounding control: one ulp away from the start
        jittered = jitter(to_canonical(params, buffers), cfg.seed)
        params, buffers = from_canonical(params, buffers, jittered)
    params = {k: v.to(device) for k, v in params.items()}
    buffers = None if buffers is None else {k: v.to(device) for k, v in buffers.items()}

    skeleton = module.skeleton(model_cfg, dtype=cfg.dtype)  # the architecture, no weights
    optimizer = make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)  # schedule included
    opt_state = optimizer.init(params)
    start = 0
    if opts.resume:  # the optimizer state and its step count come back from the file
        opt_state, start = opt_state_from_canonical(opt_state, ckpt.tensors), ckpt.step
    step = interface.uniform_step(module, optimizer, skeleton, cfg.seed)
    x_test, y_test = (torch.as_tensor(data.as_dtype(a, dtype), device=device)
                      for a in (ds.x_test, ds.y_test))  # fmt: skip

    def state(params, buffers, opt_state, k):  # what a step-N or final checkpoint holds
        return {**to_canonical(params, buffers), **opt_state_to_canonical(opt_state, k)}

    folder = RunFolder(opts, cfg, model_cfg, SIDE, versions())
    batches = train_batches(ds, cfg, opts, start)  # the shared order (--control: perturbed)
    pending: list[torch.Tensor] = []
    test_loss = accuracy = float("nan")
    with folder, folder.bar(start) as bar:
        if not opts.resume:  # the first file: from here on, the folder holds this run
            folder.save("init", to_canonical(params, buffers), 0)
        t0 = time.perf_counter()
        for k in range(start + 1, cfg.steps + 1):
            x, y = (torch.from_numpy(a).to(device) for a in next(batches))
            params, buffers, opt_state, loss = step(params, buffers, opt_state, x, y, k)
            pending.append(loss)
            if not folder.boundary(k):
                continue
            losses = torch.stack(pending).cpu().numpy()  # the one host sync of this chunk
            folder.log_losses(k, losses, time.perf_counter() - t0, bar)
            pending = []
            if folder.wants_eval(k):
                test_loss, accuracy = interface.evaluate(
                    module, skeleton, params, buffers, x_test, y_test
                )
                folder.log_eval(k, test_loss, accuracy, bar)
            if folder.wants_save(k):
                folder.save_verified(f"step-{k}", state(params, buffers, opt_state, k), k)
        folder.save("final", state(params, buffers, opt_state, cfg.steps), cfg.steps)
    return {
        "out": opts.out,
        "loss": float(losses[-1]),
        "test_loss": test_loss,
        "accuracy": accuracy,
    }


# -- the ensemble --
def run_ensemble(cfg: TrainConfig, model_cfg, opts: RunOptions) -> list[dict]:
    """`--ensemble N`: N members from seeds `cfg.seed + i`, each with its own initial weights
    and batch order, stacked by `torch.func.stack_module_state` and trained by one
    `torch.func.vmap`ped step; member i writes `OUT/seed-S/`, the run `--seed S` writes alone."""
    device = pick_device(cfg.device)
    set_precision(cfg, device)
    ds = data.load(cfg.dataset, cfg.seq_len)
    module, dtype, n = MODELS[cfg.model], np.dtype(cfg.dtype), opts.ensemble
    cfgs = [dataclasses.replace(cfg, seed=cfg.seed + i) for i in range(n)]
    with torch.random.fork_rng(devices=[]):  # each member drawn as the OOP side draws it
        modules = [OOP_MODELS[cfg.model].init_model(model_cfg, seed=c.seed, dtype=cfg.dtype)
                   for c in cfgs]  # fmt: skip
    params, buffers = torch.func.stack_module_state(modules)  # every tensor: (n, ...)
    params = {k: v.detach().to(device) for k, v in params.items()}
    buffers = {k: v.to(device) for k, v in buffers.items()} if module.HAS_STATE else None
    skeleton = module.skeleton(model_cfg, dtype=cfg.dtype)
    optimizer = make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)
    opt_state = interface.stack_states([optimizer.init(interface.member(params, i))
                                        for i in range(n)])  # fmt: skip
    step = interface.ensemble_step(module, optimizer, skeleton)
    x_train, y_train = data.as_dtype(ds.x_train, dtype), data.as_dtype(ds.y_train, dtype)
    streams = [data.batches(x_train, y_train, cfg.batch_size, seed=c.seed) for c in cfgs]
    x_test, y_test = (torch.as_tensor(data.as_dtype(a, dtype), device=device)
                      for a in (ds.x_test, ds.y_test))  # fmt: skip

    def weights(i):
        b = None if buffers is None else interface.member(buffers, i)
        return to_canonical(interface.member(params, i), b)

    def state(i, k):
        fields = interface.member(opt_state, i)
        full = OptState(**{f: fields.get(f) for f in OptState._fields})
        return {**weights(i), **opt_state_to_canonical(full, k)}

    pending: list[torch.Tensor] = []
    scores = [(float("nan"), float("nan"))] * n
    with contextlib.ExitStack() as stack:
        folders = ensemble_folders(stack, opts, cfgs, model_cfg, SIDE, versions())
        bars = []  # member 0's shows progress, the others' are off
        for i, folder in enumerate(folders):
            bars.append(stack.enter_context(folder.bar()))
            folder.save("init", weights(i), 0)
        t0 = time.perf_counter()
        for k in range(1, cfg.steps + 1):
            x, y = (torch.from_numpy(np.stack(a)).to(device)
                    for a in zip(*(next(s) for s in streams), strict=True))  # fmt: skip
            params, buffers, opt_state, loss = step(params, buffers, opt_state, x, y, k)
            pending.append(loss)  # (n,)
            if not folders[0].boundary(k):
                continue
            losses = torch.stack(pending).cpu().numpy()  # (updates, n): one host sync for all
            pending = []
            for i, folder in enumerate(folders):
                folder.log_losses(k, losses[:, i], time.perf_counter() - t0, bars[i])
                if folder.wants_eval(k):
                    b = None if buffers is None else interface.member(buffers, i)
                    scores[i] = interface.evaluate(module, skeleton, interface.member(params, i),
                                                   b, x_test, y_test)  # fmt: skip
                    folder.log_eval(k, *scores[i], bars[i])
                if folder.wants_save(k):
                    folder.save_verified(f"step-{k}", state(i, k), k)
        for i, folder in enumerate(folders):
            folder.save("final", state(i, cfg.steps), cfg.steps)
    return [{"out": f.out, "loss": float(losses[-1, i]), "test_loss": scores[i][0],
             "accuracy": scores[i][1]} for i, f in enumerate(folders)]  # fmt: skip


# -- command line --
@errors.entry_point(f"python -m crossover.{SIDE}.train")
def main(argv: list[str] | None = None) -> int:
    cfg, model_cfg, opts = cli.parse(SIDE, argv)
    if opts.ensemble > 1:
        for member in run_ensemble(cfg, model_cfg, opts):
            cli.report(SIDE, cfg.steps, member)
        return 0
    cli.report(SIDE, cfg.steps, run(cfg, model_cfg, opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
