"""The recurrent twins on the OOP side: `rnn` (Elman), `gru` and `lstm`.

Twin of `functional/models/rnn.py`. The model calls torch's fused `nn.RNN`/`nn.GRU`/`nn.LSTM`
(one call runs every step of every layer, in C++), with `batch_first=True`. `cell_loop` computes
the same thing the long way, a Python `for` loop over `nn.RNNCell`/`nn.GRUCell`/`nn.LSTMCell`
that share the fused module's weights, so the reader sees what the fused call does. Padded
batches go through `pack_padded_sequence`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from oop.models import mlp
from shared.config import RNNConfig

# -- config --

DTYPES = {"float32": torch.float32, "float64": torch.float64}
HAS_STATE = False  # no buffers that train() mode moves
STOCHASTIC = False  # nothing drawn in train() mode
FUSED = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
CELLS = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}


# -- layers --
def cell_loop(
    model: RNNModel, x: Tensor, lengths: Tensor | None = None
) -> tuple[Float[Tensor, "batch time hidden"], list[Tensor]]:
    """What the fused call computes, step by step: `(top layer's h per step, each layer's final
    state)`; a state is `h`, or `(h, c)` for the LSTM. Each layer is an `nn.*Cell` holding
    the fused module's weights of that layer; a padded step leaves the state unchanged and
    outputs zeros, as packing does."""
    rnn, xs = model.rnn, model.embed(x) if model.embed is not None else x  # (batch, time, in)
    batch, steps = xs.shape[:2]
    full = torch.full((batch,), steps, device=xs.device)
    lengths = full if lengths is None else lengths.to(xs.device)
    real = torch.arange(steps, device=xs.device)[None, :] < lengths[:, None]  # (batch, time)
    finals = []
    for k in range(rnn.num_layers):
        # built on the meta device: no memory, and no draw from torch's global generator
        cell = CELLS[model.cell](xs.shape[-1], rnn.hidden_size, device="meta", dtype=xs.dtype)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(cell, name, getattr(rnn, f"{name}_l{k}"))  # shared, not copied
        h = xs.new_zeros(batch, rnn.hidden_size)
        state = (h, h) if model.cell == "lstm" else h
        outputs = []
        for t in range(steps):
            new = cell(xs[:, t], state)
            keep = real[:, t, None]  # (batch, 1)
            if model.cell == "lstm":
                state = (torch.where(keep, new[0], state[0]), torch.where(keep, new[1], state[1]))
            else:
                state = torch.where(keep, new, state)
            h = state[0] if model.cell == "lstm" else state
            outputs.append(torch.where(keep, h, 0.0))  # zeros at padding, as pad_packed gives
        xs = torch.stack(outputs, dim=1)  # (batch, time, hidden): the next layer's input
        finals.append(state)  # h, or (h, c) for the LSTM
    return xs, finals


# -- model --
class RNNModel(nn.Module):
    """`embed` (character models only), the fused `rnn`, a linear `head`.

    The modules (`embed`, `rnn`, `head`) mirror `functional.models.rnn.RNNModel`'s attributes in
    name and order; `state_dict()` keys are the canonical names (`rnn.weight_ih_l0`, ...).

    **Arguments:**

    - `config`: an `RNNConfig`.
    - `dtype`: `torch.float32` or `torch.float64`.
    """

    def __init__(self, config: RNNConfig, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.cell, self.task = config.cell, config.task
        self.embed = None
        if config.task == "next-char":
            self.embed = nn.Embedding(config.in_features, config.width, dtype=dtype)
        first = config.in_features if config.task == "regress" else config.width
        self.rnn = FUSED[config.cell](
            first, config.width, num_layers=config.layers, batch_first=True, dtype=dtype
        )
        self.head = nn.Linear(config.width, config.out_features, dtype=dtype)
        self.decode_state = None  # what decode has read: set by reset_decode and decode

    def states(
        self, x: Tensor, lengths: Tensor | None = None
    ) -> tuple[Float[Tensor, "batch time hidden"], Tensor | tuple[Tensor, Tensor]]:
        """(the top layer's h per step, zeros at padded steps; the fused module's final state,
        `h_n` `(layers, batch, hidden)` or `(h_n, c_n)` for the LSTM, after each sequence's last
        real step), in the order torch's own modules return them."""
        xs = self.embed(x) if self.embed is not None else x  # (batch, time, in)
        if lengths is None:
            out, last = self.rnn(xs)
        else:  # the fused kernel skips the padding: it runs each sequence to its own length
            packed = pack_padded_sequence(xs, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, last = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=xs.shape[1])
        return out, last

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """adding: `(batch, time, 2)` -> predicted sums `(batch,)`. next-char: `(batch, time)`
        ids -> logits `(batch, time, vocab)`."""
        out, last = self.states(x, lengths)
        h_n = last[0] if self.cell == "lstm" else last  # (layers, batch, hidden)
        if self.task == "regress":
            return self.head(h_n[-1])[:, 0]  # the top layer's last real state
        return self.head(out)

    def reset_decode(self, batch: int = 1) -> None:
        """Before `decode`: forget what was read (the state starts at zeros, as torch's modules
        start from `None`). `batch` is taken for the GPT's sake; the state's shape follows the
        first token."""
        self.decode_state = None

    @torch.no_grad()
    def decode(self, token: Int[Tensor, " batch"]) -> Float[Tensor, "batch vocab"]:
        """One character per sequence in, the logits of the next out; the fused module's `h`
        (or `(h, c)`) stays in `self.decode_state`, replaced at each call, as the GPT keeps its
        caches."""
        out, self.decode_state = self.rnn(self.embed(token)[:, None], self.decode_state)
        return self.head(out[:, 0])  # (batch, vocab)


def init_model(config: RNNConfig, *, seed: int, dtype: str = "float32") -> RNNModel:
    torch.manual_seed(seed)
    return RNNModel(config, dtype=DTYPES[dtype])


# -- loss --
def loss_fn(
    model: RNNModel, x: Tensor, y: Tensor, lengths: Int[Tensor, " batch"] | None = None
) -> Float[Tensor, ""]:
    """adding: `F.mse_loss`. next-char: `F.cross_entropy` over every real position."""
    out = model(x, lengths)
    if model.task == "regress":
        return F.mse_loss(out, y)
    if lengths is None:
        return F.cross_entropy(out.flatten(0, 1), y.flatten())
    real = torch.arange(y.shape[1], device=y.device)[None, :] < lengths.to(y.device)[:, None]
    return F.cross_entropy(out[real], y[real])


# -- train step --


def train_step(
    model: RNNModel,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    *,
    clip_norm: float | None = None,
) -> Tensor:
    """One update, in place; returns the batch's loss before it. The MLP's step, with this
    file's loss."""
    return mlp.train_step(model, optimizer, x, y, clip_norm=clip_norm, loss_of=loss_fn)


# -- evaluate --
ADDING_TOLERANCE = 0.04  # an adding prediction counts as right within this of the true sum


@torch.no_grad()
def evaluate(model: RNNModel, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """`(loss, accuracy)`: MSE and the fraction within ADDING_TOLERANCE for the adding problem;
    cross-entropy per character and next-character accuracy otherwise."""
    model.eval()
    out = model(x)
    if model.task == "regress":
        err = (out - y).abs()
        return (err**2).mean(), (err < ADDING_TOLERANCE).to(out.dtype).mean()
    loss = F.cross_entropy(out.flatten(0, 1), y.flatten())
    return loss, (out.argmax(dim=-1) == y).to(out.dtype).mean()
