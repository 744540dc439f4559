"""Traps of a GPT's parts: attention masks, packed projections, layer norms and a tied head.

- `mask-polarity`: a boolean `attn_mask` means "blocked" where True to `nn.MultiheadAttention`,
  and "may attend" where True to `F.scaled_dot_product_attention`, `jax.nn.dot_product_attention`
  and `eqx.nn.MultiheadAttention`. The causal `tril` mask handed to the torch module lets every
  position see only the future, and the last position, which then sees nothing, is NaN.
- `packed-in-proj`: torch packs the q, k, v projections into `in_proj_weight` (3E, E) as three
  whole blocks, q rows then k rows then v rows; GPT-NeoX and Megatron-LM pack them per head. A
  split in the per-head layout fits every shape of equinox's separate projections.
- `layernorm-eps`: torch's `nn.LayerNorm` and `eqx.nn.LayerNorm` default to eps 1e-5, flax's
  `LayerNorm` to 1e-6 (Keras's `LayerNormalization`: 1e-3). On rows of small variance the eps
  is most of the denominator.
- `std-unbiased`: torch's `x.std()` divides by n - 1, `jnp.std(x)` by n. A hand-written layer
  norm (the Annotated Transformer's) ported with `jnp.std` is off by sqrt(n / (n - 1)).
- `weight-tying`: torch ties an LM head to the embedding by sharing one Parameter; a JAX pytree
  has no shared leaves, so a head initialised as a copy of the embedding is a second parameter,
  and each copy gets only its own part of the gradient.

torch (float64) is the reference; the JAX side runs inside `jax.enable_x64(True)`.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F
from harness import Trap, naive_and_fixed_tests
from quick import QUICK  # quicker compiles
from torch import nn

T, E, HEADS = 6, 8, 2  # sequence length, embedding size, attention heads (head size 4)
CAUSAL = np.tril(np.ones((T, T), dtype=bool))  # True = may attend: position t sees 0..t


@functools.cache
def tokens() -> np.ndarray:
    """One sequence of T embedded tokens, (T, E)."""
    return np.random.default_rng(0).standard_normal((T, E))


@functools.cache
def torch_attention() -> nn.MultiheadAttention:
    """torch's MHA, float64, with random biases (torch initialises them to 0, which would hide a
    wrong split of `in_proj_bias`)."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(E, HEADS, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    return mha


def torch_output(attn_mask: np.ndarray) -> np.ndarray:
    """The torch module's output for `tokens()`, called as one usually does: `out, _ =
    mha(x, x, x, attn_mask=...)` (`need_weights=True`, its default)."""
    x = torch.from_numpy(tokens())[None]
    with torch.no_grad():
        out, _ = torch_attention()(x, x, x, attn_mask=torch.from_numpy(attn_mask))
    return out[0].numpy()


# -- how to read torch's packed projection --
def split_torch(w: np.ndarray) -> list[np.ndarray]:
    """torch's layout: rows (or entries) [q; k; v], each block E long."""
    return np.split(w, 3)


def split_per_head(w: np.ndarray) -> list[np.ndarray]:
    """GPT-NeoX's and Megatron-LM's layout: per head, its q, k, v rows: (heads, 3, head size)."""
    blocks = w.reshape(HEADS, 3, E // HEADS, *w.shape[1:])
    return [blocks[:, i].reshape(E, *w.shape[1:]) for i in range(3)]


def equinox_attention(split) -> eqx.nn.MultiheadAttention:
    """torch's weights in `eqx.nn.MultiheadAttention`, whose biases are off by default. (Built
    with `filter_eval_shape`: no random initial weights to compile and draw.)"""
    mha = torch_attention()
    w, b = (p.detach().numpy() for p in (mha.in_proj_weight, mha.in_proj_bias))
    ow, ob = (p.detach().numpy() for p in (mha.out_proj.weight, mha.out_proj.bias))
    biases = dict.fromkeys(("use_query_bias", "use_key_bias", "use_value_bias"), True)
    with jax.enable_x64(True):
        module = eqx.filter_eval_shape(
            lambda: eqx.nn.MultiheadAttention(
                HEADS, E, **biases, use_output_bias=True, dtype=jnp.float64,
                key=jax.random.key(0),
            )
        )  # fmt: skip
        projs = lambda m: (m.query_proj, m.key_proj, m.value_proj)
        return eqx.tree_at(
            lambda m: (
                [leaf for p in projs(m) for leaf in (p.weight, p.bias)]
                + [m.output_proj.weight, m.output_proj.bias]
            ),
            module,
            [jnp.asarray(a) for pair in zip(split(w), split(b), strict=True) for a in pair]
            + [jnp.asarray(ow), jnp.asarray(ob)],
        )


@eqx.filter_jit  # the module holds a Python bool (dropout's `inference`): not a jit argument
def self_attention(module: eqx.nn.MultiheadAttention, x, mask):
    return module(x, x, x, mask=mask)


def equinox_output(split) -> np.ndarray:
    with jax.enable_x64(True):
        out = self_attention(equinox_attention(split), jnp.asarray(tokens()), CAUSAL)
        return np.asarray(out)


def per_position(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per query position, max |a - b| over the features. NaN counts as diverged (inf): a NaN
    compares False with every threshold and would otherwise pass."""
    gap = np.max(np.abs(a - b), axis=1)
    return np.where(np.isnan(gap), np.inf, gap)


def mask_gap(torch_mask: np.ndarray) -> np.ndarray:
    """Causal self-attention: equinox with `CAUSAL` vs torch's module with `torch_mask`."""
    return per_position(equinox_output(split_torch), torch_output(torch_mask))


def in_proj_gap(split) -> np.ndarray:
    """Causal self-attention: equinox with the projections `split` vs torch's module."""
    return per_position(equinox_output(split), torch_output(~CAUSAL))


# -- layer norms: rows of growing scale --
D = 16  # features per row
SCALES = np.logspace(-3, 0, 13)  # each row's standard deviation, 1e-3 .. 1


@functools.cache
def rows() -> np.ndarray:
    """(13, D): row r has standard deviation about SCALES[r]."""
    return SCALES[:, None] * np.random.default_rng(1).standard_normal((len(SCALES), D))


@functools.cache
def affine() -> tuple[np.ndarray, np.ndarray]:
    """A layer norm's weight and bias, not the 1s and 0s they start at."""
    rng = np.random.default_rng(2)
    return 1.0 + 0.1 * rng.standard_normal(D), 0.1 * rng.standard_normal(D)


def torch_layernorm() -> np.ndarray:
    """`nn.LayerNorm(D)` (eps 1e-5, biased variance) with `affine()`, on `rows()`."""
    ln = nn.LayerNorm(D, dtype=torch.float64)
    with torch.no_grad():
        for p, v in zip((ln.weight, ln.bias), affine(), strict=True):
            p.copy_(torch.from_numpy(v))
        return ln(torch.from_numpy(rows())).numpy()


@functools.partial(jax.jit, static_argnames="eps", compiler_options=QUICK)
def layernorm(x, weight, bias, eps: float):
    """A layer norm by hand, in flax's and Keras's form: eps inside the sqrt, biased variance."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * weight + bias


def eps_gap(eqx_module: bool) -> np.ndarray:
    """Per row, max |Δ|: torch's nn.LayerNorm vs, naive, a layer norm with flax's eps 1e-6, or,
    fixed, `eqx.nn.LayerNorm(D)` (eps 1e-5) with the same weight and bias."""
    weight, bias = affine()
    with jax.enable_x64(True):
        x = jnp.asarray(rows())
        if eqx_module:
            ln = eqx.filter_eval_shape(lambda: eqx.nn.LayerNorm(D, dtype=jnp.float64))
            ln = eqx.tree_at(lambda m: (m.weight, m.bias), ln, (jnp.asarray(weight),
                             jnp.asarray(bias)))  # fmt: skip
            out = per_row(ln, x)
        else:
            out = layernorm(x, weight, bias, eps=1e-6)  # flax.linen.LayerNorm's default
        return np.max(np.abs(np.asarray(out) - torch_layernorm()), axis=1)


@eqx.filter_jit
def per_row(module, x):
    return jax.vmap(module)(x)


# -- std-unbiased: the Annotated Transformer's layer norm --
class StdLayerNorm(nn.Module):
    """The Annotated Transformer's `LayerNorm`: `x.std()` (unbiased: / (n - 1)), eps outside."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-6):
        super().__init__()
        self.a_2 = nn.Parameter(torch.from_numpy(weight.copy()))
        self.b_2 = nn.Parameter(torch.from_numpy(bias.copy()))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.a_2 * (x - mean) / (std + self.eps) + self.b_2


@functools.cache
def unit_rows() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((len(SCALES), D))


def std_gap(ddof: int) -> np.ndarray:
    """Per row, max |Δ|: StdLayerNorm vs its JAX port with `jnp.std(x, ddof=ddof)`."""
    weight, bias = affine()
    with torch.no_grad():
        ref = StdLayerNorm(weight, bias)(torch.from_numpy(unit_rows())).numpy()
    with jax.enable_x64(True):
        out = np.asarray(std_layernorm(jnp.asarray(unit_rows()), weight, bias, ddof=ddof))
    return np.max(np.abs(out - ref), axis=1)


@functools.partial(jax.jit, static_argnames="ddof", compiler_options=QUICK)
def std_layernorm(x, weight, bias, ddof: int):
    """StdLayerNorm in JAX; `jnp.std`'s default is ddof=0."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    std = jnp.std(x, axis=-1, keepdims=True, ddof=ddof)
    return weight * (x - mean) / (std + 1e-6) + bias


# -- weight-tying: embedding -> tanh(linear) -> the embedding's transpose --
V, DM = 7, 4  # vocabulary, model width
TIE_STEPS, LR = 20, 0.5


@functools.cache
def tie_data() -> tuple[np.ndarray, np.ndarray]:
    """Input tokens and next-token targets: a few bigrams of a 7-token vocabulary."""
    rng = np.random.default_rng(4)
    return rng.integers(0, V, 12), rng.integers(0, V, 12)


class TiedLM(nn.Module):
    """nanoGPT's tying: `lm_head.weight = wte.weight`, one Parameter under two names."""

    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, DM, dtype=torch.float64)
        self.proj = nn.Linear(DM, DM, dtype=torch.float64)
        self.lm_head = nn.Linear(DM, V, bias=False, dtype=torch.float64)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        return self.lm_head(torch.tanh(self.proj(self.wte(idx))))


class FunctionalTiedLM(nn.Module):
    """The same model with the head as `F.linear(h, wte.weight)`: one name, one Parameter."""

    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, DM, dtype=torch.float64)
        self.proj = nn.Linear(DM, DM, dtype=torch.float64)

    def forward(self, idx):
        return F.linear(torch.tanh(self.proj(self.wte(idx))), self.wte.weight)


@functools.cache
def torch_tied() -> tuple[dict, np.ndarray]:
    """SGD (by hand, as `torch.optim.SGD(lr=LR)`) on `TiedLM`: (initial weights, logits after
    each update, (steps, tokens, V))."""
    torch.manual_seed(0)
    model = TiedLM()
    start = {k: v.detach().numpy().copy() for k, v in model.named_parameters()}
    x, y = map(torch.from_numpy, tie_data())
    out, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # 12 x 7 logits: torch's thread pool costs 0.45 s over 20 steps
    try:
        for _ in range(TIE_STEPS):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            with torch.no_grad():
                for p in model.parameters():  # the tied matrix once, with both uses' gradients
                    p -= LR * p.grad
                out.append(model(x).numpy())
    finally:
        torch.set_num_threads(threads)
    return start, np.array(out)


def tie_gap(copy_head: bool) -> np.ndarray:
    """Per SGD step, max |Δlogit| against torch: the JAX model with a head that starts as a copy
    of the embedding (naive) or with the embedding itself as the head (fixed)."""
    w, ref = torch_tied()
    x, y = tie_data()
    with jax.enable_x64(True):
        params = {k: jnp.asarray(v) for k, v in w.items()}  # wte.weight, proj.weight, proj.bias
        if copy_head:
            params["head"] = params["wte.weight"]  # a second leaf: it trains on its own

        def logits_fn(p, x):
            h = jnp.tanh(p["wte.weight"][x] @ p["proj.weight"].T + p["proj.bias"])
            return h @ p.get("head", p["wte.weight"]).T

        def loss_fn(p, x, y):
            return optax.softmax_cross_entropy_with_integer_labels(logits_fn(p, x), y).mean()

        @functools.partial(jax.jit, compiler_options=QUICK)
        def step(p, x, y):
            g = jax.grad(loss_fn)(p, x, y)
            p = jax.tree.map(lambda a, d: a - LR * d, p, g)
            return p, logits_fn(p, x)

        x, y, out = jnp.asarray(x), jnp.asarray(y), []
        for _ in range(TIE_STEPS):
            params, logits = step(params, x, y)
            out.append(np.asarray(logits))
    return np.max(np.abs(np.array(out) - ref), axis=(1, 2))


TRAPS = [
    Trap(
        name="mask-polarity",
        title="nn.MultiheadAttention's boolean attn_mask: True = blocked",
        quantity="max |Δout| per position",
        # naive: the causal mask as JAX wants it (True = may attend), handed to the torch module
        naive=lambda: mask_gap(CAUSAL)[:-1],  # positions 1-5; the NaN row has its own test
        # fixed: its negation, True above the diagonal (or a float mask of 0 / -inf)
        fixed=lambda: mask_gap(~CAUSAL),
        naive_at_least=0.5,  # measured 1.35 at positions 1-5 (0.41 at 1); position 6 is NaN (inf)
    ),
    Trap(
        name="packed-in-proj",
        title="in_proj_weight packs q, k, v as three whole blocks, not per head",
        quantity="max |Δout| per position",
        naive=lambda: in_proj_gap(split_per_head),
        fixed=lambda: in_proj_gap(split_torch),
        naive_at_least=0.5,  # measured 1.19 (0.70 at position 1)
    ),
    Trap(
        name="layernorm-eps",
        title="LayerNorm eps: torch and equinox 1e-5, flax 1e-6, Keras 1e-3",
        quantity="max |Δ| per row, std 1e-3 to 1",
        naive=lambda: eps_gap(eqx_module=False),
        fixed=lambda: eps_gap(eqx_module=True),
        naive_at_least=0.3,  # measured 0.84 at std 2e-3; 5.1e-6 at std 1
    ),
    Trap(
        name="std-unbiased",
        title="torch's x.std() divides by n - 1; jnp.std by n",
        quantity="max |Δ| per row",
        naive=lambda: std_gap(ddof=0),
        fixed=lambda: std_gap(ddof=1),
        naive_at_least=3e-2,  # measured 9.7e-2 (n = 16: sqrt(16 / 15) = 1.033)
    ),
    Trap(
        name="weight-tying",
        title="A tied head is one parameter; a copy trains apart",
        quantity="max |Δlogit| per SGD step",
        naive=lambda: tie_gap(copy_head=True),
        fixed=lambda: tie_gap(copy_head=False),
        naive_at_least=0.3,  # measured 0.80 over 20 steps (0.24 after one)
    ),
]

test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)


def test_tied_head_has_two_state_dict_names_for_one_parameter():
    """nanoGPT's `lm_head.weight = wte.weight` lists the matrix twice in `state_dict()` and once
    in `parameters()`; `F.linear(h, wte.weight)` lists it once everywhere, as the package's GPT
    stores it (`wte.weight`)."""
    tied = TiedLM()
    assert {"wte.weight", "lm_head.weight"} <= tied.state_dict().keys()
    state = tied.state_dict()  # detached views: the same memory, not the same objects
    assert state["lm_head.weight"].data_ptr() == state["wte.weight"].data_ptr()
    assert [n for n, _ in tied.named_parameters()] == ["wte.weight", "proj.weight", "proj.bias"]
    single = FunctionalTiedLM()
    assert list(single.state_dict()) == ["wte.weight", "proj.weight", "proj.bias"]


def test_torch_boolean_masks_have_opposite_polarities():
    """The same `tril` mask is causal for `F.scaled_dot_product_attention` and anti-causal for
    `nn.MultiheadAttention`, for which `~tril` is causal."""
    q = torch.from_numpy(np.random.default_rng(5).standard_normal((1, 1, T, 4)))
    causal = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    tril = torch.from_numpy(CAUSAL)
    assert torch.allclose(F.scaled_dot_product_attention(q, q, q, attn_mask=tril), causal)
    mha = torch_attention()
    x = torch.from_numpy(tokens())[None]
    with torch.no_grad():
        _, blocked_above = mha(x, x, x, attn_mask=~tril)  # attention weights, head-averaged
        _, blocked_below = mha(x, x, x, attn_mask=tril)
    assert torch.all(blocked_above[0][~tril] == 0)  # nothing above the diagonal: causal
    assert torch.all(blocked_below[0, :-1][tril[:-1]] == 0)  # only the future is attended
    assert torch.isnan(blocked_below[0, -1]).all()  # the last row is blocked entirely: NaN


def test_a_fully_blocked_row_is_nan_zero_or_the_mean():
    """A query row that may attend to nothing: NaN from `nn.MultiheadAttention` (its default
    `need_weights=True`), zeros from `F.scaled_dot_product_attention`, and from equinox the plain
    mean of the values, since it masks with the dtype's lowest finite number instead of -inf."""
    none = np.zeros((T, T), dtype=bool)  # True = may attend: nothing
    q = torch.from_numpy(np.random.default_rng(6).standard_normal((1, 1, T, 4)))
    assert torch.all(F.scaled_dot_product_attention(q, q, q, attn_mask=torch.from_numpy(none)) == 0)
    mha, x = torch_attention(), torch.from_numpy(tokens())[None]
    with torch.no_grad():
        out, _ = mha(x, x, x, attn_mask=torch.from_numpy(~none))  # True = blocked: everything
    assert torch.isnan(out).all()
    with jax.enable_x64(True):
        out = self_attention(equinox_attention(split_torch), jnp.asarray(tokens()), none)
    w, b, ow, ob = (p.detach().numpy() for p in (mha.in_proj_weight, mha.in_proj_bias,
                    mha.out_proj.weight, mha.out_proj.bias))  # fmt: skip
    mean_value = np.mean(tokens() @ w[2 * E :].T + b[2 * E :], axis=0)  # uniform over all T
    expected = ow @ mean_value + ob
    np.testing.assert_allclose(np.asarray(out), np.broadcast_to(expected, (T, E)), rtol=1e-12)
