"""What a run folder keeps and removes: `--overwrite` replaces only the files a run writes, and
only once the new run has its first checkpoint; until then the old run can always come back
(a failed start, an exception, a kill). Nothing a run did not write is ever deleted."""

from __future__ import annotations

import numpy as np
import pytest

from shared.config import MLPConfig, TrainConfig
from shared.errors import Refused
from shared.run import REPLACED, NonFiniteLoss, RunFolder, RunOptions

CONFIG = MLPConfig(in_features=2, out_features=2, width=4, layers=1)
WEIGHTS = {k: np.zeros(v, np.float32) for k, v in CONFIG.weight_shapes().items()}
OLD_RUN = {"config.json": b"{}", "metrics.jsonl": b"", "init.safetensors": b"old init",
           "step-5.safetensors": b"old step", "final.safetensors": b"old final"}  # fmt: skip
USERS = {"pretrained.safetensors": b"mine", "notes.txt": b"mine", "step-best.safetensors": b"mine"}


def folder(out, overwrite=True) -> RunFolder:
    return RunFolder(
        RunOptions(str(out), None, False, overwrite), TrainConfig(), CONFIG, "functional", {}
    )


def files(out) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


@pytest.fixture
def old_run(tmp_path):
    for name, content in {**OLD_RUN, **USERS, ".tmp-x1.safetensors": b"cut short"}.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


def test_a_folder_of_the_users_files_is_no_run(tmp_path):
    for name, content in USERS.items():
        (tmp_path / name).write_bytes(content)
    with folder(tmp_path, overwrite=False) as run:
        run.save("init", WEIGHTS, 0)
    assert {k: v for k, v in files(tmp_path).items() if k in USERS} == USERS


def test_a_run_is_refused_without_overwrite_and_left_as_it_was(old_run):
    before = files(old_run)
    with pytest.raises(Refused, match="already holds a run"):
        folder(old_run, overwrite=False)
    assert files(old_run) == before


def test_overwrite_removes_the_old_run_once_the_new_one_has_a_checkpoint(old_run):
    run = folder(old_run)
    assert files(old_run).keys() >= USERS.keys()  # set aside, not yet removed
    assert (old_run / REPLACED / "final.safetensors").read_bytes() == b"old final"
    with run:
        run.save("init", WEIGHTS, 0)
    left = files(old_run)
    assert {k: left[k] for k in USERS} == USERS  # the user's files stay, a step-best too
    assert "step-5.safetensors" not in left and "final.safetensors" not in left
    assert ".tmp-x1.safetensors" not in left and not (old_run / REPLACED).exists()


@pytest.mark.parametrize("how", ["exception", "non-finite init"])
def test_a_new_run_failing_before_its_first_checkpoint_brings_the_old_one_back(old_run, how):
    before = files(old_run)
    run = folder(old_run)
    if how == "exception":  # --seed -1 once failed here, after --overwrite had wiped the run
        with pytest.raises(ValueError), run:
            raise ValueError("a start-up check that failed")
    else:  # weights that turned NaN before the first file
        with pytest.raises(NonFiniteLoss), run:
            run.save("init", {k: v + np.nan for k, v in WEIGHTS.items()}, 0)
    assert files(old_run) == before and not (old_run / REPLACED).exists()


def test_an_overwrite_killed_before_its_first_checkpoint_is_undone_by_the_next_run(old_run):
    before = files(old_run)
    folder(old_run)  # killed here: the old run set aside, the new config.json written
    assert (old_run / REPLACED).is_dir()
    with pytest.raises(Refused, match="already holds a run"):  # the old run is back first
        folder(old_run, overwrite=False)
    assert files(old_run) == before
