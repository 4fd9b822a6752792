"""Embedding, GlobalAveragePooling1D, GlobalMaxPooling1D, Dense on 3-D inputs and
TimeDistributed(Dense): forward and backward against float64 NumPy references and finite
differences, errors, configs and saving, an Embedding classifier trained against a float64
NumPy implementation, and (where Keras is installed) against Keras step for step."""

import os

import numpy as np
import pytest

import deepcore as dc
from deepcore import layers as L


def seq_model(*layers, shape):
    return dc.Sequential([dc.Input(shape=shape), *layers])


# ------------------------------------------------------------------ Embedding
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5)], ids=str)
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_embedding_gathers_rows_for_any_index_shape(shape, dtype, rng):
    model = seq_model(L.Embedding(13, 5), shape=shape)
    x = rng.integers(0, 13, (3, *shape)).astype(dtype)
    table = model.layers[0].embeddings
    assert table.shape == (13, 5)
    assert np.abs(table).max() <= 0.05  # Keras' "uniform": RandomUniform(-0.05, 0.05)
    out = model.predict(x, verbose=0)
    assert out.shape == (3, *shape, 5)
    np.testing.assert_array_equal(out, table[x.astype(np.int64)])
    assert model.output_shape == (None, *shape, 5)


def test_embedding_gradient_adds_the_rows_of_repeated_indices(rng):
    # loss = mean((E[x] - y)^2): dE[r] = sum over positions naming r of 2 (E[x] - y) / count
    model = seq_model(L.Embedding(6, 3), shape=(7,))
    model.compile("sgd", "mse")
    x = rng.integers(0, 6, (1, 7))  # batch 1, odd length, repeats
    y = rng.normal(size=(1, 7, 3)).astype(np.float32)
    loss, (grad,) = model.gradients(x, y)
    e = model.layers[0].embeddings.astype(np.float64)
    diff = e[x] - y
    ref = np.zeros((6, 3))
    np.add.at(ref, x, 2 * diff / diff.size)
    np.testing.assert_allclose(loss, (diff**2).mean(), rtol=1e-6)
    np.testing.assert_allclose(grad, ref, rtol=1e-5, atol=1e-7)
    # finite differences on a row used twice and a row never used
    used = np.bincount(x.ravel(), minlength=6)
    for r in (int(used.argmax()), int((used == 0).argmax()) if (used == 0).any() else 0):
        for c in range(3):
            w = model.get_weights()
            h = 1e-2
            w[0][r, c] += h
            model.set_weights(w)
            up = model.evaluate(x, y, verbose=0)
            w[0][r, c] -= 2 * h
            model.set_weights(w)
            down = model.evaluate(x, y, verbose=0)
            w[0][r, c] += h
            model.set_weights(w)
            assert abs((up - down) / (2 * h) - grad[r, c]) < 1e-4


@pytest.mark.parametrize(
    "bad, what",
    [
        (13, "13"),
        (-1, "-1"),
        (2.5, "2.5"),
        (np.nan, "nan"),
        (np.inf, "inf"),
    ],
)
def test_embedding_refuses_bad_indices_naming_the_layer(bad, what):
    model = seq_model(L.Embedding(13, 2, name="emb"), shape=(4,))
    x = np.zeros((2, 4))
    x[1, 2] = bad
    with pytest.raises(ValueError, match=rf"Embedding 'emb'.*input_dim=13.*{what}.*\(1, 2\)"):
        model.predict(x, verbose=0)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="Embedding 'emb'"):
        model.fit(x, np.zeros((2, 4, 2)), verbose=0)
    if np.isfinite(bad) and bad == int(bad):
        with pytest.raises(ValueError, match="Embedding 'emb'"):
            model.predict(x.astype(np.int64), verbose=0)


def test_embedding_refuses_non_numeric_inputs():
    model = seq_model(L.Embedding(3, 2), shape=(2,))
    with pytest.raises(TypeError, match="integer indices"):
        model.predict(np.array([["a", "b"]]), verbose=0)


def test_the_engine_checks_indices_too():
    # indices reaching the engine without the Python check (a layer after another)
    model = seq_model(L.Dense(2), L.Embedding(3, 2), shape=(2,))
    model.set_weights(
        [np.eye(2, dtype=np.float32) * 5, np.zeros(2, np.float32)] + [np.zeros((3, 2))]
    )
    with pytest.raises(ValueError, match=r"indices must be integers in \[0, input_dim=3\)"):
        model.predict(np.ones((1, 2), np.float32), verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_dim": 0, "output_dim": 2}, "input_dim"),
        ({"input_dim": 2**24 + 1, "output_dim": 2}, "2\\*\\*24"),
        ({"input_dim": 3, "output_dim": -1}, "output_dim"),
        ({"input_dim": 3, "output_dim": 2.5}, "output_dim"),
        ({"input_dim": 3, "output_dim": 2, "mask_zero": 1}, "mask_zero.*True or False"),
        ({"input_dim": 3, "output_dim": 2, "embeddings_initializer": "nope"}, "nope"),
    ],
)
def test_embedding_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.Embedding(**kwargs)


def test_embedding_regularizer_and_initial_weights(rng):
    table = rng.normal(size=(5, 2)).astype(np.float32)
    model = seq_model(
        L.Embedding(5, 2, embeddings_regularizer=dc.regularizers.L2(0.1), weights=[table]),
        L.Flatten(),
        shape=(3,),
    )
    np.testing.assert_array_equal(model.layers[0].embeddings, table)
    model.compile("sgd", "mse")
    x = np.array([[0, 1, 1]])
    y = np.zeros((1, 6), np.float32)
    loss = model.evaluate(x, y, verbose=0)
    out = table[x].reshape(1, -1).astype(np.float64)
    np.testing.assert_allclose(
        loss, (out**2).mean() + 0.1 * (table.astype(np.float64) ** 2).sum(), rtol=1e-5
    )


# ------------------------------------------------------------- global pooling
@pytest.mark.parametrize("pool", [L.GlobalAveragePooling1D, L.GlobalMaxPooling1D])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("steps, features", [(1, 1), (7, 3), (5, 16)])
def test_global_pooling1d_forward_and_backward(pool, keepdims, steps, features, rng):
    model = seq_model(pool(keepdims=keepdims), shape=(steps, features))
    x = rng.normal(size=(3, steps, features)).astype(np.float32)
    x64 = x.astype(np.float64)
    want = (
        x64.max(axis=1, keepdims=keepdims)
        if pool is L.GlobalMaxPooling1D
        else x64.mean(axis=1, keepdims=keepdims)
    )
    out = model.predict(x, verbose=0)
    assert out.shape == want.shape and model.output_shape == (None, *want.shape[1:])
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-7)
    # gradient wrt the input through a Dense in front: d mean((pool(x W))^2)
    dense = seq_model(L.Dense(2, use_bias=False), pool(keepdims=keepdims), shape=(steps, features))
    dense.compile("sgd", "mse")
    y = np.zeros((3, *want.shape[1:-1], 2), np.float32)
    _, (gw,) = dense.gradients(x, y)
    w = dense.get_weights()[0].astype(np.float64)
    z = x64 @ w
    if pool is L.GlobalMaxPooling1D:
        p = z.max(axis=1)
        onehot = (np.arange(steps)[None, :, None] == z.argmax(axis=1)[:, None, :]).astype(float)
        dz = onehot * (2 * p / p.size)[:, None, :]
    else:
        p = z.mean(axis=1)
        dz = np.repeat((2 * p / p.size)[:, None, :] / steps, steps, axis=1)
    np.testing.assert_allclose(gw, np.einsum("bsf,bsu->fu", x64, dz), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("pool", [L.GlobalAveragePooling1D, L.GlobalMaxPooling1D])
def test_global_pooling1d_errors(pool):
    with pytest.raises(ValueError, match="channels_last"):
        pool(data_format="channels_first")
    with pytest.raises(ValueError, match="keepdims"):
        pool(keepdims="yes")
    with pytest.raises(ValueError, match=r"\(batch, steps, features\).*\(None, 4\)"):
        seq_model(pool(), shape=(4,))
    with pytest.raises(ValueError, match=r"\(batch, steps, features\)"):
        seq_model(pool(), shape=(2, 3, 4))


# ------------------------------------------------- Dense on 3-D, TimeDistributed
def test_dense_on_sequences_and_time_distributed(rng):
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    dense = seq_model(L.Dense(4, activation="tanh"), shape=(5, 3))
    td = seq_model(L.TimeDistributed(L.Dense(4, activation="tanh")), shape=(5, 3))
    td.set_weights(dense.get_weights())
    assert [w.shape for w in td.get_weights()] == [(3, 4), (4,)]
    assert td.layers[0].weight_names() == ["kernel", "bias"]
    k, b = (w.astype(np.float64) for w in dense.get_weights())
    want = np.tanh(x.astype(np.float64) @ k + b)
    for m in (dense, td):
        assert m.output_shape == (None, 5, 4)
        np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    # the loss on 3-D outputs: the mean over samples and steps, as Keras
    y = rng.normal(size=(2, 5, 4)).astype(np.float32)
    for m in (dense, td):
        m.compile("sgd", "mse")
        np.testing.assert_allclose(m.evaluate(x, y, verbose=0), ((want - y) ** 2).mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="only Dense and activation layers"):
        L.TimeDistributed(L.Dropout(0.5))


@pytest.mark.parametrize(
    "layer",
    [
        lambda: L.Embedding(20, 3, embeddings_regularizer="l2", name="e"),
        lambda: L.GlobalAveragePooling1D(keepdims=True),
        lambda: L.GlobalMaxPooling1D(),
        lambda: L.TimeDistributed(L.Dense(3, activation="relu")),
    ],
)
def test_configs_round_trip(layer):
    a = layer()
    b = type(a).from_config(a.get_config())
    assert b.get_config() == a.get_config()


def classifier(T=9, V=40, D=4):
    return dc.Sequential(
        [
            dc.Input(shape=(T,)),
            L.Embedding(V, D),
            L.TimeDistributed(L.Dense(3, activation="relu")),
            L.GlobalMaxPooling1D(),
            L.Dense(1, activation="sigmoid"),
        ]
    )


def test_save_load_and_clone(tmp_path, rng):
    model = classifier()
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    x = rng.integers(0, 40, (30, 9))
    y = rng.integers(0, 2, (30, 1))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.dc")
    loaded = dc.models.load_model(tmp_path / "m.dc")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    a = model.fit(x, y, epochs=1, batch_size=8, verbose=0).history
    b = loaded.fit(x, y, epochs=1, batch_size=8, verbose=0).history
    assert a == b
    clone = dc.models.clone_model(model)
    assert clone.get_config() == model.get_config()


def test_the_first_data_sets_the_input_shape_and_a_layer_call(rng):
    model = dc.Sequential([L.Embedding(10, 2), L.GlobalAveragePooling1D()])
    x = rng.integers(0, 10, (4, 3))
    out = model.predict(x, verbose=0)
    table = model.layers[0].embeddings
    np.testing.assert_allclose(out, table[x].mean(axis=1), rtol=1e-6)
    emb = L.Embedding(10, 2)
    np.testing.assert_array_equal(emb(x), emb.embeddings[x])


# --------------------------------------- an Embedding classifier against NumPy
V, T, D = 1000, 11, 16


def sentiment_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, (n, T))
    y = (rng.random((n, 1)) < 0.5).astype(np.float32)
    return x, y


def dc_classifier():
    return dc.Sequential(
        [
            dc.Input(shape=(T,)),
            L.Embedding(V, D),
            L.GlobalAveragePooling1D(),
            L.Dense(1, activation="sigmoid"),
        ]
    )


def numpy_fit(weights, x, y, opt, epochs, batch_size, lr):
    """Embedding -> mean over steps -> sigmoid(Dense) with binary cross-entropy, trained in
    float64 (Keras' SGD and Adam rules); returns the epochs' mean losses and the weights."""
    e, k, b = (w.astype(np.float64) for w in weights)
    params = [e, k, b]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step, losses = 0, []
    for _ in range(epochs):
        total = 0.0
        for s in range(0, len(x), batch_size):
            xb, yb = x[s : s + batch_size], y[s : s + batch_size].astype(np.float64)
            n = len(xb)
            h = e[xb].mean(axis=1)
            z = h @ k + b
            p = 1 / (1 + np.exp(-z))
            loss = np.mean(np.logaddexp(0, z) - yb * z)
            total += loss * n
            dz = (p - yb) / n
            dk, db = h.T @ dz, dz.sum(axis=0)
            dh = dz @ k.T
            de = np.zeros_like(e)
            np.add.at(de, xb, np.repeat(dh[:, None, :] / T, T, axis=1))
            step += 1
            for i, g in enumerate((de, dk, db)):
                if opt == "sgd":
                    params[i] -= lr * g
                else:
                    m[i] = 0.9 * m[i] + 0.1 * g
                    v[i] = 0.999 * v[i] + 0.001 * g * g
                    a = lr * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
                    params[i] -= a * m[i] / (np.sqrt(v[i]) + 1e-7)
        losses.append(total / len(x))
    return losses, params


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_embedding_classifier_trains_as_numpy(opt):
    x, y = sentiment_data()
    model = dc_classifier()
    lr = 0.5 if opt == "sgd" else 0.01
    model.compile(
        dc.optimizers.SGD(lr) if opt == "sgd" else dc.optimizers.Adam(lr), "binary_crossentropy"
    )
    w0 = model.get_weights()
    h = model.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0).history["loss"]
    losses, params = numpy_fit(w0, x, y, opt, 4, 16, lr)
    assert rel(h, losses) < 5e-5, (h, losses)
    for got, want in zip(model.get_weights(), params):
        assert rel(got, want) < 5e-4


# ------------------------------------------------------------------ Keras
@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_embedding_classifier_trains_as_keras(opt, keras):
    x, y = sentiment_data()
    model = dc_classifier()
    k = keras.Sequential(
        [
            keras.Input(shape=(T,)),
            keras.layers.Embedding(V, D),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    k.set_weights(model.get_weights())
    lr = 0.5 if opt == "sgd" else 0.01
    model.compile(
        dc.optimizers.SGD(lr) if opt == "sgd" else dc.optimizers.Adam(lr), "binary_crossentropy"
    )
    k.compile(
        keras.optimizers.SGD(lr) if opt == "sgd" else keras.optimizers.Adam(lr),
        "binary_crossentropy",
    )
    for epoch in range(4):
        a = model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history["loss"]
        b = k.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history["loss"]
        assert rel(a, b) < 5e-4, epoch
        for got, want in zip(model.get_weights(), k.get_weights()):
            assert rel(got, want) < 5e-4, epoch


def test_sequence_layers_match_keras(keras, rng):
    x = rng.integers(0, 30, (3, 7))
    ours = dc.Sequential(
        [
            dc.Input(shape=(7,)),
            L.Embedding(30, 5),
            L.TimeDistributed(L.Dense(4, activation="tanh")),
            L.Dense(3),
            L.GlobalMaxPooling1D(keepdims=True),
        ]
    )
    theirs = keras.Sequential(
        [
            keras.Input(shape=(7,)),
            keras.layers.Embedding(30, 5),
            keras.layers.TimeDistributed(keras.layers.Dense(4, activation="tanh")),
            keras.layers.Dense(3),
            keras.layers.GlobalMaxPooling1D(keepdims=True),
        ]
    )
    assert [w.shape for w in theirs.get_weights()] == [w.shape for w in ours.get_weights()]
    theirs.set_weights(ours.get_weights())
    assert rel(ours.predict(x, verbose=0), np.asarray(theirs.predict(x, verbose=0))) < 1e-5
    assert ours.output_shape == theirs.output_shape
    for name in ("Embedding", "GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        a = getattr(keras.layers, name)(*((30, 5) if name == "Embedding" else ())).get_config()
        b = getattr(L, name)(*((30, 5) if name == "Embedding" else ())).get_config()
        assert set(b) - {"name", "trainable"} <= set(a), name
