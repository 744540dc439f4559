"""Stop inside a torch forward with `breakpoint()`: eager PyTorch is plain Python, so pdb sees
every tensor with its values, and you can step, print and change them.

    python docs/examples/debug_torch_pdb.py      # then at (Pdb): p h.shape, p h[0], c

docs/debugging.md walks through it; tests/test_debugging.py drives it through pdb on standard
input.
"""

import torch

import oop.models.mlp as omlp
from shared.config import MLPConfig


class Inspected(omlp.MLP):
    """The package's MLP with a stop after each hidden layer."""

    def forward(self, x):
        h = x
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))  # (batch, width)
            breakpoint()  # eager: h holds numbers here
        return self.layers[-1](h)


torch.manual_seed(0)
model = Inspected(MLPConfig(in_features=2, out_features=2, width=8, layers=1))
logits = model(torch.tensor([[0.5, -1.0], [2.0, 0.25], [-0.5, 0.5], [1.0, 1.0]]))
print("logits", tuple(logits.shape))
