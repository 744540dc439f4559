"""Train a model on the OOP side: `python -m oop.train --help`.

The loop is PyTorch's usual one: a DataLoader yields batches, `train_step` runs `zero_grad`,
`backward`, `step`, and the model and optimizer change in place. Losses stay on the device and
reach the host in chunks, as in the functional twin.

Under torchrun (`torchrun --standalone --nproc-per-node N -m oop.train ...`) the same loop runs
in N processes, the model wrapped in DistributedDataParallel, each on its part of every batch;
rank 0 writes the run folder (oop/parallel.py, docs/parallel.md).
"""

from __future__ import annotations

import dataclasses
import sys
import time

import torch

from oop import interface, parallel
from oop.convert import (
    canonical_dtypes,
    canonical_shapes,
    from_canonical,
    optimizer_from_canonical,
    optimizer_to_canonical,
    to_canonical,
)
from oop.data import make_loader
from oop.models import MODELS
from oop.optim import make_optimizer, make_scheduler
from shared import checkpoint, data, errors
from shared.cli import train as cli
from shared.config import TrainConfig
from shared.run import ReplicaFolder, RunError, RunFolder, RunOptions, launched, writes_files
from shared.weights import jitter

SIDE = "oop"


# -- device and precision --
def pick_device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise errors.Refused(
            "--device gpu, but torch sees no CUDA device; "
            "install a CUDA build of torch or use --device cpu"
        )
    return torch.device("cuda")


# torch's switches for float32 on a GPU: matrix products (cuBLAS), cuDNN's convolutions and RNNs
TF32_SWITCHES = (torch.backends.cuda.matmul, torch.backends.cudnn.conv, torch.backends.cudnn.rnn)


def set_precision(cfg: TrainConfig, device: torch.device) -> None:
    """On a GPU, all three of torch's switches to IEEE float32, or to TF32 with `--tf32`,
    rather than torch's own defaults there (TF32 for cuDNN only); on the CPU, nothing changes.
    Global, as torch's switches are."""
    if device.type == "cuda":
        for switch in TF32_SWITCHES:
            switch.fp32_precision = "tf32" if cfg.tf32 else "ieee"


def versions() -> dict[str, str]:
    return {"torch": torch.__version__}


# -- the loop --
def run(cfg: TrainConfig, model_cfg, opts: RunOptions, dataset: data.Dataset | None = None) -> dict:
    """Train, writing the run folder `opts.out`; returns a summary. Raises RunError."""
    device = pick_device(cfg.device)
    set_precision(cfg, device)
    ds = dataset or data.load(cfg.dataset, cfg.seq_len)
    if not launched():
        return _run(cfg, model_cfg, opts, ds, device)
    with parallel.joined(device, cfg.batch_size) as group:  # under torchrun: DDP
        opts = dataclasses.replace(opts, devices=group.world, parallel="ddp")
        return _run(cfg, model_cfg, opts, ds, device, group)


def _run(
    cfg: TrainConfig, model_cfg, opts: RunOptions, ds: data.Dataset, device: torch.device,
    group: parallel.Group | None = None,
) -> dict:  # fmt: skip
    module = MODELS[cfg.model]
    dtype = module.DTYPES[cfg.dtype]
    model = interface.init(module, model_cfg, seed=cfg.seed, dtype=cfg.dtype)  # state inside
    ckpt = None
    if opts.init or opts.resume:
        ckpt = checkpoint.load_weights(
            opts.init or opts.resume,
            model=cfg.model,
            expected=canonical_shapes(model),  # parameters and buffers (BatchNorm statistics)
            dtype=canonical_dtypes(model),
        )
        from_canonical(model, ckpt.weights)
    if opts.jitter:  # the rounding control: one ulp away from the start
        from_canonical(model, jitter(to_canonical(model), cfg.seed))
    model.to(device)

    # the optimizer holds the parameters and their state; the scheduler rewrites its lr
    optimizer = make_optimizer(cfg.optimizer, model.named_parameters())
    start = 0
    if opts.resume:  # the optimizer state comes back from the file, the schedule is replayed
        optimizer_from_canonical(model, optimizer, ckpt.tensors)
        start = ckpt.step
        if "rng.torch" in ckpt.tensors:  # a torch run's generator: Dropout's masks carry on
            torch.set_rng_state(torch.from_numpy(ckpt.tensors["rng.torch"].copy()))
    scheduler = make_scheduler(cfg.optimizer, cfg.schedule, optimizer, cfg.steps, start_step=start)
    x_train = data.as_dtype(ds.x_train, cfg.dtype)
    if opts.control:  # the rounding control: every input one ulp away at random
        x_train = data.jitter_inputs(x_train, cfg.seed)
    loader = make_loader(
        x_train,
        ds.y_train,
        cfg.batch_size,
        seed=cfg.seed,
        num_steps=cfg.steps - start,
        dtype=dtype,
        start_step=start,
        reverse=opts.control,  # the rounding control: each batch's examples reversed
    )
    x_test = torch.as_tensor(data.as_dtype(ds.x_test, cfg.dtype), device=device)
    y_test = torch.as_tensor(data.as_dtype(ds.y_test, cfg.dtype), device=device)

    def state(k):  # what a step-N or final checkpoint holds, with the generator for Dropout
        rng = {"rng.torch": torch.get_rng_state().numpy()}
        return {**to_canonical(model), **optimizer_to_canonical(model, optimizer, k), **rng}

    writer = group is None or group.writer  # under DDP, rank 0 writes and evaluates
    folder = (RunFolder if writer else ReplicaFolder)(opts, cfg, model_cfg, SIDE, versions())
    pending: list[torch.Tensor] = []
    test_loss = accuracy = float("nan")
    with folder, folder.bar(start) as bar:
        if not opts.resume and writer:  # the first file: from here on, the folder holds this run
            folder.save("init", to_canonical(model), 0)
        t0 = time.perf_counter()
        try:
            if group is None:
                step = interface.uniform_step(module, model, optimizer, cfg.optimizer.clip_norm)
            else:  # DDP: this rank's part of each batch, the gradients all-reduced in backward()
                step = parallel.make_step(module, model, optimizer, cfg.optimizer.clip_norm,
                                          group, device)  # fmt: skip
            for k, (x, y) in enumerate(loader, start=start + 1):
                loss = step(x.to(device), y.to(device))  # model and optimizer move in place
                scheduler.step()  # once per update, after optimizer.step()
                pending.append(loss)
                if not folder.boundary(k):
                    continue
                losses = torch.stack(pending)
                if group is not None:  # the global batch's losses, on every rank alike
                    losses = parallel.mean_over_ranks(losses, group)
                losses = losses.cpu().numpy()  # the one host sync of this chunk
                folder.log_losses(k, losses, time.perf_counter() - t0, bar)
                pending = []
                if folder.wants_eval(k) and writer:
                    test_loss, accuracy = interface.evaluate(module, model, x_test, y_test)
                    folder.log_eval(k, test_loss, accuracy, bar)
                if folder.wants_save(k) and writer:
                    folder.save_verified(f"step-{k}", state(k), k)
        except errors.Stopped:  # a NaN, a failed write: RuntimeErrors too, and this run's own
            raise
        except RuntimeError as e:  # under DDP: a peer died, or hung past the timeout
            if group is None or not parallel.is_collective_failure(e):
                raise
            more = f" Go on with --resume {folder.last_good}" if folder._resumable() else ""
            raise RunError(f"{parallel.lost_peer(e, group)}. {folder._last_good()}{more}") from None
        if writer:
            folder.save("final", state(cfg.steps), cfg.steps)
    return {
        "out": opts.out,
        "loss": float(losses[-1]),
        "test_loss": test_loss,
        "accuracy": accuracy,
    }


# -- command line --
@errors.entry_point(f"python -m {SIDE}.train")
def main(argv: list[str] | None = None) -> int:
    cfg, model_cfg, opts = cli.parse(SIDE, argv)
    summary = run(cfg, model_cfg, opts)
    if writes_files():  # under torchrun, rank 0 reports for all
        cli.report(SIDE, cfg.steps, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
