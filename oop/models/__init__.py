"""Level 2, OOP: `nn.Module` models, one file per model, twins of `functional.models`."""

from oop.models import cnn, mlp

MODELS = {"mlp": mlp, "cnn": cnn}  # --model -> module: init_model, loss_fn, train_step, evaluate
