"""The one list of models. Everything that names the models derives from it.

Each entry says what a model is called (`--model NAME`), which config class builds it, which
file holds its twins (`functional/models/FILE.py` and `oop/models/FILE.py`), which of the
training scripts' size flags it takes and what each one sets, and how the benchmarks time it.
The entries stand in the order the course climbs, which is the reader's order too.

What derives from this list: both sides' `models.MODELS`, `shared.config.MODEL_CONFIGS`, the
`--model` choices and the size flags' help of every script, the refusal of a flag a model does
not take, the benchmarks' default data set and batch, the Makefile's `bench` plan
(`python -m shared.registry`), the reader's order and the GPU check's model list. Adding a model
is: its config in `shared/configs/`, its twin files, one entry here, its tests, its docs page.

    python -m shared.registry          the models, one line each
    python -m shared.registry --bench  the Makefile's bench plan: NAME STEPS REPEATS per line
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from shared.cli.base import Parser
from shared.configs.cnn import CNNBNConfig, CNNConfig, CNNDropoutConfig
from shared.configs.gpt import GPTConfig
from shared.configs.mlp import MLPConfig
from shared.configs.rnn import ElmanConfig, GRUConfig, LSTMConfig

# The training scripts' size flags (`--width`, `--layers`, `--heads`, `--dropout`), by the key
# argparse gives them; each model says which it takes and what each sets (`Entry.flags`).
SIZE_FLAGS = ("width", "layers", "heads", "dropout")


@dataclass(frozen=True)
class Flag:
    """A size flag as one model reads it: the config field it sets, and what it means there."""

    field: str  # the config's field, e.g. the gpt's n_embd for --width
    help: str  # what the flag sets in this model, for --help


@dataclass(frozen=True)
class Entry:
    """One model: its name, its config, its twin files, its flags and its benchmark."""

    name: str  # --model NAME; also the checkpoint's "model"
    config: type  # the frozen dataclass in shared/configs/ with for_data and weight_shapes
    file: str  # functional/models/FILE.py and oop/models/FILE.py (rnn serves rnn, gru, lstm)
    title: str  # a few words for listings
    flags: dict[str, Flag] = field(default_factory=dict)  # size flag -> what it sets
    bench_data: str = "digits"  # the data set the benchmarks time it on
    bench_batch: int = 128  # the benchmarks' batch
    bench_steps: int = 50  # updates per timed block in `make bench`
    bench_repeats: int = 5  # timed blocks in `make bench`

    def default(self, flag: str):
        """The config's default for a size flag, e.g. 256 for the mlp's --width."""
        return {f.name: f.default for f in dataclasses.fields(self.config)}[self.flags[flag].field]

    def fields(self, flags: dict[str, object]) -> dict[str, object]:
        """Size flags given (None: not given) -> the config fields they set. A flag this model
        does not take is refused, naming the models that do."""
        out = {}
        for key, value in flags.items():
            if value is None:
                continue
            if key not in self.flags:
                *most, last = [e.name for e in ENTRIES if key in e.flags]
                takers = f"{', '.join(most)} and {last}" if most else last
                raise ValueError(f"--{key} applies to {takers}; the {self.name} takes no --{key}")
            out[self.flags[key].field] = value
        return out

    def flag_values(self, config) -> dict[str, object]:
        """A built config's values under the flags' names (None for a flag it does not take),
        the form in which --init fills in sizes and --resume compares them."""
        return {k: getattr(config, self.flags[k].field) if k in self.flags else None
                for k in SIZE_FLAGS}  # fmt: skip


_MLP = {"width": Flag("width", "units per hidden layer"), "layers": Flag("layers", "hidden layers")}
_CNN = {"width": Flag("width", "channels of the first conv")}
_RNN = {"width": Flag("width", "hidden units"), "layers": Flag("layers", "stacked layers")}
_DROP = "probability of zeroing each feature before the head"

ENTRIES: tuple[Entry, ...] = (
    Entry("mlp", MLPConfig, "mlp", "multilayer perceptron", _MLP),
    Entry("cnn", CNNConfig, "cnn", "two conv blocks and a head", _CNN),
    Entry("cnn_bn", CNNBNConfig, "cnn_bn", "the cnn with BatchNorm", _CNN),
    Entry("cnn_dropout", CNNDropoutConfig, "cnn_dropout", "the cnn with Dropout",
          {**_CNN, "dropout": Flag("dropout", _DROP)}),
    Entry("rnn", ElmanConfig, "rnn", "Elman recurrent network", _RNN, bench_data="adding"),
    Entry("gru", GRUConfig, "rnn", "gated recurrent unit", _RNN, bench_data="adding"),
    Entry("lstm", LSTMConfig, "rnn", "long short-term memory", _RNN, bench_data="adding"),
    Entry("gpt", GPTConfig, "gpt", "GPT-mini, a character transformer",
          {"width": Flag("n_embd", "the embedding width"), "layers": Flag("n_layer", "blocks"),
           "heads": Flag("n_head", "attention heads per block; --width must be a multiple"),
           "dropout": Flag("dropout", "after the embeddings, on attention weights and on "
                                      "residuals")},
          bench_data="pycorpus", bench_batch=32, bench_steps=10, bench_repeats=3),
)  # fmt: skip

BY_NAME: dict[str, Entry] = {e.name: e for e in ENTRIES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
FILES: tuple[str, ...] = tuple(dict.fromkeys(e.file for e in ENTRIES))  # reading order, once


def entry(name: str) -> Entry:
    """The entry of `--model NAME`; an unknown name is refused with the list."""
    if name not in BY_NAME:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(NAMES)}")
    return BY_NAME[name]


def flag_help(flag: str, tail: str = "") -> str:
    """A size flag's --help: what it sets in each model that takes it, with the default,
    models that read it alike grouped (`rnn, gru, lstm: hidden units (128)`)."""
    groups: dict[tuple[str, object], list[str]] = {}
    for e in ENTRIES:
        if flag in e.flags:
            groups.setdefault((e.flags[flag].help, e.default(flag)), []).append(e.name)
    parts = [f"{', '.join(names)}: {text} (default {d})" for (text, d), names in groups.items()]
    return "; ".join(parts) + tail


def main(argv: list[str] | None = None) -> None:
    p = Parser(
        prog="python -m shared.registry",
        description="The models paradigms builds on both sides, in the course's order.",
    )
    p.add_argument("--bench", action="store_true", help="print `make bench`'s plan: NAME STEPS "
                   "REPEATS, one model per line")  # fmt: skip
    args = p.parse_args(argv)
    for e in ENTRIES:
        if args.bench:
            print(e.name, e.bench_steps, e.bench_repeats)
        else:
            flags = " ".join(f"--{k}" for k in e.flags) or "-"
            print(f"{e.name:12} {e.file + '.py':15} {e.title:36} {flags}")


if __name__ == "__main__":
    main()
