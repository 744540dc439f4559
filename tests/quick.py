"""`quick_jit`: `jax.jit` with LLVM's optimisations off, for tests whose time is compile time.

XLA still runs its own passes (fusion and the rest); only the machine code is less optimised.
Compiling a training step takes a third to a half of the time, and a few hundred small steps
run about as fast. The numbers are not bit-identical to the default's, which no test relies on:
float64 twins agree to 1e-10 either way, and float32 twins are judged against a rounding
control computed in the same process (tests/rounding.py). `tests/conftest.py` also sets the
same option for the whole suite through XLA_FLAGS (the training scripts the tests run
included); outside the suite the training scripts compile with the defaults.
"""

from __future__ import annotations

import jax

QUICK = {"xla_backend_optimization_level": 0}


def quick_jit(fun, **kwargs):
    return jax.jit(fun, compiler_options=QUICK, **kwargs)
