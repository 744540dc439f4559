"""The GPU checks, in one run on a machine with an NVIDIA GPU (not collected by pytest):

    python -m tools.gpu_check --out DIR [--budget SECONDS]

1. **defaults**: a float32 1024² matrix product and a 3x3 convolution in each framework, with
   its own default settings, then with TF32 off and on, each against float64: how far from
   IEEE float32 each default is.
2. **twins**: each model trained on both sides from one init on the GPU, in float32, through
   the training scripts (`functional.train`, `oop.train`), plus a control (torch again, from
   one ulp away); max |Δloss| over the run and the final max |Δparam|, as `shared.compare`
   reports them. `--modes`: `ieee` (TF32 off on both sides, the scripts' default), `tf32`
   (`--tf32`), `defaults` (each framework at its own default: the trap's naive pair).
3. **bench**: every model on both sides (`functional.bench.run`, `oop.bench.run`), TF32 off,
   then on; `torch.compile` only where COMPILE names the model (its compilation takes tens of
   seconds a model). The files go to DIR/bench.tar.gz, the report to DIR/gpu-report.md and
   DIR/gpu-bench.png.

DIR/gpu-check.json holds 1 and 2, rewritten after each item, so a run cut short keeps what it
measured. With `--device cpu` (no TF32) the same script checks itself on a CPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tarfile
import tempfile
import time
import traceback
from unittest import mock

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX and torch share the GPU

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from functional import bench as fbench  # noqa: E402
from functional import train as ftrain  # noqa: E402
from oop import bench as obench  # noqa: E402
from oop import train as otrain  # noqa: E402
from shared import compare, registry  # noqa: E402
from shared.bench import measure, report  # noqa: E402
from shared.cli import bench as cli_bench  # noqa: E402
from shared.cli.base import Parser  # noqa: E402
from shared.config import TrainConfig  # noqa: E402

# model -> (data set, training flags): each long enough for the twins to drift apart
TWINS = {
    "mlp": ("digits", ["--steps", "1000"]),
    "cnn": ("digits", ["--steps", "500"]),
    "cnn_bn": ("digits", ["--steps", "500"]),
    "gru": ("adding", ["--steps", "300"]),
    "lstm": ("adding", ["--steps", "300"]),
    "gpt": ("pycorpus", ["--steps", "200", "--batch-size", "32", "--eval-every", "100"]),
}
BENCH = list(registry.NAMES)
COMPILE = {"mlp", "cnn", "gpt"}


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def defaults(device: str) -> dict:
    """Relative max error of one float32 product and one convolution against float64, under
    each framework's default, then IEEE float32 and TF32 set explicitly. Runs first, before
    anything here sets torch's switches."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
    x = rng.standard_normal((16, 32, 28, 28)).astype(np.float32)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    mm64 = a.astype(np.float64) @ b.astype(np.float64)
    conv64 = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double())
    conv64 = conv64.numpy()

    def rel(got, ref) -> float:
        return float(np.max(np.abs(np.asarray(got, np.float64) - ref)) / np.max(np.abs(ref)))

    jdev = ftrain.pick_device(device)
    tdev = otrain.pick_device(device)

    def jax_pair():
        with jax.default_device(jdev):
            mm = jnp.asarray(a) @ jnp.asarray(b)
            conv = jax.lax.conv_general_dilated(jnp.asarray(x), jnp.asarray(w), (1, 1), "VALID")
            return rel(mm, mm64), rel(conv, conv64)

    def torch_pair():
        ta, tb = torch.from_numpy(a).to(tdev), torch.from_numpy(b).to(tdev)
        tx, tw = torch.from_numpy(x).to(tdev), torch.from_numpy(w).to(tdev)
        mm = (ta @ tb).cpu().numpy()
        conv = torch.nn.functional.conv2d(tx, tw).cpu().numpy()
        return rel(mm, mm64), rel(conv, conv64)

    TORCH_DEFAULTS.update({m: m.fp32_precision for m in otrain.TF32_SWITCHES})
    out = {"jax default": jax_pair(), "torch default": torch_pair()}
    names = ("cuda.matmul", "cudnn.conv", "cudnn.rnn")  # otrain.TF32_SWITCHES
    out["torch default switches"] = dict(zip(names, TORCH_DEFAULTS.values(), strict=True))
    for on in (False, True) if device == "gpu" else (False,):
        cfg = TrainConfig(device=device, tf32=on)  # what the scripts set, on each side
        with ftrain.precision(cfg):
            out[f"jax {'tf32' if on else 'ieee'}"] = jax_pair()
        otrain.set_precision(cfg, tdev)
        out[f"torch {'tf32' if on else 'ieee'}"] = torch_pair()
    return out


TORCH_DEFAULTS = {}  # torch's switches as the process found them, read before any is set


def twins(model: str, mode: str, device: str, root: str) -> dict:
    """Train `model` on both sides from one init (and a control), return the gaps. `mode`:
    "ieee" (the scripts' default on a GPU), "tf32" (`--tf32`), or "defaults": each framework
    left at its own default (the trap's naive pair), by bypassing the scripts' settings."""
    dataset, flags = TWINS[model]
    common = ["--model", model, "--dataset", dataset, "--device", device, "--dtype", "float32"]
    common += flags + ["--no-progress", "--overwrite"] + (["--tf32"] if mode == "tf32" else [])
    folder = os.path.join(root, f"{model}-{mode}")
    f, o, c = (os.path.join(folder, s) for s in ("functional", "oop", "control"))
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if mode == "defaults":
            stack.enter_context(mock.patch.object(ftrain, "precision", no_precision))
            stack.enter_context(mock.patch.object(otrain, "set_precision", torch_defaults))
        assert ftrain.main([*common, "--out", f]) == 0
        init = os.path.join(f, "init.safetensors")
        assert otrain.main([*common, "--out", o, "--init", init]) == 0
        assert otrain.main([*common, "--out", c, "--init", init, "--jitter-init"]) == 0
    runs = [compare.load_run(p) for p in (f, o, c)]
    _, twins_gap = compare.loss_differences(runs[0], runs[1])
    _, control_gap = compare.loss_differences(runs[1], runs[2])
    return {
        "model": model,
        "dataset": dataset,
        "mode": mode,
        "steps": int(runs[0].steps[-1]),
        "twins_max_dloss": float(np.max(twins_gap)),
        "twins_max_dparam": compare.max_param_difference(runs[0], runs[1]),
        "control_max_dloss": float(np.max(control_gap)),
        "control_max_dparam": compare.max_param_difference(runs[1], runs[2]),
        "final_loss": [float(r.losses[-1]) for r in runs],
        "accuracy": [r.test_accuracy for r in runs],
        "seconds": time.perf_counter() - t0,
    }


def no_precision(cfg):
    """JAX left at its own default precision."""
    return contextlib.nullcontext()


def torch_defaults(cfg, device) -> None:
    """torch's switches put back as the process found them."""
    for module, value in TORCH_DEFAULTS.items():
        module.fp32_precision = value


def bench(model: str, tf32: bool, device: str, folder: str) -> list[str]:
    """Both sides' bench of one model; returns the JSON files written."""
    steps, repeats = (10, 3) if model == "gpt" else (50, 5)
    written = []
    for side, module in (("functional", fbench), ("oop", obench)):
        skip = ("loop",) if tf32 else ()
        if side == "oop" and (tf32 or model not in COMPILE):
            skip += ("compile",)
        argv = ["--model", model, "--device", device, "--steps", str(steps)]
        argv += ["--repeats", str(repeats), "--skip", ",".join(skip)] + (["--tf32"] if tf32 else [])
        path = os.path.join(folder, f"{model}-{side}-{'tf32' if tf32 else 'ieee'}.json")
        args = cli_bench.parse_bench(side, [*argv, "--out", path])
        measure.write(args, module.run(args))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m tools.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--device", default="gpu", choices=["gpu", "cpu"])
    p.add_argument("--budget", type=float, default=420.0, help="seconds; later items are skipped")
    p.add_argument("--models", default=",".join(TWINS), help="twins to train")
    p.add_argument(
        "--modes", default="ieee,tf32", help="of ieee, tf32, defaults: how to train them"
    )
    p.add_argument("--bench", default=",".join(BENCH), help="models to bench ('' for none)")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    start = time.perf_counter()
    settings = (False, True) if a.device == "gpu" else (False,)
    found: dict = {"versions": {**ftrain.versions(), **otrain.versions()}, "errors": []}
    if a.device == "gpu":
        found["device"] = torch.cuda.get_device_name()

    def save() -> None:
        with open(os.path.join(a.out, "gpu-check.json"), "w") as f:
            json.dump(found, f, indent=1)

    def attempt(what: str, fn, *args, budgeted: bool = True):
        if budgeted and time.perf_counter() - start > a.budget:
            log("skipped (over budget):", what)
            found["errors"].append(f"{what}: skipped, over budget")
            return None
        log("start", what)
        try:
            return fn(*args)
        except Exception:  # keep going: one failure must not cost the rest of the lease
            found["errors"].append(f"{what}: {traceback.format_exc(limit=3)}")
            log("FAILED", what, traceback.format_exc())
            return None
        finally:
            save()

    found["defaults"] = attempt("defaults", defaults, a.device)
    log(json.dumps(found["defaults"]))
    found["twins"] = []
    with tempfile.TemporaryDirectory() as runs:
        modes = [m for m in a.modes.split(",") if a.device == "gpu" or m != "tf32"]
        for mode in modes:
            for model in filter(None, a.models.split(",")):
                r = attempt(f"twins {model} {mode}", twins, model, mode, a.device, runs)
                if r:
                    found["twins"].append(r)
                    log(json.dumps(r))
    files: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for tf32 in settings:
            for model in filter(None, a.bench.split(",")):
                got = attempt(f"bench {model} tf32={tf32}", bench, model, tf32, a.device, folder)
                files += got or []
        if files:
            with tarfile.open(os.path.join(a.out, "bench.tar.gz"), "w:gz") as tar:
                for f in files:
                    tar.add(f, arcname=os.path.basename(f))
            md, png = os.path.join(a.out, "gpu-report.md"), os.path.join(a.out, "gpu-bench.png")
            attempt("report", report.main, [*files, "--md", md, "--png", png], budgeted=False)
    log(f"done in {time.perf_counter() - start:.0f} s; errors: {len(found['errors'])}")
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
