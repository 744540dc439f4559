"""Draw one figure per trap (divergence per step, naive vs fixed) and print the measured gaps.

    make traps        # or: python -m tools.render_traps [--out docs/figures/traps]

Every `tests/traps/test_*.py` module that lists `TRAPS` is included. The table it prints is the
one `docs/traps.md` quotes.
"""

from __future__ import annotations

import importlib
import os
import sys

# tests/traps/test_parallel_traps.py splits batches over two host devices, as tests/conftest.py
# gives every process of the suite; JAX takes the count only before it starts
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from shared.cli.base import Parser  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAPS = os.path.join(ROOT, "tests", "traps")
FLOOR = 1e-18  # exact agreement is drawn here on the log axis


def traps():
    # the trap modules import harness.py beside them, quick.py above them, and the packages
    sys.path[:0] = [TRAPS, os.path.join(ROOT, "tests"), ROOT]
    for name in sorted(os.listdir(TRAPS)):
        if name.startswith("test_") and name.endswith(".py"):
            module = importlib.import_module(name[:-3])
            for trap in getattr(module, "TRAPS", []):
                yield f"tests/traps/{name}", trap
    # Keras's, computed in one worker process per backend they need (tests/test_keras.py)
    test_keras = importlib.import_module("test_keras")
    for trap in test_keras.traps_now():
        yield "tests/test_keras.py", trap


def naive_result(trap) -> tuple[np.ndarray | None, str]:
    """The naive port's divergence, or None and the error it raises (a trap that fails loudly)."""
    if trap.raises is None:
        return np.atleast_1d(trap.naive()), ""
    try:
        trap.naive()
    except trap.raises as e:
        return None, f"naive port raises {type(e).__name__}:\n{str(e).splitlines()[0][:60]}"
    raise AssertionError(f"{trap.name}: the naive port should raise {trap.raises.__name__}")


def plot(trap, naive: np.ndarray | None, error: str, fixed: np.ndarray, path: str) -> None:
    """Naive against fixed per step; a log axis for gaps, a linear one where the fixed port
    must match exactly (counts and fractions: `fixed_tol` 0)."""
    log = trap.fixed_tol > 0
    floor = FLOOR if log else 0.0
    fig, ax = plt.subplots(figsize=(4.2, 2.6), dpi=110)
    draw = ax.semilogy if log else ax.plot
    if naive is not None:
        draw(np.arange(1, len(naive) + 1), np.maximum(naive, floor), label="naive port",
             color="tab:red")  # fmt: skip
    else:
        ax.set_yscale("log" if log else "linear")
        ax.text(0.5, 0.62, error, transform=ax.transAxes, ha="center", va="center", fontsize=7,
                color="tab:red", bbox={"facecolor": "white", "edgecolor": "tab:red"})  # fmt: skip
    draw(np.arange(1, len(fixed) + 1), np.maximum(fixed, floor), label="fixed", color="tab:green")
    if log:
        ax.axhline(trap.fixed_tol, color="gray", lw=0.8, ls="--", label="tolerance")
    ax.set_title(trap.title, fontsize=8)
    what, _, per = trap.quantity.partition(" per ")  # "|Δ| per input": x is the input
    ax.set_xlabel(per or "step", fontsize=8)
    ax.set_ylabel(what, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m tools.render_traps", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/figures/traps", help="folder for the PNG files")
    p.add_argument("--only", nargs="+", metavar="TRAP", help="draw these traps only (names)")
    args = p.parse_args(argv)
    every = list(traps())
    unknown = sorted(set(args.only or ()) - {trap.name for _, trap in every})
    if unknown:
        p.error(f"--only: no trap named {', '.join(unknown)}; the names: "
                + ", ".join(trap.name for _, trap in every))  # fmt: skip
    os.makedirs(args.out, exist_ok=True)
    print("| trap | kind | naive gap | fixed gap | test |")
    print("|---|---|---|---|---|")
    for path, trap in every:
        if args.only and trap.name not in args.only:
            continue
        (naive, error), fixed = naive_result(trap), np.atleast_1d(trap.fixed())
        plot(trap, naive, error, fixed, os.path.join(args.out, f"{trap.name}.png"))
        gap = f"{naive.max():.2e}" if naive is not None else f"raises {trap.raises.__name__}"
        print(f"| {trap.name} | {trap.kind} | {gap} | {fixed.max():.1e} | `{path}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
