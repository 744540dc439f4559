"""The grid's other two corners: each paradigm on the other framework.

`crossover.oop_jax` is objects on JAX (Flax NNX: `nnx.Module`, `nnx.Optimizer`, `nnx.jit`);
`crossover.functional_torch` is functions on PyTorch (`torch.func`: `functional_call`,
`grad_and_value`, `vmap`). With `functional/` (functions on JAX) and `oop/` (objects on
PyTorch) they make the grid of `shared.sides`. Each corner imports one framework family: the
NNX corner reuses the functional side's optax factory and state walk (the same library), the
torch.func corner the OOP side's modules and their `state_dict` names (the same parameters).
"""
