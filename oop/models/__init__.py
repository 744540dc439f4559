"""Level 2, OOP: `nn.Module` models, one file per model, twins of `functional.models`."""

from oop.models import cnn, cnn_bn, cnn_dropout, gpt, mlp, rnn

# --model -> module with init_model, loss_fn, train_step, evaluate. Buffers (cnn_bn's running
# statistics) live inside the module, so the interface is the same for every model.
MODELS = {"mlp": mlp, "cnn": cnn, "cnn_bn": cnn_bn, "cnn_dropout": cnn_dropout,
          "rnn": rnn, "gru": rnn, "lstm": rnn, "gpt": gpt}  # fmt: skip
