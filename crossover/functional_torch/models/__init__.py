"""The models of the functions-on-torch corner, twins of `functional.models` and `oop.models`.

`MODELS` maps each `--model` name this corner has (`shared.sides.SIDES["functional_torch"]
.models`) to its module here. Each module has init_model, skeleton, loss_fn, make_step and
evaluate, as on the functional side, over dicts of tensors.
"""

import importlib

from shared.registry import BY_NAME
from shared.sides import SIDES

MODELS = {
    name: importlib.import_module(f"{__name__}.{BY_NAME[name].file}")
    for name in SIDES["functional_torch"].models
}
