"""Evaluate a canonical checkpoint as functions on PyTorch (`torch.func`).

    python -m crossover.functional_torch.evaluate --checkpoint runs/demo/oop/final.safetensors

Twin of `functional/evaluate.py`: the checkpoint may come from any side; its weights become a
dict of tensors, and the skeleton runs them through `functional_call` in inference mode.
"""

from __future__ import annotations

import sys

import torch

from crossover.functional_torch import interface
from crossover.functional_torch.convert import from_canonical
from crossover.functional_torch.models import MODELS
from shared import checkpoint, data, errors
from shared.cli import evaluate as cli_eval

SIDE = "functional_torch"


# -- evaluation --
def evaluate_checkpoint(req: cli_eval.EvalRequest) -> tuple[float, float]:
    """`(test loss, test accuracy)` of the checkpoint's weights (and buffers) as dicts."""
    module = MODELS[req.ckpt.model]
    params, buffers = interface.init(module, req.model_config, seed=0, dtype=req.dtype)
    with checkpoint.about(req.path):
        params, buffers = from_canonical(params, buffers, req.ckpt.weights)
    x = torch.as_tensor(data.as_dtype(req.dataset.x_test, req.dtype))
    y = torch.as_tensor(data.as_dtype(req.dataset.y_test, req.dtype))
    skeleton = module.skeleton(req.model_config, dtype=req.dtype)
    return interface.evaluate(module, skeleton, params, buffers, x, y)


# -- command line --
@errors.entry_point(f"python -m crossover.{SIDE}.evaluate")
def main(argv: list[str] | None = None) -> int:
    req = cli_eval.parse_eval(SIDE, argv)
    cli_eval.print_eval(SIDE, req, *evaluate_checkpoint(req))
    return 0


if __name__ == "__main__":
    sys.exit(main())
