"""`deepcore.ops`: the NumPy-like functions Keras users write custom code with (Keras'
`keras.ops`). On NumPy arrays and numbers they compute at once (float32, NumPy's maths); on a
model's symbolic tensors they record an op the engine runs with its gradient, so that a
`Lambda(fn)` layer, or a subclassed model's `call`, built from them trains natively.

Inside a model each sample is computed alone: an op may not reduce over the batch axis
(axis 0). Broadcasting follows NumPy's rules, with the batch axis first; a constant (a
number or an array) is the same for every sample."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .layers.ops_layers import _op_call
from .layers.symbolic import is_symbolic

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


def _symbolic(*xs) -> bool:
    return any(is_symbolic(x) for x in xs)


def _array(x):
    return np.asarray(x, dtype=np.float32)


def _rank(x) -> int:
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


def _unary(op: str, x, p0=0.0, p1=0.0):
    if not _symbolic(x):
        if op == "clip":
            return np.clip(_array(x), p0, p1)
        with np.errstate(all="ignore"):
            return _NUMPY_UNARY[op](_array(x))
    return _op_call("unary", op, [x], op, p0=float(p0), p1=float(p1))


def negative(x):
    return _unary("negative", x)


def abs(x):  # noqa: A001 (Keras' name)
    return _unary("abs", x)


absolute = abs


def square(x):
    return _unary("square", x)


def sqrt(x):
    return _unary("sqrt", x)


def exp(x):
    return _unary("exp", x)


def log(x):
    return _unary("log", x)


def log1p(x):
    return _unary("log1p", x)


def sign(x):
    return _unary("sign", x)


def reciprocal(x):
    return _unary("reciprocal", x)


def sin(x):
    return _unary("sin", x)


def cos(x):
    return _unary("cos", x)


def floor(x):
    return _unary("floor", x)


def round(x, decimals=0):  # noqa: A001
    if decimals != 0:
        raise ValueError(f"ops.round: only decimals=0 is supported. Received: decimals={decimals}")
    return _unary("round", x)


def clip(x, x_min, x_max):
    if _symbolic(x_min, x_max):
        return minimum(maximum(x, x_min), x_max)
    return _unary("clip", x, float(x_min), float(x_max))


def cast(x, dtype="float32"):
    """deepcore computes in float32: a cast to another type is refused inside a model."""
    if str(np.dtype(dtype)) != "float32" and _symbolic(x):
        raise ValueError(f"ops.cast: models compute in float32. Received: dtype={dtype!r}")
    return _unary("copy", x) if _symbolic(x) else np.asarray(x).astype(dtype)


# --------------------------------------------------------------- activations
def _activation(name: str, x, alpha=0.0):
    from . import activations

    if not _symbolic(x):
        return np.asarray(activations.get(name)(_array(x)), np.float32)
    return _op_call("activation", None, [x], name, activation=name, alpha=float(alpha))


def relu(x):
    return _activation("relu", x)


def sigmoid(x):
    return _activation("sigmoid", x)


def tanh(x):
    return _activation("tanh", x)


def softplus(x):
    return _activation("softplus", x)


def softsign(x):
    return _activation("softsign", x)


def elu(x, alpha=1.0):
    if not _symbolic(x):
        x = _array(x)
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(np.float32)
    return _activation("elu", x, alpha)


def selu(x):
    return _activation("selu", x)


def gelu(x, approximate=True):
    if approximate:
        raise ValueError(
            "ops.gelu: deepcore has the exact (erf) form; pass approximate=False "
            "(Keras' layers use it by default)."
        )
    return _activation("gelu", x)


def silu(x):
    return _activation("swish", x)


swish = silu


def hard_sigmoid(x):
    return _activation("hard_sigmoid", x)


def exponential(x):
    return _activation("exponential", x)


def leaky_relu(x, negative_slope=0.2):
    if not _symbolic(x):
        x = _array(x)
        return np.where(x > 0, x, negative_slope * x).astype(np.float32)
    return _activation("leaky_relu", x, negative_slope)


def softmax(x, axis=-1):
    if not _symbolic(x):
        x = _array(x)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    if axis not in (-1, _rank(x)):
        e = exp(subtract(x, max(x, axis=axis, keepdims=True)))
        return divide(e, sum(e, axis=axis, keepdims=True))
    return _activation("softmax", x)


def log_softmax(x, axis=-1):
    shifted = subtract(x, max(x, axis=axis, keepdims=True))
    return subtract(shifted, log(sum(exp(shifted), axis=axis, keepdims=True)))


def logsumexp(x, axis=None, keepdims=False):
    top = max(x, axis=axis, keepdims=True)
    out = add(log(sum(exp(subtract(x, top)), axis=axis, keepdims=True)), top)
    return out if keepdims else squeeze(out, axis) if axis is not None else reshape(out, (-1,))


# -------------------------------------------------------------------- binary
_NUMPY_BINARY = {
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


def _binary(op: str, x1, x2):
    if not _symbolic(x1, x2):
        with np.errstate(all="ignore"):
            return _NUMPY_BINARY[op](_array(x1), _array(x2)).astype(np.float32)
    return _op_call("binary", op, [x1, x2], op)


def add(x1, x2):
    return _binary("add", x1, x2)


def subtract(x1, x2):
    return _binary("subtract", x1, x2)


def multiply(x1, x2):
    return _binary("multiply", x1, x2)


def divide(x1, x2):
    return _binary("divide", x1, x2)


true_divide = divide


def maximum(x1, x2):
    return _binary("maximum", x1, x2)


def minimum(x1, x2):
    return _binary("minimum", x1, x2)


def power(x1, x2):
    return _binary("power", x1, x2)


def greater(x1, x2):
    return _binary("greater", x1, x2)


def greater_equal(x1, x2):
    return _binary("greater_equal", x1, x2)


def less(x1, x2):
    return _binary("less", x1, x2)


def less_equal(x1, x2):
    return _binary("less_equal", x1, x2)


def equal(x1, x2):
    return _binary("equal", x1, x2)


def not_equal(x1, x2):
    return _binary("not_equal", x1, x2)


def where(condition, x1, x2):
    """x1 where condition is non-zero, else x2 (as condition * x1 + (1 - condition) * x2
    inside a model, with condition 0 or 1: x1 and x2 must be finite there)."""
    if not _symbolic(condition, x1, x2):
        return np.where(_array(condition) != 0, _array(x1), _array(x2)).astype(np.float32)
    picked = not_equal(condition, 0.0)
    return add(multiply(picked, x1), multiply(subtract(1.0, picked), x2))


# ---------------------------------------------------------------- reductions
def _reduce(op: str, x, axis, keepdims):
    if not _symbolic(x):
        return np.asarray(getattr(np, op)(_array(x), axis=axis, keepdims=keepdims), np.float32)
    axes = _sample_axes(axis, _rank(x), f"ops.{op}")
    return _op_call("reduce", op, [x], op, axes=axes, keepdims=bool(keepdims))


def _sample_axes(axis, rank: int, what: str) -> list[int]:
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


def sum(x, axis=None, keepdims=False):  # noqa: A001
    return _reduce("sum", x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    return _reduce("mean", x, axis, keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return _reduce("max", x, axis, keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    return _reduce("min", x, axis, keepdims)


def var(x, axis=None, keepdims=False):
    centered = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centered), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


# --------------------------------------------------------------------- shapes
def reshape(x, newshape):
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


def expand_dims(x, axis):
    if not _symbolic(x):
        return np.expand_dims(_array(x), axis)
    sample = list(x.shape[1:])
    rank = len(sample) + 1
    a = axis + rank + 1 if axis < 0 else axis
    if not 1 <= a <= rank:
        raise ValueError(f"ops.expand_dims: axis {axis} is out of range (0 is the batch axis)")
    sample.insert(a - 1, 1)
    return _op_call("reshape", None, [x], "expand_dims", axes=sample)


def squeeze(x, axis=None):
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


def transpose(x, axes=None):
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


def matmul(x1, x2):
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


def concatenate(xs, axis=-1):
    """The tensors joined along `axis` (the Concatenate layer inside a model)."""
    if not any(is_symbolic(x) for x in xs):
        return np.concatenate([_array(x) for x in xs], axis=axis)
    from .layers.merging import Concatenate

    if not all(is_symbolic(x) for x in xs):
        raise ValueError("ops.concatenate: inside a model every entry must be a model tensor")
    return Concatenate(axis=axis)(list(xs))


def one_hot(x, num_classes, axis=-1):
    """1 where the last axis's index equals x (integer class labels), else 0."""
    if axis != -1:
        raise ValueError("ops.one_hot: only axis=-1 is supported")
    classes = np.arange(num_classes, dtype=np.float32)
    if not _symbolic(x):
        return (np.expand_dims(_array(x), -1) == classes).astype(np.float32)
    return equal(expand_dims(x, -1), classes)
