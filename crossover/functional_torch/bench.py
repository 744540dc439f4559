"""Time one training update as functions on PyTorch: `python -m crossover.functional_torch.bench`.

Variants:

- `eager`: the corner's pure step, `functional_call` and `grad_and_value` over dicts and the
  out-of-place optimizer, one call per update;
- `compile`: `torch.compile` of the same step (skipped by `--quick` and `--skip compile`);
- `vmap8`: `--ensemble 8`'s update, eight models in one `torch.func.vmap`ped step, per model;
- `loop`: the corner's own training loop (`crossover.functional_torch.train.run`).

Twin of `functional/bench.py` and `oop/bench.py`, on the same flags; `python -m
shared.bench.report` merges the files, and the columns set `eager` against `oop:eager`.
"""

from __future__ import annotations

import sys
import time

import torch

from crossover.functional_torch import interface, train
from crossover.functional_torch.models import MODELS
from crossover.functional_torch.optim import make_optimizer
from oop.bench import matmul_peak, sync
from oop.train import pick_device, set_precision
from shared import data, errors
from shared.bench import measure
from shared.bench.results import ENSEMBLE
from shared.cli import bench as cli_bench

SIDE = "functional_torch"


# -- command line --
@errors.entry_point(f"python -m crossover.{SIDE}.bench")
def main(argv: list[str] | None = None) -> int:
    args = cli_bench.parse_bench(SIDE, argv)
    torch.set_num_threads(args.threads)
    measure.write(args, run(args))
    return 0


# -- variants --
def run(args: cli_bench.BenchArgs) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    device = pick_device(args.device)
    ds = data.load(args.dataset)
    model_cfg, module = args.model_config(ds), MODELS[args.model]
    cfg = args.train_config()
    set_precision(cfg, device)
    params, buffers = interface.init(module, model_cfg, seed=0, dtype=args.dtype)
    params = {k: v.to(device) for k, v in params.items()}
    buffers = None if buffers is None else {k: v.to(device) for k, v in buffers.items()}
    optimizer = make_optimizer(cfg.optimizer, cfg.schedule, args.dtype)
    skeleton = module.skeleton(model_cfg, dtype=args.dtype)
    uniform = interface.uniform_step(module, optimizer, skeleton)
    batches = [
        tuple(torch.as_tensor(a, device=device) for a in b) for b in args.batches(ds, args.steps)
    ]
    peak, analytic = matmul_peak(args.dtype, device), measure.analytic_flops(args, model_cfg)
    start = (params, buffers, optimizer.init(params))
    with FlopCounterMode(display=False) as counter:  # one update, matrix products only
        uniform(*start, *batches[0], 1)
    cost = dict(flops=float(counter.get_total_flops()),
                flops_source="torch FlopCounterMode (matmul, conv)", peak_gflops=peak,
                analytic=analytic)  # fmt: skip
    results = [time_blocks(args, uniform, start, batches, "eager", cost, device)]
    if "compile" not in args.skip:
        compiled = torch.compile(uniform)
        results.append(time_blocks(args, compiled, start, batches, "compile", cost, device))
    if "vmap8" not in args.skip:
        results.append(vmap8(args, module, model_cfg, optimizer, skeleton, batches, cost, device))
    if "loop" not in args.skip:
        results.append(measure.time_loop(args, cfg, model_cfg, train.run, cost))
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    return {
        "side": SIDE,
        "device": args.device,
        "machine": measure.machine(name),
        "versions": train.versions(),
        "threads": {"intra_op": torch.get_num_threads(), "note": "torch.set_num_threads"},
        "matmul_peak_gflops": peak,
        "results": results,
    }


# -- measuring --
def time_blocks(args, step, start, batches, variant: str, cost: dict, device) -> dict:
    """One variant's result: three updates for the warm-up (eager: the allocator; compile: the
    compilation), then `--repeats` blocks, the state threaded from update to update."""
    state, t0 = start, time.perf_counter()
    for k in range(1, 4):
        *state, loss = step(*state, *batches[0], k)
    sync(device)
    warmup, blocks = time.perf_counter() - t0, []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for k, (x, y) in enumerate(batches, start=1):
            *state, loss = step(*state, x, y, k)
        float(loss)  # the one synchronisation of the block
        blocks.append((time.perf_counter() - t0) / args.steps)
    return measure.result(args, variant, warmup_s=warmup, blocks=blocks, **cost)


def vmap8(args, module, model_cfg, optimizer, skeleton, batches, cost: dict, device) -> dict:
    """`--ensemble 8`'s update: eight models (seeds 0..7) stacked by
    `torch.func.stack_module_state` and updated by one `torch.func.vmap` of the step, on the
    same batch; reported per model (the block's time / 8), against `eager`'s one model."""
    from oop.models import MODELS as OOP_MODELS

    with torch.random.fork_rng(devices=[]):
        members = [OOP_MODELS[args.model].init_model(model_cfg, seed=i, dtype=args.dtype)
                   for i in range(ENSEMBLE)]  # fmt: skip
    params, buffers = torch.func.stack_module_state(members)
    params = {k: v.detach().to(device) for k, v in params.items()}
    buffers = {k: v.to(device) for k, v in buffers.items()} if module.HAS_STATE else None
    opt = interface.stack_states(
        [optimizer.init(interface.member(params, i)) for i in range(ENSEMBLE)]
    )
    step = interface.ensemble_step(module, optimizer, skeleton)
    stacked = [tuple(torch.stack([a] * ENSEMBLE) for a in b) for b in batches]
    state, t0 = (params, buffers, opt), time.perf_counter()
    *state, loss = step(*state, *stacked[0], 1)
    sync(device)
    warmup, blocks = time.perf_counter() - t0, []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for k, (x, y) in enumerate(stacked, start=1):
            *state, loss = step(*state, x, y, k)
        float(loss[0])  # the one synchronisation of the block
        blocks.append((time.perf_counter() - t0) / args.steps / ENSEMBLE)
    return measure.result(args, "vmap8", warmup_s=warmup, blocks=blocks, **cost)


if __name__ == "__main__":
    sys.exit(main())
