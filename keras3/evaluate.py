"""Evaluate a canonical checkpoint with Keras, on any of its backends.

    python -m keras3.evaluate --backend torch --checkpoint runs/demo/oop/final.safetensors

Twin of `oop/evaluate.py`: the checkpoint may come from any side; its weights are loaded into
the Keras model's variables, which then runs with `training=False` (BatchNorm: the running
statistics). The backend is chosen before keras is imported.
"""

from __future__ import annotations

import sys

from keras3 import backend
from keras3.train import backend_of
from shared import checkpoint, data, errors
from shared.cli import evaluate as cli_eval

SIDE = "keras3"


# -- evaluation --
def evaluate_checkpoint(req: cli_eval.EvalRequest) -> tuple[float, float]:
    """`(test loss, test accuracy)` of the checkpoint's weights in the Keras model."""
    import keras

    from keras3 import interface
    from keras3.convert import from_canonical
    from keras3.models import MODELS

    keras.config.set_floatx(req.dtype)  # on torch, Python numbers become floatx tensors first
    module = MODELS[req.ckpt.model]
    model = interface.init(module, req.model_config, seed=0, dtype=req.dtype)
    with checkpoint.about(req.path):
        from_canonical(model, req.ckpt.weights)
    x, y = (data.as_dtype(a, req.dtype) for a in (req.dataset.x_test, req.dataset.y_test))
    return interface.evaluate(module, model, x, y)


# -- command line --
@errors.entry_point(f"python -m {SIDE}.evaluate")
def main(argv: list[str] | None = None) -> int:
    if backend_of(argv) in backend.BACKENDS:  # an unknown one: the parser's one-line error
        backend.use(backend_of(argv))  # before anything imports keras
    req = cli_eval.parse_eval(SIDE, argv)
    cli_eval.print_eval(SIDE, req, *evaluate_checkpoint(req))
    return 0


if __name__ == "__main__":
    sys.exit(main())
