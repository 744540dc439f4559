"""The recurrent models' configs (`--model rnn`, `gru`, `lstm`)."""

from __future__ import annotations

from dataclasses import dataclass

GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # blocks stacked in weight_ih: torch's r,z,n and i,f,g,o


@dataclass(frozen=True)
class RNNConfig:
    """A recurrent network: `layers` stacked cells of `width` units, then a linear head.

    task "regress" (the adding problem): the floats of each step go straight in, and the head
    reads the top layer's last hidden state, one number per sequence. task "next-char": an
    embedding of `in_features` characters feeds the cells, and the head gives logits over the
    same characters at every step. Canonical names are torch's `nn.RNN`/`nn.GRU`/`nn.LSTM`:
    `rnn.weight_ih_l{k}` `(gates * width, in)`, `rnn.weight_hh_l{k}` `(gates * width, width)`,
    `rnn.bias_ih_l{k}`, `rnn.bias_hh_l{k}`, with gates stacked in torch's order.
    """

    cell: str = "gru"  # "rnn" (Elman, tanh), "gru" (gates r, z, n) or "lstm" (i, f, g, o)
    in_features: int = 2  # floats per step (regress) or the vocabulary size (next-char)
    width: int = 128  # hidden units per layer; also the embedding size of a character model
    layers: int = 1  # stacked layers; layer k > 0 reads layer k - 1's hidden states
    task: str = "regress"  # "regress" or "next-char"
    vocab: str = ""  # next-char: the characters by id, so a checkpoint decodes on its own

    def __post_init__(self) -> None:
        if self.cell not in GATES:
            raise ValueError(f"unknown cell {self.cell!r}; choose rnn, gru or lstm")
        if self.task not in ("regress", "next-char"):
            raise ValueError(f"unknown task {self.task!r}; choose regress or next-char")
        for name in ("in_features", "width", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"RNNConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.vocab and len(self.vocab) != self.in_features:
            raise ValueError(f"RNNConfig: {len(self.vocab)} characters for {self.in_features} ids")

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def input_features(self) -> int:
        """Floats per step, or the vocabulary size, as the data set reports it."""
        return self.in_features

    @property
    def out_features(self) -> int:
        return 1 if self.task == "regress" else self.in_features

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape, in torch's layout and attribute order."""
        g, h = self.gates, self.width
        shapes: dict[str, tuple[int, ...]] = {}
        if self.task == "next-char":
            shapes["embed.weight"] = (self.in_features, h)
        first = self.in_features if self.task == "regress" else h
        for k in range(self.layers):
            shapes[f"rnn.weight_ih_l{k}"] = (g * h, first if k == 0 else h)
            shapes[f"rnn.weight_hh_l{k}"] = (g * h, h)
            shapes[f"rnn.bias_ih_l{k}"] = (g * h,)
            shapes[f"rnn.bias_hh_l{k}"] = (g * h,)
        shapes["head.weight"] = (self.out_features, h)
        shapes["head.bias"] = (self.out_features,)
        return shapes

    @classmethod
    def for_data(cls, ds, **sizes) -> RNNConfig:
        """The config for a sequence data set, with `sizes` (`width`, `layers`) over the
        defaults."""
        if ds.task == "classify":
            name = cls().cell
            raise ValueError(f"the {name} needs a sequence data set: --dataset adding or pycorpus")
        return cls(in_features=ds.in_features, task=ds.task, vocab=ds.vocab or "", **sizes)


@dataclass(frozen=True)
class ElmanConfig(RNNConfig):
    cell: str = "rnn"


@dataclass(frozen=True)
class GRUConfig(RNNConfig):
    cell: str = "gru"


@dataclass(frozen=True)
class LSTMConfig(RNNConfig):
    cell: str = "lstm"
