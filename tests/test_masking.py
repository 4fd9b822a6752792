"""Keras' sequence masks: Embedding(mask_zero=True) and Masking make them; SimpleRNN, LSTM,
GRU and Bidirectional skip the masked steps (states kept, outputs kept or zero); Dense and
Dropout pass them on; GlobalAveragePooling1D averages over the kept steps. Checked against
float64 NumPy references (test_recurrent.np_recurrent with a mask) and finite differences,
the backend ops against NumPy on the CPU and guarded devices, and against Keras where it is
installed."""

import warnings

import numpy as np
import pytest
from test_bidirectional import np_merge
from test_recurrent import CLASSES, GATES, fd_gradients, np_recurrent, random_weights
from test_recurrent_dropout import layer_masks, random_bits

import deepcore as dc
from deepcore import _core
from deepcore import layers as L

CPU, GUARDED = 0, 2
DEVICES = [CPU, GUARDED]


def padded(rng, batch, steps, features, pad="mixed", empty=True):
    """x (batch, steps, features) with padding (all-zero steps): at the start of some
    samples, the end of others, in the middle of one, all steps of one (when batch > 2 and
    `empty`)."""
    x = rng.normal(size=(batch, steps, features)).astype(np.float32)
    keep = np.ones((batch, steps), bool)
    for b in range(batch):
        n = rng.integers(0, steps)
        if b % 2 or pad == "pre":
            keep[b, :n] = False
        else:
            keep[b, steps - n :] = False
    if batch > 2:
        keep[1, steps // 2] = False
        keep[2] = False
        keep[2, 0] = not empty  # every step of sample 2 masked, or all but its first
    x[~keep] = 0.0
    return x, keep


# ------------------------------------------------------------------ backend ops
@pytest.mark.parametrize("device", DEVICES)
def test_sequence_mask_and_mask_rows(device, rng):
    x = rng.normal(size=(4, 5, 3)).astype(np.float32)
    x[0, 1] = 0.0
    x[2, 4] = 0.5
    x[3, 0] = [0.5, np.nan, 0.5]
    got = _core.device_sequence_mask(device, x, 0.5)
    want = np.any(x != 0.5, axis=-1).astype(np.float32)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        _core.device_sequence_mask(device, x, 0.0), np.any(x != 0, -1).astype(np.float32)
    )
    rows = x.reshape(20, 3)
    m = (rng.random(20) > 0.4).astype(np.float32)
    rows[0] = np.inf
    m[0] = 0.0
    np.testing.assert_array_equal(
        _core.device_mask_rows(device, rows, m), np.where(m[:, None] != 0, rows, 0.0)
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 5), (2, 4, 33)])
def test_masked_mean_steps_and_its_gradient(device, shape, rng):
    x = rng.normal(size=shape).astype(np.float32)
    m = (rng.random(shape[:2]) > 0.3).astype(np.float32)
    m[:, 0] = 1.0
    dy = rng.normal(size=(shape[0], shape[2])).astype(np.float32)
    y, dx = _core.device_masked_mean_steps(device, x, m, dy)
    x64, m64 = x.astype(np.float64), m.astype(np.float64)
    n = m64.sum(1, keepdims=True)
    np.testing.assert_allclose(y, (x64 * m64[..., None]).sum(1) / n, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, m64[..., None] * (dy / n)[:, None], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_a_masked_sample_keeps_its_states(device, kind, rng):
    B, U = 4, 3
    g = GATES[kind]
    cell = getattr(_core.Cell, kind)
    z = rng.normal(size=(B, g * U)).astype(np.float32)
    hprev, cprev = (rng.normal(size=(B, U)).astype(np.float32) for _ in range(2))
    mask = np.array([1, 0, 1, 0], np.float32)
    prev = cprev if kind == "lstm" else hprev
    tanh, sig = _core.Act.tanh, _core.Act.sigmoid
    plain = _core.device_recurrent_step_forward(device, cell, tanh, sig, z, prev=prev, hprev=hprev)
    got = _core.device_recurrent_step_forward(
        device, cell, tanh, sig, z, prev=prev, hprev=hprev, mask=mask
    )
    np.testing.assert_array_equal(got[1][mask == 1], plain[1][mask == 1])
    np.testing.assert_array_equal(got[1][mask == 0], hprev[mask == 0])
    if kind == "lstm":
        np.testing.assert_array_equal(got[2][mask == 0], cprev[mask == 0])
    # backward: a masked sample's projections get no gradient and dh + dy goes on
    dh, dy, dc = (rng.normal(size=(B, U)).astype(np.float32) for _ in range(3))
    state = got[2]
    back = _core.device_recurrent_step_backward(
        device,
        cell,
        tanh,
        sig,
        got[0],
        dh,
        dy=dy,
        h=got[1],
        prev=prev,
        state=state,
        dc=dc,
        mask=mask,
    )
    np.testing.assert_array_equal(back[0][mask == 0], 0.0)
    np.testing.assert_array_equal(back[1][mask == 0], 0.0)
    np.testing.assert_allclose(back[2][mask == 0], (dh + dy)[mask == 0], rtol=1e-7)
    if kind == "lstm":
        np.testing.assert_array_equal(back[3][mask == 0], dc[mask == 0])


# ------------------------------------------------------------- recurrent layers
@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_forward_matches_numpy(kind, return_sequences, go_backwards, rng):
    T, F, U = 7, 3, 5
    layer = CLASSES[kind](U, return_sequences=return_sequences, go_backwards=go_backwards)
    model = dc.Sequential([dc.Input(shape=(T, F)), L.Masking(), layer])
    w = random_weights(kind, F, U, rng)
    layer.set_weights(w)
    x, keep = padded(rng, 5, T, F)
    want = np_recurrent(kind, w, x, return_sequences, go_backwards, mask=keep)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=2e-6)


MASKED_GRADS = [
    # kind, batch, steps, return_sequences, go_backwards
    ("lstm", 1, 5, False, False),
    ("lstm", 4, 4, True, True),
    ("gru", 4, 5, True, False),
    ("gru", 3, 3, False, True),
    ("simple_rnn", 4, 5, True, True),
    ("simple_rnn", 3, 4, False, False),
]


@pytest.mark.parametrize("case", MASKED_GRADS, ids=str)
def test_masked_gradients_match_finite_differences(case, rng):
    # Masking -> Dense (passes the mask on) -> the recurrent layer: the Dense kernel's
    # gradient checks the recurrent layer's dx through the masked steps.
    kind, B, T, rs, gb = case
    F, U, D = 3, 4, 2
    model = dc.Sequential(
        [
            dc.Input(shape=(T, D)),
            L.Masking(),
            L.Dense(F),
            CLASSES[kind](U, return_sequences=rs, go_backwards=gb),
        ]
    )
    model.compile("sgd", "mse") if not rs else None
    w = [rng.normal(0, 0.5, (D, F)).astype(np.float32), np.zeros(F, np.float32)]
    w += random_weights(kind, F, U, rng)
    model.set_weights(w)
    x, keep = padded(rng, B, T, D, empty=not rs)  # pooled below: no empty sample
    params = [a.astype(np.float64) for a in w]

    def np_out():
        return np_recurrent(kind, params[2:], x @ params[0] + params[1], rs, gb, mask=keep)

    if rs:  # the sequences pooled over the kept steps (test_masked_loss: the masked loss)
        np.testing.assert_allclose(model.predict(x, verbose=0), np_out(), rtol=1e-5, atol=2e-6)
        model = dc.Sequential([*model.layers, L.GlobalAveragePooling1D()])
        model.compile("sgd", "mse")

        def np_out(inner=np_out):  # noqa: F811 (the pooled output)
            seq, k = inner(), keep.astype(np.float64)[..., None]
            return (seq * k).sum(1) / k.sum(1)

    y = rng.normal(size=(B, U)).astype(np.float32)
    loss, grads = model.gradients(x, y)

    def np_loss():
        return np.mean((np_out() - y) ** 2)

    np.testing.assert_allclose(loss, np_loss(), rtol=1e-5)
    for got, want in zip(grads, fd_gradients(np_loss, params)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_masked_bidirectional_matches_numpy(kind, return_sequences, rng):
    T, F, U = 6, 3, 4
    layer = L.Bidirectional(CLASSES[kind](U, return_sequences=return_sequences))
    model = dc.Sequential([dc.Input(shape=(T, F)), L.Masking(), layer])
    w = random_weights(kind, F, U, rng) + random_weights(kind, F, U, rng)
    layer.set_weights(w)
    x, keep = padded(rng, 5, T, F)
    # Keras' Bidirectional sets zero_output_for_mask = return_sequences in both directions
    a = np_recurrent(kind, w[:3], x, return_sequences, mask=keep, zero_output=return_sequences)
    b = np_recurrent(
        kind, w[3:], x, return_sequences, True, mask=keep, zero_output=return_sequences
    )
    want = np_merge("concat", a, b[:, ::-1] if return_sequences else b)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=2e-6)


def test_embedding_mask_zero_feeds_the_lstm(rng):
    T, V, E, U = 8, 11, 3, 4
    idx = rng.integers(1, V, (6, T))
    idx[0, :3] = 0
    idx[1, 5:] = 0
    idx[2] = 0
    emb, lstm = L.Embedding(V, E, mask_zero=True), L.LSTM(U)
    model = dc.Sequential([dc.Input(shape=(T,)), emb, lstm])
    table = rng.normal(size=(V, E)).astype(np.float32)
    emb.set_weights([table])
    w = random_weights("lstm", E, U, rng)
    lstm.set_weights(w)
    want = np_recurrent("lstm", w, table[idx], mask=idx != 0)
    np.testing.assert_allclose(model.predict(idx, verbose=0), want, rtol=1e-5, atol=2e-6)
    assert np.all(model.predict(idx, verbose=0)[2] == 0)  # every step masked: the initial state


def test_masked_global_average_pooling_matches_numpy(rng):
    x, keep = padded(rng, 4, 6, 3, pad="pre")
    keep[2, -1] = True
    x[2, -1] = 1.0
    model = dc.Sequential([dc.Input(shape=(6, 3)), L.Masking(), L.GlobalAveragePooling1D()])
    k = keep[..., None].astype(np.float64)
    want = (x * k).sum(1) / k.sum(1)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-6, atol=1e-7)


def test_masked_models_train_and_configs_round_trip(rng, tmp_path):
    T = 9
    idx = rng.integers(1, 30, (64, T))
    lengths = rng.integers(1, T + 1, 64)
    idx[np.arange(T) >= lengths[:, None]] = 0
    y = (lengths > T // 2).astype(np.float32)
    model = dc.Sequential(
        [
            dc.Input(shape=(T,)),
            L.Embedding(30, 8, mask_zero=True),
            L.Dropout(0.1),
            L.LSTM(8),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(dc.optimizers.Adam(1e-2), "binary_crossentropy", weighted_metrics=["accuracy"])
    history = model.fit(idx, y, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.7
    path = tmp_path / "masked.deepcore"
    model.save(path)
    again = dc.models.load_model(path)
    assert again.layers[0].mask_zero
    np.testing.assert_array_equal(again.predict(idx, verbose=0), model.predict(idx, verbose=0))
    masking = L.Masking(mask_value=-1.0)
    assert L.Masking.from_config(masking.get_config()).mask_value == -1.0


# ------------------------------------------------------------------- bad input
def test_layers_without_masking_warn_as_keras(rng):
    with pytest.warns(UserWarning, match="'conv1d.*' \\(of type Conv1D\\).*destroy the mask"):
        model = dc.Sequential(
            [dc.Input(shape=(5, 2)), L.Masking(), L.Conv1D(3, 2), L.GlobalAveragePooling1D()]
        )
    x, keep = padded(rng, 3, 5, 2)
    got = model.predict(x, verbose=0)
    # the mask ended at Conv1D: the pooling averages over every step
    plain = dc.Sequential([dc.Input(shape=(5, 2)), model.layers[1], L.GlobalAveragePooling1D()])
    np.testing.assert_allclose(got, plain.predict(x, verbose=0), rtol=1e-6)


def test_batch_normalization_given_a_mask_is_refused():
    with pytest.raises(ValueError, match="'batch_normalization.*' \\(BatchNormalization\\).*mask"):
        dc.Sequential([dc.Input(shape=(5, 2)), L.Masking(), L.BatchNormalization(), L.LSTM(3)])


def test_bad_arguments():
    with pytest.raises(ValueError, match="mask_zero"):
        L.Embedding(5, 2, mask_zero="yes")
    with pytest.raises(ValueError, match="mask_value"):
        L.Masking(mask_value="pad")


def test_no_warning_without_a_mask(rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = dc.Sequential([dc.Input(shape=(5, 2)), L.Conv1D(3, 2), L.LSTM(2)])
        model.predict(rng.normal(size=(2, 5, 2)).astype(np.float32), verbose=0)


# ------------------------------------------------------------------------ Keras
@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


@pytest.mark.parametrize("kind", list(CLASSES))
def test_masked_outputs_equal_keras(keras, kind, rng):
    T, V, E, U = 7, 13, 4, 5
    idx = rng.integers(1, V, (5, T))
    idx[0, :4] = 0
    idx[1, 3:] = 0
    idx[3, 2] = 0
    layers = lambda lib: [  # noqa: E731
        lib.layers.Embedding(V, E, mask_zero=True),
        lib.layers.Bidirectional(
            getattr(lib.layers, CLASSES[kind].__name__)(U, return_sequences=True)
        ),
        getattr(lib.layers, CLASSES[kind].__name__)(U, go_backwards=True),
    ]
    km = keras.Sequential([keras.Input(shape=(T,)), *layers(keras)])
    dm = dc.Sequential([dc.Input(shape=(T,)), *layers(dc)])
    dm.set_weights(km.get_weights())
    np.testing.assert_allclose(dm.predict(idx, verbose=0), km.predict(idx, verbose=0), atol=2e-5)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_masked_steps_with_dropout_match_finite_differences(kind, rng):
    # Keras applies the dropout masks to every step and the sequence mask on top: a masked
    # step keeps its states whatever the dropout masks.
    B, T, F, U, seed = 4, 5, 3, 4, 99
    layer = CLASSES[kind](U, dropout=0.3, recurrent_dropout=0.4, seed=seed)
    model = dc.Sequential([dc.Input(shape=(T, F)), L.Masking(), layer])
    model.compile("sgd", "mse")
    w = random_weights(kind, F, U, rng)
    model.set_weights(w)
    x, keep = padded(rng, B, T, F, empty=False)
    y = rng.normal(size=(B, U)).astype(np.float32)
    loss, grads = model.gradients(x, y)
    in_mask, rec_mask, _ = layer_masks(kind, B, F, U, 0.3, 0.4, random_bits(seed, 0))
    params = [a.astype(np.float64) for a in w]

    def np_loss():
        out = np_recurrent(kind, params, x, mask=keep, in_mask=in_mask, rec_mask=rec_mask)
        return np.mean((out - y) ** 2)

    np.testing.assert_allclose(loss, np_loss(), rtol=1e-5)
    for got, want in zip(grads, fd_gradients(np_loss, params)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)


# ------------------------------------------------------------------ masks in a graph
def two_texts(lib):
    """Two padded texts, each through its Embedding(mask_zero=True) and a recurrent layer
    reading the mask, joined by Concatenate once the masks ended."""
    a, b = lib.Input(shape=(6,)), lib.Input(shape=(5,))
    ha = lib.layers.LSTM(4)(lib.layers.Embedding(10, 3, mask_zero=True)(a))
    seq = lib.layers.Embedding(12, 3, mask_zero=True)(b)
    hb = lib.layers.GRU(4)(lib.layers.Dropout(0.0)(seq))  # (the mask passes Dropout)
    out = lib.layers.Dense(1, activation="sigmoid")(lib.layers.Concatenate()([ha, hb]))
    return lib.Model([a, b], out)


def test_masks_follow_a_graph_and_train_as_keras(rng):
    from keras_reference import import_keras
    from test_functional import assert_trains_as_keras

    keras = import_keras()
    km, dm = two_texts(keras), two_texts(dc)
    dm.set_weights(km.get_weights())
    xa, xb = rng.integers(1, 10, (32, 6)), rng.integers(1, 12, (32, 5))
    xa[::2, 4:] = 0
    xb[1::3, 2:] = 0
    xb[5, :] = 0
    y = rng.integers(0, 2, (32, 1)).astype(np.float32)
    assert_trains_as_keras(keras, km, dm, [xa, xb], y, "binary_crossentropy")


def masked_merges(lib, per_step):
    """Merges over one masked sequence (Keras ORs the inputs' masks: here one mask): a
    residual Add, an Average, a Concatenate along the features; `per_step`: the mask reaches
    the output (a per-step loss, masked), else a GRU ends it."""
    a = lib.Input(shape=(6,))
    e = lib.layers.Embedding(10, 4, mask_zero=True)(a)
    h = lib.layers.LSTM(4, return_sequences=True)(e)
    s = lib.layers.Add()([e, h])
    s = lib.layers.Average()([s, lib.layers.Dense(4)(s)])
    c = lib.layers.Concatenate()([s, lib.layers.Dense(2)(e)])
    if per_step:
        return lib.Model(a, lib.layers.Dense(1, activation="sigmoid")(c))
    return lib.Model(a, lib.layers.Dense(1, activation="sigmoid")(lib.layers.GRU(3)(c)))


@pytest.mark.parametrize("per_step", [False, True])
def test_merges_of_one_mask_train_as_keras(per_step, rng):
    from keras_reference import import_keras
    from test_functional import assert_fits_alike, assert_trains_as_keras

    keras = import_keras()
    km, dm = masked_merges(keras, per_step), masked_merges(dc, per_step)
    dm.set_weights(km.get_weights())
    x = rng.integers(1, 10, (32, 6))
    x[::2, 4:] = 0
    x[1::3, 1:] = 0
    y = rng.integers(0, 2, (32, 6, 1) if per_step else (32, 1)).astype(np.float32)
    if per_step and keras.backend.backend() == "jax":
        # Keras on JAX logs fit's metrics over every step (its train step's predictions come
        # back from jax.value_and_grad without their mask); on TensorFlow and PyTorch, as in
        # deepcore, over the kept steps. The loss is masked on all of them.
        for m, lib in ((km, keras), (dm, dc)):
            m.compile(lib.optimizers.Adam(0.01), "binary_crossentropy")
        assert_fits_alike(km, dm, x, y)
        return
    assert_trains_as_keras(keras, km, dm, x, y, "binary_crossentropy")


def test_merges_end_masks_as_keras(rng):
    """An input without a mask ends it at Add (Keras' mask: none) and at Concatenate (all
    steps kept): the LSTM after them reads every step, as with no mask made at all; Dot
    ends masks without a warning."""
    x = [rng.integers(0, 10, (4, 6)), rng.normal(size=(4, 6, 3)).astype(np.float32)]
    x[0][:, 3:] = 0
    for merge in (L.Add, L.Concatenate):
        models = []
        for mask_zero in (True, False):
            a, b = dc.Input(shape=(6,)), dc.Input(shape=(6, 3))
            e = L.Embedding(10, 3, mask_zero=mask_zero)(a)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                models.append(dc.Model([a, b], L.LSTM(2)(merge()([e, b]))))
        models[1].set_weights(models[0].get_weights())
        masked, plain = (m.predict(x, verbose=0) for m in models)
        np.testing.assert_array_equal(masked, plain)
    a = dc.Input(shape=(6,))
    e = L.Embedding(10, 3, mask_zero=True)(a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dc.Model(a, L.Dense(1)(L.Flatten()(L.Dot(axes=2)([e, e]))))


def test_masks_deepcore_cannot_combine_are_refused():
    a, b = dc.Input(shape=(6,)), dc.Input(shape=(6,))
    ea = L.Embedding(10, 3, mask_zero=True)(a)
    eb = L.Embedding(10, 3, mask_zero=True)(b)
    with pytest.raises(ValueError, match="does not combine different masks yet"):
        dc.Model([a, b], L.LSTM(2)(L.Add()([ea, eb])))
    for merge in (L.Multiply(), L.Maximum(), L.Minimum()):
        with pytest.raises(ValueError, match="replaces the values at masked steps"):
            dc.Model(a, L.LSTM(2)(merge([ea, ea])))
    with pytest.raises(ValueError, match="joins the masks along the steps"):
        dc.Model(a, L.LSTM(2)(L.Concatenate(axis=1)([ea, ea])))
    with pytest.raises(ValueError, match="reaches one of the model's 2 outputs"):
        dc.Model(a, [L.LSTM(2, return_sequences=True)(ea), L.LSTM(3)(ea)])
