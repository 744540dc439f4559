"""Measuring one side's training update: timed blocks, the training loop from its metrics log,
peak memory, FLOPs, the machine, and the JSON each side writes (`shared.bench.report` reads it).

Each side times its own variants of one training update (Adam, lr 1e-3) on batches prepared
before the clock starts: compile or warm-up time once, then `--repeats` timed blocks of
`--steps` updates, reported as the median and interquartile range of the time per update. The
`loop` variant is the package's own training loop as a user runs it (logging, NaN check, batches
from the data pipeline), timed from its own metrics log, 50 updates per block.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import sys
import tempfile
import time

import numpy as np

from shared import metrics
from shared.cli.bench import BenchArgs
from shared.run import FETCH_EVERY, RunOptions

MATMUL_N = 1024  # the square f32 matmul that measures a framework's peak: 2.1 GFLOP


def block_stats(per_step_seconds: list[float]) -> dict[str, float]:
    """Median and interquartile range of per-update times, in ms."""
    ms = np.asarray(per_step_seconds) * 1e3
    q1, med, q3 = np.percentile(ms, [25, 50, 75])
    return {"step_ms_median": float(med), "step_ms_iqr": float(q3 - q1)}


def loop_blocks(seconds: np.ndarray) -> tuple[float, list[float]]:
    """A training loop's warm-up and per-update seconds, from the elapsed time its metrics log
    gives every update (the same within a block of FETCH_EVERY updates): `(first block's time
    beyond a typical block's, per-update seconds of every later block)`."""
    at = np.concatenate([[0.0], np.asarray(seconds)[FETCH_EVERY - 1 :: FETCH_EVERY]])
    per_update = np.diff(at) / FETCH_EVERY
    later = per_update[1:]
    extra = max(0.0, float(at[1] - FETCH_EVERY * np.median(later)))  # noise can dip below 0
    return extra, [float(s) for s in later]


def time_loop(args: BenchArgs, cfg, model_cfg, run, cost: dict) -> dict:
    """The `loop` variant's result: a side's training loop, `run(train_config, model_config,
    options)`, for `repeats + 1` blocks of FETCH_EVERY updates in a temporary folder, timed from
    its own metrics log; `run_s` is the whole run's seconds."""
    steps = FETCH_EVERY * (args.repeats + 1)
    with tempfile.TemporaryDirectory() as out:
        run_cfg = dataclasses.replace(cfg, steps=steps, eval_every=0)
        t0 = time.perf_counter()
        run(run_cfg, model_cfg, RunOptions(out, None, False, True))
        total = time.perf_counter() - t0
        _, _, seconds = metrics.train_curve(metrics.read(out))
    warmup, blocks = loop_blocks(seconds)
    res = result(args, "loop", warmup_s=warmup, blocks=blocks, **cost)
    res["steps"], res["run_s"] = FETCH_EVERY, total
    return res


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (it only grows: variants run in order)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def analytic_flops(args: BenchArgs, model_config) -> float | None:
    """The hand count of one update's FLOPs, where there is one (the mlp)."""
    return analytic_mlp_flops(model_config, args.batch_size) if args.model == "mlp" else None


def analytic_mlp_flops(model_config, batch: int) -> float:
    """Matrix-product FLOPs of one MLP update: forward `2·B·in·out` per layer, the weight
    gradient as much again, and the input gradient for every layer but the first."""
    sizes = model_config.sizes
    per_layer = [2 * batch * fan_in * fan_out for fan_in, fan_out in sizes]
    return float(2 * sum(per_layer) + sum(per_layer[1:]))


def result(
    args: BenchArgs,
    variant: str,
    *,
    warmup_s: float,
    blocks: list[float],
    flops: float | None,
    flops_source: str,
    peak_gflops: float,
    analytic,
) -> dict:
    stats = block_stats(blocks)
    seconds = stats["step_ms_median"] / 1e3
    achieved = flops / seconds / 1e9 if flops else None
    return {
        "model": args.model,
        "variant": variant,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "tf32": args.tf32,
        "steps": args.steps,
        "repeats": len(blocks),
        "warmup_s": warmup_s,
        **stats,
        "samples_per_s": args.batch_size / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "flops_per_step": flops,
        "flops_source": flops_source,
        "analytic_flops_per_step": analytic,
        "achieved_gflops": achieved,
        "roofline_fraction": achieved / peak_gflops if achieved else None,
    }


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device_name: str) -> dict:
    return {
        "platform": platform.platform(),
        "processor": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "device_name": device_name,
    }


def write(args: BenchArgs, report: dict) -> None:
    """Print a short table; write the JSON to --out."""
    for r in report["results"]:
        print(
            f"{report['side']:>10} {r['model']:>6} {r['variant']:>8}: "
            f"{r['step_ms_median']:8.3f} ms/step (IQR {r['step_ms_iqr']:.3f}), "
            f"warm-up {r['warmup_s']:.2f} s"
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
