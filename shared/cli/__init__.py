"""The command lines of the twin entry points, one module per command, on one leaf (`base`).

- `base`: `Parser` (one-line errors) and `HelpFormatter`, which every script uses;
- `train`: the training scripts' flags (`python -m functional.train`, `python -m oop.train`),
  with the optimizer and schedule flags in `optim`;
- `evaluate`, `sample`, `bench`: the evaluation, generation and benchmark scripts' flags;
- `ladder`: the level-0 and level-1 MLP scripts' flags.

Both sides parse with the same function, so the twins' flags cannot drift apart.
"""
