"""Configs shared by both sides: frozen, commented dataclasses.

A config is plain data. Both training scripts build the same `TrainConfig` and the same model
config from the same flags (`shared.cli`), both write them to `config.json` and into every
checkpoint's metadata, and either side can rebuild a model from what the other wrote. The model
configs live in `shared/configs/`, one module per model family, and `shared.registry` lists
them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from shared.configs.cnn import CNNBNConfig, CNNConfig, CNNDropoutConfig
from shared.configs.gpt import GPTConfig
from shared.configs.mlp import NOT_SEQUENCES, MLPConfig
from shared.configs.rnn import GATES, ElmanConfig, GRUConfig, LSTMConfig, RNNConfig
from shared.optim import OptimizerSpec, ScheduleSpec
from shared.registry import ENTRIES

__all__ = [  # the model configs, re-exported: `from shared.config import GPTConfig`
    "CNNBNConfig", "CNNConfig", "CNNDropoutConfig", "ElmanConfig", "GATES", "GPTConfig",
    "GRUConfig", "LSTMConfig", "MLPConfig", "NOT_SEQUENCES", "RNNConfig", "MODEL_CONFIGS",
    "TrainConfig", "DTYPES", "DEVICES", "to_dict", "to_json", "model_config_from_dict",
    "train_config_from_dict",
]  # fmt: skip

DTYPES = ("float32", "float64")
DEVICES = ("cpu", "gpu")


# Model name -> config class, in the course's order: derived from shared.registry.
MODEL_CONFIGS: dict[str, type] = {e.name: e.config for e in ENTRIES}


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
    tf32: bool = False  # gpu: float32 products and convolutions in TF32 (10-bit mantissa)
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
        if self.tf32 and self.device != "gpu":
            raise ValueError("TF32 is a GPU setting: add --device gpu, or drop --tf32")
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**63:  # what NumPy's, JAX's and torch's generators all take
            raise ValueError(f"seed must lie in [0, 2**63), got {self.seed}")

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
    cls = MODEL_CONFIGS[model]
    unknown = sorted(set(values) - set(cls.__dataclass_fields__))
    if unknown:  # what a newer version would write
        raise ValueError(
            f"the {model}'s settings hold {', '.join(unknown)}, which this version of paradigms "
            "does not know (a newer version's file); upgrade paradigms"
        )
    try:
        return cls(**values)
    except TypeError as e:  # a setting of the wrong type: a damaged file
        raise ValueError(f"the {model}'s settings are damaged ({e})") from None


def train_config_from_dict(values: dict[str, Any]) -> TrainConfig:
    values = dict(values)
    if isinstance(values.get("optimizer"), str):  # format of the first release: flat fields
        flat = {k: values.pop(k) for k in list(values) if k in OptimizerSpec.__dataclass_fields__}
        values["optimizer"] = OptimizerSpec(name=values["optimizer"], **flat)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        return TrainConfig(**{k: v for k, v in values.items() if k in known})
    except TypeError as e:  # a setting of the wrong type: a damaged file
        raise ValueError(f"the training settings are damaged ({e})") from None
