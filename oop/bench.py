"""Time one training update on the OOP side: `python -m oop.bench --help`.

Variants, each the paradigm at its best:

- `eager`: `train_step` as written, `zero_grad`, `backward`, `step`;
- `compile`: `torch.compile` of the whole update (skipped by `--quick` and `--skip compile`:
  about 10 s of compilation even for the MLP);
- `loop`: the package's own training loop (`oop.train.run`), as a user runs it.

Twin of `functional/bench.py`; `python -m shared.bench.report` merges their files.
"""

from __future__ import annotations

import sys
import time

import torch

from oop import interface, train
from oop.models import MODELS
from oop.optim import make_optimizer
from shared import data, errors
from shared.bench import measure
from shared.cli import bench as cli_bench

SIDE = "oop"


# -- command line --
@errors.entry_point("python -m oop.bench")
def main(argv: list[str] | None = None) -> int:
    args = cli_bench.parse_bench(SIDE, argv)
    torch.set_num_threads(args.threads)
    measure.write(args, run(args))
    return 0


# -- variants --
def run(args: cli_bench.BenchArgs) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    device = train.pick_device(args.device)
    ds = data.load(args.dataset)
    model_cfg, module = args.model_config(ds), MODELS[args.model]
    cfg = args.train_config()
    train.set_precision(cfg, device)
    model = interface.init(module, model_cfg, seed=0, dtype=args.dtype).to(device)
    optimizer = make_optimizer(cfg.optimizer, model.named_parameters())
    batches = [
        tuple(torch.as_tensor(a, device=device) for a in b) for b in args.batches(ds, args.steps)
    ]
    peak = matmul_peak(args.dtype, device)
    analytic = measure.analytic_flops(args, model_cfg)

    eager = interface.uniform_step(module, model, optimizer, None)  # (x, y) -> loss, in place
    with FlopCounterMode(display=False) as counter:  # one update, matrix products only
        eager(*batches[0])
    flops = float(counter.get_total_flops())
    # what every variant reports beside its times: the same update's cost
    cost = dict(
        flops=flops,
        flops_source="torch FlopCounterMode (matmul, conv)",
        peak_gflops=peak,
        analytic=analytic,
    )

    def timed(step, variant):
        t0 = time.perf_counter()
        for _ in range(3):  # eager: allocator and caches; compile: the compilation
            step(*batches[0])
        sync(device)
        warmup, blocks = time.perf_counter() - t0, []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for x, y in batches:
                loss = step(x, y)
            float(loss)  # the one synchronisation of the block
            blocks.append((time.perf_counter() - t0) / args.steps)
        return measure.result(
            args,
            variant,
            warmup_s=warmup,
            blocks=blocks,
            **cost,
        )

    results = [timed(eager, "eager")]
    if "compile" not in args.skip:
        results.append(timed(torch.compile(eager), "compile"))
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
def sync(device: torch.device) -> None:
    """Wait for the queued GPU work; the CPU runs eagerly."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(dtype: str, device: torch.device) -> float:
    """GFLOP/s of the best of five square matmuls of size MATMUL_N: this framework's peak on
    this machine, the roofline's ceiling."""
    n = measure.MATMUL_N
    a = torch.ones(n, n, dtype=getattr(torch, dtype), device=device) / n
    a @ a
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ a
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


if __name__ == "__main__":
    sys.exit(main())
