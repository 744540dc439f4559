"""Level 2, OOP: `nn.Module` models, one file per model, twins of `functional.models`."""

from oop.models import mlp

MODELS = {"mlp": mlp}  # --model name -> module with init_model, loss_fn, train_step, evaluate
