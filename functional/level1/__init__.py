"""Level 1, functional: parameters as a plain pytree, `jax.grad`, updates by `tree_map`."""
