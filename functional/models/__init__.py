"""Level 2, functional: equinox models, one file per model, twins of `oop.models`."""

from functional.models import cnn, cnn_bn, cnn_dropout, gpt, mlp, rnn

# --model -> module with init_model, loss_fn, make_step, evaluate. A model with state
# (cnn_bn) returns `(model, state)` from init_model and threads the state through the others.
MODELS = {"mlp": mlp, "cnn": cnn, "cnn_bn": cnn_bn, "cnn_dropout": cnn_dropout,
          "rnn": rnn, "gru": rnn, "lstm": rnn, "gpt": gpt}  # fmt: skip
