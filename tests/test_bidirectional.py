"""Bidirectional: forward and backward against a float64 NumPy model built from
tests/test_recurrent.py's reference cells (gradients by central differences: odd lengths,
batch 1, every merge mode, return_sequences both ways, stacked), Keras' weight order,
errors, configs and saving, the merge op on the CPU backend, and (where Keras is installed)
Keras' outputs with Keras' weights and a Bidirectional(LSTM) model trained step for step
against Keras."""

import os

import numpy as np
import pytest
from test_recurrent import (
    CLASSES,
    check_save_load_and_clone,
    fd_gradients,
    np_recurrent,
    random_weights,
    rel,
)

import deepcore as dc
from deepcore import _core
from deepcore import layers as L

MERGES = ["concat", "sum", "mul", "ave"]


def np_merge(mode, a, b):
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    return {"sum": a + b, "mul": a * b, "ave": (a + b) / 2}[mode]


def np_bidirectional(kind, weights, x, mode="concat", return_sequences=False, **acts):
    """Keras 3's Bidirectional in float64: the forward layer's weights, then the backward's."""
    n = len(weights) // 2
    a = np_recurrent(kind, weights[:n], x, return_sequences, False, **acts)
    b = np_recurrent(kind, weights[n:], x, return_sequences, True, **acts)
    if return_sequences:
        b = b[:, ::-1]
    return np_merge(mode, a, b)


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("mode", MERGES)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_forward_matches_numpy(kind, mode, return_sequences, rng):
    T, F, U = 7, 3, 5
    layer = L.Bidirectional(CLASSES[kind](U, return_sequences=return_sequences), mode)
    model = dc.Sequential([dc.Input(shape=(T, F)), layer])
    w = random_weights(kind, F, U, rng) + random_weights(kind, F, U, rng)
    layer.set_weights(w)
    x = rng.normal(size=(4, T, F)).astype(np.float32)
    want = np_bidirectional(kind, w, x, mode, return_sequences)
    got = model.predict(x, verbose=0)
    width = 2 * U if mode == "concat" else U
    assert model.output_shape == ((None, T, width) if return_sequences else (None, width))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)


GRAD_CASES = [
    # kind, batch, steps, return_sequences, merge_mode
    ("lstm", 1, 5, False, "concat"),
    ("lstm", 3, 3, True, "mul"),
    ("gru", 1, 5, True, "concat"),
    ("gru", 2, 3, False, "ave"),
    ("simple_rnn", 1, 5, True, "sum"),
    ("simple_rnn", 3, 1, False, "mul"),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=str)
def test_gradients_match_numpy_finite_differences(case, rng):
    # A Dense on every step first, so that its kernel's gradient checks both directions' dx.
    kind, B, T, rs, mode = case
    F, U, D = 3, 4, 2
    layer = L.Bidirectional(CLASSES[kind](U, return_sequences=rs), merge_mode=mode)
    model = dc.Sequential([dc.Input(shape=(T, D)), L.Dense(F), layer])
    model.compile("sgd", "mse")
    w = [rng.normal(0, 0.5, (D, F)).astype(np.float32), np.zeros(F, np.float32)]
    w += random_weights(kind, F, U, rng) + random_weights(kind, F, U, rng)
    model.set_weights(w)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    width = 2 * U if mode == "concat" else U
    y = rng.normal(size=(B, T, width) if rs else (B, width)).astype(np.float32)
    loss, grads = model.gradients(x, y)
    params = [a.astype(np.float64) for a in w]

    def np_loss():
        hx = x @ params[0] + params[1]
        return np.mean((np_bidirectional(kind, params[2:], hx, mode, rs) - y) ** 2)

    np.testing.assert_allclose(loss, np_loss(), rtol=1e-5)
    for got, want in zip(grads, fd_gradients(np_loss, params)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)


def test_stacked_and_other_backward_layer(rng):
    T, F = 5, 3
    back = L.GRU(2, go_backwards=True, return_sequences=True, activation="relu")
    model = dc.Sequential(
        [
            dc.Input(shape=(T, F)),
            L.Bidirectional(L.GRU(3, return_sequences=True), backward_layer=back),
            L.Bidirectional(L.SimpleRNN(4), merge_mode="ave"),
            L.Dense(2),
        ]
    )
    x = rng.normal(size=(3, T, F)).astype(np.float32)
    w = model.get_weights()
    assert [a.shape for a in w[:6]] == [(3, 9), (3, 9), (2, 9), (3, 6), (2, 6), (2, 6)]
    a = np_recurrent("gru", w[0:3], x, True)
    b = np_recurrent("gru", w[3:6], x, True, True, act="relu")[:, ::-1]
    h = np.concatenate([a, b], -1)
    h = np_bidirectional("simple_rnn", w[6:12], h, "ave")
    np.testing.assert_allclose(model.predict(x, verbose=0), h @ w[12] + w[13], rtol=1e-5, atol=1e-6)


def test_copies_and_weights_follow_keras(rng):
    inner = L.LSTM(3, name="enc", kernel_regularizer="l2")
    bi = L.Bidirectional(inner)
    assert bi.name.startswith("bidirectional")
    assert bi.forward_layer.name == "forward_enc" and bi.backward_layer.name == "backward_enc"
    assert bi.forward_layer is not inner and not bi.forward_layer.go_backwards
    assert bi.backward_layer.go_backwards and bi.backward_layer.units == 3
    model = dc.Sequential([dc.Input(shape=(4, 2)), bi])
    w = bi.get_weights()
    assert [a.shape for a in w] == [(2, 12), (3, 12), (12,)] * 2
    assert not np.array_equal(w[0], w[3])  # own weights
    np.testing.assert_array_equal(w[2], np.r_[np.zeros(3), np.ones(3), np.zeros(6)])
    np.testing.assert_array_equal(bi.forward_layer.kernel, w[0])
    np.testing.assert_array_equal(bi.backward_layer.recurrent_kernel, w[4])
    assert model.count_params() == 2 * (24 + 36 + 12)
    new = [rng.normal(size=a.shape).astype(np.float32) for a in w]
    made = L.Bidirectional(L.LSTM(3), weights=new)
    dc.Sequential([dc.Input(shape=(4, 2)), made])
    for got, want in zip(made.get_weights(), new):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.Bidirectional(L.Dense(3)), "layer"),
        (lambda: L.Bidirectional(L.LSTM(3), merge_mode="max"), "merge_mode='max'"),
        (lambda: L.Bidirectional(L.LSTM(3), merge_mode=None), "merge_mode=None"),
        (lambda: L.Bidirectional(L.LSTM(3), backward_layer=L.Dense(2)), "backward_layer"),
        (lambda: L.Bidirectional(L.LSTM(3, go_backwards=True)), "go_backwards"),
        (
            lambda: L.Bidirectional(L.LSTM(3), backward_layer=L.LSTM(3)),
            "go_backwards",
        ),
        (
            lambda: L.Bidirectional(
                L.LSTM(3), backward_layer=L.LSTM(3, go_backwards=True, return_sequences=True)
            ),
            "return_sequences",
        ),
        (
            lambda: L.Bidirectional(
                L.LSTM(3), merge_mode="sum", backward_layer=L.LSTM(2, go_backwards=True)
            ),
            "units",
        ),
    ],
)
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match) as e:
        make()
    assert "Bidirectional" in str(e.value)


def test_two_dimensional_input_is_refused():
    with pytest.raises(ValueError, match=r"\(batch, steps, features\)") as e:
        dc.Sequential([dc.Input(shape=(5,)), L.Bidirectional(L.GRU(3), name="bi")])
    assert "'bi'" in str(e.value) and "(None, 5)" in str(e.value)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: L.Bidirectional(L.LSTM(3, return_sequences=True, kernel_regularizer="l2")),
        lambda: L.Bidirectional(L.GRU(4), merge_mode="mul", name="b"),
        lambda: L.Bidirectional(
            L.SimpleRNN(2), backward_layer=L.SimpleRNN(5, go_backwards=True, use_bias=False)
        ),
    ],
)
def test_configs_round_trip(layer):
    a = layer()
    b = type(a).from_config(a.get_config())
    assert b.get_config() == a.get_config()
    assert a.get_config()["layer"]["class_name"] == type(a.forward_layer).__name__


def test_save_load_and_clone(tmp_path, rng):
    model = dc.Sequential(
        [
            dc.Input(shape=(7, 3)),
            L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="sum"),
            L.Bidirectional(L.LSTM(3)),
            L.Dense(3, activation="softmax"),
        ]
    )
    check_save_load_and_clone(model, tmp_path, rng)


def test_eager_call(rng):
    layer = L.Bidirectional(L.SimpleRNN(3))
    x = rng.normal(size=(2, 5, 4)).astype(np.float32)
    got = layer(x)
    want = np_bidirectional("simple_rnn", layer.get_weights(), x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------- the merge op
@pytest.mark.parametrize("mode", MERGES)
@pytest.mark.parametrize("shape", [(1, 1, 3, 3), (3, 5, 4, 4), (2, 7, 2, 5)], ids=str)
@pytest.mark.parametrize("device", [0, 2], ids=["cpu", "guarded"])
def test_merge_op_matches_numpy(mode, shape, device, rng):
    rows, steps, ua, ub = shape
    if mode != "concat":
        ub = ua
    a = rng.normal(size=(rows, steps, ua)).astype(np.float32)
    b = rng.normal(size=(rows, steps, ub)).astype(np.float32)
    width = ua + ub if mode == "concat" else ua
    dy = rng.normal(size=(rows, steps, width)).astype(np.float32)
    y, da, db = _core.device_bidir_merge(device, getattr(_core.Merge, mode), a, b, dy)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)[:, ::-1]
    np.testing.assert_allclose(y, np_merge(mode, a64, b64), rtol=1e-6)
    if mode == "concat":
        wa, wb = dy[..., :ua], dy[..., ua:]
    else:
        scale = 0.5 if mode == "ave" else 1.0
        wa = dy * (b64 if mode == "mul" else scale)
        wb = dy * (a64 if mode == "mul" else scale)
    np.testing.assert_allclose(da, wa, rtol=1e-6)
    np.testing.assert_allclose(db, np.asarray(wb)[:, ::-1], rtol=1e-6)


# ----------------------------------------------------------------------------- with Keras
@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("mode", MERGES)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_keras_weights_give_keras_outputs(keras, kind, mode, return_sequences, rng):
    T, F, U = 6, 3, 4
    kcls = {
        "simple_rnn": keras.layers.SimpleRNN,
        "lstm": keras.layers.LSTM,
        "gru": keras.layers.GRU,
    }[kind]
    inner = kcls(U, return_sequences=return_sequences)
    km = keras.Sequential([keras.Input((T, F)), keras.layers.Bidirectional(inner, mode)])
    km.set_weights([a + rng.normal(0, 0.3, a.shape).astype(np.float32) for a in km.get_weights()])
    layer = L.Bidirectional(CLASSES[kind](U, return_sequences=return_sequences), mode)
    model = dc.Sequential([dc.Input(shape=(T, F)), layer])
    model.set_weights(km.get_weights())
    x = rng.normal(size=(5, T, F)).astype(np.float32)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), np.asarray(km.predict(x, verbose=0)), rtol=1e-5, atol=1e-6
    )


def test_bidirectional_lstm_trains_as_keras(keras, rng):
    T, F = 7, 3
    x = rng.normal(size=(48, T, F)).astype(np.float32)
    y = rng.normal(size=(48, 2)).astype(np.float32)
    model = dc.Sequential(
        [
            dc.Input(shape=(T, F)),
            L.Bidirectional(L.LSTM(5, return_sequences=True)),
            L.Bidirectional(L.LSTM(4), merge_mode="ave"),
            L.Dense(2),
        ]
    )
    k = keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True)),
            keras.layers.Bidirectional(keras.layers.LSTM(4), merge_mode="ave"),
            keras.layers.Dense(2),
        ]
    )
    k.set_weights(model.get_weights())
    model.compile(dc.optimizers.Adam(0.01), "mse")
    k.compile(keras.optimizers.Adam(0.01), "mse")
    for epoch in range(4):
        a = model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history["loss"]
        b = k.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history["loss"]
        assert rel(a, b) < 5e-4, (epoch, a, b)
        for got, want in zip(model.get_weights(), k.get_weights()):
            assert rel(got, want) < 5e-4, epoch
