"""GPT-mini in Keras 3: a character Transformer in `keras.ops`, one file for three backends.

Twin of `oop/models/gpt.py` and `functional/models/gpt.py`. Attention is written out (Keras's
`MultiHeadAttention` packs other weights: `(C, nh, hs)` kernels per projection), the linear maps
are `keras3.layers.Linear` (`Dense` with torch's initial draw), the norms
`LayerNormalization(epsilon=1e-5)` (Keras's default is 1e-3), the GELU exact and written out.
The head reuses `wte.embeddings`: one variable used twice, whose gradients each backend's
autodiff sums. Dropout draws from each layer's `SeedGenerator`.
Shapes in comments: B batch, T time, C n_embd, nh heads, hs = C / nh.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from keras3.layers import Dropout, Linear, dropout_seed
from keras3.models import mlp
from shared.config import GPTConfig

# -- config --

DTYPES = mlp.DTYPES
HAS_STATE = False  # no variables that training moves besides the weights
STOCHASTIC = True  # training draws dropout masks
INIT_STD = 0.02  # GPT-2's N(0, 0.02) for every Linear and Embedding weight


# -- layers --
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head self-attention where position t sees positions 0..t, written out."""

    def __init__(self, config: GPTConfig, *, seed, dtype: str):
        super().__init__(dtype=dtype)
        c, b = config.n_embd, config.bias
        resid = INIT_STD / math.sqrt(2 * config.n_layer)  # GPT-2: one per residual branch
        self.q_proj = Linear(c, c, bias=b, std=INIT_STD, seed=seed, dtype=dtype)
        self.k_proj = Linear(c, c, bias=b, std=INIT_STD, seed=seed, dtype=dtype)
        self.v_proj = Linear(c, c, bias=b, std=INIT_STD, seed=seed, dtype=dtype)
        self.out_proj = Linear(c, c, bias=b, std=resid, seed=seed, dtype=dtype)
        self.attn_drop = Dropout(config.dropout, seed=dropout_seed(seed), dtype=dtype)
        self.resid_drop = Dropout(config.dropout, seed=dropout_seed(seed), dtype=dtype)
        self.n_head = config.n_head

    def call(self, x, training=False):
        b, t, c = x.shape
        nh, hs = self.n_head, c // self.n_head

        def heads(y):  # (B, T, C) -> (B, nh, T, hs)
            return ops.transpose(ops.reshape(y, (-1, t, nh, hs)), (0, 2, 1, 3))

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        att = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(hs)  # (B, nh, T, T)
        causal = ops.tril(ops.ones((t, t), dtype="bool"))  # True = may attend
        att = ops.where(causal, att, float("-inf"))  # later positions get 0 weight
        att = self.attn_drop(ops.softmax(att, axis=-1), training=training)
        y = ops.matmul(att, v)  # (B, nh, T, hs)
        y = ops.reshape(ops.transpose(y, (0, 2, 1, 3)), (-1, t, c))  # heads side by side
        return self.resid_drop(self.out_proj(y), training=training)


class MLP(keras.layers.Layer):
    """`fc` to 4C, exact GELU, `proj`. The GELU is written out: `keras.activations.gelu`
    defaults to the tanh form, and with `approximate=False` TensorFlow's `tf.nn.gelu` is off
    by 5e-9 in float64 (the trap `keras-tensorflow-gelu`)."""

    def __init__(self, config: GPTConfig, *, seed, dtype: str):
        super().__init__(dtype=dtype)
        c, b = config.n_embd, config.bias
        resid = INIT_STD / math.sqrt(2 * config.n_layer)
        self.fc = Linear(c, 4 * c, bias=b, std=INIT_STD, seed=seed, dtype=dtype)
        self.proj = Linear(4 * c, c, bias=b, std=resid, seed=seed, dtype=dtype)
        self.drop = Dropout(config.dropout, seed=dropout_seed(seed), dtype=dtype)

    def call(self, x, training=False):
        h = self.fc(x)  # (B, T, 4C)
        h = 0.5 * h * (1 + ops.erf(h / math.sqrt(2)))  # exact GELU, as torch's default
        return self.drop(self.proj(h), training=training)


def layer_norm(config: GPTConfig, dtype: str) -> keras.layers.LayerNormalization:
    norm = keras.layers.LayerNormalization(epsilon=1e-5, center=config.bias, dtype=dtype)
    norm.build((None, None, config.n_embd))
    return norm


class Block(keras.layers.Layer):
    """Pre-LN: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`."""

    def __init__(self, config: GPTConfig, *, seed, dtype: str):
        super().__init__(dtype=dtype)
        self.ln_1 = layer_norm(config, dtype)
        self.attn = CausalSelfAttention(config, seed=seed, dtype=dtype)
        self.ln_2 = layer_norm(config, dtype)
        self.mlp = MLP(config, seed=seed, dtype=dtype)

    def call(self, x, training=False):
        x = x + self.attn(self.ln_1(x), training=training)
        return x + self.mlp(self.ln_2(x), training=training)


# -- model --
class GPT(keras.Model):
    """Token and position embeddings, `n_layer` blocks, a final LayerNorm and a head that reuses
    `wte.embeddings`.

    **Arguments:**

    - `config`: a `GPTConfig`.
    - `seed`: a `keras.random.SeedGenerator` for the initial weights and the Dropouts' seeds.
    - `dtype`: `"float32"` or `"float64"`.
    """

    def __init__(self, config: GPTConfig, *, seed, dtype: str = "float32"):
        super().__init__(dtype=dtype)
        c = config.n_embd
        normal = keras.initializers.RandomNormal(0.0, INIT_STD, seed=seed)
        self.wte = keras.layers.Embedding(config.vocab_size, c, dtype=dtype,
                                          embeddings_initializer=normal)  # fmt: skip
        self.wpe = keras.layers.Embedding(config.block_size, c, dtype=dtype,
                                          embeddings_initializer=normal)  # fmt: skip
        self.wte.build((None, None))
        self.wpe.build((None, None))
        self.drop = Dropout(config.dropout, seed=dropout_seed(seed), dtype=dtype)
        self.blocks = [Block(config, seed=seed, dtype=dtype) for _ in range(config.n_layer)]
        self.ln_f = layer_norm(config, dtype)
        self.block_size = config.block_size
        self.built = True  # every variable exists already: the model needs no sample call

    def call(self, idx, training=False):
        """Token ids `(B, T)` -> logits at every position `(B, T, vocab)`."""
        t = idx.shape[1]
        if t > self.block_size:
            raise ValueError(f"{t} positions exceed block_size {self.block_size}")
        x = self.wte(idx) + self.wpe(ops.arange(t))  # (B, T, C)
        x = self.drop(x, training=training)
        for block in self.blocks:
            x = block(x, training=training)
        return ops.matmul(self.ln_f(x), ops.transpose(self.wte.embeddings))  # tied head


def init_model(config: GPTConfig, *, seed: int, dtype: str = "float32") -> GPT:
    return GPT(config, seed=keras.random.SeedGenerator(seed), dtype=DTYPES[dtype])


# -- loss --
loss_fn, fit_loss = mlp.loss_fn, mlp.fit_loss


# -- train step --
compile_model = mlp.compile_model


# -- evaluate --
evaluate = mlp.evaluate
