"""The recurrent twins on the functional side: `rnn` (Elman), `gru` and `lstm`.

Twin of `oop/models/rnn.py`. A cell is a pure function `(weights, x_t, carry) -> carry`; a
layer folds it over time with `jax.lax.scan`, which traces the cell once and compiles the whole
loop. The model sees one sequence at a time and `jax.vmap` adds the batch. The weights of the
stack live in one dict whose keys are torch's attribute names (`weight_ih_l0`, ...), so the
canonical names `rnn.weight_ih_l0` are attribute paths on both sides; each layer keeps both of
torch's biases (`bias_ih`, `bias_hh`), which torch trains separately.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from functional.models import mlp
from shared.config import RNNConfig

# -- config --

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
HAS_STATE = False  # init_model returns the model alone
STOCHASTIC = False  # the step takes no key
Carry = Float[Array, " hidden"] | tuple[Float[Array, " hidden"], Float[Array, " hidden"]]


# -- layers --
def rnn_cell(
    w: dict, x: Float[Array, " in"], h: Float[Array, " hidden"]
) -> Float[Array, " hidden"]:
    """Elman: `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`."""
    return jnp.tanh(w["weight_ih"] @ x + w["bias_ih"] + w["weight_hh"] @ h + w["bias_hh"])


def gru_cell(
    w: dict, x: Float[Array, " in"], h: Float[Array, " hidden"]
) -> Float[Array, " hidden"]:
    """torch's GRU, gates stacked r, z, n. `b_hn` stays inside the reset: `r * (W_hn h + b_hn)`."""
    gi = w["weight_ih"] @ x + w["bias_ih"]  # (3H,)
    gh = w["weight_hh"] @ h + w["bias_hh"]  # (3H,)
    i_r, i_z, i_n = jnp.split(gi, 3)
    h_r, h_z, h_n = jnp.split(gh, 3)
    r = jax.nn.sigmoid(i_r + h_r)
    z = jax.nn.sigmoid(i_z + h_z)
    n = jnp.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def lstm_cell(w: dict, x: Float[Array, " in"], hc: tuple) -> tuple:
    """torch's LSTM, gates stacked i, f, g, o; the carry is `(h, c)`."""
    h, c = hc
    gates = w["weight_ih"] @ x + w["bias_ih"] + w["weight_hh"] @ h + w["bias_hh"]  # (4H,)
    i, f, g, o = jnp.split(gates, 4)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


CELLS: dict[str, Callable] = {"rnn": rnn_cell, "gru": gru_cell, "lstm": lstm_cell}


def zero_carry(cell: str, width: int, dtype) -> Carry:
    h = jnp.zeros(width, dtype)
    return (h, h) if cell == "lstm" else h


def hidden(carry: Carry) -> Float[Array, " hidden"]:
    return carry[0] if isinstance(carry, tuple) else carry


def scan_layer(
    cell: str, w: dict, xs: Float[Array, "time in"], carry: Carry, mask: Bool[Array, " time"]
) -> tuple[Float[Array, "time hidden"], Carry]:
    """One layer over a sequence with `lax.scan`: `(hidden state at every step, final carry)`.
    Where `mask` is False (padding) the carry passes through unchanged, so the final carry is
    the state after the last real step, and the output is zero: what `pack_padded_sequence`
    and `pad_packed_sequence` give in torch."""

    def step(carry, inputs):
        x, keep = inputs
        new = CELLS[cell](w, x, carry)
        carry = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, carry)
        return carry, jnp.where(keep, hidden(carry), 0)  # zeros at padding, as in torch

    carry, hs = jax.lax.scan(step, carry, (xs, mask))  # scan's order: (carry, outputs)
    return hs, carry


def layer_weights(rnn: dict, k: int) -> dict:
    """Layer k's four arrays under the cell's names (`weight_ih`, ...)."""
    return {name: rnn[f"{name}_l{k}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


# -- model --
class RNNModel(eqx.Module):
    """`embed` (character models only), the stacked `rnn` weights, a linear `head`.

    **Arguments:**

    - `config`: an `RNNConfig`.
    - `key`: a PRNG key for the initial weights (keyword-only). The cells draw from
      U(-1/sqrt(width), 1/sqrt(width)) and the embedding from N(0, 1), torch's distributions.
    - `dtype`: `jnp.float32` or `jnp.float64`.
    """

    embed: eqx.nn.Embedding | None
    rnn: dict[str, Float[Array, "..."]]
    head: eqx.nn.Linear
    cell: str = eqx.field(static=True)
    layers: int = eqx.field(static=True)
    task: str = eqx.field(static=True)

    def __init__(self, config: RNNConfig, *, key: PRNGKeyArray, dtype=jnp.float32):
        k_embed, k_rnn, k_head = jax.random.split(key, 3)
        shapes = config.weight_shapes()
        self.cell, self.layers, self.task = config.cell, config.layers, config.task
        self.embed = None
        if config.task == "next-char":
            self.embed = eqx.nn.Embedding(
                config.in_features, config.width, key=k_embed, dtype=dtype
            )
        bound = config.width**-0.5
        names = [n for n in shapes if n.startswith("rnn.")]
        sizes = [math.prod(shapes[n]) for n in names]
        # one draw for the whole stack, cut into the weights: eager JAX compiles once per shape
        flat = jax.random.uniform(k_rnn, (sum(sizes),), dtype, -bound, bound)
        ends = itertools.accumulate(sizes)
        self.rnn = {
            n[4:]: flat[end - size : end].reshape(shapes[n])
            for n, size, end in zip(names, sizes, ends, strict=True)
        }
        self.head = eqx.nn.Linear(config.width, config.out_features, key=k_head, dtype=dtype)

    def states(
        self, x: Float[Array, "time in"] | Int[Array, " time"], length: Int[Array, ""] | None = None
    ) -> tuple[Float[Array, "time hidden"], list[Carry]]:
        """One sequence -> (the top layer's hidden state per step, each layer's final carry).
        `length` marks steps from it on as padding."""
        xs = jax.vmap(self.embed)(x) if self.embed is not None else x  # (time, in)
        steps = xs.shape[0]
        mask = jnp.arange(steps) < (steps if length is None else length)  # (time,)
        finals = []
        for k in range(self.layers):
            width = self.rnn[f"weight_hh_l{k}"].shape[1]
            carry = zero_carry(self.cell, width, xs.dtype)
            xs, carry = scan_layer(self.cell, layer_weights(self.rnn, k), xs, carry, mask)
            finals.append(carry)  # xs is now this layer's (time, hidden) output
        return xs, finals

    def __call__(self, x, length=None) -> Float[Array, ""] | Float[Array, "time vocab"]:
        """adding: `(time, 2)` -> the predicted sum, `()`. next-char: `(time,)` ids -> logits
        `(time, vocab)`."""
        hs, finals = self.states(x, length)
        if self.task == "regress":
            return self.head(hidden(finals[-1]))[0]  # the top layer's last real state
        return jax.vmap(self.head)(hs)  # (time, vocab)

    def init_decode(self) -> list[Carry]:
        """What `decode` starts from: zero carries, one per layer."""
        dtype = self.head.weight.dtype
        return [zero_carry(self.cell, self.rnn[f"weight_hh_l{k}"].shape[1], dtype)
                for k in range(self.layers)]  # fmt: skip

    def decode(
        self, carries: list[Carry], token: Int[Array, ""]
    ) -> tuple[list[Carry], Float[Array, " vocab"]]:
        """One character in, the logits of the next out: state in, state out, in the order of a
        `lax.scan` body (`functional.sample` scans it)."""
        x = self.embed(token)  # (width,)
        new = []
        for k, carry in enumerate(carries):
            carry = CELLS[self.cell](layer_weights(self.rnn, k), x, carry)
            new.append(carry)
            x = hidden(carry)  # the next layer's input
        return new, self.head(x)


def init_model(config: RNNConfig, *, key: PRNGKeyArray, dtype: str = "float32") -> RNNModel:
    return RNNModel(config, key=key, dtype=DTYPES[dtype])


# -- loss --
def loss_fn(model: RNNModel, x, y, lengths: Int[Array, " batch"] | None = None) -> Float[Array, ""]:
    """adding: the mean squared error (`F.mse_loss`). next-char: the mean cross-entropy over
    every real (unpadded) position of the batch (`F.cross_entropy` over the packed steps)."""
    out = jax.vmap(model)(x, lengths)  # (batch,) or (batch, time, vocab)
    if model.task == "regress":
        return jnp.mean((out - y) ** 2)
    per_token = optax.softmax_cross_entropy_with_integer_labels(out, y)  # (batch, time)
    if lengths is None:
        return per_token.mean()
    real = jnp.arange(y.shape[1])[None, :] < lengths[:, None]  # (batch, time)
    return jnp.sum(jnp.where(real, per_token, 0.0)) / jnp.sum(real)


# -- train step --


def make_step(optimizer: optax.GradientTransformation, static: PyTree) -> Callable:
    """A pure update: `(params, opt_state, x, y) -> (params, opt_state, loss)`. The MLP's
    step, with this file's loss."""
    return mlp.make_step(optimizer, static, loss_of=loss_fn)


# -- evaluate --
ADDING_TOLERANCE = 0.04  # an adding prediction counts as right within this of the true sum


@eqx.filter_jit
def evaluate(model: RNNModel, x, y) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """`(loss, accuracy)` on a split: the MSE and the fraction within ADDING_TOLERANCE for the
    adding problem; the cross-entropy per character and next-character accuracy otherwise."""
    out = jax.vmap(model)(x)
    if model.task == "regress":
        err = jnp.abs(out - y)
        return jnp.mean(err**2), jnp.mean(err < ADDING_TOLERANCE, dtype=out.dtype)
    loss = optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
    return loss, jnp.mean(jnp.argmax(out, axis=-1) == y, dtype=out.dtype)
