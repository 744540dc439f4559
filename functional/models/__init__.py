"""Level 2, functional: equinox models, one file per model, twins of `oop.models`."""

from functional.models import cnn, mlp

MODELS = {"mlp": mlp, "cnn": cnn}  # --model -> module: init_model, loss_fn, make_step, evaluate
