"""GPT-mini as objects on JAX: a Flax NNX Transformer whose dropout draws from its own streams.

Twin of `oop/models/gpt.py` (the same paradigm on PyTorch) and `functional/models/gpt.py` (the
same framework, where every draw takes a key split from the step's key). Here the modules take
a batch `(B, T)` as torch's do, and each `Dropout` holds an `nnx.Rngs` stream that `train()`
mode draws from and advances in place, as torch's layers draw from its global generator: no
key appears in a signature. Flax's defaults differ from torch's in three places, set here:
`nnx.LayerNorm`'s epsilon (1e-6, torch 1e-5) and its one-pass variance, and `jax.nn.gelu`'s
tanh approximation. Shapes in comments: B batch, T time, C n_embd, nh heads, hs = C / nh.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jaxtyping import Array, Float, Int

from crossover.oop_jax.layers import Dropout
from crossover.oop_jax.models import mlp
from shared.config import GPTConfig

# -- config --

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
HAS_STATE = False  # no batch statistics
STOCHASTIC = True  # train() mode draws masks from the Dropout layers' nnx.Rngs streams
INIT_STD = 0.02  # GPT-2's N(0, 0.02) for every Linear and Embedding weight


# -- layers --
def linear(fan_in: int, fan_out: int, config: GPTConfig, *, std: float, rngs, dtype) -> nnx.Linear:
    """An `nnx.Linear` with GPT-2's initial weights: N(0, std) kernel, zero bias."""
    return nnx.Linear(fan_in, fan_out, use_bias=config.bias, dtype=dtype, param_dtype=dtype,
                      kernel_init=nnx.initializers.normal(std), rngs=rngs)  # fmt: skip


def layer_norm(config: GPTConfig, *, rngs, dtype) -> nnx.LayerNorm:
    """`nn.LayerNorm(C, eps=1e-5)`: flax's epsilon is 1e-6, and its default one-pass variance
    `mean(x^2) - mean(x)^2` rounds otherwise than torch's two-pass one."""
    return nnx.LayerNorm(config.n_embd, epsilon=1e-5, use_bias=config.bias,
                         use_fast_variance=False, dtype=dtype, param_dtype=dtype,
                         rngs=rngs)  # fmt: skip


class CausalSelfAttention(nnx.Module):
    """Multi-head self-attention where position t sees positions 0..t, written out.

    After `reset_cache(batch, size)`, a call with `pos` treats its `T` inputs as positions
    `pos..pos + T - 1`: their keys and values go into the `nnx.Cache` variables `k_cache`,
    `v_cache` at `pos`, in place, and the queries attend over every cached slot up to their own
    position (the empty ones masked, so every call has the cache's one shape: one compilation).
    """

    def __init__(self, config: GPTConfig, *, rngs: nnx.Rngs, dtype):
        c, resid = config.n_embd, INIT_STD / math.sqrt(2 * config.n_layer)
        self.q_proj = linear(c, c, config, std=INIT_STD, rngs=rngs, dtype=dtype)
        self.k_proj = linear(c, c, config, std=INIT_STD, rngs=rngs, dtype=dtype)
        self.v_proj = linear(c, c, config, std=INIT_STD, rngs=rngs, dtype=dtype)
        self.out_proj = linear(c, c, config, std=resid, rngs=rngs, dtype=dtype)
        self.attn_drop = Dropout(config.dropout, rngs=rngs)
        self.resid_drop = Dropout(config.dropout, rngs=rngs)
        self.n_head = config.n_head

    def reset_cache(self, batch: int, size: int) -> None:
        c, dtype = self.q_proj.in_features, self.q_proj.kernel[...].dtype
        zeros = jnp.zeros((batch, self.n_head, size, c // self.n_head), dtype)
        self.k_cache, self.v_cache = nnx.Cache(zeros), nnx.Cache(zeros)

    def __call__(self, x: Float[Array, "B T C"], pos=None) -> Float[Array, "B T C"]:
        (b, t, c), nh = x.shape, self.n_head

        def heads(proj: nnx.Linear) -> Float[Array, "B nh T hs"]:
            return proj(x).reshape(b, t, nh, c // nh).transpose(0, 2, 1, 3)

        q, k, v = heads(self.q_proj), heads(self.k_proj), heads(self.v_proj)
        mask = jnp.tril(jnp.ones((t, t), bool))  # True = may attend
        if pos is not None:  # write this chunk at pos, in place; attend over the whole cache
            self.k_cache[...] = jax.lax.dynamic_update_slice_in_dim(self.k_cache[...], k, pos, 2)
            self.v_cache[...] = jax.lax.dynamic_update_slice_in_dim(self.v_cache[...], v, pos, 2)
            k, v = self.k_cache[...], self.v_cache[...]  # (B, nh, S, hs)
            mask = jnp.arange(k.shape[2])[None, :] <= (pos + jnp.arange(t))[:, None]  # (T, S)
        att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(c // nh)  # (B, nh, T, T or S)
        att = jax.nn.softmax(jnp.where(mask, att, -jnp.inf), axis=-1)
        y = self.attn_drop(att) @ v  # (B, nh, T, hs)
        y = y.transpose(0, 2, 1, 3).reshape(b, t, c)  # the heads side by side again
        return self.resid_drop(self.out_proj(y))


class MLP(nnx.Module):
    """`fc` to 4C, exact GELU (`approximate=False`: JAX's default is the tanh form), `proj`."""

    def __init__(self, config: GPTConfig, *, rngs: nnx.Rngs, dtype):
        c, resid = config.n_embd, INIT_STD / math.sqrt(2 * config.n_layer)
        self.fc = linear(c, 4 * c, config, std=INIT_STD, rngs=rngs, dtype=dtype)
        self.proj = linear(4 * c, c, config, std=resid, rngs=rngs, dtype=dtype)
        self.drop = Dropout(config.dropout, rngs=rngs)

    def __call__(self, x: Float[Array, "B T C"]) -> Float[Array, "B T C"]:
        return self.drop(self.proj(jax.nn.gelu(self.fc(x), approximate=False)))  # (B, T, 4C) in


class Block(nnx.Module):
    """Pre-LN: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`."""

    def __init__(self, config: GPTConfig, *, rngs: nnx.Rngs, dtype):
        self.ln_1 = layer_norm(config, rngs=rngs, dtype=dtype)
        self.attn = CausalSelfAttention(config, rngs=rngs, dtype=dtype)
        self.ln_2 = layer_norm(config, rngs=rngs, dtype=dtype)
        self.mlp = MLP(config, rngs=rngs, dtype=dtype)

    def __call__(self, x: Float[Array, "B T C"], pos=None) -> Float[Array, "B T C"]:
        x = x + self.attn(self.ln_1(x), pos)
        return x + self.mlp(self.ln_2(x))


# -- model --
class GPT(nnx.Module):
    """Token and position embeddings, `n_layer` blocks, a final LayerNorm and a head that reuses
    the token embedding (`wte.attend`): one variable, used twice, so its gradient is the sum of
    both uses, as in torch.

    **Arguments:**

    - `config`: a `GPTConfig`.
    - `rngs`: `params` for the initial weights, `dropout` for the masks (keyword-only).
    - `dtype`: `jnp.float32` or `jnp.float64`.
    """

    def __init__(self, config: GPTConfig, *, rngs: nnx.Rngs, dtype=jnp.float32):
        c, normal = config.n_embd, nnx.initializers.normal(INIT_STD)
        self.wte = nnx.Embed(config.vocab_size, c, embedding_init=normal, dtype=dtype,
                             param_dtype=dtype, rngs=rngs)  # fmt: skip
        self.wpe = nnx.Embed(config.block_size, c, embedding_init=normal, dtype=dtype,
                             param_dtype=dtype, rngs=rngs)  # fmt: skip
        self.drop = Dropout(config.dropout, rngs=rngs)
        self.blocks = nnx.List(Block(config, rngs=rngs, dtype=dtype) for _ in range(config.n_layer))
        self.ln_f = layer_norm(config, rngs=rngs, dtype=dtype)
        self.block_size = config.block_size

    def __call__(self, idx: Int[Array, "B T"], pos=None) -> Float[Array, "B T vocab"]:
        """Token ids -> logits at every position; in train() mode the dropout streams advance.
        With `pos` (after `reset_decode`), `idx` are positions `pos..pos + T - 1` and every
        attention layer adds them to its cache."""
        t = idx.shape[1]
        if t > self.block_size:  # JAX would clamp the position lookup silently; torch raises
            raise ValueError(f"{t} positions exceed block_size {self.block_size}")
        start = 0 if pos is None else pos
        x = self.drop(self.wte(idx) + self.wpe(start + jnp.arange(t)))  # (B, T, C)
        for block in self.blocks:
            x = block(x, pos)
        return self.wte.attend(self.ln_f(x))  # tied head: (B, T, vocab)

    def reset_decode(self, batch: int = 1) -> None:
        """Before `decode`: empty caches in every attention layer, and an empty window of
        tokens read, for `batch` sequences; all `nnx.Cache` variables of the module."""
        for block in self.blocks:
            block.attn.reset_cache(batch, self.block_size)
        self.tokens = nnx.Cache(jnp.zeros((batch, self.block_size), jnp.int32))
        self.pos = nnx.Cache(jnp.zeros((), jnp.int32))  # how many tokens the caches hold

    def decode(self, token: Int[Array, " B"]) -> Float[Array, "B vocab"]:
        """One token per sequence in, the next token's logits out; the caches grow in place
        (`nnx.jit` writes them back). Call `model.eval()` first. Past `block_size` the window
        slides by one and the caches are rebuilt from it, as the OOP side does."""
        if int(self.pos[...]) < self.block_size:  # the branch on the host: one program each
            return _append(self, token)
        return _slide(self, token)


@nnx.jit
def _append(model: GPT, token):
    pos = model.pos[...]
    model.tokens[...] = model.tokens[...].at[:, pos].set(token.astype(jnp.int32))
    model.pos[...] = pos + 1
    return model(token[:, None], pos)[:, -1]


@nnx.jit
def _slide(model: GPT, token):
    tokens = jnp.concatenate([model.tokens[...][:, 1:], token[:, None].astype(jnp.int32)], 1)
    model.tokens[...] = tokens
    return model(tokens, 0)[:, -1]  # every position moved: the whole cache written again


def init_model(config: GPTConfig, *, seed: int, dtype: str = "float32") -> GPT:
    """The model; its weights from the `params` stream of `nnx.Rngs(seed)`, its masks from a
    `dropout` stream of the same seed."""
    return GPT(config, rngs=nnx.Rngs(params=seed, dropout=seed + 1), dtype=DTYPES[dtype])


# -- loss --
def loss_fn(model: GPT, x: Int[Array, "B T"], y: Int[Array, "B T"]) -> Float[Array, ""]:
    """Mean cross-entropy over every position of the batch, in whatever mode the model is in."""
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


# -- train step --
_step = mlp.make_step(loss_fn)


def train_step(model: GPT, optimizer: nnx.Optimizer, x: Array, y: Array) -> Array:
    """One update, in place (`train()` mode: dropout on, its streams advance); the MLP's step
    with this file's loss. Returns the batch's loss before it."""
    model.train()
    return _step(model, optimizer, x, y)


def pure_step(graphdef: nnx.GraphDef) -> Callable:
    """The MLP's split/merge step with this file's loss."""
    return mlp.pure_step(graphdef, loss_fn)


# -- evaluate --
@nnx.jit
def _scores(model: GPT, x, y) -> tuple[Array, Array]:
    logits = model(x)  # (B, T, vocab)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, axis=-1) == y, dtype=logits.dtype)


def evaluate(model: GPT, x: Int[Array, "B T"], y: Int[Array, "B T"]) -> tuple[Array, Array]:
    """`(cross-entropy per character, next-character accuracy)`, in eval mode: dropout off."""
    model.eval()
    return _scores(model, x, y)
