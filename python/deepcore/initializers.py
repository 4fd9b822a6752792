"""Weight initializers with Keras' names and formulas.

All draws come from `deepcore.utils.rng()` (or a per-initializer `seed`), so
`deepcore.utils.set_random_seed` makes initial weights reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, overload

import numpy as np
from numpy.typing import DTypeLike, NDArray

from . import _registry, utils
from ._registry import lookup

__all__ = [
    "Initializer",
    "Zeros",
    "Ones",
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "VarianceScaling",
    "Orthogonal",
    "get",
    "serialize",
    "deserialize",
]


_InitializerT = TypeVar("_InitializerT", bound="Initializer")


def compute_fans(shape: Sequence[int]) -> tuple[float, float]:
    """fan_in, fan_out: (in, out) for a kernel, times the receptive field for convolutions."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = float(np.prod(shape[:-2])) if len(shape) > 2 else 1.0
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: `initializer(shape)` returns a float32 array."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed) if self.seed is not None else utils.rng()

    @overload
    def __call__(self, shape: Sequence[int]) -> NDArray[np.float32]: ...
    @overload
    def __call__(self, shape: Sequence[int], dtype: DTypeLike) -> NDArray[Any]: ...
    def __call__(self, shape: Sequence[int], dtype: DTypeLike = np.float32) -> NDArray[Any]:
        return self.sample(tuple(int(s) for s in shape)).astype(dtype)

    def sample(self, shape: tuple[int, ...]) -> NDArray[np.floating[Any]]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: `type(i).from_config(i.get_config())` copies it."""
        return {"seed": self.seed}

    @classmethod
    def from_config(cls: type[_InitializerT], config: dict[str, Any]) -> _InitializerT:
        return cls(**config)


class Zeros(Initializer):
    def sample(self, shape: tuple[int, ...]) -> NDArray[np.floating[Any]]:
        return np.zeros(shape)


class Ones(Initializer):
    def sample(self, shape: tuple[int, ...]) -> NDArray[np.floating[Any]]:
        return np.ones(shape)


class Constant(Initializer):
    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.value = float(value)

    def sample(self, shape: tuple[int, ...]) -> NDArray[np.floating[Any]]:
        return np.full(shape, self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def sample(self, shape: tuple[int, ...]) -> NDArray[np.floating[Any]]:
        return self._rng().normal(self.mean, self.stddev, shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None
    ) -> None:
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def sample(self, shape: tuple[int, ...]) -> NDArray[np.floating[Any]]:
        return self._rng().uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(Initializer):
    """scale / fan (fan_in, fan_out or their mean) as variance, uniform or truncated normal."""

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"Unknown mode {mode!r}. Known: fan_in, fan_out, fan_avg")
        if distribution not in ("truncated_normal", "uniform", "untruncated_normal"):
            raise ValueError(f"Unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def get_config(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }

    def sample(self, shape: tuple[int, ...]) -> NDArray[np.floating[Any]]:
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, np.sqrt(variance), shape)
        # Truncated at two standard deviations; 0.8796... restores the variance.
        std = np.sqrt(variance) / 0.87962566103423978
        out = rng.normal(0.0, std, shape)
        bad = np.abs(out) > 2 * std
        while bad.any():
            out[bad] = rng.normal(0.0, std, int(bad.sum()))
            bad = np.abs(out) > 2 * std
        return out


class _FixedScaling(VarianceScaling):
    """Glorot, He and Lecun: VarianceScaling with fixed settings; the seed is all they take."""

    def get_config(self) -> dict[str, Any]:
        return Initializer.get_config(self)


class GlorotUniform(_FixedScaling):
    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_avg", "uniform", seed)


class GlorotNormal(_FixedScaling):
    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)


class HeUniform(_FixedScaling):
    def __init__(self, seed: int | None = None) -> None:
        super().__init__(2.0, "fan_in", "uniform", seed)


class HeNormal(_FixedScaling):
    def __init__(self, seed: int | None = None) -> None:
        super().__init__(2.0, "fan_in", "truncated_normal", seed)


class LecunUniform(_FixedScaling):
    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_in", "uniform", seed)


class LecunNormal(_FixedScaling):
    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_in", "truncated_normal", seed)


class Orthogonal(Initializer):
    """Keras' OrthogonalInitializer: a matrix (prod(shape[:-1]), shape[-1]) with orthonormal
    rows or columns, times `gain`: Q of the QR decomposition of a standard normal matrix of
    shape (max(rows, cols), min(rows, cols)), its columns' signs set by R's diagonal, and
    transposed when there are fewer rows than columns. The recurrent layers' default
    `recurrent_initializer`. deepcore draws from NumPy, so the values differ from Keras'
    for the same seed (the distribution is the same)."""

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = float(gain)

    def sample(self, shape: tuple[int, ...]) -> NDArray[np.floating[Any]]:
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self._rng().normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed}


_BY_NAME = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "uniform": RandomUniform,  # Keras' alias (Embedding's default)
    "normal": RandomNormal,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "lecun_uniform": LecunUniform,
    "lecun_normal": LecunNormal,
    "variance_scaling": VarianceScaling,
    "orthogonal": Orthogonal,
    "orthogonalinitializer": Orthogonal,
}


def get(
    identifier: str | dict[str, Any] | Initializer | type[Initializer],
) -> Initializer:
    """Resolves a name, a `serialize` dict or an `Initializer` instance/class to an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    return lookup("initializer", identifier, _BY_NAME)()


def serialize(initializer: Initializer) -> dict[str, Any]:
    """`{"class_name": ..., "config": ...}` of an initializer."""
    return _registry.serialize(initializer)


def deserialize(config: dict[str, Any]) -> Initializer:
    """The initializer described by `serialize`'s output."""
    return _registry.deserialize("initializer", config, set(_BY_NAME.values()))
