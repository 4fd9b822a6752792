"""Custom losses and metrics written with deepcore.ops (`compile(loss=fn, metrics=[fn])`, a
Loss subclass's `call`): traced into programs the engine runs, against float64 NumPy and
finite differences, against the built-in losses they restate, step for step against Keras
where it is installed, saved and loaded without their code, and their errors."""

import numpy as np
import pytest
from keras_reference import import_keras
from test_functional import assert_fits_alike, assert_gradients_match

import deepcore as dc
from deepcore import layers as L
from deepcore import ops


def pseudo_huber(o):
    def loss(y_true, y_pred):
        return o.mean(o.sqrt(o.square(y_true - y_pred) + 1.0) - 1.0, axis=-1)

    return loss


def my_mae(y_true, y_pred):
    return ops.mean(ops.abs(y_true - y_pred), axis=-1)


def regression(rng, n=40):
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, rng.normal(size=(n, 2)).astype(np.float32)


def mlp(lib=dc):
    return lib.Sequential(
        [lib.Input((4,)), lib.layers.Dense(8, activation="tanh"), lib.layers.Dense(2)]
    )


def test_a_custom_loss_matches_numpy_and_its_gradients(rng):
    model = mlp()
    w = [rng.normal(0, 0.7, v.shape).astype(np.float32) for v in model.get_weights()]
    model.set_weights(w)
    model.compile("sgd", pseudo_huber(ops), metrics=[my_mae])
    x, y = regression(rng, 12)
    p = [v.astype(np.float64) for v in w]

    def np_pred():
        return np.tanh(x @ p[0] + p[1]) @ p[2] + p[3]

    def np_loss(weights=None):
        per = (np.sqrt((y - np_pred()) ** 2 + 1) - 1).mean(axis=-1)
        return per.mean() if weights is None else (per * weights).mean()

    assert_gradients_match(model, x, y, np_loss, p)
    sw = rng.uniform(0.5, 2.0, len(x))
    logs = model.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], np_loss(sw), rtol=1e-5)
    np.testing.assert_allclose(logs["my_mae"], np.abs(y - np_pred()).mean(), rtol=1e-5)
    # on arrays, the same functions compute at once
    got = dc.losses.get(pseudo_huber(ops))(y, np_pred().astype(np.float32))
    np.testing.assert_allclose(got, np_loss(), rtol=1e-5)


def test_custom_losses_restate_the_builtin_ones(rng):
    x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 3, 64)

    def sparse_ce(y_true, y_pred):  # y_true: one class index per sample
        return -ops.sum(ops.one_hot(y_true, 3) * ops.log(ops.clip(y_pred, 1e-7, 1.0)), axis=-1)

    histories = []
    for loss in (sparse_ce, "sparse_categorical_crossentropy"):
        dc.utils.set_random_seed(3)
        model = dc.Sequential([dc.Input((4,)), L.Dense(3, activation="softmax")])
        model.compile("adam", loss)
        histories.append(model.fit(x, y, epochs=3, verbose=0, shuffle=False).history["loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-5)


def test_a_loss_subclass_with_call_and_several_outputs(rng):
    class Scaled(dc.losses.Loss):
        def __init__(self, scale=2.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def call(self, y_true, y_pred):
            return ops.mean(ops.square(y_true - y_pred), axis=-1) * self.scale

    inp = dc.Input(shape=(4,))
    h = L.Dense(5, activation="tanh", name="trunk")(inp)
    model = dc.Model(inp, [L.Dense(2, name="a")(h), L.Dense(1, name="b")(h)])
    model.compile("sgd", [Scaled(3.0), "mse"], metrics=[[my_mae], None])
    x, ya = regression(rng)
    yb = rng.normal(size=(40, 1)).astype(np.float32)
    logs = model.evaluate(x, [ya, yb], verbose=0, return_dict=True)
    pa, pb = model.predict(x, verbose=0)
    np.testing.assert_allclose(logs["a_loss"], 3 * ((pa - ya) ** 2).mean(), rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"], 3 * ((pa - ya) ** 2).mean() + ((pb - yb) ** 2).mean(), rtol=1e-5
    )
    np.testing.assert_allclose(logs["a_my_mae"], np.abs(pa - ya).mean(), rtol=1e-5)


def test_custom_losses_and_metrics_train_as_keras(rng):
    keras = import_keras()
    km, dm = mlp(keras), mlp(dc)
    dm.set_weights(km.get_weights())
    x, y = regression(rng, 48)

    def metric(o):
        def gap(y_true, y_pred):
            return o.max(o.abs(y_true - y_pred), axis=-1)

        return gap

    km.compile(keras.optimizers.Adam(0.01), pseudo_huber(keras.ops), metrics=[metric(keras.ops)])
    dm.compile(dc.optimizers.Adam(0.01), pseudo_huber(ops), metrics=[metric(ops)])
    assert_fits_alike(km, dm, x, y)


def test_custom_losses_save_as_programs(rng, tmp_path):
    model = mlp()
    model.compile("adam", pseudo_huber(ops), metrics=[my_mae, "mse"])
    x, y = regression(rng)
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.dc")
    loaded = dc.models.load_model(tmp_path / "m.dc")  # no code runs: the programs load
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert loaded.metrics_names == ["loss", "my_mae", "mse"]
    a = loaded.fit(x, y, epochs=1, verbose=0, shuffle=False).history
    b = model.fit(x, y, epochs=1, verbose=0, shuffle=False).history
    assert a == b
    with pytest.raises(ValueError, match="loaded with its program for labels of shape \\(2,\\)"):
        loaded.evaluate(x, y[:, :1], verbose=0)


def test_custom_loss_errors_name_the_loss(rng):
    x, y = regression(rng)
    model = mlp()

    def batchwise(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=0)

    def constant(y_true, y_pred):
        return 1.0

    def branching(y_true, y_pred):
        return y_pred if ops.sum(y_pred) > 0 else y_true

    for loss, message in (
        (batchwise, "Loss 'batchwise': ops.mean: axis 0 is the batch axis"),
        (constant, "Loss 'constant': its function must return a tensor"),
        (branching, "Loss 'branching': its function cannot be traced at .*test_custom_losses"),
    ):
        with pytest.raises(ValueError, match=message):
            model.compile("sgd", loss)  # (traced once labels were seen, as Keras traces
            model.fit(x, y, verbose=0)  # at the first batch)
