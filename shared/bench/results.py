"""Benchmark result files, read and combined: what `shared.bench.report` tables and draws.

`load(path)` reads one JSON file that `python -m functional.bench` or `python -m oop.bench`
wrote and checks it against the schema below, with a one-line error naming the file and the
key. `build(files, baseline)` combines them into a `Report`: one `Entry` per (row, column),
where a row is (model, batch size, dtype, device) and a column `side:variant`; results that
measured the same thing in several files (interleaved runs) become the median of their medians.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass

from shared import sides
from shared.config import DTYPES

SIDES = sides.NAMES  # shared.sides' order; FRAMEWORK and VARIANTS name each (asserted below)
FRAMEWORK = {"functional": "JAX", "oop": "torch", "oop_jax": "JAX NNX",
             "functional_torch": "torch.func", "keras3": "Keras"}  # fmt: skip
# Column order within a side; a variant not listed here follows its side's known ones.
VARIANTS = {"functional": ("jit", "scan", "vmap8", "loop"), "oop": ("eager", "compile", "loop"),
            "oop_jax": ("nnx.jit", "split", "loop"),
            "functional_torch": ("eager", "compile", "vmap8", "loop"),
            "keras3": ("jax-jit", "jax-eager", "torch-eager", "torch-compile", "tensorflow-graph",
                       "tensorflow-xla")}  # fmt: skip
ENSEMBLE = 8  # the vmap8 variants: eight models in one vmapped update, timed per model
assert FRAMEWORK.keys() == VARIANTS.keys() == set(SIDES), "a side without its bench columns"
DEFAULT_BASELINE = "oop:eager"

# The schema the bench scripts write: key -> accepted JSON types (None: null allowed).
NUMBER = (int, float)
TOP_KEYS = {
    "side": (str,),
    "device": (str,),
    "machine": (dict,),
    "versions": (dict,),
    "threads": (dict,),
    "matmul_peak_gflops": (*NUMBER, type(None)),
    "results": (list,),
}
MACHINE_KEYS = {
    "platform": (str,),
    "processor": (str,),
    "cpu_count": (int, type(None)),
    "python": (str,),
    "device_name": (str,),
}
THREAD_KEYS = {"intra_op": (int,), "note": (str,)}
RESULT_KEYS = {
    "model": (str,),
    "variant": (str,),
    "batch_size": (int,),
    "dtype": (str,),
    "steps": (int,),
    "repeats": (int,),
    "warmup_s": NUMBER,
    "step_ms_median": NUMBER,
    "step_ms_iqr": NUMBER,
    "samples_per_s": NUMBER,
    "peak_rss_mb": NUMBER,
    "flops_per_step": (*NUMBER, type(None)),
    "flops_source": (str,),
    "analytic_flops_per_step": (*NUMBER, type(None)),
    "achieved_gflops": (*NUMBER, type(None)),
    "roofline_fraction": (*NUMBER, type(None)),
}


# -- reading --


@dataclass(frozen=True)
class BenchFile:
    path: str
    side: str
    device: str
    machine: dict
    versions: dict
    threads: dict
    matmul_peak_gflops: float | None
    results: list[dict]


def _fix(path: str, side: str | None = None) -> str:
    if side in SIDES:
        return f"rewrite it with python -m {side}.bench --out {path}"
    return f"write it with python -m functional.bench --out {path} (or oop.bench)"


def _check(obj: dict, keys: dict, where: str, path: str, side: str | None) -> None:
    for key, types in keys.items():
        if key not in obj:
            raise ValueError(f"{path}: the key '{where}{key}' is missing; {_fix(path, side)}")
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = "/".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(
                f"{path}: '{where}{key}' is {value!r}, not {wanted}; {_fix(path, side)}"
            )


def load(path: str) -> BenchFile:
    """One bench file, checked against the schema; a ValueError names the key and the fix."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file; {_fix(path)}")
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON ({e.msg} at line {e.lineno}); {_fix(path)}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read it ({e}); {_fix(path)}") from e
    if not isinstance(info, dict):
        raise ValueError(
            f"{path} holds a JSON {type(info).__name__}, not a bench object; {_fix(path)}"
        )
    side = info.get("side")
    _check(info, TOP_KEYS, "", path, side)
    if side not in SIDES:
        raise ValueError(f"{path}: 'side' is {side!r}, not functional or oop; {_fix(path)}")
    _check(info["machine"], MACHINE_KEYS, "machine.", path, side)
    _check(info["threads"], THREAD_KEYS, "threads.", path, side)
    for i, result in enumerate(info["results"]):
        if not isinstance(result, dict):
            raise ValueError(f"{path}: results[{i}] is not an object; {_fix(path, side)}")
        _check(result, RESULT_KEYS, f"results[{i}].", path, side)
        if not result["step_ms_median"] > 0:
            raise ValueError(
                f"{path}: results[{i}].step_ms_median is {result['step_ms_median']}, not a "
                f"positive time; {_fix(path, side)}"
            )
    return BenchFile(
        path=path,
        side=side,
        device=info["device"],
        machine=info["machine"],
        versions=info["versions"],
        threads=info["threads"],
        matmul_peak_gflops=info["matmul_peak_gflops"],
        results=info["results"],
    )


# -- combining --


@dataclass(frozen=True)
class Entry:
    """One (side, variant) on one row: every run of it combined."""

    side: str
    variant: str
    row: tuple  # (model, batch_size, dtype, device)
    runs: int
    step_ms: float  # the median of the runs' medians
    iqr_ms: float  # the median of the runs' IQRs
    run_ms: tuple[float, ...]  # each run's median, in file order
    warmup_s: float
    samples_per_s: float
    peak_rss_mb: float  # the largest of the runs'
    flops: float | None
    flops_source: str
    analytic_flops: float | None
    achieved_gflops: float | None
    roofline: float | None  # a fraction of the side's matmul peak

    @property
    def column(self) -> str:
        return f"{self.side}:{self.variant}"


def median_of(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _combine(side: str, variant: str, row: tuple, runs: list[tuple[BenchFile, dict]]) -> Entry:
    results = [r for _, r in runs]
    step_ms = median_of(r["step_ms_median"] for r in results)
    flops = median_of(r["flops_per_step"] for r in results)
    achieved = median_of(r["achieved_gflops"] for r in results)
    if achieved is None and flops is not None:
        achieved = flops / (step_ms * 1e-3) / 1e9

    def fraction(f: BenchFile, r: dict) -> float | None:
        if r["roofline_fraction"] is not None:
            return r["roofline_fraction"]
        if r["achieved_gflops"] is not None and f.matmul_peak_gflops:
            return r["achieved_gflops"] / f.matmul_peak_gflops
        return None

    roofline = median_of(fraction(f, r) for f, r in runs)
    if roofline is None and achieved is not None:
        peak = median_of(f.matmul_peak_gflops or None for f, _ in runs)
        roofline = None if peak is None else achieved / peak
    sources = dict.fromkeys(
        r["flops_source"] for r in results if r["flops_per_step"] is not None and r["flops_source"]
    )
    return Entry(
        side=side,
        variant=variant,
        row=row,
        runs=len(results),
        step_ms=step_ms,
        iqr_ms=median_of(r["step_ms_iqr"] for r in results),
        run_ms=tuple(r["step_ms_median"] for r in results),
        warmup_s=median_of(r["warmup_s"] for r in results),
        samples_per_s=median_of(r["samples_per_s"] for r in results),
        peak_rss_mb=max(r["peak_rss_mb"] for r in results),
        flops=flops,
        flops_source=", ".join(sources),
        analytic_flops=median_of(r["analytic_flops_per_step"] for r in results),
        achieved_gflops=achieved,
        roofline=roofline,
    )


def _column_key(column: str) -> tuple:
    side, variant = column.split(":", 1)
    known = VARIANTS[side]
    return (SIDES.index(side), known.index(variant) if variant in known else len(known), variant)


@dataclass(frozen=True)
class Report:
    files: list[BenchFile]
    baseline: str  # "side:variant"
    rows: list[tuple]  # (model, batch_size, dtype, device), in table order
    columns: list[str]  # "side:variant", in table order
    entries: dict[tuple, Entry]  # (row, column) -> Entry

    def ratio(self, row: tuple, column: str) -> float | None:
        """This cell's time / the baseline's time on the same row; None without a baseline."""
        base = self.entries.get((row, self.baseline))
        cell = self.entries.get((row, column))
        return None if base is None or cell is None else cell.step_ms / base.step_ms

    @property
    def devices(self) -> list[str]:
        return sorted({row[3] for row in self.rows})


def build(files: list[BenchFile], baseline: str = DEFAULT_BASELINE) -> Report:
    """Group every result by (side, model, variant, batch size, dtype, device) and combine."""
    groups: dict[tuple, list[tuple[BenchFile, dict]]] = {}
    models: dict[str, int] = {}  # model -> order of first appearance
    for f in files:
        for r in f.results:
            models.setdefault(r["model"], len(models))
            dtype = r["dtype"] + ("+tf32" if r.get("tf32") else "")  # a row of its own
            row = (r["model"], r["batch_size"], dtype, f.device)
            groups.setdefault((row, f"{f.side}:{r['variant']}"), []).append((f, r))
    if not groups:
        names = ", ".join(f.path for f in files)
        raise ValueError(f"{names}: no results in the files; run the bench scripts with --out")
    entries = {}
    for (row, column), runs in groups.items():
        side, variant = column.split(":", 1)
        entries[(row, column)] = _combine(side, variant, row, runs)
    columns = sorted({c for _, c in entries}, key=_column_key)
    if baseline not in columns:
        raise ValueError(
            f"--baseline {baseline} matches no result in the files; pass one of "
            + ", ".join(columns)
        )

    def row_key(row):
        model, batch, dtype, device = row
        return (models[model], batch, DTYPES.index(dtype) if dtype in DTYPES else 9, dtype, device)

    rows = sorted({row for row, _ in entries}, key=row_key)
    return Report(files, baseline, rows, columns, entries)


def distinct(files: list[BenchFile], key) -> dict[str, list[BenchFile]]:
    """The files grouped by `key(file)`, in order."""
    out: dict[str, list[BenchFile]] = {}
    for f in files:
        out.setdefault(key(f), []).append(f)
    return out
