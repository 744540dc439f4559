"""One Adam step on a 2-input linear layer, on both sides, and the optimizer state it leaves.

    python docs/examples/adam_state.py

docs/optimizers.md quotes its output; tests/test_docs.py checks that the quote is current.
"""

import jax
import jax.numpy as jnp
import optax
import torch

# functional: the state is a value that init returns and update takes and returns
with jax.enable_x64(True):
    params = {"weight": jnp.array([[1.0, -2.0]]), "bias": jnp.array([0.5])}
    grads = {"weight": jnp.array([[0.1, 0.2]]), "bias": jnp.array([-0.3])}
    tx = optax.adam(1e-3)
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    print("optax:", state)

# oop: the state lives inside the optimizer, keyed by the Parameter objects themselves
layer = torch.nn.Linear(2, 1, dtype=torch.float64)
with torch.no_grad():
    layer.weight.copy_(torch.tensor([[1.0, -2.0]]))
    layer.bias.copy_(torch.tensor([0.5]))
optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
layer.weight.grad = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
layer.bias.grad = torch.tensor([-0.3], dtype=torch.float64)
optimizer.step()  # changes layer.weight and layer.bias in place
print("torch:", optimizer.state_dict()["state"])
