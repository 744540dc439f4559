"""Functions on PyTorch: parameters, buffers and optimizer state as dicts of tensors that go into
pure functions and come back out (`torch.func.functional_call`, `grad_and_value`, `vmap`).
Imports torch, the OOP side's modules (the architecture, and `state_dict`'s names) and
`shared`; never jax."""
