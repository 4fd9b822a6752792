"""The tutorial programs, run with only the import changed to deepcore."""

import numpy as np
import pytest

import deepcore as dc


def test_seed_001_iris_tutorial():
    from deepcore.layers import Dense
    from deepcore.models import Sequential
    from deepcore.utils import to_categorical

    (x_train, y_train), (x_test, y_test) = dc.datasets.iris.load_data(test_split=0.2, seed=0)
    assert x_train.shape == (120, 4) and x_test.shape == (30, 4)
    assert y_train.dtype.kind == "i" and set(np.unique(y_train)) == {0, 1, 2}
    assert np.bincount(y_test).tolist() == [10, 10, 10]  # stratified split
    y_train_cat = to_categorical(y_train)
    y_test_cat = to_categorical(y_test)

    model = Sequential()
    model.add(Dense(10, activation="relu", input_shape=(4,)))
    model.add(Dense(10, activation="relu"))
    model.add(Dense(3, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train_cat, epochs=100, batch_size=8, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test_cat, verbose=0)

    losses = history.history["loss"]
    assert len(losses) == 100 and np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    print(f"seed 001 Iris test accuracy: {accuracy:.3f}")
    assert accuracy >= 0.85
    probs = model.predict(x_test, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probs.argmax(axis=1) == y_test) == pytest.approx(accuracy, abs=1e-6)


def test_seed_002_tutorial_verbatim(capsys):
    import numpy as np

    import deepcore

    model = deepcore.Sequential(
        [
            deepcore.layers.Dense(4, activation="relu", input_shape=(3,)),
            deepcore.layers.Dense(2, activation="relu"),
            deepcore.layers.Dense(1, activation="sigmoid"),
        ]
    )
    X = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    y = np.array([0, 1])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(X, y, epochs=10)

    losses = history.history["loss"]
    assert len(losses) == 10
    assert all(np.isfinite(losses))
    out = capsys.readouterr().out  # verbose="auto" prints one line per epoch
    assert "Epoch 1/10" in out and "Epoch 10/10" in out
    assert model.predict(X, verbose=0).shape == (2, 1)


def test_seed_004_neuron():
    from deepcore import Neuron

    weights = np.array([0, 1])
    bias = 4
    neuron = Neuron(weights, bias)
    x = np.array([2, 3])
    out = neuron.feedforward(x)
    assert abs(out - 1 / (1 + np.exp(-7))) < 1e-12
    # A batch of inputs gives one output per row.
    batch = neuron.feedforward(np.array([[2, 3], [0, -4], [1, 1]]))
    np.testing.assert_allclose(batch, 1 / (1 + np.exp(-np.array([7.0, 0.0, 5.0]))), rtol=1e-12)


@pytest.mark.parametrize("name,targets", [("AND", [0, 0, 0, 1]), ("OR", [0, 1, 1, 1])])
def test_perceptron_learns_linearly_separable_gates(name, targets):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array(targets)
    p = dc.Perceptron(learning_rate=1.0, epochs=10).fit(X, y)
    np.testing.assert_array_equal(p.predict(X), y)
    assert p.errors_[-1] == 0
    # Predictions are the step function of w.x + b (1 where >= 0).
    logits = X @ p.weights + p.bias
    np.testing.assert_array_equal(p.predict(X), (logits >= 0).astype(int))


def test_perceptron_rosenblatt_rule_by_hand():
    # One pass of w += lr (y - step(w.x + b)) x from zeros, checked by hand.
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 1])
    p = dc.Perceptron(learning_rate=0.5, epochs=1).fit(X, y)
    # sample 1: logit 0 -> predicts 1, target 0: w = -0.5*[1,0], b = -0.5
    # sample 2: logit -0.5 -> predicts 0, target 1: w += 0.5*[0,1], b += 0.5
    np.testing.assert_allclose(p.weights, [-0.5, 0.5])
    assert p.bias == pytest.approx(0.0)
    assert p.errors_ == [2]
    # step at exactly 0 is 1.
    p.weights, p.bias = np.array([1.0, -1.0]), 0.0
    np.testing.assert_array_equal(
        p.predict(np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])), [1, 0, 1]
    )


def _stratified_folds(y, k, seed):
    rng = np.random.default_rng(seed)
    folds = [[] for _ in range(k)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        for f, chunk in enumerate(np.array_split(idx, k)):
            folds[f].extend(chunk.tolist())
    return [np.array(f) for f in folds]


def test_iris_cross_validated_accuracy_at_least_95_percent():
    """4 x 5-fold stratified cross-validation: 20 held-out folds, 600 held-out predictions."""
    (x, y), (x_none, _) = dc.datasets.iris.load_data(test_split=0.0)
    assert x.shape == (150, 4) and len(x_none) == 0
    assert np.bincount(y).tolist() == [50, 50, 50]

    accuracies = []
    for repeat in range(4):
        folds = _stratified_folds(y, 5, seed=repeat)
        assert sorted(np.concatenate(folds).tolist()) == list(range(150))
        for k, test_idx in enumerate(folds):
            train_idx = np.setdiff1d(np.arange(150), test_idx)
            mean, std = x[train_idx].mean(axis=0), x[train_idx].std(axis=0)
            x_train, x_test = (x[train_idx] - mean) / std, (x[test_idx] - mean) / std
            dc.utils.set_random_seed(100 * repeat + 7 + k)
            model = dc.Sequential(
                [
                    dc.Input(shape=(4,)),
                    dc.layers.Dense(16, activation="relu"),
                    dc.layers.Dense(16, activation="relu"),
                    dc.layers.Dense(3, activation="softmax"),
                ]
            )
            model.compile(
                optimizer=dc.optimizers.Adam(learning_rate=0.01),
                loss="categorical_crossentropy",
                metrics=["accuracy"],
            )
            model.fit(
                x_train,
                dc.utils.to_categorical(y[train_idx], 3),
                epochs=100,
                batch_size=16,
                verbose=0,
            )
            _, acc = model.evaluate(x_test, dc.utils.to_categorical(y[test_idx], 3), verbose=0)
            pred = model.predict(x_test, verbose=0).argmax(axis=1)
            assert acc == pytest.approx(np.mean(pred == y[test_idx]), abs=1e-6)
            accuracies.append(acc)
    mean_acc = float(np.mean(accuracies))
    print(f"Iris 4x5-fold held-out accuracy: {mean_acc:.4f}")
    assert mean_acc >= 0.95


def test_xor_is_learned():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])
    model = dc.Sequential(
        [
            dc.Input(shape=(2,)),
            dc.layers.Dense(8, activation="tanh"),
            dc.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=dc.optimizers.Adam(learning_rate=0.05),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(X, y, epochs=300, batch_size=4, verbose=0)
    pred = model.predict(X, verbose=0)[:, 0]
    np.testing.assert_array_equal(np.round(pred).astype(int), [0, 1, 1, 0])
    assert history.history["accuracy"][-1] == 1.0
    assert history.history["loss"][-1] < 0.1
