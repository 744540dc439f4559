"""Configs shared by both sides: frozen, commented dataclasses.

A config is plain data. Both training scripts build the same `TrainConfig` and the same model
config from the same flags (`shared.cli`), both write them to `config.json` and into every
checkpoint's metadata, and either side can rebuild a model from what the other wrote.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from shared.optim import OptimizerSpec, ScheduleSpec

DTYPES = ("float32", "float64")
DEVICES = ("cpu", "gpu")


NOT_SEQUENCES = (
    "the {model} classifies; adding and pycorpus are sequence data sets for --model rnn, gru, "
    "lstm (and gpt for pycorpus)"
)


@dataclass(frozen=True)
class MLPConfig:
    """A multilayer perceptron: `layers` hidden layers of `width` units, ReLU between them.

    The canonical weights are `layers.0.weight`, `layers.0.bias`, ..., `layers.{layers}.weight`:
    `layers + 1` linear maps, the last one producing the class logits.
    """

    in_features: int = 64  # input size: 64 pixels for the 8x8 digits, 2 for moons and spirals
    out_features: int = 10  # number of classes
    width: int = 256  # units in each hidden layer
    layers: int = 2  # number of hidden layers; 0 gives logistic regression

    def __post_init__(self) -> None:
        for name in ("in_features", "out_features", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"MLPConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.layers < 0:
            raise ValueError(f"MLPConfig.layers must be >= 0, got {self.layers}")

    @property
    def input_features(self) -> int:
        """Length of one flat input row, as a data set stores it."""
        return self.in_features

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """`(in, out)` of each linear map, input to output."""
        dims = [self.in_features] + [self.width] * self.layers + [self.out_features]
        return list(zip(dims[:-1], dims[1:], strict=True))

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical name -> shape, in torch's layout (`weight` is `(out, in)`)."""
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (fan_in, fan_out) in enumerate(self.sizes):
            shapes[f"layers.{i}.weight"] = (fan_out, fan_in)
            shapes[f"layers.{i}.bias"] = (fan_out,)
        return shapes

    @classmethod
    def for_data(cls, ds, *, width=None, layers=None, dropout=None) -> MLPConfig:
        """The config for a data set (`shared.data.load`'s result); `width` and `layers` None
        take the defaults. Image rows are flat already, so any classification data set fits."""
        if ds.task != "classify":
            raise ValueError(NOT_SEQUENCES.format(model="mlp"))
        if dropout is not None:
            raise ValueError("--dropout belongs to cnn_dropout and gpt; the mlp has no dropout")
        sizes = {k: v for k, v in (("width", width), ("layers", layers)) if v is not None}
        return cls(in_features=ds.in_features, out_features=ds.num_classes, **sizes)


@dataclass(frozen=True)
class CNNConfig:
    """Two blocks of conv -> ReLU -> 2x2 max-pool, then a linear head on the flattened maps.

    Inputs are NCHW: a data set's flat rows viewed as `(channels, size, size)` images. The
    3x3 convs pad by 1, so each block keeps the size and its pool halves it: 28 -> 14 -> 7 for
    MNIST, 8 -> 4 -> 2 for the digits. Canonical weights: `convs.0.weight` `(width, C, 3, 3)`,
    `convs.0.bias`, `convs.1.*` (2 * width channels), `head.weight`, `head.bias`.
    """

    in_channels: int = 1  # 1 for the grey-scale digits and MNIST
    image_size: int = 28  # height = width of the input images
    out_features: int = 10  # number of classes
    width: int = 16  # channels of the first conv; the second has twice as many

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_features", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"CNNConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 4 or self.image_size % 4:
            raise ValueError(
                f"the cnn pools twice by 2, so the image size must be a multiple of 4 and at "
                f"least 4, got {self.image_size}"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)

    @property
    def input_features(self) -> int:
        """Length of one flat input row, as a data set stores it."""
        return self.in_channels * self.image_size**2

    @property
    def head_features(self) -> int:
        """Inputs of the head: 2 * width maps of (size / 4)^2 pixels, flattened in C order."""
        return 2 * self.width * (self.image_size // 4) ** 2

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        c, w = self.in_channels, self.width
        return {
            "convs.0.weight": (w, c, 3, 3),
            "convs.0.bias": (w,),
            "convs.1.weight": (2 * w, w, 3, 3),
            "convs.1.bias": (2 * w,),
            "head.weight": (self.out_features, self.head_features),
            "head.bias": (self.out_features,),
        }

    @classmethod
    def for_data(cls, ds, *, width=None, layers=None, dropout=None) -> CNNConfig:
        if ds.task != "classify":
            raise ValueError(NOT_SEQUENCES.format(model="cnn"))
        if ds.image_shape is None:
            raise ValueError("the cnn needs an image data set: --dataset digits or mnist5k")
        if layers is not None:
            raise ValueError(
                "--layers applies to mlp, rnn, gru, lstm and gpt; the cnn has two blocks"
            )
        channels, height, width_px = ds.image_shape
        if height != width_px:
            raise ValueError(f"the cnn takes square images, got {height}x{width_px}")
        sizes = {} if width is None else {"width": width}
        if dropout is not None:
            if "dropout" not in {f.name for f in dataclasses.fields(cls)}:
                raise ValueError("--dropout belongs to cnn_dropout; use --model cnn_dropout")
            sizes["dropout"] = dropout
        return cls(in_channels=channels, image_size=height, out_features=ds.num_classes, **sizes)


@dataclass(frozen=True)
class CNNBNConfig(CNNConfig):
    """`cnn` with BatchNorm after each conv, whose bias is dropped (the norm's mean subtraction
    would cancel it). Parameters: `convs.i.weight`, `norms.i.weight`, `norms.i.bias`,
    `head.*`; buffers (state): `norms.i.running_mean`, `running_var`, `num_batches_tracked`."""

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The parameters (not the buffers), canonical name -> shape."""
        shapes = {k: v for k, v in super().weight_shapes().items() if not k.startswith("convs.")}
        c, w = self.in_channels, self.width
        return {
            "convs.0.weight": (w, c, 3, 3),
            "convs.1.weight": (2 * w, w, 3, 3),
            "norms.0.weight": (w,),
            "norms.0.bias": (w,),
            "norms.1.weight": (2 * w,),
            "norms.1.bias": (2 * w,),
            **shapes,
        }


@dataclass(frozen=True)
class CNNDropoutConfig(CNNConfig):
    """`cnn` with Dropout on the flattened features, before the head; the same weights."""

    dropout: float = 0.5  # the probability of zeroing each feature in training (torch's p)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must lie in [0, 1), got {self.dropout}")


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
    def for_data(cls, ds, *, width=None, layers=None, dropout=None) -> RNNConfig:
        name = cls().cell
        if ds.task == "classify":
            raise ValueError(f"the {name} needs a sequence data set: --dataset adding or pycorpus")
        if dropout is not None:
            raise ValueError(f"--dropout belongs to cnn_dropout and gpt; the {name} has no dropout")
        sizes = {k: v for k, v in (("width", width), ("layers", layers)) if v is not None}
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
        for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"GPTConfig.{name} must be >= 1, got {getattr(self, name)}")
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

    @property  # the flags' names, which --init and --resume compare
    def layers(self) -> int:
        return self.n_layer

    @property
    def width(self) -> int:
        return self.n_embd

    @property
    def heads(self) -> int:
        return self.n_head

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
    def for_data(cls, ds, *, width=None, layers=None, dropout=None, heads=None) -> GPTConfig:
        if ds.task != "next-char":
            raise ValueError("the gpt is a character model: --dataset pycorpus")
        flags = (("n_embd", width), ("n_layer", layers), ("dropout", dropout), ("n_head", heads))
        sizes = {k: v for k, v in flags if v is not None}
        return cls(block_size=ds.seq_len, vocab_size=ds.in_features, vocab=ds.vocab, **sizes)


# Model name -> config class. A later model adds itself here and to both sides' registries.
MODEL_CONFIGS: dict[str, type] = {
    "mlp": MLPConfig,
    "cnn": CNNConfig,
    "cnn_bn": CNNBNConfig,
    "cnn_dropout": CNNDropoutConfig,
    "rnn": ElmanConfig,
    "gru": GRUConfig,
    "lstm": LSTMConfig,
    "gpt": GPTConfig,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything about a training run except the model's shape. The optimizer and schedule
    hyperparameters mean what they mean in PyTorch (`shared.optim`); the functional side
    translates."""

    model: str = "mlp"  # a key of MODEL_CONFIGS
    dataset: str = "digits"  # a name from shared.data.NAMES
    steps: int = 1000  # the update count the run ends at (absolute, also when resuming)
    batch_size: int = 128  # examples per update; the last partial batch of an epoch is dropped
    seq_len: int | None = None  # adding, pycorpus: steps per sequence (None: the data set's)
    data_sha256: str | None = None  # pycorpus: the SHA-256 of the text trained on (set by the CLI)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)  # default: torch's Adam
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)  # lr schedule, per update
    seed: int = 0  # seeds the initial weights and the batch order (the data split is fixed)
    dtype: str = "float32"  # "float32" or "float64", for weights, data and optimizer state
    device: str = "cpu"  # "cpu" or "gpu"
    eval_every: int = 100  # evaluate on the test split every N updates (0: only at the end)
    save_every: int = 0  # write step-N.safetensors every N updates (0: only init and final)

    def __post_init__(self) -> None:
        if isinstance(self.optimizer, dict):  # from JSON metadata
            object.__setattr__(self, "optimizer", OptimizerSpec(**self.optimizer))
        if isinstance(self.schedule, dict):
            object.__setattr__(self, "schedule", ScheduleSpec(**self.schedule))
        if self.schedule.name == "cosine":  # the horizon is fixed once, so a resume keeps it
            object.__setattr__(self, "schedule", self.schedule.resolved(self.steps))
        if self.model not in MODEL_CONFIGS:
            raise ValueError(f"unknown model {self.model!r}; available: {', '.join(MODEL_CONFIGS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {self.dtype!r}; use one of {', '.join(DTYPES)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; use one of {', '.join(DEVICES)}")
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def lr(self) -> float:
        """The base learning rate (before the schedule)."""
        return self.optimizer.lr


def to_dict(config: Any) -> dict[str, Any]:
    """A config as a JSON-ready dict."""
    return dataclasses.asdict(config)


def to_json(config: Any) -> str:
    return json.dumps(to_dict(config), sort_keys=True)


def model_config_from_dict(model: str, values: dict[str, Any]):
    """Rebuild a model config from `to_dict` output, e.g. from a checkpoint's metadata."""
    if model not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {model!r}; available: {', '.join(MODEL_CONFIGS)}")
    return MODEL_CONFIGS[model](**values)


def train_config_from_dict(values: dict[str, Any]) -> TrainConfig:
    values = dict(values)
    if isinstance(values.get("optimizer"), str):  # format of the first release: flat fields
        flat = {k: values.pop(k) for k in list(values) if k in OptimizerSpec.__dataclass_fields__}
        values["optimizer"] = OptimizerSpec(name=values["optimizer"], **flat)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in values.items() if k in known})
