"""The CNNs' configs (`--model cnn`, `cnn_bn`, `cnn_dropout`)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.configs.mlp import NOT_SEQUENCES


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
    def for_data(cls, ds, **sizes) -> CNNConfig:
        """The config for an image data set, with `sizes` (`width`; `dropout` for cnn_dropout)
        over the defaults."""
        if ds.task != "classify":
            raise ValueError(NOT_SEQUENCES.format(model="cnn"))
        if ds.image_shape is None:
            raise ValueError("the cnn needs an image data set: --dataset digits or mnist5k")
        channels, height, width_px = ds.image_shape
        if height != width_px:
            raise ValueError(f"the cnn takes square images, got {height}x{width_px}")
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
