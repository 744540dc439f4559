"""Evaluate a canonical checkpoint as objects on JAX (Flax NNX).

    python -m crossover.oop_jax.evaluate --checkpoint runs/demo/oop/final.safetensors

Twin of `oop/evaluate.py`: the checkpoint may come from any side; its weights are loaded into
the module's variables, and `evaluate` switches it to `eval()` mode. On the CPU, as every
side's evaluate runs.
"""

from __future__ import annotations

import sys

import jax

from crossover.oop_jax import interface
from crossover.oop_jax.convert import from_canonical
from crossover.oop_jax.models import MODELS
from shared import checkpoint, data, errors
from shared.cli import evaluate as cli_eval

SIDE = "oop_jax"


# -- evaluation --
def evaluate_checkpoint(req: cli_eval.EvalRequest) -> tuple[float, float]:
    """`(test loss, test accuracy)` of the checkpoint's weights in the NNX module."""
    with jax.enable_x64(req.dtype == "float64"), jax.default_device(jax.devices("cpu")[0]):
        module = MODELS[req.ckpt.model]
        model = interface.init(module, req.model_config, seed=0, dtype=req.dtype)
        with checkpoint.about(req.path):
            from_canonical(model, req.ckpt.weights)
        x, y = (data.as_dtype(a, req.dtype) for a in (req.dataset.x_test, req.dataset.y_test))
        return interface.evaluate(module, model, x, y)  # BatchNorm: the statistics


# -- command line --
@errors.entry_point(f"python -m crossover.{SIDE}.evaluate")
def main(argv: list[str] | None = None) -> int:
    req = cli_eval.parse_eval(SIDE, argv)
    cli_eval.print_eval(SIDE, req, *evaluate_checkpoint(req))
    return 0


if __name__ == "__main__":
    sys.exit(main())
