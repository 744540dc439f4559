"""Draw docs/figures/scan-vs-loop.png: the carry of `lax.scan` beside torch's Python loop.

.venv/bin/python docs/figures/scan_vs_loop.py
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 4


def box(ax, x, y, text, color):
    ax.add_patch(FancyBboxPatch((x - 0.42, y - 0.25), 0.84, 0.5, boxstyle="round,pad=0.05",
                                fc=color, ec="0.3"))  # fmt: skip
    ax.text(x, y, text, ha="center", va="center", fontsize=8, family="monospace")


def arrow(ax, a, b, color="0.2", style="-|>"):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=10, color=color, lw=1.2))


def panel(ax, title, cell, carry_in, carry_label, color, code):
    ax.set_xlim(-1.6, STEPS + 0.4)
    ax.set_ylim(-2.5, 1.6)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    ax.text(-1.5, 0, carry_in, ha="left", va="center", fontsize=8, family="monospace")
    for t in range(STEPS):
        box(ax, t, 0, cell, color)
        arrow(ax, (t, -0.95), (t, -0.3))  # x_t in
        ax.text(t, -1.1, f"x[{t}]", ha="center", fontsize=8, family="monospace")
        arrow(ax, (t, 0.3), (t, 0.95))  # output out
        ax.text(t, 1.1, f"h[{t}]", ha="center", fontsize=8, family="monospace")
        start = (-0.75, 0) if t == 0 else (t - 0.55, 0)
        arrow(ax, start, (t - 0.45, 0), color="tab:red")
    arrow(ax, (STEPS - 0.55, 0), (STEPS + 0.1, 0), color="tab:red")
    ax.text(STEPS + 0.15, 0.18, carry_label, fontsize=8, color="tab:red", family="monospace")
    ax.text(-1.5, -2.45, code, fontsize=7.5, family="monospace", va="bottom")


def main() -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.2))
    panel(top, "functional: a pure step folded by jax.lax.scan (traced once, one compiled loop)",
          "step(carry, x_t)", "carry in", "carry out", "#dbe9f6",
          "def step(carry, x_t):\n    carry = gru_cell(w, x_t, carry)   # returns a new carry\n"
          "    return carry, carry\nfinal, hs = jax.lax.scan(step, h0, xs)")  # fmt: skip
    panel(bottom, "OOP: a Python for loop over nn.GRUCell (or one fused nn.GRU call)",
          "cell(x[t], h)", "h (rebound)", "h_n", "#fde2c8",
          "h = torch.zeros(B, H)\nfor t in range(T):\n    h = cell(x[:, t], h)        "
          "# the same weights, every step\n    outputs.append(h)")  # fmt: skip
    top.text(-1.5, 0.35, "h0", fontsize=8, color="tab:red", family="monospace")
    bottom.text(-1.5, 0.35, "h = 0", fontsize=8, color="tab:red", family="monospace")
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "scan-vs-loop.png"), dpi=110)


if __name__ == "__main__":
    main()
