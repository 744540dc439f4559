"""Generate text from a character model's canonical checkpoint on the functional side.

    python -m functional.sample --checkpoint runs/gru-f/final.safetensors --prompt "def "

The state (an RNN's carries, a GPT's KV cache) goes in and comes out of every decode step, and
one `jax.lax.scan` reads the prompt and draws the new characters. Every draw takes its own key,
split from `--seed` up front.
"""

from __future__ import annotations

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from functional import interface
from functional.convert import from_canonical
from functional.models import MODELS
from shared import checkpoint, errors
from shared.cli import sample as cli_sample


# -- drawing --
def pick(logits, key, temperature: float, top_k: int | None):
    """The next character: the argmax at temperature 0, else a draw from the softmax of
    `logits / temperature`, restricted to the `top_k` likeliest. The largest logit is taken
    off first (the same softmax), so a tiny temperature tends to the argmax, not to inf / inf."""
    if temperature == 0:
        return jnp.argmax(logits)
    logits = (logits - logits.max()) / temperature
    if top_k is not None:
        kth = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][-1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits)


# -- generation --
def generate(model, prompt: np.ndarray, n: int, temperature: float, top_k, *, key) -> np.ndarray:
    """`n` character ids continuing `prompt`, `(n,)`: one `lax.scan` reads the prompt, then
    feeds each drawn character back in."""

    @eqx.filter_jit
    def run(model, prompt, keys):
        def step(carry, inputs):
            state, token = carry
            i, k = inputs
            state, logits = model.decode(state, token)
            nxt = pick(logits, k, temperature, top_k)
            reading = i + 1 < len(prompt)  # the next input is still the prompt's
            nxt = jnp.where(reading, prompt[jnp.minimum(i + 1, len(prompt) - 1)], nxt)
            return (state, nxt), nxt

        steps = jnp.arange(len(prompt) - 1 + n)
        return jax.lax.scan(step, (model.init_decode(), prompt[0]), (steps, keys))[1]

    keys = jax.random.split(key, len(prompt) - 1 + n)
    return np.asarray(run(model, jnp.asarray(prompt), keys))[len(prompt) - 1 :]


# -- command line --
@errors.entry_point("python -m functional.sample")
def main(argv: list[str] | None = None) -> int:
    req = cli_sample.parse_sample("functional", argv)
    # on the CPU, as oop.sample: a GPU's float32 products would default to TF32 (docs/traps.md)
    with jax.enable_x64(req.dtype == "float64"), jax.default_device(jax.devices("cpu")[0]):
        module = MODELS[req.ckpt.model]
        init, _ = interface.template(module, req.model_config, dtype=req.dtype)
        with checkpoint.about(req.path):
            model = from_canonical(init, req.ckpt.weights)
        ids = generate(model, req.prompt, req.max_new_tokens, req.temperature, req.top_k,
                       key=jax.random.PRNGKey(req.seed))  # fmt: skip
    print(req.decode(req.prompt) + req.decode(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
