"""The Keras side's checks on one backend, in one process: `tests/keras_worker.py B JOBS OUT`.

Keras cannot switch backends inside a process, so `tests/test_keras.py` starts this script once
per backend with every job of that backend in a pickle (`JOBS`), and compares what it writes
(`OUT`, a pickle of results in the same order) with the twins, which it computes itself. A job:

- `("pass", model, config, weights, batch, dtype, masks)`: outputs with `training=False`, and
  the loss and every gradient by canonical name with `training=True` (the masks, if any, set on
  the Keras Dropout layers first), through this backend's own autodiff (the bridge below).
- `("train", model, config, cfg, runs)`: `compile` and `fit` under the `TrainConfig`, once per
  `(start weights, batches)` in `runs`, on one model whose compiled step serves every run
  (weights, slots and step count reset in between): per run the losses, the canonical weights
  after the first update and at the end, and the optimizer state at the end.
- `("script", argv)`: `keras3.train.main(argv)` in this process, the command line's path.

Only the tests import this file and its bridge; the side's model files import keras alone.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras3 import backend  # noqa: E402

BACKEND = sys.argv[1] if __name__ == "__main__" else os.environ.get("KERAS_BACKEND", "jax")


class Unused(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Keras tries optional libraries at import time: scikit-learn (its wrappers) and pandas
    (its data adapters) on every backend, JAX (the orbax checkpoint callback) on torch and
    TensorFlow. It guards each with `except ImportError`, and no job uses them; importing them
    cost each worker 0.8 to 1.8 s of a 2-core CPU. Here importing one raises
    ModuleNotFoundError, naming it, while `importlib.util.find_spec` still locates it (the
    digits are read from inside scikit-learn's folder, not imported: shared/data.py)."""

    names = {"sklearn", "pandas"} | (set() if BACKEND == "jax" else {"jax", "jaxlib"})

    def find_spec(self, name, path=None, target=None):
        real = None
        if name.partition(".")[0] in self.names:
            real = importlib.machinery.PathFinder.find_spec(name, path)
        if real is None:
            return None
        spec = importlib.machinery.ModuleSpec(name, self, origin=real.origin)
        spec.submodule_search_locations = real.submodule_search_locations
        return spec

    def create_module(self, spec):
        raise ModuleNotFoundError(f"{spec.name}: not imported in the {BACKEND} worker",
                                  name=spec.name)  # fmt: skip

    def exec_module(self, module):
        raise AssertionError("unreachable: create_module raises")


if __name__ == "__main__":
    sys.meta_path.insert(0, Unused())
    # Keras and JAX build many short-lived objects: a young generation of 50,000 instead of
    # 700 collects less often (as tests/conftest.py does for the suite's workers)
    import gc

    gc.set_threshold(50_000, 20, 100)

backend.use(BACKEND)
if BACKEND == "tensorflow":  # one thread, as the suite's workers keep: three workers share
    import tensorflow as tf  # the machine's cores with the suite

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras3 import interface  # noqa: E402
from keras3.convert import (  # noqa: E402
    entries,
    from_canonical,
    optimizer_to_canonical,
    to_canonical,
)
from keras3.layers import Dropout  # noqa: E402
from keras3.models import MODELS  # noqa: E402


# -- the bridge: each backend's autodiff over the model's loss --
def outputs_and_gradients(module, model, x, y) -> tuple[np.ndarray, float, list]:
    """The outputs with `training=False`, and `(loss, [d loss / d v for v in
    model.trainable_variables])` with `training=True`, through the backend's own autodiff."""
    if BACKEND == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        rest = [v.value for v in model.non_trainable_variables]

        def loss_of(values):
            outputs = model.stateless_call(values, rest, x)[0]  # training=False
            with keras.StatelessScope(
                state_mapping=list(zip(model.trainable_variables, values, strict=True))
                + list(zip(model.non_trainable_variables, rest, strict=True))
            ):
                return module.loss_fn(model, x, y), outputs

        # one compilation for the three, not an op-by-op eager pass
        (loss, outputs), grads = jax.jit(jax.value_and_grad(loss_of, has_aux=True))(trainable)
        return np.asarray(outputs), float(loss), [np.asarray(g) for g in grads]
    outputs = numpy(model(x, training=False))
    if BACKEND == "torch":
        for v in model.trainable_variables:
            v.value.grad = None
        loss = module.loss_fn(model, x, y)
        loss.backward()
        grads = [v.value.grad.detach().cpu().numpy() for v in model.trainable_variables]
        return outputs, float(loss), grads
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = module.loss_fn(model, x, y)
    grads = tape.gradient(loss, [v.value for v in model.trainable_variables])
    return (
        outputs,
        float(loss),
        [tf.convert_to_tensor(g).numpy() for g in grads],
    )  # sparse: Embedding


def numpy(t) -> np.ndarray:
    """A host copy (on torch, `.numpy()` shares the tensor's memory, which an in-place
    `assign` would rewrite under it)."""
    if BACKEND == "torch":
        return t.detach().cpu().numpy().copy()
    return np.array(ops.convert_to_numpy(t))


def dropouts(model) -> list[Dropout]:
    """The model's Dropout layers in attribute order (the twins' order of masks)."""
    return [layer for layer in model._flatten_layers() if isinstance(layer, Dropout)]


# -- the jobs --
def _no_initial_draw(self, shape, dtype=None):
    return ops.zeros(shape, dtype=dtype)


# Every job loads its start into the model (the canonical weights, or --init), so Keras's own
# initial draw is discarded here; on JAX it compiles one threefry kernel per weight shape (29,
# about 8 s on a 2-core CPU), so the worker draws zeros instead. The draw itself is Keras's.
keras.initializers.RandomUniform.__call__ = _no_initial_draw
keras.initializers.RandomNormal.__call__ = _no_initial_draw

_built: dict = {}


def built(name, config, dtype):
    """One model per (model, config, dtype), reused by every job: each job loads its own start
    into it, and building (Keras's initial draw compiles a kernel per weight shape on JAX)
    is the slow part of a small job."""
    key = (name, repr(config), dtype)
    if key not in _built:
        _built[key] = MODELS[name].init_model(config, seed=0, dtype=dtype)
    return _built[key]


def run_pass(name, config, weights, batch, dtype, masks):
    keras.config.set_floatx(dtype)  # on torch, Python numbers become floatx tensors first
    module = MODELS[name]
    model = from_canonical(built(name, config, dtype), weights)
    x, y = batch
    for layer, mask in zip(dropouts(model), masks or [], strict=False):
        layer.mask = ops.convert_to_tensor(mask)
    outputs, loss, grads = outputs_and_gradients(module, model, x, y)
    for layer in dropouts(model):
        layer.mask = None
    by_variable = {id(v): g for v, g in zip(model.trainable_variables, grads, strict=True)}
    canonical = {n: rule[0](by_variable[id(v)]) for n, v, rule in entries(model)
                 if id(v) in by_variable}  # fmt: skip
    return {"outputs": outputs, "loss": loss, "grads": canonical}


class Losses(keras.callbacks.Callback):
    """Each one-step epoch's loss, and the weights after the first update."""

    def __init__(self):
        super().__init__()
        self.losses, self.first = [], None

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(logs["loss"])
        if epoch == 0:
            self.first = to_canonical(self.model)


def run_train(name, config, cfg, runs, jit_compile="auto"):
    module = MODELS[name]
    keras.config.set_floatx(cfg.dtype)
    model = built(name, config, cfg.dtype)
    optimizer = interface.optimizer(model, cfg)
    interface.compile_model(module, model, optimizer, jit_compile=jit_compile)
    fresh = [np.array(numpy(v.value)) for v in optimizer.variables]
    out = []
    for weights, batches in runs:
        from_canonical(model, weights)
        for v, start in zip(optimizer.variables, fresh, strict=True):
            v.assign(start)  # zero slots (Adagrad's start value), iterations 0
        record = Losses()
        model.fit((b for b in batches), epochs=len(batches), steps_per_epoch=1, shuffle=False,
                  verbose=0, callbacks=[record])  # fmt: skip
        state = optimizer_to_canonical(model, optimizer, len(batches))
        out.append({"losses": np.array(record.losses), "first": record.first,
                    "weights": to_canonical(model), "opt_state": state})  # fmt: skip
    return out


# -- the traps' ports (tests/test_keras.py's catalogue entries) --
class EachUpdate(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(to_canonical(self.model))


def run_trap_fit(port, config, weights, batches, spec, sched, steps):
    """The MLP under `fit`, the canonical weights after each update: `port` "fixed" is
    `keras3.optim`'s optimizer, "adam" and "sgd" Keras's own with torch's numbers."""
    from keras3.optim import Schedule, make_optimizer

    keras.config.set_floatx("float64")
    model = from_canonical(built("mlp", config, "float64"), weights)
    if port == "fixed":
        optimizer = make_optimizer(spec, sched, steps)
    elif port == "adam":  # torch's numbers, Keras's formula
        optimizer = keras.optimizers.Adam(spec.lr, beta_1=spec.beta1, beta_2=spec.beta2,
                                          epsilon=spec.eps)  # fmt: skip
    else:  # "sgd": the same schedule as a Keras LearningRateSchedule, Keras's momentum
        optimizer = keras.optimizers.SGD(Schedule(spec, sched, steps), momentum=spec.momentum)
    MODELS["mlp"].compile_model(model, optimizer, loss=MODELS["mlp"].fit_loss(model))
    record = EachUpdate()
    model.fit((b for b in batches), epochs=len(batches), steps_per_epoch=1, shuffle=False,
              verbose=0, callbacks=[record])  # fmt: skip
    return record.weights


def run_trap_batchnorm(port, images):
    """A BatchNorm layer in training on each NHWC batch: `(running_mean, running_var)` after
    each. "naive": `BatchNormalization(momentum=0.9, epsilon=1e-5)`, torch's momentum turned
    round; "fixed": `keras3.layers.BatchNorm2d`."""
    from keras3.layers import BatchNorm2d

    keras.config.set_floatx("float64")
    c = images[0].shape[-1]
    if port == "naive":
        layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype="float64")
        layer.build((None, *images[0].shape[1:]))
        read = lambda: (layer.moving_mean, layer.moving_variance)  # noqa: E731
    else:
        layer = BatchNorm2d(c, dtype="float64")
        read = lambda: (layer.running_mean, layer.running_var)  # noqa: E731
    out = []
    for x in images:
        layer(ops.convert_to_tensor(x, dtype="float64"), training=True)
        out.append(tuple(numpy(v.value) for v in read()))
    return out


def run_trap_op(op, port, xs):
    """An op on float64 inputs: "layernorm" with Keras's promotion as it ships ("naive": float64
    results forced to float32) or lifted ("fixed"); "gelu" as `keras.activations.gelu(x,
    approximate=False)` ("naive") or written out with `ops.erf` ("fixed")."""
    from keras.src.backend.common import dtypes

    keras.config.set_floatx("float64")
    if op == "layernorm":
        layer = keras.layers.LayerNormalization(epsilon=1e-5, dtype="float64")
        layer.build(xs[0].shape)
        dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float32" if port == "naive" else "float64"
        try:
            return [numpy(layer(x)) for x in xs]
        finally:
            backend.keep_float64()
    if port == "naive":
        return [numpy(keras.activations.gelu(ops.convert_to_tensor(x), approximate=False))
                for x in xs]  # fmt: skip
    return [numpy(0.5 * t * (1 + ops.erf(t / np.sqrt(2)))) for x in xs
            for t in [ops.convert_to_tensor(x)]]  # fmt: skip


def run_stateless(name, config, cfg, weights, batches):
    """JAX only: `fit`, then the pure step of `keras3.stateless` from the same variables (the
    seed generators' states included): the canonical weights after each."""
    from keras3 import stateless

    keras.config.set_floatx(cfg.dtype)
    module = MODELS[name]
    model = from_canonical(built(name, config, cfg.dtype), weights)
    optimizer = interface.optimizer(model, cfg)
    interface.compile_model(module, model, optimizer)
    start = [[np.array(a) for a in part] for part in stateless.state_of(model, optimizer)]
    model.fit((b for b in batches), epochs=len(batches), steps_per_epoch=1, shuffle=False,
              verbose=0)  # fmt: skip
    by_fit = to_canonical(model)
    stateless.write_back(model, optimizer, start)
    step, state = stateless.make_step(model, optimizer, module.fit_loss(model)), start
    for x, y in batches:
        state, _ = step(state, x, y)
    stateless.write_back(model, optimizer, state)
    return {"fit": by_fit, "pure": to_canonical(model)}


def run_bench(argv):
    """`keras3.bench` on this backend: its report (`--quick`: no jax-eager, no torch-compile)."""
    from keras3 import bench
    from shared.cli import bench as cli_bench

    return bench.run(cli_bench.parse_bench("keras3", argv))


def run_script(argv):
    from keras3 import train

    return train.main(argv)


def run_sample(argv):
    """`python -m keras3.sample`'s printed text."""
    import contextlib
    import io

    from keras3 import sample

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sample.main(argv) == 0
    return out.getvalue()


def main() -> int:
    _, _, jobs_path, out_path = sys.argv
    with open(jobs_path, "rb") as f:
        jobs = pickle.load(f)
    kinds = {"pass": run_pass, "train": run_train, "script": run_script,
             "trap_fit": run_trap_fit, "trap_batchnorm": run_trap_batchnorm,
             "trap_op": run_trap_op, "stateless": run_stateless, "bench": run_bench,
             "sample": run_sample}  # fmt: skip
    results = [kinds[kind](*args) for kind, *args in jobs]
    with open(out_path, "wb") as f:
        pickle.dump({"backend": keras.backend.backend(), "results": results}, f)
    return 0


if __name__ == "__main__":
    code = main()  # the results are written and closed: Python's own teardown would then free
    sys.stdout.flush()  # Keras's, XLA's and TensorFlow's objects one by one, measured 1.4 to
    sys.stderr.flush()  # 1.9 s of CPU per worker (4.8 s for the three) that nothing needs
    os._exit(code)
