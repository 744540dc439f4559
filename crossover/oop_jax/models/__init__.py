"""The models of the objects-on-JAX corner, twins of `oop.models` and `functional.models`.

`MODELS` maps each `--model` name this corner has (`shared.sides.SIDES["oop_jax"].models`) to
its module here. Each module has init_model, loss_fn, train_step and evaluate, as on the OOP side.
"""

import importlib

from shared.registry import BY_NAME
from shared.sides import SIDES

MODELS = {
    name: importlib.import_module(f"{__name__}.{BY_NAME[name].file}")
    for name in SIDES["oop_jax"].models
}
