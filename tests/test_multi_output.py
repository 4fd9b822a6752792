"""Models of several outputs: each output's loss, weight, labels, sample weights and metrics
against float64 NumPy and finite differences (an output also read by another layer gets the
sum of both gradients), logs named as Keras names them, lists and dicts wherever Keras takes
them, step for step against Keras where it is installed, saving, and the errors."""

import numpy as np
import pytest
from keras_reference import import_keras
from test_functional import assert_fits_alike, assert_gradients_match

import deepcore as dc
from deepcore import layers as L


def two_heads(lib=dc, as_dict=False):
    """x -> Dense(5, tanh) "trunk" -> "cls" Dense(3, softmax) and "reg" Dense(2)."""
    x = lib.Input(shape=(4,), name="x")
    h = lib.layers.Dense(5, activation="tanh", name="trunk")(x)
    cls = lib.layers.Dense(3, activation="softmax", name="cls")(h)
    reg = lib.layers.Dense(2, name="reg")(h)
    return lib.Model(x, {"c": cls, "r": reg} if as_dict else [cls, reg])


def data(rng, n=24):
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, rng.integers(0, 3, n), rng.normal(size=(n, 2)).astype(np.float32)


def np_heads(p, x):
    h = np.tanh(x @ p[0] + p[1])
    z = h @ p[2] + p[3]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return h, e / e.sum(axis=1, keepdims=True), h @ p[4] + p[5]


def set_random(model, rng):
    w = [rng.normal(0, 0.7, a.shape).astype(np.float32) for a in model.get_weights()]
    model.set_weights(w)
    return [a.astype(np.float64) for a in w]


def test_the_loss_is_the_weighted_sum_of_the_outputs_losses(rng):
    model = two_heads()
    p = set_random(model, rng)
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights=[0.7, 2.0])
    x, yc, yr = data(rng)
    sw = rng.uniform(0.5, 2.0, (2, len(x)))

    ones = np.ones(len(x))

    def np_losses(weights=(ones, ones)):
        _, prob, reg = np_heads(p, x)
        ce = -np.log(prob[np.arange(len(x)), yc]) * weights[0]
        se = ((reg - yr) ** 2).mean(axis=1) * weights[1]
        return ce.mean(), se.mean()

    assert_gradients_match(
        model, x, [yc, yr], lambda: 0.7 * np_losses()[0] + 2.0 * np_losses()[1], p
    )
    # sample weights per output (a list, or a dict by output name), or one array for both
    for given, per in (
        ([sw[0], sw[1]], sw),
        ({"cls": sw[0], "reg": sw[1]}, sw),
        (sw[0], (sw[0], sw[0])),
    ):
        loss, grads = model.gradients(x, [yc, yr], sample_weight=given)
        ce, se = np_losses(per)
        np.testing.assert_allclose(loss, 0.7 * ce + 2.0 * se, rtol=1e-5)
        logs = model.evaluate(x, [yc, yr], sample_weight=given, verbose=0, return_dict=True)
        assert list(logs) == ["loss", "cls_loss", "reg_loss"]
        np.testing.assert_allclose(
            [logs["loss"], logs["cls_loss"], logs["reg_loss"]],
            [0.7 * ce + 2.0 * se, ce, se],
            rtol=1e-5,
        )


def test_an_output_read_by_another_layer_sums_both_gradients(rng):
    # "trunk" is an output (mse) and the input of "cls" (categorical, from probabilities
    # that are not fused into the loss: cls is read by nothing else, trunk by two)
    x = dc.Input(shape=(4,))
    h = L.Dense(5, activation="tanh", name="trunk")(x)
    out = L.Dense(3, activation="softmax", name="cls")(h)
    model = dc.Model(x, [h, out])
    p = set_random(model, rng)
    model.compile("sgd", ["mse", "categorical_crossentropy"])
    xs = rng.normal(size=(10, 4)).astype(np.float32)
    yh = rng.normal(size=(10, 5)).astype(np.float32)
    yc = np.eye(3)[rng.integers(0, 3, 10)]

    def np_loss():
        h = np.tanh(xs @ p[0] + p[1])
        z = h @ p[2] + p[3]
        prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return ((h - yh) ** 2).mean() - (yc * np.log(prob)).sum(axis=1).mean()

    assert_gradients_match(model, xs, [yh, yc], np_loss, p)
    got_h, got_c = model.predict(xs, verbose=0)
    np.testing.assert_allclose(got_h, np.tanh(xs @ p[0] + p[1]), rtol=1e-5, atol=1e-6)
    assert got_c.shape == (10, 3)


def test_logs_metrics_and_targets_as_keras_names_them(rng):
    model = two_heads()
    p = set_random(model, rng)
    model.compile(
        "sgd",
        {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
        metrics={"cls": "accuracy", "reg": ["mae", "mse"]},
        weighted_metrics=[None, ["mae"]],
    )
    x, yc, yr = data(rng)
    w = rng.uniform(0.5, 2.0, len(x))
    _, prob, reg = np_heads(p, x)
    err = np.abs(reg - yr).mean(axis=1)
    names = ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae", "reg_mse"]
    names.append("reg_weighted_mae")
    assert model.metrics_names == names
    for y in ([yc, yr], (yc, yr), {"cls": yc, "reg": yr}):
        logs = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
        assert list(logs) == names
        np.testing.assert_allclose(logs["cls_accuracy"], np.mean(prob.argmax(1) == yc))
        np.testing.assert_allclose(logs["reg_mae"], err.mean(), rtol=1e-5)
        np.testing.assert_allclose(logs["reg_mse"], ((reg - yr) ** 2).mean(), rtol=1e-5)
        np.testing.assert_allclose(logs["reg_weighted_mae"], (err * w).sum() / w.sum(), rtol=1e-5)
    values = model.evaluate(x, [yc, yr], sample_weight=w, verbose=0)
    assert values == pytest.approx(list(logs.values()))
    history = model.fit(x, [yc, yr], epochs=2, verbose=0, validation_split=0.25).history
    assert list(history) == names + [f"val_{k}" for k in names]
    assert len(model.train_on_batch(x, [yc, yr])) == len(names)


def test_an_output_without_a_loss_is_not_trained(rng):
    model = two_heads()
    set_random(model, rng)
    model.compile("sgd", ["sparse_categorical_crossentropy", None], metrics=[[], ["mae"]])
    x, yc, yr = data(rng)
    _, grads = model.gradients(x, [yc, yr])
    assert not np.any(grads[4]) and not np.any(grads[5]) and np.any(grads[0])
    logs = model.evaluate(x, [yc, yr], verbose=0, return_dict=True)
    assert list(logs) == ["loss", "reg_mae"]  # one output trained: no per-output loss
    with pytest.raises(ValueError, match="no labels for output 'reg', which has a loss or"):
        model.fit(x, [yc, None], verbose=0)  # its metrics need them
    before = model.get_weights()
    model.fit(x, [yc, yr], epochs=1, verbose=0)
    model.compile("sgd", ["sparse_categorical_crossentropy", None])
    model.fit(x, [yc, None], epochs=1, verbose=0)  # nothing needs them
    after = model.get_weights()
    assert np.array_equal(after[4], before[4]) and not np.array_equal(after[0], before[0])


def test_one_loss_for_every_output_and_predictions_as_lists_or_dicts(rng):
    model = two_heads(as_dict=True)
    p = set_random(model, rng)
    model.compile("sgd", "mse")
    x, yc, yr = data(rng)
    onehot = np.eye(3)[yc]
    _, prob, reg = np_heads(p, x)
    logs = model.evaluate(x, {"c": onehot, "r": yr}, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["c_loss"], ((prob - onehot) ** 2).mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["r_loss"], ((reg - yr) ** 2).mean(), rtol=1e-5)
    got = model.predict(x, verbose=0, batch_size=7)
    assert list(got) == ["c", "r"]
    np.testing.assert_allclose(got["c"], prob, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["r"], reg, rtol=1e-5, atol=1e-5)
    assert model.output_shape == [(None, 3), (None, 2)]
    assert model.output_names == ["c", "r"]
    # a model of several outputs called inside another returns their tensors
    inp = dc.Input(shape=(4,))
    both = model(inp)
    outer = dc.Model(inp, L.Concatenate()([both["c"], both["r"]]))
    np.testing.assert_allclose(
        outer.predict(x, verbose=0), np.concatenate([prob, reg], 1), rtol=1e-5, atol=1e-5
    )


def test_a_subclassed_model_may_return_several_outputs(rng):
    class Net(dc.Model):
        def __init__(self):
            super().__init__()
            self.trunk = L.Dense(5, activation="tanh")
            self.cls = L.Dense(3, activation="softmax")
            self.reg = L.Dense(2)

        def call(self, x):
            h = self.trunk(x)
            return self.cls(h), self.reg(h)

    net = Net()
    net.compile("adam", ["sparse_categorical_crossentropy", "mse"], metrics=["accuracy", None])
    x, yc, yr = data(rng)
    history = net.fit(x, [yc, yr], epochs=2, verbose=0).history
    # Keras knows a subclassed model's outputs only by position: its logs name them so
    assert list(history) == ["loss", "sparse_categorical_crossentropy_loss", "mse_loss", "accuracy"]
    assert [a.shape for a in net.predict(x, verbose=0)] == [(24, 3), (24, 2)]


def test_several_outputs_train_as_keras(rng):
    keras = import_keras()
    km, dm = two_heads(keras), two_heads(dc)
    dm.set_weights(km.get_weights())
    x, yc, yr = data(rng, 48)
    for m, lib in ((km, keras), (dm, dc)):
        m.compile(
            lib.optimizers.Adam(0.01),
            ["sparse_categorical_crossentropy", "mae"],
            loss_weights=[1.0, 0.5],
            metrics=[["accuracy"], ["mse"]],
        )
    assert_fits_alike(km, dm, x, [yc, yr])
    for a, b in zip(dm.predict(x, verbose=0), km.predict(x, verbose=0), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_save_load_and_config_keep_the_outputs(rng, tmp_path):
    model = two_heads(as_dict=True)
    set_random(model, rng)
    model.compile(
        "adam",
        {"c": "sparse_categorical_crossentropy", "r": dc.losses.Huber(delta=0.5)},
        loss_weights={"c": 1.0, "r": 3.0},
        metrics={"c": ["accuracy"]},
        weighted_metrics={"r": "mae"},
    )
    x, yc, yr = data(rng)
    y = {"c": yc, "r": yr}
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.dc")
    loaded = dc.models.load_model(tmp_path / "m.dc")
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert loaded.metrics_names == model.metrics_names
    for a, b in zip(
        loaded.fit(x, y, verbose=0, shuffle=False).history.values(),
        model.fit(x, y, verbose=0, shuffle=False).history.values(),
    ):
        assert a == b
    got = loaded.predict(x, verbose=0)
    assert list(got) == ["c", "r"] and np.array_equal(got["r"], model.predict(x, verbose=0)["r"])
    clone = dc.Model.from_config(model.get_config())
    assert clone.output_names == ["c", "r"] and clone.output_shape == [(None, 3), (None, 2)]
    model.save_weights(tmp_path / "w.dc")
    clone.load_weights(tmp_path / "w.dc")
    assert np.array_equal(clone.predict(x, verbose=0)["c"], model.predict(x, verbose=0)["c"])


def test_wrong_structures_are_refused_by_name(rng):
    model = two_heads()
    x, yc, yr = data(rng)
    cases = [
        (dict(loss=["mse"]), "one entry per output of the model \\(2: \\['cls', 'reg'\\]\\)"),
        (dict(loss={"cls": "mse"}), "output names \\['cls', 'reg'\\] as keys \\(all of them\\)"),
        (dict(loss="mse", metrics=["mae"]), "one entry per output"),
        (dict(loss="mse", metrics={"bad": "mae"}), "Received keys: \\['bad'\\]"),
        (dict(loss="mse", loss_weights=0.5), "pass `loss_weights` as a list of 2"),
        (dict(loss="mse", loss_weights=[1, -1]), "finite number >= 0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model.compile("sgd", **kwargs)
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"])
    with pytest.raises(ValueError, match="has 2 outputs \\['cls', 'reg'\\]: pass `y` as a list"):
        model.fit(x, yc, verbose=0)
    with pytest.raises(ValueError, match="has 2 outputs .* Received: list of 1"):
        model.fit(x, [yc], verbose=0)
    with pytest.raises(ValueError, match="Received keys: \\['cls', 'zzz'\\]"):
        model.fit(x, {"cls": yc, "zzz": yr}, verbose=0)
    with pytest.raises(ValueError, match="expects y\\[1\\] of shape \\(24, 2\\)"):
        model.fit(x, [yc, yr[:, :1]], verbose=0)
    with pytest.raises(ValueError, match="integer labels in \\[0, 3\\)"):
        model.fit(x, [yc + 3, yr], verbose=0)
    with pytest.raises(ValueError, match="`class_weight` applies to a model of one output"):
        model.fit(x, [yc, yr], class_weight={0: 1.0, 1: 2.0, 2: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="sample_weight\\['reg'\\]` must have one value"):
        model.fit(x, [yc, yr], sample_weight=[np.ones(24), np.ones(5)], verbose=0)
    with pytest.raises(ValueError, match="needs class labels"):
        model.fit(x, [yc, yr], validation_split=0.2, validation_split_mode="stratify")
