"""GPT-mini on the OOP side: a character Transformer whose KV cache lives in its modules.

Twin of `functional/models/gpt.py`; read the two side by side. The modules take a batch
`(B, T)` from the start. Dropout draws from torch's global generator in `train()` mode. For
generation, `reset_decode` gives every attention layer key/value buffers and `decode` writes
into them in place, token after token, where the functional twin returns a new cache pytree.
Shapes in comments: B batch, T time, C n_embd, nh heads, hs = C / nh, S block_size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from oop.layers import Dropout
from oop.models import mlp
from shared.config import GPTConfig

# -- config --

DTYPES = {"float32": torch.float32, "float64": torch.float64}
HAS_STATE = False  # no buffers that train() mode moves
STOCHASTIC = True  # train() mode draws masks from torch's global generator
INIT_STD = 0.02  # GPT-2's N(0, 0.02) for every Linear and Embedding weight


# -- layers --
class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions 0..t, written out; with
    `sdpa=True`, through `F.scaled_dot_product_attention` instead (the same numbers).

    After `reset_cache(batch)`, a call with `pos` treats its `T` inputs as positions
    `pos..pos + T - 1`: their keys and values go into the buffers `k_cache`, `v_cache` at
    `pos`, in place, and the queries attend to every cached position up to their own.
    """

    def __init__(self, config: GPTConfig, *, dtype: torch.dtype, sdpa: bool = False):
        super().__init__()
        c = config.n_embd
        self.q_proj = nn.Linear(c, c, bias=config.bias, dtype=dtype)
        self.k_proj = nn.Linear(c, c, bias=config.bias, dtype=dtype)
        self.v_proj = nn.Linear(c, c, bias=config.bias, dtype=dtype)
        self.out_proj = nn.Linear(c, c, bias=config.bias, dtype=dtype)
        self.attn_drop = Dropout(config.dropout)
        self.resid_drop = Dropout(config.dropout)
        self.n_head, self.sdpa = config.n_head, sdpa
        s = config.block_size
        # True = may attend: SDPA's polarity (nn.MultiheadAttention's attn_mask is the opposite)
        self.register_buffer("causal", torch.ones(s, s, dtype=torch.bool).tril(), persistent=False)
        self.register_buffer("k_cache", None, persistent=False)  # (B, nh, S, hs) once reset
        self.register_buffer("v_cache", None, persistent=False)

    def reset_cache(self, batch: int) -> None:
        s, c = self.causal.shape[0], self.q_proj.in_features
        like = self.q_proj.weight
        self.k_cache = like.new_zeros(batch, self.n_head, s, c // self.n_head)
        self.v_cache = like.new_zeros(batch, self.n_head, s, c // self.n_head)

    def forward(self, x: Float[Tensor, "B T C"], pos: int | None = None) -> Float[Tensor, "B T C"]:
        (b, t, c), nh = x.shape, self.n_head
        q = self.q_proj(x).view(b, t, nh, c // nh).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(b, t, nh, c // nh).transpose(1, 2)
        v = self.v_proj(x).view(b, t, nh, c // nh).transpose(1, 2)
        mask = self.causal[:t, :t]  # (T, T)
        if pos is not None:  # write this chunk at pos, in place; attend over the filled part
            self.k_cache[:, :, pos : pos + t] = k
            self.v_cache[:, :, pos : pos + t] = v
            k, v = self.k_cache[:, :, : pos + t], self.v_cache[:, :, : pos + t]  # (B, nh, T', hs)
            mask = self.causal[pos : pos + t, : pos + t]
        if self.sdpa:
            p = self.attn_drop.p if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            att = q @ k.transpose(-2, -1) / math.sqrt(c // nh)  # (B, nh, T, T')
            att = att.masked_fill(~mask, float("-inf"))  # later positions get 0 weight
            att = F.softmax(att, dim=-1)
            y = self.attn_drop(att) @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(b, t, c)  # the heads side by side again: (B, T, C)
        return self.resid_drop(self.out_proj(y))


class MLP(nn.Module):
    """`fc` to 4C, exact GELU (torch's default, `approximate="none"`), `proj`."""

    def __init__(self, config: GPTConfig, *, dtype: torch.dtype):
        super().__init__()
        c = config.n_embd
        self.fc = nn.Linear(c, 4 * c, bias=config.bias, dtype=dtype)
        self.proj = nn.Linear(4 * c, c, bias=config.bias, dtype=dtype)
        self.drop = Dropout(config.dropout)

    def forward(self, x: Float[Tensor, "B T C"]) -> Float[Tensor, "B T C"]:
        return self.drop(self.proj(F.gelu(self.fc(x))))  # (B, T, 4C) inside


class Block(nn.Module):
    """Pre-LN: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`."""

    def __init__(self, config: GPTConfig, *, dtype: torch.dtype, sdpa: bool = False):
        super().__init__()
        c = config.n_embd
        self.ln_1 = nn.LayerNorm(c, eps=1e-5, bias=config.bias, dtype=dtype)
        self.attn = CausalSelfAttention(config, dtype=dtype, sdpa=sdpa)
        self.ln_2 = nn.LayerNorm(c, eps=1e-5, bias=config.bias, dtype=dtype)
        self.mlp = MLP(config, dtype=dtype)

    def forward(self, x: Float[Tensor, "B T C"], pos: int | None = None) -> Float[Tensor, "B T C"]:
        x = x + self.attn(self.ln_1(x), pos)
        return x + self.mlp(self.ln_2(x))


# -- model --
class GPT(nn.Module):
    """Token and position embeddings, `n_layer` blocks, a final LayerNorm and a head that reuses
    `wte.weight` through `F.linear`: one parameter, used twice, so `state_dict()` and the
    optimizer hold it once and autograd sums the gradients of both uses.

    **Arguments:**

    - `config`: a `GPTConfig`.
    - `dtype`: `torch.float32` or `torch.float64`.
    - `sdpa`: attention through `F.scaled_dot_product_attention` instead of written out.

    The initial weights come from torch's global generator (seed it with `torch.manual_seed`).
    """

    def __init__(self, config: GPTConfig, *, dtype: torch.dtype = torch.float32, sdpa=False):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd, dtype=dtype)
        self.wpe = nn.Embedding(config.block_size, config.n_embd, dtype=dtype)
        self.drop = Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config, dtype=dtype, sdpa=sdpa) for _ in range(config.n_layer)
        )
        self.ln_f = nn.LayerNorm(config.n_embd, eps=1e-5, bias=config.bias, dtype=dtype)
        self.block_size = config.block_size
        resid_std = INIT_STD / math.sqrt(2 * config.n_layer)  # GPT-2: one per residual branch
        for name, p in self.named_parameters():  # GPT-2's init; LayerNorm weights keep 1
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif name.endswith(("out_proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, std=resid_std)
            elif p.ndim == 2:
                nn.init.normal_(p, std=INIT_STD)
        self.register_buffer("tokens", None, persistent=False)  # (B, S) once reset
        self.pos = 0  # how many tokens the caches hold

    def forward(
        self, idx: Int[Tensor, "B T"], pos: int | None = None
    ) -> Float[Tensor, "B T vocab"]:
        """Token ids -> logits at every position. With `pos` (after `reset_decode`), `idx` are
        positions `pos..pos + T - 1` and every attention layer adds them to its cache."""
        t = idx.shape[1]
        if (pos or 0) + t > self.block_size:
            raise ValueError(f"{(pos or 0) + t} positions exceed block_size {self.block_size}")
        positions = torch.arange(pos or 0, (pos or 0) + t, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(positions))  # (B, T, C)
        for block in self.blocks:
            x = block(x, pos)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied head: (B, T, vocab)

    def reset_decode(self, batch: int = 1) -> None:
        """Before `decode`: empty key/value buffers in every attention layer, for `batch`
        sequences."""
        for block in self.blocks:
            block.attn.reset_cache(batch)
        self.tokens = self.wte.weight.new_zeros(batch, self.block_size, dtype=torch.long)
        self.pos = 0

    @torch.no_grad()
    def decode(self, token: Int[Tensor, " B"]) -> Float[Tensor, "B vocab"]:
        """One token per sequence in, the next token's logits out; the caches grow in place.
        Call `model.eval()` first: in `train()` mode dropout applies here too. Past
        `block_size` the window slides by one and the caches are rebuilt from it (every position
        moved), which is what a pass over the last `block_size` tokens gives."""
        if self.pos < self.block_size:
            self.tokens[:, self.pos] = token
            logits = self(token[:, None], pos=self.pos)
            self.pos += 1
        else:
            self.tokens = torch.cat([self.tokens[:, 1:], token[:, None]], dim=1)
            logits = self(self.tokens, pos=0)
        return logits[:, -1]


def init_model(config: GPTConfig, *, seed: int, dtype: str = "float32") -> GPT:
    torch.manual_seed(seed)  # the initial weights, and every dropout mask drawn after them
    return GPT(config, dtype=DTYPES[dtype])


# -- loss --
def loss_fn(model: GPT, x: Int[Tensor, "B T"], y: Int[Tensor, "B T"]) -> Float[Tensor, ""]:
    """Mean cross-entropy over every position of the batch."""
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


# -- train step --


def train_step(model: GPT, optimizer, x: Tensor, y: Tensor, *, clip_norm=None) -> Tensor:
    """One update, in place; returns the batch's loss before it. The MLP's step (which calls
    `model.train()`: dropout on), with this file's loss."""
    return mlp.train_step(model, optimizer, x, y, clip_norm=clip_norm, loss_of=loss_fn)


# -- evaluate --
@torch.no_grad()
def evaluate(model: GPT, x: Int[Tensor, "B T"], y: Int[Tensor, "B T"]) -> tuple[Tensor, Tensor]:
    """`(cross-entropy per character, next-character accuracy)`, in eval mode: dropout off."""
    model.eval()
    logits = model(x)  # (B, T, vocab)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    return loss, (logits.argmax(dim=-1) == y).to(logits.dtype).mean()
