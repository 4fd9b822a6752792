"""Keras' Metric subclasses (state in add_variable, update_state, result): computed in
Python on every batch's labels and predictions, the training step's in fit; checked against
NumPy on predict's outputs and step for step against Keras."""

import numpy as np
import pytest

import deepcore as dc


def f1_class(lib, ops):
    class F1(lib.metrics.Metric):
        def __init__(self, name="f1", **kwargs):
            super().__init__(name=name, **kwargs)
            self.tp = self.add_variable(shape=(), initializer="zeros", name="tp")
            self.fp = self.add_weight(name="fp", initializer="zeros")
            self.fn = self.add_variable(shape=(), initializer="zeros", name="fn")

        def update_state(self, y_true, y_pred, sample_weight=None):
            p = ops.cast(ops.greater(y_pred, 0.5), "float32")
            t = ops.cast(y_true, "float32")
            w = 1.0 if sample_weight is None else ops.reshape(sample_weight, (-1, 1))
            self.tp.assign_add(ops.sum(t * p * w))
            self.fp.assign_add(ops.sum((1 - t) * p * w))
            self.fn.assign_add(ops.sum(t * (1 - p) * w))

        def result(self):
            precision = self.tp / (self.tp + self.fp + 1e-7)
            recall = self.tp / (self.tp + self.fn + 1e-7)
            return 2 * precision * recall / (precision + recall + 1e-7)

    return F1


def np_f1(y, p, w=None):
    w = np.ones(len(y)) if w is None else w
    p, y = (p[:, 0] > 0.5).astype(np.float64), y[:, 0].astype(np.float64)
    tp, fp, fn = (w * y * p).sum(), (w * (1 - y) * p).sum(), (w * y * (1 - p)).sum()
    precision, recall = tp / (tp + fp + 1e-7), tp / (tp + fn + 1e-7)
    return 2 * precision * recall / (precision + recall + 1e-7)


def data(rng, n=64):
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.float32).reshape(-1, 1)
    return x, y


def model(lib):
    return lib.Sequential(
        [
            lib.Input(shape=(5,)),
            lib.layers.Dense(8, activation="tanh"),
            lib.layers.Dense(1, activation="sigmoid"),
        ]
    )


def test_evaluate_and_weighted_metrics_against_numpy(rng):
    x, y = data(rng)
    w = rng.uniform(0.2, 2.0, len(x)).astype(np.float32)
    F1 = f1_class(dc, dc.ops)
    m = model(dc)
    m.compile("adam", "binary_crossentropy", metrics=[F1()], weighted_metrics=[F1(name="wf1")])
    got = m.evaluate(x, y, sample_weight=w, batch_size=10, return_dict=True)
    p = m.predict(x, verbose=0)
    assert got["f1"] == pytest.approx(np_f1(y, p), rel=1e-6)
    assert got["wf1"] == pytest.approx(np_f1(y, p, w), rel=1e-6)
    again = m.evaluate(x[:20], y[:20], return_dict=True)  # (the state starts afresh)
    assert again["f1"] == pytest.approx(np_f1(y[:20], p[:20]), rel=1e-6)
    assert m.metrics_names == ["loss", "f1", "wf1"]
    one = m.train_on_batch(x[:16], y[:16], return_dict=True)
    assert set(one) == {"loss", "f1", "wf1"}


def test_fit_logs_per_epoch_and_sources(rng):
    x, y = data(rng)
    F1 = f1_class(dc, dc.ops)
    seen = []
    cb = dc.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(logs["f1"]))
    dc.utils.set_random_seed(3)
    a = model(dc)
    a.compile(dc.optimizers.Adam(0.01), "binary_crossentropy", metrics=[F1()])
    h = a.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[cb]).history
    assert len(seen) == 16 and seen[7] == pytest.approx(h["f1"][0]) and seen[15] == h["f1"][1]
    dc.utils.set_random_seed(3)
    b = model(dc)
    b.compile(dc.optimizers.Adam(0.01), "binary_crossentropy", metrics=[F1()])
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)]
    # (the same fit without batch hooks: the same shuffled order, the same logs)
    hb = b.fit(x, y, batch_size=8, epochs=2, verbose=0).history
    assert hb == h
    c = model(dc)
    c.compile("adam", "binary_crossentropy", metrics=[F1()])
    hc = c.fit(iter(batches * 2), steps_per_epoch=8, epochs=2, verbose=0).history
    assert len(hc["f1"]) == 2 and 0 <= hc["f1"][1] <= 1


def test_step_for_step_as_keras(rng):
    from keras_reference import import_keras
    from test_functional import assert_fits_alike

    keras = import_keras()
    x, y = data(rng)
    km, dm = model(keras), model(dc)
    dm.set_weights(km.get_weights())
    km.compile(
        keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=[f1_class(keras, keras.ops)()]
    )
    dm.compile(dc.optimizers.Adam(0.01), "binary_crossentropy", metrics=[f1_class(dc, dc.ops)()])
    assert_fits_alike(km, dm, x, y)
    got = dm.evaluate(x, y, verbose=0, return_dict=True)
    want = km.evaluate(x, y, verbose=0, return_dict=True)
    assert got["f1"] == pytest.approx(want["f1"], rel=1e-5)


def test_bad_metric_subclasses_name_themselves(rng):
    x, y = data(rng)

    class NoResult(dc.metrics.Metric):
        def update_state(self, y_true, y_pred, sample_weight=None):
            pass

    m = model(dc)
    m.compile("adam", "binary_crossentropy", metrics=[NoResult()])
    with pytest.raises(NotImplementedError, match="NoResult must define result"):
        m.fit(x, y, verbose=0)
    assert NoResult().name == "no_result"


@pytest.mark.parametrize("suffix", [".deepcore", ".keras"])
def test_saved_with_the_class_given_at_load(suffix, rng, tmp_path):
    pytest.importorskip("h5py")
    x, y = data(rng)
    F1 = f1_class(dc, dc.ops)
    m = model(dc)
    m.compile("adam", "binary_crossentropy", metrics=[F1()])
    m.fit(x, y, verbose=0)
    m.save(tmp_path / f"m{suffix}")
    with pytest.raises(ValueError, match="custom_objects"):
        dc.models.load_model(tmp_path / f"m{suffix}")
    loaded = dc.models.load_model(tmp_path / f"m{suffix}", custom_objects={"F1": F1})
    assert loaded.evaluate(x, y, return_dict=True) == m.evaluate(x, y, return_dict=True)
