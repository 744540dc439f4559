"""How the suite compiles: quickly by default, optimised for a step that runs hundreds of times.

`tests/conftest.py` sets XLA:CPU's options for the whole suite (and the scripts it starts):
the classic elemental emitters instead of the fusion emitters, LLVM's optimisations and its
expensive passes off. A small step then compiles 3 to 6 times faster, and runs 2 to 4 times
slower, which is the right trade for the eager operations, the single passes and the scripts'
few-step runs that make up most of the suite.

A trajectory runs its step hundreds of times (the twins and four rounding controls, 100
updates each). Where the step's time is in loops XLA writes itself (the convolutions of the
cnns) `run_jit` compiles it with LLVM's optimisations back on (measured, the cnn_bn step: 0.6 s
-> 1.0 s to compile, 100 updates 0.57 s -> 0.14 s). Where it is in matrix products and small
ops (the MLP ladder, the RNNs, the gpt) `quick_jit` wins (the gpt's step: 1.5 s to compile
against 2.4 s, 0.19 s against 0.11 s per 100 updates, so 600 updates still favour it); each
test file says which it uses, measured by running its trajectories both ways.

Either way the numbers are not bit-identical to the training scripts' defaults, which no test
relies on: float64 twins agree to 1e-10 under any options, and float32 twins are judged against
a rounding control computed in the same process with the same compiled step (tests/rounding.py).
"""

from __future__ import annotations

import jax

QUICK = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
OPTIMISED = {"xla_backend_optimization_level": 2, "xla_llvm_disable_expensive_passes": False}


def quick_jit(fun, **kwargs):
    """`jax.jit` compiling fast: for a function that runs a few times."""
    return jax.jit(fun, compiler_options=QUICK, **kwargs)


def run_jit(fun, **kwargs):
    """`jax.jit` with LLVM's optimisations: for a step that runs hundreds of times."""
    return jax.jit(fun, compiler_options=OPTIMISED, **kwargs)
