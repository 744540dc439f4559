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
"""

from __future__ import annotations

import json

import equinox as eqx
import jax
import numpy as np
import optax
import pytest
from pairs import max_abs_diff

import functional.models.cnn_bn as fbn
import functional.models.mlp as fmlp
import functional.train
from functional import interface
from functional import parallel as par
from functional.convert import (
    from_canonical_with_state,
    opt_state_to_canonical,
    skeleton,
    to_canonical_with_state,
)
from functional.optim import make_optimizer
from shared import checkpoint, compare, data
from shared.cli import train as cli
from shared.config import MLPConfig, TrainConfig

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
        init = ["--init", str(one / "init.safetensors"), "--steps", str(STEPS), "--devices", "2"]
        out[name] = {"one": one}
        for form in ("auto", "shard_map") if name in SHARD_MAP else ("auto",):
            save = ["--save-every", "50"] if name == "mlp" else []  # the file resumed below
            out[name][form] = tmp / f"{name}-{form}"
            train(out[name][form], *flags, *init, *save, "--parallel", form)
    return out


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
    import oop.train

    main = {"functional": functional.train.main, "oop": oop.train.main}[side]
    try:
        code = main([*flags, "--no-progress", "--out", str(tmp_path / "x")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (1, 2) and len(err) == 1 and message in err[0], err
