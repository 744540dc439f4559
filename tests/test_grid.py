"""The grid through the training scripts: the MLP, the cnn_bn and the gpt on all four corners
(shared.sides) from one init.safetensors, any two to F64_TOL over 100 float64 updates; a run
stopped in one corner goes on in another; each corner's script loads only its own framework and
refuses a model it does not have. The float32 numbers are tests/test_grid_numbers.py's.
"""

from __future__ import annotations

import itertools

import pytest
from corners import trainer
from pairs import max_abs_diff

import crossover.functional_torch.evaluate
import crossover.functional_torch.train
import crossover.oop_jax.evaluate
import crossover.oop_jax.train
import functional.evaluate
import functional.train
import oop.evaluate
import oop.train
from shared import checkpoint, compare, data, sides
from shared.cli import train as cli

SCRIPTS = {
    "functional": functional.train,
    "oop": oop.train,
    "oop_jax": crossover.oop_jax.train,
    "functional_torch": crossover.functional_torch.train,
}
EVALUATE = {
    "functional": functional.evaluate,
    "oop": oop.evaluate,
    "oop_jax": crossover.oop_jax.evaluate,
    "functional_torch": crossover.functional_torch.evaluate,
}
assert SCRIPTS.keys() == EVALUATE.keys() == set(sides.GRID)  # Keras: tests/test_keras.py
FLAGS = ["--optimizer", "adam", "--lr", "0.003", "--eval-every", "0", "--no-progress"]
SIZES = {  # the same math at any size: small ones
    "mlp": ["--width", "32", "--batch-size", "64"],
    "cnn_bn": ["--width", "4", "--batch-size", "64"],
    "gpt": ["--dataset", "pycorpus", "--width", "16", "--layers", "1", "--heads", "2",
            "--seq-len", "8", "--batch-size", "4",
            # the gpt's own optimizer: AdamW whose no-decay patterns name torch's attributes
            # (NNX's wte.embedding must read as wte.weight), warmup, cosine, clipping
            "--optimizer", "adamw", "--weight-decay", "0.1", "--no-decay",
            "*.bias,*ln_*,wte.weight,wpe.weight", "--schedule", "cosine", "--warmup-steps", "10",
            "--clip-norm", "1.0"],
}  # fmt: skip
MODELS = sides.GRID_MODELS
assert all(m in sides.SIDES[s].models for s in sides.GRID for m in MODELS)
STEPS, BATCH = 100, 128


def train(side: str, out, *flags) -> int:
    try:
        return SCRIPTS[side].main([*FLAGS, *flags, "--out", str(out)])
    except SystemExit as e:  # argparse's refusals
        return e.code


@pytest.mark.parametrize("model", MODELS)
def test_four_corners_train_from_one_init_and_agree_pairwise(model, tmp_path, capsys):
    """The four training scripts with the same flags from one init.safetensors: any two agree
    to 1e-10 over 100 float64 updates, losses and final weights (and BatchNorm statistics), as
    shared.compare reads them; a run stopped in one corner goes on in another."""
    flags = ["--model", model, *SIZES[model], "--steps", str(STEPS), "--dtype", "float64",
             "--save-every", "50" if model == "cnn_bn" else "0"]  # fmt: skip
    assert train("functional", tmp_path / "functional", *flags) == 0
    init = str(tmp_path / "functional" / "init.safetensors")
    for side in ("oop", "oop_jax", "functional_torch"):
        assert train(side, tmp_path / side, *flags, "--init", init) == 0
    runs = {s: compare.load_run(str(tmp_path / s)) for s in SCRIPTS}
    for a, b in itertools.combinations(SCRIPTS, 2):
        _, dloss = compare.loss_differences(runs[a], runs[b])
        assert len(dloss) == STEPS and dloss.max() <= 1e-10, f"{a} vs {b}: {dloss.max():.2e}"
        assert compare.max_param_difference(runs[a], runs[b]) <= 1e-10, f"{a} vs {b}"
    if model != "cnn_bn":  # evaluating and resuming: on the model with the most state to carry
        return
    # every side's evaluate reads each new corner's checkpoint and scores it alike
    scores, _ = set(), capsys.readouterr()
    for writer in ("oop_jax", "functional_torch"):
        final = str(tmp_path / writer / "final.safetensors")
        for side in SCRIPTS:
            assert EVALUATE[side].main(["--checkpoint", final]) == 0
            line = capsys.readouterr().out.strip()
            assert f"written by {writer}" in line, line
            scores.add(line.split("loss ")[1])
    assert len(scores) == 1, scores  # the same loss and accuracy, to the digits printed
    # stop in one corner, go on in another: each new corner resumes a native side's step-50 and
    # a native side resumes each new corner's, and ends where the uninterrupted run ended
    for writer, reader in (("oop", "oop_jax"), ("functional", "functional_torch"),
                           ("oop_jax", "functional"), ("functional_torch", "oop")):  # fmt: skip
        step50 = str(tmp_path / writer / "step-50.safetensors")
        out = tmp_path / f"{writer}-then-{reader}"
        assert train(reader, out, "--resume", step50) == 0
        resumed = compare.load_run(str(out))
        assert compare.max_param_difference(resumed, runs[writer]) <= 1e-10, (writer, reader)


@pytest.mark.parametrize("corner", ["oop_jax", "functional_torch"])
def test_a_resumed_corner_draws_the_dropout_masks_it_would_have_drawn(corner, tmp_path):
    """The gpt with dropout 0.2, 20 updates, and again resumed from step 10: the NNX corner's
    checkpoints keep its Dropout layers' `nnx.Rngs` streams (`rng.nnx.*`), the torch.func
    corner derives each update's generator from the seed, and both go on exactly as the
    uninterrupted run went."""
    flags = ["--model", "gpt", *SIZES["gpt"], "--steps", "20", "--dtype", "float64",
             "--save-every", "10", "--dropout", "0.2"]  # fmt: skip
    assert train(corner, tmp_path / "a", *flags) == 0
    assert (
        train(corner, tmp_path / "b", *flags, "--resume", str(tmp_path / "a/step-10.safetensors"))
        == 0
    )
    a, b = compare.load_run(str(tmp_path / "a")), compare.load_run(str(tmp_path / "b"))
    _, dloss = compare.loss_differences(a, b)
    assert dloss.max() == 0.0 and compare.max_param_difference(a, b) == 0.0


# The corners' dry runs, each in a fresh interpreter that loads no other family's framework:
# tests/test_scripts.py, in the interpreter of its family's native side.


@pytest.mark.parametrize("side", ["functional", "functional_torch"])
def test_an_ensemble_of_8_is_8_separate_runs(side, tmp_path):
    """`--ensemble 8` trains the cnn_bn from seeds 0..7 at once (`jax.vmap` over stacked
    pytrees; `torch.func.stack_module_state` and `torch.func.vmap`), weights, BatchNorm
    statistics and batch order each its own. Member S's folder is, to F64_TOL, what training
    member S alone gives: for every S, the side's own loop (tests/corners.py) from the member's
    init on the batches of seed S; for S = 0 and 7, the run that `--seed S` writes, its init
    included."""
    flags = ["--model", "cnn_bn", "--width", "2", "--batch-size", "16", "--steps", "10",
             "--dtype", "float64"]  # fmt: skip
    assert train(side, tmp_path / "ensemble", *flags, "--ensemble", "8") == 0
    members = [tmp_path / "ensemble" / f"seed-{s}" for s in range(8)]
    assert sorted(p.name for p in (tmp_path / "ensemble").iterdir()) == [p.name for p in members]
    cfg, model_cfg, _ = cli.parse(side, [*FLAGS, *flags, "--out", str(tmp_path / "unused")])
    alone, ds, finals = trainer(side, "cnn_bn", model_cfg, cfg), data.load("digits"), set()
    for seed, folder in enumerate(members):
        start = checkpoint.read(folder / "init.safetensors").weights
        stream = data.batches(ds.x_train, ds.y_train, cfg.batch_size, seed=seed)
        run = alone(start, [next(stream) for _ in range(cfg.steps)])
        member = compare.load_run(str(folder))
        assert max_abs_diff(member.losses, run.losses) <= 1e-10, seed
        final = checkpoint.read(folder / "final.safetensors").weights
        assert max_abs_diff(final, run.weights) <= 1e-10, seed
        finals.add(round(float(run.losses[-1]), 12))
    assert len(finals) == 8, "the members are eight different models"
    for seed in (0, 7):  # and as the script runs a seed alone, from its own draw
        assert train(side, tmp_path / f"alone-{seed}", *flags, "--seed", str(seed)) == 0
        a, b = (
            compare.load_run(str(members[seed])),
            compare.load_run(str(tmp_path / f"alone-{seed}")),
        )
        _, dloss = compare.loss_differences(a, b)
        assert len(dloss) == 10 and dloss.max() <= 1e-10, (seed, dloss.max())
        assert compare.max_param_difference(a, b) <= 1e-10, seed
        inits = [
            checkpoint.read(p / "init.safetensors").weights
            for p in (members[seed], tmp_path / f"alone-{seed}")
        ]
        assert max_abs_diff(*inits) == 0.0, seed


def test_a_corner_refuses_a_model_it_does_not_have(tmp_path, capsys):
    assert train("oop_jax", tmp_path / "x", "--model", "cnn", "--dry-run") == 2
    assert "the oop_jax side has no cnn; it has mlp, cnn_bn and gpt" in capsys.readouterr().err
    assert train("functional", tmp_path / "cnn", "--model", "cnn", "--width", "2", "--dry-run") == 0
    with pytest.raises(SystemExit) as refused:
        EVALUATE["functional_torch"].main(["--checkpoint", str(tmp_path / "cnn/final.safetensors")])
    assert refused.value.code == 2
    assert "the functional_torch side has no cnn" in capsys.readouterr().err
    for side, flags, says in (
        ("oop", [], "--ensemble maps a pure step over a stack of models"),
        ("oop_jax", [], "which the oop_jax side's in-place step cannot do"),
        ("functional", ["--model", "gpt", "--dataset", "pycorpus"], "the gpt is not offered"),
        ("functional_torch", ["--init", str(tmp_path / "x.safetensors")], "drop --init"),
    ):
        assert train(side, tmp_path / "e", "--ensemble", "2", *flags) == 2
        assert says in capsys.readouterr().err, side
    # a member whose folder holds a run refuses the ensemble before any member writes a file
    tiny = ["--width", "2", "--steps", "1", "--dtype", "float64"]
    assert train("functional_torch", tmp_path / "ens/seed-1", *tiny) == 0
    assert train("functional_torch", tmp_path / "ens", *tiny, "--ensemble", "2") == 2
    assert "ens/seed-1 already holds a run" in capsys.readouterr().err
    assert not (tmp_path / "ens/seed-0").exists()
