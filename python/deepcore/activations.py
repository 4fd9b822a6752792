"""Activation functions, computed by the engine's kernels (float32 or float64).

Every function takes an array and returns `f(x)` elementwise (softmax over the
last axis). Models use the same kernels inside their native training step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core
from ._registry import lookup

__all__ = [
    "linear",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "softplus",
    "softsign",
    "swish",
    "silu",
    "gelu",
    "exponential",
    "step",
    "get",
    "serialize",
]


def _run(kind: _core.Act, x: ArrayLike, alpha: float = 0.0) -> NDArray[np.floating[Any]]:
    x = np.asarray(x)
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    out = _core.activation(_core.ActSpec(kind, float(alpha)), np.ascontiguousarray(x, dtype))
    return out.reshape(x.shape)  # (a scalar stays a scalar)


def linear(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = x."""
    return _run(_core.Act.linear, x)


def relu(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = max(x, 0)."""
    return _run(_core.Act.relu, x)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> NDArray[np.floating[Any]]:
    """f(x) = x if x > 0 else negative_slope * x."""
    return _run(_core.Act.leaky_relu, x, negative_slope)


def elu(x: ArrayLike, alpha: float = 1.0) -> NDArray[np.floating[Any]]:
    """f(x) = x if x > 0 else alpha * (exp(x) - 1)."""
    return _run(_core.Act.elu, x, alpha)


def selu(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = scale * elu(x, alpha) with alpha=1.67326324, scale=1.05070098."""
    return _run(_core.Act.selu, x)


def sigmoid(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = 1 / (1 + exp(-x))."""
    return _run(_core.Act.sigmoid, x)


def hard_sigmoid(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = clip(x / 6 + 0.5, 0, 1) (Keras 3 definition)."""
    return _run(_core.Act.hard_sigmoid, x)


def tanh(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = tanh(x)."""
    return _run(_core.Act.tanh, x)


def softmax(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x)_i = exp(x_i) / sum_j exp(x_j) over the last axis."""
    return _run(_core.Act.softmax, x)


def softplus(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = log(1 + exp(x))."""
    return _run(_core.Act.softplus, x)


def softsign(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = x / (|x| + 1)."""
    return _run(_core.Act.softsign, x)


def swish(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = x * sigmoid(x) (also called silu)."""
    return _run(_core.Act.swish, x)


silu = swish


def gelu(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = 0.5 * x * (1 + erf(x / sqrt(2))) (exact form)."""
    return _run(_core.Act.gelu, x)


def exponential(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """f(x) = exp(x)."""
    return _run(_core.Act.exponential, x)


def step(x: ArrayLike) -> NDArray[np.floating[Any]]:
    """Heaviside step of the perceptron: f(x) = 1 if x >= 0 else 0. Has no gradient."""
    return _run(_core.Act.step, x)


_BY_NAME = {
    "linear": linear,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "softplus": softplus,
    "softsign": softsign,
    "swish": swish,
    "silu": swish,
    "gelu": gelu,
    "exponential": exponential,
    "step": step,
}
_KIND = {f: getattr(_core.Act, f.__name__) for f in set(_BY_NAME.values())}
_DEFAULT_ALPHA = {leaky_relu: 0.2, elu: 1.0}


def get(identifier: str | Callable[..., Any] | None) -> Callable[..., NDArray[np.floating[Any]]]:
    """Resolves None, a name or one of this module's functions to an activation function."""
    if identifier is None:
        return linear
    if callable(identifier) and identifier in _KIND:
        return identifier
    if callable(identifier):
        raise ValueError(
            f"Custom activation functions are not supported by the engine. Received: "
            f"{identifier!r}. Known activations: {', '.join(sorted(_BY_NAME))}"
        )
    return lookup("activation", identifier, _BY_NAME)


def serialize(fn: str | Callable[..., Any] | None) -> str:
    """The name under which `get` finds `fn`."""
    return get(fn).__name__


def spec(identifier: str | Callable[..., Any] | None, alpha: float | None = None) -> _core.ActSpec:
    """The engine's description of an activation (kind and parameter)."""
    fn = get(identifier)
    return _core.ActSpec(_KIND[fn], _DEFAULT_ALPHA.get(fn, 0.0) if alpha is None else alpha)
