"""Choose the process's Keras backend, before keras is imported.

Keras reads `KERAS_BACKEND` once, when it is first imported, and cannot switch afterwards
(`keras.config.set_backend` discards every model and variable). So every entry point here
calls `use(name)` first. On JAX, x64 is switched on for the whole process (Keras then makes
float32 or float64 variables as each layer's dtype says); on TensorFlow, its start-up logging
is quietened. Then keras is imported, and `keep_float64` lets float64 stay float64.
"""

from __future__ import annotations

import os
import sys

BACKENDS = ("jax", "torch", "tensorflow")


def use(name: str) -> None:
    """Make `name` this process's Keras backend; refused once keras runs another one."""
    if name not in BACKENDS:
        raise ValueError(f"unknown Keras backend {name!r}; choose {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise ValueError(
                f"keras is already running on {current} in this process and cannot switch to "
                f"{name}: start a new process with --backend {name}"
            )
        keep_float64()
        return
    os.environ["KERAS_BACKEND"] = name
    if name == "jax":
        os.environ["JAX_ENABLE_X64"] = "1"  # float64 layers need it; float32 ones stay float32
    if name == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banner on stderr
    import keras  # noqa: F401  (reads KERAS_BACKEND now, once)

    keep_float64()


def keep_float64() -> None:
    """Let float64 stay float64 on the JAX and torch backends (call after keras is imported).

    Keras's type promotion (`keras.src.backend.common.dtypes`) maps every float64 result to
    float32 on every backend but TensorFlow, "to be aligned with JAX's default" (x64 off), so
    an op that promotes (`ops.matmul`, `ops.tanh` against a Python float, `Dense`,
    `LayerNormalization`) computes a float64 model in float32 and casts back: 1e-7 where the
    twins agree to 1e-15 (keras-team/keras#23704; the trap `keras-float64-promotion`). With x64
    on, JAX itself keeps float64, so this lifts the one entry of Keras's table that forces it.
    """
    from keras.src.backend.common import dtypes

    dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
