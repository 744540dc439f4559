"""Data parallelism on the functional side (functional/parallel.py, docs/parallel.md).

`python -m functional.train --devices 2` on two host devices (tests/conftest.py gives each
worker two) against one device, from one init, float64:

- the automatic form (the batch annotated as split, XLA's all-reduce) computes one device's
  updates: BatchNorm's statistics over the whole batch, dropout's masks those of one device;
- the explicit form (`--parallel shard_map`, `lax.pmean` of the gradients) equals it where
  BatchNorm is absent, and where it is present computes DDP's semantics, checked here against
  a reference built from the one-device functions: each half's gradient with its own
  statistics, their mean, shard 0's running statistics;
- a two-device checkpoint resumes on one device.

And the OOP side under `torchrun --standalone --nproc-per-node 2` (oop/parallel.py: DDP, gloo),
in one launch for every check (tests/ddp_worker.py): the mlp and the gpt equal one process and
the functional side's one device; the cnn_bn equals the functional side's `shard_map` run
(per-rank statistics, rank 0's buffers); a DDP checkpoint resumes on one device on the functional
side; and a peer killed mid-run ends the run in one line, its last checkpoint intact.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import equinox as eqx
import jax
import numpy as np
import optax
import pytest
import rounding
from pairs import max_abs_diff
from rounding import U32

import functional.models.cnn_bn as fbn
import functional.models.mlp as fmlp
import functional.train
import oop.train
from functional import interface
from functional import parallel as par
from functional.convert import (
    from_canonical_with_state,
    opt_state_to_canonical,
    skeleton,
    to_canonical_with_state,
)
from functional.optim import make_optimizer
from shared import checkpoint, compare, data, launch
from shared.cli import train as cli
from shared.config import MLPConfig, TrainConfig

HERE = os.path.dirname(os.path.abspath(__file__))
TOL = 1e-12  # float64: only the order of a two-term sum changes (measured: 2e-15 at most)
STEPS = 100
MODELS = {  # small: the sizes prove nothing here, the number of devices does
    "mlp": ["--model", "mlp", "--dataset", "digits", "--width", "16"],
    "cnn_bn": ["--model", "cnn_bn", "--dataset", "digits", "--width", "4"],
    "gpt": ["--model", "gpt", "--dataset", "pycorpus", "--seq-len", "8", "--layers", "1",
            "--heads", "2", "--width", "16"],
}  # fmt: skip
COMMON = ["--dtype", "float64", "--batch-size", "8", "--eval-every", "0", "--no-progress",
          "--overwrite"]  # fmt: skip
SHARD_MAP = ("cnn_bn", "gpt")  # the mlp's shard_map run would add nothing the gpt's does not


def train(out, *flags) -> None:
    assert functional.train.main([*flags, *COMMON, "--out", str(out)]) == 0


def gaps(a, b) -> tuple[float, float]:
    """max |Δloss| over every update and max |Δparam| at the end, between two run folders."""
    ra, rb = compare.load_run(str(a)), compare.load_run(str(b))
    _, dloss = compare.loss_differences(ra, rb)
    return float(dloss.max()), compare.max_param_difference(ra, rb)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Each model's one-device run and its two-device runs from the same init."""
    tmp, out = tmp_path_factory.mktemp("parallel"), {}
    for name, flags in MODELS.items():
        one = tmp / f"{name}-one"
        train(one, *flags, "--steps", str(STEPS))
        out[name] = {"one": one}
    for name, flags in MODELS.items():
        one = out[name]["one"]
        init = ["--init", str(one / "init.safetensors"), "--steps", str(STEPS), "--devices", "2"]
        for form in ("auto", "shard_map") if name in SHARD_MAP else ("auto",):
            save = ["--save-every", "50"] if name == "mlp" else []  # the file resumed below
            out[name][form] = tmp / f"{name}-{form}"
            train(out[name][form], *flags, *init, *save, "--parallel", form)
    return out


# -- the OOP side: DDP, two processes --
DROPOUT = ["--dropout", "0.2"]
FLOAT32 = [*COMMON, "--dtype", "float32"]  # the last --dtype counts
PEER_TIMEOUT = 30  # the DDP runs' collective timeout: a dead peer must be seen well before it
DDP_KILLED = "mlp-ddp-killed"  # the last run: endless, until the test ends rank 1
KILL_AT = 40  # after this update's checkpoint


@pytest.fixture(scope="module")
def ddp(runs, tmp_path_factory) -> dict:
    """Each model's `oop.train` under DDP from its one-device run's init, then an endless run
    ended by killing rank 1 after update KILL_AT's checkpoint. Rank 0 is this process (torch is
    loaded here already), rank 1 a fresh interpreter (tests/ddp_worker.py), with the variables
    torchrun gives each process; the runs write their folders as under torchrun."""
    tmp, jobs = tmp_path_factory.mktemp("ddp"), []
    for name, flags in MODELS.items():
        save = ["--save-every", "50"] if name == "mlp" else []
        init = str(runs[name]["one"] / "init.safetensors")
        jobs.append([*flags, *COMMON, "--steps", str(STEPS), *save, "--init", init,
                     "--out", str(tmp / name)])  # fmt: skip
    # float32: DDP's two-term gradient sums against one process, judged by a rounding control;
    # the start a float32 run's own (a float64 file is refused for a float32 run)
    f32 = [*MODELS["mlp"], *FLOAT32, "--steps", "1", "--out", str(tmp / "f32")]
    assert oop.train.main(f32) == 0
    init = str(tmp / "f32" / "init.safetensors")
    jobs.append([*MODELS["mlp"], *FLOAT32, "--steps", str(STEPS), "--init", init,
                 "--out", str(tmp / "mlp-float32")])  # fmt: skip
    # the gpt with dropout: each rank draws the global batch's masks and keeps its rows
    init = str(runs["gpt"]["one"] / "init.safetensors")
    jobs.append([*MODELS["gpt"], *COMMON, *DROPOUT, "--steps", str(STEPS), "--init", init,
                 "--out", str(tmp / "gpt-dropout")])  # fmt: skip
    killed = tmp / DDP_KILLED
    jobs.append([*MODELS["mlp"], *COMMON, "--steps", "100000000", "--save-every", "20",
                 "--out", str(killed)])  # fmt: skip
    jobs = [[launch.free_port(), argv] for argv in jobs]  # a port per run (tests/ddp_worker.py)
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    place = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
             "PARADIGMS_COLLECTIVE_TIMEOUT": str(PEER_TIMEOUT)}  # fmt: skip
    peer = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "ddp_worker.py"), str(tmp / "jobs.json")],
        env={**os.environ, **place, "RANK": "1", "LOCAL_RANK": "1", "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    kill = threading.Thread(target=kill_when, args=(killed / f"step-{KILL_AT}.safetensors",
                            lambda: peer.pid))  # fmt: skip
    out = {"killed": killed, "errors": io.StringIO(), "f32-init": tmp / "f32" / "init.safetensors"}
    with pytest.MonkeyPatch.context() as env:
        for k, v in {**place, "RANK": "0", "LOCAL_RANK": "0"}.items():
            env.setenv(k, v)
        env.setattr(sys, "stderr", out["errors"])  # what rank 0 prints as its one line
        for name, (port, argv) in zip([*MODELS, "mlp-float32", "gpt-dropout"], jobs, strict=False):
            env.setenv("MASTER_PORT", str(port))
            if oop.train.main(argv) != 0:
                peer.kill()
                pytest.fail(f"{out['errors'].getvalue()}\nrank 1:\n{peer.communicate()[0][-3000:]}")
            out[name] = tmp / name
        kill.start()
        started = time.monotonic()
        env.setenv("MASTER_PORT", str(jobs[-1][0]))
        out["code"] = oop.train.main(jobs[-1][1])
        out["seconds"] = time.monotonic() - kill.stopped
    kill.join()
    out["peer"] = peer.communicate(timeout=60)[0]
    out["errors"] = out["errors"].getvalue()
    assert started < kill.stopped
    return out


def kill_when(path, pid) -> None:
    """SIGKILL the process `pid()` names once `path` exists (the thread's `stopped`: when);
    after 300 s without it, at once: the run then fails on the missing checkpoint."""
    deadline = time.monotonic() + 300
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    threading.current_thread().stopped = time.monotonic()
    os.kill(pid(), signal.SIGKILL)


# -- the functional side on two processes: jax.distributed --
@pytest.fixture(scope="module")
def jax_runs(runs, tmp_path_factory) -> dict:
    """The three models on two JAX processes (`shared.launch`'s variables, tests/jax_processes.py
    running the runs in turn), each from its one-device run's init; the cnn_bn with
    `--parallel shard_map` (DDP's BatchNorm), the others automatic."""
    tmp, jobs = tmp_path_factory.mktemp("jax-processes"), []
    for name, flags in MODELS.items():
        form = ["--parallel", "shard_map"] if name == "cnn_bn" else []
        init = str(runs[name]["one"] / "init.safetensors")
        jobs.append([*flags, *COMMON, *form, "--steps", str(STEPS), "--init", init,
                     "--out", str(tmp / name)])  # fmt: skip
    killed = tmp / DDP_KILLED  # as on the OOP side: endless, until process 1 is killed
    jobs.append([*MODELS["mlp"], *COMMON, "--steps", "100000000", "--save-every", "20",
                 "--out", str(killed)])  # fmt: skip
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    envs = launch.environments(2, 1, 0, "127.0.0.1", launch.free_port())
    for env in envs:
        env["PARADIGMS_COLLECTIVE_TIMEOUT"] = str(PEER_TIMEOUT)
    command = [sys.executable, os.path.join(HERE, "jax_processes.py"), str(tmp / "jobs.json")]
    pid_file = tmp / "jobs.json.rank-1.pid"  # tests/jax_processes.py writes it
    kill = threading.Thread(target=kill_when, args=(killed / f"step-{KILL_AT}.safetensors",
                            lambda: int(pid_file.read_text())))  # fmt: skip
    kill.start()
    with open(tmp / "output.txt", "w") as output:
        code = launch.launch(command, envs, grace=PEER_TIMEOUT, output=output)
    kill.join()
    return {name: tmp / name for name in MODELS} | {
        "code": code, "killed": killed, "seconds": time.monotonic() - kill.stopped,
        "output": (tmp / "output.txt").read_text(),
    }  # fmt: skip


def test_a_killed_jax_process_ends_its_peer_in_one_line(jax_runs):
    """Process 1 killed mid-run: process 0's all-reduce fails at once (gloo's connection
    closes), and it stops in one line naming the last good checkpoint, which loads; it then
    leaves without JAX's exit handler, which would wait for the dead peer and abort."""
    errs = [s for s in jax_runs["output"].splitlines() if "error:" in s or "Check failure" in s]
    assert len(errs) == 1 and jax_runs["seconds"] < PEER_TIMEOUT / 3, jax_runs["output"][-3000:]
    assert "process 0 of 2: a peer process ended or stopped answering" in errs[0], errs[0]
    last = errs[0].split("The last good checkpoint is ")[1].split(".safetensors")[0]
    assert last.startswith(str(jax_runs["killed"] / "step-")), errs[0]
    ckpt = checkpoint.read(last + ".safetensors")
    assert ckpt.step >= KILL_AT and ckpt.side == "functional"
    assert jax_runs["code"] in (1, -signal.SIGKILL)  # the first failure seen: either process


@pytest.mark.parametrize("name", list(MODELS))
def test_jax_on_two_processes_equals_ddp_on_two_processes(runs, ddp, jax_runs, name):
    """One program in each of two processes, one mesh over their devices, against DDP's two
    processes: the same updates (for the cnn_bn, both with per-rank statistics), and for the
    others also one device's."""
    others = [(ddp[name], "DDP")] + ([] if name == "cnn_bn" else [(runs[name]["one"], "one")])
    for other, what in others:
        dloss, dparam = gaps(other, jax_runs[name])
        print(name, f"JAX on 2 processes against {what}: loss {dloss:.1e}, weights {dparam:.1e}")
        assert dloss <= TOL and dparam <= TOL
    written = json.loads((jax_runs[name] / "config.json").read_text())
    assert written["parallel"]["devices"] == 2 and written["side"] == "functional"


def oop_run(runs, name, tmp_path, *flags, init=None):
    """The OOP side's one-process run from the same init: PyTorch's `_test_DDP_niter` baseline."""
    folder, init = tmp_path / f"{name}-oop", init or runs[name]["one"] / "init.safetensors"
    assert oop.train.main([*MODELS[name], *COMMON, *flags, "--steps", str(STEPS), "--init",
                           str(init), "--out", str(folder)]) == 0  # fmt: skip
    return folder


@pytest.mark.parametrize("name", ["mlp", "gpt"])
def test_ddp_on_two_processes_is_one_process_and_the_functional_side(runs, ddp, name, tmp_path):
    one_process = oop_run(runs, name, tmp_path)
    for other, what in ((one_process, "one process"), (runs[name]["one"], "functional")):
        dloss, dparam = gaps(other, ddp[name])
        print(name, f"DDP on 2 processes against {what}: loss {dloss:.1e}, weights {dparam:.1e}")
        assert dloss <= TOL and dparam <= TOL
    written = json.loads((ddp[name] / "config.json").read_text())
    assert written["parallel"] == {"devices": 2, "form": "ddp"} and written["side"] == "oop"


def test_ddp_in_float32_is_as_close_to_one_process_as_rounding_allows(runs, ddp, tmp_path):
    """The mean of two ranks' gradients rounds otherwise than one process's mean over the
    batch; 100 Adam updates in float32 then part by rounding's growth. Judged against the
    rounding control (tests/rounding.py): the same process from one ulp away, each batch
    reversed, the inputs one ulp away (`--control`), within FACTOR of its gap plus FLOOR_ULPS."""
    init, dtype = ddp["f32-init"], FLOAT32[len(COMMON) :]
    one = oop_run(runs, "mlp", tmp_path, *dtype, init=init)
    control = oop_run(runs, "mlp", tmp_path / "control", *dtype, "--control", init=init)
    judge_float32(one, ddp["mlp-float32"], control, "mlp float32, DDP against one process")


def judge_float32(one, twin, control, what: str) -> None:
    """`twin` within FACTOR of the control's gap from `one`, plus FLOOR_ULPS of the largest
    loss and weight (tests/rounding.py's rule, on run folders as shared.compare reads them)."""
    twins, ctl = gaps(one, twin), gaps(one, control)
    ra = compare.load_run(str(one))
    loss = float(np.abs(ra.losses).max())
    weights = [v for k, v in ra.final.items() if not k.startswith(("opt.", "rng."))]
    largest = max(float(np.abs(w).max()) for w in weights)
    floor = [rounding.FLOOR_ULPS * m * 2 * U32 for m in (loss, largest)]
    print(f"{what}: loss {twins[0]:.1e}, weights {twins[1]:.1e}; control {ctl[0]:.1e}, "
          f"{ctl[1]:.1e}")  # fmt: skip
    assert {w.dtype for w in weights} == {np.dtype(np.float32)} and ctl[0] > 0  # it measures
    for t, c, f in zip(twins, ctl, floor, strict=True):
        assert t <= rounding.FACTOR * c + f, (what, twins, ctl)


def test_two_devices_in_float32_are_as_close_to_one_as_rounding_allows(tmp_path):
    """`--devices 2` in float32: XLA's all-reduce adds the two halves' partial gradients where
    one device sums the batch at once; judged against the same rounding control."""
    flags = [*MODELS["mlp"], *FLOAT32, "--steps", str(STEPS)]
    init = ["--init", str(tmp_path / "one" / "init.safetensors")]
    for out, more in (
        ("one", []),
        ("two", [*init, "--devices", "2"]),
        ("control", [*init, "--control"]),
    ):
        assert functional.train.main([*flags, *more, "--out", str(tmp_path / out)]) == 0
    judge_float32(tmp_path / "one", tmp_path / "two", tmp_path / "control",
                  "mlp float32, 2 devices against 1")  # fmt: skip


def test_ddp_drops_what_one_process_drops(runs, ddp, tmp_path):
    """The gpt with dropout 0.2 (embeddings, attention, residuals): oop/layers.py's Dropout
    under DDP draws the whole global batch's masks on every rank and keeps its own rows, so
    two processes train as one process does, its generator state included."""
    one_process = oop_run(runs, "gpt", tmp_path, *DROPOUT)
    dloss, dparam = gaps(one_process, ddp["gpt-dropout"])
    print(f"gpt with dropout, DDP against one process: loss {dloss:.1e}, weights {dparam:.1e}")
    assert dloss <= TOL and dparam <= TOL
    rng = [checkpoint.read(f / "final.safetensors").tensors["rng.torch"]
           for f in (one_process, ddp["gpt-dropout"])]  # fmt: skip
    assert np.array_equal(*rng)


def test_ddp_batchnorm_is_shard_maps_per_shard_statistics(runs, ddp):
    """DDP on a CPU: each rank's statistics its own, rank 0's buffers broadcast; the functional
    side's `--parallel shard_map` computes the same, update for update (and not one device's)."""
    dloss, dparam = gaps(runs["cnn_bn"]["shard_map"], ddp["cnn_bn"])
    print(f"cnn_bn DDP against shard_map: loss {dloss:.1e}, weights and statistics {dparam:.1e}")
    assert dloss <= TOL and dparam <= TOL
    assert gaps(runs["cnn_bn"]["one"], ddp["cnn_bn"])[0] > 1e-6


def test_a_ddp_checkpoint_resumes_on_one_device_on_the_functional_side(runs, ddp, tmp_path):
    resumed = tmp_path / "resumed"
    assert functional.train.main(["--resume", str(ddp["mlp"] / "step-50.safetensors"),
                                  "--no-progress", "--out", str(resumed)]) == 0  # fmt: skip
    dloss, dparam = gaps(ddp["mlp"], resumed)
    assert dloss <= TOL and dparam <= TOL


def test_a_killed_peer_ends_the_run_in_one_line_and_its_checkpoint_loads(ddp):
    """Rank 1 killed mid-run: rank 0 stops at once, long before the collective timeout (gloo's
    connection breaks; a peer that hangs instead is waited for the whole timeout), in one line
    that names the last good checkpoint, which loads. Until then, rank 1 printed nothing: no
    report, no error, no progress (rank 0 speaks for the runs)."""
    lines = ddp["errors"].strip().splitlines()
    assert ddp["code"] == 1 and ddp["seconds"] < PEER_TIMEOUT / 3 and len(lines) == 1, ddp
    assert ddp["peer"].strip() == "", ddp["peer"][-3000:]
    assert "rank 0 of 2: a peer process ended or stopped answering" in lines[0], lines[0]
    last = lines[0].split("The last good checkpoint is ")[1].split(".safetensors")[0]
    assert last.startswith(str(ddp["killed"] / "step-")), lines[0]
    ckpt = checkpoint.read(last + ".safetensors")
    assert ckpt.step >= KILL_AT and ckpt.side == "oop"


@pytest.mark.parametrize("name", list(MODELS))
def test_the_automatic_form_on_two_devices_is_one_device(runs, name):
    dloss, dparam = gaps(runs[name]["one"], runs[name]["auto"])
    print(name, f"auto on 2 devices against 1: loss {dloss:.1e}, weights {dparam:.1e}")
    assert dloss <= TOL and dparam <= TOL
    written = json.loads((runs[name]["auto"] / "config.json").read_text())
    assert written["parallel"] == {"devices": 2, "form": "auto"}


@pytest.mark.parametrize("name", [m for m in SHARD_MAP if m != "cnn_bn"])
def test_shard_map_with_pmean_is_one_device_without_batchnorm(runs, name):
    dloss, dparam = gaps(runs[name]["one"], runs[name]["shard_map"])
    print(name, f"shard_map on 2 devices against 1: loss {dloss:.1e}, weights {dparam:.1e}")
    assert dloss <= TOL and dparam <= TOL


def _ddp_reference(start: dict, batches: list, cfg: TrainConfig, config) -> dict:
    """DDP's semantics on one device: each half of a batch through the one-device loss with
    its own BatchNorm statistics, the mean of the two gradients, shard 0's new statistics."""
    model, state = from_canonical_with_state(*skeleton(fbn.init_model, config, dtype="float64"),
                                             start)  # fmt: skip
    params, static = eqx.partition(model, eqx.is_array)
    optimizer = make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, state, opt_state, x, y):
        def half(x, y):
            return jax.value_and_grad(
                lambda p: fbn.loss_fn(eqx.combine(p, static), state, x, y), has_aux=True
            )(params)

        h = len(x) // 2
        (l0, s0), g0 = half(x[:h], y[:h])
        (l1, _), g1 = half(x[h:], y[h:])
        grads = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, g0, g1)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), s0, opt_state, (l0 + l1) / 2

    losses = []
    for x, y in batches:
        params, state, opt_state, loss = step(params, state, opt_state, x, y)
        losses.append(float(loss))
    weights = to_canonical_with_state(eqx.combine(params, static), state)
    return {"losses": np.array(losses), "weights": weights,
            "opt": opt_state_to_canonical(opt_state, len(batches))}  # fmt: skip


def test_shard_map_computes_ddps_batchnorm(runs):
    """Per-shard statistics change the numbers (the automatic form keeps one device's); the
    explicit form's are DDP's, update for update."""
    folder = runs["cnn_bn"]["shard_map"]
    dloss, _ = gaps(runs["cnn_bn"]["one"], folder)
    assert dloss > 1e-6, "per-shard statistics changed nothing: the check would prove nothing"
    final = checkpoint.read(str(folder / "final.safetensors"))
    cfg, config, _ = cli.parse("functional", [*MODELS["cnn_bn"], *COMMON, "--steps", str(STEPS),
                                              "--out", str(folder)])  # fmt: skip
    ds = data.load("digits")
    stream = data.batches(
        data.as_dtype(ds.x_train, np.float64),
        data.as_dtype(ds.y_train, np.float64),
        cfg.batch_size,
        seed=cfg.seed,
    )
    batches = [next(stream) for _ in range(STEPS)]  # fmt: skip
    start = checkpoint.read(str(folder / "init.safetensors")).weights
    with jax.enable_x64(True):
        ref = _ddp_reference(start, batches, cfg, config)
    run = compare.load_run(str(folder))
    assert max_abs_diff(run.losses, ref["losses"]) <= TOL
    got = final.tensors
    assert max_abs_diff({k: got[k] for k in ref["weights"]}, ref["weights"]) <= TOL
    assert max_abs_diff({k: got[k] for k in ref["opt"]}, ref["opt"]) <= TOL


def test_a_two_device_checkpoint_resumes_on_one_device(runs, tmp_path):
    """The checkpoint is the canonical file whatever wrote it: resumed at 50 on one device, the
    run ends where the uninterrupted one-device run ends."""
    two = runs["mlp"]["auto"]
    resumed = tmp_path / "resumed"
    assert functional.train.main(["--resume", str(two / "step-50.safetensors"), "--no-progress",
                                  "--out", str(resumed)]) == 0  # fmt: skip
    dloss, dparam = gaps(runs["mlp"]["one"], resumed)
    assert dloss <= TOL and dparam <= TOL


def test_on_host_devices_the_step_returns_its_update_computed():
    """The loop keeps one update in flight on host devices (functional/parallel.py: queued
    updates can deadlock XLA:CPU's all-reduce). A step whose outputs are still being computed
    when it returns would bring the queue back."""
    mesh = par.make_mesh(2, "cpu")
    model, _ = interface.init(fmlp, MLPConfig(in_features=4, out_features=3, width=8, layers=1),
                              key=jax.random.PRNGKey(0), dtype="float32")  # fmt: skip
    params, static = eqx.partition(model, eqx.is_array)
    tx = optax.sgd(0.1)
    args = par.replicate(mesh, (params, None, tx.init(params)))
    x, y = np.ones((8, 4), np.float32), np.zeros(8, np.int32)
    for form in ("auto", "shard_map"):
        step = par.make_step(form, fmlp, tx, static, 0, mesh)
        out = step(*args, x, y, 1)
        assert all(a.is_ready() for a in jax.tree_util.tree_leaves(out)), form


@pytest.mark.parametrize(
    ("side", "flags", "message"),
    [
        ("oop", ["--devices", "2"], "torchrun --nproc-per-node N -m oop.train"),
        ("functional", ["--devices", "2", "--batch-size", "7"], "--batch-size 7 does not split"),
        ("functional", ["--devices", "0"], "--devices 0: give the number of devices"),
        ("functional", ["--parallel", "shard_map"], "add --devices N"),
        ("functional", ["--model", "cnn_dropout", "--dropout", "0.5", "--devices", "2",
                        "--parallel", "shard_map"], "--parallel shard_map would draw"),
        ("functional", ["--devices", "8", "--steps", "1"], "JAX started with 2 CPU device(s)"),
    ],
)  # fmt: skip
def test_bad_parallel_flags_are_refused_in_one_line(side, flags, message, tmp_path, capsys):
    main = {"functional": functional.train.main, "oop": oop.train.main}[side]
    try:
        code = main([*flags, "--no-progress", "--out", str(tmp_path / "x")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (1, 2) and len(err) == 1 and message in err[0], err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--nproc-per-node", "0", "-m", "x"], "1 or more"),
        (["--nnodes", "2", "--node-rank", "2", "-m", "x"], "--node-rank 2: give 0 to 1"),
        (["--nnodes", "2", "-m", "x"], "give every machine the same --master-addr"),
    ],
)
def test_the_launcher_refuses_bad_counts_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as refused:
        launch.main(flags)
    err = capsys.readouterr().err.strip().splitlines()
    assert refused.value.code == 2 and len(err) == 1 and message in err[0], err


def test_the_launcher_gives_each_process_torchruns_variables():
    envs = launch.environments(2, 2, 1, "10.0.0.1", 29400)
    assert [e["RANK"] for e in envs] == ["2", "3"] and [e["LOCAL_RANK"] for e in envs] == ["0", "1"]
    assert {e["WORLD_SIZE"] for e in envs} == {"4"} and envs[0]["MASTER_PORT"] == "29400"
