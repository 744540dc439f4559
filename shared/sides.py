"""The sides: the grid's four corners, two paradigms on two frameworks, and Keras on three.

|                 | JAX                               | PyTorch                                   |
|-----------------|-----------------------------------|-------------------------------------------|
| functional      | `functional` (equinox, optax)     | `functional_torch` (`torch.func`)         |
| object-oriented | `oop_jax` (Flax NNX, optax)       | `oop` (`nn.Module`, `torch.optim`)        |

Walking a row keeps the paradigm and changes the framework; walking a column keeps the
framework and changes the paradigm. Every side writes the same run folders and canonical
checkpoints, so any two compare (`python -m shared.compare A B`) and any one resumes another's
run. The two native sides have every model of `shared.registry`; the grid's other corners have
the models they name here, and refuse the others with that list. The fifth side, `keras3`,
stands outside the grid: one Keras model file per model, run on JAX, PyTorch or TensorFlow,
chosen per process with `--backend`.

    python -m shared.sides                the sides, one line each
    python -m shared.sides --having gpt   the packages of the sides that have the gpt
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from shared import registry
from shared.cli.base import Parser


@dataclass(frozen=True)
class Side:
    """One corner of the grid: where its code lives and what it is."""

    name: str  # the run folder's and the checkpoint's "side"
    package: str  # its import path: `python -m PACKAGE.train`
    paradigm: str  # "functional" or "object-oriented"
    framework: str  # "JAX" or "PyTorch": the column
    libraries: str  # what it is built on, for --help
    models: tuple[str, ...] = registry.NAMES  # the registry's models it has
    backends: tuple[str, ...] = ()  # Keras: the frameworks it runs on, one per process

    def refuse_unless_has(self, model: str) -> None:
        """A model this side does not have is refused, naming those it has."""
        if model not in self.models:
            *most, last = self.models
            has = f"{', '.join(most)} and {last}" if most else last
            raise ValueError(f"the {self.name} side has no {model}; it has {has}")


GRID_MODELS = ("mlp", "cnn_bn", "gpt")  # what the grid's other corners build
KERAS_BACKENDS = ("jax", "torch", "tensorflow")  # keras3.backend.BACKENDS; jax is the default

SIDES: dict[str, Side] = {
    s.name: s
    for s in (
        Side("functional", "functional", "functional", "JAX", "JAX + equinox + optax"),
        Side("oop", "oop", "object-oriented", "PyTorch", "PyTorch"),
        Side("oop_jax", "crossover.oop_jax", "object-oriented", "JAX", "JAX + Flax NNX + optax",
             GRID_MODELS),
        Side("functional_torch", "crossover.functional_torch", "functional", "PyTorch",
             "PyTorch + torch.func", GRID_MODELS),
        Side("keras3", "keras3", "object-oriented", "Keras", "Keras 3 on JAX, PyTorch or "
             "TensorFlow (--backend)", backends=KERAS_BACKENDS),
    )
}  # fmt: skip
NAMES: tuple[str, ...] = tuple(SIDES)


def side(name: str) -> Side:
    """The side called `name`; an unknown one is refused with the list."""
    if name not in SIDES:
        raise ValueError(f"unknown side {name!r}; the sides are {', '.join(NAMES)}")
    return SIDES[name]


GRID: tuple[str, ...] = ("functional", "oop", "oop_jax", "functional_torch")  # the 2x2 grid


def same_framework(s: Side) -> Side:
    """The other side of `s`'s column of the grid: the same framework, the other paradigm."""
    return next(SIDES[o] for o in GRID if SIDES[o].framework == s.framework and o != s.name)


def same_paradigm(s: Side) -> Side:
    """The other side of `s`'s row of the grid: the same paradigm, the other framework."""
    return next(SIDES[o] for o in GRID if SIDES[o].paradigm == s.paradigm and o != s.name)


def main(argv: list[str] | None = None) -> None:
    p = Parser(
        prog="python -m shared.sides",
        description="The sides: the grid's four (each paradigm on each framework) and Keras, "
        "with their models.",
    )
    p.add_argument("--having", metavar="MODEL", help="print only the packages of the sides that "
                   "have MODEL and a bench, one per line (the Makefile's bench plan)")  # fmt: skip
    args = p.parse_args(argv)
    if args.having:
        try:
            registry.entry(args.having)  # an unknown model is refused with the list
        except ValueError as e:
            p.error(str(e))
        print("\n".join(s.package for s in SIDES.values() if args.having in s.models
                        and importlib.util.find_spec(f"{s.package}.bench")))  # fmt: skip
        return
    for s in SIDES.values():
        print(f"{s.name:17} python -m {s.package + '.train':34} {s.paradigm:16} {s.framework:8} "
              f"{' '.join(s.models)}")  # fmt: skip


if __name__ == "__main__":
    main()
