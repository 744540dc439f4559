"""Fixtures shared by the suite: the digits data set, a batch, and canonical initial weights."""

from __future__ import annotations

import os
import pathlib

# The suite's time is mostly XLA compiling small steps that then run a few hundred times. The
# tests (and the scripts they start) compile with XLA:CPU's classic elemental emitters instead
# of its fusion emitters, and with LLVM's optimisations off: a step compiles 3 to 6 times
# faster (measured: the cnn_bn step 1.5 s -> 0.25 s, the optimizer tests' MLP step 0.45 s ->
# 0.14 s) and runs about as fast at these sizes. XLA's own passes (fusion included) still run;
# the results are the same math, float64 to 1e-10 and float32 within rounding, which is what
# the suite checks. The training scripts outside the suite keep the defaults. Set before jax
# is imported; a flag already in XLA_FLAGS is left as it is.
for flag in (
    "--xla_backend_optimization_level=0",
    "--xla_llvm_disable_expensive_passes=true",
    "--xla_cpu_use_fusion_emitters=false",
    # one LLVM module per computation instead of several: the same IR, and measured 8% less
    # time on the optimizer and gpt test files (38.5 s -> 35.3 s on one worker)
    "--xla_cpu_parallel_codegen_split_count=1",
):
    if flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()

# Two host devices in every process of the suite, so that tests/test_parallel.py splits batches
# over a mesh in-process; one-device code runs on the first, as everywhere.
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "2")

# pytest-xdist runs one worker per core; each worker then keeps to one thread, or JAX's and
# torch's thread pools oversubscribe the machine (measured: 2 workers x 2 threads ran slower
# than one worker alone).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # added to any flags already set (make test-portable caps the instruction set there)
    threads = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {threads}".strip()
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

import atexit
import gc
import shutil
import sys
import tempfile

import numpy as np
import pytest

import shared.level0.mlp as l0
from shared import data
from shared.config import MLPConfig
from tools import reader

# One JAX compilation cache for the whole run, shared by the xdist workers and the scripts the
# tests start: the same computation compiled in another process (a resumed run's step, a
# crossover's evaluate, a dry run's step) is read back instead of compiled again. The main
# process makes a fresh folder; the workers and subprocesses inherit it through the environment.
JAX_CACHE = None  # the folder this process made, removed when the session ends
if not os.environ.get("PYTEST_XDIST_WORKER") and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    JAX_CACHE = tempfile.mkdtemp(prefix="paradigms-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = JAX_CACHE
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


@pytest.fixture(scope="session")
def digits() -> data.Dataset:
    return data.load("digits")


@pytest.fixture(scope="session")
def mlp_config(digits) -> MLPConfig:
    return MLPConfig(in_features=digits.in_features, out_features=digits.num_classes)


@pytest.fixture(scope="session")
def init_weights(mlp_config) -> dict[str, np.ndarray]:
    """Float64 canonical weights; each test casts them to its dtype."""
    return l0.init(mlp_config, seed=0)


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> pathlib.Path:
    """The reader's site, built once per process (`python -m tools.reader`)."""
    out = tmp_path_factory.mktemp("site")
    reader.build(str(out), runs=str(tmp_path_factory.mktemp("no-runs")))  # not the user's runs/
    return out


# The longest test files, longest first (measured, seconds on one worker of the 2-core CI
# machine: 33, 20, 15, 14, 13, 10). pytest-xdist hands each worker whole files (--dist loadfile:
# a file's compiled steps and fixtures are then built once, not once per worker, which took the
# suite from 114 s to 85 s) in collection order, so the long ones go first and the many short
# ones even out the end.
# test_keras comes first of all: its fixture starts one Keras process per backend, which then
# run beside the other worker's files rather than at the end.
LONGEST_FIRST = ["test_keras", "test_scripts", "test_rnn", "test_optimizers", "test_gpt",
                 "test_browser", "test_parallel", "test_ladder", "test_mlp"]  # fmt: skip


# Python's cyclic garbage collector runs each time 700 more objects are made than freed; tracing
# a JAX step makes hundreds of thousands, nearly all short-lived. A young generation of 50,000
# took 5% off a JAX-heavy test file (test_gpt.py alone: 13.9 s -> 13.1 s, the median of four
# runs); freezing the modules collection imported keeps them out of the older generations'
# passes too (its own effect was within this machine's noise).
gc.set_threshold(50_000, 20, 100)


def pytest_collection_finish(session):
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    """Run the longest files first; mark every float32 test `float32` (make test-portable
    selects them): a test whose parameters or name say float32, or that carries the mark."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: files stay whole
    for item in items:
        params = getattr(item, "callspec", None)
        values = [] if params is None else [str(v) for v in params.params.values()]
        if "float32" in item.name or "float32" in values:
            item.add_marker(pytest.mark.float32)


def pytest_sessionfinish(session, exitstatus):
    if JAX_CACHE is not None:
        shutil.rmtree(JAX_CACHE, ignore_errors=True)


def _exit_without_teardown():
    """An xdist worker has sent its results when this runs (the last exit handler: registered
    first, so called last). Python's own teardown then frees torch's and XLA's objects one by
    one, 1.5 s per worker that the whole run waits for; nothing is left to keep."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if os.environ.get("PYTEST_XDIST_WORKER"):
    atexit.register(_exit_without_teardown)
