"""The functional paradigm: pure functions in JAX, with equinox modules and optax optimizers.

Parameters, optimizer state and PRNG keys go into every function and come back out; nothing
is mutated and there is no global random state. Never imports torch.
"""
