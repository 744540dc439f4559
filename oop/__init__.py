"""The object-oriented paradigm: idiomatic PyTorch.

Modules own their parameters and buffers, optimizers own their state, `train()`/`eval()` switch
modes, and updates happen in place. Never imports jax.
"""
