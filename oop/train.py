"""Train a model on the OOP side: `python -m oop.train --help`.

The loop is PyTorch's usual one: a DataLoader yields batches, `train_step` runs `zero_grad`,
`backward`, `step`, and the model and optimizer change in place. Losses stay on the device and
reach the host in chunks, as in the functional twin.
"""

from __future__ import annotations

import sys
import time

import torch

from oop import interface
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
from shared.run import RunFolder, RunOptions
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
    return _run(cfg, model_cfg, opts, dataset or data.load(cfg.dataset, cfg.seq_len), device)


def _run(
    cfg: TrainConfig, model_cfg, opts: RunOptions, ds: data.Dataset, device: torch.device
) -> dict:
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

    folder = RunFolder(opts, cfg, model_cfg, SIDE, versions())
    pending: list[torch.Tensor] = []
    test_loss = accuracy = float("nan")
    step = interface.uniform_step(module, model, optimizer, cfg.optimizer.clip_norm)
    with folder, folder.bar(start) as bar:
        if not opts.resume:  # the first file: from here on, the folder holds this run
            folder.save("init", to_canonical(model), 0)
        t0 = time.perf_counter()
        for k, (x, y) in enumerate(loader, start=start + 1):
            loss = step(x.to(device), y.to(device))  # model and optimizer move in place
            scheduler.step()  # once per update, after optimizer.step()
            pending.append(loss)
            if not folder.boundary(k):
                continue
            losses = torch.stack(pending).cpu().numpy()  # the one host sync of this chunk
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
@errors.entry_point(f"python -m {SIDE}.train")
def main(argv: list[str] | None = None) -> int:
    cfg, model_cfg, opts = cli.parse(SIDE, argv)
    cli.report(SIDE, cfg.steps, run(cfg, model_cfg, opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
