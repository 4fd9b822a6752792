"""Weight penalties added to the loss: l1 * sum|w| + l2 * sum(w^2) ("weight decay")."""

from __future__ import annotations

import sys
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from . import _registry
from ._registry import lookup

__all__ = [
    "Regularizer",
    "L1",
    "L2",
    "L1L2",
    "l1",
    "l2",
    "l1_l2",
    "get",
    "serialize",
    "deserialize",
]


_RegularizerT = TypeVar("_RegularizerT", bound="Regularizer")


class Regularizer:
    """penalty(w) = l1 * sum(|w|) + l2 * sum(w^2); its gradient is added in the engine."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        for name, v in (("l1", l1), ("l2", l2)):
            finite = isinstance(v, (int, float)) and 0 <= v <= sys.float_info.max
            if not finite or isinstance(v, bool):
                raise ValueError(f"`{name}` must be a finite number >= 0. Received: {name}={v!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w: ArrayLike) -> float:
        w = np.asarray(w, dtype=np.float64)
        return self.l1 * np.abs(w).sum() + self.l2 * np.square(w).sum()

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls: type[_RegularizerT], config: dict[str, Any]) -> _RegularizerT:
        return cls(**config)


class L1(Regularizer):
    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(Regularizer):
    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


class L1L2(Regularizer):
    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        super().__init__(l1, l2)


l1, l2, l1_l2 = L1, L2, L1L2
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2}


def get(identifier: str | dict[str, Any] | Regularizer | None) -> Regularizer | None:
    """Resolves None, a name, a `serialize` dict or a `Regularizer` to a `Regularizer` (or None)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    return lookup("regularizer", identifier, _BY_NAME)()


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """`{"class_name": ..., "config": ...}` of a regularizer (None for None)."""
    return None if regularizer is None else _registry.serialize(regularizer)


def deserialize(config: dict[str, Any]) -> Regularizer:
    """The regularizer described by `serialize`'s output."""
    return _registry.deserialize("regularizer", config, (Regularizer, L1, L2, L1L2))
