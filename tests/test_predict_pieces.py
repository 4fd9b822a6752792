"""predict on the CPU goes through the rows in pieces that keep a piece's activations in
cache (and convolutions a tile of images at a time), whatever batch_size the user passes:
the predictions are the same bits for every batch size."""

import numpy as np
import pytest

import deepcore as dc
from deepcore import layers as L


def _mlp():
    return dc.Sequential([L.Input((20,)), L.Dense(64, activation="relu"), L.Dense(5)])


def _cnn():
    return dc.Sequential(
        [
            L.Input((28, 28, 1)),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(16, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    )


def _tiny_conv():  # (one output pixel per image: the tiles' products have few rows)
    return dc.Sequential([L.Input((3, 3, 2)), L.Conv2D(4, 3), L.Flatten(), L.Dense(2)])


def _lstm():
    return dc.Sequential([L.Input((6, 3)), L.LSTM(8), L.Dense(2)])


def _two_inputs():
    a, b = dc.Input((12,)), dc.Input((7,))
    h = L.Concatenate()([L.Dense(9, activation="tanh")(a), b])
    return dc.Model([a, b], L.Dense(3)(h))


CASES = {
    "mlp": (_mlp, [(20,)]),
    "cnn": (_cnn, [(28, 28, 1)]),
    "tiny conv": (_tiny_conv, [(3, 3, 2)]),
    "lstm": (_lstm, [(6, 3)]),
    "two inputs": (_two_inputs, [(12,), (7,)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_predictions_are_the_same_bits_for_every_batch_size(name):
    make, shapes = CASES[name]
    rng = np.random.default_rng(3)
    model = make()
    n = 301  # (more rows than one piece of the CNN: pieces and tiles both cut)
    xs = [rng.standard_normal((n,) + s).astype(np.float32) for s in shapes]
    x = xs[0] if len(xs) == 1 else xs
    ref = model.predict(x, batch_size=n, verbose=0)
    for b in (1, 7, 32, 100, 1024):
        got = model.predict(x, batch_size=b, verbose=0)
        assert np.array_equal(got, ref), (name, b, float(np.max(np.abs(got - ref))))


def test_cnn_predictions_match_a_numpy_reference():
    """The tiled convolutions compute what the layers define (float64 NumPy reference)."""
    rng = np.random.default_rng(4)
    model = _cnn()
    x = rng.standard_normal((97, 28, 28, 1)).astype(np.float32)
    w = [np.asarray(v, np.float64) for v in model.get_weights()]

    def conv_relu(h, k, b):
        kh, kw, _, f = k.shape
        oh, ow = h.shape[1] - kh + 1, h.shape[2] - kw + 1
        out = np.zeros((h.shape[0], oh, ow, f))
        for i in range(kh):
            for j in range(kw):
                out += np.einsum("nhwc,cf->nhwf", h[:, i : i + oh, j : j + ow, :], k[i, j])
        return np.maximum(out + b, 0)

    def pool(h):
        n, hh, ww, c = h.shape
        h = h[:, : hh // 2 * 2, : ww // 2 * 2, :]
        return h.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))

    h = pool(conv_relu(x.astype(np.float64), w[0], w[1]))
    h = pool(conv_relu(h, w[2], w[3])).reshape(len(x), -1)
    z = h @ w[4] + w[5]
    ref = np.exp(z - z.max(axis=1, keepdims=True))
    ref /= ref.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), ref, rtol=1e-4, atol=1e-6)


def _branches():  # (a convolution read by its pooling and by another layer: not fused)
    x = dc.Input((12, 12, 3))
    h = L.Conv2D(6, 3, activation="relu")(x)
    a = L.Flatten()(L.MaxPooling2D(2)(h))
    b = L.GlobalAveragePooling2D()(h)
    return dc.Model(x, L.Dense(2)(L.Concatenate()([a, b])))


# A Conv2D whose outputs only a MaxPooling2D over non-overlapping windows reads: the CPU's
# inference computes the pooled outputs in one pass (only the convolution's outputs the
# windows read), other convolutions with relu or no activation as windows of one position;
# the others go layer by layer.
POOLED = {
    "lenet": lambda: _cnn(),
    "same, linear, no bias, 3x2 pool": lambda: dc.Sequential(
        [
            L.Input((17, 15, 3)),
            L.Conv2D(8, 3, padding="same", use_bias=False),
            L.MaxPooling2D((3, 2)),
            L.Conv2D(5, (2, 3), strides=(2, 1), activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
        ]
    ),
    "convolutions one after the other": lambda: dc.Sequential(
        [
            L.Input((14, 14, 3)),
            L.Conv2D(8, 3, activation="relu"),
            L.Conv2D(6, 3, strides=2, padding="same"),
            L.Flatten(),
        ]
    ),
    "overlapping pool": lambda: dc.Sequential(
        [L.Input((12, 12, 3)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(3, 2)]
    ),
    "tanh": lambda: dc.Sequential(
        [L.Input((12, 12, 3)), L.Conv2D(4, 3, activation="tanh"), L.MaxPooling2D(2)]
    ),
    "wide weights": lambda: dc.Sequential(
        [L.Input((8, 8, 64)), L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2)]
    ),
    "branches": _branches,
    "winograd: same, linear, no bias": lambda: dc.Sequential(
        [L.Input((11, 9, 8)), L.Conv2D(32, 3, padding="same", use_bias=False), L.MaxPooling2D()]
    ),
    "winograd, no pooling": lambda: dc.Sequential(
        [
            L.Input((10, 12, 16)),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.Conv2D(24, 3),
            L.Flatten(),
        ]
    ),
    "winograd, odd outputs": lambda: dc.Sequential(
        [
            L.Input((9, 11, 16)),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.Conv2D(24, 3, activation="relu"),
            L.Flatten(),
        ]
    ),
}
# Models with 3x3 convolutions the CPU's inference computes with Winograd's tiles (LeNet's
# second, the wide weights'): the same values within float rounding, not the bits.
WINOGRAD = {
    "lenet",
    "wide weights",
    "winograd: same, linear, no bias",
    "winograd, no pooling",
    "winograd, odd outputs",
}


@pytest.mark.parametrize("name", list(POOLED))
def test_convolution_and_max_pooling_predict_the_bits_of_the_layers_one_by_one(name):
    """predict (inference: fused where it can be) gives the bits of the training forward
    pass, which always runs the layers one after the other; with Winograd's tiles, its
    values within float rounding, and the same bits for every batch size."""
    model = POOLED[name]()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((61, *model.input_shape[1:])).astype(np.float32)
    x[7] = -1.0  # (equal values in every window: the first wins)
    ref = np.asarray(model(x, training=True))
    first = model.predict(x, batch_size=1, verbose=0)
    for b in (1, 32, 61):
        got = model.predict(x, batch_size=b, verbose=0)
        if name in WINOGRAD:
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
            assert np.array_equal(got, first), (name, b)
        else:
            assert np.array_equal(got, ref), (name, b)


def test_cnn_predictions_are_the_same_bits_for_every_thread_count():
    """The convolutions' tiles (and the pieces' ops) shared among 1, 2 or 4 threads."""
    rng = np.random.default_rng(6)
    model = _cnn()
    x = rng.standard_normal((203, 28, 28, 1)).astype(np.float32)
    before = dc.config.get_num_threads()
    try:
        got = []
        for threads in (1, 2, 4):
            dc.config.set_num_threads(threads)
            got.append(model.predict(x, verbose=0))
    finally:
        dc.config.set_num_threads(before)
    assert np.array_equal(got[0], got[1]) and np.array_equal(got[0], got[2])
