"""Evaluate a canonical checkpoint on the OOP side.

    python -m oop.evaluate --checkpoint runs/demo/functional/final.safetensors

The checkpoint may come from either side: its metadata names the model and its config.
"""

from __future__ import annotations

import sys

import torch

from oop import interface
from oop.convert import from_canonical
from oop.models import MODELS
from shared import checkpoint, data, errors
from shared.cli import evaluate as cli_eval


# -- evaluation --
def evaluate_checkpoint(req: cli_eval.EvalRequest) -> tuple[float, float]:
    """`(test loss, test accuracy)` of the checkpoint's weights in the nn.Module."""
    module = MODELS[req.ckpt.model]
    template = interface.init(module, req.model_config, seed=0, dtype=req.dtype)
    with checkpoint.about(req.path):
        model = from_canonical(template, req.ckpt.weights)
    x = torch.as_tensor(data.as_dtype(req.dataset.x_test, req.dtype))
    y = torch.as_tensor(data.as_dtype(req.dataset.y_test, req.dtype))
    return interface.evaluate(module, model, x, y)


# -- command line --
@errors.entry_point("python -m oop.evaluate")
def main(argv: list[str] | None = None) -> int:
    req = cli_eval.parse_eval("oop", argv)
    cli_eval.print_eval("oop", req, *evaluate_checkpoint(req))
    return 0


if __name__ == "__main__":
    sys.exit(main())
