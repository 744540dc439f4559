"""Bad checkpoint files, given to every command that reads one: `python -m shared.checkpoint`,
`train --init`, `train --resume`, `evaluate` and `sample` on both sides. Each is refused with
one line (exit 2) that names the file and the fix; nothing is written. One more bad file is one
more row of DAMAGES; one more reader is one more entry of READERS.

Also `sample`'s edge values, where the two sides once disagreed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import functional.evaluate
import functional.sample
import functional.train
import oop.evaluate
import oop.sample
import oop.train
from shared import checkpoint as ckpt_module
from shared.cli.sample import MAX_NEW_TOKENS

GRU = ["--model", "gru", "--dataset", "pycorpus", "--seq-len", "16", "--width", "8"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A small character GRU after 4 updates, written by the functional side: every reader
    below takes it (the readers' own tests show it), so each refusal is the damage's."""
    out = tmp_path_factory.mktemp("good")
    flags = [*GRU, "--layers", "1", "--steps", "4", "--eval-every", "0", "--save-every", "2"]
    assert functional.train.main([*flags, "--out", str(out), "--no-progress"]) == 0
    return out / "step-2.safetensors"


def _main(module, argv):
    try:
        return module.main(argv)
    except SystemExit as e:  # argparse's refusals
        return e.code


READERS = {
    "shared.checkpoint": lambda f, out: _main(ckpt_module, [f]),
    "functional.train --init": lambda f, out: _main(
        functional.train, [*GRU, "--init", f, "--steps", "1", "--out", out, "--no-progress"]
    ),
    "oop.train --resume": lambda f, out: _main(
        oop.train, ["--resume", f, "--steps", "3", "--out", out, "--no-progress"]
    ),
    "functional.evaluate": lambda f, out: _main(functional.evaluate, ["--checkpoint", f]),
    "oop.evaluate": lambda f, out: _main(oop.evaluate, ["--checkpoint", f]),
    "functional.sample": lambda f, out: _main(functional.sample, ["--checkpoint", f]),
    "oop.sample": lambda f, out: _main(oop.sample, ["--checkpoint", f]),
}


def _meta(**changes):
    def damage(tensors, meta):
        return tensors, {**meta, **changes}

    return damage


def _config(key, **changes):
    def damage(tensors, meta):
        return tensors, {**meta, key: json.dumps({**json.loads(meta[key]), **changes})}

    return damage


def _tensors(edit):
    def damage(tensors, meta):
        return edit(dict(tensors)), meta

    return damage


def _renamed(t):
    t["head.kernel"] = t.pop("head.weight")
    return t


def _reshaped(t):
    t["head.bias"] = np.concatenate([t["head.bias"], t["head.bias"][:1]])
    return t


def _nan(t):
    t["head.bias"] = t["head.bias"] * np.nan
    return t


# (what is wrong, the damage, what the one line says, which readers it concerns)
EVERY = tuple(READERS)
WEIGHT_READERS = tuple(r for r in READERS if r != "shared.checkpoint")  # it prints any table
DAMAGES = [
    ("format_version not an integer", _meta(format_version="two"), "is not an integer", EVERY),
    ("train_config not an object", _meta(train_config="[1, 2]"), "train_config is a list", EVERY),
    ("model_config not JSON", _meta(model_config="{width"), "damaged paradigms metadata", EVERY),
    (
        "a newer version's model setting",
        _config("model_config", rotary=True),
        "settings hold rotary, which this version of paradigms does not know",
        WEIGHT_READERS,
    ),
    (
        "a newer version's model",
        _meta(model="mamba"),
        "'mamba' model, which this version of paradigms does not know",
        WEIGHT_READERS,
    ),
    (
        "a setting of the wrong type",
        _config("model_config", width="eight"),
        "settings are damaged",
        WEIGHT_READERS,
    ),
    ("a renamed tensor", _tensors(_renamed), "head.weight: missing from file", WEIGHT_READERS),
    ("a reshaped tensor", _tensors(_reshaped), "head.bias: expected (", WEIGHT_READERS),
    (
        "NaN weights",
        _tensors(_nan),
        "NaN or infinite values (in head.bias); a run cannot start from it",
        ("functional.train --init", "oop.train --resume"),
    ),
]


@pytest.mark.parametrize("what,damage,message,readers", DAMAGES, ids=[d[0] for d in DAMAGES])
def test_a_damaged_checkpoint_is_refused_by_every_reader_in_one_line(
    what, damage, message, readers, good, tmp_path, capsys
):
    tensors, meta = damage(load_file(good), _metadata(good))
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad, metadata=meta)
    for reader in readers:
        out = tmp_path / reader.replace(" ", "_")
        assert READERS[reader](str(bad), str(out)) == 2, reader
        err = capsys.readouterr().err
        assert message in err and "bad.safetensors" in err, f"{reader}: {err}"
        assert err.count("\n") == 1, f"{reader}: {err}"
        assert not out.exists(), reader  # refused before anything was written


def _metadata(path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return f.metadata()


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--temperature", "nan"], "--temperature must be a finite number >= 0, got nan"),
        (["--temperature", "inf"], "--temperature must be a finite number >= 0, got inf"),
        (["--seed", "-1"], "--seed must lie in [0, 2**63), got -1"),
        (["--seed", str(2**64)], "--seed must lie in [0, 2**63)"),
        (
            ["--max-new-tokens", str(2**31)],
            f"--max-new-tokens must lie in [0, {MAX_NEW_TOKENS - 4}]",
        ),
    ],
)
@pytest.mark.parametrize("side", ["functional", "oop"])
def test_sample_refuses_edge_values_on_both_sides(side, flags, message, good, capsys):
    module = {"functional": functional.sample, "oop": oop.sample}[side]
    assert _main(module, ["--checkpoint", str(good), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_a_tiny_temperature_is_greedy_on_both_sides(good, capsys):
    """`logits / 1e-30` overflows; the largest logit taken off first, both sides tend to the
    argmax, as the math says, and print temperature 0's text."""
    texts = {}
    for side, module in (("functional", functional.sample), ("oop", oop.sample)):
        for t in ("0", "1e-30"):
            flags = ["--checkpoint", str(good), "--max-new-tokens", "30", "--temperature", t]
            assert module.main(flags) == 0
            texts[side, t] = capsys.readouterr().out
    assert len(set(texts.values())) == 1, texts


def test_every_reader_takes_the_good_file(good, tmp_path, capsys):
    """The control of the rows above: undamaged, the same file passes every reader."""
    for reader, run in READERS.items():
        assert run(str(good), str(tmp_path / reader.replace(" ", "_"))) == 0, reader
    capsys.readouterr()
