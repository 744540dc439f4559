"""Time one training update as objects on JAX: `python -m crossover.oop_jax.bench --help`.

Variants:

- `nnx.jit`: the corner's `train_step` as written, the model and optimizer updated in place by
  `nnx.jit`, which splits and merges the object graph in Python at every call;
- `split`: the same step as the NNX performance guide writes it, `nnx.split` once, then a
  `jax.jit` step `(state, x, y) -> (state, loss)` per update: the objects' cost removed;
- `loop`: the corner's own training loop (`crossover.oop_jax.train.run`), as a user runs it.

Twin of `oop/bench.py` and `functional/bench.py`, on the same flags; `python -m
shared.bench.report` merges the files, and the columns set `nnx.jit` against `functional:jit`.
"""

from __future__ import annotations

import sys
import time

from functional.bench import xla_threads
from shared import data, errors
from shared.bench import measure
from shared.cli import bench as cli_bench

SIDE = "oop_jax"


# -- command line --
@errors.entry_point(f"python -m crossover.{SIDE}.bench")
def main(argv: list[str] | None = None) -> int:
    args = cli_bench.parse_bench(SIDE, argv)
    xla_threads(args.threads)  # before jax is imported, as the functional bench does
    measure.write(args, run(args))
    return 0


# -- variants --
def run(args: cli_bench.BenchArgs) -> dict:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from crossover.oop_jax import interface, train
    from crossover.oop_jax.models import MODELS
    from functional.bench import matmul_peak, xla_flops
    from functional.train import pick_device, precision

    device = pick_device(args.device)
    ds = data.load(args.dataset)
    model_cfg, module = args.model_config(ds), MODELS[args.model]
    cfg = args.train_config()
    with jax.enable_x64(args.dtype == "float64"), jax.default_device(device), precision(cfg):
        batches = [tuple(map(jnp.asarray, b)) for b in args.batches(ds, args.steps)]
        peak, analytic = matmul_peak(args.dtype), measure.analytic_flops(args, model_cfg)

        # split: one pure jitted step over the graph's state; it gives the FLOPs
        model = interface.init(module, model_cfg, seed=0, dtype=args.dtype)
        optimizer = interface.optimizer(model, cfg)
        model.train()
        graphdef, state = nnx.split((model, optimizer))
        pure = jax.jit(module.pure_step(graphdef))
        compiled = pure.lower(state, *batches[0]).compile()
        cost = dict(flops=xla_flops(compiled), flops_source="xla cost analysis",
                    peak_gflops=peak, analytic=analytic)  # fmt: skip
        held = {"state": state}

        def split(x, y):
            held["state"], loss = pure(held["state"], x, y)
            return loss

        model = interface.init(module, model_cfg, seed=0, dtype=args.dtype)
        in_place = interface.uniform_step(module, model, interface.optimizer(model, cfg))
        results = [time_blocks(args, in_place, batches, "nnx.jit", cost)]
        if "split" not in args.skip:
            results.append(time_blocks(args, split, batches, "split", cost))
        if "loop" not in args.skip:
            results.append(measure.time_loop(args, cfg, model_cfg, train.run, cost))
    return {
        "side": SIDE,
        "device": args.device,
        "machine": measure.machine(device.device_kind),
        "versions": train.versions(),
        "threads": {"intra_op": args.threads, "note": "XLA_FLAGS intra_op_parallelism_threads"},
        "matmul_peak_gflops": peak,
        "results": results,
    }


# -- measuring --
def time_blocks(args: cli_bench.BenchArgs, step, batches: list, variant: str, cost: dict) -> dict:
    """One variant's result: `step(x, y) -> loss` once for the compilation (its warm-up), then
    `--repeats` blocks over the prepared batches, each ended by one wait for the last loss."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(step(*batches[0]))
    warmup, blocks = time.perf_counter() - t0, []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for x, y in batches:
            loss = step(x, y)
        jax.block_until_ready(loss)
        blocks.append((time.perf_counter() - t0) / args.steps)
    return measure.result(args, variant, warmup_s=warmup, blocks=blocks, **cost)


if __name__ == "__main__":
    sys.exit(main())
