"""The Keras 3 side: one model file per model, run on JAX, PyTorch or TensorFlow.

Keras is the course's level-2 framework: layers, `compile` and `fit`. The backend is chosen
once per process, before keras is imported (`keras3.backend.use`, or `--backend` on every
script here): Keras cannot switch backends inside a process.
"""
