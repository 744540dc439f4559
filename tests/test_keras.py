"""The Keras side against the OOP twin, on each of Keras's three backends (docs/keras.md).

One Keras model file per model runs on JAX, PyTorch and TensorFlow. Keras cannot switch backends
inside a process, so every Keras computation of a backend runs in one process started here
(`tests/keras_worker.py`), all three at once; the torch twin runs here, from the same canonical
weights on the same batches. Every registered model, on every backend, in float64 to F64_TOL:

- the forward pass (`training=False`), the loss and every gradient (the backend's own autodiff);
- `compile` and `fit`: the weights after the first update and after STEPS, the losses, and the
  optimizer's slots under torch's keys (Adam; the gpt under AdamW with `no_decay`, warmup,
  cosine and clipping);
- the cnn_dropout's pass with a dropout mask injected on both sides (its only pass);
- the command line (`python -m keras3.train`, in the worker's process): the cnn_bn trained with
  a save in the middle and resumed from it, against `oop.train` on the same flags.

In float32 the mlp and gpt trajectories are judged against the rounding control
(tests/rounding.py): the twins' gap against each side's gap to itself from a start one ulp away.
The other sides meet Keras through these same OOP runs (the suite proves them equal to the OOP
side), and `python -m shared.compare` compares any two runs from the command line.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import rounding
import torch
from pairs import F64_TOL, cast, max_abs_diff, oop_model, oop_trainer

import oop.convert as oconvert
import oop.models
import oop.optim as ooptim
import oop.sample
from oop.layers import Dropout
from shared import checkpoint, compare, data, registry
from shared.bench import report
from shared.config import (
    CNNBNConfig,
    CNNConfig,
    CNNDropoutConfig,
    GPTConfig,
    MLPConfig,
    RNNConfig,
    TrainConfig,
)  # fmt: skip
from shared.optim import OptimizerSpec, ScheduleSpec

BACKENDS = ("jax", "torch", "tensorflow")
STEPS = 12  # updates per float64 trajectory: momentum, warmup and the schedule at work
F32_STEPS = 30
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "traps"))  # the catalogue's harness
WORKER = os.path.join(ROOT, "tests", "keras_worker.py")

ADAM = OptimizerSpec.create("adam", lr=1e-2)
ADAMW = OptimizerSpec.create("adamw", lr=1e-2, weight_decay=0.1, no_decay=("*.bias", "ln*"),
                             clip_norm=0.5)  # fmt: skip
COSINE = ScheduleSpec(name="cosine", warmup_steps=3, eta_min=1e-4)


def _digits(batch: int):
    ds = data.load("digits")
    return ds, data.batches(ds.x_train, ds.y_train, batch, seed=0)


def _cases() -> dict[str, tuple]:
    """model -> (config, batches as float64, TrainConfig): small sizes, every part at work."""
    ds, stream = _digits(16)
    img = dict(in_channels=1, image_size=8, out_features=10, width=4)
    digits = [next(stream) for _ in range(STEPS)]
    adding = data.load("adding", 10)
    a_stream = data.batches(adding.x_train, adding.y_train, 8, seed=0)
    adding_b = [next(a_stream) for _ in range(STEPS)]
    text = data.load("pycorpus", 8)
    t_stream = data.batches(text.x_train, text.y_train, 4, seed=0)
    text_b = [next(t_stream) for _ in range(STEPS)]
    adam = TrainConfig(steps=STEPS, dtype="float64", optimizer=ADAM)
    gpt_train = TrainConfig(steps=STEPS, dtype="float64", optimizer=ADAMW, schedule=COSINE)
    rnn = dict(in_features=2, width=6, task="regress")
    return {
        "mlp": (MLPConfig(in_features=64, out_features=10, width=16, layers=2), digits, adam),
        "cnn": (CNNConfig(**img), digits, adam),
        "cnn_bn": (CNNBNConfig(**img), digits, adam),
        "cnn_dropout": (CNNDropoutConfig(**img, dropout=0.0), digits, adam),
        "rnn": (RNNConfig(cell="rnn", layers=1, **rnn), adding_b, adam),
        "gru": (RNNConfig(cell="gru", layers=2, **rnn), adding_b, adam),
        "lstm": (RNNConfig(cell="lstm", layers=2, **rnn), adding_b, adam),
        "gpt": (GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8,
                          vocab_size=text.in_features), text_b, gpt_train),
    }  # fmt: skip


CASES = _cases()
GRAPH_STEPS = 3  # the tensorflow-graph gpt's updates (the first one failed before the fix)
PLAIN_ADAM = TrainConfig(steps=GRAPH_STEPS, dtype="float64", optimizer=ADAM)  # no clip, no decay
PASSES = tuple(m for m in CASES if m != "cnn_dropout")  # its pass: test_dropout_with_...
F32_MODELS = ("mlp", "gpt")  # the gpt: AdamW, no_decay, warmup, cosine and clipping
MASKED = CNNDropoutConfig(in_channels=1, image_size=8, out_features=10, width=4, dropout=0.5)


def start_of(name: str, config) -> dict[str, np.ndarray]:
    """The canonical float64 start: the torch twin's own initial draw (seed 1)."""
    return _start(name, repr(config), config)


@functools.cache
def _start(name: str, key: str, config) -> dict[str, np.ndarray]:
    return oconvert.to_canonical(
        oop.models.MODELS[name].init_model(config, seed=1, dtype="float64")
    )


def proving(*sections, models=tuple(CASES)):
    """The models as parameters, each marked with the twin-file sections its test proves."""
    return [pytest.param(m, marks=pytest.mark.proves(registry.BY_NAME[m].file, *sections))
            for m in models]  # fmt: skip


def _floats(batches, dtype):
    return [tuple(data.as_dtype(np.asarray(a), np.dtype(dtype)) for a in b) for b in batches]


def _mask(config) -> np.ndarray:
    return np.random.default_rng(7).random((16, config.head_features)) > config.dropout


@functools.cache
def _f32_runs(name):
    """The float32 start and batches, and the runs `check_trajectories` asks for: the twins'
    and each rounding control's (start one ulp away, batches reordered, inputs jittered)."""
    config, batches, _ = CASES[name]
    start = cast(start_of(name, config), "float32")
    b32 = _floats((batches * -(-F32_STEPS // len(batches)))[:F32_STEPS], "float32")
    controls = [rounding.perturbed(start, b32, seed) for seed in rounding.CONTROL_ORDERS]
    return start, b32, [(start, b32), *controls]


def _f32_cfg(name) -> TrainConfig:
    cfg = CASES[name][2]
    return TrainConfig(
        steps=F32_STEPS,
        dtype="float32",
        optimizer=cfg.optimizer,
        schedule=ScheduleSpec(**{**cfg.schedule.__dict__, "decay_steps": None}),
    )


# character models for keras3.sample: a GRU and a GPT, their weights then redrawn (the gpt's
# window of 8 is shorter than prompt and text, so it slides as the twins' caches do)
CHAR = ["--dataset", "pycorpus", "--dtype", "float64", "--steps", "1", "--eval-every", "0",
        "--no-progress", "--overwrite"]  # fmt: skip
CHAR_MODELS = {"gru": ["--model", "gru", "--seq-len", "16", "--width", "8", "--layers", "2", *CHAR],
               "gpt": ["--model", "gpt", "--seq-len", "8", "--layers", "1", "--heads", "2",
                       "--width", "16", *CHAR]}  # fmt: skip
CHAR_TOKENS = 12
SCRIPT_FLAGS = ["--model", "cnn_bn", "--dataset", "digits", "--width", "4", "--batch-size", "16",
                "--dtype", "float64", "--steps", "8", "--eval-every", "0", "--save-every", "4",
                "--no-progress", "--overwrite"]  # fmt: skip


@functools.cache
def _jobs(tmp: str, backend: str) -> list[tuple]:
    """The jobs every backend's worker runs, in the order the tests read their results."""
    jobs = []
    for name, (config, batches, cfg) in CASES.items():
        start = start_of(name, config)
        if name != "cnn_dropout":  # its pass is the one with a mask, below
            jobs.append(("pass", name, config, start, _floats(batches[:1], "float64")[0],
                         "float64", None))  # fmt: skip
        jobs.append(("train", name, config, cfg, [(start, _floats(batches, "float64"))]))
        if name == "gpt" and backend == "tensorflow":  # a graph without XLA, as the bench's
            runs = [(start, _floats(batches[:GRAPH_STEPS], "float64"))]
            jobs.append(("train", name, config, PLAIN_ADAM, runs, False))  # tf-graph
    start = start_of("cnn_dropout", MASKED)
    jobs.append(("pass", "cnn_dropout", MASKED, start, _floats(CASES["mlp"][1][:1], "float64")[0],
                 "float64", [_mask(MASKED)]))  # fmt: skip
    for name in F32_MODELS:
        jobs.append(("train", name, CASES[name][0], _f32_cfg(name), _f32_runs(name)[2]))
    # the command line: 8 updates from the OOP run's init with a save at 4, then resumed at 4
    init, out = os.path.join(tmp, "oop", "init.safetensors"), os.path.join(tmp, f"keras-{backend}")
    flags = [*SCRIPT_FLAGS, "--backend", backend]
    jobs.append(("script", [*flags, "--init", init, "--out", out]))
    jobs.append(("script", [*flags, "--resume", os.path.join(out, "step-4.safetensors"),
                            "--out", out + "-resumed"]))  # fmt: skip
    # the bench: fit as timed, each backend's default compile (XLA on TensorFlow skipped: the
    # train jobs run it) and TensorFlow's graph without XLA
    skip = ["--skip", "tensorflow-xla"] if backend == "tensorflow" else []
    jobs.append(("bench", ["--quick", "--threads", "1", "--backend", backend, *skip]))
    for model in CHAR_MODELS:  # greedy text from the OOP side's checkpoints, then draws
        greedy = ["--checkpoint", os.path.join(tmp, model, "final.safetensors"), "--backend",
                  backend, "--prompt", "def f(", "--max-new-tokens", str(CHAR_TOKENS)]  # fmt: skip
        jobs.append(("sample", [*greedy, "--temperature", "0"]))
        if model == "gru" and backend == "torch":  # the draws on one backend: the same code
            jobs += [("sample", [*greedy, "--seed", s]) for s in ("1", "1", "2")]
            jobs.append(("sample", [*greedy, "--top-k", "1"]))  # greedy, whatever the temperature
    if backend == "jax":  # the pure step against fit: BatchNorm's statistics, Dropout's seeds
        for name, config in (("cnn_bn", CASES["cnn_bn"][0]), ("cnn_dropout", MASKED)):
            jobs.append(("stateless", name, config, CASES[name][2], start_of(name, config),
                         _floats(CASES[name][1], "float64")))  # fmt: skip
    return jobs + _trap_jobs(backend)  # last: _trap_results reads them from the end


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory) -> dict[str, list]:
    """Every backend's results, from one worker process per backend, run side by side."""
    from oop import train as oop_train

    tmp = str(tmp_path_factory.mktemp("keras"))
    assert oop_train.main([*SCRIPT_FLAGS, "--out", os.path.join(tmp, "oop")]) == 0
    rng = np.random.default_rng(0)
    for model, flags in CHAR_MODELS.items():  # what keras3.sample reads
        assert oop_train.main([*flags, "--out", os.path.join(tmp, model)]) == 0
        path = os.path.join(tmp, model, "final.safetensors")
        c = checkpoint.read(path)  # weights drawn N(0, 1): greedy text that varies with context
        drawn = {k: rng.normal(0, 1, v.shape) if k in c.weights and v.dtype.kind == "f" else v
                 for k, v in c.tensors.items()}  # fmt: skip
        checkpoint.save(path, drawn, model=c.model, model_config=c.model_config,
                        train_config=c.train_config, step=c.step, side=c.side)  # fmt: skip
    return run_workers(tmp, {backend: _jobs(tmp, backend) for backend in BACKENDS})


def run_workers(tmp: str, jobs: dict[str, list]) -> dict[str, list]:
    """`{backend: its jobs}` -> `{backend: their results}` (and `"tmp"`), one worker process
    per backend, all at once; a failed worker fails with its output's end."""
    procs = {}
    for backend, its_jobs in jobs.items():
        path = os.path.join(tmp, f"jobs-{backend}.pkl")
        with open(path, "wb") as f:
            pickle.dump(its_jobs, f)
        threads = {
            "OMP_NUM_THREADS": "1",
            "TF_NUM_INTRAOP_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1",
        }  # three workers share the cores
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        env.update(threads)  # and no compilation cache: nothing in a worker compiles twice
        procs[backend] = subprocess.Popen(
            [sys.executable, WORKER, backend, path, path + ".out"], cwd=tmp, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    results = {"tmp": tmp}
    for backend, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"the {backend} worker failed:\n{out[-3000:]}"
        with open(os.path.join(tmp, f"jobs-{backend}.pkl.out"), "rb") as f:
            done = pickle.load(f)
        assert done["backend"] == backend
        results[backend] = done["results"]
    return results


def _result(results, backend, kind, name, *, masked=False, dtype="float64", jit="auto"):
    jobs = _jobs(results["tmp"], backend)
    for job, res in zip(jobs, results[backend], strict=True):
        if job[0] != kind or job[1] != name:
            continue
        if kind == "pass" and (job[6] is not None) != masked:
            continue
        if kind == "train" and (job[3].dtype != dtype or (job[5:] or ("auto",))[0] != jit):
            continue
        return job, res
    raise KeyError((kind, name))


# -- the torch twin --
def _oop_pass(name, config, weights, batch, masks=None):
    module = oop_model(name, config, weights, "float64")
    x, y = map(torch.from_numpy, batch)
    module.eval()
    with torch.no_grad():
        outputs = module(x).numpy()
    module.train()
    layers = [m for m in module.modules() if isinstance(m, Dropout)]
    for layer, mask in zip(layers, masks or [], strict=False):
        layer.mask = torch.from_numpy(mask)
    loss = oop.models.MODELS[name].loss_fn(module, x, y)
    loss.backward()
    grads = {k: p.grad.numpy() for k, p in module.named_parameters()}
    return outputs, float(loss), grads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", proving("model", "loss", models=PASSES))
def test_forward_loss_and_gradients_in_float64(keras_results, backend, name):
    (_, _, config, weights, batch, _, _), got = _result(keras_results, backend, "pass", name)
    outputs, loss, grads = _oop_pass(name, config, weights, batch)
    assert max_abs_diff(got["outputs"], outputs) <= F64_TOL
    assert abs(got["loss"] - loss) <= F64_TOL
    assert got["grads"].keys() == grads.keys()
    assert max_abs_diff(got["grads"], grads) <= F64_TOL


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.proves("cnn_dropout", "model")
def test_dropout_with_an_injected_mask(keras_results, backend):
    """Inference ignores dropout; in training both sides zero the same features."""
    job, got = _result(keras_results, backend, "pass", "cnn_dropout", masked=True)
    outputs, loss, grads = _oop_pass("cnn_dropout", MASKED, job[3], job[4], job[6])
    assert max_abs_diff(got["outputs"], outputs) <= F64_TOL
    assert abs(got["loss"] - loss) <= F64_TOL and max_abs_diff(got["grads"], grads) <= F64_TOL
    unmasked = _oop_pass("cnn_dropout", MASKED, job[3], job[4])[1]
    assert abs(unmasked - loss) > 1e-3, "the mask changed nothing: the check would prove nothing"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampling_greedily_prints_the_twins_text_and_draws_repeat_by_seed(
    keras_results, backend, capsys
):
    """`keras3.sample` recomputes the model over what it has read where the twins decode step
    by step (the GPT's window sliding past block_size): at temperature 0 it prints what
    `oop.sample` prints from the same checkpoint. On torch (the draws' code is the same on
    every backend), top-k 1 is greedy too, and the draws are Keras's own: the same seed gives
    the same text, another seed another."""
    texts = [res for job, res in zip(_jobs(keras_results["tmp"], backend), keras_results[backend],
                                     strict=True) if job[0] == "sample"]  # fmt: skip
    greedy = {}
    for model in CHAR_MODELS:
        argv = ["--checkpoint", os.path.join(keras_results["tmp"], model, "final.safetensors"),
                "--prompt", "def f(", "--max-new-tokens", str(CHAR_TOKENS), "--temperature",
                "0"]  # fmt: skip
        assert oop.sample.main(argv) == 0
        greedy[model] = capsys.readouterr().out
    assert [texts[0], texts[-1]] == [greedy["gru"], greedy["gpt"]]
    for text in greedy.values():  # past the gpt's window; not one character over and over
        assert len(text) == len("def f(") + CHAR_TOKENS + 1 and len(set(text[6:-1])) >= 2, text
    if backend == "torch":
        a, b, c, top1 = texts[1:5]
        assert a == b and a != c and a.startswith("def f(") and top1 == greedy["gru"]


def test_the_bench_times_fit_on_each_backend_and_merges_one_report(keras_results, tmp_path):
    """Each worker's `keras3.bench` report (`--quick`: Keras's default on JAX, jit_compile, and
    on torch, eager; on TensorFlow the graph without XLA), merged as `--backend all`
    merges them: every row timed, the JAX backend's FLOP count given to the others, and the
    report's table lists them beside any side's."""
    from keras3 import bench

    reports = [res for b in BACKENDS
               for job, res in zip(_jobs(keras_results["tmp"], b), keras_results[b], strict=True)
               if job[0] == "bench"]  # fmt: skip
    merged = bench.merge(reports)
    rows = merged["results"]
    assert [r["variant"] for r in rows] == ["jax-jit", "torch-eager", "tensorflow-graph"]
    flops = rows[0]["flops_per_step"]
    assert flops >= rows[0]["analytic_flops_per_step"] > 0  # XLA counts more than the products
    for r in rows:
        assert r["step_ms_median"] > 0 and r["flops_per_step"] == flops, r["variant"]
        assert r["roofline_fraction"] > 0 and r["warmup_s"] >= 0, r["variant"]
    assert {"keras", "jax", "torch", "tensorflow"} <= set(merged["versions"])
    path, md = tmp_path / "keras3.json", tmp_path / "bench.md"
    path.write_text(json.dumps(merged))
    assert report.main([str(path), "--md", str(md), "--baseline", "keras3:torch-eager"]) == 0
    assert "keras3:tensorflow-graph" in md.read_text()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", proving("train step"))
def test_fit_one_step_and_a_run_in_float64(keras_results, backend, name):
    _, [got] = _result(keras_results, backend, "train", name)
    twin = _twin_run(name)
    assert max_abs_diff(got["first"], twin.at[1]) <= F64_TOL
    assert max_abs_diff(got["losses"], twin.losses) <= F64_TOL
    assert max_abs_diff(got["weights"], twin.weights) <= F64_TOL
    assert got["opt_state"].keys() == twin.opt_state.keys()
    assert max_abs_diff(got["opt_state"], twin.opt_state) <= F64_TOL


@pytest.mark.proves("gpt", "train step")
def test_tensorflow_without_xla_hands_dense_gradients_to_the_optimizer(keras_results):
    """`jit_compile=False` on TensorFlow (a `tf.function` graph: the bench's tensorflow-graph)
    gives the embedding's gradient as `IndexedSlices`, which `keras3.optim` adds to zeros (torch's
    is dense): `fit` still equals the twin, update for update. Plain Adam, as the bench's: the
    gpt case's clipping and coupled decay would make the gradient dense before the update."""
    _, [got] = _result(keras_results, "tensorflow", "train", "gpt", jit=False)
    config, batches, _ = CASES["gpt"]
    start, batches = start_of("gpt", config), _floats(batches[:GRAPH_STEPS], "float64")
    twin = oop_trainer("gpt", config, PLAIN_ADAM, at=(1,), opt_state=True)(start, batches)
    assert max_abs_diff(got["losses"], twin.losses) <= F64_TOL
    assert max_abs_diff(got["weights"], twin.weights) <= F64_TOL
    assert max_abs_diff(got["opt_state"], twin.opt_state) <= F64_TOL


@functools.cache
def _twin_run(name: str):
    """The torch twin's float64 run of a model: the same start and batches as every backend's."""
    config, batches, cfg = CASES[name]
    start, batches = start_of(name, config), _floats(batches, "float64")
    if name == "cnn_dropout":  # the twin's Dropout takes its masks with the batch: keep all
        batches = [(x, y, np.ones((len(x), config.head_features), bool)) for x, y in batches]
    return oop_trainer(name, config, cfg, at=(1,), opt_state=True)(start, batches)


def test_an_unknown_backend_is_refused_in_one_line(capsys):
    """Before keras is imported, so the test process stays without it."""
    from keras3 import train

    with pytest.raises(SystemExit) as e:
        train.main(["--backend", "mxnet", "--dry-run"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "invalid choice: 'mxnet'" in err[0], err
    assert "keras" not in sys.modules


class Precomputed:
    """A `rounding.Trainer` whose runs the worker trained: it finds the run of the start and
    batches it is given, so `check_trajectories` judges Keras's own trajectories."""

    def __init__(self, runs, results):
        self.runs = runs
        self.results = [rounding.Trajectory(r["losses"], r["weights"]) for r in results]

    def __call__(self, start, batches):
        return self.results[which(self.runs, start, batches)]


def which(runs, start, batches) -> int:
    """The index of the run `(start, batches)` among `runs`."""
    for i, (w, b) in enumerate(runs):
        same_w = all(np.array_equal(w[k], start[k]) for k in w)
        same_b = all(np.array_equal(p, q) for x, y in zip(b, batches, strict=True)
                     for p, q in zip(x, y, strict=True))  # fmt: skip
        if same_w and same_b:
            return i
    raise KeyError("no such run was asked of the worker")


@functools.cache
def _twin32(name: str, i: int):
    """The torch twin's float32 run `i` of `_f32_runs(name)`, once for all three backends."""
    config = CASES[name][0]
    return oop_trainer(name, config, _f32_cfg(name))(*_f32_runs(name)[2][i])


class Twin32:
    """The torch twin as a `rounding.Trainer` over the float32 runs, each trained once."""

    def __init__(self, name):
        self.name = name

    def __call__(self, start, batches):
        return _twin32(self.name, which(_f32_runs(self.name)[2], start, batches))


@pytest.mark.float32
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", proving("train step", models=F32_MODELS))
def test_fit_in_float32_against_the_rounding_control(keras_results, backend, name):
    job, got = _result(keras_results, backend, "train", name, dtype="float32")
    start, batches, runs = _f32_runs(name)
    verdict = rounding.check_trajectories(
        Twin32(name), Precomputed(runs, got), start, batches, "float32",
        what=f"keras on {backend} against oop",
    )  # fmt: skip
    print(name, backend, verdict)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.proves("cnn_bn", "train step")
def test_the_command_line_resumes_and_equals_oop_train(keras_results, backend):
    """`python -m keras3.train` (in the worker): 4 updates with a save, resumed to 8, against
    `python -m oop.train` on the same flags from the same init."""
    tmp = keras_results["tmp"]
    twin = compare.load_run(os.path.join(tmp, "oop"))
    for folder, first in ((f"keras-{backend}", 1), (f"keras-{backend}-resumed", 5)):
        run = compare.load_run(os.path.join(tmp, folder))
        with open(os.path.join(tmp, folder, "config.json")) as f:
            written = json.load(f)
        assert written["side"] == "keras3" and written["versions"]["backend"] == backend
        steps, gaps = compare.loss_differences(twin, run)
        assert list(steps) == list(range(first, 9)) and gaps.max() <= F64_TOL
        assert compare.max_param_difference(twin, run) <= F64_TOL


@pytest.mark.parametrize("name", ["cnn_bn", "cnn_dropout"])
@pytest.mark.proves("cnn_bn", "train step")
def test_the_pure_jax_step_equals_fit(keras_results, name):
    """`keras3.stateless`: `stateless_call` and `stateless_apply` inside `jax.jit`, from the
    same variables as `fit` (the cnn_dropout with p = 0.5: the seed generators' states thread
    through the pure step as BatchNorm's statistics do), the same weights after 12 updates."""
    got = next(
        r
        for job, r in zip(_jobs(keras_results["tmp"], "jax"), keras_results["jax"], strict=True)
        if job[0] == "stateless" and job[1] == name
    )
    gap = max_abs_diff(got["pure"], got["fit"])
    print(name, f"pure step against fit: {gap:.1e}")
    assert gap <= F64_TOL
    start = start_of(name, CASES["cnn_bn"][0] if name == "cnn_bn" else MASKED)
    assert max_abs_diff(got["fit"], start) > 1e-3, "nothing trained: the check proves nothing"


# -- traps: what Keras's own blocks compute otherwise (docs/keras.md, docs/traps.md) --
# Each is a naive/fixed pair in the catalogue's form (tests/traps/harness.py), computed in the
# workers already running (on the backend named), judged here against the torch reference.
TRAP_BACKEND = {"keras-adam-epsilon": "torch", "keras-sgd-momentum-schedule": "torch",
                "keras-batchnorm-variance": "torch", "keras-float64-promotion": "jax",
                "keras-tensorflow-gelu": "tensorflow"}  # fmt: skip
TRAP_ADAM = OptimizerSpec.create("adam", lr=1e-2)
TRAP_SGD = OptimizerSpec.create("sgd", lr=0.1, momentum=0.9)
TRAP_STEP = ScheduleSpec(name="step", step_size=20, gamma=0.1)


@functools.cache
def _trap_inputs() -> dict[str, object]:
    rng = np.random.default_rng(0)
    images = [rng.normal(1.0, 2.0, (8, 6, 6, 4)) for _ in range(5)]  # NHWC
    return {"images": images, "norm": [rng.normal(0.5, 3.0, (4, 6, 32)) for _ in range(5)],
            "gelu": [rng.normal(0.0, 3.0, (2000,)) for _ in range(5)]}  # fmt: skip


def _trap_jobs(backend: str) -> list[tuple]:
    import harness

    config, weights, batches = harness.problem()
    jobs = []
    if backend == "torch":
        for port in ("adam", "fixed"):
            jobs.append(("trap_fit", port, config, weights, batches, TRAP_ADAM, ScheduleSpec(),
                         harness.STEPS))  # fmt: skip
        for port in ("sgd", "fixed"):
            jobs.append(("trap_fit", port, config, weights, batches, TRAP_SGD, TRAP_STEP,
                         harness.STEPS))  # fmt: skip
        for port in ("naive", "fixed"):
            jobs.append(("trap_batchnorm", port, _trap_inputs()["images"]))
    if backend == "jax":
        jobs += [("trap_op", "layernorm", p, _trap_inputs()["norm"]) for p in ("naive", "fixed")]
    if backend == "tensorflow":
        jobs += [("trap_op", "gelu", p, _trap_inputs()["gelu"]) for p in ("naive", "fixed")]
    return jobs


def _trap_results(results, backend: str) -> list:
    n = len(_trap_jobs(backend))
    return results[backend][len(results[backend]) - n :]


@functools.cache
def _torch_references():
    import harness

    adam = harness.run_oop(lambda named: torch.optim.Adam(harness.params_of(named), lr=1e-2))
    sgd = harness.run_oop(
        lambda named: ooptim.make_optimizer(TRAP_SGD, named),
        scheduler=lambda o: ooptim.make_scheduler(TRAP_SGD, TRAP_STEP, o, harness.STEPS),
    )  # fmt: skip
    bn = torch.nn.BatchNorm2d(4, dtype=torch.float64).train()
    stats = []
    for x in _trap_inputs()["images"]:
        bn(torch.from_numpy(x.transpose(0, 3, 1, 2)))
        stats.append((bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()))
    norm = [torch.nn.functional.layer_norm(torch.from_numpy(x), (32,)).numpy()
            for x in _trap_inputs()["norm"]]  # fmt: skip
    gelu = [torch.nn.functional.gelu(torch.from_numpy(x)).numpy() for x in _trap_inputs()["gelu"]]
    return {"adam": adam, "sgd": sgd, "bn": stats, "norm": norm, "gelu": gelu}


def keras_traps(results) -> list:
    """The Keras entries of the catalogue, their ports' gaps read from the workers' results."""
    import harness

    ref = _torch_references()
    fit = dict(zip(("adam", "adam-fixed", "sgd", "sgd-fixed", "bn", "bn-fixed"),
                   _trap_results(results, "torch"), strict=True))  # fmt: skip
    norm = _trap_results(results, "jax")
    gelu = _trap_results(results, "tensorflow")

    def stats_gap(ours):
        return np.array([max(np.abs(a - c).max(), np.abs(b - d).max())
                         for (a, b), (c, d) in zip(ours, ref["bn"], strict=True)])  # fmt: skip

    def op_gap(ours, theirs):
        return np.array([np.abs(a - b).max() for a, b in zip(ours, theirs, strict=True)])

    T = harness.Trap
    return [
        T("keras-adam-epsilon", "keras Adam adds epsilon to the uncorrected sqrt(v)",
          "max |Δparam|", lambda: harness.max_gap(fit["adam"], ref["adam"]),
          lambda: harness.max_gap(fit["adam-fixed"], ref["adam"]), naive_at_least=1e-5),
        T("keras-sgd-momentum-schedule", "keras SGD keeps the lr inside the momentum buffer",
          "max |Δparam|", lambda: harness.max_gap(fit["sgd"], ref["sgd"]),
          lambda: harness.max_gap(fit["sgd-fixed"], ref["sgd"]), naive_at_least=1e-3),
        T("keras-batchnorm-variance", "keras BatchNormalization's running variance is biased",
          "max |Δ running stats|", lambda: stats_gap(fit["bn"]), lambda: stats_gap(fit["bn-fixed"]),
          naive_at_least=2e-3),  # measured 5.8e-3 after 5 batches of 288 values a channel
        T("keras-float64-promotion", "Keras computes float64 in float32 on JAX and torch",
          "max |Δ LayerNorm output|", lambda: op_gap(norm[0], ref["norm"]),
          lambda: op_gap(norm[1], ref["norm"]), naive_at_least=1e-7),
        T("keras-tensorflow-gelu", "TensorFlow's exact GELU is 5e-9 off in float64",
          "max |Δ GELU|", lambda: op_gap(gelu[0], ref["gelu"]),
          lambda: op_gap(gelu[1], ref["gelu"]), naive_at_least=1e-9),
    ]  # fmt: skip


def traps_now() -> list:
    """The Keras traps computed afresh, their jobs alone (`make traps` draws them)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return keras_traps(run_workers(tmp, {b: _trap_jobs(b) for b in set(TRAP_BACKEND.values())}))


def _trap(results, name):
    return next(t for t in keras_traps(results) if t.name == name)


@pytest.mark.parametrize("name", list(TRAP_BACKEND))
def test_a_keras_traps_naive_port_diverges(keras_results, name):
    import harness

    print(name, f"{harness.check_naive(_trap(keras_results, name)):.2e}")


@pytest.mark.parametrize("name", list(TRAP_BACKEND))
def test_a_keras_traps_fixed_port_matches(keras_results, name):
    import harness

    print(name, f"{harness.check_fixed(_trap(keras_results, name)):.2e}")
