"""Damaged and half-written run folders given to `python -m shared.compare`, and bad output paths
for it and for `python -m tools.reader`. A run killed mid-write is compared as far as its files
go, with a note on what is missing; a folder that is no run is refused in one line naming the
file and its line (exit 2); a plot that cannot be written comes after a complete table (exit 1).
One more damage is one more row of DAMAGES."""

from __future__ import annotations

import json
import shutil

import pytest

import functional.train
import oop.train
from shared import compare
from tools import reader

SMALL = ["--dataset", "moons", "--width", "8", "--steps", "6", "--eval-every", "0"]


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    root = tmp_path_factory.mktemp("twins")
    f, o = root / "f", root / "o"
    assert functional.train.main([*SMALL, "--out", str(f), "--no-progress"]) == 0
    init = ["--init", str(f / "init.safetensors")]
    assert oop.train.main([*SMALL, *init, "--out", str(o), "--no-progress"]) == 0
    return f, o


def _cut_last_line(run):  # a kill mid-write: the last record half there
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text[: len(text) - 20])


def _drop_side(run):
    info = json.loads((run / "config.json").read_text())
    del info["side"]
    (run / "config.json").write_text(json.dumps(info))


def _drop_kind(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    record = json.loads(lines[2])
    del record["kind"]
    lines[2] = json.dumps(record)
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def _garble_line(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:15]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def _garble_config(run):
    (run / "config.json").write_text("{side")


# (what, the damage to RUN_B, exit code, what it prints: stdout for 0, the one line for 2)
DAMAGES = [
    ("no final", lambda r: (r / "final.safetensors").unlink(), 0, "lacks final.safetensors"),
    ("a cut-short last line", _cut_last_line, 0, "lacks the cut-short last line of its metrics"),
    ("no side in config.json", _drop_side, 0, "max |Δloss| (all steps)"),
    ("a record without kind", _drop_kind, 2, "metrics.jsonl line 3: not a train or eval record"),
    ("a garbled line mid-log", _garble_line, 2, "metrics.jsonl line 2: not JSON"),
    ("a garbled config.json", _garble_config, 2, "config.json: not JSON"),
]


@pytest.mark.parametrize("what,damage,code,message", DAMAGES, ids=[d[0] for d in DAMAGES])
def test_compare_reads_what_there_is_or_refuses_in_one_line(
    what, damage, code, message, twins, tmp_path, capsys
):
    f, o = twins
    b = tmp_path / "o"
    shutil.copytree(o, b)
    damage(b)
    assert compare.main([str(f), str(b), "--plot", str(tmp_path / "p.png")]) == code
    out, err = capsys.readouterr()
    if code == 0:
        assert message in out and err == "", out + err
        assert (tmp_path / "p.png").exists()
    else:
        assert message in err and err.count("\n") == 1 and out == "", err


def test_compare_refuses_a_plot_into_a_missing_folder_before_the_table(twins, tmp_path, capsys):
    f, o = twins
    with pytest.raises(SystemExit) as e:
        compare.main([str(f), str(o), "--plot", str(tmp_path / "no" / "p.png")])
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == "" and "create it, or pass another --plot" in err


def test_a_plot_that_cannot_be_written_comes_after_a_complete_table(twins, tmp_path, capsys):
    f, o = twins
    (tmp_path / "p.png").mkdir()  # a folder where the file should go
    assert compare.main([str(f), str(o), "--plot", str(tmp_path / "p.png")]) == 1
    out, err = capsys.readouterr()
    assert "max |Δparam| (final)" in out and err.count("\n") == 1, err
    assert "the table above is complete, but the plot could not be written" in err


def test_reader_refuses_an_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "site").write_text("mine")
    with pytest.raises(SystemExit) as e:
        reader.main(["--out", str(tmp_path / "site")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "is a file; name a folder for the site" in err
    assert err.count("\n") == 1 and (tmp_path / "site").read_text() == "mine"
