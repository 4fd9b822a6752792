import numpy as np
import pytest

import deepcore as dc


def _model(features=4, momentum=0.9, center=True, scale=True, image=False):
    shape = (3, 3, features) if image else (features,)
    model = dc.Sequential(
        [
            dc.Input(shape=shape),
            dc.layers.BatchNormalization(
                momentum=momentum, epsilon=1e-3, center=center, scale=scale
            ),
            dc.layers.Flatten(),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def _bn_ref(x, gamma, beta, mean, var, eps=1e-3):
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def _forward_ref(weights, x, training, eps=1e-3):
    gamma, beta, mm, mv, k, b = [w.astype(np.float64) for w in weights]
    axes = tuple(range(x.ndim - 1))
    mean, var = (x.mean(axis=axes), x.var(axis=axes)) if training else (mm, mv)
    h = _bn_ref(x, gamma, beta, mean, var, eps).reshape(len(x), -1)
    z = h @ k + b
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


@pytest.mark.parametrize("image", [False, True])
def test_weights_order_and_inference_uses_moving_statistics(rng, image):
    model = _model(image=image)
    assert [w.shape for w in model.get_weights()[:4]] == [(4,)] * 4
    weights = model.get_weights()
    weights[0] = rng.uniform(0.5, 2, 4).astype(np.float32)
    weights[1] = rng.standard_normal(4).astype(np.float32)
    weights[2] = rng.standard_normal(4).astype(np.float32)
    weights[3] = rng.uniform(0.5, 2, 4).astype(np.float32)
    model.set_weights(weights)
    x = rng.standard_normal((5, 3, 3, 4) if image else (5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        model.predict(x), _forward_ref(weights, x.astype(np.float64), False), rtol=1e-5, atol=1e-6
    )
    assert model.count_params() == 16 + 3 * 4 * (9 if image else 1) + 3
    lines = []
    model.summary(print_fn=lines.append)
    assert "Non-trainable params: 8" in lines[0]


def test_training_uses_batch_statistics_and_updates_moving_ones(rng):
    model = _model(momentum=0.9)
    x = (rng.standard_normal((16, 4)) * 3 + 5).astype(np.float32)
    y = rng.integers(0, 3, 16)
    before = model.get_weights()
    loss, grads = model.gradients(x, y)
    after = model.get_weights()
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(after[2], 0.9 * before[2] + 0.1 * x64.mean(0), rtol=1e-5)
    np.testing.assert_allclose(after[3], 0.9 * before[3] + 0.1 * x64.var(0), rtol=1e-5)
    p = _forward_ref(before, x64, True)
    assert loss == pytest.approx(-np.log(p[np.arange(16), y]).mean(), rel=1e-5)
    assert len(grads) == 4  # gamma, beta, kernel, bias: moving statistics have no gradient


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
def test_gradients_match_finite_differences(rng, center, scale):
    model = _model(center=center, scale=scale)
    weights = model.get_weights()
    x = rng.standard_normal((6, 4)) * 2 + 1
    y = rng.integers(0, 3, 6)
    _, grads = model.gradients(x.astype(np.float32), y)
    names = model.layers[0].weight_names() + ["kernel", "bias"]
    full = {"gamma": np.ones(4), "beta": np.zeros(4)}

    def loss(ws):
        named = dict(zip(names, ws))
        params = [
            named.get("gamma", full["gamma"]),
            named.get("beta", full["beta"]),
            named["moving_mean"],
            named["moving_variance"],
            named["kernel"],
            named["bias"],
        ]
        p = _forward_ref(params, x, True)
        return -np.log(p[np.arange(len(y)), y]).mean()

    ws = [w.astype(np.float64) for w in weights]
    trainable = [i for i, n in enumerate(names) if not n.startswith("moving")]
    assert len(trainable) == len(grads)
    for g, i in zip(grads, trainable):
        num = np.zeros_like(ws[i])
        for idx in np.ndindex(ws[i].shape):
            plus = [w.copy() for w in ws]
            minus = [w.copy() for w in ws]
            plus[i][idx] += 1e-5
            minus[i][idx] -= 1e-5
            num[idx] = (loss(plus) - loss(minus)) / 2e-5
        np.testing.assert_allclose(g, num, rtol=2e-3, atol=2e-5)


def test_input_gradient_through_batchnorm(rng):
    """A Dense before BatchNormalization gets the right gradient (dx of the BN layer)."""
    model = dc.Sequential(
        [
            dc.Input(shape=(3,)),
            dc.layers.Dense(4, use_bias=False),
            dc.layers.BatchNormalization(),
            dc.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((8, 3))
    y = rng.standard_normal((8, 1))
    ws = [w.astype(np.float64) for w in model.get_weights()]
    _, grads = model.gradients(x.astype(np.float32), y.astype(np.float32))

    def loss(w0):
        h = x @ w0
        h = _bn_ref(h, ws[1], ws[2], h.mean(0), h.var(0))
        return np.mean((h @ ws[5] + ws[6] - y) ** 2)

    num = np.zeros_like(ws[0])
    for idx in np.ndindex(ws[0].shape):
        p, m = ws[0].copy(), ws[0].copy()
        p[idx] += 1e-5
        m[idx] -= 1e-5
        num[idx] = (loss(p) - loss(m)) / 2e-5
    np.testing.assert_allclose(grads[0], num, rtol=2e-3, atol=2e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"momentum": 1.5}, "momentum=1.5"), ({"epsilon": 0}, "epsilon=0"), ({"axis": 1}, "axis=1")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dc.layers.BatchNormalization(**kwargs)
