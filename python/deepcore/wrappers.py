"""scikit-learn estimators around deepcore models (Keras 3's `keras.wrappers`):
`SKLearnClassifier`, `SKLearnRegressor` and `SKLearnTransformer` work in `Pipeline`,
`clone`, `cross_val_score` and `GridSearchCV` (with `n_jobs`: the estimators and their
models pickle). scikit-learn is an optional dependency, needed when an estimator is made.

    def make_model(X, y, hidden=16):
        model = deepcore.Sequential([
            deepcore.Input(shape=(X.shape[1],)),
            deepcore.layers.Dense(hidden, activation="relu"),
            deepcore.layers.Dense(y.shape[1], activation="softmax"),
        ])
        model.compile("adam", "categorical_crossentropy")
        return model

    clf = SKLearnClassifier(make_model, model_kwargs={"hidden": 32},
                            fit_kwargs={"epochs": 20, "verbose": 0})
    GridSearchCV(clf, {"model_kwargs": [{"hidden": 8}, {"hidden": 32}]}, n_jobs=2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from .models import Model, clone_model

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
except ImportError:  # (the estimators then refuse to be made)
    BaseEstimator = ClassifierMixin = RegressorMixin = TransformerMixin = object

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]

_EstimatorT = TypeVar("_EstimatorT", bound="SKLBase")


def _validate_data(estimator, *args, **kwargs):
    """scikit-learn's checks of X (and y): 2-D numbers, n_features_in_ set at fit and
    compared at predict (`validate_data` from scikit-learn 1.6, the method before)."""
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:
        return estimator._validate_data(*args, **kwargs)
    return validate_data(estimator, *args, **kwargs)


class SKLBase(BaseEstimator):
    """What the three estimators share.

    Args:
        model: A compiled deepcore model, or a callable returning one: called as
            `model(X=X, y=y, **model_kwargs)` with the training data (y as the model sees
            it: a classifier's one-hot encoded) so that it can size the inputs and outputs.
            A model given is copied with fresh weights (`clone_model`, compiled as it is)
            at each fit, unless `warm_start`.
        warm_start: Whether a fit goes on from the model of the fit before (its weights
            and optimizer state) instead of a new one.
        model_kwargs: Keyword arguments of `model` when it is a callable.
        fit_kwargs: Keyword arguments of the model's `fit` (epochs, batch_size, verbose,
            ...); those passed to the estimator's `fit` take precedence.

    Attributes:
        model_: The fitted model.
        history_: The history of the last fit (`History.history`: a dict of lists).
        n_features_in_: The number of features seen at fit.
    """

    def __init__(
        self,
        model: Model | Callable[..., Model],
        warm_start: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        fit_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if BaseEstimator is object:
            raise ImportError(f"{type(self).__name__} needs scikit-learn: pip install scikit-learn")
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs

    def _more_tags(self):  # (scikit-learn before 1.6)
        return {"non_deterministic": True, "poor_score": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        return tags

    @property
    def epoch_(self) -> int:
        """The epochs the last fit ran."""
        return len(getattr(self, "history_", {}).get("loss", []))

    def _get_model(self, X, y) -> Model:
        if self.warm_start and hasattr(self, "model_"):
            return self.model_
        if isinstance(self.model, Model):
            model = clone_model(self.model)
        elif callable(self.model):
            model = self.model(X=X, y=y, **(self.model_kwargs or {}))
        else:
            raise TypeError(
                f"{type(self).__name__}: `model` must be a deepcore model or a callable "
                f"returning one; received {type(self.model).__name__}"
            )
        if not isinstance(model, Model):
            raise TypeError(
                f"{type(self).__name__}: `model` returned {type(model).__name__}, not a "
                "deepcore model"
            )
        if not model.compiled or model.loss is None or model.optimizer is None:
            raise RuntimeError(
                f"{type(self).__name__}: the model must be compiled with a loss and an "
                "optimizer (model.compile(optimizer, loss)) before the estimator fits it"
            )
        return model

    def fit(self: _EstimatorT, X: ArrayLike, y: ArrayLike, **kwargs: Any) -> _EstimatorT:
        """Fits the model on X (n_samples, n_features) and y; `kwargs` go to the model's
        `fit` (sample_weight, epochs, ...), over `fit_kwargs`."""
        X, y = _validate_data(self, X, y, multi_output=True)
        y = self._encode(y, reset=True)
        model = self._get_model(X, y)
        self.history_ = model.fit(X, y, **{**(self.fit_kwargs or {}), **kwargs}).history
        self.model_ = model
        return self

    def _outputs(self, X) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = _validate_data(self, X, reset=False)
        return self.model_.predict(X, verbose=0)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The model's predictions for X, as the targets were given (a classifier's class
        labels)."""
        return self._decode(self._outputs(X))

    def _encode(self, y, reset=False):
        """The targets as the model sees them: 1-D targets as one column."""
        from sklearn.utils.multiclass import type_of_target

        if type_of_target(y) == "unknown":  # (scikit-learn's words for it)
            raise ValueError(f"Unknown label type: {type(self).__name__} received {y!r:.100}")
        y = np.asarray(y)
        if reset:
            self._y_ndim = y.ndim
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _decode(self, outputs):
        """The model's outputs as the targets were given: one column back to 1-D."""
        if self._y_ndim == 1 and outputs.ndim == 2 and outputs.shape[1] == 1:
            return outputs[:, 0]
        return outputs


class SKLearnClassifier(ClassifierMixin, SKLBase):
    """A scikit-learn classifier around a deepcore model: the class labels (numbers or
    strings, binary or several classes) are one-hot encoded for the model, whose output
    has one column per class (softmax), and `predict` returns labels as given. See SKLBase
    for the arguments.

    Attributes:
        classes_: The class labels, sorted.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        return tags

    def _encode(self, y, reset=False):
        from sklearn.preprocessing import OneHotEncoder
        from sklearn.utils.multiclass import type_of_target

        y = super()._encode(y, reset)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"{type(self).__name__} fits binary and multiclass targets (one label per "
                f"sample); received a {kind!r} target"
            )
        if reset:
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} cannot fit one class: the targets hold only "
                    f"{self.classes_[0]!r}"
                )
            self._encoder = OneHotEncoder(sparse_output=False).fit(y)
        return self._encoder.transform(y).astype(np.float32)

    def _decode(self, outputs):
        return super()._decode(self._encoder.inverse_transform(outputs))

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """The model's outputs for X: one column per class of `classes_`."""
        return self._outputs(X)


class SKLearnRegressor(RegressorMixin, SKLBase):
    """A scikit-learn regressor around a deepcore model (one or several targets). See
    SKLBase for the arguments."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        return tags


class SKLearnTransformer(TransformerMixin, SKLBase):
    """A scikit-learn transformer whose `transform` is the fitted model's `predict` (an
    embedding, for example). See SKLBase for the arguments."""

    def _more_tags(self):
        return {**super()._more_tags(), "preserves_dtype": []}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags

    def transform(self, X: ArrayLike) -> np.ndarray:
        """The fitted model's outputs for X."""
        return self._outputs(X)
