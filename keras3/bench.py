"""Time one training update on the Keras side: `python -m keras3.bench --help`.

Each variant is `model.fit` as a Keras user calls it (the prepared batches as two arrays,
`batch_size`, `shuffle=False`, one epoch per timed block), compiled with and without
`jit_compile`, on each backend:

- `jax-jit`: `jit_compile=True`, Keras's default on JAX: the whole update in one `jax.jit`;
- `jax-eager`: `jit_compile=False`: the same update op by op (skipped by `--quick`);
- `torch-eager`: `jit_compile=False`, Keras's default on torch;
- `torch-compile`: `jit_compile=True`: `torch.compile` of the update (skipped by `--quick`);
- `tensorflow-graph`: `jit_compile=False`: the update as a `tf.function` graph;
- `tensorflow-xla`: `jit_compile=True`, Keras's default on TensorFlow: XLA.

Keras runs one backend per process, so `--backend all` (the default) starts this script once
per backend and merges what they write into one `--out` file, which `python -m
shared.bench.report` reads beside the other sides' files. The FLOPs are XLA's cost analysis of
the pure step (`keras3.stateless`) on the JAX backend, the same update on every backend: the
merged file gives them to the torch and TensorFlow rows too. The file imports keras alone: the
threads are set through each backend's environment variables before keras is imported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from keras3 import backend
from shared import data, errors
from shared.bench import measure
from shared.cli import bench as cli_bench

SIDE = "keras3"
JIT = {"jax": ("jax-jit", "jax-eager"), "torch": ("torch-eager", "torch-compile"),
       "tensorflow": ("tensorflow-graph", "tensorflow-xla")}  # fmt: skip
JIT_COMPILE = {"jax-jit": True, "jax-eager": False, "torch-eager": False, "torch-compile": True,
               "tensorflow-graph": False, "tensorflow-xla": True}  # fmt: skip
THREADS_NOTE = "XLA_FLAGS, OMP_NUM_THREADS, TF_NUM_INTRAOP_THREADS: set before keras loads"


# -- command line --
@errors.entry_point(f"python -m {SIDE}.bench")
def main(argv: list[str] | None = None) -> int:
    args = cli_bench.parse_bench(SIDE, argv)
    if args.backend == "all":
        report = run_all(args, list(sys.argv[1:] if argv is None else argv))
    else:
        threads(args.backend, args.threads)
        backend.use(args.backend)
        report = run(args)
    measure.write(args, report)
    return 0


def threads(name: str, n: int) -> None:
    """The backend's intra-op thread count, through the environment it reads when it starts."""
    if name == "jax":
        flags = f" --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={n}"
        os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + flags
    elif name == "torch":
        os.environ["OMP_NUM_THREADS"] = str(n)
    else:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)


# -- variants --
def run(args: cli_bench.BenchArgs) -> dict:
    """Every variant of this process's backend, timed."""
    import keras

    from keras3 import interface
    from keras3.models import MODELS
    from keras3.train import versions

    keras.config.set_floatx(args.dtype)
    name = keras.backend.backend()
    ds = data.load(args.dataset)
    model_cfg, module = args.model_config(ds), MODELS[args.model]
    cfg = args.train_config()
    batches = args.batches(ds, args.steps)
    xs, ys = (np.concatenate([b[i] for b in batches]) for i in (0, 1))
    peak = matmul_peak(args.dtype)

    def fresh(jit_compile):
        model = interface.init(module, model_cfg, seed=0, dtype=args.dtype)
        interface.compile_model(
            module, model, interface.optimizer(model, cfg), jit_compile=jit_compile
        )
        return model

    flops = xla_flops(fresh(True), batches[0]) if name == "jax" else None
    cost = dict(flops=flops, flops_source="xla cost analysis of the jax backend's pure step",
                peak_gflops=peak, analytic=measure.analytic_flops(args, model_cfg))  # fmt: skip
    results = []
    for variant in JIT[name]:
        if variant in args.skip:
            continue
        model = fresh(JIT_COMPILE[variant])

        def block(model=model):
            history = model.fit(xs, ys, batch_size=args.batch_size, epochs=1, shuffle=False,
                                verbose=0)  # fmt: skip
            float(history.history["loss"][-1])  # the block's one synchronisation

        t0 = time.perf_counter()
        block()  # the compilation (or tracing), and one block
        first, blocks = time.perf_counter() - t0, []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            block()
            blocks.append((time.perf_counter() - t0) / args.steps)
        warmup = max(0.0, first - args.steps * statistics.median(blocks))
        results.append(measure.result(args, variant, warmup_s=warmup, blocks=blocks, **cost))
    return {
        "side": SIDE,
        "device": args.device,
        "machine": measure.machine("cpu"),
        "versions": versions(),
        "threads": {"intra_op": args.threads, "note": THREADS_NOTE},
        "matmul_peak_gflops": peak,
        "results": results,
    }


def run_all(args: cli_bench.BenchArgs, argv: list[str]) -> dict:
    """One process per backend (`--backend B`), their files merged: the results in order, the
    versions together, the JAX backend's FLOP count given to the rows that have none (each row's
    share of the peak against its own backend's peak)."""
    argv = [a for i, a in enumerate(argv) if a != "--out" and (i == 0 or argv[i - 1] != "--out")]
    argv = [a for a in argv if not a.startswith(("--out=", "--backend"))]
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in backend.BACKENDS:
            out = os.path.join(tmp, f"{name}.json")
            cmd = [sys.executable, "-m", f"{SIDE}.bench", *argv, "--backend", name, "--out", out]
            # its table is printed once, merged; its start-up logging only if it fails
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if done.returncode != 0:
                sys.stderr.write(done.stderr.decode(errors="replace"))
                raise errors.Stopped(
                    f"the {name} backend's bench failed (exit {done.returncode}); run "
                    f"python -m {SIDE}.bench --backend {name} to see why"
                )
            with open(out, encoding="utf-8") as f:
                reports.append(json.load(f))
    return merge(reports)


def merge(reports: list[dict]) -> dict:
    """The per-backend reports as one (see `run_all`)."""
    flops = {r["model"]: r["flops_per_step"]
             for rep in reports for r in rep["results"] if r["flops_per_step"]}  # fmt: skip
    results, versions = [], {}
    for rep in reports:
        versions.update({k: v for k, v in rep["versions"].items() if k != "backend"})
        for r in rep["results"]:
            r = dict(r)
            if r["flops_per_step"] is None and r["model"] in flops:
                r["flops_per_step"] = flops[r["model"]]
                r["achieved_gflops"] = r["flops_per_step"] / (r["step_ms_median"] * 1e-3) / 1e9
                r["roofline_fraction"] = r["achieved_gflops"] / rep["matmul_peak_gflops"]
            results.append(r)
    peaks = [rep["matmul_peak_gflops"] for rep in reports if rep["matmul_peak_gflops"]]
    return {**reports[0], "versions": versions, "results": results,
            "matmul_peak_gflops": statistics.median(peaks) if peaks else None}  # fmt: skip


# -- measuring --
def xla_flops(model, batch) -> float | None:
    """XLA's count of one update's FLOPs: the pure step's (`keras3.stateless`) cost analysis."""
    from keras3 import stateless

    step = stateless.make_step(model, model.optimizer, model.loss)  # compile's loss
    state = stateless.state_of(model, model.optimizer)
    analysis = step.lower(state, *batch).compile().cost_analysis()
    if isinstance(analysis, list):  # older jax: one dict per device
        analysis = analysis[0] if analysis else {}
    return float(analysis["flops"]) if analysis and "flops" in analysis else None


def matmul_peak(dtype: str) -> float:
    """GFLOP/s of the best of five square `keras.ops.matmul`s of size MATMUL_N on this backend:
    its peak on this machine, the roofline's ceiling."""
    from keras import ops

    n = measure.MATMUL_N
    a = ops.ones((n, n), dtype=dtype) / n

    def product():
        c = ops.matmul(a, a)
        float(ops.convert_to_numpy(c[0, 0]))  # waits for the product

    product()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


if __name__ == "__main__":
    sys.exit(main())
