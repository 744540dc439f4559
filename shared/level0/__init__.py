"""Level 0: every model by hand in NumPy, gradients derived manually."""
