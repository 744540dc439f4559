"""Find the first NaN in torch: the package's MLP, the same moons batch with a NaN feature.

`torch.autograd.detect_anomaly()` checks every backward function's output and raises at the
first NaN, naming it; it also prints the forward line that made it (a warning on stderr).
Eager code can simply be asked too: `torch.isnan(h).any()` after any layer.

    python docs/examples/debug_nans_torch.py
"""

import warnings

import torch

import oop.models.mlp as omlp
from shared import data
from shared.config import MLPConfig

ds = data.load("moons")
x, y = torch.from_numpy(ds.x_train[:32]).float(), torch.from_numpy(ds.y_train[:32])
x[5, 1] = float("nan")  # one bad value in the batch
model = omlp.init_model(MLPConfig(in_features=2, out_features=2, width=16), seed=0)

omlp.loss_fn(model, x, y).backward()
nan = any(bool(p.grad.isnan().any()) for p in model.parameters())
print("1. eager: NaN in the gradients:", nan)

model.zero_grad()
with warnings.catch_warnings(record=True) as caught, torch.autograd.detect_anomaly():
    warnings.simplefilter("always")
    try:
        omlp.loss_fn(model, x, y).backward()
    except RuntimeError as error:
        print("2. detect_anomaly:", error)
forward = [w for w in caught if "Traceback of forward call" in str(w.message)]
lines = str(forward[0].message).strip().splitlines() if forward else ["?"]
made = next((s.strip() for s in reversed(lines) if "return" in s or "=" in s), "?")
print("   forward call:", made)

h = torch.relu(model.layers[0](x))
bad = torch.isnan(h).any(dim=1).nonzero().ravel().tolist()
print("3. eager check after layer 0: bad rows", bad)
