"""The NumPy-only tier of paradigms: data, configs, checkpoints, metrics, level-0 references.

Nothing in this package imports jax or torch; both sides import it.
"""
