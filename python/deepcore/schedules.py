"""Learning-rate schedules (Keras 3 formulas), evaluated by the engine at every step.

Use one as `learning_rate=` of any optimizer, e.g.
`Adam(learning_rate=ExponentialDecay(1e-3, decay_steps=100, decay_rate=0.9))`.
`schedule(step)` gives the rate of the update that follows `step` earlier updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from . import _core

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "CosineDecay"]


_ScheduleT = TypeVar("_ScheduleT", bound="LearningRateSchedule")


def _positive(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
    return float(value)


class LearningRateSchedule:
    """Base class: `spec()` describes the schedule to the engine."""

    def spec(self) -> _core.ScheduleSpec:
        raise NotImplementedError

    def __call__(self, step: int) -> float:
        return _core.schedule_value(self.spec(), int(step))

    @property
    def initial_learning_rate(self) -> float:
        return self(0)

    @classmethod
    def from_config(cls: type[_ScheduleT], config: dict[str, Any]) -> _ScheduleT:
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """lr = initial_learning_rate * decay_rate ^ (step / decay_steps) (floored if staircase)."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        decay_rate: float,
        staircase: bool = False,
    ) -> None:
        self.initial, self.decay_steps = (
            _positive("initial_learning_rate", initial_learning_rate),
            _positive("decay_steps", decay_steps),
        )
        self.decay_rate, self.staircase = _positive("decay_rate", decay_rate), bool(staircase)

    def spec(self) -> _core.ScheduleSpec:
        s = _core.ScheduleSpec()
        s.kind = _core.Schedule.exponential_decay
        s.initial_learning_rate, s.decay_steps = self.initial, self.decay_steps
        s.decay_rate, s.staircase = self.decay_rate, self.staircase
        return s

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[i] while step <= boundaries[i], then
    values[-1]."""

    def __init__(self, boundaries: Sequence[float], values: Sequence[float]) -> None:
        boundaries, values = [float(b) for b in boundaries], [float(v) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"PiecewiseConstantDecay needs len(values) == len(boundaries) + 1. "
                f"Received {len(boundaries)} boundaries and {len(values)} values."
            )
        if boundaries != sorted(boundaries):
            raise ValueError(f"`boundaries` must be increasing. Received: {boundaries}")
        self.boundaries, self.values = boundaries, values

    def spec(self) -> _core.ScheduleSpec:
        s = _core.ScheduleSpec()
        s.kind = _core.Schedule.piecewise_constant_decay
        s.boundaries, s.values = self.boundaries, self.values
        s.initial_learning_rate = self.values[0]
        return s

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values}


class CosineDecay(LearningRateSchedule):
    """Optional linear warm-up from initial_learning_rate to warmup_target over
    warmup_steps, then cosine decay over decay_steps to alpha times the start rate."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        alpha: float = 0.0,
        warmup_target: float | None = None,
        warmup_steps: float = 0,
    ) -> None:
        if initial_learning_rate < 0:
            raise ValueError(
                f"`initial_learning_rate` must be >= 0. Received: {initial_learning_rate}"
            )
        self.initial = float(initial_learning_rate)
        self.decay_steps = _positive("decay_steps", decay_steps)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1]. Received: alpha={alpha}")
        self.alpha = float(alpha)
        self.warmup_target = (
            None if warmup_target is None else _positive("warmup_target", warmup_target)
        )
        if self.warmup_target is not None:
            self.warmup_steps = _positive("warmup_steps", warmup_steps)
        else:
            self.warmup_steps = 0.0

    def spec(self) -> _core.ScheduleSpec:
        s = _core.ScheduleSpec()
        s.kind = _core.Schedule.cosine_decay
        s.initial_learning_rate, s.decay_steps, s.alpha = self.initial, self.decay_steps, self.alpha
        s.warmup = self.warmup_target is not None
        s.warmup_target = self.warmup_target or 0.0
        s.warmup_steps = self.warmup_steps
        return s

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }
