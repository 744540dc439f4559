"""Generate text from the gpt's canonical checkpoint as objects on JAX (Flax NNX).

    python -m crossover.oop_jax.sample --checkpoint runs/gpt-pycorpus/functional/final.safetensors

Twin of `oop/sample.py`: the model keeps what it has read, its KV cache in `nnx.Cache`
variables that each `decode` writes in place (under `nnx.jit`) after one `reset_decode`. The
draws are the functional side's: one key per step, split from `--seed` (`functional.sample`'s
`pick`), so both JAX sides print the same text for a seed.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

from crossover.oop_jax import interface
from crossover.oop_jax.convert import from_canonical
from crossover.oop_jax.models import MODELS
from functional.sample import pick
from shared import checkpoint, errors
from shared.cli import sample as cli_sample

SIDE = "oop_jax"


# -- drawing --
def keys(seed: int, steps: int) -> jax.Array:
    """Every step's key, split at once from the seed, as `functional.sample` splits them."""
    return jax.random.split(jax.random.PRNGKey(seed), steps)


# -- generation --
def generate(model, prompt: np.ndarray, n: int, temperature: float, top_k, *, seed: int):
    """`n` character ids continuing `prompt`, `(n,)`: the prompt read token by token, then each
    drawn token fed back in; step i draws with key i, as the functional side's scan does."""
    model.eval()
    model.reset_decode(batch=1)
    ks = keys(seed, len(prompt) - 1 + n)
    for token in prompt:  # read the prompt
        logits = model.decode(jnp.asarray([int(token)]))
    out = []
    for i in range(n):
        token = pick(logits[0], ks[len(prompt) - 1 + i], temperature, top_k)
        out.append(int(token))
        logits = model.decode(jnp.asarray([int(token)]))
    return np.array(out, dtype=np.int64)


# -- command line --
@errors.entry_point(f"python -m crossover.{SIDE}.sample")
def main(argv: list[str] | None = None) -> int:
    req = cli_sample.parse_sample(SIDE, argv)
    # on the CPU, as every side samples: a GPU's float32 products would default to TF32
    with jax.enable_x64(req.dtype == "float64"), jax.default_device(jax.devices("cpu")[0]):
        module = MODELS[req.ckpt.model]
        model = interface.init(module, req.model_config, seed=0, dtype=req.dtype)
        with checkpoint.about(req.path):
            from_canonical(model, req.ckpt.weights)
        ids = generate(model, req.prompt, req.max_new_tokens, req.temperature, req.top_k,
                       seed=req.seed)  # fmt: skip
    print(req.decode(req.prompt) + req.decode(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
