"""Draw one figure per trap (divergence per step, naive vs fixed) and print the measured gaps.

    make traps        # or: python -m tools.render_traps [--out docs/figures/traps]

Every `tests/traps/test_*.py` module that lists `TRAPS` is included. The table it prints is the
one `docs/traps.md` quotes.
"""

from __future__ import annotations

import importlib
import os
import sys

import matplotlib

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


def plot(trap, naive: np.ndarray, fixed: np.ndarray, path: str) -> None:
    fig, ax = plt.subplots(figsize=(4.2, 2.6), dpi=110)
    x = np.arange(1, len(naive) + 1)
    ax.semilogy(x, np.maximum(naive, FLOOR), label="naive port", color="tab:red")
    ax.semilogy(
        np.arange(1, len(fixed) + 1), np.maximum(fixed, FLOOR), label="fixed", color="tab:green"
    )
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
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    print("| trap | naive gap | fixed gap | test |")
    print("|---|---|---|---|")
    for path, trap in traps():
        naive, fixed = np.atleast_1d(trap.naive()), np.atleast_1d(trap.fixed())
        plot(trap, naive, fixed, os.path.join(args.out, f"{trap.name}.png"))
        print(f"| {trap.name} | {naive.max():.2e} | {fixed.max():.1e} | `{path}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
