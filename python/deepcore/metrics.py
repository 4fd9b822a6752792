"""Metrics, computed in the engine during fit and evaluate.

`"accuracy"` resolves as in Keras: binary accuracy for one output unit, sparse
categorical accuracy for integer labels, categorical accuracy for one-hot labels.
Metrics accumulate over the epoch (Precision, Recall and AUC from counts, the
others as weighted means); sample weights apply to every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import _core, _registry
from .layers.ops_layers import TracedFunction, saved_trace

if TYPE_CHECKING:
    from .initializers import Initializer

__all__ = [
    "Metric",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "Precision",
    "Recall",
    "AUC",
    "MeanMetricWrapper",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "get",
    "serialize",
    "deserialize",
    "resolve",
]

_M = _core.Metric
_MetricT = TypeVar("_MetricT", bound="Metric")


class Variable:
    """A metric's state (Keras' `Metric.add_variable`): a NumPy array that `update_state`
    changes with `assign`, `assign_add` and `assign_sub`; it reads as its value (NumPy
    functions, arithmetic, float())."""

    def __init__(self, value: ArrayLike, name: str) -> None:
        self.name = name
        self._initial = np.array(value, np.float32)
        self.value = self._initial.copy()

    def assign(self, value: ArrayLike) -> Variable:
        self.value = np.array(np.broadcast_to(value, self._initial.shape), np.float32)
        return self

    def assign_add(self, delta: ArrayLike) -> Variable:
        return self.assign(self.value + np.asarray(delta, np.float32))

    def assign_sub(self, delta: ArrayLike) -> Variable:
        return self.assign(self.value - np.asarray(delta, np.float32))

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    @property
    def shape(self) -> tuple:
        return self.value.shape

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> NDArray[Any]:
        return self.value.astype(dtype) if dtype is not None else self.value

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return f"<Variable {self.name!r} value={self.value!r}>"

    if TYPE_CHECKING:  # (the operators of its value, set below)

        def __add__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __radd__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __sub__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __rsub__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __mul__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __rmul__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __truediv__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __rtruediv__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __pow__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __rpow__(self, other: ArrayLike) -> NDArray[Any]: ...
        def __neg__(self) -> NDArray[Any]: ...
        def __abs__(self) -> NDArray[Any]: ...
        def __lt__(self, other: ArrayLike) -> NDArray[np.bool_]: ...
        def __le__(self, other: ArrayLike) -> NDArray[np.bool_]: ...
        def __gt__(self, other: ArrayLike) -> NDArray[np.bool_]: ...
        def __ge__(self, other: ArrayLike) -> NDArray[np.bool_]: ...
        def __getitem__(self, key: Any) -> Any: ...


def _operator(name):
    def method(self, *other):
        return getattr(self.value, name)(*(np.asarray(o) for o in other))

    return method


for _name in (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __pow__ "
    "__rpow__ __neg__ __abs__ __lt__ __le__ __gt__ __ge__ __eq__ __ne__ __getitem__"
).split():
    setattr(Variable, _name, _operator(_name))
Variable.__hash__ = object.__hash__  # type: ignore[method-assign]  # (__eq__ is set above)


class Metric:
    """A metric of the engine: `kind`, its settings, and the name used in logs.

    Subclassed as in Keras (a class with `update_state(y_true, y_pred, sample_weight=None)`
    and `result()`, its state in `add_variable`s): the metric runs in Python on every
    batch's labels and predictions (NumPy arrays; `deepcore.ops` works on them), the
    training step's predictions in fit, and logs `result()`. Its state is reset at every
    epoch and evaluation (`reset_state`: the variables' initial values)."""

    kind: _core.Metric | None = None
    default_name = "metric"

    def __init__(
        self,
        name: str | None = None,
        threshold: float = 0.5,
        k: int = 5,
        num_thresholds: int = 200,
        dtype: Any = None,
    ) -> None:
        # (a subclass of the user's is named after its class, as Keras names it)
        custom = type(self).kind is None and type(self) is not Metric
        self.name = name or (_snake_name(type(self)) if custom else self.default_name)
        self.threshold, self.k, self.num_thresholds = float(threshold), int(k), int(num_thresholds)
        self._variables: list[Variable] = []

    # --- Keras' stateful metrics (a subclass's update_state and result)
    def add_variable(
        self,
        shape: Sequence[int] | None = (),
        initializer: float | str | Initializer | type[Initializer] | dict[str, Any] = "zeros",
        dtype: Any = None,
        aggregation: str = "sum",
        name: str | None = None,
    ) -> Variable:
        """A state variable of the metric (Keras' arguments): zeros, ones, a number, or an
        initializer of deepcore.initializers."""
        from . import initializers

        shape = tuple(int(d) for d in (shape or ()))
        if isinstance(initializer, (int, float)):
            value = np.full(shape, float(initializer), np.float32)
        else:  # (a scalar drawn as one value)
            value = initializers.get(initializer)(shape or (1,)).reshape(shape)
        variables = self.__dict__.setdefault("_variables", [])
        variables.append(Variable(value, name or f"variable_{len(variables)}"))
        return variables[-1]

    def add_weight(
        self,
        name: str | None = None,
        shape: Sequence[int] | None = (),
        initializer: float | str | Initializer | type[Initializer] | dict[str, Any] = "zeros",
        dtype: Any = None,
        aggregation: str = "sum",
    ) -> Variable:
        """add_variable by Keras' other name."""
        return self.add_variable(shape, initializer, dtype, aggregation, name)

    @property
    def variables(self) -> list[Variable]:
        return list(self.__dict__.get("_variables", []))

    def update_state(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define update_state")

    def result(self) -> ArrayLike:
        raise NotImplementedError(f"{type(self).__name__} must define result")

    def reset_state(self) -> None:
        """Every variable back to its initial value."""
        for v in self.variables:
            v.assign(v._initial)

    def _stateful(self) -> bool:
        """Whether the metric is a Keras-style subclass computed in Python."""
        return type(self).update_state is not Metric.update_state

    def spec(self) -> _core.MetricSpec:
        return _core.MetricSpec(self.kind, self.threshold, self.k, self.num_thresholds)  # type: ignore[arg-type]

    def __call__(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """Value of the metric over one batch (a stateful metric: its state updated, then
        its result, as Keras' Metric.__call__)."""
        if self._stateful():
            self.update_state(y_true, y_pred, sample_weight)
            return float(np.asarray(self.result()))
        y_pred = np.ascontiguousarray(y_pred, np.float32)
        return _core.metric(self.spec(), np.ascontiguousarray(y_true, np.float32), y_pred)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: `type(m).from_config(m.get_config())` copies it."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "k": self.k,
            "num_thresholds": self.num_thresholds,
        }

    @classmethod
    def from_config(cls: type[_MetricT], config: dict[str, Any]) -> _MetricT:
        return cls(**config)


def _snake_name(cls: type) -> str:
    """Keras' default name of a metric subclass: its class name in snake case."""
    import re

    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", cls.__name__)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class MeanMetricWrapper(TracedFunction, Metric):
    """A metric written as a function `fn(y_true, y_pred, **kwargs)` of deepcore.ops
    returning values per sample (Keras' MeanMetricWrapper; `compile(metrics=[fn])` wraps a
    function in it): their mean over the samples and entries seen. The engine traces `fn`
    once into a program; saved with the model, the program needs no code to be loaded."""

    kind, _family = _M.mean, "Metric"

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        name: str | None = None,
        program: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        Metric.__init__(self, name or getattr(fn, "__name__", None) or "metric")
        self._take_function(fn, kwargs, program)

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:  # type: ignore[override]  # (no sample weights)
        from .losses import _same_rank

        return float(np.mean(self.call(*_same_rank(y_true, y_pred))))  # type: ignore[arg-type]

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "program": saved_trace(self, self._owner_text())}


def _metric_class(
    class_name: str, kind: _core.Metric, default_name: str, doc: str, **defaults: Any
) -> type[Metric]:
    def __init__(self, name=None, **kwargs):
        Metric.__init__(self, name, **{**defaults, **kwargs})

    return type(
        class_name,
        (Metric,),
        {"kind": kind, "default_name": default_name, "__init__": __init__, "__doc__": doc},
    )


BinaryAccuracy = _metric_class(
    "BinaryAccuracy",
    _M.binary_accuracy,
    "binary_accuracy",
    "Mean of (y_pred > threshold) == y_true.",
)
CategoricalAccuracy = _metric_class(
    "CategoricalAccuracy",
    _M.categorical_accuracy,
    "categorical_accuracy",
    "argmax(y_pred) == argmax(y_true).",
)
SparseCategoricalAccuracy = _metric_class(
    "SparseCategoricalAccuracy",
    _M.sparse_categorical_accuracy,
    "sparse_categorical_accuracy",
    "argmax(y_pred) == y_true (integer labels).",
)
MeanSquaredError = _metric_class(
    "MeanSquaredError", _M.mean_squared_error, "mean_squared_error", "mean((y_true - y_pred)^2)."
)
MeanAbsoluteError = _metric_class(
    "MeanAbsoluteError", _M.mean_absolute_error, "mean_absolute_error", "mean(|y_true - y_pred|)."
)


class TopKCategoricalAccuracy(Metric):
    """Whether the true class is among the k highest predictions (one-hot or integer labels)."""

    kind, default_name = _M.top_k_categorical_accuracy, "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None) -> None:
        k = _registry.check_positive_int("k", k, owner="TopKCategoricalAccuracy")
        super().__init__(name, k=k)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "k": self.k}


class _Thresholded(Metric):
    """Counts over the epoch; a prediction is positive when > thresholds (0.5)."""

    def __init__(self, thresholds: float | None = None, name: str | None = None) -> None:
        if thresholds is not None:
            _registry.check_number(
                "thresholds", thresholds, 0, high=1, high_inclusive=True, owner=type(self).__name__
            )
        super().__init__(name, threshold=0.5 if thresholds is None else thresholds)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "thresholds": self.threshold}


class Precision(_Thresholded):
    """tp / (tp + fp) over the epoch; a prediction is positive when > thresholds (0.5)."""

    kind, default_name = _M.precision, "precision"


class Recall(_Thresholded):
    """tp / (tp + fn) over the epoch; a prediction is positive when > thresholds (0.5)."""

    kind, default_name = _M.recall, "recall"


class AUC(Metric):
    """Area under the ROC curve from counts at `num_thresholds` thresholds (Keras' method)."""

    kind, default_name = _M.auc, "auc"

    # the engine keeps four counts per threshold for the epoch
    max_thresholds = 2**20

    def __init__(self, num_thresholds: int = 200, name: str | None = None) -> None:
        num_thresholds = _registry.check_int(
            "num_thresholds", num_thresholds, 2, self.max_thresholds, owner="AUC"
        )
        super().__init__(name, num_thresholds=num_thresholds)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "num_thresholds": self.num_thresholds}


def _per_sample(metric: Metric, y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64]:
    y_pred = np.asarray(y_pred, np.float32)
    rows = y_pred.reshape(-1, y_pred.shape[-1] if y_pred.ndim else 1)
    labels = np.asarray(y_true, np.float32).reshape(len(rows), -1)
    return np.array([metric(t[None], p[None]) for t, p in zip(labels, rows)]).reshape(
        y_pred.shape[:-1]
    )


def binary_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, threshold: float = 0.5
) -> NDArray[np.float64]:
    """Per-sample mean of (y_pred > threshold) == y_true."""
    return _per_sample(BinaryAccuracy(threshold=threshold), y_true, y_pred)


def categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64]:
    """Per-sample argmax(y_pred) == argmax(y_true)."""
    return _per_sample(CategoricalAccuracy(), y_true, y_pred)


def sparse_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64]:
    """Per-sample argmax(y_pred) == y_true."""
    return _per_sample(SparseCategoricalAccuracy(), y_true, y_pred)


def top_k_categorical_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, k: int = 5
) -> NDArray[np.float64]:
    """Per-sample: the true class is among the k highest predictions."""
    return _per_sample(TopKCategoricalAccuracy(k), y_true, y_pred)


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64]:
    return _per_sample(MeanSquaredError(), y_true, y_pred)


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> NDArray[np.float64]:
    return _per_sample(MeanAbsoluteError(), y_true, y_pred)


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "precision": Precision,
    "recall": Recall,
    "auc": AUC,
}
_BY_FUNCTION = {
    binary_accuracy: "binary_accuracy",
    categorical_accuracy: "categorical_accuracy",
    sparse_categorical_accuracy: "sparse_categorical_accuracy",
    top_k_categorical_accuracy: "top_k_categorical_accuracy",
    mean_squared_error: "mean_squared_error",
    mean_absolute_error: "mean_absolute_error",
}


def get(identifier: str | Metric | type[Metric] | Callable[..., Any]) -> str | Metric:
    """Checks a metric identifier; returns its log name (str) or the `Metric` instance."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric) and identifier.kind:
        return identifier()
    if callable(identifier) and identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]
    if isinstance(identifier, str) and identifier.lower() in (*_BY_NAME, "accuracy", "acc"):
        return identifier.lower()
    if callable(identifier) and not isinstance(identifier, type):
        return MeanMetricWrapper(identifier)  # a function of deepcore.ops
    raise ValueError(
        f"Unknown metric: {identifier!r}. Known metrics: "
        f"{', '.join(sorted([*_BY_NAME, 'accuracy', 'acc']))}"
    )


def name_of(metric: str | Metric) -> str:
    """The key under which a metric appears in logs and History."""
    return cast(str, metric.name) if isinstance(metric, Metric) else metric


def resolve(
    metric: str | Metric, y_ndim: int, y_last: int, out_ndim: int, out_last: int
) -> _core.MetricSpec:
    """The engine's MetricSpec for `metric`, given label and output shapes (Keras' rules)."""
    if isinstance(metric, Metric):
        return metric.spec()
    if metric in ("accuracy", "acc"):
        if out_last == 1:
            return BinaryAccuracy().spec()
        if y_ndim < out_ndim or y_last == 1:
            return SparseCategoricalAccuracy().spec()
        return CategoricalAccuracy().spec()
    return _BY_NAME[metric]().spec()


def serialize(metric: str | Metric) -> str | dict[str, Any]:
    """A metric as `compile` took it: its name, or `{"class_name": ..., "config": ...}`."""
    return metric if isinstance(metric, str) else _registry.serialize(metric)


def deserialize(
    config: str | dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> str | Metric:
    """The metric described by `serialize`'s output; a class of the user's (a Keras-style
    subclass) from `custom_objects` ({class name: class})."""
    if isinstance(config, str):
        return config
    custom = (custom_objects or {}).get(config.get("class_name"))  # type: ignore[arg-type]
    if isinstance(custom, type) and issubclass(custom, Metric):
        return custom.from_config(config["config"])
    try:
        return _registry.deserialize("metric", config, {*_BY_NAME.values(), MeanMetricWrapper})
    except ValueError as e:
        raise ValueError(f"{e} (a metric class of yours: pass it in custom_objects)") from None
