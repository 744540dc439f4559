"""GPT-mini on the functional side: a character Transformer whose KV cache is a value.

Twin of `oop/models/gpt.py`; read the two side by side. The model sees one sequence `(time,)`
and `jax.vmap` adds the batch. Every dropout draw takes a key split from the step's key. For
generation, `init_decode` builds the key/value cache as a pytree of arrays, and `decode` takes
it in and returns a new one with each token, where the torch twin writes into buffers that its
modules own. Shapes in comments: T time, C n_embd, nh heads, hs = C / nh, S block_size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from functional.layers import Dropout
from functional.models import mlp
from shared.config import GPTConfig

# -- config --

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
HAS_STATE = False  # init_model returns the model alone
STOCHASTIC = True  # the step takes a key; the training loop gives update k `fold_in(key, k)`
INIT_STD = 0.02  # GPT-2's N(0, 0.02) for every Linear and Embedding weight
KVCache = tuple[Float[Array, "nh S hs"], Float[Array, "nh S hs"]]


# -- layers --
class CausalSelfAttention(eqx.Module):
    """Multi-head self-attention where position t sees positions 0..t, written out.

    With `cache=(k, v)` of `(nh, S, hs)` arrays, the `T` inputs are positions `pos..pos + T - 1`
    of a longer sequence: their keys and values are written into copies of the cache at `pos`,
    and the queries attend to every cached position up to their own. The new cache is returned.
    """

    q_proj: eqx.nn.Linear
    k_proj: eqx.nn.Linear
    v_proj: eqx.nn.Linear
    out_proj: eqx.nn.Linear
    attn_drop: Dropout
    resid_drop: Dropout
    n_head: int = eqx.field(static=True)

    def __init__(self, config: GPTConfig, *, key: PRNGKeyArray, dtype=jnp.float32):
        c, kq, kk, kv, ko = config.n_embd, *jax.random.split(key, 4)
        self.q_proj = eqx.nn.Linear(c, c, use_bias=config.bias, key=kq, dtype=dtype)
        self.k_proj = eqx.nn.Linear(c, c, use_bias=config.bias, key=kk, dtype=dtype)
        self.v_proj = eqx.nn.Linear(c, c, use_bias=config.bias, key=kv, dtype=dtype)
        self.out_proj = eqx.nn.Linear(c, c, use_bias=config.bias, key=ko, dtype=dtype)
        self.attn_drop = Dropout(config.dropout)
        self.resid_drop = Dropout(config.dropout)
        self.n_head = config.n_head

    def __call__(
        self,
        x: Float[Array, "T C"],
        cache: KVCache | None = None,
        pos: Int[Array, ""] | int = 0,
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
    ) -> tuple[Float[Array, "T C"], KVCache | None]:
        (t, c), nh = x.shape, self.n_head
        k_att, k_res = jax.random.split(key) if key is not None else (None, None)

        def heads(proj: eqx.nn.Linear) -> Float[Array, "nh T hs"]:
            return jax.vmap(proj)(x).reshape(t, nh, c // nh).transpose(1, 0, 2)

        q, k, v = heads(self.q_proj), heads(self.k_proj), heads(self.v_proj)  # (nh, T, hs)
        query_pos = pos + jnp.arange(t)  # (T,)
        if cache is not None:  # write this chunk at pos; attend over the whole cache
            k = jax.lax.dynamic_update_slice_in_dim(cache[0], k, pos, axis=1)  # (nh, S, hs)
            v = jax.lax.dynamic_update_slice_in_dim(cache[1], v, pos, axis=1)
            cache = (k, v)
        key_pos = jnp.arange(k.shape[1])  # (T,) or (S,)
        mask = key_pos[None, :] <= query_pos[:, None]  # (T, T or S): True = may attend
        att = q @ k.transpose(0, 2, 1) / math.sqrt(c // nh)  # (nh, T, T or S)
        att = jnp.where(mask, att, -jnp.inf)  # later positions (and empty slots) get 0 weight
        att = jax.nn.softmax(att, axis=-1)
        att = self.attn_drop(att, key=k_att, inference=inference)
        y = att @ v  # (nh, T, hs)
        y = y.transpose(1, 0, 2).reshape(t, c)  # the heads side by side again: (T, C)
        return self.resid_drop(jax.vmap(self.out_proj)(y), key=k_res, inference=inference), cache


class MLP(eqx.Module):
    """`fc` to 4C, exact GELU (`approximate=False`: JAX's default is the tanh form), `proj`."""

    fc: eqx.nn.Linear
    proj: eqx.nn.Linear
    drop: Dropout

    def __init__(self, config: GPTConfig, *, key: PRNGKeyArray, dtype=jnp.float32):
        c, (k_fc, k_proj) = config.n_embd, jax.random.split(key)
        self.fc = eqx.nn.Linear(c, 4 * c, use_bias=config.bias, key=k_fc, dtype=dtype)
        self.proj = eqx.nn.Linear(4 * c, c, use_bias=config.bias, key=k_proj, dtype=dtype)
        self.drop = Dropout(config.dropout)

    def __call__(self, x: Float[Array, " C"], *, key=None, inference=False) -> Float[Array, " C"]:
        h = jax.nn.gelu(self.fc(x), approximate=False)  # (4C,)
        return self.drop(self.proj(h), key=key, inference=inference)


class Block(eqx.Module):
    """Pre-LN: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`."""

    ln_1: eqx.nn.LayerNorm
    attn: CausalSelfAttention
    ln_2: eqx.nn.LayerNorm
    mlp: MLP

    def __init__(self, config: GPTConfig, *, key: PRNGKeyArray, dtype=jnp.float32):
        k_attn, k_mlp = jax.random.split(key)
        c, bias = config.n_embd, config.bias
        self.ln_1 = eqx.nn.LayerNorm(c, eps=1e-5, use_bias=bias, dtype=dtype)  # torch's eps
        self.attn = CausalSelfAttention(config, key=k_attn, dtype=dtype)
        self.ln_2 = eqx.nn.LayerNorm(c, eps=1e-5, use_bias=bias, dtype=dtype)
        self.mlp = MLP(config, key=k_mlp, dtype=dtype)

    def __call__(self, x: Float[Array, "T C"], cache=None, pos=0, *, key=None, inference=False):
        k_attn, k_mlp = jax.random.split(key) if key is not None else (None, None)
        a, cache = self.attn(jax.vmap(self.ln_1)(x), cache, pos, key=k_attn, inference=inference)
        x = x + a
        k_rows = jax.random.split(k_mlp, len(x)) if k_mlp is not None else None  # one per row
        m = jax.vmap(lambda row, k: self.mlp(self.ln_2(row), key=k, inference=inference))
        return x + m(x, k_rows), cache


# -- model --
def _layers(config: GPTConfig, dtype) -> dict:
    """`wte, wpe, drop, blocks, ln_f` by name, with equinox's own initial weights."""
    c, k = config.n_embd, jax.random.PRNGKey(0)  # only traced: gpt2_init draws the numbers
    return {
        "wte": eqx.nn.Embedding(config.vocab_size, c, key=k, dtype=dtype),
        "wpe": eqx.nn.Embedding(config.block_size, c, key=k, dtype=dtype),
        "drop": Dropout(config.dropout),
        "blocks": tuple(Block(config, key=k, dtype=dtype) for _ in range(config.n_layer)),
        "ln_f": eqx.nn.LayerNorm(c, eps=1e-5, use_bias=config.bias, dtype=dtype),
    }


def gpt2_init(layers: PyTree, config: GPTConfig, key: PRNGKeyArray) -> PyTree:
    """GPT-2's initial weights for `layers` (arrays or shapes): every Linear and Embedding
    weight from N(0, 0.02), the two projections that end a residual branch (`out_proj`,
    `mlp.proj`) from N(0, 0.02 / sqrt(2 * n_layer)), biases 0, LayerNorm weights 1. torch's
    twin draws the same distributions; the numbers differ (load `init.safetensors` to share)."""
    named, treedef = jax.tree_util.tree_flatten_with_path(layers)
    names = [jax.tree_util.keystr(path) for path, _ in named]  # "['blocks'][0].attn.q_proj.weight"
    shapes = [leaf.shape for _, leaf in named]
    dtype = named[0][1].dtype
    resid_std = INIT_STD / math.sqrt(2 * config.n_layer)

    @jax.jit  # one program for every weight: eager draws and slices compile once per shape
    def draw(key):
        noise = jax.random.normal(key, (sum(math.prod(s) for s in shapes),), dtype)
        leaves, start = [], 0
        for name, shape in zip(names, shapes, strict=True):
            size = math.prod(shape)
            if name.endswith("bias"):
                value = jnp.zeros(shape, dtype)
            elif "ln_" in name:  # a LayerNorm's weight: ln_1, ln_2, ln_f
                value = jnp.ones(shape, dtype)
            else:
                std = (
                    resid_std if name.endswith(("out_proj.weight", "mlp.proj.weight")) else INIT_STD
                )
                value = std * noise[start : start + size].reshape(shape)
            leaves.append(value)
            start += size
        return leaves

    leaves = draw(key)
    return jax.tree_util.tree_unflatten(treedef, leaves)


class GPT(eqx.Module):
    """Token and position embeddings, `n_layer` blocks, a final LayerNorm and a head that reuses
    `wte.weight`: one array, used twice, so its gradient is the sum of both uses.

    **Arguments:**

    - `config`: a `GPTConfig`.
    - `key`: a PRNG key for the initial weights (keyword-only).
    - `dtype`: `jnp.float32` or `jnp.float64`.
    """

    wte: eqx.nn.Embedding
    wpe: eqx.nn.Embedding
    drop: Dropout
    blocks: tuple[Block, ...]
    ln_f: eqx.nn.LayerNorm
    block_size: int = eqx.field(static=True)

    def __init__(self, config: GPTConfig, *, key: PRNGKeyArray, dtype=jnp.float32):
        # the layers' shapes only (no numbers drawn, nothing compiled), then GPT-2's weights
        # in one draw: eager JAX compiles each op once per shape, seconds for a dozen layers
        layers = gpt2_init(eqx.filter_eval_shape(_layers, config, dtype), config, key)
        self.wte, self.wpe, self.drop = layers["wte"], layers["wpe"], layers["drop"]
        self.blocks, self.ln_f = layers["blocks"], layers["ln_f"]
        self.block_size = config.block_size

    def forward(
        self, idx: Int[Array, " T"], caches: list[KVCache] | None, pos, *, key, inference: bool
    ) -> tuple[Float[Array, "T vocab"], list[KVCache] | None]:
        """`T` token ids at positions `pos..pos + T - 1` -> (their logits, the caches with them).
        Without caches (`None`), a plain causal pass over `idx` from position 0."""
        t = idx.shape[0]
        if t > self.block_size:  # JAX would clamp the position lookup silently; torch raises
            raise ValueError(f"{t} tokens exceed block_size {self.block_size}")
        if key is None and not inference and self.drop.p > 0:
            raise ValueError("dropout needs a key in training: pass key=..., or inference=True")
        keys = jax.random.split(key, 1 + len(self.blocks)) if key is not None else None
        x = jax.vmap(self.wte)(idx) + jax.vmap(self.wpe)(pos + jnp.arange(t))  # (T, C)
        x = self.drop(x, key=None if keys is None else keys[0], inference=inference)
        new = []
        for i, block in enumerate(self.blocks):
            cache = None if caches is None else caches[i]
            k = None if keys is None else keys[1 + i]
            x, cache = block(x, cache, pos, key=k, inference=inference)
            new.append(cache)
        x = jax.vmap(self.ln_f)(x)  # (T, C)
        return x @ self.wte.weight.T, (None if caches is None else new)  # tied head: (T, vocab)

    def __call__(
        self, idx: Int[Array, " T"], *, key=None, inference=False
    ) -> Float[Array, "T vocab"]:
        """One sequence of ids -> logits at every position. Training needs a `key` when
        dropout > 0; `inference=True` turns dropout off."""
        return self.forward(idx, None, 0, key=key, inference=inference)[0]  # (T, vocab)

    def init_decode(self) -> dict:
        """What `decode` starts from, an empty KV cache for one sequence: per block `(k, v)`
        zeros `(nh, S, hs)`, the window of tokens read so far `(S,)`, and `pos`, how many of
        them there are."""
        attn, s = self.blocks[0].attn, self.block_size
        nh, c, dtype = attn.n_head, self.wte.weight.shape[1], self.wte.weight.dtype
        zeros = jnp.zeros((nh, s, c // nh), dtype)
        layers = [(zeros, zeros)] * len(self.blocks)
        return {"layers": layers, "tokens": jnp.zeros(s, jnp.int32), "pos": jnp.asarray(0)}

    def decode(self, cache: dict, token: Int[Array, ""]) -> tuple[dict, Float[Array, " vocab"]]:
        """One token in, the next token's logits out: cache in, new cache out, dropout off, in the
        order of a `lax.scan` body (`functional.sample` scans it). Past
        `block_size` the window slides by one and the cache is rebuilt from it (every position
        moved), which is what a pass over the last `block_size` tokens gives."""
        s, off = self.block_size, {"key": None, "inference": True}

        def append(cache):
            pos = cache["pos"]
            logits, layers = self.forward(token[None], cache["layers"], pos, **off)
            tokens = cache["tokens"].at[pos].set(token.astype(jnp.int32))
            return {"layers": layers, "tokens": tokens, "pos": pos + 1}, logits[-1]

        def slide(cache):
            tokens = jnp.roll(cache["tokens"], -1).at[s - 1].set(token.astype(jnp.int32))
            logits, layers = self.forward(tokens, cache["layers"], 0, **off)
            return {"layers": layers, "tokens": tokens, "pos": cache["pos"]}, logits[-1]

        return jax.lax.cond(cache["pos"] < s, append, slide, cache)


def init_model(config: GPTConfig, *, key: PRNGKeyArray, dtype: str = "float32") -> GPT:
    return GPT(config, key=key, dtype=DTYPES[dtype])


# -- loss --
def loss_fn(
    model: GPT, x: Int[Array, "batch T"], y: Int[Array, "batch T"], key: PRNGKeyArray | None = None
) -> Float[Array, ""]:
    """Mean cross-entropy over every position of the batch, in training mode: one dropout key
    per sequence, split from `key` (None: no dropout draws, for a model with dropout 0)."""
    if key is None:
        logits = jax.vmap(model)(x)  # (batch, T, vocab)
    else:
        logits = jax.vmap(lambda s, k: model(s, key=k))(x, jax.random.split(key, len(x)))
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# -- train step --


def make_step(optimizer: optax.GradientTransformation, static: PyTree) -> Callable:
    """A pure update `(params, opt_state, x, y, key) -> (params, opt_state, loss)`: the MLP's
    step, with this file's loss. The caller gives every update its own key."""
    return mlp.make_step(optimizer, static, loss_of=loss_fn)


# -- evaluate --
@eqx.filter_jit
def evaluate(model: GPT, x: Int[Array, "batch T"], y: Int[Array, "batch T"]):
    """`(cross-entropy per character, next-character accuracy)`, dropout off."""
    logits = jax.vmap(lambda s: model(s, inference=True))(x)  # (batch, T, vocab)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, axis=-1) == y, dtype=logits.dtype)
