"""The canonical checkpoint: bit-exact round trips across sides, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from pairs import canonical, cast

import functional.convert as fconvert
import functional.models.mlp as f2
import oop.convert as oconvert
import oop.models.mlp as o2
from shared import checkpoint
from shared.config import MLPConfig, TrainConfig, to_dict, train_config_from_dict
from shared.optim import OptimizerSpec, ScheduleSpec
from shared.weights import jitter


def save(path, weights, model="mlp", config=None):
    checkpoint.save(
        path,
        weights,
        model=model,
        model_config=to_dict(config or MLPConfig()),
        train_config=to_dict(TrainConfig()),
        step=7,
        side="test",
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_equinox_file_torch_file_equinox_is_bit_exact(tmp_path, mlp_config, dtype):
    with jax.enable_x64(dtype == "float64"):
        model = f2.init_model(mlp_config, key=jax.random.PRNGKey(1), dtype=dtype)
        save(tmp_path / "a.safetensors", fconvert.to_canonical(model), config=mlp_config)
        torch_model = o2.init_model(mlp_config, seed=5, dtype=dtype)
        oconvert.from_canonical(torch_model, checkpoint.read(tmp_path / "a.safetensors").weights)
        save(tmp_path / "b.safetensors", oconvert.to_canonical(torch_model), config=mlp_config)
        other = fconvert.skeleton(f2.init_model, mlp_config, dtype=dtype)
        back = fconvert.from_canonical(other, checkpoint.read(tmp_path / "b.safetensors").weights)
        a, b = canonical(model), canonical(back)
        assert a.keys() == b.keys() == mlp_config.weight_shapes().keys()
        for k in a:
            assert a[k].dtype == b[k].dtype == np.dtype(dtype)
            np.testing.assert_array_equal(a[k], b[k])
        assert (tmp_path / "a.safetensors").read_bytes()[8:] != b""  # a real file, no pickle


def test_metadata_and_reserved_entries_round_trip(tmp_path, init_weights):
    tensors = {**init_weights, "opt.step": np.array(3, np.int64)}
    save(tmp_path / "c.safetensors", tensors)
    ckpt = checkpoint.read(tmp_path / "c.safetensors")
    assert (ckpt.model, ckpt.step, ckpt.side) == ("mlp", 7, "test")
    assert ckpt.model_config == to_dict(MLPConfig())
    assert "opt.step" in ckpt.tensors and "opt.step" not in ckpt.weights
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_wrong_shapes_are_all_reported_in_one_error(tmp_path, init_weights):
    bad = dict(init_weights)
    bad["layers.0.weight"] = bad["layers.0.weight"].T.copy()  # (64, 256) instead of (256, 64)
    del bad["layers.2.bias"]
    bad["head.weight"] = np.zeros(3)
    save(tmp_path / "bad.safetensors", bad)
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.load_weights(
            tmp_path / "bad.safetensors",
            model="mlp",
            expected=MLPConfig().weight_shapes(),
            dtype="float64",
        )
    msg = str(e.value)
    assert "layers.0.weight: expected (256, 64), file has (64, 256)" in msg
    assert "layers.2.bias: missing" in msg
    assert "head.weight: unexpected" in msg


def test_wrong_dtype_is_reported(tmp_path, init_weights, mlp_config):
    save(tmp_path / "f64.safetensors", init_weights)
    torch_model = o2.init_model(mlp_config, seed=0, dtype="float32")
    with pytest.raises(checkpoint.CheckpointError, match="expected float32, file has float64"):
        oconvert.from_canonical(torch_model, checkpoint.read(tmp_path / "f64.safetensors").weights)


def test_another_models_checkpoint_is_refused(tmp_path, init_weights):
    save(tmp_path / "cnn.safetensors", init_weights, model="cnn")
    with pytest.raises(checkpoint.CheckpointError, match="holds a 'cnn' model, not 'mlp'"):
        checkpoint.load_weights(
            tmp_path / "cnn.safetensors", model="mlp", expected=MLPConfig().weight_shapes()
        )


def test_truncated_file_is_refused(tmp_path, init_weights):
    path = tmp_path / "t.safetensors"
    save(path, init_weights)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="or a truncated one"):
        checkpoint.read(path)
    path.write_bytes(data[:5])
    with pytest.raises(checkpoint.CheckpointError, match="or a truncated one"):
        checkpoint.read(path)


def test_failed_write_keeps_the_old_file(tmp_path, init_weights, monkeypatch):
    path = tmp_path / "keep.safetensors"
    save(path, init_weights)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save(path, cast(init_weights, "float32"))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.safetensors"]


def test_command_line_prints_metadata_and_table(tmp_path, init_weights):
    save(tmp_path / "p.safetensors", init_weights)
    out = subprocess.run(
        [sys.executable, "-m", "shared.checkpoint", str(tmp_path / "p.safetensors")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "layers.0.weight  (256, 64)" in out and "float64" in out and "85,002 parameters" in out
    bad = subprocess.run(
        [sys.executable, "-m", "shared.checkpoint", str(tmp_path / "missing.safetensors")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no such checkpoint file" in bad.stderr


def test_checkpoints_get_the_usual_file_mode(tmp_path, init_weights):
    save(tmp_path / "m.safetensors", init_weights)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_folder_or_a_foreign_file_is_refused_with_a_hint(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="is a folder; pass one of its files"):
        checkpoint.read(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"kind": "train"}\n')
    with pytest.raises(checkpoint.CheckpointError, match="not a safetensors checkpoint"):
        checkpoint.read(tmp_path / "metrics.jsonl")


def test_a_version_1_train_config_still_reads():
    """The first release stored the optimizer's settings flat in train_config."""
    old = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": False, "steps": 10}
    cfg = train_config_from_dict(old)
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.momentum) == ("sgd", 0.05, 0.9)
    assert cfg.steps == 10 and cfg.schedule.name == "constant"


def test_nested_specs_round_trip_through_json():
    cfg = TrainConfig(
        optimizer=OptimizerSpec.create("adamw", no_decay=("*.bias",)),
        schedule=ScheduleSpec.create("multistep", milestones=(3, 5)),
    )
    again = train_config_from_dict(json.loads(json.dumps(to_dict(cfg))))
    assert again == cfg


def test_jitter_moves_half_of_the_floats_by_one_ulp_and_nothing_else():
    rng = np.random.default_rng(0)
    weights = {
        "w": rng.standard_normal((50, 40)).astype(np.float32),
        "b": np.zeros(7, np.float64),
        "norms.0.num_batches_tracked": np.array(3, np.int64),
    }
    out = jitter(weights, seed=0)
    assert {k: v.dtype for k, v in out.items()} == {k: v.dtype for k, v in weights.items()}
    moved = out["w"] != weights["w"]
    assert np.array_equal(out["w"][moved], np.nextafter(weights["w"], np.float32(np.inf))[moved])
    assert 0.45 < moved.mean() < 0.55  # 2000 fair coins
    assert out["norms.0.num_batches_tracked"] == 3
    assert all(np.array_equal(out[k], jitter(weights, seed=0)[k]) for k in out)
