"""The paired training scripts, evaluate and compare, run as a user runs them; and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import rounding
from test_structure import loads_no_other_framework

import functional.evaluate
import functional.train
import oop.convert as oconvert
import oop.evaluate
import oop.models.mlp as o2
import oop.train
from shared import checkpoint, compare, data, metrics
from shared.cli import evaluate as cli_eval
from shared.cli import train as cli
from shared.config import GPTConfig, model_config_from_dict, to_dict

SIDES = {"functional": functional.train, "oop": oop.train}
EVALUATE = {"functional": functional.evaluate, "oop": oop.evaluate}


def train(side, out, *flags):
    """Run a training script's main() in this process; returns its exit code (2 for a refusal,
    at parse time or later; 1 for a run that stopped)."""
    try:
        return SIDES[side].main([*flags, "--out", str(out), "--no-progress"])
    except SystemExit as e:  # argparse's refusals
        return e.code


def test_dry_runs_as_a_user_runs_them_load_no_other_framework_and_compare(tmp_path, capsys):
    """`python -m functional.train --dry-run` and its OOP twin, and the grid's two corners
    (`crossover.oop_jax.train`, `crossover.functional_torch.train`), in one fresh interpreter
    per framework family that has imported every module of its sides first: the runs write
    their files and neither process loads the other family's framework (objects on JAX never
    load torch, functions on torch never load jax: tests/test_structure.py's FORBIDDEN). Then
    `shared.compare`'s main on the twins."""

    def run(side, argv, corner):
        dry = ["--dry-run", "--out", str(tmp_path / corner)]
        code = loads_no_other_framework(side, f"{side}.train", argv,
                                        then=((f"crossover.{corner}", dry),))  # fmt: skip
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "loaded: []", f"{side}: {result.stdout}"
        assert json.loads((tmp_path / corner / "config.json").read_text())["side"] == corner

    f, o = tmp_path / "functional", tmp_path / "oop"
    run("functional", ["--dry-run", "--out", str(f)], "oop_jax")
    run("oop", ["--dry-run", "--out", str(o), "--init", str(f / "init.safetensors")],
        "functional_torch")  # fmt: skip
    for side, out in (("functional", f), ("oop", o)):
        files = {p.name for p in out.iterdir()}
        assert {"init.safetensors", "final.safetensors", "config.json", "metrics.jsonl"} <= files
        records = metrics.read(out)
        assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3]
        assert records[-1]["kind"] == "eval" and records[-1]["split"] == "test"
        assert json.loads((out / "config.json").read_text())["side"] == side
    assert compare.main([str(f), str(o)]) == 0
    assert "max |Δloss| (all steps)" in capsys.readouterr().out and (o / "compare.png").exists()


def test_twins_from_one_init_agree_and_compare(tmp_path, capsys):
    """A functional run, its OOP twin from the same init, then the compare, in float64."""
    flags = ["--steps", "60", "--dtype", "float64", "--eval-every", "30", "--save-every", "20"]
    flags += ["--optimizer", "adam", "--lr", "0.001", "--width", "64"]
    assert train("functional", tmp_path / "f", *flags) == 0
    assert train("oop", tmp_path / "o", *flags, "--init", str(tmp_path / "f/init.safetensors")) == 0
    a, b = compare.load_run(str(tmp_path / "f")), compare.load_run(str(tmp_path / "o"))
    _, dloss = compare.loss_differences(a, b)
    assert len(dloss) == 60 and dloss.max() <= 1e-10
    assert compare.max_param_difference(a, b) <= 1e-10
    assert {p.name for p in (tmp_path / "o").glob("step-*")} == {
        "step-20.safetensors",
        "step-40.safetensors",
    }
    init = str(tmp_path / "f/init.safetensors")
    assert train("oop", tmp_path / "j", *flags, "--init", init, "--jitter-init") == 0
    capsys.readouterr()
    plot = ["--plot", str(tmp_path / "c.png"), "--control", str(tmp_path / "j")]
    assert compare.main([str(tmp_path / "f"), str(tmp_path / "o"), *plot]) == 0
    table = capsys.readouterr().out
    assert "max |Δloss|" in table and "test accuracy" in table and "steps/s" in table
    row = next(line for line in table.splitlines() if line.startswith("control: max |Δloss|"))
    control = float(row.split()[-1])
    assert 0 < control <= 1e-10  # one float64 ulp at the start: rounding-sized, but not zero
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.float32
@pytest.mark.parametrize("writer", SIDES)
def test_a_checkpoint_evaluates_the_same_on_both_sides(writer, tmp_path, capsys):
    """float32: the same checkpoint evaluated by XLA and by torch, within the bound that
    float32's rounding and the values' size give (tests/rounding.py)."""
    assert train(writer, tmp_path / "run", "--steps", "30", "--width", "32") == 0
    path = str(tmp_path / "run" / "final.safetensors")
    results = {}
    for side, module in EVALUATE.items():
        req = cli_eval.parse_eval(side, ["--checkpoint", path])
        results[side] = module.evaluate_checkpoint(req)
    (lf, af), (lo, ao) = results["functional"], results["oop"]
    assert af == ao, "test accuracy differs across sides"
    ckpt = checkpoint.read(path)
    config = model_config_from_dict("mlp", ckpt.model_config)
    model = oconvert.from_canonical(o2.init_model(config, seed=0), ckpt.weights)  # float32
    ds = data.load("digits")
    assert abs(lf - lo) <= rounding.classifier_bounds(model, ds.x_test, ds.y_test).loss
    logged = metrics.last_eval(metrics.read(tmp_path / "run"))
    assert logged["accuracy"] == pytest.approx(af, abs=1e-12)


def last_good(err: str) -> str:
    return err.split("The last good checkpoint is ")[1].split(". ")[0]


@pytest.mark.parametrize("side", SIDES)
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(side, tmp_path, capsys):
    """SGD at lr 1e10 gives NaN at update 3. step-1 was checked by update 2's finite loss and
    is kept; step-2 only led to NaN, so it is never written."""
    code = train(
        side,
        tmp_path,
        "--optimizer",
        "sgd",
        "--lr",
        "1e10",
        "--steps",
        "50",
        "--save-every",
        "1",
        "--width",
        "32",
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "loss became nan at update 3; stopped" in err
    assert last_good(err).endswith("step-1.safetensors")
    assert not (tmp_path / "step-2.safetensors").exists()
    assert not (tmp_path / "final.safetensors").exists()
    req = cli_eval.parse_eval(side, ["--checkpoint", last_good(err)])
    assert all(np.isfinite(EVALUATE[side].evaluate_checkpoint(req)))  # still good to use
    losses = [r["loss"] for r in metrics.read(tmp_path) if r["kind"] == "train"]
    assert len(losses) == 2 and np.isfinite(losses).all()


@pytest.mark.parametrize("side", SIDES)
def test_non_finite_loss_between_fetches_falls_back_to_init(side, tmp_path, capsys):
    """No --save-every: the NaN is found when the chunk of losses reaches the host."""
    assert (
        train(
            side,
            tmp_path,
            "--optimizer",
            "sgd",
            "--lr",
            "1e10",
            "--steps",
            "80",
            "--eval-every",
            "0",
        )
        == 1
    )
    assert last_good(capsys.readouterr().err).endswith("init.safetensors")


@pytest.mark.parametrize("side", SIDES)
def test_non_finite_test_loss_stops_cleanly(side, tmp_path, capsys):
    """lr 1e10: the losses of updates 1 and 2 are finite, the test loss after update 2 is not."""
    code = train(
        side, tmp_path, "--optimizer", "sgd", "--lr", "1e10", "--steps", "2", "--eval-every", "2"
    )
    assert code == 1
    assert "test loss became" in capsys.readouterr().err


@pytest.mark.parametrize("side", SIDES)
def test_an_existing_run_is_not_overwritten_by_accident(side, tmp_path, capsys):
    assert train(side, tmp_path, "--steps", "2", "--width", "16") == 0
    before = (tmp_path / "final.safetensors").read_bytes()
    assert train(side, tmp_path, "--steps", "2", "--width", "16") == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "final.safetensors").read_bytes() == before
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "pretrained.safetensors").write_bytes(before)  # a user's checkpoint, as --init
    init = ["--init", str(tmp_path / "pretrained.safetensors")]
    assert train(side, tmp_path, "--steps", "3", "--width", "16", *init, "--overwrite") == 0
    assert checkpoint.read(tmp_path / "final.safetensors").step == 3
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only the run's own files go
    assert (tmp_path / "pretrained.safetensors").read_bytes() == before


def test_dtype_and_size_come_from_init_unless_given(tmp_path):
    flags = ["--steps", "2", "--width", "24", "--layers", "1", "--dtype", "float64"]
    assert train("functional", tmp_path / "a", *flags) == 0
    cfg, model, _ = cli.parse("oop", ["--init", str(tmp_path / "a/init.safetensors")])
    assert (cfg.dtype, model.width, model.layers) == ("float64", 24, 1)


def test_init_from_another_models_checkpoint_names_the_model(tmp_path, capsys):
    """Checked before the file's sizes are read: a gpt's dropout must not be blamed on the lstm."""
    vocab = data.load("pycorpus", 16).vocab
    config = GPTConfig(n_layer=1, n_head=2, n_embd=4, block_size=16, vocab_size=len(vocab),
                       vocab=vocab)  # fmt: skip
    path = tmp_path / "gpt.safetensors"
    weights = {k: np.zeros(v, np.float32) for k, v in config.weight_shapes().items()}
    checkpoint.save(path, weights, model="gpt", model_config=to_dict(config),
                    train_config={"dataset": "pycorpus"}, step=0, side="oop")  # fmt: skip
    with pytest.raises(SystemExit):
        cli.parse("oop", ["--model", "lstm", "--dataset", "pycorpus", "--init", str(path)])
    assert "holds a 'gpt' model, not 'lstm'; pass --model gpt" in capsys.readouterr().err


def test_init_from_a_wrong_shape_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert train("functional", tmp_path / "w", "--steps", "2", "--width", "32") == 0
    code = train(
        "oop",
        tmp_path / "o",
        "--steps",
        "2",
        "--width",
        "48",
        "--init",
        str(tmp_path / "w/init.safetensors"),
    )
    assert code == 2  # refused: nothing was written
    err = capsys.readouterr().err
    assert "layers.0.weight: expected (48, 64), file has (32, 64)" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--dtype", "float16"], "invalid choice: 'float16'"),
        (["--dataset", "mnist"], "invalid choice: 'mnist'"),
        (["--model", "resnet"], "invalid choice: 'resnet'"),
        (["--steps", "0"], "steps must be >= 1"),
        (["--optimizer", "sgd", "--nesterov"], "nesterov needs momentum > 0"),
        (["--optimizer", "adam", "--beta1", "1.5"], "beta1 must lie in [0, 1)"),
        (["--alpha", "0.8"], "--alpha does not apply to the adam optimizer"),
        (["--optimizer", "rmsprop", "--alpha", "1"], "alpha must lie in [0, 1)"),
        (["--optimizer", "nadam"], "NAdam multiplies beta1"),
        (["--schedule", "cosine", "--milestones", "3"], "--milestones does not apply"),
        (["--schedule", "multistep"], "needs --milestones"),
        (["--schedule", "step"], "needs --step-size"),
        (["--warmup-start-factor", "0.1"], "--warmup-start-factor needs --warmup-steps"),
        (["--schedule", "cosine", "--warmup-steps", "20", "--steps", "10"], "must exceed --warmup"),
        (["--schedule", "cosine", "--eta-min", "1"], "lower --eta-min"),
        (["--no-decay", "*.bias"], "--no-decay has no effect without weight decay"),
        (["--weight-decay", "0.1", "--no-decay", "bias"], "pattern 'bias' matches no parameter"),
        (["--resume", "missing.safetensors"], "no such checkpoint file"),
        (["--optimizer", "sgd", "--momentum", "-0.5"], "momentum must be >= 0"),
        (["--momentum", "0"], "--momentum does not apply to the adam optimizer"),  # the default
        (["--optimizer", "sgd", "--beta2", "0.999"], "--beta2 does not apply to the sgd"),
        (["--batch-size", "5000"], "batch size 5000 exceeds the 1438 training examples"),
        (["--batch-size", "0"], "batch_size must be >= 1, got 0"),  # once trained with 128
        (["--seed", "-1"], "seed must lie in [0, 2**63), got -1"),
        (["--seed", str(2**63)], "seed must lie in [0, 2**63)"),
        (["--lr", "inf"], "lr must be a finite number, got inf"),
        (["--optimizer", "sgd", "--momentum", "nan"], "momentum must be a finite number"),
        (["--optimizer", "adam", "--eps", "nan"], "eps must be a finite number"),
        (["--weight-decay", "inf"], "weight_decay must be a finite number"),
        (["--schedule", "exponential", "--gamma", "nan"], "gamma must be a finite number"),
        (["--init", "missing.safetensors"], "no such checkpoint file"),
        (["--resume", "x.safetensors", "--jitter-init"], "drop it with --resume"),
        (["--model", "cnn", "--dataset", "moons"], "the cnn needs an image data set"),
        (["--model", "cnn", "--layers", "3"], "--layers applies to mlp, rnn, gru, lstm and gpt"),
        (["--model", "cnn", "--dropout", "0.2"], "--dropout applies to cnn_dropout and gpt"),
        (["--model", "cnn_dropout", "--dropout", "1"], "--dropout must lie in [0, 1)"),
        (["--model", "gru"], "the gru needs a sequence data set"),
        (["--dataset", "adding"], "the mlp classifies; adding and pycorpus are sequence"),
        (["--model", "cnn", "--dataset", "pycorpus"], "the cnn classifies"),
        (["--seq-len", "5"], "--seq-len applies to adding and pycorpus, not to digits"),
        (["--model", "lstm", "--dataset", "adding", "--seq-len", "1"], "--seq-len >= 2"),
        (["--model", "rnn", "--dataset", "adding", "--dropout", "0.1"], "rnn takes no --dropout"),
        (["--model", "gpt"], "the gpt is a character model: --dataset pycorpus"),
        (["--heads", "2"], "--heads applies to gpt; the mlp takes no --heads"),
        (["--model", "gpt", "--dataset", "pycorpus", "--heads", "3"], "a multiple of --heads 3"),
    ],
)
@pytest.mark.parametrize("side", SIDES)
def test_bad_flags_exit_with_a_one_line_error(side, flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.parse(side, [*flags, "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err  # one line, no usage block


def test_compare_refuses_a_folder_without_a_log(tmp_path, capsys):
    assert compare.main([str(tmp_path), str(tmp_path)]) == 2
    assert "no metrics log" in capsys.readouterr().err


def test_nan_in_the_data_is_refused():
    x = np.zeros((10, 3))
    x[4, 1] = np.nan
    with pytest.raises(ValueError, match="x_train has 1 non-finite values \\(first in row 4\\)"):
        data.Dataset("bad", x, np.zeros(10, np.int64), np.zeros((2, 3)), np.zeros(2, np.int64), 2)


def test_compare_refuses_runs_of_different_sizes(tmp_path, capsys):
    assert train("functional", tmp_path / "a", "--steps", "2", "--width", "16") == 0
    assert train("functional", tmp_path / "b", "--steps", "2", "--width", "24") == 0
    assert compare.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "not the same model size" in capsys.readouterr().err


def test_evaluate_refuses_a_data_set_with_other_classes(tmp_path, capsys):
    assert (
        train("oop", tmp_path / "m", "--steps", "2", "--dataset", "moons", "--batch-size", "16")
        == 0
    )
    with pytest.raises(SystemExit):
        cli_eval.parse_eval(
            "functional",
            ["--checkpoint", str(tmp_path / "m/final.safetensors"), "--dataset", "spirals"],
        )
    assert "pass --dataset moons" in capsys.readouterr().err


@pytest.mark.parametrize("side", SIDES)
def test_evaluate_main_prints_the_result(side, tmp_path, capsys):
    assert train(side, tmp_path, "--steps", "3", "--width", "16") == 0
    assert EVALUATE[side].main(["--checkpoint", str(tmp_path / "final.safetensors")]) == 0
    assert "digits test split (359 examples)" in capsys.readouterr().out


@pytest.mark.parametrize("module", ["shared.level0.mlp", "functional.level1.mlp", "oop.level1.mlp"])
def test_ladder_scripts_train(module, capsys):
    import importlib

    importlib.import_module(module).main(["--epochs", "8", "--lr", "0.05"])  # SGD, momentum 0.9
    out = capsys.readouterr().out
    assert "88 updates" in out
    assert float(out.rsplit("test accuracy ", 1)[1]) >= 0.9


def test_the_ladder_scripts_from_one_init_print_the_same_run(tmp_path, capsys):
    """`--init`: levels 0 and 1 on both sides trained from one checkpoint, watched agreeing."""
    import importlib

    assert train("functional", tmp_path / "f", "--dry-run") == 0
    init, lines = str(tmp_path / "f/init.safetensors"), []
    capsys.readouterr()
    for module in ("shared.level0.mlp", "functional.level1.mlp", "oop.level1.mlp"):
        importlib.import_module(module).main(["--epochs", "2", "--init", init])
        lines.append(capsys.readouterr().out.split("): ", 1)[1])
    assert lines[0].startswith("22 updates, train loss ") and len(set(lines)) == 1, lines
    with pytest.raises(SystemExit) as refused:  # a folder, not its file: refused at parse time
        importlib.import_module("oop.level1.mlp").main(["--init", str(tmp_path / "f")])
    assert refused.value.code == 2 and "is a folder" in capsys.readouterr().err


# cnn runs the MLP's stateless path; cnn_bn and cnn_dropout add state and randomness to the
# loops, the LSTM integer inputs (pycorpus), the gpt dropout keys and AdamW's no-decay mask. A
# sequence run's own test below trains adding.
@pytest.mark.parametrize(
    "model, dataset",
    [("cnn_bn", "digits"), ("cnn_dropout", "digits"), ("lstm", "pycorpus"), ("gpt", "pycorpus")],
)
def test_every_model_trains_on_both_sides_and_crosses_over(model, dataset, tmp_path, capsys):
    """A dry run per side from one init, then each side evaluates the other's checkpoint."""
    flags = ["--model", model, "--dataset", dataset, "--width", "4", "--dry-run"]
    if model == "gpt":  # one block of two heads, dropout on, the optimizer
        flags += ["--layers", "1", "--heads", "2", "--dropout", "0.1", "--optimizer", "adamw"]
        flags += ["--weight-decay", "0.1", "--no-decay", "*.bias,*ln_*,wte.weight,wpe.weight"]
    length = ["--seq-len", "16"] if dataset != "digits" else []
    assert train("functional", tmp_path / "f", *flags, *length) == 0
    init = ["--init", str(tmp_path / "f/init.safetensors")]  # a gpt's block size comes with it
    assert train("oop", tmp_path / "o", *flags, *([] if model == "gpt" else length), *init) == 0
    for side, other in (("functional", "o"), ("oop", "f")):
        final = str(tmp_path / other / "final.safetensors")
        assert EVALUATE[side].main(["--checkpoint", final]) == 0
    assert capsys.readouterr().out.count(f"{dataset} test split") == 2
    if model == "gpt":  # the tied matrix: one weight, one optimizer state, on both sides
        for side in ("f", "o"):
            tensors = checkpoint.read(tmp_path / side / "final.safetensors").tensors
            assert sorted(k for k in tensors if k.startswith("opt.exp_avg.w")) == [
                "opt.exp_avg.wpe.weight", "opt.exp_avg.wte.weight"
            ]  # fmt: skip


def test_jitter_init_starts_one_ulp_away_from_the_given_init(tmp_path):
    """The rounding control: on each side the saved init is the jittered start, within one ulp
    of --init, and both sides jitter the same weights the same way."""
    flags = ["--dry-run", "--width", "8"]
    assert train("functional", tmp_path / "a", *flags) == 0
    given = checkpoint.read(tmp_path / "a/init.safetensors").weights
    starts = []
    for side in SIDES:
        assert train(side, tmp_path / side, *flags, "--init", str(tmp_path / "a/init.safetensors"),
                     "--jitter-init") == 0  # fmt: skip
        starts.append(checkpoint.read(tmp_path / side / "init.safetensors").weights)
        start = json.loads((tmp_path / side / "config.json").read_text())["start"]
        assert start == {"init": str(tmp_path / "a/init.safetensors"), "resume": None,
                         "jitter_init": True, "control": False}  # fmt: skip
    for name, w in given.items():
        up = np.nextafter(w, np.float32(np.inf))
        assert np.all((starts[0][name] == w) | (starts[0][name] == up)), name
        assert np.any(starts[0][name] != w), name
        assert np.array_equal(starts[0][name], starts[1][name]), name


def test_a_sequence_run_records_its_length_and_resumes_only_at_it(tmp_path, capsys):
    flags = ["--model", "gru", "--dataset", "adding", "--width", "4", "--dry-run"]
    assert train("functional", tmp_path / "a", *flags, "--save-every", "2") == 0
    config = json.loads((tmp_path / "a/config.json").read_text())
    assert config["train_config"]["seq_len"] == 50  # the data set's default, written down
    assert config["train_config"]["data_sha256"] is None  # generated, not cut from a text
    step2 = str(tmp_path / "a/step-2.safetensors")
    cli.parse("oop", ["--resume", step2, "--seq-len", "50", "--out", str(tmp_path / "b")])
    with pytest.raises(SystemExit):
        cli.parse("oop", ["--resume", step2, "--seq-len", "20", "--out", str(tmp_path / "c")])
    assert "leave out --seq-len 20 (the checkpoint has 50)" in capsys.readouterr().err


def test_compare_reads_the_control_warns_on_a_forgotten_init_and_notes_a_missing_final(
    tmp_path, capsys
):
    """`--control` on a training script is a rounding control (one ulp away, each batch
    reversed, the inputs one ulp away); compare prints the twins/control ratios and reads them,
    warns when RUN_B did not start from RUN_A's weights, and compares the losses of a run
    without its final checkpoint."""
    flags = ["--dataset", "moons", "--width", "8", "--steps", "20", "--eval-every", "0"]
    f, o, c, g = (tmp_path / n for n in ("f", "o", "c", "g"))
    assert train("functional", f, *flags) == 0
    init = ["--init", str(f / "init.safetensors")]
    assert train("oop", o, *flags, *init) == 0
    assert train("oop", c, *flags, *init, "--control") == 0
    assert json.loads((c / "config.json").read_text())["start"]["control"] is True
    assert train("oop", g, *flags) == 0  # --init forgotten
    capsys.readouterr()
    assert (
        compare.main([str(f), str(o), "--control", str(c), "--plot", str(tmp_path / "p.png")]) == 0
    )
    out = capsys.readouterr().out
    assert "twins / control (loss, param)" in out and "\nreading: the twins differ" in out
    assert "did not start from the same weights" not in out
    assert compare.main([str(f), str(g), "--plot", str(tmp_path / "q.png")]) == 0
    assert "warning: the two runs did not start from the same weights" in capsys.readouterr().out
    (f / "final.safetensors").unlink()  # a run that stopped: its losses are compared
    assert compare.main([str(f), str(o)]) == 0
    out = capsys.readouterr().out
    assert [line.split()[-1] for line in out.splitlines() if "Δparam" in line] == ["n/a"]
    assert f"note: {f} lacks final.safetensors (the run stopped, or is still running)" in out
