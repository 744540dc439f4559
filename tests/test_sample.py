"""Generation from a character model's checkpoint: `python -m functional.sample` and
`python -m oop.sample`. Greedy decoding prints the same text on both sides; decoding one
character at a time gives the logits of the full forward pass; bad requests are refused."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from pairs import F64_TOL, max_abs_diff, pair

import functional.sample
import functional.train
import oop.sample
from shared import checkpoint, data
from shared.config import GRUConfig, model_config_from_dict, to_dict

# float64: decoding step by step is the forward pass, to rounding (F64_TOL)
SIDES = {"functional": functional.sample, "oop": oop.sample}


@pytest.fixture(scope="module")
def char_checkpoint(tmp_path_factory):
    """A 2-layer GRU after a few float64 updates on pycorpus, written by the functional side."""
    out = tmp_path_factory.mktemp("gru")
    flags = ["--model", "gru", "--dataset", "pycorpus", "--seq-len", "16", "--width", "8"]
    flags += ["--layers", "2", "--dtype", "float64", "--steps", "5", "--eval-every", "0"]
    assert functional.train.main([*flags, "--out", str(out), "--no-progress"]) == 0
    return str(out / "final.safetensors")


def sample(side, capsys, *flags) -> str:
    assert SIDES[side].main(list(flags)) == 0
    return capsys.readouterr().out


def test_greedy_text_is_identical_on_both_sides(char_checkpoint, capsys):
    flags = ["--checkpoint", char_checkpoint, "--temperature", "0", "--max-new-tokens", "60"]
    texts = {side: sample(side, capsys, *flags, "--prompt", "def f(") for side in SIDES}
    assert texts["functional"] == texts["oop"] and texts["oop"].startswith("def f(")
    for side in SIDES:  # top-k 1 is greedy, whatever the temperature
        top1 = sample(side, capsys, *flags[:2], "--top-k", "1", "--max-new-tokens", "60",
                      "--prompt", "def f(")  # fmt: skip
        assert top1 == texts[side]


def test_each_side_reproduces_its_own_samples(char_checkpoint, capsys):
    for side in SIDES:
        a, b, c = (sample(side, capsys, "--checkpoint", char_checkpoint, "--seed", s)
                   for s in ("1", "1", "2"))  # fmt: skip
        assert a == b and a != c


def test_decoding_step_by_step_is_the_forward_pass(char_checkpoint):
    ckpt = checkpoint.read(char_checkpoint)
    config = model_config_from_dict(ckpt.model, ckpt.model_config)
    ids = np.random.default_rng(0).integers(0, config.in_features, 12)
    model, torch_model = pair(ckpt.model, config, ckpt.weights)
    with jax.enable_x64(True):
        full = model(jnp.asarray(ids))  # (time, vocab)
        carries, steps = model.init_decode(), []
        for t in ids:
            carries, logits = model.decode(carries, jnp.asarray(t))
            steps.append(logits)
        assert max_abs_diff(full, jnp.stack(steps)) <= F64_TOL
    with torch.no_grad():
        full_o = torch_model(torch.from_numpy(ids)[None])[0]
        torch_model.reset_decode(batch=1)  # the module keeps what it reads, as the gpt does
        steps_o = [torch_model.decode(torch.tensor([int(t)]))[0] for t in ids]
    assert max_abs_diff(full_o, torch.stack(steps_o)) <= F64_TOL
    assert max_abs_diff(full, full_o) <= F64_TOL


def test_the_run_records_the_text_it_trained_on(char_checkpoint):
    ckpt = checkpoint.read(char_checkpoint)
    assert ckpt.train_config["data_sha256"] == data.load("pycorpus", 16).sha256


@pytest.mark.parametrize("side", SIDES)
def test_a_prompt_with_an_unknown_character_is_refused(side, char_checkpoint, capsys):
    with pytest.raises(SystemExit):
        SIDES[side].main(["--checkpoint", char_checkpoint, "--prompt", "x = 5 €"])
    assert "characters the model never saw: '€'" in capsys.readouterr().err


@pytest.mark.parametrize("side", SIDES)
def test_a_regression_checkpoint_is_refused(side, tmp_path, capsys):
    config = GRUConfig(in_features=2, width=4, task="regress")  # an adding model
    weights = {k: np.zeros(v) for k, v in config.weight_shapes().items()}
    path = tmp_path / "adding.safetensors"
    checkpoint.save(path, weights, model="gru", model_config=to_dict(config),
                    train_config={"dataset": "adding"}, step=0, side="oop")  # fmt: skip
    with pytest.raises(SystemExit):
        SIDES[side].main(["--checkpoint", str(path)])
    assert "sampling needs a character model" in capsys.readouterr().err
