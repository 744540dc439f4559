"""Evaluate a canonical checkpoint on the functional side.

    python -m functional.evaluate --checkpoint runs/demo/oop/final.safetensors

The checkpoint may come from either side: its metadata names the model and its config. It runs
on the CPU, as `oop.evaluate` does: with `jax[cuda]` installed JAX would otherwise pick the GPU,
whose float32 products default to TF32 (docs/traps.md).
"""

from __future__ import annotations

import sys

import jax

from functional import interface
from functional.convert import from_canonical_with_state
from functional.models import MODELS
from shared import checkpoint, data, errors
from shared.cli import evaluate as cli_eval


# -- evaluation --
def evaluate_checkpoint(req: cli_eval.EvalRequest) -> tuple[float, float]:
    """`(test loss, test accuracy)` of the checkpoint's weights in the equinox model."""
    with jax.enable_x64(req.dtype == "float64"), jax.default_device(jax.devices("cpu")[0]):
        module = MODELS[req.ckpt.model]
        init = interface.template(module, req.model_config, dtype=req.dtype)
        with checkpoint.about(req.path):
            model, state = from_canonical_with_state(*init, req.ckpt.weights)
        x, y = (data.as_dtype(a, req.dtype) for a in (req.dataset.x_test, req.dataset.y_test))
        return interface.evaluate(module, model, state, x, y)  # BatchNorm: the statistics


# -- command line --
@errors.entry_point("python -m functional.evaluate")
def main(argv: list[str] | None = None) -> int:
    req = cli_eval.parse_eval("functional", argv)
    cli_eval.print_eval("functional", req, *evaluate_checkpoint(req))
    return 0


if __name__ == "__main__":
    sys.exit(main())
