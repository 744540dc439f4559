"""Flags of the paired benchmarks, `python -m functional.bench` and `python -m oop.bench`: the
same flags on both sides, the same settings (`BenchArgs`); `shared.bench.measure` times them and
writes the JSON that `python -m shared.bench.report` reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from shared import data, registry, sides
from shared.bench.results import VARIANTS
from shared.cli.base import HelpFormatter, Parser
from shared.config import DEVICES, DTYPES, TrainConfig


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
    backend: str = ""  # Keras: the backend of this process, or "all" (one process each)

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

    def model_config(self, ds):
        return registry.entry(self.model).config.for_data(ds)

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
    me = sides.side(side)
    first, *optional = VARIANTS[side]
    variants = f"{', '.join([first, *optional[:-1]])} and {optional[-1]}"
    if me.backends:  # Keras: the FLOPs come from the JAX backend's count, so any may be skipped
        optional = [first, *optional]
    p = Parser(
        prog=f"python -m {sides.side(side).package}.bench",
        description=f"Time one training update on the {side} side, as {variants}: compile "
        "time, time per update (median and IQR over repeats), samples/s, peak memory, FLOPs "
        "and the fraction of this machine's matmul peak. The twin script takes the same "
        "flags; merge their --out files with python -m shared.bench.report.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--model", default="mlp", choices=registry.NAMES, help="what to time")
    if me.backends:
        p.add_argument(
            "--backend",
            choices=("all", *me.backends),
            default="all",
            help="the backend to time in this process; all (the default) starts one process "
            "per backend, as Keras needs, and merges their results into one --out file",
        )
    p.add_argument("--dataset", default=None, choices=data.NAMES,
                   help=f"(default: {_per_model('bench_data')})")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"(default: {_per_model('bench_batch')})")  # fmt: skip
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="(default: float32)")
    p.add_argument("--steps", type=int, default=50, help="updates per timed block")
    p.add_argument("--repeats", type=int, default=5, help="timed blocks after the warm-up")
    p.add_argument("--out", default=None, metavar="FILE.json", help="write the results here")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 3 steps, 2 repeats (and no torch.compile, about 10 s of "
        "compilation even for the mlp, nor Keras's op-by-op jax-eager)",
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
        help=f"variants not to time, of {', '.join(optional)}"
        + ("" if me.backends else f" ({first} always runs: it gives the FLOPs)"),
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
        slow = {"compile", "torch-compile", "jax-eager"}  # compilation, or op-by-op dispatch
        skip = tuple(sorted({*skip, *slow} & set(optional)))
    try:
        me.refuse_unless_has(a.model)
    except ValueError as e:
        p.error(str(e))
    entry = registry.entry(a.model)
    args = BenchArgs(
        a.model,
        a.dataset or entry.bench_data,
        entry.bench_batch if a.batch_size is None else a.batch_size,
        a.dtype,
        a.steps,
        a.repeats,
        a.out,
        a.device,
        a.threads,
        a.tf32,
        skip,
        getattr(a, "backend", ""),
    )
    try:  # TrainConfig checks the settings (--tf32 without a GPU, say) for both tools
        args.train_config()
    except ValueError as e:
        p.error(str(e))
    return args


def _per_model(attr: str) -> str:
    """A registry default as help text: `digits for mlp, cnn, ...; adding for rnn, ...`."""
    groups: dict[object, list[str]] = {}
    for e in registry.ENTRIES:
        groups.setdefault(getattr(e, attr), []).append(e.name)
    return "; ".join(f"{v} for {', '.join(names)}" for v, names in groups.items())
