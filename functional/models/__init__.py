"""Level 2, functional: equinox models, one file per model, twins of `oop.models`.

`MODELS` maps each `--model` name of `shared.registry` to its module here (the file the entry
names: `rnn.py` serves rnn, gru and lstm). Each module has init_model, loss_fn, make_step and
evaluate; a model with state (cnn_bn) returns `(model, state)` from init_model and threads the
state through the others.
"""

import importlib

from shared.registry import ENTRIES

MODELS = {e.name: importlib.import_module(f"{__name__}.{e.file}") for e in ENTRIES}
