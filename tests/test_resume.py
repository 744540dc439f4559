"""Stop a run on one side and resume it on either side, through the training scripts.

50 functional updates + 50 OOP updates resumed from the functional step-50 checkpoint equal
100 OOP updates (per-step loss and final weights within the float64 tolerance), and the other
way round; resuming on the same side is bit-identical to never stopping.
"""

from __future__ import annotations

import numpy as np
import pytest
from pairs import F64_TOL, max_abs_diff

import functional.train
import oop.train
from shared import checkpoint, metrics
from shared.cli import train as cli
from shared.config import MLPConfig, TrainConfig, to_dict
from shared.optim import OptimizerSpec, ScheduleSpec

SIDES = {"functional": functional.train, "oop": oop.train}
# float64 twins agree to rounding (F64_TOL); measured below 1e-14
# Stateful optimizers with schedules that are mid-way at step 50, so the state, the step count
# and the schedule position all have to cross over.
SETTINGS = {
    "adamw-cosine": [
        "--optimizer", "adamw", "--lr", "0.01", "--no-decay", "*.bias",
        "--schedule", "cosine", "--warmup-steps", "10", "--eta-min", "1e-4",
    ],
    "rmsprop-multistep": [
        "--optimizer", "rmsprop", "--lr", "0.002", "--momentum", "0.5", "--centered",
        "--clip-norm", "1", "--schedule", "multistep", "--milestones", "30,60", "--gamma", "0.5",
    ],
}  # fmt: skip
COMMON = ["--dataset", "moons", "--width", "16", "--dtype", "float64", "--eval-every", "0"]


def train(side, out, *flags):
    code = SIDES[side].main([*flags, "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def losses(run) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in metrics.read(run) if r["kind"] == "train"}


@pytest.fixture(scope="module", params=list(SETTINGS))
def uninterrupted(request, tmp_path_factory):
    """100 updates on each side from one init, saving step-50 along the way."""
    root = tmp_path_factory.mktemp(request.param)
    flags = [*COMMON, *SETTINGS[request.param], "--steps", "100", "--save-every", "50"]
    f = train("functional", root / "functional", *flags)
    o = train("oop", root / "oop", *flags, "--init", str(f / "init.safetensors"))
    return root, {"functional": f, "oop": o}


@pytest.mark.parametrize("first, second", [("functional", "oop"), ("oop", "functional")])
def test_resume_on_the_other_side_equals_an_uninterrupted_run(uninterrupted, first, second):
    root, runs = uninterrupted
    resumed = train(
        second,
        root / f"{first}-then-{second}",
        "--resume",
        str(runs[first] / "step-50.safetensors"),
        "--steps",
        "100",
    )
    a, b = losses(resumed), losses(runs[second])
    assert sorted(a) == list(range(51, 101))
    assert max_abs_diff([a[k] for k in a], [b[k] for k in a]) <= F64_TOL
    x = checkpoint.read(resumed / "final.safetensors").tensors
    y = checkpoint.read(runs[second] / "final.safetensors").tensors
    assert x.keys() == y.keys()
    assert max_abs_diff(x, y) <= F64_TOL  # weights and state


@pytest.mark.parametrize("side", list(SIDES))
def test_resume_on_the_same_side_is_bit_identical(uninterrupted, side):
    root, runs = uninterrupted
    resumed = train(
        side,
        root / f"{side}-again",
        "--resume",
        str(runs[side] / "step-50.safetensors"),
        "--steps",
        "100",
    )
    a, b = losses(resumed), losses(runs[side])
    assert all(a[k] == b[k] for k in a)
    x = checkpoint.read(resumed / "final.safetensors").tensors
    y = checkpoint.read(runs[side] / "final.safetensors").tensors
    assert all(np.array_equal(x[k], y[k]) for k in y)


def test_checkpoints_hold_the_optimizer_state_and_specs(uninterrupted):
    _, runs = uninterrupted
    for side, run in runs.items():
        ckpt = checkpoint.read(run / "step-50.safetensors")
        assert ckpt.tensors["opt.step"].dtype == np.int64 and ckpt.tensors["opt.step"] == 50
        assert ckpt.tensors["opt.step"].shape == ()
        assert any(k.startswith("opt.") and k.endswith("layers.0.weight") for k in ckpt.tensors)
        assert {"optimizer", "schedule"} <= ckpt.train_config.keys(), side
        assert "opt.step" not in checkpoint.read(run / "init.safetensors").tensors


def write_at_50(folder, **extra):
    """A step-50 checkpoint of an AdamW + cosine run with zero weights and state (what the
    parser checks is the metadata and the names, shapes and dtypes); `extra` adds or replaces
    entries."""
    extra = {"opt.step": np.asarray(50, np.int64), **extra}
    model = MLPConfig(in_features=2, out_features=2, width=16, layers=2)
    train_cfg = TrainConfig(
        dataset="moons",
        steps=100,
        dtype="float64",
        optimizer=OptimizerSpec.create("adamw", lr=0.01),
        schedule=ScheduleSpec.create("cosine"),
    )
    path = folder / "step-50.safetensors"
    shapes = model.weight_shapes()
    state = {
        f"opt.{k}.{n}": np.zeros(s) for k in ("exp_avg", "exp_avg_sq") for n, s in shapes.items()
    }
    checkpoint.save(
        path,
        {**{k: np.zeros(s) for k, s in shapes.items()}, **state, **extra},
        model="mlp",
        model_config=to_dict(model),
        train_config=to_dict(train_cfg),
        step=50,
        side="oop",
    )
    return str(path)


@pytest.fixture
def written_at_50(tmp_path):
    return write_at_50(tmp_path)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "0.5"], "leave out --lr 0.5 (the checkpoint has 0.01)"),
        (["--schedule", "step"], "leave out --schedule step (the checkpoint has cosine)"),
        (["--width", "8"], "leave out --width 8 (the checkpoint has 16)"),
        (["--steps", "50"], "is at update 50; --steps is the update to end at"),
        (["--init", "x.safetensors"], "--init and --resume exclude each other"),
    ],
)
def test_resume_refuses_conflicting_flags(written_at_50, flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.parse("functional", ["--resume", written_at_50, "--out", str(tmp_path / "r"), *flags])
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_resume_takes_the_settings_from_the_checkpoint(written_at_50, tmp_path, capsys):
    train_cfg, model, opts = cli.parse(
        "oop",
        ["--resume", written_at_50, "--steps", "120", "--lr", "0.01", "--out", str(tmp_path / "r")],
    )
    assert (train_cfg.optimizer.name, train_cfg.optimizer.weight_decay) == ("adamw", 1e-2)
    assert train_cfg.schedule.decay_steps == 100  # the horizon stays the original run's
    assert (train_cfg.steps, model.width, opts.resume) == (120, 16, written_at_50)
    side = checkpoint.read(written_at_50).side
    assert capsys.readouterr().out == (
        f"resuming {written_at_50}: written by the {side} side at update 50; adamw (lr 0.01, "
        "schedule cosine), on to update 120\n"
    )


def test_resume_refuses_an_init_checkpoint(uninterrupted, tmp_path, capsys):
    _, runs = uninterrupted
    with pytest.raises(SystemExit):
        cli.parse("oop", ["--resume", str(runs["functional"] / "init.safetensors")])
    assert "holds no optimizer state" in capsys.readouterr().err


def test_resume_without_steps_ends_where_the_original_run_meant_to(written_at_50, tmp_path):
    flags = ["--resume", written_at_50, "--out", str(tmp_path / "r")]
    train_cfg, _, _ = cli.parse("functional", flags)
    assert train_cfg.steps == 100


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"opt.step": np.asarray(7, np.int64)}, "opt.step is 7, but the checkpoint is at step 50"),
        ({"opt.step": np.asarray(50.0)}, "opt.step: expected an int64 scalar"),
        ({"opt.exp_avg.layers.0.bias": np.zeros(3)}, "opt.exp_avg.layers.0.bias: expected (16,)"),
        ({"opt.sum.layers.0.bias": np.zeros(16)}, "opt.sum.layers.0.bias: unexpected"),
        ({"opt.exp_avg.layers.0.bias": np.zeros(16, np.float32)}, "expected float64"),
    ],
)
def test_resume_refuses_optimizer_state_that_does_not_fit(extra, message, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    path = write_at_50(tmp_path / "a", **extra)
    with pytest.raises(SystemExit):
        cli.parse("oop", ["--resume", path, "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert message in err and "does not match the adamw optimizer" in err and err.count("\n") == 1


def test_resume_refuses_to_write_into_its_own_folder_through_a_link(
    written_at_50, tmp_path, capsys
):
    link = tmp_path.parent / f"{tmp_path.name}-link"
    link.symlink_to(tmp_path)
    with pytest.raises(SystemExit):
        cli.parse("oop", ["--resume", str(link / "step-50.safetensors"), "--out", str(tmp_path)])
    assert "holds the checkpoint being resumed" in capsys.readouterr().err


@pytest.mark.parametrize("side", list(SIDES))
def test_dropout_resumes_bit_identically_on_its_own_side(side, tmp_path):
    """Dropout draws on: the functional key of update k is derived from k, and the torch
    generator's state travels in the checkpoint (`rng.torch`), so the masks carry on."""
    flags = ["--model", "cnn_dropout", "--dataset", "digits", "--width", "4", "--steps", "12"]
    flags += ["--optimizer", "sgd", "--lr", "0.05", "--eval-every", "0"]
    full = train(side, tmp_path / "full", *flags, "--save-every", "6")
    resumed = train(side, tmp_path / "resumed", "--resume", str(full / "step-6.safetensors"))
    a, b = losses(resumed), losses(full)
    assert sorted(a) == list(range(7, 13)) and all(a[k] == b[k] for k in a)
    x = checkpoint.read(resumed / "final.safetensors").weights
    y = checkpoint.read(full / "final.safetensors").weights
    assert all(np.array_equal(x[k], y[k]) for k in y)
