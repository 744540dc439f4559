"""Objects on JAX: Flax NNX modules that own their parameters, an optimizer that owns its state,
steps under `nnx.jit` that change both in place. Imports jax, flax, optax, the functional side's
optax factory and `shared`; never torch."""
