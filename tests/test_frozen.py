"""Frozen layers (Keras' `trainable=False`): their weights stay as they are while the others
train, with every optimizer; BatchNormalization normalizes with its moving statistics in
training too (its backward pass then has no terms through the batch's statistics); frozen
weights leave the regularization loss and the gradient norms of the clipping; the flags take
effect at the next compile, survive saving, and the weight lists and summary follow them.
Checked against NumPy float64 and finite differences, and step for step against Keras where
it is installed."""

import numpy as np
import pytest
from keras_reference import import_keras

import deepcore as dc
from deepcore import layers as L


def mlp(lib=dc, bn=True):
    body = [lib.layers.Dense(8, activation="tanh", name="first")]
    if bn:
        body.append(lib.layers.BatchNormalization(name="norm"))
    body += [lib.layers.Dense(6, activation="relu"), lib.layers.Dense(3, activation="softmax")]
    return lib.Sequential([lib.Input(shape=(5,)), *body])


def data(rng, n=40):
    return rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, 3, n)


def fit(model, x, y, epochs=2):
    return model.fit(x, y, epochs=epochs, batch_size=8, shuffle=False, verbose=0).history


@pytest.mark.parametrize(
    "optimizer",
    [
        dc.optimizers.SGD(0.1, momentum=0.9),
        dc.optimizers.Adam(0.01),
        dc.optimizers.AdamW(0.01, weight_decay=0.1),
        dc.optimizers.RMSprop(0.01),
    ],
    ids=["sgd-momentum", "adam", "adamw", "rmsprop"],
)
def test_frozen_weights_stay_and_the_others_train(optimizer, rng):
    model = mlp()
    model.get_layer("first").trainable = False
    model.get_layer("norm").trainable = False
    model.compile(optimizer, "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    x, y = data(rng)
    fit(model, x, y)
    after = model.get_weights()
    # first: kernel, bias; norm: gamma, beta, moving mean and variance (inference mode: the
    # statistics stay too); then the two Dense layers train
    for i in range(6):
        np.testing.assert_array_equal(after[i], before[i])
    for i in range(6, 10):
        assert not np.array_equal(after[i], before[i])


def test_the_flags_take_effect_at_the_next_compile(rng):
    model = mlp(bn=False)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = data(rng)
    first = model.get_layer("first")
    first.trainable = False  # not compiled yet: it still trains
    kernel = first.get_weights()[0].copy()
    fit(model, x, y, 1)
    assert not np.array_equal(first.get_weights()[0], kernel)
    model.compile("sgd", "sparse_categorical_crossentropy")
    kernel = first.get_weights()[0].copy()
    fit(model, x, y, 1)
    np.testing.assert_array_equal(first.get_weights()[0], kernel)
    first.trainable = True
    model.compile("sgd", "sparse_categorical_crossentropy")
    fit(model, x, y, 1)
    assert not np.array_equal(first.get_weights()[0], kernel)


def test_a_frozen_model_trains_nothing_and_propagates_the_flag(rng):
    model = mlp()
    model.trainable = False
    assert all(not layer.trainable for layer in model.layers)
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 10
    model.compile("adam", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    x, y = data(rng)
    fit(model, x, y)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_weight_lists_and_summary_follow_the_flags():
    model = mlp()
    assert len(model.trainable_weights) == 8 and len(model.non_trainable_weights) == 2
    norm = model.get_layer("norm")
    assert len(norm.trainable_weights) == 2 and len(norm.non_trainable_weights) == 2
    model.get_layer("first").trainable = False
    norm.trainable = False
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 6
    assert norm.trainable_weights == [] and len(norm.non_trainable_weights) == 4
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    frozen = 5 * 8 + 8 + 4 * 8
    total = model.count_params()
    assert f"Trainable params: {total - frozen:,}" in text
    assert f"Non-trainable params: {frozen:,}" in text


def np_frozen_bn_loss(x, y, w):
    """The mse of Dense(8, tanh) -> BatchNormalization with its moving statistics -> Dense(3),
    in float64 (w: the model's weights)."""
    k1, b1, gamma, beta, mean, var, k2, b2 = w
    h = np.tanh(x @ k1 + b1)
    h = gamma * (h - mean) / np.sqrt(var + 1e-3) + beta
    return np.mean((h @ k2 + b2 - y) ** 2)


def test_frozen_batch_normalization_uses_its_moving_statistics(rng):
    from test_recurrent import fd_gradients

    model = dc.Sequential(
        [dc.Input(shape=(5,)), L.Dense(8, activation="tanh"), L.BatchNormalization(), L.Dense(3)]
    )
    w = model.get_weights()
    w[2:6] = [
        rng.uniform(0.5, 2, 8).astype(np.float32),
        rng.normal(size=8).astype(np.float32),
        rng.normal(0, 0.3, 8).astype(np.float32),
        rng.uniform(0.2, 1.5, 8).astype(np.float32),
    ]
    model.set_weights(w)
    model.layers[1].trainable = False
    model.compile("sgd", "mse")
    x, y = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    params = [a.astype(np.float64) for a in model.get_weights()]
    loss, grads = model.gradients(x, y)
    np.testing.assert_allclose(loss, np_frozen_bn_loss(x, y, params), rtol=1e-5)
    want = fd_gradients(lambda: np_frozen_bn_loss(x, y, params), params)
    # gradients of the weights, not of the moving statistics (want[4:6])
    for got, i in zip(grads, (0, 1, 2, 3, 6, 7), strict=True):
        np.testing.assert_allclose(got, want[i], rtol=2e-4, atol=2e-6)
    fit(model, x, y, 1)  # and training leaves the statistics as they are
    for a, b in zip(model.get_weights()[2:6], params[2:6]):
        np.testing.assert_array_equal(a, b.astype(np.float32))


def test_frozen_regularizers_and_gradient_norms_are_left_out(rng):
    # Keras adds the regularizers of the trainable weights only, and clips the gradients
    # of the weights it trains.
    x, y = rng.normal(size=(16, 5)).astype(np.float32), rng.normal(size=(16, 3)).astype(np.float32)
    model = dc.Sequential(
        [
            dc.Input(shape=(5,)),
            L.Dense(4, kernel_regularizer=dc.regularizers.L2(0.5), trainable=False),
            L.Dense(3, kernel_regularizer=dc.regularizers.L2(0.01)),
        ]
    )
    model.compile(dc.optimizers.SGD(0.1, global_clipnorm=0.01), "mse")
    w = [a.astype(np.float64) for a in model.get_weights()]
    loss = model.fit(x, y, epochs=1, batch_size=16, verbose=0).history["loss"][0]
    out = (x @ w[0] + w[1]) @ w[2] + w[3]
    np.testing.assert_allclose(loss, np.mean((out - y) ** 2) + 0.01 * np.sum(w[2] ** 2), rtol=1e-5)
    after = model.get_weights()
    step = np.sqrt(sum(np.sum((after[i] - w[i]) ** 2) for i in (2, 3)))
    np.testing.assert_allclose(step, 0.1 * 0.01, rtol=1e-3)  # the trained gradients' norm
    for i in (0, 1):
        np.testing.assert_array_equal(after[i], w[i].astype(np.float32))


def test_saving_keeps_the_flags(rng, tmp_path):
    model = mlp()
    model.get_layer("first").trainable = False
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = data(rng)
    fit(model, x, y, 1)
    model.save(tmp_path / "m.deepcore")
    loaded = dc.models.load_model(tmp_path / "m.deepcore")
    assert not loaded.get_layer("first").trainable
    kernel = loaded.get_layer("first").get_weights()[0].copy()
    a, b = fit(model, x, y, 1), fit(loaded, x, y, 1)
    assert a == b
    np.testing.assert_array_equal(loaded.get_layer("first").get_weights()[0], kernel)
    clone = dc.models.clone_model(model)
    assert not clone.get_layer("first").trainable


def test_bidirectional_freezes_whole(rng):
    layer = L.Bidirectional(L.LSTM(3))
    model = dc.Sequential([dc.Input(shape=(4, 2)), layer, L.Dense(1)])
    layer.trainable = False
    assert not layer.forward_layer.trainable and not layer.backward_layer.trainable
    model.compile("adam", "mse")
    before = [w.copy() for w in layer.get_weights()]
    x, y = rng.normal(size=(8, 4, 2)).astype(np.float32), rng.normal(size=(8, 1)).astype(np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(layer.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    layer.trainable = True
    layer.backward_layer.trainable = False
    with pytest.raises(ValueError, match="freezes whole layers"):
        model.compile("adam", "mse")


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_frozen_layers_train_as_keras(opt, rng):
    keras = import_keras()
    x, y = data(rng, 48)
    km, dm = mlp(keras), mlp()
    dm.set_weights(km.get_weights())
    for m, lib in ((km, keras), (dm, dc)):
        m.get_layer("first").trainable = False
        m.get_layer("norm").trainable = False
        m.compile(lib.optimizers.get(opt), "sparse_categorical_crossentropy", metrics=["accuracy"])
    kh, dh = fit(km, x, y, 3), fit(dm, x, y, 3)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(dh[key], kh[key], rtol=5e-4, err_msg=key)
    for a, b in zip(dm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=5e-4, atol=1e-6)
    assert len(dm.trainable_weights) == len(km.trainable_weights)
    assert len(dm.non_trainable_weights) == len(km.non_trainable_weights)


def test_a_frozen_layers_gradients_read_zero(rng):
    # deepcore skips them (Dense, Conv); Keras takes none for non-trainable weights
    model = mlp(bn=False)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = data(rng)
    _, before = model.gradients(x, y)
    assert np.any(before[0])
    model.get_layer("first").trainable = False
    model.compile("sgd", "sparse_categorical_crossentropy")
    _, grads = model.gradients(x, y)
    assert not np.any(grads[0]) and not np.any(grads[1])
    np.testing.assert_allclose(grads[2], before[2], rtol=1e-6)
