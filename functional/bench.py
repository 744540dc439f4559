"""Time one training update on the functional side: `python -m functional.bench --help`.

Variants, each the paradigm at its best:

- `jit`: one jitted update per call, `params, opt_state, loss = step(...)`;
- `scan`: `--steps` updates in one call, a `lax.scan` over stacked batches, so Python and
  dispatch run once per block instead of once per update;
- `vmap8`: `--ensemble 8`'s update, eight models in one `jax.vmap`ped step, per model;
- `loop`: the package's own training loop (`functional.train.run`), as a user runs it.

Twin of `oop/bench.py`; `python -m shared.bench.report` merges their files.
"""

from __future__ import annotations

import os
import sys
import time

from shared import data, errors
from shared.bench import measure
from shared.bench.results import ENSEMBLE
from shared.cli import bench as cli_bench

SIDE = "functional"


# -- command line --
@errors.entry_point("python -m functional.bench")
def main(argv: list[str] | None = None) -> int:
    args = cli_bench.parse_bench(SIDE, argv)
    xla_threads(args.threads)
    measure.write(args, run(args))
    return 0


# -- variants --
def run(args: cli_bench.BenchArgs) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from functional import interface, train
    from functional.models import MODELS
    from functional.optim import make_optimizer

    device = train.pick_device(args.device)
    ds = data.load(args.dataset)
    model_cfg, module = args.model_config(ds), MODELS[args.model]
    cfg = args.train_config()
    with jax.enable_x64(args.dtype == "float64"), jax.default_device(device), train.precision(cfg):
        key = jax.random.PRNGKey(0)
        model, mstate = interface.init(module, model_cfg, key=key, dtype=args.dtype)
        params, static = eqx.partition(model, eqx.is_array)
        optimizer = make_optimizer(cfg.optimizer, cfg.schedule, args.dtype)
        opt_state = optimizer.init(params)
        uniform = interface.uniform_step(module, optimizer, static, 0)
        batches = [tuple(map(jnp.asarray, b)) for b in args.batches(ds, args.steps)]
        peak = matmul_peak(args.dtype)
        analytic = measure.analytic_flops(args, model_cfg)

        # jit: one update per call
        step = jax.jit(uniform)
        x, y = batches[0]
        t0 = time.perf_counter()
        compiled = step.lower(params, mstate, opt_state, x, y, 1).compile()
        warmup = time.perf_counter() - t0
        flops = xla_flops(compiled)
        # what every variant reports beside its times: the same compiled update's cost
        cost = dict(
            flops=flops, flops_source="xla cost analysis", peak_gflops=peak, analytic=analytic
        )
        state = (params, mstate, opt_state)

        def block_jit(state):
            for k, (x, y) in enumerate(batches, start=1):
                *state, loss = compiled(*state, x, y, k)
            jax.block_until_ready(loss)
            return tuple(state)

        state = block_jit(state)  # one untimed block: caches, allocator
        blocks = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            state = block_jit(state)
            blocks.append((time.perf_counter() - t0) / args.steps)
        results = [
            measure.result(
                args,
                "jit",
                warmup_s=warmup,
                blocks=blocks,
                **cost,
            )
        ]

        if "scan" not in args.skip:
            results.append(scan(args, uniform, state, batches, cost))
        if "vmap8" not in args.skip:
            results.append(vmap8(args, module, model_cfg, optimizer, batches, cost))
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


def scan(args: cli_bench.BenchArgs, uniform, state, batches, cost: dict) -> dict:
    """Every update of a block in one call: a `lax.scan` over the stacked batches."""
    import jax
    import jax.numpy as jnp

    xs = jnp.stack([b[0] for b in batches])  # (steps, batch, ...)
    ys = jnp.stack([b[1] for b in batches])

    @jax.jit
    def scanned(state, xs, ys):
        def body(state, inputs):
            x, y, k = inputs
            *state, loss = uniform(*state, x, y, k)
            return tuple(state), loss

        return jax.lax.scan(body, state, (xs, ys, jnp.arange(1, len(xs) + 1)))

    t0 = time.perf_counter()
    state, losses = scanned(state, xs, ys)
    jax.block_until_ready(losses)
    warmup = time.perf_counter() - t0
    blocks = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        state, losses = scanned(state, xs, ys)
        jax.block_until_ready(losses)
        blocks.append((time.perf_counter() - t0) / args.steps)
    return measure.result(args, "scan", warmup_s=warmup, blocks=blocks, **cost)


def vmap8(args: cli_bench.BenchArgs, module, model_cfg, optimizer, batches, cost: dict) -> dict:
    """`--ensemble 8`'s update: eight models (keys 0..7) stacked and updated by one `jax.vmap`
    of the step, on the same batch; reported per model (the block's time / 8), so that it reads
    against `jit`, one model's update."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from functional import interface

    made = [interface.init(module, model_cfg, key=jax.random.PRNGKey(i), dtype=args.dtype)
            for i in range(ENSEMBLE)]  # fmt: skip
    parts = [eqx.partition(model, eqx.is_array) for model, _ in made]
    params = interface.stack([p for p, _ in parts])
    mstate = interface.stack([s for _, s in made]) if module.HAS_STATE else None
    state = (params, mstate, jax.jit(jax.vmap(optimizer.init))(params))
    step = jax.jit(interface.ensemble_step(module, optimizer, parts[0][1], 0))
    stacked = [tuple(jnp.stack([a] * ENSEMBLE) for a in b) for b in batches]

    def block(state):
        for k, (x, y) in enumerate(stacked, start=1):
            *state, loss = step(*state, x, y, k)
        jax.block_until_ready(loss)
        return tuple(state)

    t0 = time.perf_counter()
    state = block(state)  # the compilation, and one block
    warmup, blocks = time.perf_counter() - t0, []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        state = block(state)
        blocks.append((time.perf_counter() - t0) / args.steps / ENSEMBLE)
    return measure.result(args, "vmap8", warmup_s=warmup, blocks=blocks, **cost)


# -- measuring --
def xla_threads(threads: int) -> None:
    """XLA's intra-op thread count for this process. XLA reads it once, when the CPU client
    starts: call this before jax is imported."""
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=true "
        f"intra_op_parallelism_threads={threads}"
    )


def xla_flops(compiled) -> float | None:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):  # older jax: one dict per device
        analysis = analysis[0] if analysis else {}
    return float(analysis["flops"]) if analysis and "flops" in analysis else None


def matmul_peak(dtype: str) -> float:
    """GFLOP/s of the best of five jitted square matmuls of size MATMUL_N: this framework's
    peak on this machine, the roofline's ceiling."""
    import jax
    import jax.numpy as jnp

    n = measure.MATMUL_N
    a = jnp.ones((n, n), dtype) / n
    dot = jax.jit(jnp.dot)
    dot(a, a).block_until_ready()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        dot(a, a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


if __name__ == "__main__":
    sys.exit(main())
