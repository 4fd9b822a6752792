"""Losses, in Keras' function and class forms, computed by the engine's kernels.

Function forms (`mean_squared_error(y_true, y_pred)`) return one loss per sample.
Class forms reduce with `reduction="sum_over_batch_size"` (the mean) like Keras.
In a model, a cross-entropy that follows a sigmoid/softmax output is computed from
the logits, so saturated outputs keep finite losses and gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core, _registry
from ._registry import lookup
from .layers.ops_layers import TracedFunction, saved_trace

if TYPE_CHECKING:
    from typing import Protocol

    from .ops import Tensor

    class _LossFunction(Protocol):
        """The function forms (`mean_squared_error`, ...): one loss per sample."""

        def __call__(
            self, y_true: ArrayLike, y_pred: ArrayLike, **kwargs: Any
        ) -> NDArray[np.floating[Any]]: ...


__all__ = [
    "Loss",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "LossFunctionWrapper",
    "Huber",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "Hinge",
    "mean_squared_error",
    "mean_absolute_error",
    "huber",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "hinge",
    "mse",
    "mae",
    "get",
    "serialize",
    "deserialize",
]

_REDUCTIONS = ("sum_over_batch_size", "sum", "none", None)
_LossT = TypeVar("_LossT", bound="Loss")


class Loss:
    """Base class: a loss kind of the engine plus its settings."""

    kind: _core.Loss | None = None
    name = "loss"

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        from_logits: bool = False,
        delta: float = 1.0,
    ) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"Unknown reduction {reduction!r}. Known: {_REDUCTIONS}")
        self.reduction = reduction
        self.name = name or type(self).name
        self.from_logits = bool(from_logits)
        self.delta = float(delta)

    def spec(self) -> _core.LossSpec:
        """The engine's description of this loss."""
        kind = _core.Loss.given if self.custom else self.kind
        return _core.LossSpec(kind, self.from_logits, self.delta, self.reduction == "sum")  # type: ignore[arg-type]

    @property
    def custom(self) -> bool:
        """Whether the loss is written with deepcore.ops (`call`), not an engine kind."""
        return self.kind is None

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        """A custom loss's values per sample (Keras' `Loss.call`): override it with
        deepcore.ops; the engine traces it once on symbolic tensors."""
        raise NotImplementedError(
            f"Loss {self.name!r}: a Loss subclass defines call(y_true, y_pred) with deepcore.ops"
        )

    @property
    def sparse(self) -> bool:
        return self.kind == _core.Loss.sparse_categorical_crossentropy

    def prepare_targets(self, y: np.ndarray) -> np.ndarray:
        """Converts labels once before use (hinge maps {0, 1} to {-1, 1}, as Keras)."""
        return y

    def per_sample(self, y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample losses and the gradient of their sum with respect to y_pred."""
        y_pred = np.asarray(y_pred)
        dtype = (
            np.float64
            if np.asarray(y_true).dtype == np.float64 or y_pred.dtype == np.float64
            else np.float32
        )
        y_pred = np.ascontiguousarray(y_pred, dtype)
        y_true = np.ascontiguousarray(self.prepare_targets(np.asarray(y_true, dtype)), dtype)
        expected = y_pred.shape[:-1] + ((1,) if self.sparse else y_pred.shape[-1:])
        if y_true.size != int(np.prod(expected)):
            raise ValueError(
                f"Loss {self.name!r} expects y_true of shape {expected} for y_pred of shape "
                f"{y_pred.shape}. Received: y_true.shape={y_true.shape}"
            )
        per, grad = _core.loss(self.spec(), y_true, y_pred)
        return per.reshape(y_pred.shape[:-1]), grad

    def __call__(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> np.floating[Any] | NDArray[np.floating[Any]]:
        if self.custom:  # deepcore.ops on arrays compute at once
            per = np.asarray(self.call(*_same_rank(y_true, y_pred)), np.float64)
            per = per.reshape(len(per), -1).mean(axis=1) if per.ndim > 1 else per
        else:
            per, _ = self.per_sample(y_true, y_pred)
        if sample_weight is not None:
            per = per * np.asarray(sample_weight, per.dtype).reshape(per.shape)
        if self.reduction == "sum_over_batch_size":
            return per.mean()
        if self.reduction == "sum":
            return per.sum()
        return per

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: `type(loss).from_config(loss.get_config())` copies it."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls: type[_LossT], config: dict[str, Any]) -> _LossT:
        return cls(**config)


def _same_rank(
    y_true: ArrayLike, y_pred: ArrayLike
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Keras' squeeze_or_expand_to_same_rank of labels and predictions, on arrays."""
    y_true, y_pred = np.asarray(y_true, np.float32), np.asarray(y_pred, np.float32)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1 and y_true.ndim == 1:
        y_true = y_true[:, None]
    return y_true, y_pred


class LossFunctionWrapper(TracedFunction, Loss):
    """A loss written as a function `fn(y_true, y_pred, **kwargs)` of deepcore.ops returning
    values per sample (Keras' LossFunctionWrapper; `compile(loss=fn)` wraps a function in it).
    The model's loss is their mean over the samples and their entries, weighted by the
    sample weights, as Keras reduces it. The engine traces `fn` once into a program; saved
    with the model, the program needs no code to be loaded.

    Inside a model each sample is computed alone: `ops.mean(x)` (axis=None) averages a
    sample's values, which averaged over the batch is Keras' value; `ops.sum(x)` sums a
    sample's, so the loss is Keras' divided by the batch size."""

    kind, _family = None, "Loss"

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        program: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        Loss.__init__(self, reduction, name or getattr(fn, "__name__", None) or "loss")
        self._take_function(fn, kwargs, program)


class MeanSquaredError(Loss):
    """mean((y_true - y_pred)^2) over the last axis."""

    kind, name = _core.Loss.mean_squared_error, "mean_squared_error"

    def __init__(
        self, reduction: str | None = "sum_over_batch_size", name: str | None = None
    ) -> None:
        super().__init__(reduction, name)


class MeanAbsoluteError(Loss):
    """mean(|y_true - y_pred|) over the last axis."""

    kind, name = _core.Loss.mean_absolute_error, "mean_absolute_error"

    def __init__(
        self, reduction: str | None = "sum_over_batch_size", name: str | None = None
    ) -> None:
        super().__init__(reduction, name)


class Huber(Loss):
    """mean over the last axis of 0.5 e^2 if |e| <= delta else delta (|e| - 0.5 delta)."""

    kind, name = _core.Loss.huber, "huber_loss"

    def __init__(
        self,
        delta: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
    ) -> None:
        delta = _registry.check_number("delta", delta, 0, inclusive=False, owner="Huber")
        super().__init__(reduction, name, delta=delta)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


class _FromLogits(Loss):
    """A cross-entropy: Keras' constructor (from_logits first) and config."""

    def __init__(
        self,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
    ) -> None:
        super().__init__(reduction, name, from_logits)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits}


class BinaryCrossentropy(_FromLogits):
    """-mean(y log p + (1 - y) log(1 - p)) over the last axis; p clipped to [1e-7, 1 - 1e-7]."""

    kind, name = _core.Loss.binary_crossentropy, "binary_crossentropy"


class CategoricalCrossentropy(_FromLogits):
    """-sum(y log q) with q = p / sum(p) clipped to [1e-7, 1 - 1e-7]; one-hot labels."""

    kind, name = _core.Loss.categorical_crossentropy, "categorical_crossentropy"


class SparseCategoricalCrossentropy(_FromLogits):
    """Categorical cross-entropy with integer labels in [0, classes)."""

    kind, name = _core.Loss.sparse_categorical_crossentropy, "sparse_categorical_crossentropy"


class Hinge(Loss):
    """mean(max(1 - y_true * y_pred, 0)); labels in {0, 1} are mapped to {-1, 1}."""

    kind, name = _core.Loss.hinge, "hinge"

    def __init__(
        self, reduction: str | None = "sum_over_batch_size", name: str | None = None
    ) -> None:
        super().__init__(reduction, name)

    def prepare_targets(self, y: np.ndarray) -> np.ndarray:
        if np.isin(y, (0, 1)).all():
            return 2 * y - 1
        return y


def _function(cls: type[Loss], doc: str) -> _LossFunction:
    def fn(y_true, y_pred, **kwargs):
        return cls(reduction="none", **kwargs)(y_true, y_pred)

    fn.__name__ = cls.name if cls is not Huber else "huber"
    fn.__doc__ = f"Per-sample {doc} (see `{cls.__name__}`)."
    return fn


mean_squared_error = mse = _function(MeanSquaredError, "mean squared error")
mean_absolute_error = mae = _function(MeanAbsoluteError, "mean absolute error")
huber = _function(Huber, "Huber loss")
binary_crossentropy = _function(BinaryCrossentropy, "binary cross-entropy")
categorical_crossentropy = _function(CategoricalCrossentropy, "categorical cross-entropy")
sparse_categorical_crossentropy = _function(
    SparseCategoricalCrossentropy, "sparse categorical cross-entropy"
)
hinge = _function(Hinge, "hinge loss")

_BY_NAME = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "hinge": Hinge,
}
_BY_FUNCTION = {
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    huber: Huber,
    binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    hinge: Hinge,
}


def get(identifier: str | Loss | type[Loss] | Callable[..., Any]) -> Loss:
    """Resolves a name, a loss function or a `Loss` instance/class to a `Loss` instance."""
    if isinstance(identifier, Loss):
        return identifier
    if (
        isinstance(identifier, type)
        and issubclass(identifier, Loss)
        and (identifier.kind is not None or identifier.call is not Loss.call)
    ):
        return identifier()
    if callable(identifier) and identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]()
    if callable(identifier) and not isinstance(identifier, type):
        return LossFunctionWrapper(identifier)  # a function of deepcore.ops
    return lookup("loss", identifier, _BY_NAME)()


def serialize(loss: Loss) -> dict[str, Any]:
    """`{"class_name": ..., "config": ...}` of a `Loss` instance; a custom loss (a function, or
    a subclass's `call`) as the program its model traced."""
    if loss.custom:
        config: dict[str, Any] = {"name": loss.name, "reduction": loss.reduction}
        config["program"] = saved_trace(loss, f"Loss {loss.name!r}")
        return {"class_name": "LossFunctionWrapper", "config": config}
    return _registry.serialize(loss)


def deserialize(config: dict[str, Any]) -> Loss:
    """The loss described by `serialize`'s output (a custom loss: its traced program)."""
    return _registry.deserialize("loss", config, {*_BY_NAME.values(), LossFunctionWrapper})
