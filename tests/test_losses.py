"""Losses: engine kernels against float64 NumPy references of Keras 3's formulas.

Every reference returns one loss per sample (the last axis is reduced), in float64.
"""

import numpy as np
import pytest

import deepcore as dc

L = dc.losses
EPS = 1e-7  # Keras' epsilon for clipping probabilities


# ------------------------------------------------------------------- references
def ref_mse(y, p):
    return np.mean((y - p) ** 2, axis=-1)


def ref_mae(y, p):
    return np.mean(np.abs(y - p), axis=-1)


def ref_huber(y, p, delta=1.0):
    e = np.abs(p - y)
    return np.mean(np.where(e <= delta, 0.5 * e**2, delta * e - 0.5 * delta**2), axis=-1)


def ref_bce(y, p):
    p = np.clip(p, EPS, 1.0 - EPS)
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p), axis=-1)


def log_sigmoid(z):
    return -np.logaddexp(0.0, -z)


def ref_bce_logits(y, z):
    return -np.mean(y * log_sigmoid(z) + (1.0 - y) * log_sigmoid(-z), axis=-1)


def ref_cce(y, p):
    q = np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1.0 - EPS)
    return -np.sum(y * np.log(q), axis=-1)


def log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def ref_cce_logits(y, z):
    return -np.sum(y * log_softmax(z), axis=-1)


def one_hot(labels, classes):
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    return np.eye(classes)[labels]


def ref_scce(labels, p):
    return ref_cce(one_hot(labels, p.shape[-1]).reshape(p.shape), p)


def ref_scce_logits(labels, z):
    return ref_cce_logits(one_hot(labels, z.shape[-1]).reshape(z.shape), z)


def ref_hinge(y, p):
    if np.isin(y, (0.0, 1.0)).all():
        y = 2.0 * y - 1.0
    return np.mean(np.maximum(1.0 - y * p, 0.0), axis=-1)


# --------------------------------------------------------------------- data
N, C = 6, 4


def data_regression(rng, dtype=np.float64):
    y = rng.normal(size=(N, C))
    p = y + rng.normal(size=(N, C)) * 1.5
    return y.astype(dtype), p.astype(dtype)


def data_binary(rng, dtype=np.float64):
    y = rng.integers(0, 2, size=(N, C)).astype(np.float64)
    p = rng.uniform(0.05, 0.95, size=(N, C))
    return y.astype(dtype), p.astype(dtype)


def data_logits(rng, dtype=np.float64):
    y = rng.integers(0, 2, size=(N, C)).astype(np.float64)
    z = rng.normal(0.0, 3.0, size=(N, C))
    return y.astype(dtype), z.astype(dtype)


def data_categorical(rng, dtype=np.float64):
    # Unnormalised positive predictions: the loss divides by the row sum itself.
    y = one_hot(rng.integers(0, C, size=N), C)
    p = rng.uniform(0.2, 1.0, size=(N, C))
    return y.astype(dtype), p.astype(dtype)


def data_sparse(rng, dtype=np.float64):
    labels = rng.integers(0, C, size=N).astype(np.float64)
    p = rng.uniform(0.2, 1.0, size=(N, C))
    return labels.astype(dtype), p.astype(dtype)


def data_sparse_logits(rng, dtype=np.float64):
    labels = rng.integers(0, C, size=N).astype(np.float64)
    z = rng.normal(0.0, 3.0, size=(N, C))
    return labels.astype(dtype), z.astype(dtype)


def data_hinge(rng, dtype=np.float64):
    y = rng.integers(0, 2, size=(N, C)).astype(np.float64)
    p = rng.normal(0.0, 2.0, size=(N, C))
    return y.astype(dtype), p.astype(dtype)


# name -> (loss object factory, function form, reference, data generator)
CASES = {
    "mse": (L.MeanSquaredError, L.mean_squared_error, ref_mse, data_regression),
    "mae": (L.MeanAbsoluteError, L.mean_absolute_error, ref_mae, data_regression),
    "huber": (L.Huber, L.huber, ref_huber, data_regression),
    "bce": (L.BinaryCrossentropy, L.binary_crossentropy, ref_bce, data_binary),
    "bce_logits": (
        lambda **kw: L.BinaryCrossentropy(from_logits=True, **kw),
        lambda y, p: L.binary_crossentropy(y, p, from_logits=True),
        ref_bce_logits,
        data_logits,
    ),
    "cce": (L.CategoricalCrossentropy, L.categorical_crossentropy, ref_cce, data_categorical),
    "cce_logits": (
        lambda **kw: L.CategoricalCrossentropy(from_logits=True, **kw),
        lambda y, p: L.categorical_crossentropy(y, p, from_logits=True),
        ref_cce_logits,
        data_sparse_logits,
    ),
    "scce": (
        L.SparseCategoricalCrossentropy,
        L.sparse_categorical_crossentropy,
        ref_scce,
        data_sparse,
    ),
    "scce_logits": (
        lambda **kw: L.SparseCategoricalCrossentropy(from_logits=True, **kw),
        lambda y, p: L.sparse_categorical_crossentropy(y, p, from_logits=True),
        ref_scce_logits,
        data_sparse_logits,
    ),
    "hinge": (L.Hinge, L.hinge, ref_hinge, data_hinge),
}


def make_data(name, rng, dtype=np.float64):
    y, p = CASES[name][3](rng, dtype)
    if name == "cce_logits":  # integer labels -> one-hot targets
        y = one_hot(y, C).astype(dtype)
    return y, p


# ---------------------------------------------------------------- function forms
@pytest.mark.parametrize("name", sorted(CASES))
def test_function_form_float64(name, rng):
    y, p = make_data(name, rng)
    out = CASES[name][1](y, p)
    assert out.dtype == np.float64
    assert out.shape == (N,)
    np.testing.assert_allclose(out, CASES[name][2](y, p), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_function_form_float32(name, rng):
    y, p = make_data(name, rng, np.float32)
    out = CASES[name][1](y, p)
    assert out.dtype == np.float32
    expected = CASES[name][2](y.astype(np.float64), p.astype(np.float64))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["mse", "mae", "huber", "bce", "bce_logits", "cce", "cce_logits", "hinge"]
)
def test_function_form_keeps_leading_axes(name, rng):
    y, p = make_data(name, rng)
    y3, p3 = y.reshape(2, 3, C), p.reshape(2, 3, C)
    out = CASES[name][1](y3, p3)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, CASES[name][2](y3, p3), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_delta(delta, rng):
    y, p = data_regression(rng)
    out = L.Huber(delta=delta, reduction="none")(y, p)
    np.testing.assert_allclose(out, ref_huber(y, p, delta), rtol=1e-10, atol=1e-12)


def test_huber_float64_uses_exact_delta():
    # delta = 0.1 is not a float32 number: a float64 evaluation must use 0.1 itself.
    y = np.zeros((1, 3))
    p = np.array([[1.0, -2.0, 3.0]])  # all errors beyond delta: loss = 0.1 |e| - 0.005
    out = L.Huber(delta=0.1, reduction="none")(y, p)
    np.testing.assert_allclose(out, ref_huber(y, p, 0.1), rtol=1e-12, atol=0)


def test_huber_rejects_non_positive_delta():
    with pytest.raises(ValueError, match="delta"):
        L.Huber(delta=0.0)


def test_bce_clips_probabilities_like_keras():
    y = np.array([[1.0, 0.0, 1.0, 0.0]])
    p = np.array([[0.0, 1.0, 1.0, 0.0]])
    out = L.binary_crossentropy(y, p)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, ref_bce(y, p), rtol=1e-10)
    # two terms at -log(1e-7), two at -log(1 - 1e-7)
    np.testing.assert_allclose(out, [(-2 * np.log(EPS) - 2 * np.log1p(-EPS)) / 4], rtol=1e-10)


def test_cce_normalises_by_row_sum(rng):
    y, p = data_categorical(rng)
    np.testing.assert_allclose(
        L.categorical_crossentropy(y, 3.0 * p), L.categorical_crossentropy(y, p), rtol=1e-12
    )
    np.testing.assert_allclose(L.categorical_crossentropy(y, p), ref_cce(y, p), rtol=1e-10)


def test_cce_clips_zero_probability():
    y = np.array([[0.0, 1.0, 0.0]])
    p = np.array([[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(L.categorical_crossentropy(y, p), [-np.log(EPS)], rtol=1e-10)


def test_cce_soft_labels(rng):
    y = rng.dirichlet(np.ones(C), size=N)
    p = rng.uniform(0.2, 1.0, size=(N, C))
    np.testing.assert_allclose(L.categorical_crossentropy(y, p), ref_cce(y, p), rtol=1e-10)
    np.testing.assert_allclose(
        L.categorical_crossentropy(y, p, from_logits=True), ref_cce_logits(y, p), rtol=1e-10
    )


@pytest.mark.parametrize("shape", [(N,), (N, 1)])
@pytest.mark.parametrize("from_logits", [False, True])
def test_scce_label_shapes(shape, from_logits, rng):
    labels, p = data_sparse(rng)
    out = L.sparse_categorical_crossentropy(labels.reshape(shape), p, from_logits=from_logits)
    ref = ref_scce_logits if from_logits else ref_scce
    assert out.shape == (N,)
    np.testing.assert_allclose(out, ref(labels, p), rtol=1e-10, atol=1e-12)


def test_scce_equals_cce_on_one_hot(rng):
    labels, p = data_sparse(rng)
    np.testing.assert_allclose(
        L.sparse_categorical_crossentropy(labels, p),
        L.categorical_crossentropy(one_hot(labels, C), p),
        rtol=1e-12,
    )


def test_scce_rejects_out_of_range_label():
    with pytest.raises(ValueError):
        L.sparse_categorical_crossentropy(np.array([0.0, 4.0]), np.full((2, 4), 0.25))
    with pytest.raises(ValueError):
        L.sparse_categorical_crossentropy(np.array([0.0, 1.5]), np.full((2, 4), 0.25))


def test_hinge_maps_binary_labels_and_keeps_signed_labels(rng):
    p = rng.normal(size=(N, C))
    y01 = rng.integers(0, 2, size=(N, C)).astype(np.float64)
    y_signed = 2.0 * y01 - 1.0
    expected = np.mean(np.maximum(1.0 - y_signed * p, 0.0), axis=-1)
    np.testing.assert_allclose(L.hinge(y01, p), expected, rtol=1e-12)
    np.testing.assert_allclose(L.hinge(y_signed, p), expected, rtol=1e-12)


# ------------------------------------------------------------ reductions, weights
@pytest.mark.parametrize("name", sorted(CASES))
def test_class_form_reductions(name, rng):
    y, p = make_data(name, rng)
    per = CASES[name][2](y, p)
    factory = CASES[name][0]
    np.testing.assert_allclose(factory()(y, p), per.mean(), rtol=1e-10)
    np.testing.assert_allclose(
        factory(reduction="sum_over_batch_size")(y, p), per.mean(), rtol=1e-10
    )
    np.testing.assert_allclose(factory(reduction="sum")(y, p), per.sum(), rtol=1e-10)
    none = factory(reduction="none")(y, p)
    assert none.shape == (N,)
    np.testing.assert_allclose(none, per, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_weight(name, rng):
    y, p = make_data(name, rng)
    w = rng.uniform(0.0, 2.0, size=N)
    per = CASES[name][2](y, p)
    factory = CASES[name][0]
    # Keras: weighted per-sample losses, divided by the number of samples (not sum(w)).
    np.testing.assert_allclose(factory()(y, p, sample_weight=w), np.sum(w * per) / N, rtol=1e-10)
    np.testing.assert_allclose(
        factory(reduction="sum")(y, p, sample_weight=w), np.sum(w * per), rtol=1e-10
    )
    np.testing.assert_allclose(
        factory(reduction="none")(y, p, sample_weight=w), w * per, rtol=1e-10, atol=1e-12
    )


def test_unknown_reduction_is_rejected():
    with pytest.raises(ValueError, match="reduction"):
        L.MeanSquaredError(reduction="mean")


# --------------------------------------------------------------------- gradients
def gradient_data(name, rng):
    """float64 data away from kinks and clip bounds."""
    y, p = make_data(name, rng)
    if name == "mae":
        e = p - y
        p = np.where(np.abs(e) < 1e-3, y + 0.5, p)
    if name == "huber":  # |e| away from delta = 1, both regimes present
        e = p - y
        e = np.where(np.abs(np.abs(e) - 1.0) < 1e-3, 0.5, e)
        e[0, :2] = [0.3, -2.5]
        p = y + e
    if name == "hinge":  # margin 1 - y p away from 0, both regimes present
        s = 2.0 * y - 1.0
        margin = 1.0 - s * p
        p = np.where(np.abs(margin) < 1e-3, p + 0.1, p)
        p[0, :2] = [3.0 * s[0, 0], -0.5 * s[0, 1]]
    return y, p


def finite_difference(f, p, h=1e-6):
    """Central differences of sum(f(p)) with respect to every element of p."""
    grad = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        pp, pm = p.copy(), p.copy()
        pp[i] += h
        pm[i] -= h
        grad[i] = (np.sum(f(pp)) - np.sum(f(pm))) / (2.0 * h)
    return grad


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name, rng):
    y, p = gradient_data(name, rng)
    per, grad = CASES[name][0]().per_sample(y, p)
    assert grad.shape == p.shape and grad.dtype == np.float64
    np.testing.assert_allclose(per, CASES[name][2](y, p), rtol=1e-10, atol=1e-12)
    fd = finite_difference(lambda q: CASES[name][2](y, q), p)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("delta", [0.5, 2.0])
def test_huber_gradient_with_delta(delta, rng):
    y, p = data_regression(rng)
    e = p - y
    e = np.where(np.abs(np.abs(e) - delta) < 1e-3, delta / 2, e)
    p = y + e
    _, grad = L.Huber(delta=delta).per_sample(y, p)
    fd = finite_difference(lambda q: ref_huber(y, q, delta), p)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_cce_soft_label_gradients(rng):
    y = rng.dirichlet(np.ones(C), size=N)
    p = rng.uniform(0.2, 1.0, size=(N, C))
    _, grad = L.CategoricalCrossentropy().per_sample(y, p)
    np.testing.assert_allclose(
        grad, finite_difference(lambda q: ref_cce(y, q), p), rtol=1e-6, atol=1e-8
    )
    _, grad = L.CategoricalCrossentropy(from_logits=True).per_sample(y, p)
    np.testing.assert_allclose(
        grad, finite_difference(lambda q: ref_cce_logits(y, q), p), rtol=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_float32(name, rng):
    y, p = gradient_data(name, rng)
    _, grad64 = CASES[name][0]().per_sample(y, p)
    _, grad32 = CASES[name][0]().per_sample(y.astype(np.float32), p.astype(np.float32))
    assert grad32.dtype == np.float32
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------ saturated logits
BIG = 1e4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_from_logits_saturated(dtype):
    y = np.array([[1.0, 0.0, 1.0, 0.0]], dtype=dtype)
    z = np.array([[BIG, -BIG, -BIG, BIG]], dtype=dtype)  # right, right, wrong, wrong
    per, grad = L.BinaryCrossentropy(from_logits=True).per_sample(y, z)
    assert np.isfinite(per).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(per, [(0.0 + 0.0 + BIG + BIG) / 4], rtol=1e-6)
    # d/dz mean_c BCE = (sigmoid(z) - y) / C
    np.testing.assert_allclose(grad, [[0.0, 0.0, -0.25, 0.25]], atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cce_from_logits_saturated(dtype):
    z = np.array([[BIG, -BIG, 0.0], [BIG, -BIG, 0.0]], dtype=dtype)
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)  # right, wrong
    per, grad = L.CategoricalCrossentropy(from_logits=True).per_sample(y, z)
    assert np.isfinite(per).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(per, [0.0, 2 * BIG], rtol=1e-6, atol=1e-6)
    # softmax(z) - y
    np.testing.assert_allclose(grad, [[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]], atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scce_from_logits_saturated(dtype):
    z = np.array([[BIG, -BIG, 0.0], [BIG, -BIG, 0.0], [BIG, -BIG, 0.0]], dtype=dtype)
    labels = np.array([0, 1, 2], dtype=dtype)  # right, very wrong, wrong
    per, grad = L.SparseCategoricalCrossentropy(from_logits=True).per_sample(labels, z)
    assert np.isfinite(per).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(per, [0.0, 2 * BIG, BIG], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad, [[0, 0, 0], [1, -1, 0], [1, 0, -1]], atol=1e-7)


# ---------------------------------------------------------------------- registry
@pytest.mark.parametrize(
    "name, cls",
    [
        ("mse", L.MeanSquaredError),
        ("mean_squared_error", L.MeanSquaredError),
        ("mae", L.MeanAbsoluteError),
        ("mean_absolute_error", L.MeanAbsoluteError),
        ("huber", L.Huber),
        ("binary_crossentropy", L.BinaryCrossentropy),
        ("categorical_crossentropy", L.CategoricalCrossentropy),
        ("sparse_categorical_crossentropy", L.SparseCategoricalCrossentropy),
        ("hinge", L.Hinge),
    ],
)
def test_get_by_name(name, cls):
    assert type(L.get(name)) is cls


def test_get_by_function():
    assert type(L.get(L.mean_squared_error)) is L.MeanSquaredError
    assert type(L.get(L.mse)) is L.MeanSquaredError
    assert type(L.get(L.sparse_categorical_crossentropy)) is L.SparseCategoricalCrossentropy


def test_get_instance_returns_it():
    loss = L.Huber(delta=2.0)
    assert L.get(loss) is loss


def test_get_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as info:
        L.get("nope")
    message = str(info.value)
    assert "nope" in message
    for name in (
        "mean_squared_error",
        "mae",
        "huber",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "hinge",
    ):
        assert name in message


def test_mse_alias():
    assert L.mse is L.mean_squared_error
    assert L.mae is L.mean_absolute_error


# ------------------------------------------------------------------- bad shapes
@pytest.mark.parametrize("name", ["mse", "mae", "huber", "bce", "cce", "hinge"])
def test_wrong_y_true_size_raises(name, rng):
    y, p = make_data(name, rng)
    with pytest.raises(ValueError):
        CASES[name][0]()(y[:, :-1], p)
    with pytest.raises(ValueError):
        CASES[name][0]()(y[:-1], p)


def test_scce_with_one_hot_targets_raises(rng):
    labels, p = data_sparse(rng)
    with pytest.raises(ValueError):
        L.SparseCategoricalCrossentropy()(one_hot(labels, C), p)


def test_sum_reduction_is_used_in_training_and_evaluation():
    model = dc.Sequential(
        [dc.Input(shape=(1,)), dc.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(
        optimizer=dc.optimizers.SGD(0.1), loss=dc.losses.MeanSquaredError(reduction="sum")
    )
    x = np.ones((4, 1), np.float32)
    assert model.evaluate(x, x, verbose=0) == pytest.approx(4.0)
    _, grads = model.gradients(x, x)
    assert grads[0][0, 0] == pytest.approx(-8.0)  # d/dw sum (w - 1)^2 over 4 samples at w = 0
    with pytest.raises(ValueError, match="reduction='none'"):
        model.compile(optimizer="sgd", loss=dc.losses.MeanSquaredError(reduction="none"))
