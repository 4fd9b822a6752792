"""Keras' image augmentation layers (RandomFlip, RandomRotation, RandomTranslation,
RandomZoom, RandomCrop, RandomContrast, RandomBrightness): each image's draws replayed in
NumPy from the engine's counter-based stream and its output checked against Keras' own
affine_transform (or a float64 formula), the statistics of the draws, determinism under a
seed and across thread counts, inference as identity, and clear errors."""

import numpy as np
import pytest
from keras_reference import import_keras
from resize_reference import resize

import deepcore as dc
from deepcore import layers as L

M64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _bits(seed: int, i: int) -> int:
    return _splitmix64(_splitmix64(seed) ^ ((i * 0xD1B54A32D192ED03) & M64))


def _draw(step_seed: int, n: int, k: int, lo: float, hi: float) -> np.float32:
    u = np.float32(_bits(step_seed, 4 * n + k) >> 40) * np.float32(1.0 / 16777216.0)
    return np.float32(lo) + (np.float32(hi) - np.float32(lo)) * u


def _first_step_seed(seed: int) -> int:
    """The step seed a layer with `seed=` draws with in a model's first step."""
    return _bits(seed, 0)


def _transforms(layer, n_images: int, h: int, w: int) -> np.ndarray:
    """Keras' transform rows [a0, a1, a2, b0, b1, b2, 0, 0] of each image, replayed."""
    s = _first_step_seed(layer.seed)
    cx, cy = np.float32(0.5 * (w - 1)), np.float32(0.5 * (h - 1))
    out = []
    for n in range(n_images):
        t = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        if isinstance(layer, L.RandomRotation):
            lo, hi = layer.factor
            degrees = _draw(s, n, 0, lo * 360, hi * 360)
            angle = np.float32(degrees * np.float32(np.pi / 180))
            c, sn = np.cos(angle), np.sin(angle)
            t = [c, -sn, cx - cx * c + cy * sn, sn, c, cy - cx * sn - cy * c]
        elif isinstance(layer, L.RandomTranslation):
            dy = _draw(s, n, 0, *layer.height_factor) * h
            dx = _draw(s, n, 1, *layer.width_factor) * w
            t = [1.0, 0.0, -dx, 0.0, 1.0, -dy]
        elif isinstance(layer, L.RandomZoom):
            zy = 1 + _draw(s, n, 0, *layer.height_factor)
            zx = zy if layer.width_factor is None else 1 + _draw(s, n, 1, *layer.width_factor)
            t = [zx, 0.0, cx * (1 - zx), 0.0, zy, cy * (1 - zy)]
        out.append([*t, 0.0, 0.0])
    return np.array(out, np.float32)


def _images(rng, n=6, h=9, w=7, c=2):
    return rng.uniform(0, 255, (n, h, w, c)).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(11)


@pytest.mark.parametrize(
    "layer",
    [
        L.RandomRotation(0.2, seed=5),
        L.RandomRotation((-0.5, 0.3), seed=6, fill_mode="constant", fill_value=7.0),
        L.RandomRotation(0.3, seed=7, fill_mode="wrap", interpolation="nearest"),
        L.RandomTranslation(0.3, (-0.2, 0.4), seed=8),
        L.RandomTranslation(0.5, 0.5, seed=9, fill_mode="nearest"),
        L.RandomZoom(0.4, seed=10),
        L.RandomZoom((-0.5, 0.2), (0.1, 0.6), seed=11, fill_mode="reflect"),
        L.RandomZoom(0.5, seed=12, fill_mode="constant", interpolation="nearest"),
    ],
    ids=lambda la: f"{type(la).__name__}-{la.fill_mode}-{la.interpolation}",
)
def test_geometric_layers_are_keras_affine_transform_of_the_replayed_draws(layer, rng):
    keras = import_keras()
    if keras.backend.backend() != "jax":
        pytest.skip("the sampling is compared with Keras' JAX backend")
    x = _images(rng)
    got = layer(x)
    t = _transforms(layer, len(x), *x.shape[1:3])
    want = keras.ops.image.affine_transform(
        x,
        t,
        interpolation=layer.interpolation,
        fill_mode=layer.fill_mode,
        fill_value=layer.fill_value,
    )
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=2e-2)


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_random_flip_flips_half_the_images_exactly(mode, rng):
    x = rng.standard_normal((2000, 3, 4, 1)).astype(np.float32)
    layer = L.RandomFlip(mode, seed=3)
    y = layer(x)
    flipped = x
    if mode != "vertical":
        flipped = flipped[:, :, ::-1]
    if mode != "horizontal":
        flipped = flipped[:, ::-1]
    same = np.all(y == x, axis=(1, 2, 3))
    flip = np.all(y == flipped, axis=(1, 2, 3))
    assert np.all(same | flip)
    want = np.array([_draw(_first_step_seed(3), n, 0, 0, 1) <= 0.5 for n in range(len(x))])
    np.testing.assert_array_equal(flip, want)
    assert 0.45 < flip.mean() < 0.55


def test_contrast_and_brightness_follow_their_formulas(rng):
    x = _images(rng, n=8)
    layer = L.RandomContrast(0.5, seed=4)
    s = _first_step_seed(4)
    mean = x.astype(np.float64).mean(axis=(1, 2), keepdims=True)
    f = np.array([_draw(s, n, 0, 1.0, 1.5) for n in range(len(x))])[:, None, None, None]
    np.testing.assert_allclose(
        layer(x), np.clip((x - mean) * f + mean, 0, 255), rtol=1e-5, atol=1e-3
    )
    layer = L.RandomBrightness((-0.2, 0.3), value_range=(0, 255), seed=5)
    s = _first_step_seed(5)
    d = np.array([_draw(s, n, 0, -0.2, 0.3) * 255 for n in range(len(x))])[:, None, None, None]
    np.testing.assert_allclose(layer(x), np.clip(x + d, 0, 255), rtol=1e-6, atol=1e-3)
    factors = [_draw(s, n, 0, 1.0, 1.5) for n in range(4000)]
    assert 1.0 <= min(factors) and max(factors) < 1.5 and abs(np.mean(factors) - 1.25) < 0.02


def test_random_crop_takes_windows_in_training_and_resizes_in_inference(rng):
    x = _images(rng, n=40, h=10, w=8)
    layer = L.RandomCrop(6, 5, seed=2)
    y = layer(x)
    assert y.shape == (40, 6, 5, 2)
    offsets = set()
    for img, out in zip(x, y):
        found = [
            (t, le)
            for t in range(5)
            for le in range(4)
            if np.array_equal(img[t : t + 6, le : le + 5], out)
        ]
        assert found, "a training crop is a window of its image"
        offsets.add(found[0])
    assert len(offsets) > 5  # each image its own offset
    np.testing.assert_allclose(
        layer(x, training=False), resize(x, (6, 5), crop_to_aspect_ratio=True), atol=2e-4
    )
    small = L.RandomCrop(12, 5, seed=2)  # taller than the images: resized in training too
    np.testing.assert_allclose(small(x), resize(x, (12, 5), crop_to_aspect_ratio=True), atol=2e-4)


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.RandomFlip(),
        lambda: L.RandomRotation(0.3),
        lambda: L.RandomTranslation(0.2, 0.2),
        lambda: L.RandomZoom(0.3),
        lambda: L.RandomContrast(0.4),
        lambda: L.RandomBrightness(0.3),
        lambda: L.RandomCrop(6, 5),
    ],
)
def test_augmentation_is_reproducible_independent_of_threads_and_off_in_inference(make, rng):
    x = _images(rng, n=32, h=8, w=7)
    y = rng.standard_normal((32, 2)).astype(np.float32)

    def train(threads):
        dc.utils.set_random_seed(1)
        dc.config.set_num_threads(threads)
        model = dc.Sequential([L.Input((8, 7, 2)), make(), L.Flatten(), L.Dense(2)])
        model.compile("adam", "mse")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return model

    threads = dc.config.get_num_threads()
    try:
        a, b, c = train(1), train(1), train(2)
    finally:
        dc.config.set_num_threads(threads)
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(wa, wc)
    first = a.layers[0]
    if not isinstance(first, L.RandomCrop):
        np.testing.assert_array_equal(a.predict(x, verbose=0), a.layers[-1](x.reshape(32, -1)))
        np.testing.assert_array_equal(first(x, training=False), x)
    assert not np.array_equal(a(x, training=True), a.predict(x, verbose=0))


def test_a_saved_model_keeps_its_augmentation(tmp_path, rng):
    x = _images(rng, n=4, h=8, w=8)
    layers = [
        L.RandomFlip("vertical", seed=1),
        L.RandomRotation((-0.1, 0.2), fill_mode="constant", fill_value=3.0),
        L.RandomTranslation(0.1, (0.0, 0.2), interpolation="nearest"),
        L.RandomZoom(0.2, (-0.1, 0.1)),
        L.RandomContrast((0.1, 0.3), value_range=(0, 1)),
        L.RandomBrightness(0.2),
        L.RandomCrop(6, 6, seed=9),
    ]
    model = dc.Sequential([L.Input((8, 8, 2)), *layers, L.Flatten(), L.Dense(1)])
    model.save(tmp_path / "m.dc")
    loaded = dc.models.load_model(tmp_path / "m.dc")
    for a, b in zip(model.layers, loaded.layers):
        assert type(a) is type(b) and a.get_config() == b.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_clear_errors(rng):
    with pytest.raises(ValueError, match="RandomRotation.*factor"):
        L.RandomRotation(1.5)
    with pytest.raises(ValueError, match="fill_mode"):
        L.RandomZoom(0.2, fill_mode="mirror_twice")
    with pytest.raises(ValueError, match="interpolation"):
        L.RandomTranslation(0.1, 0.1, interpolation="bicubic")
    with pytest.raises(ValueError, match="RandomContrast.*factor"):
        L.RandomContrast(-0.5)
    with pytest.raises(ValueError, match="value_range"):
        L.RandomBrightness(0.1, value_range=(1, 1))
    with pytest.raises(ValueError, match="RandomFlip.*mode"):
        L.RandomFlip("diagonal")
    with pytest.raises(ValueError, match="zoom factor must be above -1"):
        L.RandomZoom((-1.0, 0.2))
    with pytest.raises(ValueError, match="RandomFlip.*expects images"):
        dc.Sequential([L.Input((5,)), L.RandomFlip()]).build()
    with pytest.raises(ValueError, match="passes no gradient back.*conv2d"):
        dc.Sequential([L.Input((6, 6, 1)), L.Conv2D(2, 3, name="conv2d_x"), L.RandomFlip()]).build()
