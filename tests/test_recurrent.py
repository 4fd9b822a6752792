"""SimpleRNN, LSTM and GRU: forward and backward against float64 NumPy implementations of
Keras 3's equations (gradients by central differences of the float64 model: odd lengths,
batch 1, return_sequences both ways, go_backwards, stacked), errors, configs and saving,
the Orthogonal initializer, and (where Keras is installed) Keras' outputs with Keras'
weights and small models trained step for step against Keras."""

import os

import numpy as np
import pytest

import deepcore as dc
from deepcore import layers as L

ACTS = {
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0),
    "linear": lambda z: z,
    "hard_sigmoid": lambda z: np.clip((z + 3) / 6, 0, 1),
}


def grouped_product(a, masks, kernel):
    """sum over mask groups g of (a * masks[:, g]) @ kernel's g-th block of columns (a @
    kernel without masks)."""
    if masks is None:
        return a @ kernel
    m = masks.shape[1]
    blocks = np.split(kernel, m, axis=1)
    return np.concatenate([(a * masks[:, g]) @ blocks[g] for g in range(m)], axis=1)


def np_recurrent(
    kind,
    weights,
    x,
    return_sequences=False,
    go_backwards=False,
    act="tanh",
    rec="sigmoid",
    mask=None,
    zero_output=False,
    in_mask=None,
    rec_mask=None,
):
    """Keras 3's SimpleRNN / LSTM / GRU (reset_after) in float64: x (batch, steps, features);
    mask (batch, steps): a masked step keeps the states and outputs them (zeros with
    zero_output, Keras' zero_output_for_mask); in_mask (batch, Mi, features) and rec_mask
    (batch, Mr, units): dropout masks, the same at every step (grouped_product)."""
    w = [np.asarray(a, np.float64) for a in weights]
    kernel, rk = w[0], w[1]
    units = rk.shape[0]
    bias = w[2] if len(w) > 2 else np.zeros((2, 3 * units) if kind == "gru" else kernel.shape[1])
    f, g = ACTS[act], ACTS[rec]
    x = np.asarray(x, np.float64)
    m = np.ones(x.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    if go_backwards:
        x, m = x[:, ::-1], m[:, ::-1]
    h = np.zeros((len(x), units))
    c = np.zeros_like(h)
    out = []
    for t in range(x.shape[1]):
        h_prev, c_prev, keep = h, c, m[:, t : t + 1]
        xk, hk = grouped_product(x[:, t], in_mask, kernel), grouped_product(h, rec_mask, rk)
        if kind == "simple_rnn":
            h = f(xk + bias + hk)
        elif kind == "lstm":
            i, fg, cc, o = np.split(xk + hk + bias, 4, axis=1)
            c = g(fg) * c + g(i) * f(cc)
            h = g(o) * f(c)
        else:
            xz, xr, xh = np.split(xk + bias[0], 3, axis=1)
            rz, rr, rh = np.split(hk + bias[1], 3, axis=1)
            z, r = g(xz + rz), g(xr + rr)
            hh = f(xh + r * rh)
            h = z * h + (1 - z) * hh
        h, c = np.where(keep, h, h_prev), np.where(keep, c, c_prev)
        out.append(np.where(keep, h, 0.0) if zero_output else h)
    return np.stack(out, 1) if return_sequences else h


CLASSES = {"simple_rnn": L.SimpleRNN, "lstm": L.LSTM, "gru": L.GRU}
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


def random_weights(kind, features, units, rng, scale=0.5):
    g = GATES[kind] * units
    bias = (2, g) if kind == "gru" else (g,)
    return [rng.normal(0, scale, s).astype(np.float32) for s in ((features, g), (units, g), bias)]


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_forward_matches_numpy(kind, return_sequences, go_backwards, rng):
    T, F, U = 7, 3, 5
    layer = CLASSES[kind](U, return_sequences=return_sequences, go_backwards=go_backwards)
    model = dc.Sequential([dc.Input(shape=(T, F)), layer])
    w = random_weights(kind, F, U, rng)
    layer.set_weights(w)
    x = rng.normal(size=(4, T, F)).astype(np.float32)
    want = np_recurrent(kind, w, x, return_sequences, go_backwards)
    got = model.predict(x, verbose=0)
    assert got.shape == want.shape
    assert model.output_shape == (None, T, U) if return_sequences else (None, U)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)


def fd_gradients(loss, params, eps=1e-6):
    """Central differences of loss() (float64) with respect to every entry of params."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + eps
            up = loss()
            p[i] = keep - eps
            down = loss()
            p[i] = keep
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


GRAD_CASES = [
    # kind, batch, steps, return_sequences, go_backwards, act, rec
    ("lstm", 1, 5, False, False, "tanh", "sigmoid"),
    ("lstm", 3, 3, True, True, "tanh", "sigmoid"),
    ("lstm", 2, 1, False, False, "relu", "hard_sigmoid"),
    ("gru", 1, 5, True, False, "tanh", "sigmoid"),
    ("gru", 3, 3, False, True, "tanh", "sigmoid"),
    ("gru", 2, 4, True, False, "linear", "hard_sigmoid"),
    ("simple_rnn", 1, 5, False, True, "tanh", None),
    ("simple_rnn", 3, 3, True, False, "sigmoid", None),
    ("simple_rnn", 2, 1, True, True, "relu", None),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=str)
def test_gradients_match_numpy_finite_differences(case, rng):
    # A Dense on every step before the recurrent layer, so that its kernel's gradient
    # checks the recurrent layer's dx too.
    kind, B, T, rs, gb, act, rec = case
    F, U, D = 3, 4, 2
    kwargs = {"activation": act, "return_sequences": rs, "go_backwards": gb}
    if rec:
        kwargs["recurrent_activation"] = rec
    model = dc.Sequential([dc.Input(shape=(T, D)), L.Dense(F), CLASSES[kind](U, **kwargs)])
    model.compile("sgd", "mse")
    w = [rng.normal(0, 0.5, (D, F)).astype(np.float32), np.zeros(F, np.float32)]
    w += random_weights(kind, F, U, rng)
    model.set_weights(w)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    y = rng.normal(size=(B, T, U) if rs else (B, U)).astype(np.float32)
    loss, grads = model.gradients(x, y)
    params = [a.astype(np.float64) for a in w]

    def np_loss():
        hx = x @ params[0] + params[1]
        out = np_recurrent(kind, params[2:], hx, rs, gb, act, rec or "sigmoid")
        return np.mean((out - y) ** 2)

    np.testing.assert_allclose(loss, np_loss(), rtol=1e-5)
    for got, want in zip(grads, fd_gradients(np_loss, params)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)


def test_stacked_layers_and_dense(rng):
    T, F = 5, 3
    model = dc.Sequential(
        [
            dc.Input(shape=(T, F)),
            L.GRU(6, return_sequences=True),
            L.LSTM(4, return_sequences=True, go_backwards=True),
            L.SimpleRNN(5),
            L.Dense(2),
        ]
    )
    x = rng.normal(size=(3, T, F)).astype(np.float32)
    w = model.get_weights()
    h = np_recurrent("gru", w[0:3], x, True)
    h = np_recurrent("lstm", w[3:6], h, True, True)
    h = np_recurrent("simple_rnn", w[6:9], h)
    np.testing.assert_allclose(model.predict(x, verbose=0), h @ w[9] + w[10], rtol=1e-5, atol=1e-6)


def test_default_weights_follow_keras():
    model = dc.Sequential([dc.Input(shape=(4, 3)), L.LSTM(5)])
    k, rk, b = model.layers[0].get_weights()
    assert k.shape == (3, 20) and rk.shape == (5, 20) and b.shape == (20,)
    np.testing.assert_allclose(rk @ rk.T, np.eye(5), atol=1e-5)  # orthogonal rows
    np.testing.assert_array_equal(b, np.r_[np.zeros(5), np.ones(5), np.zeros(10)])
    gru = dc.Sequential([dc.Input(shape=(4, 3)), L.GRU(2, use_bias=False)])
    assert [a.shape for a in gru.get_weights()] == [(3, 6), (2, 6)]
    g = dc.Sequential([dc.Input(shape=(4, 3)), L.GRU(2)]).get_weights()
    assert g[2].shape == (2, 6) and not g[2].any()
    assert L.LSTM(3, unit_forget_bias=False).weight_settings()[2][0] is not None


@pytest.mark.parametrize("shape", [(7, 3), (3, 7), (4, 4), (2, 3, 4)])
def test_orthogonal_initializer(shape):
    w = dc.initializers.get("orthogonal")(shape).astype(np.float64)
    m = w.reshape(-1, shape[-1])
    small = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(small, np.eye(len(small)), atol=1e-5)
    init = dc.initializers.Orthogonal(gain=2.0, seed=3)
    np.testing.assert_array_equal(init((3, 3)), dc.initializers.Orthogonal(2.0, 3)((3, 3)))
    again = dc.initializers.deserialize(dc.initializers.serialize(init))
    assert again.get_config() == {"gain": 2.0, "seed": 3}


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.LSTM(0), "units"),
        (lambda: L.GRU(-3), "units"),
        (lambda: L.SimpleRNN(2.5), "units"),
        (lambda: L.LSTM(3, dropout=1.5), "dropout"),
        (lambda: L.LSTM(3, stateful=True), "stateful"),
        (lambda: L.GRU(3, return_state=True), "return_state"),
        (lambda: L.GRU(3, reset_after=False), "reset_after"),
        (lambda: L.LSTM(3, activation="softmax"), "activation"),
        (lambda: L.SimpleRNN(3, return_sequences="yes"), "return_sequences"),
        (lambda: L.LSTM(3, kernel_constraint="non_neg"), "kernel_constraint"),
    ],
)
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("cls", list(CLASSES.values()))
def test_two_dimensional_input_is_refused(cls):
    with pytest.raises(ValueError, match=r"\(batch, steps, features\)") as e:
        dc.Sequential([dc.Input(shape=(5,)), cls(3)])
    assert cls.__name__ in str(e.value) and "(None, 5)" in str(e.value)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: L.LSTM(3, return_sequences=True, kernel_regularizer="l2", name="l"),
        lambda: L.GRU(4, go_backwards=True, recurrent_activation="hard_sigmoid"),
        lambda: L.SimpleRNN(2, activation="relu", use_bias=False),
    ],
)
def test_configs_round_trip(layer):
    a = layer()
    b = type(a).from_config(a.get_config())
    assert b.get_config() == a.get_config()


def recurrent_model():
    return dc.Sequential(
        [
            dc.Input(shape=(7, 3)),
            L.GRU(6, return_sequences=True, recurrent_regularizer=dc.regularizers.L2(1e-3)),
            L.SimpleRNN(5, go_backwards=True),
            L.Dense(3, activation="softmax"),
        ]
    )


def check_save_load_and_clone(model, tmp_path, rng):
    """Trains a 3-class model on (20, 7, 3) inputs, then: a saved and loaded copy predicts
    and trains on as the model does, and a clone has its config."""
    model.compile("adam", "categorical_crossentropy")
    x = rng.normal(size=(20, 7, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 20)]
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.dc")
    loaded = dc.models.load_model(tmp_path / "m.dc")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    a = model.fit(x, y, epochs=1, batch_size=8, verbose=0).history
    b = loaded.fit(x, y, epochs=1, batch_size=8, verbose=0).history
    assert a == b
    assert dc.models.clone_model(model).get_config() == model.get_config()


def test_save_load_and_clone(tmp_path, rng):
    check_save_load_and_clone(recurrent_model(), tmp_path, rng)


def test_regularizers_add_to_the_loss(rng):
    layer = L.LSTM(3, kernel_regularizer=dc.regularizers.L2(0.1), recurrent_regularizer="l1")
    model = dc.Sequential([dc.Input(shape=(4, 2)), layer])
    model.compile("sgd", "mse")
    x = rng.normal(size=(5, 4, 2)).astype(np.float32)
    y = np.zeros((5, 3), np.float32)
    k, rk, b = layer.get_weights()
    want = np.mean(np_recurrent("lstm", [k, rk, b], x) ** 2)
    want += 0.1 * np.sum(k.astype(np.float64) ** 2) + 0.01 * np.abs(rk).sum()
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), want, rtol=1e-5)


# ----------------------------------------------------------------------------- with Keras
@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_keras_weights_give_keras_outputs(keras, kind, return_sequences, go_backwards, rng):
    T, F, U = 6, 3, 4
    kcls = {
        "simple_rnn": keras.layers.SimpleRNN,
        "lstm": keras.layers.LSTM,
        "gru": keras.layers.GRU,
    }[kind]
    args = {"return_sequences": return_sequences, "go_backwards": go_backwards}
    km = keras.Sequential([keras.Input((T, F)), kcls(U, **args)])
    km.set_weights([a + rng.normal(0, 0.3, a.shape).astype(np.float32) for a in km.get_weights()])
    model = dc.Sequential([dc.Input(shape=(T, F)), CLASSES[kind](U, **args)])
    model.set_weights(km.get_weights())
    x = rng.normal(size=(5, T, F)).astype(np.float32)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), np.asarray(km.predict(x, verbose=0)), rtol=1e-5, atol=1e-6
    )


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


@pytest.mark.parametrize("which", ["lstm-dense", "gru-rnn-dense"])
def test_models_train_as_keras(keras, which, rng):
    T, F = 7, 3
    x = rng.normal(size=(48, T, F)).astype(np.float32)
    if which == "lstm-dense":
        model = dc.Sequential([dc.Input(shape=(T, F)), L.LSTM(8), L.Dense(1)])
        k = keras.Sequential([keras.Input((T, F)), keras.layers.LSTM(8), keras.layers.Dense(1)])
        y = rng.normal(size=(48, 1)).astype(np.float32)
        loss = "mse"
    else:
        model = dc.Sequential(
            [dc.Input(shape=(T, F)), L.GRU(6, return_sequences=True), L.SimpleRNN(5), L.Dense(3)]
        )
        k = keras.Sequential(
            [
                keras.Input((T, F)),
                keras.layers.GRU(6, return_sequences=True),
                keras.layers.SimpleRNN(5),
                keras.layers.Dense(3),
            ]
        )
        y = rng.normal(size=(48, 3)).astype(np.float32)
        loss = "mse"
    k.set_weights(model.get_weights())
    model.compile(dc.optimizers.Adam(0.01), loss)
    k.compile(keras.optimizers.Adam(0.01), loss)
    for epoch in range(4):
        a = model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history["loss"]
        b = k.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history["loss"]
        assert rel(a, b) < 5e-4, (epoch, a, b)
        for got, want in zip(model.get_weights(), k.get_weights()):
            assert rel(got, want) < 5e-4, epoch
