"""The MLP's config (`--model mlp`)."""

from __future__ import annotations

from dataclasses import dataclass

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
    def for_data(cls, ds, **sizes) -> MLPConfig:
        """The config for a data set (`shared.data.load`'s result), with `sizes` (`width`,
        `layers`) over the defaults; `shared.registry` turns the flags into these fields. Image
        rows are flat already, so any classification data set fits."""
        if ds.task != "classify":
            raise ValueError(NOT_SEQUENCES.format(model="mlp"))
        return cls(in_features=ds.in_features, out_features=ds.num_classes, **sizes)
