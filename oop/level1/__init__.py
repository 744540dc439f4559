"""Level 1, OOP: raw tensors with `requires_grad`, `.backward()`, updates under `no_grad`."""
