"""Flags and bookkeeping of the paired benchmarks, `python -m functional.bench` and
`python -m oop.bench`: the same flags on both sides, the same JSON out (read by
`python -m shared.report`).

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
from dataclasses import dataclass

import numpy as np

from shared import data, metrics
from shared.bench_results import VARIANTS
from shared.cli import HelpFormatter, Parser, RunOptions
from shared.config import DEVICES, DTYPES, MODEL_CONFIGS, TrainConfig
from shared.run import FETCH_EVERY

# the data set each model is timed on, and its batch size (the gpt: 32 windows of 128)
DEFAULT_DATA = {
    "mlp": "digits",
    "cnn": "digits",
    "cnn_bn": "digits",
    "cnn_dropout": "digits",
    "rnn": "adding",
    "gru": "adding",
    "lstm": "adding",
    "gpt": "pycorpus",
}
DEFAULT_BATCH = {"gpt": 32}
MATMUL_N = 1024  # the square f32 matmul that measures a framework's peak: 2.1 GFLOP


@dataclass(frozen=True)
class BenchArgs:
    model: str
    dataset: str
    batch_size: int
    dtype: str
    steps: int  # updates per timed block
    repeats: int  # timed blocks, after warm-up
    out: str | None
    device: str
    threads: int
    tf32: bool = False  # gpu: float32 products in TF32 on both sides
    skip: tuple[str, ...] = ()  # variants not timed

    def train_config(self) -> TrainConfig:
        """The training config of the loop variant (Adam, lr 1e-3: TrainConfig's defaults)."""
        return TrainConfig(
            model=self.model,
            dataset=self.dataset,
            batch_size=self.batch_size,
            dtype=self.dtype,
            device=self.device,
            tf32=self.tf32,
        )

    def analytic_flops(self, model_config) -> float | None:
        """The hand count of one update's FLOPs, where there is one (the mlp)."""
        return analytic_mlp_flops(model_config, self.batch_size) if self.model == "mlp" else None

    def model_config(self, ds):
        return MODEL_CONFIGS[self.model].for_data(ds)

    def batches(self, ds, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """`n` batches in the training order, converted to the run's dtype up front."""
        it = data.batches(
            data.as_dtype(ds.x_train, self.dtype),
            data.as_dtype(ds.y_train, self.dtype),
            self.batch_size,
            seed=0,
        )
        return [next(it) for _ in range(n)]


def parse_bench(side: str, argv: list[str] | None = None) -> BenchArgs:
    first, *optional = VARIANTS[side]
    variants = f"{', '.join([first, *optional[:-1]])} and {optional[-1]}"
    p = Parser(
        prog=f"python -m {side}.bench",
        description=f"Time one training update on the {side} side, as {variants}: compile "
        "time, time per update (median and IQR over repeats), samples/s, peak memory, FLOPs "
        "and the fraction of this machine's matmul peak. The twin script takes the same "
        "flags; merge their --out files with python -m shared.report.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--model", default="mlp", choices=sorted(MODEL_CONFIGS), help="what to time")
    p.add_argument(
        "--dataset",
        default=None,
        choices=data.NAMES,
        help="(default: digits for mlp and the cnns, adding for the recurrent "
        "models, pycorpus for the gpt)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="(default: 128; gpt: 32)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="(default: float32)")
    p.add_argument("--steps", type=int, default=50, help="updates per timed block")
    p.add_argument("--repeats", type=int, default=5, help="timed blocks after the warm-up")
    p.add_argument("--out", default=None, metavar="FILE.json", help="write the results here")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 3 steps, 2 repeats (and on the OOP side no torch.compile, about 10 s "
        "of compilation even for the mlp)",
    )
    p.add_argument("--device", default="cpu", choices=DEVICES, help="where to time (default: cpu)")
    p.add_argument(
        "--tf32",
        action="store_true",
        help="gpu: float32 products and convolutions in TF32 on both sides (without it: IEEE "
        "float32 on both); the report shows these rows as float32+tf32",
    )
    p.add_argument(
        "--skip",
        default="",
        metavar="VARIANT,...",
        help=f"variants not to time, of {', '.join(optional)} ({first} always runs: it gives "
        "the FLOPs)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="intra-op threads, the same on both sides",
    )
    a = p.parse_args(argv)
    if a.out is not None and not os.path.isdir(os.path.dirname(os.path.abspath(a.out))):
        p.error(f"--out {a.out}: no folder {os.path.dirname(a.out)!r} to write it in; create it "
                "first (checked now, not after the benchmark has run)")  # fmt: skip
    if a.batch_size is not None and a.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {a.batch_size}")
    for name in ("steps", "repeats", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(a, name)}")
    skip = tuple(v for v in a.skip.split(",") if v)
    unknown = [v for v in skip if v not in optional]
    if unknown:
        p.error(f"--skip {','.join(unknown)}: this side's optional variants are {optional}")
    if a.quick:
        a.steps, a.repeats = 3, 2
        skip = tuple(sorted({*skip, "compile"} & set(optional)))
    args = BenchArgs(
        a.model,
        a.dataset or DEFAULT_DATA[a.model],
        DEFAULT_BATCH.get(a.model, 128) if a.batch_size is None else a.batch_size,
        a.dtype,
        a.steps,
        a.repeats,
        a.out,
        a.device,
        a.threads,
        a.tf32,
        skip,
    )
    try:  # TrainConfig checks the settings (--tf32 without a GPU, say) for both tools
        args.train_config()
    except ValueError as e:
        p.error(str(e))
    return args


# -- measuring --
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
