"""Metrics, computed in the engine during fit and evaluate.

`"accuracy"` resolves as in Keras: binary accuracy for one output unit, sparse
categorical accuracy for integer labels, categorical accuracy for one-hot labels.
Metrics accumulate over the epoch (Precision, Recall and AUC from counts, the
others as weighted means); sample weights apply to every metric.
"""

from __future__ import annotations

import numpy as np

from . import _core, _registry
from .layers.ops_layers import TracedFunction, saved_trace

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


class Metric:
    """A metric of the engine: `kind`, its settings, and the name used in logs."""

    kind = None
    default_name = "metric"

    def __init__(
        self, name: str | None = None, threshold: float = 0.5, k: int = 5, num_thresholds: int = 200
    ):
        self.name = name or self.default_name
        self.threshold, self.k, self.num_thresholds = float(threshold), int(k), int(num_thresholds)

    def spec(self):
        return _core.MetricSpec(self.kind, self.threshold, self.k, self.num_thresholds)

    def __call__(self, y_true, y_pred) -> float:
        """Value of the metric over one batch."""
        y_pred = np.ascontiguousarray(y_pred, np.float32)
        return _core.metric(self.spec(), np.ascontiguousarray(y_true, np.float32), y_pred)

    def get_config(self) -> dict:
        """The constructor's arguments: `type(m).from_config(m.get_config())` copies it."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "k": self.k,
            "num_thresholds": self.num_thresholds,
        }

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class MeanMetricWrapper(TracedFunction, Metric):
    """A metric written as a function `fn(y_true, y_pred, **kwargs)` of deepcore.ops
    returning values per sample (Keras' MeanMetricWrapper; `compile(metrics=[fn])` wraps a
    function in it): their mean over the samples and entries seen. The engine traces `fn`
    once into a program; saved with the model, the program needs no code to be loaded."""

    kind, _family = _M.mean, "Metric"

    def __init__(self, fn=None, name=None, program=None, **kwargs):
        Metric.__init__(self, name or getattr(fn, "__name__", None) or "metric")
        self._take_function(fn, kwargs, program)

    def __call__(self, y_true, y_pred) -> float:
        from .losses import _same_rank

        return float(np.mean(self.call(*_same_rank(y_true, y_pred))))

    def get_config(self) -> dict:
        return {"name": self.name, "program": saved_trace(self, self._owner_text())}


def _metric_class(class_name, kind, default_name, doc, **defaults):
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

    def __init__(self, k: int = 5, name=None):
        k = _registry.check_positive_int("k", k, owner="TopKCategoricalAccuracy")
        super().__init__(name, k=k)

    def get_config(self):
        return {"name": self.name, "k": self.k}


class _Thresholded(Metric):
    """Counts over the epoch; a prediction is positive when > thresholds (0.5)."""

    def __init__(self, thresholds: float | None = None, name=None):
        if thresholds is not None:
            _registry.check_number(
                "thresholds", thresholds, 0, high=1, high_inclusive=True, owner=type(self).__name__
            )
        super().__init__(name, threshold=0.5 if thresholds is None else thresholds)

    def get_config(self):
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

    def __init__(self, num_thresholds: int = 200, name=None):
        num_thresholds = _registry.check_int(
            "num_thresholds", num_thresholds, 2, self.max_thresholds, owner="AUC"
        )
        super().__init__(name, num_thresholds=num_thresholds)

    def get_config(self):
        return {"name": self.name, "num_thresholds": self.num_thresholds}


def _per_sample(metric: Metric, y_true, y_pred):
    y_pred = np.asarray(y_pred, np.float32)
    rows = y_pred.reshape(-1, y_pred.shape[-1] if y_pred.ndim else 1)
    labels = np.asarray(y_true, np.float32).reshape(len(rows), -1)
    return np.array([metric(t[None], p[None]) for t, p in zip(labels, rows)]).reshape(
        y_pred.shape[:-1]
    )


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-sample mean of (y_pred > threshold) == y_true."""
    return _per_sample(BinaryAccuracy(threshold=threshold), y_true, y_pred)


def categorical_accuracy(y_true, y_pred):
    """Per-sample argmax(y_pred) == argmax(y_true)."""
    return _per_sample(CategoricalAccuracy(), y_true, y_pred)


def sparse_categorical_accuracy(y_true, y_pred):
    """Per-sample argmax(y_pred) == y_true."""
    return _per_sample(SparseCategoricalAccuracy(), y_true, y_pred)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Per-sample: the true class is among the k highest predictions."""
    return _per_sample(TopKCategoricalAccuracy(k), y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    return _per_sample(MeanSquaredError(), y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
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


def get(identifier):
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


def name_of(metric) -> str:
    """The key under which a metric appears in logs and History."""
    return metric.name if isinstance(metric, Metric) else metric


def resolve(metric, y_ndim: int, y_last: int, out_ndim: int, out_last: int):
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


def serialize(metric):
    """A metric as `compile` took it: its name, or `{"class_name": ..., "config": ...}`."""
    return metric if isinstance(metric, str) else _registry.serialize(metric)


def deserialize(config):
    """The metric described by `serialize`'s output."""
    if isinstance(config, str):
        return config
    return _registry.deserialize("metric", config, {*_BY_NAME.values(), MeanMetricWrapper})
