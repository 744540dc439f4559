"""The Keras models, twins of `oop.models` and `functional.models`, one file for three backends.

`MODELS` maps each `--model` name of `shared.registry` to its module here. Each module has
init_model, loss_fn, compile_model and evaluate; `fit` (in `keras3.train`) does the rest.
Import this only after `keras3.backend.use(...)` has chosen the backend.
"""

import importlib

from shared.registry import ENTRIES

MODELS = {e.name: importlib.import_module(f"{__name__}.{e.file}") for e in ENTRIES}
