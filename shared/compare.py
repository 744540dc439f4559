"""Compare two run folders: `python -m shared.compare RUN_A RUN_B [--control RUN_C] [--plot FILE]`.

Prints a two-column table (final loss, test accuracy, steps/s, then the differences: max |Δloss|
over all steps and max |Δparam| at the end) and writes a PNG with both loss curves overlaid
above |Δloss| per step on a log axis. A control run (RUN_B's side, started with `--control`
from the same init: one ulp away, each batch's examples reversed) adds the gap that rounding
alone opens, as a yardstick for the twins' gap: the table gives the twins/control ratios and a
one-line reading of them.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import numpy as np

from shared import checkpoint, errors, metrics
from shared.cli.base import Parser
from shared.config import TrainConfig, to_dict

# The twins are a chaotic process's draw and the control another: their ratio scatters. Within
# this factor the twins are as close as rounding allows (tests/rounding.py measures it).
CONTROL_FACTOR = 10.0


@dataclass(frozen=True)
class Run:
    folder: str
    label: str
    steps: np.ndarray
    losses: np.ndarray
    seconds: np.ndarray
    test_accuracy: float
    final: dict[str, np.ndarray] | None  # None: the run did not finish (no final checkpoint)
    config: dict  # config.json's model and train configs, {} if the folder has none
    init: dict[str, np.ndarray] | None  # init.safetensors, None for a resumed run
    missing: tuple[str, ...] = ()  # what is not there to compare, one phrase each

    @property
    def steps_per_second(self) -> float:
        return metrics.steady_steps_per_second(self.steps, self.seconds)


def load_run(folder: str) -> Run:
    """What there is of a run: a run killed mid-write is compared as far as its files go, and
    `missing` says what is not there."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder} is not a run folder; pass the --out folder of a training run")
    log = os.path.join(folder, metrics.FILENAME)
    if not os.path.isfile(log):
        raise ValueError(f"{log}: no metrics log; is this a run folder from --out?")
    records, cut_short = metrics.read_log(log)
    steps, losses, seconds = metrics.train_curve(records)
    if len(steps) == 0:
        raise ValueError(f"{folder}: the metrics log has no train records")
    missing = ["the cut-short last line of its metrics log"] if cut_short else []
    ev = metrics.last_eval(records)
    label = os.path.basename(os.path.normpath(folder))
    config_path = os.path.join(folder, "config.json")
    config = {}
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            try:
                info = json.load(f)
            except ValueError:
                raise ValueError(f"{config_path}: not JSON; not a run folder's config") from None
        if not isinstance(info, dict):
            raise ValueError(f"{config_path}: not a JSON object; not a run folder's config")
        config = {**info.get("model_config", {}), **info.get("train_config", {})}
        side = info.get("side")
        if side:
            label = side if label == side else f"{side} ({label})"
    final_path = os.path.join(folder, "final.safetensors")
    final = checkpoint.read(final_path).weights if os.path.isfile(final_path) else None
    if final is None:  # stopped, or still running: its losses are still worth a look
        missing.append("final.safetensors (the run stopped, or is still running)")
    acc = float("nan") if ev is None else float(ev["accuracy"])
    init_path = os.path.join(folder, "init.safetensors")
    init = checkpoint.read(init_path).weights if os.path.isfile(init_path) else None
    return Run(folder, label, steps, losses, seconds, acc, final, config, init, tuple(missing))


def start_difference(a: Run, b: Run) -> float | None:
    """max |Δ| between the two runs' initial weights (None when either was resumed)."""
    if a.init is None or b.init is None or a.init.keys() != b.init.keys():
        return None
    return _max_diff(a.init, b.init)


def _max_diff(x: dict, y: dict) -> float:
    return max(float(np.max(np.abs(x[k].astype(np.float64) - y[k].astype(np.float64)))) for k in x)


def gaps_against_control(a: Run, b: Run, control: Run):
    """`((twins' max |Δloss|, max |Δparam|), (the control's, against RUN_B))`, or None when a
    pair shares no logged step."""
    _, dloss = loss_differences(a, b)
    _, dctl = loss_differences(b, control)
    if not (len(dloss) and len(dctl)):
        return None
    twins, ctl = (
        (float(dloss.max()), max_param_difference(a, b)),
        (float(dctl.max()), max_param_difference(b, control)),
    )
    if None in twins or None in ctl:  # a run without its final weights: the losses only
        return twins[:1], ctl[:1]
    return twins, ctl


def reading(twins: tuple[float, float], control: tuple[float, float]) -> str:
    """One line on the twins' gaps (loss, weights) against the control's."""
    pairs = zip(twins, control, strict=True)
    ratio = max(t / c if c > 0 else (0.0 if t == 0 else np.inf) for t, c in pairs)
    if ratio <= 1:
        return "reading: the twins differ no more than rounding does"
    if ratio <= CONTROL_FACTOR:
        return (f"reading: the twins differ {ratio:.1f}x more than this control, within the "
                f"{CONTROL_FACTOR:g}x that rounding's scatter allows: as close as rounding "
                "allows")  # fmt: skip
    return (f"reading: the twins differ by {ratio:.0f}x more than rounding: look at the update "
            "where their |Δloss| leaves the control's (the plot), and run both with --dtype "
            "float64, where twins agree to 1e-10")  # fmt: skip


def config_differences(a: Run, b: Run) -> list[str]:
    """The settings in which two runs differ (bookkeeping aside): a twin comparison wants none."""
    defaults = _flat(to_dict(TrainConfig()))  # a setting added later, absent from older runs
    x, y = (defaults | _flat(r.config) if r.config else {} for r in (a, b))
    keys = sorted((x.keys() | y.keys()) - {"device", "eval_every", "save_every"})
    return [f"{k} ({x.get(k)} vs {y.get(k)})" for k in keys if x.get(k) != y.get(k)]


def _flat(config: dict) -> dict:
    """`{"optimizer": {"lr": 0.1}}` -> `{"optimizer.lr": 0.1}`, one level deep."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def loss_differences(a: Run, b: Run) -> tuple[np.ndarray, np.ndarray]:
    """`(steps, |Δloss|)` over the steps both runs logged."""
    common, ia, ib = np.intersect1d(a.steps, b.steps, return_indices=True)
    return common, np.abs(a.losses[ia] - b.losses[ib])


def max_param_difference(a: Run, b: Run) -> float | None:
    """max |Δ| between the final weights; None when either run has none."""
    if a.final is None or b.final is None:
        return None
    if a.final.keys() != b.final.keys():
        raise ValueError("the final checkpoints hold different weights; are these the same model?")
    for k in a.final:
        if a.final[k].shape != b.final[k].shape:
            raise ValueError(
                f"{k} is {a.final[k].shape} in {a.folder} but {b.final[k].shape} in {b.folder}: "
                "not the same model size"
            )
    return _max_diff(a.final, b.final)


def table(a: Run, b: Run, control: Run | None = None) -> str:
    _, dloss = loss_differences(a, b)
    rows = [
        ("", a.label, b.label),
        ("final loss", f"{a.losses[-1]:.6g}", f"{b.losses[-1]:.6g}"),
        ("test accuracy", f"{a.test_accuracy:.4f}", f"{b.test_accuracy:.4f}"),
        ("steps/s", f"{a.steps_per_second:.0f}", f"{b.steps_per_second:.0f}"),
        ("steps logged", str(len(a.steps)), str(len(b.steps))),
        ("max |Δloss| (all steps)", f"{dloss.max():.3e}" if len(dloss) else "n/a", ""),
        ("max |Δparam| (final)", _shown(max_param_difference(a, b)), ""),
    ]
    if control is not None:  # the same side, one ulp away at the start
        _, dctl = loss_differences(b, control)
        shown = f"{dctl.max():.3e}" if len(dctl) else "n/a"
        rows.append((f"control: max |Δloss| {b.label} vs {control.label}", shown, ""))
        rows.append(("control: max |Δparam| (final)", _shown(max_param_difference(b, control)), ""))
        gaps = gaps_against_control(a, b, control)
        if gaps is not None:
            ratios = [f"{t / c:.2f}" if c > 0 else "inf" for t, c in zip(*gaps, strict=True)]
            what = "(loss, param)" if len(ratios) == 2 else "(loss)"
            rows.append((f"twins / control {what}", ", ".join(ratios), ""))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}".rstrip() for r in rows)


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3e}"


def plot(a: Run, b: Run, path: str, control: Run | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, dloss = loss_differences(a, b)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=[2, 1])
    top.plot(a.steps, a.losses, lw=1.2, label=a.label)
    top.plot(b.steps, b.losses, lw=1.2, ls="--", label=b.label)
    top.set_yscale("log")
    top.set_ylabel("train loss")
    top.legend()
    top.set_title("the same model, the same batches, two paradigms")
    positive = dloss > 0
    bottom.semilogy(steps[positive], dloss[positive], ".", ms=2, color="C3", label="the twins")
    if control is not None:
        csteps, dctl = loss_differences(b, control)
        shown = dctl > 0
        label = f"control: {b.label} from an init one ulp away"
        bottom.semilogy(csteps[shown], dctl[shown], ".", ms=2, color="0.6", label=label)
        bottom.legend(fontsize=7, markerscale=4)
    bottom.set_ylabel("|Δloss|")
    bottom.set_xlabel("update")
    if not positive.any():
        bottom.text(0.5, 0.5, "identical at every step", transform=bottom.transAxes, ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@errors.entry_point("python -m shared.compare")
def main(argv: list[str] | None = None) -> int:
    p = Parser(
        prog="python -m shared.compare",
        description="Compare two run folders written by functional.train / oop.train.",
    )
    p.add_argument("run_a", help="a run folder (the --out of a training script)")
    p.add_argument("run_b", help="another run folder, usually the twin started from run_a's init")
    p.add_argument(
        "--control",
        default=None,
        metavar="RUN_C",
        help="a run of RUN_B's side started with --jitter-init from the same init: its gap to "
        "RUN_B is what float rounding alone does to this training, the yardstick for the twins",
    )
    p.add_argument(
        "--plot", default=None, metavar="FILE", help="PNG to write (default: RUN_B/compare.png)"
    )
    args = p.parse_args(argv)
    path = args.plot or os.path.join(args.run_b, "compare.png")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        p.error(f"--plot {path}: no folder {folder}; create it, or pass another --plot")
    try:
        a, b = load_run(args.run_a), load_run(args.run_b)
        control = None if args.control is None else load_run(args.control)
        text = table(a, b, control)
    except ValueError as e:  # a folder that is no run, a damaged log: nothing printed yet
        raise errors.Refused(str(e)) from None
    print(text)
    gaps = None if control is None else gaps_against_control(a, b, control)
    if gaps is not None:
        print(reading(*gaps))
    for run in (a, b) if control is None else (a, b, control):
        if run.missing:
            print(f"note: {run.folder} lacks {' and '.join(run.missing)}: compared what is there")
    start = start_difference(a, b)
    if start is not None and start > 0:
        print(f"warning: the two runs did not start from the same weights (max |Δ| "
              f"{start:.2e} at init); train RUN_B with --init "
              f"{os.path.join(args.run_a, 'init.safetensors')}")  # fmt: skip
    differ = config_differences(a, b)
    if differ:
        print("note: these runs are not twins; they differ in " + ", ".join(differ))
    differ = [] if control is None else config_differences(b, control)
    if differ:
        print("note: the control is not a rerun of RUN_B; they differ in " + ", ".join(differ))
    try:
        plot(a, b, path, control)
    except OSError as e:
        raise errors.Stopped(
            f"the table above is complete, but the plot could not be written "
            f"({errors.os_reason(e)}); pass --plot FILE in a writable folder"
        ) from e
    print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
