"""Bad folders and faults for the training scripts, on both sides: a refusal (exit 2) comes
before any data or model is built and changes nothing; a fault mid-run (exit 1) stops with one
line naming the file, the reason and the last good checkpoint, which stays intact. One more bad
--out is one more row of BAD_OUT; one more fault, one more row of FAULTS."""

from __future__ import annotations

import errno
import os
import resource

import pytest

import functional.train
import oop.train
from shared import checkpoint, data, metrics, run

SIDES = {"functional": functional.train, "oop": oop.train}
SMALL = ["--dataset", "moons", "--width", "8", "--eval-every", "0", "--no-progress"]


def train(side, out, *flags) -> int:
    try:
        return SIDES[side].main([*SMALL, *flags, "--out", str(out)])
    except SystemExit as e:  # argparse's refusals
        return e.code


def files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _a_file(tmp_path):
    (tmp_path / "f").write_text("mine")
    return tmp_path / "f"


def _a_run(tmp_path):
    assert train("oop", tmp_path / "run", "--steps", "2") == 0
    return tmp_path / "run"


# (what --out is, how to make it, the one line)
BAD_OUT = [
    ("empty", lambda tmp: "", "--out is empty; name the run's folder"),
    ("a file", lambda tmp: _a_file(tmp), "is a file; name a folder"),
    ("below a file", lambda tmp: _a_file(tmp) / "run", "f is a file, not a folder"),
    ("a run", _a_run, "already holds a run (config.json, final.safetensors, init.safetensors"),
]


@pytest.mark.parametrize("what,make,message", BAD_OUT, ids=[b[0] for b in BAD_OUT])
@pytest.mark.parametrize("side", SIDES)
def test_a_bad_out_is_refused_at_once_and_changes_nothing(
    side, what, make, message, tmp_path, capsys, monkeypatch
):
    out = make(tmp_path)
    capsys.readouterr()
    before = files(tmp_path)

    def no_data(*args, **kwargs):
        raise AssertionError("the data was built before --out was checked")

    monkeypatch.setattr(data, "load", no_data)
    assert train(side, out, "--steps", "2") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert files(tmp_path) == before


def test_an_unwritable_out_is_refused_and_the_old_run_stays(tmp_path, capsys, monkeypatch):
    """What a read-only or full folder does on creating the run's files (root passes every
    permission check, so the failure is made here)."""
    old = _a_run(tmp_path)
    before = files(old)
    real = run.MetricsWriter

    def read_only(folder):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(folder, "m"))

    monkeypatch.setattr(run, "MetricsWriter", read_only)
    assert train("functional", old, "--steps", "2", "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"cannot write the run folder {old}" in err and "Permission denied" in err, err
    assert err.count("\n") == 1 and files(old) == before  # the old run came back
    monkeypatch.setattr(run, "MetricsWriter", real)


def _failing_save(monkeypatch, after: int):
    """checkpoint.save fails as on a full disk from its `after + 1`-th call on, leaving the
    temporary file of a cut-short write behind it, as a kill does."""
    real, calls = checkpoint.save, []

    def save(path, *args, **kwargs):
        calls.append(path)
        if len(calls) > after:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", save)


def _failing_metrics(monkeypatch, after: int, interrupt: bool = False):
    """A metrics write fails (a quota), or Ctrl-C arrives, from the `after + 1`-th record on."""
    real, calls = metrics.MetricsWriter.write, []

    def write(self, record):
        calls.append(record)
        if len(calls) > after and interrupt:
            raise KeyboardInterrupt
        if len(calls) > after:
            raise OSError(errno.EDQUOT, "Disk quota exceeded", self.path)
        return real(self, record)

    monkeypatch.setattr(metrics.MetricsWriter, "write", write)


# (what fails, how, the one line, the last good checkpoint)
FAULTS = [
    (
        "a step-N write",
        lambda mp: _failing_save(mp, after=1),
        "step-4.safetensors failed at update 4 (",
        "init.safetensors",
    ),
    (
        "the final write",
        lambda mp: _failing_save(mp, after=3),
        "final.safetensors failed at update 12 (",
        "step-8.safetensors",
    ),
    (
        "a metrics write",
        lambda mp: _failing_metrics(mp, after=6),
        "metrics.jsonl: Disk quota exceeded; stopped",
        "step-4.safetensors",
    ),
    (
        "Ctrl-C",
        lambda mp: _failing_metrics(mp, after=6, interrupt=True),
        "interrupted; stopped",
        "step-4.safetensors",
    ),
]


@pytest.mark.parametrize("what,fault,message,good", FAULTS, ids=[f[0] for f in FAULTS])
@pytest.mark.parametrize("side", SIDES)
def test_a_write_failing_mid_run_stops_in_one_line_naming_the_last_good_checkpoint(
    side, what, fault, message, good, tmp_path, capsys, monkeypatch
):
    fault(monkeypatch)
    code = train(side, tmp_path, "--steps", "12", "--save-every", "4")
    err = capsys.readouterr().err
    assert code == 1 and message in err and err.count("\n") == 1, err
    assert f"The last good checkpoint is {tmp_path / good}" in err, err
    checkpoint.read(tmp_path / good)  # intact
    if what == "Ctrl-C":
        assert err.rstrip().endswith(f"Go on with --resume {tmp_path / good}"), err
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_a_real_file_size_limit_mid_run_is_one_line(tmp_path, capsys):
    """A file size limit of 4 KiB (`ulimit -f 4`, set here with setrlimit): the init file
    (1.9 kB) is written, the step-N file with Adam's state (9 kB) is refused by the kernel
    (EFBIG; Python ignores SIGXFSZ) and left out whole."""
    out = tmp_path / "run"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        code = train("oop", out, "--steps", "20", "--save-every", "10")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1, err
    assert "step-10.safetensors failed at update 10 (" in err, err
    assert "File too large); stopped. The last good checkpoint is " in err
    assert checkpoint.read(out / "init.safetensors").step == 0


@pytest.mark.parametrize("side", SIDES)
def test_a_resumed_run_that_diverges_names_the_file_it_resumed(side, tmp_path, capsys):
    """SGD at lr 1e10 diverges at update 3; resumed from step-1, it diverges again. The file
    resumed is the last good one, and the advice is --init (a resume keeps its lr)."""
    flags = ["--optimizer", "sgd", "--lr", "1e10", "--steps", "20", "--save-every", "1"]
    assert train(side, tmp_path / "a", *flags) == 1
    step1 = tmp_path / "a" / "step-1.safetensors"
    capsys.readouterr()
    code = SIDES[side].main(["--resume", str(step1), "--out", str(tmp_path / "b"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert f"The last good checkpoint is {step1}, the one resumed" in err
    assert f"start a new run from {step1} with --init and a lower --lr (now 1e+10)" in err
    assert not (tmp_path / "b").exists() or not os.listdir(tmp_path / "b")  # nothing half-made


def test_leftovers_of_a_killed_save_are_cleared_and_do_not_count_as_a_run(tmp_path):
    (tmp_path / ".tmp-k1ll3d.safetensors").write_bytes(b"cut short")
    (tmp_path / "notes.txt").write_text("mine")
    assert train("oop", tmp_path, "--steps", "2") == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".tmp", "notes"))) == [
        "notes.txt"
    ]
    assert checkpoint.read(tmp_path / "final.safetensors").step == 2
