"""`OptimizerSpec` + `ScheduleSpec` -> a Keras optimizer that computes what `torch.optim` does.

Twin of `oop/optim.py` and `functional/optim.py`. Keras's optimizers are objects, as torch's
are, but their formulas are Keras's: `Adam` adds epsilon to the uncorrected `sqrt(v)` (and
defaults to 1e-7), `SGD` keeps the momentum buffer with the learning rate inside, `RMSprop`
and `Adagrad` put epsilon inside the square root (and Adagrad's sum starts at 0.1),
`global_clipnorm` divides by the norm without torch's 1e-6, and `weight_decay` is decoupled
on every optimizer (torch's SGD, Adam, RMSprop and Adagrad add `wd * p` to the gradient).
docs/keras.md shows each difference. So each optimizer here is a small subclass of
`keras.optimizers.Optimizer` whose `update_step` is torch's, with its slots under torch's
state keys; the schedule is a `LearningRateSchedule` over the package's closed form
(`shared.optim.learning_rate`), indexed by Keras's `iterations` (update t counted from 0, as
torch's schedulers count). They run on all three backends and inside `fit`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from shared.optim import OptimizerSpec, ScheduleSpec, check_supported, learning_rate, state_keys


# -- optimizer --
class TorchOptimizer(keras.optimizers.Optimizer):
    """What the five optimizers share: slots under torch's keys, torch's weight decay (coupled,
    or AdamW's decoupled) with `no_decay` by canonical name, and `clip_grad_norm_`'s clipping.

    **Arguments:**

    - `spec`: the run's `OptimizerSpec` (torch's meaning of every hyperparameter).
    - `learning_rate`: a float or a `Schedule`.
    - `decays`: Keras variable path -> whether weight decay applies (`no_decay` read against
      the canonical names, `keras3.convert.names_by_path`); absent paths decay.
    """

    def __init__(
        self, spec: OptimizerSpec, learning_rate, *, decays: dict[str, bool] | None = None
    ):
        super().__init__(learning_rate=learning_rate, name=f"torch_{spec.name}")
        self.spec, self.decays = spec, decays or {}
        self._slots: dict[str, list] = {}

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._decay = [self.decays.get(v.path, True) for v in variables]  # by variable index
        for key in state_keys(self.spec):
            start = self.spec.initial_accumulator if key == "sum" else 0.0
            self._slots[key] = [
                self.add_variable_from_reference(
                    v, name=key, initializer=keras.initializers.Constant(start)
                )
                for v in variables
            ]

    def slots_of(self, variable) -> dict[str, object]:
        """torch's state key -> this variable's slot (`exp_avg`, `momentum_buffer`, ...)."""
        i = self._get_variable_index(variable)
        return {key: slots[i] for key, slots in self._slots.items()}

    def apply(self, grads, trainable_variables=None):
        """Clip as `clip_grad_norm_` does (by `max_norm / (norm + 1e-6)`, at most 1), then the
        update; Keras's own `global_clipnorm` divides by the norm alone. TensorFlow's graphs
        hand an embedding's gradient over as `IndexedSlices` (the rows the batch read); torch's
        is dense, and so is the arithmetic here, so they are added to zeros (repeated rows
        summed)."""
        if any(hasattr(g, "indices") for g in grads):
            known = self._trainable_variables if trainable_variables is None else None
            trainable_variables = list(trainable_variables or known)
            grads = [ops.add(ops.zeros_like(v), g) if hasattr(g, "indices") else g
                     for g, v in zip(grads, trainable_variables, strict=True)]  # fmt: skip
        clip = self.spec.clip_norm
        if clip is not None:
            norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads if g is not None))
            grads = [g if g is None else g * ops.cast(ops.minimum(clip / (norm + 1e-6), 1.0),
                                                      g.dtype) for g in grads]  # fmt: skip
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        s, dtype = self.spec, variable.dtype
        lr64 = ops.cast(learning_rate, "float64")  # torch's lr is a Python float (a double)
        g = ops.cast(gradient, dtype)
        wd = s.weight_decay if self._decay[self._get_variable_index(variable)] else 0.0
        p = ops.convert_to_tensor(variable)
        if wd and s.name == "adamw":  # decoupled: p *= 1 - lr * wd, before the moments
            p = p * ops.cast(1 - lr64 * wd, dtype)
        elif wd:  # torch's L2: the decay joins the gradient
            g = g + wd * p
        scale, direction = self._direction(g, variable, dtype, lr64)
        self.assign(variable, p - ops.cast(scale, dtype) * direction)

    def _direction(self, g, variable, dtype, lr64):
        """`(scale, direction)` of the step `p -= scale * direction`, as torch splits it (the
        scale a double, as torch computes it in Python); moves the slots, each new value
        computed once, assigned, and used as computed."""
        s, slot = self.spec, self.slots_of(variable)
        if s.name == "sgd":
            if not s.momentum:
                return lr64, g
            buf = self._move(slot["momentum_buffer"], lambda b: s.momentum * b + g)
            return lr64, (g + s.momentum * buf if s.nesterov else buf)
        if s.name in ("adam", "adamw"):
            m = self._move(slot["exp_avg"], lambda m: m + (1 - s.beta1) * (g - m))  # torch's lerp
            v = self._move(slot["exp_avg_sq"], lambda v: s.beta2 * v + (1 - s.beta2) * g * g)
            t = ops.cast(self.iterations + 1, "float64")  # torch's step, counted from 1
            bc1, bc2 = 1 - s.beta1**t, 1 - s.beta2**t  # in double precision, as torch's
            denom = ops.sqrt(v) / ops.cast(ops.sqrt(bc2), dtype) + s.eps
            return lr64 / bc1, m / denom
        if s.name == "rmsprop":
            sq = self._move(slot["square_avg"], lambda a: s.alpha * a + (1 - s.alpha) * g * g)
            if s.centered:
                ga = self._move(slot["grad_avg"], lambda a: s.alpha * a + (1 - s.alpha) * g)
                avg = ops.sqrt(sq - ga * ga) + s.eps
            else:
                avg = ops.sqrt(sq) + s.eps
            if not s.momentum:
                return lr64, g / avg
            return lr64, self._move(slot["momentum_buffer"], lambda b: s.momentum * b + g / avg)
        total = self._move(slot["sum"], lambda a: a + g * g)  # adagrad; lr_decay: the schedule
        return lr64, g / (ops.sqrt(total) + s.eps)

    def _move(self, slot, update):
        new = update(ops.convert_to_tensor(slot))
        self.assign(slot, new)
        return new


def make_optimizer(
    opt: OptimizerSpec, sched: ScheduleSpec, steps: int, *, decays: dict[str, bool] | None = None
) -> TorchOptimizer:
    """The Keras twin of `oop.optim.make_optimizer` plus its scheduler: one object, its
    schedule inside (`sched` resolved, `decay_steps` set)."""
    check_supported(opt, sched)
    return TorchOptimizer(opt, Schedule(opt, sched, steps), decays=decays)


# -- schedule --
class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate of update `t` (Keras's `iterations` before the update), from a table of
    `shared.optim.learning_rate` over the run's `steps`; held at the last value after them."""

    def __init__(self, opt: OptimizerSpec, sched: ScheduleSpec, steps: int):
        self.table = np.array([learning_rate(opt, sched, t) for t in range(max(steps, 1))])

    def __call__(self, step):
        index = ops.minimum(ops.cast(step, "int32"), len(self.table) - 1)
        return ops.take(ops.convert_to_tensor(self.table, dtype="float64"), index)

    def get_config(self):
        return {"table": self.table.tolist()}
