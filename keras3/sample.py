"""Generate text from a character model's canonical checkpoint on the Keras side, on any backend.

    python -m keras3.sample --backend torch --checkpoint runs/gru-f/final.safetensors

Twin of `oop/sample.py`. Keras's layers keep no decoding state here (the GPT's attention has
no KV cache, and `keras.layers.RNN(stateful=True)` would fix the batch size in the model), so
each new character runs the model over what it has read: the whole text for a recurrent model,
whose state is a function of every character, and the last `block_size` characters for the
GPT, the window the twins' caches slide to. That is nanoGPT's `generate`: quadratic in the
length where the twins' decoding is linear (on a fixed-length array, so the forward pass
compiles once), and the same characters at temperature 0. The
draws come from `keras.random.categorical` with one `keras.random.SeedGenerator` seeded with
`--seed`: Keras's own stream, not torch's or JAX's.
"""

from __future__ import annotations

import sys

import numpy as np

from keras3 import backend
from keras3.train import backend_of
from shared import checkpoint, errors
from shared.cli import sample as cli_sample

SIDE = "keras3"


# -- drawing --
def pick(logits: np.ndarray, seed, temperature: float, top_k) -> np.ndarray:
    """The next character per row: argmax at temperature 0, else a draw from the softmax of
    `logits / temperature`, restricted to the `top_k` likeliest (the largest logit taken off
    first, as on the twins)."""
    import keras
    from keras import ops

    if temperature == 0:
        return np.argmax(logits, axis=-1)
    logits = ops.convert_to_tensor(logits)  # (rows, vocab), from predict_on_batch's array
    logits = (logits - ops.max(logits, axis=-1, keepdims=True)) / temperature
    if top_k is not None:
        kth = ops.top_k(logits, min(top_k, logits.shape[-1]))[0][:, -1:]
        logits = ops.where(logits < kth, float("-inf"), logits)
    return ops.convert_to_numpy(keras.random.categorical(logits, 1, seed=seed)[:, 0])


# -- generation --
def generate(model, prompt: np.ndarray, n: int, temperature: float, top_k, *, seed: int):
    """`n` character ids continuing `prompt`, `(n,)`. Every call reads one array of a fixed
    length (the gpt's `block_size`, a recurrent model's whole text), what has been read on the
    left and zeros after it: both models are causal, so the zeros change nothing at the last
    read position, and `predict_on_batch` compiles its function once (on JAX and TensorFlow),
    not once per length."""
    import keras

    generator = keras.random.SeedGenerator(seed)
    window = getattr(model, "block_size", None)  # the GPT reads at most block_size positions
    ids = [int(t) for t in prompt]
    context = np.zeros((1, window or len(ids) + n), dtype="int32")  # (1, T)
    for _ in range(n):
        read = ids[-window:] if window else ids
        context[0, : len(read)], context[0, len(read) :] = read, 0
        logits = model.predict_on_batch(context)[:, len(read) - 1]  # (1, vocab): the last read
        ids.append(int(np.asarray(pick(logits, generator, temperature, top_k))[0]))
    return np.array(ids[len(prompt) :], dtype=np.int64)


# -- command line --
@errors.entry_point(f"python -m {SIDE}.sample")
def main(argv: list[str] | None = None) -> int:
    if backend_of(argv) in backend.BACKENDS:  # an unknown one: the parser's one-line error
        backend.use(backend_of(argv))  # before anything imports keras
    req = cli_sample.parse_sample(SIDE, argv)
    import keras

    from keras3 import interface
    from keras3.convert import from_canonical
    from keras3.models import MODELS

    keras.config.set_floatx(req.dtype)
    module = MODELS[req.ckpt.model]
    with checkpoint.about(req.path):
        template = interface.init(module, req.model_config, seed=0, dtype=req.dtype)
        model = from_canonical(template, req.ckpt.weights)
    ids = generate(model, req.prompt, req.max_new_tokens, req.temperature, req.top_k, seed=req.seed)
    print(req.decode(req.prompt) + req.decode(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
