"""Optimizers with Keras 3's names, defaults and update rules.

The update itself runs in the engine as one fused pass over all parameters.
`learning_rate` can be changed at any time, also during training (callbacks).
"""

from __future__ import annotations

from typing import Any, TypeVar

from . import _core, _registry, schedules
from ._registry import check_number, lookup

_OptimizerT = TypeVar("_OptimizerT", bound="Optimizer")

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "get",
    "serialize",
    "deserialize",
]


class Optimizer:
    """Base class. Subclasses set `kind` and their hyper-parameters."""

    kind: _core.Opt | None = None

    def __init__(
        self,
        learning_rate: float | schedules.LearningRateSchedule,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        weight_decay: float | None = None,
        name: str | None = None,
    ) -> None:
        clips = [c for c in (clipnorm, clipvalue, global_clipnorm) if c is not None]
        if len(clips) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}"
            )
        for c in clips:
            check_number("clip", c, 0.0, inclusive=False)
        self.schedule = None
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            # the schedule checked its own settings; a warm-up may start from 0
            self.schedule, self._learning_rate = learning_rate, float(learning_rate(0))
        else:
            self._learning_rate = check_number("learning_rate", learning_rate, 0.0, inclusive=False)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay = (
            None if weight_decay is None else check_number("weight_decay", weight_decay)
        )
        self.name = name or type(self).__name__.lower()
        self._engine = None

    def __getstate__(self) -> dict:
        """pickle and copy.deepcopy: without the engine it updates (its model's copy attaches
        its own), with the current learning rate."""
        state = dict(self.__dict__, _engine=None)
        if self._engine is not None and self.schedule is None:
            state["_learning_rate"] = float(self._engine.learning_rate)
        return state

    @property
    def learning_rate(self) -> float:
        """The rate of the next update (the schedule's value when there is one)."""
        return self._engine.learning_rate if self._engine is not None else self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        """Sets a fixed rate; this replaces a schedule (Keras refuses; deepcore allows it so
        that callbacks such as ReduceLROnPlateau work after a schedule)."""
        self._learning_rate = check_number("learning_rate", value, 0.0, inclusive=False)
        self.schedule = None
        if self._engine is not None:
            self._engine.learning_rate = self._learning_rate

    @property
    def iterations(self) -> int:
        """Number of updates applied so far."""
        return self._engine.iterations if self._engine is not None else 0

    def _hyper(self) -> dict:
        return {}

    def spec(self) -> _core.OptSpec:
        """The engine's description of this optimizer."""
        s = _core.OptSpec()
        s.kind = self.kind  # type: ignore[assignment]  # (set by every subclass)
        s.learning_rate = self._learning_rate
        s.clipnorm = self.clipnorm or 0.0
        s.clipvalue = self.clipvalue or 0.0
        s.global_clipnorm = self.global_clipnorm or 0.0
        s.weight_decay = self.weight_decay or 0.0
        if self.schedule is not None:
            s.schedule = self.schedule.spec()
        for k, v in self._hyper().items():
            setattr(s, k, v)
        return s

    def attach(self, engine) -> None:
        self._engine = engine

    def get_config(self) -> dict:
        """The constructor's arguments (a schedule as {"class_name": ..., "config": ...})."""
        lr: float | dict = self.learning_rate
        if self.schedule is not None:
            lr = _registry.serialize(self.schedule)
        return {
            "name": self.name,
            "learning_rate": lr,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
            "weight_decay": self.weight_decay,
            **self._hyper(),
        }

    @classmethod
    def from_config(cls: type[_OptimizerT], config: dict[str, Any]) -> _OptimizerT:
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            kinds = schedules.LearningRateSchedule.__subclasses__()
            config["learning_rate"] = _registry.deserialize("learning-rate schedule", lr, kinds)
        return cls(**config)


class SGD(Optimizer):
    """Gradient descent: v = momentum v - lr g; w += v (nesterov: w += momentum v - lr g)."""

    kind = _core.Opt.SGD

    def __init__(
        self,
        learning_rate: float | schedules.LearningRateSchedule = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_number("momentum", momentum, 0.0, high=1.0 + 1e-12)
        self.nesterov = bool(nesterov)

    def _hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam: m, v moving averages; w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)."""

    kind = _core.Opt.Adam

    def __init__(
        self,
        learning_rate: float | schedules.LearningRateSchedule = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        if amsgrad:
            raise ValueError(
                "amsgrad=True is not supported by deepcore yet. Received: amsgrad=True"
            )
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = check_number("beta_1", beta_1, 0.0, high=1.0)
        self.beta_2 = check_number("beta_2", beta_2, 0.0, high=1.0)
        self.epsilon = check_number("epsilon", epsilon)

    def _hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay: w -= lr * weight_decay * w before each update."""

    kind = _core.Opt.AdamW

    def __init__(
        self,
        learning_rate: float | schedules.LearningRateSchedule = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate, beta_1, beta_2, epsilon, weight_decay=weight_decay, **kwargs
        )


class RMSprop(Optimizer):
    """RMSprop: v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps) (with momentum, centered)."""

    kind = _core.Opt.RMSprop

    def __init__(
        self,
        learning_rate: float | schedules.LearningRateSchedule = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho = check_number("rho", rho, 0.0, high=1.0)
        self.momentum = check_number("momentum", momentum, 0.0, high=1.0)
        self.epsilon = check_number("epsilon", epsilon)
        self.centered = bool(centered)

    def _hyper(self):
        return {
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    """Adagrad: a += g^2; w -= lr g / sqrt(a + eps), a starting at initial_accumulator_value."""

    kind = _core.Opt.Adagrad

    def __init__(
        self,
        learning_rate: float | schedules.LearningRateSchedule = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = check_number(
            "initial_accumulator_value", initial_accumulator_value
        )
        self.epsilon = check_number("epsilon", epsilon)

    def _hyper(self):
        return {
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier: str | Optimizer | type[Optimizer]) -> Optimizer:
    """Resolves a name or an `Optimizer` instance/class to an `Optimizer` instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if (
        isinstance(identifier, type)
        and issubclass(identifier, Optimizer)
        and identifier.kind is not None
    ):
        return identifier()  # type: ignore[call-arg]  # (a subclass: learning_rate has a default)
    return lookup("optimizer", identifier, _BY_NAME)()


def serialize(optimizer: Optimizer) -> dict:
    """`{"class_name": ..., "config": ...}` of an `Optimizer` instance."""
    return _registry.serialize(optimizer)


def deserialize(config: dict) -> Optimizer:
    """The optimizer described by `serialize`'s output."""
    return _registry.deserialize("optimizer", config, set(_BY_NAME.values()))
