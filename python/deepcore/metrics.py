"""Metrics, computed in the engine during fit and evaluate.

`"accuracy"` resolves as in Keras: binary accuracy for one output unit, sparse
categorical accuracy for integer labels, categorical accuracy for one-hot labels.
"""

from __future__ import annotations

import numpy as np

from . import _core

__all__ = [
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "get",
    "resolve",
]

_M = _core.Metric


def _per_sample(kind, y_true, y_pred, threshold=0.5):
    y_pred = np.ascontiguousarray(y_pred, np.float32)
    y_pred2 = y_pred.reshape(-1, y_pred.shape[-1] if y_pred.ndim else 1)
    y_true2 = np.ascontiguousarray(y_true, np.float32).reshape(len(y_pred2), -1)
    return np.array(
        [_core.metric(kind, t[None], p[None], threshold) for t, p in zip(y_true2, y_pred2)]
    ).reshape(y_pred.shape[:-1])


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-sample mean of (y_pred > threshold) == y_true."""
    return _per_sample(_M.binary_accuracy, y_true, y_pred, threshold)


def categorical_accuracy(y_true, y_pred):
    """Per-sample argmax(y_pred) == argmax(y_true)."""
    return _per_sample(_M.categorical_accuracy, y_true, y_pred)


def sparse_categorical_accuracy(y_true, y_pred):
    """Per-sample argmax(y_pred) == y_true."""
    return _per_sample(_M.sparse_categorical_accuracy, y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    return _per_sample(_M.mean_squared_error, y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    return _per_sample(_M.mean_absolute_error, y_true, y_pred)


_BY_NAME = {
    "binary_accuracy": _M.binary_accuracy,
    "categorical_accuracy": _M.categorical_accuracy,
    "sparse_categorical_accuracy": _M.sparse_categorical_accuracy,
    "mean_squared_error": _M.mean_squared_error,
    "mse": _M.mean_squared_error,
    "mean_absolute_error": _M.mean_absolute_error,
    "mae": _M.mean_absolute_error,
}
_BY_FUNCTION = {
    binary_accuracy: "binary_accuracy",
    categorical_accuracy: "categorical_accuracy",
    sparse_categorical_accuracy: "sparse_categorical_accuracy",
    mean_squared_error: "mean_squared_error",
    mean_absolute_error: "mean_absolute_error",
}


def get(identifier):
    """Checks a metric identifier and returns its name."""
    if callable(identifier) and identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]
    if isinstance(identifier, str) and identifier.lower() in (*_BY_NAME, "accuracy", "acc"):
        return identifier.lower()
    raise ValueError(
        f"Unknown metric: {identifier!r}. Known metrics: "
        f"{', '.join(sorted([*_BY_NAME, 'accuracy', 'acc']))}"
    )


def resolve(name: str, y_ndim: int, y_last: int, out_ndim: int, out_last: int):
    """The engine metric for `name`, given the label and output shapes (Keras' rules)."""
    if name in ("accuracy", "acc"):
        if out_last == 1:
            return _M.binary_accuracy
        if y_ndim < out_ndim or y_last == 1:
            return _M.sparse_categorical_accuracy
        return _M.categorical_accuracy
    return _BY_NAME[name]
