"""GPT-mini as functions on PyTorch: a dict of weights, `functional_call`, dropout from a
generator passed in.

Twin of `functional/models/gpt.py` (the same paradigm on JAX, where every draw takes a key) and
`oop/models/gpt.py` (the same framework, whose Dropout draws from torch's global generator).
The architecture is the OOP side's `GPT`; the step takes a `torch.Generator` and the forward
pass runs inside `torch.random.fork_rng` seeded from it, so the masks come from the generator
given and torch's global generator is left as it was: the same generator state gives the same
masks, as the same key does in JAX. Shapes in comments: B batch, T time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from torch.func import functional_call

from crossover.functional_torch.models import mlp
from crossover.functional_torch.optim import GradientTransformation
from oop.models import gpt as modules
from shared.config import GPTConfig

# -- config --

DTYPES = {"float32": torch.float32, "float64": torch.float64}
HAS_STATE = False  # no buffers to thread
STOCHASTIC = True  # the step takes a torch.Generator; the loop gives update k its own
Params = dict[str, Tensor]


# -- layers --
def causal_masks(model: nn.Module, block_size: int) -> nn.Module:
    """The layers are the OOP side's; the one thing a meta-device copy of them lacks is each
    attention layer's causal mask, a non-persistent buffer (no weight, never in a checkpoint),
    made real here so that `functional_call` has only the weights to replace."""
    for block in model.blocks:
        block.attn.causal = torch.ones(block_size, block_size, dtype=torch.bool).tril()
    return model


# -- model --
def init_model(config: GPTConfig, *, seed: int, dtype: str = "float32") -> Params:
    """GPT-2's initial weights, drawn as the OOP side draws them from `seed` (the same
    numbers), leaving torch's global generator as it was. The tied head is `wte.weight`: one
    entry, used twice."""
    with torch.random.fork_rng(devices=[]):
        module = modules.init_model(config, seed=seed, dtype=dtype)
    return {name: p.detach() for name, p in module.named_parameters()}


def skeleton(config: GPTConfig, *, dtype: str = "float32") -> nn.Module:
    """The architecture on the meta device, with its one constant (each attention layer's
    causal mask, a non-persistent buffer) made real: `functional_call` replaces the weights."""
    with torch.device("meta"):
        model = modules.GPT(config, dtype=DTYPES[dtype])
    return causal_masks(model, config.block_size)


def apply(
    model: nn.Module, params: Params, x: Int[Tensor, "B T"], generator: torch.Generator | None
) -> Float[Tensor, "B T vocab"]:
    """Logits at every position; in `train()` mode the masks come from `generator` (drawn in a
    forked copy of the global generator's state, seeded from it)."""
    if generator is None or not model.training or model.drop.p == 0:  # nothing to draw
        return functional_call(model, params, (x,))
    devices = [x.device] if x.device.type == "cuda" else []  # manual_seed reseeds CUDA too
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(torch.randint(2**62, (), generator=generator)))
        return functional_call(model, params, (x,))


def init_decode(model: nn.Module, params: Params, batch: int = 1) -> dict:
    """What `decode` starts from, for `batch` sequences: each attention layer's key and value
    caches, zeros `(B, nh, S, hs)` under the names of the OOP module's buffers, the window of
    tokens read `(B, S)`, and `pos`, how many of them there are."""
    wte = params["wte.weight"]
    attn = model.blocks[0].attn
    s, nh = attn.causal.shape[0], attn.n_head
    zeros = wte.new_zeros(batch, nh, s, wte.shape[1] // nh)
    caches = {f"blocks.{i}.attn.{n}": zeros.clone() for i in range(len(model.blocks))
              for n in ("k_cache", "v_cache")}  # fmt: skip
    return {"caches": caches, "tokens": wte.new_zeros(batch, s, dtype=torch.long), "pos": 0}


@torch.no_grad()
def decode(model: nn.Module, params: Params, state: dict, token: Int[Tensor, " B"]):
    """`(state, token) -> (state, logits of the next token)`, nothing changed in place: the OOP
    module's own cached `forward(idx, pos)` runs through `functional_call` on copies of the
    caches, which it writes into. `model` in `eval()` mode (`mlp.inference_mode`). Past the
    block the window slides by one and the caches are rebuilt from it, as the OOP side does."""
    caches = {k: v.clone() for k, v in state["caches"].items()}
    pos, size = state["pos"], model.block_size
    if pos < size:
        tokens = state["tokens"].clone()
        tokens[:, pos] = token
        logits = functional_call(model, {**params, **caches}, (token[:, None],), {"pos": pos})
        return {"caches": caches, "tokens": tokens, "pos": pos + 1}, logits[:, -1]
    tokens = torch.cat([state["tokens"][:, 1:], token[:, None]], dim=1)
    logits = functional_call(model, {**params, **caches}, (tokens,), {"pos": 0})
    return {"caches": caches, "tokens": tokens, "pos": pos}, logits[:, -1]


# -- loss --
def loss_fn(
    model: nn.Module, params: Params, x: Int[Tensor, "B T"], y: Int[Tensor, "B T"],
    generator: torch.Generator | None = None,
) -> Float[Tensor, ""]:  # fmt: skip
    """Mean cross-entropy over every position of the batch."""
    return F.cross_entropy(apply(model, params, x, generator).flatten(0, 1), y.flatten())


# -- train step --
def make_step(optimizer: GradientTransformation, model: nn.Module) -> Callable:
    """A pure update `(params, opt_state, x, y, generator) -> (params, opt_state, loss)`: the
    MLP's step with this file's loss; the caller gives every update its own generator."""
    step = mlp.make_step(optimizer, model, loss_of=loss_fn)

    def gpt_step(params, opt_state, x, y, generator):
        return step(params, opt_state, x, y, generator)

    return gpt_step


# -- evaluate --
@torch.no_grad()
def evaluate(
    model: nn.Module, params: Params, x: Int[Tensor, "B T"], y: Int[Tensor, "B T"]
) -> tuple[Tensor, Tensor]:
    """`(cross-entropy per character, next-character accuracy)`, in eval mode: dropout off."""
    logits = apply(mlp.inference_mode(model), params, x, None)  # (B, T, vocab)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    return loss, (logits.argmax(dim=-1) == y).to(logits.dtype).mean()
