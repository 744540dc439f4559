"""GPT-mini's config (`--model gpt`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GPTConfig:
    """A small GPT: token and position embeddings, `n_layer` pre-LayerNorm blocks of causal
    self-attention and an MLP (exact GELU), a final LayerNorm, and a head tied to the token
    embedding (stored once, as `wte.weight`). Canonical names, per block i: `blocks.i.ln_1.*`,
    `blocks.i.attn.{q,k,v,out}_proj.*`, `blocks.i.ln_2.*`, `blocks.i.mlp.fc.*`,
    `blocks.i.mlp.proj.*`; around them `wte.weight`, `wpe.weight` and `ln_f.*`.

    Flags: `--layers` n_layer, `--heads` n_head, `--width` n_embd, `--seq-len` block_size,
    `--dropout` dropout. The default has 0.82 M parameters for pycorpus's 103 characters.
    """

    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block; n_embd / n_head dims each
    n_embd: int = 128  # the width of the residual stream
    block_size: int = 128  # the longest context: rows of the position embedding
    vocab_size: int = 103  # characters; pycorpus's count on Python 3.11
    dropout: float = 0.0  # torch's p, after the embeddings, on attention weights, on residuals
    bias: bool = True  # biases in the Linear layers and LayerNorms
    vocab: str = ""  # the characters by id, so a checkpoint decodes on its own

    def __post_init__(self) -> None:
        flags = {"n_layer": "--layers", "n_head": "--heads", "n_embd": "--width",
                 "block_size": "--seq-len", "vocab_size": "the vocabulary"}  # fmt: skip
        for name, flag in flags.items():
            if getattr(self, name) < 1:
                raise ValueError(f"{flag} ({name}) must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"--width {self.n_embd} must be a multiple of --heads {self.n_head}: each head "
                "takes an equal slice of the width"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if self.vocab and len(self.vocab) != self.vocab_size:
            raise ValueError(f"GPTConfig: {len(self.vocab)} characters for {self.vocab_size} ids")

    task = "next-char"  # what the data set must offer, as for a character RNN

    @property
    def input_features(self) -> int:
        return self.vocab_size

    @property
    def out_features(self) -> int:
        return self.vocab_size

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape, in torch's layout and attribute order."""
        c = self.n_embd

        def linear(name: str, fan_in: int, fan_out: int) -> dict[str, tuple[int, ...]]:
            return {f"{name}.weight": (fan_out, fan_in), f"{name}.bias": (fan_out,)}

        def norm(name: str) -> dict[str, tuple[int, ...]]:
            return {f"{name}.weight": (c,), f"{name}.bias": (c,)}

        shapes = {"wte.weight": (self.vocab_size, c), "wpe.weight": (self.block_size, c)}
        for k in range(self.n_layer):
            b = f"blocks.{k}"
            shapes |= norm(f"{b}.ln_1")
            for n in ("q", "k", "v", "out"):
                shapes |= linear(f"{b}.attn.{n}_proj", c, c)
            shapes |= norm(f"{b}.ln_2") | linear(f"{b}.mlp.fc", c, 4 * c)
            shapes |= linear(f"{b}.mlp.proj", 4 * c, c)
        shapes |= norm("ln_f")
        if not self.bias:
            shapes = {k: v for k, v in shapes.items() if not k.endswith(".bias")}
        return shapes

    @classmethod
    def for_data(cls, ds, **sizes) -> GPTConfig:
        """The config for pycorpus, with `sizes` (`n_embd`, `n_layer`, `n_head`, `dropout`)
        over the defaults; the block size and the vocabulary come from the data set."""
        if ds.task != "next-char":
            raise ValueError("the gpt is a character model: --dataset pycorpus")
        return cls(block_size=ds.seq_len, vocab_size=ds.in_features, vocab=ds.vocab, **sizes)
