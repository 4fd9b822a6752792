"""Sequence layers: Conv1D, MaxPooling1D, AveragePooling1D, UpSampling1D.

Inputs are (batch, steps, channels). Every numerical check compares deepcore (float32
engine) with a NumPy float64 reference written here: forward passes through `predict`,
gradients through `model.gradients` against a hand-written NumPy backprop and central
finite differences of the NumPy forward pass. Lengths follow Keras: "valid" gives
floor((steps - (k - 1) * d - 1) / s) + 1 outputs, "same" and "causal" ceil(steps / s);
"same" pads max((out - 1) * s + (k - 1) * d + 1 - steps, 0) positions, half of them (rounded
down) on the left; "causal" pads (k - 1) * d on the left. Where Keras is installed (with the
JAX backend), the layers and a small model trained step by step are compared with it.
"""

import os

import numpy as np
import pytest
from reference import NP_ACT, act_backward
from test_backend_conv1d import geometry_1d, np_col2im_1d, np_im2col_1d

import deepcore as dc

L = dc.layers

# --------------------------------------------------------------------------- NumPy reference


def np_conv1d(x, W, b, s=1, d=1, padding="valid"):
    """Pre-activation output of a Conv1D: (n, steps, c) input, (k, c, f) kernel."""
    n = x.shape[0]
    k, c, f = W.shape
    cols = np_im2col_1d(x, k, s, d, padding)
    z = cols @ W.reshape(k * c, f)
    z = z if b is None else z + b
    return z.reshape(n, -1, f), cols


def pool_windows_1d(steps, pool, s, padding):
    """(o, slice of the steps inside the window) for every window."""
    out, left = geometry_1d(steps, pool, s, 1, padding)
    for o in range(out):
        start = o * s - left
        yield o, slice(max(start, 0), min(start + pool, steps))


def np_pool1d(x, kind, pool, s, padding):
    n, steps, c = x.shape
    out = np.zeros((n, geometry_1d(steps, pool, s, 1, padding)[0], c))
    for o, win in pool_windows_1d(steps, pool, s, padding):
        out[:, o] = x[:, win].max(axis=1) if kind == "max" else x[:, win].mean(axis=1)
    return out


def np_pool1d_backward(x, dy, kind, pool, s, padding):
    dx = np.zeros_like(x)
    for o, win in pool_windows_1d(x.shape[1], pool, s, padding):
        w = x[:, win]
        if kind == "max":
            first = w.argmax(axis=1)  # the first maximum gets the gradient
            mask = np.zeros_like(w)
            np.put_along_axis(mask, first[:, None, :], 1.0, axis=1)
            dx[:, win] += mask * dy[:, o, None, :]
        else:
            dx[:, win] += dy[:, o, None, :] / w.shape[1]
    return dx


# A network is a list of (kind, settings) shared by the NumPy reference and the deepcore
# model built from it; params follow get_weights() order. The loss is the mean squared error.


def build_model(spec, input_shape):
    layers = [dc.Input(shape=input_shape)]
    for kind, st in spec:
        if kind == "conv":
            layers.append(
                L.Conv1D(
                    st["filters"],
                    st["k"],
                    strides=st.get("s", 1),
                    padding=st.get("padding", "valid"),
                    dilation_rate=st.get("d", 1),
                    activation=st.get("act"),
                )
            )
        elif kind in ("max", "avg"):
            cls = L.MaxPooling1D if kind == "max" else L.AveragePooling1D
            layers.append(cls(st["pool"], st.get("s"), padding=st.get("padding", "valid")))
        elif kind == "up":
            layers.append(L.UpSampling1D(st["size"]))
        elif kind == "flatten":
            layers.append(L.Flatten())
        else:
            layers.append(L.Dense(st["units"], activation=st.get("act")))
    return dc.Sequential(layers)


def np_forward(spec, params, x):
    """Output, and what each layer's backward needs."""
    tape, p = [], iter(params)
    for kind, st in spec:
        if kind == "conv":
            W, b = next(p), next(p)
            z, cols = np_conv1d(x, W, b, st.get("s", 1), st.get("d", 1), st.get("padding", "valid"))
            a = NP_ACT[st.get("act") or "linear"](z)
            tape.append((x, cols, z, a))
        elif kind in ("max", "avg"):
            a = np_pool1d(
                x, kind, st["pool"], st.get("s") or st["pool"], st.get("padding", "valid")
            )
            tape.append((x,))
        elif kind == "up":
            a = np.repeat(x, st["size"], axis=1)
            tape.append((x,))
        elif kind == "flatten":
            a = x.reshape(len(x), -1)
            tape.append((x,))
        else:
            W, b = next(p), next(p)
            z = x @ W + b
            a = NP_ACT[st.get("act") or "linear"](z)
            tape.append((x, z, a))
        x = a
    return x, tape


def np_loss(spec, params, x, y):
    out, _ = np_forward(spec, params, x)
    return ((out - y) ** 2).mean()


def np_loss_and_grads(spec, params, x, y):
    out, tape = np_forward(spec, params, x)
    da = 2.0 * (out - y) / out.size
    grads = []
    for (kind, st), t in zip(reversed(spec), reversed(tape)):
        if kind == "conv":
            xin, cols, z, a = t
            k, c = st["k"], xin.shape[2]
            W = params[len(params) - 2 * (len(grads) // 2 + 1)]
            dz = act_backward(st.get("act") or "linear", z, a, da).reshape(-1, st["filters"])
            grads += [dz.sum(axis=0), (cols.T @ dz).reshape(k, c, -1)]
            dcols = dz @ W.reshape(k * c, -1).T
            da = np_col2im_1d(
                dcols, xin.shape, k, st.get("s", 1), st.get("d", 1), st.get("padding", "valid")
            )
        elif kind in ("max", "avg"):
            pool = st["pool"]
            da = np_pool1d_backward(
                t[0], da, kind, pool, st.get("s") or pool, st.get("padding", "valid")
            )
        elif kind == "up":
            da = da.reshape(t[0].shape[0], t[0].shape[1], st["size"], -1).sum(axis=2)
        elif kind == "flatten":
            da = da.reshape(t[0].shape)
        else:
            xin, z, a = t
            W = params[len(params) - 2 * (len(grads) // 2 + 1)]
            dz = act_backward(st.get("act") or "linear", z, a, da)
            grads += [dz.sum(axis=0), xin.T @ dz]
            da = dz @ W.T
    grads = grads[::-1]  # (W, b) pairs in the forward order
    return ((out - y) ** 2).mean(), grads


def finite_differences(spec, params, x, y, eps=1e-6):
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = np_loss(spec, params, x, y)
            p[i] = old - eps
            down = np_loss(spec, params, x, y)
            p[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def random_params(rng, model):
    return [rng.normal(0, 0.5, w.shape) for w in model.get_weights()]


def assert_close(got, want, tol, what):
    scale = max(np.abs(want).max(), 1e-6)
    err = np.abs(np.asarray(got, np.float64) - want).max() / scale
    assert err < tol, f"{what}: relative error {err:.2e}"


# ------------------------------------------------------------------------- forward passes

# steps, channels, filters, k, strides, dilation, padding
CONVS = [
    (1, 1, 1, 1, 1, 1, "valid"),
    (1, 2, 3, 3, 1, 1, "same"),
    (1, 2, 3, 3, 1, 3, "causal"),
    (9, 3, 4, 3, 1, 1, "valid"),
    (9, 3, 4, 3, 1, 2, "valid"),
    (9, 3, 4, 3, 1, 4, "valid"),  # span 9: the whole input
    (11, 2, 5, 4, 1, 2, "same"),
    (11, 2, 5, 4, 1, 3, "causal"),
    (13, 3, 2, 5, 2, 1, "valid"),
    (13, 3, 2, 4, 3, 1, "same"),
    (13, 3, 2, 3, 2, 1, "causal"),
    (7, 1, 3, 5, 1, 3, "same"),  # span 13 > 7
]


def conv_id(case):
    return "steps{}-c{}-f{}-k{}-s{}-d{}-{}".format(*case)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case", CONVS, ids=conv_id)
def test_conv1d_forward_matches_numpy(rng, case, batch):
    steps, c, f, k, s, d, padding = case
    layer = L.Conv1D(f, k, strides=s, dilation_rate=d, padding=padding, activation="tanh")
    model = dc.Sequential([dc.Input(shape=(steps, c)), layer])
    W, b = rng.normal(size=(k, c, f)), rng.normal(size=f)
    model.set_weights([W, b])
    x = rng.normal(size=(batch, steps, c))
    want = np.tanh(np_conv1d(x, W, b, s, d, padding)[0])
    assert model.output_shape == (None, geometry_1d(steps, k, s, d, padding)[0], f)
    got = model.predict(x.astype(np.float32), verbose=0)
    assert got.shape == want.shape
    assert_close(got, want, 1e-5, "forward")


def test_causal_output_depends_only_on_the_past(rng):
    model = dc.Sequential(
        [dc.Input(shape=(10, 2)), L.Conv1D(3, 3, padding="causal", dilation_rate=2)]
    )
    x = rng.normal(size=(1, 10, 2)).astype(np.float32)
    y = model.predict(x, verbose=0)
    x2 = x.copy()
    x2[:, 6:] = 100.0
    y2 = model.predict(x2, verbose=0)
    np.testing.assert_array_equal(y[:, :6], y2[:, :6])
    assert not np.allclose(y[:, 6:], y2[:, 6:])


# steps, channels, pool, strides, padding
POOLS = [
    (1, 1, 1, None, "valid"),
    (1, 2, 2, None, "same"),
    (7, 3, 2, None, "valid"),
    (7, 3, 2, None, "same"),
    (9, 2, 3, 2, "same"),
    (9, 2, 3, 1, "valid"),
    (10, 2, 2, 3, "valid"),
    (5, 1, 5, 2, "valid"),
    (5, 2, 4, 1, "same"),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", POOLS, ids=str)
def test_pooling1d_forward_matches_numpy(rng, case, kind):
    steps, c, pool, s, padding = case
    cls = L.MaxPooling1D if kind == "max" else L.AveragePooling1D
    model = dc.Sequential([dc.Input(shape=(steps, c)), cls(pool, s, padding)])
    x = rng.normal(size=(2, steps, c))
    want = np_pool1d(x, kind, pool, s or pool, padding)
    got = model.predict(x.astype(np.float32), verbose=0)
    assert got.shape == want.shape and model.output_shape == (None, *want.shape[1:])
    assert_close(got, want, 1e-6, "pooling")


def test_max_pooling1d_padding_never_wins():
    model = dc.Sequential([dc.Input(shape=(3, 1)), L.MaxPooling1D(2, padding="same")])
    x = -np.arange(1, 4, dtype=np.float32).reshape(1, 3, 1)
    np.testing.assert_array_equal(model.predict(x, verbose=0).ravel(), [-1.0, -3.0])


@pytest.mark.parametrize("size", [1, 2, 3])
def test_upsampling1d_repeats_each_step(rng, size):
    model = dc.Sequential([dc.Input(shape=(5, 3)), L.UpSampling1D(size)])
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), np.repeat(x, size, axis=1))
    assert model.output_shape == (None, 5 * size, 3)


# ------------------------------------------------------------------------------ gradients

NETS = {
    "valid-max-valid": (
        (11, 2),
        [
            ("conv", dict(filters=3, k=3, act="tanh")),
            ("max", dict(pool=2)),
            ("conv", dict(filters=2, k=2, act="relu")),
            ("flatten", {}),
            ("dense", dict(units=2)),
        ],
    ),
    "causal-dilated-avg-same": (
        (9, 2),
        [
            ("conv", dict(filters=3, k=3, d=2, padding="causal", act="tanh")),
            ("avg", dict(pool=3, s=2, padding="same")),
            ("conv", dict(filters=2, k=3, d=3, padding="same", act="tanh")),
            ("flatten", {}),
            ("dense", dict(units=2)),
        ],
    ),
    "strided-up-dilated": (
        (13, 1),
        [
            ("conv", dict(filters=2, k=4, s=3, padding="same", act="tanh")),
            ("up", dict(size=3)),
            ("conv", dict(filters=3, k=2, d=2, act="linear")),
            ("max", dict(pool=3, s=2, padding="same")),
            ("conv", dict(filters=2, k=3, s=2, padding="causal", act="tanh")),
            ("flatten", {}),
            ("dense", dict(units=3)),
        ],
    ),
}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("net", sorted(NETS))
def test_gradients_match_numpy_backprop_and_finite_differences(rng, net, batch):
    input_shape, spec = NETS[net]
    model = build_model(spec, input_shape)
    model.compile(optimizer="sgd", loss="mse")
    params = random_params(rng, model)
    model.set_weights(params)
    x = rng.normal(size=(batch, *input_shape))
    y = rng.normal(size=(batch, model.output_shape[-1]))
    got_loss, got = model.gradients(x.astype(np.float32), y.astype(np.float32))
    ref_loss, ref = np_loss_and_grads(spec, params, x, y)
    fd = finite_differences(spec, params, x, y)
    assert got_loss == pytest.approx(ref_loss, rel=1e-5)
    for i, (g, r, d) in enumerate(zip(got, ref, fd)):
        assert g.shape == r.shape
        assert np.abs(r).max() > 1e-5, f"{net}: weight {i} has a vanishing gradient"
        assert_close(r, d, 1e-6, f"{net} weight {i}: backprop vs finite differences")
        assert_close(g, r, 1e-4, f"{net} weight {i}")


# ---------------------------------------------------------------------- config and saving


def test_conv1d_config_and_defaults():
    layer = L.Conv1D(4, 3)
    config = layer.get_config()
    assert config["kernel_size"] == (3,) and config["strides"] == (1,)
    assert config["dilation_rate"] == (1,) and config["padding"] == "valid"
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
    copy = L.Conv1D.from_config(
        L.Conv1D(4, (3,), strides=[1], padding="CAUSAL", dilation_rate=2).get_config()
    )
    assert copy.padding == "causal" and copy.dilation_rate == (2,)
    pool = L.MaxPooling1D.from_config(L.MaxPooling1D(3, padding="same").get_config())
    assert pool.pool_size == (3,) and pool.strides == (3,) and pool.padding == "same"
    assert L.AveragePooling1D(strides=1).get_config()["strides"] == (1,)
    assert L.UpSampling1D.from_config(L.UpSampling1D(4).get_config()).size == 4


def seq_model():
    return dc.Sequential(
        [
            dc.Input(shape=(15, 2)),
            L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
            L.MaxPooling1D(2, padding="same"),
            L.UpSampling1D(2),
            L.Conv1D(3, 3, strides=2, padding="same"),
            L.AveragePooling1D(2),
            L.Flatten(),
            L.Dense(2, activation="softmax"),
        ]
    )


def test_save_load_and_clone_round_trips(rng, tmp_path):
    model = seq_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.normal(size=(20, 15, 2)).astype(np.float32)
    y = rng.integers(0, 2, 20)
    model.fit(x, y, epochs=2, batch_size=5, verbose=0)
    model.save(tmp_path / "seq.dc")
    loaded = dc.models.load_model(tmp_path / "seq.dc")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    # training resumes exactly
    model.fit(x, y, epochs=1, batch_size=5, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=5, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    clone = dc.models.clone_model(model)
    assert clone.get_config() == model.get_config()
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]


def test_layers_called_on_a_batch(rng):
    x = rng.normal(size=(2, 6, 3)).astype(np.float32)
    conv = L.Conv1D(2, 3, padding="same")
    y = conv(x)
    W, b = conv.get_weights()
    assert W.shape == (3, 3, 2) and b.shape == (2,)
    assert_close(y, np_conv1d(x.astype(np.float64), W, b, padding="same")[0], 1e-5, "call")
    np.testing.assert_array_equal(L.UpSampling1D(2)(x), np.repeat(x, 2, axis=1))


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: L.Conv1D(0, 3), "filters"),
        (lambda: L.Conv1D(2, 0), "kernel_size"),
        (lambda: L.Conv1D(2, (3, 3)), "kernel_size"),
        (lambda: L.Conv1D(2, 3, strides=0), "strides"),
        (lambda: L.Conv1D(2, 3, dilation_rate=-1), "dilation_rate"),
        (lambda: L.Conv1D(2, 3, padding="full"), "padding"),
        (lambda: L.Conv1D(2, 3, groups=2), "groups"),
        (lambda: L.Conv1D(2, 3, data_format="channels_first"), "data_format"),
        (lambda: L.MaxPooling1D(0), "pool_size"),
        (lambda: L.AveragePooling1D(2, strides=(1, 1)), "strides"),
        (lambda: L.MaxPooling1D(2, padding="causal"), "padding"),
        (lambda: L.UpSampling1D(0), "size"),
        (lambda: L.UpSampling1D(2.5), "size"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


def test_strides_with_dilation_are_refused_as_in_keras():
    with pytest.raises(ValueError, match=r"strides > 1.*dilation_rate > 1.*strides=2.*rate=2"):
        L.Conv1D(2, 3, strides=2, dilation_rate=2, name="c")


def test_kernel_longer_than_the_input_with_valid_padding_names_the_layer():
    layer = L.Conv1D(2, 3, dilation_rate=3, name="too_long")
    with pytest.raises(ValueError) as e:
        dc.Sequential([dc.Input(shape=(6, 1)), layer])
    msg = str(e.value)
    assert "too_long" in msg and "Conv1D" in msg and "dilated by 3" in msg and "6 steps" in msg
    for padding in ("same", "causal"):
        model = dc.Sequential(
            [dc.Input(shape=(6, 1)), L.Conv1D(2, 3, padding=padding, dilation_rate=3)]
        )
        assert model.output_shape == (None, 6, 2)
    pool = L.MaxPooling1D(4, name="big_pool")
    with pytest.raises(ValueError, match="big_pool.*4.*3 steps"):
        dc.Sequential([dc.Input(shape=(3, 2)), pool])


@pytest.mark.parametrize(
    "layer", [lambda: L.Conv1D(2, 3), lambda: L.MaxPooling1D(), lambda: L.UpSampling1D()]
)
def test_images_into_sequence_layers_name_the_expected_shape(layer):
    with pytest.raises(ValueError, match=r"\(batch, steps, channels\)"):
        dc.Sequential([dc.Input(shape=(6, 6, 1)), layer()])


def test_wrong_channels_name_both_shapes(rng):
    model = dc.Sequential([dc.Input(shape=(8, 3)), L.Conv1D(2, 3)])
    with pytest.raises(ValueError) as e:
        model.predict(np.zeros((2, 8, 4), np.float32), verbose=0)
    assert "(None, 8, 3)" in str(e.value) and "(2, 8, 4)" in str(e.value)


# ----------------------------------------------------------------------------- with Keras


@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def keras_conv(keras, case):
    steps, c, f, k, s, d, padding = case
    return keras.layers.Conv1D(f, k, strides=s, dilation_rate=d, padding=padding)


@pytest.mark.parametrize("case", CONVS, ids=conv_id)
def test_conv1d_with_keras_weights_gives_keras_outputs(rng, keras, case):
    steps, c = case[:2]
    km = keras.Sequential([keras.Input((steps, c)), keras_conv(keras, case)])
    steps, c, f, k, s, d, padding = case
    layer = L.Conv1D(f, k, strides=s, dilation_rate=d, padding=padding)
    model = dc.Sequential([dc.Input(shape=(steps, c)), layer])
    layer.set_weights(km.layers[0].get_weights())
    x = rng.normal(size=(3, steps, c)).astype(np.float32)
    want = np.asarray(km.predict(x, verbose=0))
    got = model.predict(x, verbose=0)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", POOLS, ids=str)
def test_pooling_and_upsampling_give_keras_outputs(rng, keras, case):
    steps, c, pool, s, padding = case
    x = rng.normal(size=(2, steps, c)).astype(np.float32)
    pairs = [
        (L.MaxPooling1D(pool, s, padding), keras.layers.MaxPooling1D(pool, s, padding)),
        (L.AveragePooling1D(pool, s, padding), keras.layers.AveragePooling1D(pool, s, padding)),
        (L.UpSampling1D(pool), keras.layers.UpSampling1D(pool)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-6, atol=1e-6)


def test_config_matches_keras(keras):
    ours = L.Conv1D(8, 5, padding="causal", dilation_rate=2).get_config()
    theirs = keras.layers.Conv1D(8, 5, padding="causal", dilation_rate=2).get_config()
    for key in ("filters", "kernel_size", "strides", "padding", "dilation_rate", "use_bias"):
        assert ours[key] == theirs[key], key
    for ours, theirs in [
        (L.MaxPooling1D(3), keras.layers.MaxPooling1D(3)),
        (L.AveragePooling1D(2, 1, "same"), keras.layers.AveragePooling1D(2, 1, "same")),
    ]:
        for key in ("pool_size", "strides", "padding"):
            assert ours.get_config()[key] == theirs.get_config()[key], key
    assert (
        L.UpSampling1D(3).get_config()["size"] == keras.layers.UpSampling1D(3).get_config()["size"]
    )


def test_conv1d_model_trains_as_keras_step_by_step(rng, keras):
    """Conv1D(32, 5) -> MaxPooling1D -> Conv1D(64, 5) -> Flatten -> Dense(3), Keras' weights,
    SGD with momentum: the same losses and weights after each of 8 steps."""
    x = rng.normal(size=(64, 41, 3)).astype(np.float32)
    y = rng.integers(0, 3, 64)

    def layers(ns):
        return [
            ns.Conv1D(32, 5, activation="relu", padding="causal"),
            ns.MaxPooling1D(),
            ns.Conv1D(64, 5, activation="relu", dilation_rate=2),
            ns.Flatten(),
            ns.Dense(3),
        ]

    km = keras.Sequential([keras.Input((41, 3)), *layers(keras.layers)])
    model = dc.Sequential([dc.Input(shape=(41, 3)), *layers(L)])
    model.set_weights(km.get_weights())
    km.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.compile(
        dc.optimizers.SGD(0.05, momentum=0.9),
        dc.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    for step in range(8):
        rows = slice(8 * step, 8 * step + 8)
        a = float(km.train_on_batch(x[rows], y[rows]))
        b = float(model.train_on_batch(x[rows], y[rows]))
        assert b == pytest.approx(a, rel=1e-4), step
    for i, (w, k) in enumerate(zip(model.get_weights(), km.get_weights())):
        np.testing.assert_allclose(w, np.asarray(k), rtol=1e-3, atol=1e-4, err_msg=f"weight {i}")
