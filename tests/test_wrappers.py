"""deepcore.wrappers: scikit-learn estimators around deepcore models (Keras 3's
keras.wrappers), checked with scikit-learn's own estimator checks and in Pipeline, clone,
cross_val_score and GridSearchCV(n_jobs=2)."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import deepcore as dc  # noqa: E402
from deepcore.wrappers import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer  # noqa: E402


def dynamic_model(X, y, loss, activation="softmax", hidden=16, lr=0.01):
    """A model sized by the data, as Keras' wrapper documentation writes it."""
    x = dc.Input(shape=(X.shape[1],))
    h = dc.layers.Dense(hidden, activation="relu")(x)
    out = dc.layers.Dense(y.shape[1] if y.ndim > 1 else 1, activation=activation)(h)
    model = dc.Model(x, out)
    model.compile(dc.optimizers.Adam(lr), loss)
    return model


def classifier(**kw):
    return SKLearnClassifier(
        dynamic_model,
        model_kwargs={"loss": "categorical_crossentropy", **kw},
        fit_kwargs={"epochs": 30, "verbose": 0},
    )


def regressor(**kw):
    return SKLearnRegressor(
        dynamic_model,
        model_kwargs={"loss": "mse", "activation": "linear", **kw},
        fit_kwargs={"epochs": 30, "verbose": 0},
    )


# The checks the wrappers cannot pass, as Keras lists them for its own: a fit draws new
# initial weights (no two fits alike, as in Keras; deepcore.utils.set_random_seed makes a
# run reproducible), and a few epochs may not separate every class of the checks' tiny data.
REPRODUCIBLE = "the check compares two fits (each draws new initial weights)"
EXPECTED_FAILED = {
    "SKLearnClassifier": {
        "check_classifiers_classes": "a short fit may not predict every class",
        "check_classifier_data_not_an_array": REPRODUCIBLE,
        "check_supervised_y_2d": REPRODUCIBLE,
        "check_fit_idempotent": REPRODUCIBLE,
        "check_classifiers_train": "decision_function returns the softmax probabilities",
    },
    "SKLearnRegressor": {
        "check_regressor_data_not_an_array": REPRODUCIBLE,
        "check_supervised_y_2d": REPRODUCIBLE,
        "check_fit_idempotent": REPRODUCIBLE,
        "check_regressors_int": REPRODUCIBLE,
    },
    "SKLearnTransformer": {},
}


@parametrize_with_checks(
    [
        classifier(),
        regressor(),
        SKLearnTransformer(dynamic_model, model_kwargs={"loss": "mse"}),
    ],
    expected_failed_checks=lambda e: EXPECTED_FAILED[type(e).__name__],
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def blobs(n=240, seed=0, labels=("cat", "dog", "eel")):
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(labels), n)
    centers = rng.normal(0, 4, (len(labels), 4))
    X = centers[k] + rng.normal(0, 1, (n, 4))
    return X * 100 + 50, np.array(labels)[k]  # (badly scaled: StandardScaler's job)


def test_labels_kept_as_given_and_a_pipeline_learns():
    X, y = blobs()
    pipe = make_pipeline(StandardScaler(), classifier())
    pipe.fit(X[:180], y[:180])
    clf = pipe[-1]
    assert list(clf.classes_) == ["cat", "dog", "eel"]
    pred = pipe.predict(X[180:])
    assert pred.dtype == y.dtype and set(pred) <= {"cat", "dog", "eel"}
    assert pipe.score(X[180:], y[180:]) > 0.9
    out = clf.decision_function(StandardScaler().fit(X[:180]).transform(X[180:]))
    assert out.shape == (60, 3)
    np.testing.assert_array_equal(clf.classes_[out.argmax(1)], pred)
    assert clf.epoch_ == 30 and len(clf.history_["loss"]) == 30


def test_regressor_targets_keep_their_shape():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=200)
    reg = regressor(hidden=8).fit(X, y)
    assert reg.predict(X).shape == (200,) and reg.score(X, y) > 0.9
    Y = np.stack([y, -y], axis=1)
    assert regressor().fit(X, Y).predict(X).shape == (200, 2)


def test_clone_cross_val_score_and_a_model_instance():
    X, y = blobs(n=150, labels=(3, 7))
    model = dynamic_model(X, np.zeros((1, 2)), "categorical_crossentropy")
    est = SKLearnClassifier(model, fit_kwargs={"epochs": 20, "verbose": 0})
    scores = cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    twin = clone(est)  # (deep-copies the model given: the same weights, its own)
    assert twin.model is not model and twin.get_params()["fit_kwargs"] == est.fit_kwargs
    for a, b in zip(twin.model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    before = [w.copy() for w in model.get_weights()]
    est.fit(StandardScaler().fit_transform(X), y)
    assert est.model_ is not model  # a model given is copied with fresh weights
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_warm_start_goes_on_from_the_last_fit():
    X, y = blobs(n=120)
    est = classifier()
    est.set_params(warm_start=True, fit_kwargs={"epochs": 2, "verbose": 0})
    est.fit(X, y)
    first = est.model_
    iterations = first.optimizer.iterations
    est.fit(X, y)
    assert est.model_ is first and first.optimizer.iterations == 2 * iterations
    est.set_params(warm_start=False).fit(X, y)
    assert est.model_ is not first


def test_grid_search_with_two_workers():
    X, y = blobs(n=150)
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), classifier()),
        {
            "sklearnclassifier__model_kwargs": [
                {"loss": "categorical_crossentropy", "hidden": 4},
                {"loss": "categorical_crossentropy", "hidden": 16},
            ]
        },
        cv=2,
        n_jobs=2,
    )
    grid.fit(X, y)
    assert grid.best_score_ > 0.8
    assert set(grid.predict(X)) <= {"cat", "dog", "eel"}


def test_bad_models_and_targets_are_named():
    X, y = blobs(n=40)
    with pytest.raises(RuntimeError, match="must be compiled"):
        SKLearnRegressor(lambda X, y: dc.Sequential([dc.layers.Dense(1)])).fit(X, y == "cat")
    with pytest.raises(TypeError, match="not a deepcore model"):
        SKLearnRegressor(lambda X, y: "model").fit(X, y == "cat")
    with pytest.raises(ValueError, match="cannot fit one class"):
        classifier().fit(X, np.full(40, "cat"))
    with pytest.raises(ValueError, match="binary and multiclass"):
        classifier().fit(X, X[:, 0])
