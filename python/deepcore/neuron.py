"""The tutorials' single neuron and Rosenblatt's perceptron."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import activations

__all__ = ["Neuron", "Perceptron"]


class Neuron:
    """One artificial neuron: activation(weights . inputs + bias).

    Args:
        weights: Weight per input.
        bias: Added to the weighted sum.
        activation: Activation name or function (default "sigmoid").
    """

    def __init__(
        self,
        weights: ArrayLike,
        bias: float,
        activation: str | Callable[..., Any] = "sigmoid",
    ) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        if self.weights.ndim != 1 or self.weights.size == 0:
            raise ValueError(
                f"Neuron weights must be a non-empty 1-D array. "
                f"Received shape: {self.weights.shape}"
            )
        self.bias = float(bias)
        self.activation = activations.get(activation)

    def feedforward(self, inputs: ArrayLike) -> np.floating[Any] | NDArray[np.floating[Any]]:
        """activation(weights . inputs + bias) for one input vector or a batch of rows."""
        x = np.asarray(inputs, dtype=np.float64)
        if x.shape[-1:] != self.weights.shape:
            raise ValueError(
                f"Neuron expects inputs with {self.weights.size} values. Received shape: {x.shape}"
            )
        out = self.activation(np.atleast_1d(x @ self.weights + self.bias))
        return out[0] if x.ndim == 1 else out

    __call__ = feedforward


class Perceptron:
    """Rosenblatt's perceptron: step(w . x + b), trained with w += lr (y - y_hat) x.

    Args:
        learning_rate: Step of the learning rule.
        epochs: Passes over the data in `fit`.
    """

    def __init__(self, learning_rate: float = 1.0, epochs: int = 10) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive. Received: {learning_rate}")
        self.learning_rate = float(learning_rate)
        self.epochs = int(epochs)
        self.weights: np.ndarray | None = None
        self.bias = 0.0
        self.errors_: list[int] = []

    def logit(self, x: ArrayLike) -> np.float64 | NDArray[np.float64]:
        """w . x + b."""
        return np.asarray(x, dtype=np.float64) @ self.weights + self.bias  # type: ignore[operator]  # (set by fit)

    def predict(self, x: ArrayLike) -> NDArray[np.int64]:
        """1 where the logit is >= 0, else 0."""
        if self.weights is None:
            raise ValueError("Perceptron.predict called before fit.")
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != self.weights.shape:
            raise ValueError(
                f"Perceptron expects inputs with {self.weights.size} values. "
                f"Received shape: {x.shape}"
            )
        return activations.step(np.atleast_1d(self.logit(x))).astype(np.int64).reshape(x.shape[:-1])

    def fit(self, x: ArrayLike, y: ArrayLike) -> Perceptron:
        """Applies the learning rule sample by sample for `epochs` passes."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y).reshape(-1)
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError(
                f"Perceptron.fit expects x of shape (n, features) and n labels. "
                f"Received: x {x.shape}, y {y.shape}"
            )
        if not np.isin(y, (0, 1)).all():
            raise ValueError("Perceptron labels must be 0 or 1.")
        self.weights = np.zeros(x.shape[1])
        self.bias = 0.0
        self.errors_ = []
        for _ in range(self.epochs):
            errors = 0
            for xi, target in zip(x, y):
                update = self.learning_rate * (target - (self.logit(xi) >= 0))
                self.weights += update * xi
                self.bias += update
                errors += int(update != 0)
            self.errors_.append(errors)
            if errors == 0:
                break
        return self
