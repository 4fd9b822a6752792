"""Keras' preprocessing layers (Normalization, Rescaling, CategoryEncoding, Discretization,
Resizing, CenterCrop): outputs against float64 NumPy references and Keras, adapt streamed
over batches, gradients through the differentiable ones against finite differences, state
kept by save and load, and clear errors."""

import tracemalloc

import numpy as np
import pytest
from keras_reference import import_keras
from resize_reference import center_crop, resize

import deepcore as dc
from deepcore import layers as L


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ----------------------------------------------------------------------- Normalization
@pytest.mark.parametrize(
    "axis, shape",
    [
        (-1, (40, 5)),
        (None, (40, 5)),
        (1, (40, 5)),
        ((1, 2), (6, 4, 3, 2)),
        (-1, (6, 4, 3, 2)),
        (2, (6, 4, 3)),
    ],
)
def test_normalization_adapt_and_transform_match_numpy(axis, shape, rng):
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(np.float32)
    layer = L.Normalization(axis=axis)
    layer.adapt(x)
    x64 = x.astype(np.float64)
    axes = () if axis is None else (axis,) if isinstance(axis, int) else axis
    keep = sorted(a % x.ndim for a in axes)
    reduce = tuple(d for d in range(x.ndim) if d not in keep)
    mean, var = x64.mean(axis=reduce), x64.var(axis=reduce)
    got_mean, got_var, count = layer.get_weights()
    np.testing.assert_allclose(got_mean, mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_var, var, rtol=1e-6)
    assert count.shape == ()
    bshape = [x.shape[d] if d in keep else 1 for d in range(x.ndim)]
    want = (x64 - mean.reshape(bshape)) / np.maximum(np.sqrt(var.reshape(bshape)), 1e-7)
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-5)


def test_normalization_fixed_statistics_broadcast_and_invert(rng):
    x = rng.standard_normal((9, 3, 4)).astype(np.float32)
    mean, var = np.array([1.0, -2.0, 0.5, 3.0]), np.array([4.0, 0.25, 0.0, 9.0])
    layer = L.Normalization(mean=mean, variance=var)
    assert layer.get_weights() == [] and layer.weight_names() == []
    want = (x - mean) / np.maximum(np.sqrt(var), 1e-7)
    np.testing.assert_allclose(layer(x), want, rtol=1e-6)
    inv = L.Normalization(mean=mean, variance=var, invert=True)
    np.testing.assert_allclose(inv(x), x * np.maximum(np.sqrt(var), 1e-7) + mean, rtol=1e-6)
    scalar = L.Normalization(axis=None, mean=3.0, variance=2.0)
    np.testing.assert_allclose(scalar(x), (x - 3.0) / np.sqrt(2.0), rtol=1e-6)
    per_row = L.Normalization(
        axis=(1, 2), mean=[[1.0], [2.0], [3.0]], variance=[[1.0], [4.0], [9.0]]
    )
    want = (x - np.array([1.0, 2.0, 3.0])[:, None]) / np.array([1.0, 2.0, 3.0])[:, None]
    np.testing.assert_allclose(per_row(x), want, rtol=1e-6)


def _million_rows(batches=16, rows=1 << 16, seed=3):
    g = np.random.default_rng(seed)
    for _ in range(batches):
        yield (
            g.standard_normal((rows, 4)) * [1.0, 10.0, 0.1, 1000.0] + [5.0, -3.0, 0.0, 1e4]
        ).astype(np.float32)


def test_normalization_adapts_a_million_rows_streamed_in_bounded_memory():
    full = np.concatenate(list(_million_rows())).astype(np.float64)  # (the reference only)
    mean, var = full.mean(axis=0), full.var(axis=0)
    del full
    layer = L.Normalization()
    tracemalloc.start()
    layer.adapt(_million_rows())  # 1,048,576 rows, one batch at a time
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    got_mean, got_var, _ = layer.get_weights()
    np.testing.assert_allclose(got_mean, mean, rtol=1e-6, atol=1e-6 * np.abs(mean).max())
    np.testing.assert_allclose(got_var, var, rtol=1e-6)
    assert peak < 24 * (1 << 16) * 4 * 4, f"adapt held {peak / 2**20:.1f} MiB"  # a few batches


def test_normalization_adapts_an_array_in_slices_and_a_pydataset(rng):
    x = rng.standard_normal((200_000, 3)).astype(np.float32) * 5 + 2
    a = L.Normalization()
    a.adapt(x)
    np.testing.assert_allclose(a.get_weights()[0], x.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(a.get_weights()[1], x.astype(np.float64).var(0), rtol=1e-6)

    class Batches(dc.utils.PyDataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            part = x[i * 30_000 : (i + 1) * 30_000]
            return part, np.zeros(len(part))

    b = L.Normalization()
    b.adapt(Batches())
    np.testing.assert_allclose(b.get_weights()[0], a.get_weights()[0], rtol=1e-6)
    np.testing.assert_allclose(b.get_weights()[1], a.get_weights()[1], rtol=1e-6)
    c = L.Normalization()
    c.adapt(Batches(), steps=2)
    np.testing.assert_allclose(c.get_weights()[0], x[:60_000].astype(np.float64).mean(0), rtol=1e-6)


def test_normalization_adapted_before_the_model_trains_inside_it_unchanged(rng):
    x = rng.standard_normal((64, 3)).astype(np.float32) * [1, 10, 100]
    y = x @ np.array([[0.1], [0.01], [0.001]], np.float32)
    norm = L.Normalization()
    norm.adapt(x)
    before = norm.get_weights()
    model = dc.Sequential([L.Input((3,)), norm, L.Dense(1)])
    model.compile("adam", "mse")
    model.fit(x, y, epochs=3, verbose=0)
    for w, b in zip(model.layers[0].get_weights(), before):
        np.testing.assert_array_equal(w, b)  # non-trainable: fit leaves them
    assert len(model.layers[0].non_trainable_weights) == 3
    assert model.layers[0].trainable_weights == []


def test_normalization_adapted_to_another_shape_is_refused_in_a_model(rng):
    norm = L.Normalization()
    norm.adapt(rng.standard_normal((10, 4)))
    with pytest.raises(ValueError, match="adapted to samples of shape"):
        dc.Sequential([L.Input((3,)), norm, L.Dense(1)]).build()


# --------------------------------------------------------------------------- Rescaling
def test_rescaling_scalar_and_per_channel(rng):
    x = rng.integers(0, 256, (5, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(L.Rescaling(1 / 255)(x), x * np.float32(1 / 255), rtol=1e-7)
    np.testing.assert_allclose(
        L.Rescaling(1 / 127.5, offset=-1)(x), x / 127.5 - 1, rtol=1e-6, atol=1e-6
    )
    scale, offset = [1.0, 0.5, 0.25], [0.0, 1.0, -1.0]
    np.testing.assert_allclose(
        L.Rescaling(scale, offset)(x), x * np.array(scale) + offset, rtol=1e-6
    )


# --------------------------------------------------------- CategoryEncoding, Discretization
def _one_hot(v, depth):
    return (v[..., None] == np.arange(depth)).astype(np.float64)


@pytest.mark.parametrize("mode", ["one_hot", "multi_hot", "count"])
def test_category_encoding_matches_numpy(mode, rng):
    v = rng.integers(-1, 7, (11, 3)).astype(np.float32)  # -1 and 6: outside 0..5, no class
    v1 = rng.integers(0, 6, (11, 1)).astype(np.float32)
    layer = L.CategoryEncoding(num_tokens=6, output_mode=mode)
    if mode == "one_hot":
        np.testing.assert_array_equal(layer(v), _one_hot(v, 6))
        np.testing.assert_array_equal(layer(v1), _one_hot(v1[:, 0], 6))
    else:
        reduce = np.max if mode == "multi_hot" else np.sum
        np.testing.assert_array_equal(layer(v), reduce(_one_hot(v, 6), axis=1))
        np.testing.assert_array_equal(layer(v1), _one_hot(v1[:, 0], 6))


@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot", "count"])
def test_discretization_buckets_as_np_digitize(mode, rng):
    x = (rng.standard_normal((13, 4)) * 2).astype(np.float32)
    x[0, :3] = [0.0, 1.0, -0.5]  # on boundaries: bucket to the right, as np.digitize
    bounds = [-0.5, 0.0, 1.0, 2.5]
    got = L.Discretization(bin_boundaries=bounds, output_mode=mode)(x)
    buckets = np.digitize(x, bounds)
    if mode == "int":
        np.testing.assert_array_equal(got, buckets)
    elif mode == "one_hot":
        np.testing.assert_array_equal(got, _one_hot(buckets, 5))
    else:
        reduce = np.max if mode == "multi_hot" else np.sum
        np.testing.assert_array_equal(got, reduce(_one_hot(buckets, 5), axis=1))


def test_discretization_adapt_is_deterministic_quantiles(rng):
    x = rng.standard_normal((5000, 2)).astype(np.float32)
    layer = L.Discretization(num_bins=4)
    layer.adapt(x)
    again = L.Discretization(num_bins=4)
    again.adapt(x)
    assert layer.bin_boundaries == again.bin_boundaries and len(layer.bin_boundaries) == 3
    np.testing.assert_allclose(layer.bin_boundaries, np.quantile(x, [0.25, 0.5, 0.75]), atol=0.05)
    counts = np.bincount(layer(x).astype(int).ravel(), minlength=4)
    assert counts.min() > 0.2 * x.size and counts.max() < 0.3 * x.size


def test_preprocessing_outputs_match_keras(rng):
    keras = import_keras()
    from keras.src.layers.preprocessing import discretization as kd

    x = rng.standard_normal((50, 4)).astype(np.float32) * 2
    for num_bins in (3, 4, 7):
        ours = L.Discretization(num_bins=num_bins)
        ours.adapt(x)
        theirs = keras.layers.Discretization(num_bins=num_bins)  # (its adapt needs tf.data)
        theirs.summary = kd.merge_summaries(kd.summarize(x, 0.01), theirs.summary, 0.01)
        theirs.finalize_state()
        assert ours.bin_boundaries == [float(b) for b in theirs.bin_boundaries]
        np.testing.assert_array_equal(ours(x), np.asarray(theirs(x)))
    for axis in (-1, None, (1,)):
        ours, theirs = L.Normalization(axis=axis), keras.layers.Normalization(axis=axis)
        ours.adapt(x)
        theirs.adapt(x)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            assert a.shape == b.shape
        np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-5, atol=1e-6)
    ints = rng.integers(0, 6, (7, 3)).astype(np.float32)
    for mode in ("one_hot", "multi_hot", "count"):
        got = L.CategoryEncoding(5, output_mode=mode)(ints)
        np.testing.assert_array_equal(
            got, np.asarray(keras.layers.CategoryEncoding(5, output_mode=mode)(ints))
        )
    np.testing.assert_allclose(
        L.Rescaling(1 / 127.5, -1)(ints), np.asarray(keras.layers.Rescaling(1 / 127.5, -1)(ints))
    )
    img = rng.standard_normal((3, 8, 6, 2)).astype(np.float32)
    for kw in [{}, {"interpolation": "bicubic"}, {"crop_to_aspect_ratio": True},
               {"pad_to_aspect_ratio": True}, {"antialias": True}]:  # fmt: skip
        for size in [(4, 4), (11, 3), (16, 12)]:
            got = L.Resizing(*size, **kw)(img)
            np.testing.assert_allclose(
                got, np.asarray(keras.layers.Resizing(*size, **kw)(img)), atol=3e-6
            )
    for size in [(4, 4), (8, 6), (9, 3), (12, 12)]:
        got = L.CenterCrop(*size)(img)
        np.testing.assert_allclose(got, np.asarray(keras.layers.CenterCrop(*size)(img)), atol=3e-6)


# ----------------------------------------------------------------- Resizing, CenterCrop
@pytest.mark.parametrize(
    "interpolation", ["bilinear", "nearest", "bicubic", "lanczos3", "lanczos5"]
)
@pytest.mark.parametrize("size", [(20, 17), (5, 4), (13, 4), (1, 1)])
def test_resizing_matches_the_float64_reference(interpolation, size, rng):
    img = rng.standard_normal((2, 13, 9, 3)).astype(np.float32)
    got = L.Resizing(*size, interpolation=interpolation)(img)
    np.testing.assert_allclose(got, resize(img, size, interpolation), atol=2e-6)


@pytest.mark.parametrize(
    "kw", [{"crop_to_aspect_ratio": True}, {"pad_to_aspect_ratio": True}, {"antialias": True}]
)
@pytest.mark.parametrize("size", [(6, 6), (4, 12), (30, 7)])
def test_resizing_crop_pad_and_antialias(kw, size, rng):
    img = rng.standard_normal((3, 11, 8, 2)).astype(np.float32)
    got = L.Resizing(*size, **kw)(img)
    np.testing.assert_allclose(got, resize(img, size, **kw), atol=2e-6)


@pytest.mark.parametrize("size", [(5, 4), (11, 8), (12, 3), (20, 20)])
def test_center_crop(size, rng):
    img = rng.standard_normal((2, 11, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(L.CenterCrop(*size)(img), center_crop(img, *size), atol=2e-6)


def _fd_check(middle, reference, x_shape, rng, eps=1e-6):
    """The engine's gradient of a Dense kernel before `middle` (so that the gradient flows
    back through it) against central finite differences of the float64 reference loss."""
    c = x_shape[-1]
    x = rng.standard_normal((4, *x_shape)).astype(np.float32)
    model = dc.Sequential(
        [L.Input(x_shape), L.Dense(c, use_bias=False), middle, L.Flatten(), L.Dense(1)]
    )
    model.compile("sgd", "mse")
    k0, v, b = (w.astype(np.float64) for w in model.get_weights())
    y = rng.standard_normal((4, 1)).astype(np.float32)

    def loss(k):
        h = reference(x.astype(np.float64) @ k).reshape(len(x), -1)
        return np.mean((h @ v + b - y) ** 2)

    _, grads = model.gradients(x, y)
    fd = np.zeros_like(k0)
    for idx in np.ndindex(*k0.shape):
        d = np.zeros_like(k0)
        d[idx] = eps
        fd[idx] = (loss(k0 + d) - loss(k0 - d)) / (2 * eps)
    np.testing.assert_allclose(grads[0], fd, rtol=2e-3, atol=2e-5)


def test_gradients_through_resizing_center_crop_normalization_and_rescaling(rng):
    _fd_check(L.Resizing(5, 7), lambda h: resize(h, (5, 7)), (6, 4, 2), rng)
    _fd_check(
        L.Resizing(9, 3, interpolation="bicubic"),
        lambda h: resize(h, (9, 3), "bicubic"),
        (6, 4, 2),
        rng,
    )
    _fd_check(L.CenterCrop(3, 2), lambda h: center_crop(h, 3, 2), (6, 4, 2), rng)
    mean, var = np.array([0.5, -1.0]), np.array([4.0, 0.25])
    _fd_check(
        L.Normalization(mean=mean, variance=var),
        lambda h: (h - mean) / np.sqrt(var),
        (3, 2),
        rng,
    )
    _fd_check(L.Rescaling([2.0, -0.5], 1.0), lambda h: h * [2.0, -0.5] + 1.0, (3, 2), rng)


# ------------------------------------------------------------------------- save / load
def test_save_and_load_keep_every_preprocessing_state(tmp_path, rng):
    x = (rng.standard_normal((30, 8, 8, 3)) * 40 + 100).astype(np.float32)
    norm = L.Normalization()
    norm.adapt(x)
    inputs = dc.Input((8, 8, 3))
    h = L.Rescaling(1 / 255)(inputs)
    h = L.Resizing(6, 6, interpolation="bicubic")(h)
    h = L.CenterCrop(4, 4)(h)
    h = L.Flatten()(h)
    h = L.Dense(5, activation="relu")(h)
    disc = L.Discretization(num_bins=3)
    disc.adapt(rng.standard_normal((100, 5)))
    h = disc(h)
    out = L.CategoryEncoding(3, output_mode="count")(h)
    model = dc.Model(inputs, [out, L.Flatten()(norm(inputs))])
    want = model.predict(x, verbose=0)
    for name in ("model.dc", "model.keras"):
        path = tmp_path / name
        model.save(path)
        loaded = dc.models.load_model(path)
        for a, b in zip(loaded.predict(x, verbose=0), want):
            np.testing.assert_array_equal(a, b)
        kinds = {type(la).__name__: la for la in loaded.layers}
        np.testing.assert_array_equal(
            kinds["Normalization"].get_weights()[0], norm.get_weights()[0]
        )
        assert kinds["Discretization"].bin_boundaries == disc.bin_boundaries


# ---------------------------------------------------------------------------- bad input
def test_clear_errors(rng):
    with pytest.raises(ValueError, match="Normalization.*empty dataset"):
        L.Normalization().adapt(iter([]))
    with pytest.raises(ValueError, match="Normalization.*no data"):
        L.Normalization().adapt(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        L.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="batch axis 0"):
        L.Normalization(axis=0)
    with pytest.raises(ValueError, match="was given its mean"):
        L.Normalization(mean=1.0, variance=1.0).adapt(np.ones((3, 1)))
    with pytest.raises(TypeError, match="Normalization.*numbers"):
        L.Normalization().adapt(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="Resizing.*expects images of shape"):
        dc.Sequential([L.Input((5,)), L.Resizing(3, 3)]).build()
    with pytest.raises(ValueError, match="interpolation"):
        L.Resizing(3, 3, interpolation="area")
    with pytest.raises(ValueError, match="channels_last"):
        L.CenterCrop(3, 3, data_format="channels_first")
    with pytest.raises(ValueError, match="num_tokens"):
        L.CategoryEncoding(0)
    with pytest.raises(ValueError, match="sparse"):
        L.CategoryEncoding(3, sparse=True)
    with pytest.raises(ValueError, match="output_mode"):
        L.CategoryEncoding(3, output_mode="tf_idf")
    with pytest.raises(ValueError, match="sorted"):
        L.Discretization(bin_boundaries=[1.0, 0.0])
    with pytest.raises(ValueError, match="Discretization.*no bin boundaries yet"):
        dc.Sequential([L.Input((2,)), L.Discretization(num_bins=3)]).build()
    with pytest.raises(ValueError, match="Discretization.*empty dataset"):
        L.Discretization(num_bins=3).adapt(iter([]))


def test_keras_files_carry_preprocessing_both_ways(tmp_path, rng):
    keras = import_keras()
    x = (rng.standard_normal((32, 4)) * 3 + 1).astype(np.float32)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    theirs = keras.Sequential(
        [keras.Input((4,)), norm, keras.layers.Dense(3), keras.layers.Rescaling(0.5, 1.0)]
    )
    theirs.save(tmp_path / "k.keras")
    ours = dc.models.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), atol=1e-5)
    img = rng.uniform(0, 255, (4, 12, 10, 3)).astype(np.float32)
    ours = dc.Sequential(
        [
            L.Input((12, 10, 3)),
            L.RandomFlip(),
            L.RandomRotation(0.1),
            L.Rescaling(1 / 255),
            L.Resizing(8, 8),
            L.CenterCrop(6, 6),
            L.Conv2D(2, 3),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    ours.save(tmp_path / "d.keras")
    theirs = keras.models.load_model(tmp_path / "d.keras")
    np.testing.assert_allclose(
        ours.predict(img, verbose=0), theirs.predict(img, verbose=0), atol=1e-5
    )
    enc = dc.Sequential(
        [
            L.Input((4,)),
            L.Discretization(bin_boundaries=[0.0, 1.0]),
            L.CategoryEncoding(3, output_mode="one_hot"),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    enc.save(tmp_path / "e.keras")
    theirs = keras.models.load_model(tmp_path / "e.keras")
    np.testing.assert_allclose(enc.predict(x, verbose=0), theirs.predict(x, verbose=0), atol=1e-5)


def test_the_regression_tutorials_normalization(rng):
    # one feature as a 1-D array, input_shape=[1], axis=None; the statistics and a call's
    # output read with .numpy(), as the tutorial prints them
    horsepower = rng.uniform(50, 200, 300).astype(np.float32)
    mpg = 40 - 0.15 * horsepower + rng.normal(0, 1, 300)
    normalizer = L.Normalization(input_shape=[1], axis=None)
    normalizer.adapt(horsepower)
    np.testing.assert_allclose(normalizer.mean.numpy(), horsepower.mean(), rtol=1e-6)
    np.testing.assert_allclose(normalizer.variance.numpy(), horsepower.var(), rtol=1e-5)
    model = dc.Sequential([normalizer, L.Dense(units=1)])
    model.compile(optimizer=dc.optimizers.Adam(learning_rate=0.1), loss="mean_absolute_error")
    history = model.fit(horsepower, mpg, epochs=60, verbose=0, validation_split=0.2)
    assert history.history["val_loss"][-1] < 2.0
    assert model.predict(np.linspace(0.0, 250, 251), verbose=0).shape == (251, 1)
    features = (rng.standard_normal((50, 9)) * 3 + 2).astype(np.float32)
    per_feature = L.Normalization(axis=-1)
    per_feature.adapt(features)
    assert per_feature.mean.numpy().shape == (1, 9)
    out = per_feature(features[:1]).numpy()
    want = (features[:1] - features.mean(0)) / features.std(0)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)
