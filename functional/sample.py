"""Generate text from a character model's canonical checkpoint on the functional side.

    python -m functional.sample --checkpoint runs/gru-f/final.safetensors --prompt "def "

The state goes in and comes out of every decode step, and the loop over new characters is a
`jax.lax.scan`. Every random draw takes its own key, split from `--seed` up front.
"""

from __future__ import annotations

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from functional.convert import from_canonical
from functional.models import MODELS
from shared import cli_sample


def pick(logits, key, temperature: float, top_k: int | None):
    """The next character: the argmax at temperature 0, else a draw from the softmax of
    `logits / temperature`, restricted to the `top_k` likeliest."""
    if temperature == 0:
        return jnp.argmax(logits)
    logits = logits / temperature
    if top_k is not None:
        kth = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][-1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits)


def generate(model, prompt: np.ndarray, n: int, temperature: float, top_k, *, key) -> np.ndarray:
    """`n` character ids continuing `prompt`, `(n,)`."""
    decode = eqx.filter_jit(type(model).decode)
    carries = model.init_carries()
    for token in prompt[:-1]:  # read the prompt; its last character starts the scan
        carries, _ = decode(model, carries, jnp.asarray(token))

    @eqx.filter_jit
    def run(model, carries, first, keys):
        def step(state, k):
            carries, token = state
            carries, logits = model.decode(carries, token)
            nxt = pick(logits, k, temperature, top_k)
            return (carries, nxt), nxt

        return jax.lax.scan(step, (carries, first), keys)[1]

    keys = jax.random.split(key, n)
    return np.asarray(run(model, carries, jnp.asarray(prompt[-1]), keys))


def main(argv: list[str] | None = None) -> int:
    req = cli_sample.parse_sample("functional", argv)
    with jax.enable_x64(req.dtype == "float64"):
        module = MODELS[req.ckpt.model]
        init = module.init_model(req.model_config, key=jax.random.PRNGKey(0), dtype=req.dtype)
        model = from_canonical(init, req.ckpt.weights)
        ids = generate(model, req.prompt, req.max_new_tokens, req.temperature, req.top_k,
                       key=jax.random.PRNGKey(req.seed))  # fmt: skip
    print(req.decode(req.prompt) + req.decode(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
