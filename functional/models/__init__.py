"""Level 2, functional: equinox models, one file per model, twins of `oop.models`."""

from functional.models import mlp

MODELS = {"mlp": mlp}  # --model name -> module with init_model, loss_fn, make_step, evaluate
