"""`deepcore.ops`: the NumPy-like functions Keras users write custom code with (Keras'
`keras.ops`). On NumPy arrays and numbers they compute at once (float32, NumPy's maths); on a
model's symbolic tensors they record an op the engine runs with its gradient, so that a
`Lambda(fn)` layer, or a subclassed model's `call`, built from them trains natively.

Inside a model each sample is computed alone: an op may not reduce over the batch axis
(axis 0). Broadcasting follows NumPy's rules, with the batch axis first; a constant (a
number or an array) is the same for every sample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional, Union, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .layers.ops_layers import _op_call
from .layers.symbolic import SymbolicTensor, is_symbolic

__all__ = [
    "abs", "absolute", "add", "cast", "clip", "cos", "divide", "equal", "exp", "expand_dims",
    "floor", "greater", "greater_equal", "leaky_relu", "less", "less_equal", "log",
    "log1p", "log_softmax", "logsumexp", "max", "maximum", "mean", "min", "minimum",
    "multiply", "negative", "not_equal", "one_hot", "power", "reciprocal", "relu", "reshape",
    "round", "sigmoid", "sign", "silu", "sin", "softmax", "softplus", "sqrt", "square",
    "squeeze", "subtract", "sum", "swish", "tanh", "true_divide", "var", "std", "where",
    "transpose", "matmul", "concatenate",
    "elu", "selu", "gelu", "softsign", "hard_sigmoid", "exponential",
]  # fmt: skip


# What the ops take: a model's symbolic tensors, or values (numbers, NumPy arrays, nested
# lists of numbers) with which they compute at once.
TensorLike = Union[SymbolicTensor, ArrayLike]
# What they give: a symbolic tensor when an operand is one, else a float32 array (on
# numbers and 0-d arrays, some give a NumPy float32 scalar, as NumPy's functions do).
Tensor = Union[SymbolicTensor, NDArray[np.float32]]
# An `axis` argument of the reductions: one axis, several, or None (all but the batch's).
Axis = Optional[Union[int, Sequence[int]]]
# A `newshape` of `reshape`: inside a model the batch axis first, as -1 or None.
Shape = Union[int, Sequence[Optional[int]]]


def _symbolic(*xs: object) -> bool:
    return any(is_symbolic(x) for x in xs)


def _array(x: Any) -> NDArray[np.float32]:
    return np.asarray(x, dtype=np.float32)


def _rank(x: Any) -> int:
    """A symbolic tensor's rank per sample."""
    return len(x.shape) - 1


# --------------------------------------------------------------------- unary
_NUMPY_UNARY: dict[str, Callable] = {
    "negative": np.negative,
    "abs": np.abs,
    "square": np.square,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "sign": np.sign,
    "reciprocal": np.reciprocal,
    "sin": np.sin,
    "cos": np.cos,
    "floor": np.floor,
    "round": np.round,
    "copy": np.copy,
}


def _unary(op: str, x: TensorLike, p0: float = 0.0, p1: float = 0.0) -> Tensor:
    if not _symbolic(x):
        if op == "clip":
            return np.clip(_array(x), p0, p1)
        with np.errstate(all="ignore"):
            return _NUMPY_UNARY[op](_array(x))
    return _op_call("unary", op, [x], op, p0=float(p0), p1=float(p1))


@overload
def negative(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def negative(x: ArrayLike) -> NDArray[np.float32]: ...
def negative(x: TensorLike) -> Tensor:
    return _unary("negative", x)


@overload
def abs(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def abs(x: ArrayLike) -> NDArray[np.float32]: ...
def abs(x: TensorLike) -> Tensor:  # noqa: A001 (Keras' name)
    return _unary("abs", x)


absolute = abs


@overload
def square(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def square(x: ArrayLike) -> NDArray[np.float32]: ...
def square(x: TensorLike) -> Tensor:
    return _unary("square", x)


@overload
def sqrt(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def sqrt(x: ArrayLike) -> NDArray[np.float32]: ...
def sqrt(x: TensorLike) -> Tensor:
    return _unary("sqrt", x)


@overload
def exp(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def exp(x: ArrayLike) -> NDArray[np.float32]: ...
def exp(x: TensorLike) -> Tensor:
    return _unary("exp", x)


@overload
def log(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def log(x: ArrayLike) -> NDArray[np.float32]: ...
def log(x: TensorLike) -> Tensor:
    return _unary("log", x)


@overload
def log1p(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def log1p(x: ArrayLike) -> NDArray[np.float32]: ...
def log1p(x: TensorLike) -> Tensor:
    return _unary("log1p", x)


@overload
def sign(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def sign(x: ArrayLike) -> NDArray[np.float32]: ...
def sign(x: TensorLike) -> Tensor:
    return _unary("sign", x)


@overload
def reciprocal(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def reciprocal(x: ArrayLike) -> NDArray[np.float32]: ...
def reciprocal(x: TensorLike) -> Tensor:
    return _unary("reciprocal", x)


@overload
def sin(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def sin(x: ArrayLike) -> NDArray[np.float32]: ...
def sin(x: TensorLike) -> Tensor:
    return _unary("sin", x)


@overload
def cos(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def cos(x: ArrayLike) -> NDArray[np.float32]: ...
def cos(x: TensorLike) -> Tensor:
    return _unary("cos", x)


@overload
def floor(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def floor(x: ArrayLike) -> NDArray[np.float32]: ...
def floor(x: TensorLike) -> Tensor:
    return _unary("floor", x)


@overload
def round(x: SymbolicTensor, decimals: int = 0) -> SymbolicTensor: ...
@overload
def round(x: ArrayLike, decimals: int = 0) -> NDArray[np.float32]: ...
def round(x: TensorLike, decimals: int = 0) -> Tensor:  # noqa: A001
    if decimals != 0:
        raise ValueError(f"ops.round: only decimals=0 is supported. Received: decimals={decimals}")
    return _unary("round", x)


@overload
def clip(x: SymbolicTensor, x_min: float, x_max: float) -> SymbolicTensor: ...
@overload
def clip(x: TensorLike, x_min: SymbolicTensor, x_max: TensorLike) -> SymbolicTensor: ...
@overload
def clip(x: TensorLike, x_min: TensorLike, x_max: SymbolicTensor) -> SymbolicTensor: ...
@overload
def clip(x: ArrayLike, x_min: float, x_max: float) -> NDArray[np.float32]: ...
def clip(x: TensorLike, x_min: Any, x_max: Any) -> Tensor:  # (the overloads' types)
    if _symbolic(x_min, x_max):
        return minimum(maximum(x, x_min), x_max)
    return _unary("clip", x, float(x_min), float(x_max))


@overload
def cast(x: SymbolicTensor, dtype: DTypeLike = "float32") -> SymbolicTensor: ...
@overload
def cast(x: ArrayLike, dtype: DTypeLike = "float32") -> NDArray[Any]: ...
def cast(x: TensorLike, dtype: DTypeLike = "float32") -> SymbolicTensor | NDArray[Any]:
    """deepcore computes in float32: a cast to another type is refused inside a model."""
    if str(np.dtype(dtype)) != "float32" and _symbolic(x):
        raise ValueError(f"ops.cast: models compute in float32. Received: dtype={dtype!r}")
    return _unary("copy", x) if _symbolic(x) else np.asarray(x).astype(dtype)


# --------------------------------------------------------------- activations
def _activation(name: str, x: TensorLike, alpha: float = 0.0) -> Tensor:
    from . import activations

    if not _symbolic(x):
        return np.asarray(activations.get(name)(_array(x)), np.float32)
    return _op_call("activation", None, [x], name, activation=name, alpha=float(alpha))


@overload
def relu(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def relu(x: ArrayLike) -> NDArray[np.float32]: ...
def relu(x: TensorLike) -> Tensor:
    return _activation("relu", x)


@overload
def sigmoid(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def sigmoid(x: ArrayLike) -> NDArray[np.float32]: ...
def sigmoid(x: TensorLike) -> Tensor:
    return _activation("sigmoid", x)


@overload
def tanh(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def tanh(x: ArrayLike) -> NDArray[np.float32]: ...
def tanh(x: TensorLike) -> Tensor:
    return _activation("tanh", x)


@overload
def softplus(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def softplus(x: ArrayLike) -> NDArray[np.float32]: ...
def softplus(x: TensorLike) -> Tensor:
    return _activation("softplus", x)


@overload
def softsign(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def softsign(x: ArrayLike) -> NDArray[np.float32]: ...
def softsign(x: TensorLike) -> Tensor:
    return _activation("softsign", x)


@overload
def elu(x: SymbolicTensor, alpha: float = 1.0) -> SymbolicTensor: ...
@overload
def elu(x: ArrayLike, alpha: float = 1.0) -> NDArray[np.float32]: ...
def elu(x: TensorLike, alpha: float = 1.0) -> Tensor:
    if not _symbolic(x):
        x = _array(x)
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(np.float32)
    return _activation("elu", x, alpha)


@overload
def selu(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def selu(x: ArrayLike) -> NDArray[np.float32]: ...
def selu(x: TensorLike) -> Tensor:
    return _activation("selu", x)


@overload
def gelu(x: SymbolicTensor, approximate: bool = True) -> SymbolicTensor: ...
@overload
def gelu(x: ArrayLike, approximate: bool = True) -> NDArray[np.float32]: ...
def gelu(x: TensorLike, approximate: bool = True) -> Tensor:
    if approximate:
        raise ValueError(
            "ops.gelu: deepcore has the exact (erf) form; pass approximate=False "
            "(Keras' layers use it by default)."
        )
    return _activation("gelu", x)


@overload
def silu(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def silu(x: ArrayLike) -> NDArray[np.float32]: ...
def silu(x: TensorLike) -> Tensor:
    return _activation("swish", x)


swish = silu


@overload
def hard_sigmoid(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def hard_sigmoid(x: ArrayLike) -> NDArray[np.float32]: ...
def hard_sigmoid(x: TensorLike) -> Tensor:
    return _activation("hard_sigmoid", x)


@overload
def exponential(x: SymbolicTensor) -> SymbolicTensor: ...
@overload
def exponential(x: ArrayLike) -> NDArray[np.float32]: ...
def exponential(x: TensorLike) -> Tensor:
    return _activation("exponential", x)


@overload
def leaky_relu(x: SymbolicTensor, negative_slope: float = 0.2) -> SymbolicTensor: ...
@overload
def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> NDArray[np.float32]: ...
def leaky_relu(x: TensorLike, negative_slope: float = 0.2) -> Tensor:
    if not _symbolic(x):
        x = _array(x)
        return np.where(x > 0, x, negative_slope * x).astype(np.float32)
    return _activation("leaky_relu", x, negative_slope)


@overload
def softmax(x: SymbolicTensor, axis: int = -1) -> SymbolicTensor: ...
@overload
def softmax(x: ArrayLike, axis: int = -1) -> NDArray[np.float32]: ...
def softmax(x: TensorLike, axis: int = -1) -> Tensor:
    if not _symbolic(x):
        x = _array(x)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    if axis not in (-1, _rank(x)):
        e = exp(subtract(x, max(x, axis=axis, keepdims=True)))
        return divide(e, sum(e, axis=axis, keepdims=True))
    return _activation("softmax", x)


@overload
def log_softmax(x: SymbolicTensor, axis: int = -1) -> SymbolicTensor: ...
@overload
def log_softmax(x: ArrayLike, axis: int = -1) -> NDArray[np.float32]: ...
def log_softmax(x: TensorLike, axis: int = -1) -> Tensor:
    shifted = subtract(x, max(x, axis=axis, keepdims=True))
    return subtract(shifted, log(sum(exp(shifted), axis=axis, keepdims=True)))


@overload
def logsumexp(x: SymbolicTensor, axis: Axis = None, keepdims: bool = False) -> SymbolicTensor: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> NDArray[np.float32]: ...
def logsumexp(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    top = max(x, axis=axis, keepdims=True)
    out = add(log(sum(exp(subtract(x, top)), axis=axis, keepdims=True)), top)
    return out if keepdims else squeeze(out, axis) if axis is not None else reshape(out, (-1,))


# -------------------------------------------------------------------- binary
_NUMPY_BINARY: dict[str, Callable] = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.divide,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "power": np.power,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "equal": np.equal,
    "not_equal": np.not_equal,
}


def _binary(op: str, x1: TensorLike, x2: TensorLike) -> Tensor:
    if not _symbolic(x1, x2):
        with np.errstate(all="ignore"):
            return _NUMPY_BINARY[op](_array(x1), _array(x2)).astype(np.float32)
    return _op_call("binary", op, [x1, x2], op)


@overload
def add(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def add(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def add(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def add(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("add", x1, x2)


@overload
def subtract(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def subtract(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def subtract(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def subtract(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("subtract", x1, x2)


@overload
def multiply(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def multiply(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def multiply(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def multiply(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("multiply", x1, x2)


@overload
def divide(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def divide(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def divide(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def divide(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("divide", x1, x2)


true_divide = divide


@overload
def maximum(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def maximum(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def maximum(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def maximum(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("maximum", x1, x2)


@overload
def minimum(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def minimum(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def minimum(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def minimum(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("minimum", x1, x2)


@overload
def power(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def power(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def power(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def power(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("power", x1, x2)


@overload
def greater(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def greater(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def greater(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def greater(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("greater", x1, x2)


@overload
def greater_equal(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def greater_equal(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def greater_equal(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def greater_equal(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("greater_equal", x1, x2)


@overload
def less(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def less(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def less(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def less(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("less", x1, x2)


@overload
def less_equal(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def less_equal(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def less_equal(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def less_equal(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("less_equal", x1, x2)


@overload
def equal(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def equal(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def equal(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def equal(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("equal", x1, x2)


@overload
def not_equal(x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def not_equal(x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def not_equal(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def not_equal(x1: TensorLike, x2: TensorLike) -> Tensor:
    return _binary("not_equal", x1, x2)


@overload
def where(condition: SymbolicTensor, x1: TensorLike, x2: TensorLike) -> SymbolicTensor: ...
@overload
def where(condition: TensorLike, x1: SymbolicTensor, x2: TensorLike) -> SymbolicTensor: ...
@overload
def where(condition: TensorLike, x1: TensorLike, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def where(condition: ArrayLike, x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def where(condition: TensorLike, x1: TensorLike, x2: TensorLike) -> Tensor:
    """x1 where condition is non-zero, else x2 (as condition * x1 + (1 - condition) * x2
    inside a model, with condition 0 or 1: x1 and x2 must be finite there)."""
    if not _symbolic(condition, x1, x2):
        return np.where(_array(condition) != 0, _array(x1), _array(x2)).astype(np.float32)
    picked = not_equal(condition, 0.0)
    return add(multiply(picked, x1), multiply(subtract(1.0, picked), x2))


# ---------------------------------------------------------------- reductions
def _reduce(op: str, x: TensorLike, axis: Axis, keepdims: bool) -> Tensor:
    if not _symbolic(x):
        return np.asarray(getattr(np, op)(_array(x), axis=axis, keepdims=keepdims), np.float32)
    axes = _sample_axes(axis, _rank(x), f"ops.{op}")
    return _op_call("reduce", op, [x], op, axes=axes, keepdims=bool(keepdims))


def _sample_axes(axis: Any, rank: int, what: str) -> list[int]:
    """`axis` (an int, a list of them, or None: every axis but the batch's) as a sample's
    axes 0..rank-1 (Keras counts the batch as axis 0). The batch axis is refused."""
    axes = list(range(1, rank + 1)) if axis is None else axis
    axes = list(axes) if isinstance(axes, (list, tuple)) else [axes]
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -(rank + 1) <= a <= rank:
            raise ValueError(f"{what}: axis {a!r} is out of range for tensors of rank {rank + 1}")
        a = int(a) + rank + 1 if a < 0 else int(a)
        if a == 0:
            raise ValueError(
                f"{what}: axis 0 is the batch axis, which an op inside a model cannot reduce "
                "(each sample is computed alone; the loss averages over the batch)."
            )
        out.append(a - 1)
    return sorted(set(out))


@overload
def sum(x: SymbolicTensor, axis: Axis = None, keepdims: bool = False) -> SymbolicTensor: ...
@overload
def sum(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> NDArray[np.float32]: ...
def sum(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _reduce("sum", x, axis, keepdims)


@overload
def mean(x: SymbolicTensor, axis: Axis = None, keepdims: bool = False) -> SymbolicTensor: ...
@overload
def mean(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> NDArray[np.float32]: ...
def mean(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return _reduce("mean", x, axis, keepdims)


@overload
def max(x: SymbolicTensor, axis: Axis = None, keepdims: bool = False) -> SymbolicTensor: ...
@overload
def max(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> NDArray[np.float32]: ...
def max(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _reduce("max", x, axis, keepdims)


@overload
def min(x: SymbolicTensor, axis: Axis = None, keepdims: bool = False) -> SymbolicTensor: ...
@overload
def min(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> NDArray[np.float32]: ...
def min(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _reduce("min", x, axis, keepdims)


@overload
def var(x: SymbolicTensor, axis: Axis = None, keepdims: bool = False) -> SymbolicTensor: ...
@overload
def var(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> NDArray[np.float32]: ...
def var(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    centered = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centered), axis=axis, keepdims=keepdims)


@overload
def std(x: SymbolicTensor, axis: Axis = None, keepdims: bool = False) -> SymbolicTensor: ...
@overload
def std(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> NDArray[np.float32]: ...
def std(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return sqrt(var(x, axis=axis, keepdims=keepdims))


# --------------------------------------------------------------------- shapes
@overload
def reshape(x: SymbolicTensor, newshape: Shape) -> SymbolicTensor: ...
@overload
def reshape(x: ArrayLike, newshape: int | Sequence[int]) -> NDArray[np.float32]: ...
def reshape(x: Any, newshape: Any) -> Tensor:  # (the overloads' types: checked below)
    if not _symbolic(x):
        return np.reshape(_array(x), newshape)
    shape = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(newshape)
    sample = tuple(x.shape[1:])
    if not shape or shape[0] not in (-1, None):
        raise ValueError(
            f"ops.reshape: inside a model the new shape keeps the batch axis first, as -1 or "
            f"None: (-1, ...). Received: newshape={newshape!r} for tensors of shape {x.shape}"
        )
    shape = shape[1:]
    size = int(np.prod(sample))
    if shape.count(-1) == 1:
        known = int(np.prod([d for d in shape if d != -1]))
        if known == 0 or size % known:
            raise ValueError(f"ops.reshape: cannot reshape samples of shape {sample} to {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    return _op_call("reshape", None, [x], "reshape", axes=[int(d) for d in shape])


@overload
def expand_dims(x: SymbolicTensor, axis: int) -> SymbolicTensor: ...
@overload
def expand_dims(x: ArrayLike, axis: int) -> NDArray[np.float32]: ...
def expand_dims(x: Any, axis: int) -> Tensor:  # (the overloads' types)
    if not _symbolic(x):
        return np.expand_dims(_array(x), axis)
    sample = list(x.shape[1:])
    rank = len(sample) + 1
    a = axis + rank + 1 if axis < 0 else axis
    if not 1 <= a <= rank:
        raise ValueError(f"ops.expand_dims: axis {axis} is out of range (0 is the batch axis)")
    sample.insert(a - 1, 1)
    return _op_call("reshape", None, [x], "expand_dims", axes=sample)


@overload
def squeeze(x: SymbolicTensor, axis: Axis = None) -> SymbolicTensor: ...
@overload
def squeeze(x: ArrayLike, axis: Axis = None) -> NDArray[np.float32]: ...
def squeeze(x: Any, axis: Axis = None) -> Tensor:  # (the overloads' types)
    if not _symbolic(x):
        return np.squeeze(_array(x), axis)
    sample = list(x.shape[1:])
    axes = (
        _sample_axes(axis, len(sample), "ops.squeeze")
        if axis is not None
        else [i for i, d in enumerate(sample) if d == 1]
    )
    for a in axes:
        if sample[a] != 1:
            raise ValueError(f"ops.squeeze: axis {a + 1} has size {sample[a]}, not 1")
    kept = [d for i, d in enumerate(sample) if i not in axes]
    return _op_call("reshape", None, [x], "squeeze", axes=kept)


@overload
def transpose(x: SymbolicTensor, axes: Sequence[int] | None = None) -> SymbolicTensor: ...
@overload
def transpose(x: ArrayLike, axes: Sequence[int] | None = None) -> NDArray[np.float32]: ...
def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:  # (the overloads' types)
    """x's axes in the order `axes` (the batch axis, 0, stays first inside a model)."""
    if not _symbolic(x):
        return np.transpose(_array(x), axes)
    rank = _rank(x)
    if axes is None or len(axes) != rank + 1 or int(axes[0]) not in (0, -(rank + 1)):
        raise ValueError(
            f"ops.transpose: inside a model the batch axis stays first: pass axes=(0, ...) "
            f"with {rank + 1} entries. Received: axes={axes!r} for tensors of shape {x.shape}"
        )
    perm = [int(a) % (rank + 1) - 1 for a in axes[1:]]
    return _op_call("transpose", None, [x], "transpose", axes=perm)


@overload
def matmul(x1: SymbolicTensor, x2: SymbolicTensor) -> SymbolicTensor: ...
@overload
def matmul(x1: ArrayLike, x2: ArrayLike) -> NDArray[np.float32]: ...
def matmul(x1: Any, x2: Any) -> Tensor:  # (the overloads' types)
    """The matrix product of two tensors of samples of matrices (batch, m, k) @ (batch, k,
    n) inside a model (the Dot layer); NumPy's on arrays."""
    if not _symbolic(x1, x2):
        return np.matmul(_array(x1), _array(x2))
    from .layers.merging import Dot

    if not (is_symbolic(x1) and is_symbolic(x2) and _rank(x1) == _rank(x2) == 2):
        raise ValueError(
            "ops.matmul: inside a model deepcore multiplies two tensors of matrices per sample "
            f"((batch, m, k) @ (batch, k, n)); received {x1!r:.80} and {x2!r:.80}. A tensor "
            "times a fixed matrix is a Dense layer (use_bias=False)."
        )
    return Dot(axes=(2, 1))([x1, x2])


@overload
def concatenate(xs: Sequence[SymbolicTensor], axis: int = -1) -> SymbolicTensor: ...
@overload
def concatenate(xs: Sequence[ArrayLike], axis: int = -1) -> NDArray[np.float32]: ...
def concatenate(xs: Sequence[Any], axis: int = -1) -> Tensor:  # (the overloads' types)
    """The tensors joined along `axis` (the Concatenate layer inside a model)."""
    if not any(is_symbolic(x) for x in xs):
        return np.concatenate([_array(x) for x in xs], axis=axis)
    from .layers.merging import Concatenate

    if not all(is_symbolic(x) for x in xs):
        raise ValueError("ops.concatenate: inside a model every entry must be a model tensor")
    return Concatenate(axis=axis)(list(xs))


@overload
def one_hot(x: SymbolicTensor, num_classes: int, axis: int = -1) -> SymbolicTensor: ...
@overload
def one_hot(x: ArrayLike, num_classes: int, axis: int = -1) -> NDArray[np.float32]: ...
def one_hot(x: TensorLike, num_classes: int, axis: int = -1) -> Tensor:
    """1 where the last axis's index equals x (integer class labels), else 0."""
    if axis != -1:
        raise ValueError("ops.one_hot: only axis=-1 is supported")
    classes = np.arange(num_classes, dtype=np.float32)
    if not _symbolic(x):
        return (np.expand_dims(_array(x), -1) == classes).astype(np.float32)
    return equal(expand_dims(x, -1), classes)
