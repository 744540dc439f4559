"""Level 2, OOP: `nn.Module` models, one file per model, twins of `functional.models`.

`MODELS` maps each `--model` name of `shared.registry` to its module here (the file the entry
names: `rnn.py` serves rnn, gru and lstm). Each module has init_model, loss_fn, train_step and
evaluate. Buffers (cnn_bn's running statistics) live inside the module, so the interface is the
same for every model.
"""

import importlib

from shared.registry import ENTRIES

MODELS = {e.name: importlib.import_module(f"{__name__}.{e.file}") for e in ENTRIES}
