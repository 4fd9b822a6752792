"""SimpleRNN, LSTM, GRU and Bidirectional with `dropout` and `recurrent_dropout` (Keras 3's
semantics: in training only, one mask per sample over the input features and one over the
state, the same at every step, inverted dropout; one input mask for all gates without
recurrent dropout, a mask per gate for both with it).

The masks are rebuilt from the engine's documented stream (a seeded layer's step seed is
random_bits(seed, iteration); its input masks are the dropout op's values [skip, skip + n_in)
at `dropout`, its state masks the next n_rec values at `recurrent_dropout`, with skip the
values Bidirectional's forward layer uses) with the NumPy copy of the stream that
tests/test_backend_update.py checks bit for bit; a float64 NumPy model given those masks
then checks the loss, and its central differences the gradients. Also: rate 0 gives the
bits of no dropout, inference is unaffected, the fraction dropped is near the rate, bad
values are refused, configs and saving keep the arguments, and (with Keras) training
curves of the same rates are alike.
"""

import numpy as np
import pytest
from test_backend_update import dropout_reference, splitmix64
from test_recurrent import CLASSES, GATES, fd_gradients, np_recurrent, random_weights

import deepcore as dc
from deepcore import layers as L


def random_bits(seed, i):
    """deepcore/rng.h's random_bits(seed, i) for Python ints."""
    s = splitmix64(np.array([seed], np.uint64))
    with np.errstate(over="ignore"):
        mixed = s ^ (np.uint64(i) * np.uint64(0xD1B54A32D192ED03))
    return int(splitmix64(mixed)[0])


def mask_counts(kind, dropout, recurrent_dropout):
    """(input masks, state masks) of a layer: 0, 1 or one per gate (Keras' rule)."""
    g = GATES[kind]
    n_in = (g if recurrent_dropout > 0 else 1) if dropout > 0 else 0
    return n_in, (g if recurrent_dropout > 0 else 0)


def layer_masks(kind, rows, features, units, dropout, recurrent_dropout, seed, skip=0):
    """The masks a layer draws with the step seed `seed`: input (rows, Mi, features) and
    state (rows, Mr, units), or None; and the stream values per row it uses."""
    mi, mr = mask_counts(kind, dropout, recurrent_dropout)
    off, n_in, n_rec = rows * skip, rows * mi * features, rows * mr * units
    xin = xrec = None
    if mi:
        _, m = dropout_reference(dropout, seed, np.zeros(off + n_in, np.float32))
        xin = m[off:].reshape(rows, mi, features)
    if mr:
        _, m = dropout_reference(recurrent_dropout, seed, np.zeros(off + n_in + n_rec, np.float32))
        xrec = m[off + n_in :].reshape(rows, mr, units)
    return xin, xrec, mi * features + mr * units


# kind, batch, steps, return_sequences, go_backwards, dropout, recurrent_dropout
CASES = [
    ("lstm", 1, 5, False, False, 0.4, 0.0),
    ("lstm", 3, 3, True, True, 0.0, 0.3),
    ("lstm", 4, 5, False, False, 0.3, 0.5),
    ("gru", 1, 5, True, False, 0.5, 0.0),
    ("gru", 3, 3, False, True, 0.0, 0.4),
    ("gru", 4, 4, True, False, 0.25, 0.5),
    ("simple_rnn", 1, 5, False, True, 0.5, 0.0),
    ("simple_rnn", 3, 3, True, False, 0.0, 0.5),
    ("simple_rnn", 4, 5, False, False, 0.3, 0.3),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_training_matches_numpy_with_the_same_masks(case, rng):
    # A Dense on every step before the recurrent layer, so that its kernel's gradient
    # checks the recurrent layer's dx (through the input masks) too.
    kind, B, T, rs, gb, d, rd = case
    F, U, D, seed = 3, 4, 2, 1234
    layer = CLASSES[kind](
        U, return_sequences=rs, go_backwards=gb, dropout=d, recurrent_dropout=rd, seed=seed
    )
    model = dc.Sequential([dc.Input(shape=(T, D)), L.Dense(F), layer])
    model.compile("sgd", "mse")
    w = [rng.normal(0, 0.5, (D, F)).astype(np.float32), rng.normal(0, 0.1, F).astype(np.float32)]
    w += random_weights(kind, F, U, rng)
    model.set_weights(w)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    y = rng.normal(size=(B, T, U) if rs else (B, U)).astype(np.float32)
    loss, grads = model.gradients(x, y)
    # the step seed of a seeded layer at iteration 0
    in_mask, rec_mask, _ = layer_masks(kind, B, F, U, d, rd, random_bits(seed, 0))
    if d:
        assert (in_mask == 0).any() or B * F < 4
    params = [a.astype(np.float64) for a in w]

    def np_loss():
        hx = x @ params[0] + params[1]
        out = np_recurrent(kind, params[2:], hx, rs, gb, in_mask=in_mask, rec_mask=rec_mask)
        return np.mean((out - y) ** 2)

    np.testing.assert_allclose(loss, np_loss(), rtol=1e-5)
    for got, want in zip(grads, fd_gradients(np_loss, params)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
    # the masks matter: without them the loss differs
    plain = np.mean((np_recurrent(kind, params[2:], x @ w[0] + w[1], rs, gb) - y) ** 2)
    assert abs(plain - loss) > 1e-6


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_bidirectional_matches_numpy_with_the_masks_of_each_direction(kind, merge_mode, rng):
    B, T, F, U, seed = 3, 4, 3, 4, 99
    inner = CLASSES[kind](U, dropout=0.3, recurrent_dropout=0.4, seed=seed, return_sequences=True)
    model = dc.Sequential([dc.Input(shape=(T, F)), L.Bidirectional(inner, merge_mode=merge_mode)])
    model.compile("sgd", "mse")
    w = random_weights(kind, F, U, rng) + random_weights(kind, F, U, rng)
    model.set_weights(w)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    y = rng.normal(size=(B, T, 2 * U if merge_mode == "concat" else U)).astype(np.float32)
    loss, grads = model.gradients(x, y)
    s = random_bits(seed, 0)
    fi, fr, width = layer_masks(kind, B, F, U, 0.3, 0.4, s)
    bi, br, _ = layer_masks(kind, B, F, U, 0.3, 0.4, s, skip=width)
    assert not np.array_equal(fi, bi) and not np.array_equal(fr, br)
    params = [a.astype(np.float64) for a in w]

    def np_loss():
        a = np_recurrent(kind, params[:3], x, True, in_mask=fi, rec_mask=fr)
        b = np_recurrent(kind, params[3:], x, True, True, in_mask=bi, rec_mask=br)[:, ::-1]
        out = np.concatenate([a, b], -1) if merge_mode == "concat" else a + b
        return np.mean((out - y) ** 2)

    np.testing.assert_allclose(loss, np_loss(), rtol=1e-5)
    for got, want in zip(grads, fd_gradients(np_loss, params)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)


def identity_rnn(T, F, **kwargs):
    """A linear SimpleRNN of F units with identity kernels and no bias: h_t = x_t * mask +
    h_{t-1} * state mask."""
    layer = L.SimpleRNN(F, activation="linear", use_bias=False, **kwargs)
    model = dc.Sequential([dc.Input(shape=(T, F)), layer])
    model.compile("sgd", "mse")
    layer.set_weights([np.eye(F, dtype=np.float32), np.eye(F, dtype=np.float32)])
    return model


def test_the_input_mask_is_the_same_at_every_step(rng):
    B, T, F, seed = 5, 6, 7, 3
    model = identity_rnn(T, F, dropout=0.5, return_sequences=True, seed=seed)
    model.layers[0].set_weights([np.eye(F, dtype=np.float32), np.zeros((F, F), np.float32)])
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    mask = layer_masks("simple_rnn", B, F, F, 0.5, 0, random_bits(seed, 0))[0][:, 0]
    # the outputs are x_t * mask: a target equal to them (the one mask at every step)
    # gives a zero loss, a target with another mask at one step does not
    loss, _ = model.gradients(x, x * mask[:, None, :])
    assert loss == 0.0
    other = x * mask[:, None, :]
    other[:, 3] = x[:, 3] * mask[::-1]
    assert model.gradients(x, other)[0] > 0


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_the_fraction_dropped_is_near_the_rate(rate):
    # Input: x = 1 and identity kernels make the outputs the mask m; the mse against 0
    # is then mean(m^2) = kept / keep^2. State: x = (1, 0) over two steps makes the last
    # output the state mask.
    B, F = 2000, 8
    keep = 1 - rate
    sd = 4 * np.sqrt(rate * keep / (B * F))  # 4 standard deviations
    m = identity_rnn(1, F, dropout=rate)
    loss, _ = m.gradients(np.ones((B, 1, F), np.float32), np.zeros((B, F), np.float32))
    assert abs(loss * np.float32(keep) ** 2 - keep) < sd
    m = identity_rnn(2, F, recurrent_dropout=rate)
    x = np.zeros((B, 2, F), np.float32)
    x[:, 0] = 1
    loss, _ = m.gradients(x, np.zeros((B, F), np.float32))
    assert abs(loss * np.float32(keep) ** 2 - keep) < sd
    # and the mask of the reconstructed stream likewise
    mi, mr, _ = layer_masks("lstm", B, F, F, rate, rate, random_bits(1, 0))
    for mk in (mi, mr):
        assert abs((mk == 0).mean() - rate) < sd


@pytest.mark.parametrize("kind", list(CLASSES))
def test_rate_zero_gives_the_bits_of_no_dropout(kind, rng):
    T, F, U = 5, 3, 4

    def make(**kwargs):
        dc.utils.set_random_seed(5)
        m = dc.Sequential([dc.Input(shape=(T, F)), CLASSES[kind](U, **kwargs), L.Dense(2)])
        m.compile("adam", "mse")
        return m

    x = rng.normal(size=(16, T, F)).astype(np.float32)
    y = rng.normal(size=(16, 2)).astype(np.float32)
    a, b = make(), make(dropout=0.0, recurrent_dropout=0.0, seed=4)
    b.set_weights(a.get_weights())
    la, ga = a.gradients(x, y)
    lb, gb = b.gradients(x, y)
    assert la == lb
    for u, v in zip(ga, gb):
        np.testing.assert_array_equal(u, v)
    ha = a.fit(x, y, batch_size=4, epochs=2, verbose=0).history["loss"]
    hb = b.fit(x, y, batch_size=4, epochs=2, verbose=0).history["loss"]
    assert ha == hb
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_inference_uses_no_masks(kind, rng):
    T, F, U = 5, 3, 4
    plain = dc.Sequential([dc.Input(shape=(T, F)), CLASSES[kind](U)])
    drop = dc.Sequential(
        [dc.Input(shape=(T, F)), CLASSES[kind](U, dropout=0.5, recurrent_dropout=0.5)]
    )
    for m in (plain, drop):
        m.compile("sgd", "mse")
    drop.set_weights(plain.get_weights())
    x = rng.normal(size=(6, T, F)).astype(np.float32)
    y = rng.normal(size=(6, U)).astype(np.float32)
    np.testing.assert_array_equal(drop.predict(x, verbose=0), plain.predict(x, verbose=0))
    assert drop.evaluate(x, y, verbose=0) == plain.evaluate(x, y, verbose=0)
    assert drop.gradients(x, y)[0] != plain.gradients(x, y)[0]  # training masks


def test_masks_follow_the_seed_or_the_models_stream(rng):
    T, F = 4, 3
    x = rng.normal(size=(8, T, F)).astype(np.float32)
    y = rng.normal(size=(8, 5)).astype(np.float32)

    weights = None

    def model(seed):
        m = dc.Sequential([dc.Input(shape=(T, F)), L.GRU(5, dropout=0.5, seed=seed)])
        m.compile("sgd", "mse")
        if weights is not None:
            m.set_weights(weights)
        return m

    weights = model(None).get_weights()
    seeded = model(7)
    assert seeded.gradients(x, y)[0] == seeded.gradients(x, y)[0]  # same step, same masks
    assert model(7).gradients(x, y)[0] == seeded.gradients(x, y)[0]
    assert model(8).gradients(x, y)[0] != seeded.gradients(x, y)[0]
    unseeded = model(None)
    assert unseeded.gradients(x, y)[0] != unseeded.gradients(x, y)[0]  # the stream moves on


def test_training_with_dropout_learns(rng):
    # a learnable task: the sum of the first feature over the steps
    x = rng.normal(size=(256, 6, 3)).astype(np.float32)
    y = x[:, :, :1].sum(1)
    dc.utils.set_random_seed(1)
    m = dc.Sequential(
        [
            dc.Input(shape=(6, 3)),
            L.Bidirectional(L.LSTM(8, dropout=0.1, recurrent_dropout=0.1)),
            L.Dense(1),
        ]
    )
    m.compile(dc.optimizers.Adam(0.01), "mse")
    h = m.fit(x, y, batch_size=32, epochs=15, verbose=0).history["loss"]
    assert np.all(np.isfinite(h)) and h[-1] < 0.5 * h[0]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.LSTM(3, dropout=1.0), "dropout"),
        (lambda: L.GRU(3, dropout=-0.1), "dropout"),
        (lambda: L.SimpleRNN(3, recurrent_dropout=1.5), "recurrent_dropout"),
        (lambda: L.LSTM(3, recurrent_dropout="0.2"), "recurrent_dropout"),
        (lambda: L.GRU(3, dropout=float("nan")), "dropout"),
        (lambda: L.LSTM(3, dropout=True), "dropout"),
        (lambda: L.LSTM(3, seed=-1), "seed"),
        (lambda: L.GRU(3, seed=1.5), "seed"),
    ],
)
def test_bad_values_are_refused(make, match):
    with pytest.raises(ValueError, match=match) as e:
        make()
    assert "LSTM" in str(e.value) or "GRU" in str(e.value) or "SimpleRNN" in str(e.value)


def test_the_engine_refuses_bad_rates():
    from deepcore import _core

    m = _core.Model()
    a = _core.Act.tanh
    with pytest.raises(ValueError, match="LSTM: dropout must be in"):
        m.add_recurrent(_core.Cell.lstm, 3, a, a, True, False, False, 1.0, 0.0, None)
    with pytest.raises(ValueError, match="Bidirectional: recurrent_dropout must be in"):
        m.add_bidirectional(
            _core.Merge.concat, False, _core.Cell.gru, 3, a, a, True, False,
            _core.Cell.gru, 3, a, a, True, True, 0.0, -0.5,
        )  # fmt: skip


@pytest.mark.parametrize("kind", list(CLASSES))
def test_config_and_saving_keep_the_rates(kind, tmp_path, rng):
    layer = CLASSES[kind](4, dropout=0.25, recurrent_dropout=0.5, seed=3, name="r")
    config = layer.get_config()
    assert (config["dropout"], config["recurrent_dropout"], config["seed"]) == (0.25, 0.5, 3)
    again = CLASSES[kind].from_config(config)
    assert again.get_config() == config
    m = dc.Sequential(
        [
            dc.Input(shape=(5, 3)),
            L.Bidirectional(
                CLASSES[kind](4, dropout=0.2, recurrent_dropout=0.1, return_sequences=True)
            ),
            CLASSES[kind](2, dropout=0.3),
        ]
    )
    m.compile("sgd", "mse")
    path = tmp_path / "m.deepcore"
    m.save(path)
    back = dc.models.load_model(path)
    bi = back.layers[0]
    assert (bi.forward_layer.dropout, bi.forward_layer.recurrent_dropout) == (0.2, 0.1)
    assert (bi.backward_layer.dropout, bi.backward_layer.recurrent_dropout) == (0.2, 0.1)
    assert back.layers[1].dropout == 0.3
    x = rng.normal(size=(3, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))


def test_trains_like_keras(rng):
    # The masks cannot be Keras' own draws; the same rates give alike training curves.
    keras = pytest.importorskip("keras")
    x = rng.normal(size=(512, 8, 3)).astype(np.float32)
    y = x[:, :, :1].sum(1) * 0.5
    ours = dc.Sequential(
        [dc.Input(shape=(8, 3)), L.LSTM(16, dropout=0.2, recurrent_dropout=0.2), L.Dense(1)]
    )
    ours.compile(dc.optimizers.Adam(0.01), "mse")
    keras.utils.set_random_seed(0)
    theirs = keras.Sequential(
        [
            keras.Input(shape=(8, 3)),
            keras.layers.LSTM(16, dropout=0.2, recurrent_dropout=0.2),
            keras.layers.Dense(1),
        ]
    )
    theirs.compile(keras.optimizers.Adam(0.01), "mse")
    theirs.set_weights(ours.get_weights())
    fit = {"batch_size": 64, "epochs": 12, "verbose": 0, "shuffle": False}
    a = np.array(ours.fit(x, y, **fit).history["loss"])
    b = np.array(theirs.fit(x, y, **fit).history["loss"])
    assert a[-1] < 0.5 * a[0] and b[-1] < 0.5 * b[0]
    np.testing.assert_allclose(a[-3:], b[-3:], rtol=0.5)


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("rates", [(0.4, 0.0), (0.0, 0.4), (0.3, 0.5)], ids=str)
def test_keras_gives_our_training_loss_with_our_masks(kind, rates, rng):
    # Keras' cells cache their masks for a call: given ours, Keras' training-mode outputs
    # must give the loss deepcore computes with them (one mask or a list of one per gate).
    keras = pytest.importorskip("keras")
    d, rd = rates
    B, T, F, U, seed = 3, 5, 3, 4, 21
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    y = rng.normal(size=(B, T, U)).astype(np.float32)
    kwargs = {"dropout": d, "recurrent_dropout": rd, "return_sequences": True}
    ours = dc.Sequential([dc.Input(shape=(T, F)), CLASSES[kind](U, seed=seed, **kwargs)])
    ours.compile("sgd", "mse")
    w = random_weights(kind, F, U, rng)
    ours.set_weights(w)
    loss, _ = ours.gradients(x, y)
    keras_cls = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}[kind]
    layer = getattr(keras.layers, keras_cls)(U, **kwargs)
    layer.build((B, T, F))
    layer.set_weights(w)
    in_mask, rec_mask, _ = layer_masks(kind, B, F, U, d, rd, random_bits(seed, 0))

    def keras_masks(m):  # Keras' per-gate masks (with recurrent dropout) are a list
        if m is None:
            return None
        return m[:, 0] if kind == "simple_rnn" or rd == 0 else list(m.transpose(1, 0, 2))

    layer.cell._dropout_mask = keras_masks(in_mask)
    layer.cell._recurrent_dropout_mask = keras_masks(rec_mask)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(np.mean((out - y) ** 2), loss, rtol=1e-5)
    want = np_recurrent(kind, w, x, True, in_mask=in_mask, rec_mask=rec_mask)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)
