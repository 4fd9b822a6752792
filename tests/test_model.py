"""Model-level tests: forward, backward, optimizer steps, dropout, weights, metrics, callbacks.

Every numerical check compares deepcore (float32 engine) against an independent NumPy
float64 implementation written here.
"""

import re

import numpy as np
import pytest

# --------------------------------------------------------------------------- NumPy reference
from reference import NP_ACT, act_backward, np_softmax

import deepcore as dc
from deepcore.callbacks import Callback, EarlyStopping


def np_forward(params, acts, x):
    """Returns the list of (z, a) per layer; params = [W0, b0, W1, b1, ...]."""
    cache = []
    a = np.asarray(x, np.float64)
    for i, act in enumerate(acts):
        W, b = params[2 * i], params[2 * i + 1]
        z = a @ W + b
        a = NP_ACT[act](z)
        cache.append((z, a))
    return cache


def np_loss(loss, p, y):
    """Keras' loss with sum_over_batch_size reduction, in float64 (probabilities as input)."""
    n = len(p)
    if loss == "mse":
        return np.mean(np.mean((p - y) ** 2, axis=-1))
    if loss == "categorical_crossentropy":
        return -np.sum(y * np.log(p)) / n
    if loss == "sparse_categorical_crossentropy":
        return -np.sum(np.log(p[np.arange(n), y.astype(int)])) / n
    if loss == "binary_crossentropy":
        return np.mean(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-1))
    raise NotImplementedError(loss)


def np_loss_grad(loss, p, y):
    n = len(p)
    if loss == "mse":
        return 2.0 * (p - y) / (n * p.shape[-1])
    if loss == "categorical_crossentropy":
        return -y / p / n
    if loss == "sparse_categorical_crossentropy":
        g = np.zeros_like(p)
        g[np.arange(n), y.astype(int)] = -1.0 / p[np.arange(n), y.astype(int)]
        return g / n
    if loss == "binary_crossentropy":
        return (-(y / p) + (1 - y) / (1 - p)) / (n * p.shape[-1])
    raise NotImplementedError(loss)


def np_total_loss(params, acts, loss, x, y, l2=0.0):
    p = np_forward(params, acts, x)[-1][1]
    return np_loss(loss, p, y) + l2 * sum(np.sum(W**2) for W in params[0::2])


def np_backprop(params, acts, loss, x, y, l2=0.0):
    """Analytic float64 gradients of np_total_loss, in get_weights() order."""
    x = np.asarray(x, np.float64)
    cache = np_forward(params, acts, x)
    grads = [None] * len(params)
    da = np_loss_grad(loss, cache[-1][1], y)
    for i in reversed(range(len(acts))):
        z, a = cache[i]
        dz = act_backward(acts[i], z, a, da)
        a_in = x if i == 0 else cache[i - 1][1]
        grads[2 * i] = a_in.T @ dz + 2.0 * l2 * params[2 * i]
        grads[2 * i + 1] = dz.sum(axis=0)
        da = dz @ params[2 * i].T
    return grads


def finite_diff(params, acts, loss, x, y, l2=0.0, eps=1e-6):
    grads = []
    for k, P in enumerate(params):
        g = np.zeros_like(P)
        for idx in np.ndindex(P.shape):
            plus = [q.copy() for q in params]
            minus = [q.copy() for q in params]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            g[idx] = (
                np_total_loss(plus, acts, loss, x, y, l2)
                - np_total_loss(minus, acts, loss, x, y, l2)
            ) / (2 * eps)
        grads.append(g)
    return grads


def build_mlp(sizes, acts, l2=None):
    reg = None if l2 is None else dc.regularizers.l2(l2)
    layers = [dc.Input(shape=(sizes[0],))]
    layers += [
        dc.layers.Dense(u, activation=a, kernel_regularizer=reg) for u, a in zip(sizes[1:], acts)
    ]
    return dc.Sequential(layers)


def random_params(rng, sizes, scale=0.8):
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append(rng.normal(0, scale / np.sqrt(fan_in), (fan_in, fan_out)))
        params.append(rng.normal(0, 0.3, (fan_out,)))
    # Round through float32 so NumPy and the engine start from identical values.
    return [p.astype(np.float32).astype(np.float64) for p in params]


def make_targets(rng, loss, n, k):
    if loss == "sparse_categorical_crossentropy":
        return rng.integers(0, k, n)
    if loss == "categorical_crossentropy":
        return np.eye(k)[rng.integers(0, k, n)]
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, (n, k)).astype(np.float64)
    return rng.normal(0, 1, (n, k))


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("act", sorted(NP_ACT))
def test_dense_forward_matches_numpy(rng, act):
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(5, activation=act)])
    W = rng.normal(0, 0.7, (4, 5)).astype(np.float32)
    b = rng.normal(0, 0.5, (5,)).astype(np.float32)
    model.set_weights([W, b])
    x = rng.normal(0, 1, (9, 4)).astype(np.float32)
    expected = NP_ACT[act](x.astype(np.float64) @ W.astype(np.float64) + b)
    got = model.predict(x, verbose=0)
    assert got.shape == (9, 5)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6)


def test_dense_forward_hand_set_weights():
    model = dc.Sequential([dc.layers.Dense(2, activation="relu", input_shape=(3,))])
    W = np.array([[1.0, -1.0], [2.0, 0.5], [-1.0, 3.0]])
    b = np.array([0.5, -2.0])
    model.set_weights([W, b])
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]])
    # row0: [1+4-3+0.5, -1+1+9-2] = [2.5, 7]; row1: [0-2-1+0.5, 0-0.5+3-2] = [-2.5, 0.5] -> relu
    np.testing.assert_allclose(model.predict(x, verbose=0), [[2.5, 7.0], [0.0, 0.5]], rtol=1e-6)


def test_two_layer_forward_and_no_bias(rng):
    model = dc.Sequential(
        [
            dc.Input(shape=(3,)),
            dc.layers.Dense(4, activation="tanh", use_bias=False),
            dc.layers.Dense(2, activation="softmax"),
        ]
    )
    W0 = rng.normal(size=(3, 4)).astype(np.float32)
    W1 = rng.normal(size=(4, 2)).astype(np.float32)
    b1 = rng.normal(size=(2,)).astype(np.float32)
    model.set_weights([W0, W1, b1])
    x = rng.normal(size=(6, 3))
    expected = np_softmax(np.tanh(x @ W0.astype(np.float64)) @ W1.astype(np.float64) + b1)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=2e-5, atol=1e-6)


def test_dense_on_3d_input_applies_to_last_axis(rng):
    model = dc.Sequential(
        [dc.Input(shape=(5, 4)), dc.layers.Dense(3, activation="tanh"), dc.layers.Dense(2)]
    )
    assert model.output_shape == (None, 5, 2)
    params = random_params(rng, [4, 3, 2])
    model.set_weights(params)
    assert [w.shape for w in model.get_weights()] == [(4, 3), (3,), (3, 2), (2,)]
    x = rng.normal(size=(7, 5, 4))
    expected = np.tanh(x @ params[0] + params[1]) @ params[2] + params[3]
    got = model.predict(x, verbose=0)
    assert got.shape == (7, 5, 2)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6)
    # Each time step is an independent sample of the Dense layer.
    flat = model.predict(x[:, 2, :][:, None, :].repeat(5, axis=1), verbose=0)
    np.testing.assert_allclose(flat[:, 0], got[:, 2], rtol=1e-6, atol=1e-7)


def test_dense_3d_input_gradients_match_numpy(rng):
    model = dc.Sequential([dc.Input(shape=(5, 4)), dc.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    W = rng.normal(size=(4, 3))
    b = rng.normal(size=(3,))
    model.set_weights([W, b])
    W, b = [w.astype(np.float64) for w in model.get_weights()]
    x = rng.normal(size=(6, 5, 4))
    y = rng.normal(size=(6, 5, 3))
    out = x @ W + b
    # Keras: mean over the last axis, then over all remaining (batch * time) entries.
    expected_loss = np.mean((out - y) ** 2)
    dout = 2.0 * (out - y) / out.size
    loss, grads = model.gradients(x, y)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(grads[0], np.einsum("nti,nto->io", x, dout), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads[1], dout.sum(axis=(0, 1)), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- backward

GRAD_CASES = [
    ([4, 5, 3], ["tanh", "softmax"], "categorical_crossentropy"),
    ([4, 6, 5, 3], ["relu", "relu", "softmax"], "sparse_categorical_crossentropy"),
    ([3, 4, 1], ["sigmoid", "sigmoid"], "binary_crossentropy"),
    ([4, 5, 3], ["tanh", "sigmoid"], "binary_crossentropy"),
    ([4, 5, 2], ["relu", "linear"], "mse"),
    ([3, 5, 4, 2], ["tanh", "sigmoid", "tanh"], "mse"),
    ([4, 5, 3], ["sigmoid", "softmax"], "mse"),
    ([4, 5, 3], ["relu", "softmax"], "categorical_crossentropy"),
]


@pytest.mark.parametrize(
    "sizes,acts,loss", GRAD_CASES, ids=[f"{'-'.join(a)}-{l}" for _, a, l in GRAD_CASES]
)
@pytest.mark.parametrize("l2", [None, 0.01], ids=["no_reg", "l2"])
def test_gradients_match_backprop_and_finite_differences(rng, sizes, acts, loss, l2):
    n = 7
    params = random_params(rng, sizes)
    x = rng.normal(0, 1, (n, sizes[0])).astype(np.float32).astype(np.float64)
    y = make_targets(rng, loss, n, sizes[-1])
    model = build_mlp(sizes, acts, l2)
    model.compile(optimizer="sgd", loss=loss)
    model.set_weights(params)

    lam = l2 or 0.0
    expected_loss = np_total_loss(params, acts, loss, x, y, lam)
    analytic = np_backprop(params, acts, loss, x, y, lam)
    numeric = finite_diff(params, acts, loss, x, y, lam)
    # The reference itself is consistent.
    for a, f in zip(analytic, numeric):
        np.testing.assert_allclose(a, f, rtol=1e-5, atol=1e-8)

    got_loss, grads = model.gradients(x, y)
    np.testing.assert_allclose(got_loss, expected_loss, rtol=1e-5)
    assert [g.shape for g in grads] == [p.shape for p in params]
    scale = max(np.abs(g).max() for g in analytic)
    for g, a, f in zip(grads, analytic, numeric):
        np.testing.assert_allclose(g, a, rtol=1e-4, atol=1e-5 * scale)
        np.testing.assert_allclose(g, f, rtol=1e-4, atol=1e-5 * scale)
    # gradients() does not update the weights.
    for w, p in zip(model.get_weights(), params):
        np.testing.assert_array_equal(w, p.astype(np.float32))


def test_l2_penalty_in_loss_and_gradient_exactly():
    model = dc.Sequential(
        [dc.Input(shape=(3,)), dc.layers.Dense(2, kernel_regularizer=dc.regularizers.l2(0.1))]
    )
    model.compile(optimizer="sgd", loss="mse")
    W = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    model.set_weights([W, np.zeros(2)])
    x, y = np.zeros((2, 3)), np.zeros((2, 2))  # data loss and data gradient are 0
    loss, grads = model.gradients(x, y)
    np.testing.assert_allclose(loss, 0.1 * np.sum(W**2), rtol=1e-6)
    np.testing.assert_allclose(grads[0], 2 * 0.1 * W, rtol=1e-6)
    np.testing.assert_array_equal(grads[1], np.zeros(2))


def test_gradients_with_integer_labels_column_vector(rng):
    # (n, 1) integer labels are accepted by sparse CE and give the same result as (n,).
    params = random_params(rng, [4, 3])
    model = build_mlp([4, 3], ["softmax"])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.set_weights(params)
    x = rng.normal(size=(5, 4))
    y = rng.integers(0, 3, 5)
    l1, g1 = model.gradients(x, y)
    l2, g2 = model.gradients(x, y[:, None])
    assert l1 == pytest.approx(l2, rel=1e-7)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-7)
    np.testing.assert_allclose(
        l1, np_total_loss(params, ["softmax"], "sparse_categorical_crossentropy", x, y), rtol=1e-5
    )


def test_saturated_outputs_use_logits():
    # Logit gap of 200: probabilities saturate in float32, but the loss is exact from logits.
    m = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(2, activation="softmax")])
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    m.set_weights([np.array([[100.0, -100.0], [0, 0], [0, 0]]), np.zeros(2)])
    x = np.array([[1.0, 0, 0], [1.0, 0, 0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])  # first sample wrong by 200 nats
    loss, grads = m.gradients(x, y)
    assert loss == pytest.approx(100.0, rel=1e-6)
    # dL/dz = (p - y) / n = ([1, -1] + [0, 0]) / 2 for the logits.
    np.testing.assert_allclose(grads[1], [0.5, -0.5], atol=1e-6)
    np.testing.assert_allclose(grads[0][0], [0.5, -0.5], atol=1e-6)

    b = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(1, activation="sigmoid")])
    b.compile(optimizer="sgd", loss="binary_crossentropy")
    b.set_weights([np.array([[60.0], [0], [0]]), np.zeros(1)])
    loss, grads = b.gradients(x, np.array([0.0, 1.0]))
    assert loss == pytest.approx(30.0, rel=1e-6)  # softplus(60) / 2
    np.testing.assert_allclose(grads[1], [0.5], atol=1e-6)
    assert np.isfinite(b.evaluate(x, np.array([0.0, 1.0]), verbose=0))


def test_separate_activation_layer_equals_dense_activation(rng):
    params = random_params(rng, [4, 5, 3])
    fused = build_mlp([4, 5, 3], ["tanh", "softmax"])
    split = dc.Sequential(
        [
            dc.Input(shape=(4,)),
            dc.layers.Dense(5),
            dc.layers.Activation("tanh"),
            dc.layers.Dense(3),
            dc.layers.Activation("softmax"),
        ]
    )
    x = rng.normal(size=(8, 4))
    y = np.eye(3)[rng.integers(0, 3, 8)]
    results = []
    for m in (fused, split):
        m.compile(optimizer="sgd", loss="categorical_crossentropy")
        m.set_weights(params)
        results.append((m.predict(x, verbose=0), *m.gradients(x, y)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6, atol=1e-7)
    assert results[0][1] == pytest.approx(results[1][1], rel=1e-6)
    for a, b in zip(results[0][2], results[1][2]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        results[1][2][0],
        np_backprop(params, ["tanh", "softmax"], "categorical_crossentropy", x, y)[0],
        rtol=1e-4,
        atol=1e-6,
    )


def test_sample_weight_and_class_weight_scale_per_sample_losses(rng):
    # Keras: sum_over_batch_size divides the weighted sum by the number of samples.
    params = random_params(rng, [3, 4, 1])
    acts, loss = ["tanh", "sigmoid"], "binary_crossentropy"
    m = build_mlp([3, 4, 1], acts)
    m.compile(optimizer="sgd", loss=loss)
    m.set_weights(params)
    x = rng.normal(size=(6, 3))
    y = np.array([0.0, 1, 1, 0, 1, 0])[:, None]
    w = np.array([1.0, 2.0, 0.0, 0.5, 3.0, 1.0])
    p = np_forward(params, acts, x)[-1][1]
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))[:, 0]
    expected = np.sum(w * per) / len(w)
    got, grads = m.gradients(x, y, sample_weight=w)
    assert got == pytest.approx(expected, rel=1e-5)
    assert m.evaluate(x, y, sample_weight=w, verbose=0) == pytest.approx(expected, rel=1e-5)
    # Gradient: a sample with weight 0 contributes nothing -> same as scaling rows by w.
    unweighted = np_backprop(params, acts, loss, x, y)
    assert not np.allclose(grads[0], unweighted[0], rtol=1e-3)
    # Weighted gradient by hand: dL/dz_out = w * (p - y) / n.
    a1 = np_forward(params, acts, x)[0][1]
    dz2 = (w[:, None] * (p - y)) / len(w)
    np.testing.assert_allclose(grads[3], dz2.sum(0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(grads[2], a1.T @ dz2, rtol=1e-4, atol=1e-7)
    # class_weight {0: 0.5, 1: 2} behaves as the matching sample weights in fit.
    cw = {0: 0.5, 1: 2.0}
    sw = np.where(y[:, 0] == 1, 2.0, 0.5)
    runs = []
    for kwargs in ({"class_weight": cw}, {"sample_weight": sw}):
        mm = build_mlp([3, 4, 1], acts)
        mm.compile(optimizer=dc.optimizers.SGD(learning_rate=0.5), loss=loss)
        mm.set_weights(params)
        h = mm.fit(x, y, batch_size=6, epochs=2, shuffle=False, verbose=0, **kwargs)
        runs.append((mm.get_weights(), h.history["loss"]))
    np.testing.assert_allclose(runs[0][1][0], np.sum(sw * per) / 6, rtol=1e-5)
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-6)
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("loss", ["hinge", "sparse_categorical_crossentropy"])
def test_class_weight_follows_the_class_labels_of_any_loss(rng, loss):
    # hinge maps labels {0, 1} to {-1, 1} inside; class_weight still keys on 0 and 1.
    x = rng.normal(size=(8, 3))
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    units = 1 if loss == "hinge" else 2
    runs = []
    for kwargs in ({"class_weight": {0: 0.5, 1: 2.0}}, {"sample_weight": np.where(y, 2.0, 0.5)}):
        dc.utils.set_random_seed(3)
        m = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(units)])
        m.compile(optimizer="sgd", loss=loss)
        m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, **kwargs)
        runs.append(m.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_uneven_batches_in_evaluate_and_predict(rng):
    params = random_params(rng, [4, 5, 3])
    m = build_mlp([4, 5, 3], ["relu", "softmax"])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.set_weights(params)
    x = rng.normal(size=(23, 4))
    y = rng.integers(0, 3, 23)
    p = np_forward(params, ["relu", "softmax"], x)[-1][1]
    expected_loss = np_loss("sparse_categorical_crossentropy", p, y)
    expected_acc = np.mean(p.argmax(1) == y)
    for bs in (1, 5, 7, 23, 100):
        np.testing.assert_allclose(m.predict(x, batch_size=bs, verbose=0), p, rtol=1e-5, atol=1e-6)
        loss, acc = m.evaluate(x, y, batch_size=bs, verbose=0)
        assert loss == pytest.approx(expected_loss, rel=1e-5), bs
        assert acc == pytest.approx(expected_acc, abs=1e-6), bs


# --------------------------------------------------------------------------- optimizer steps


def np_sgd(params, grads, state, lr, momentum, nesterov):
    if not state:
        state.extend(np.zeros_like(p) for p in params)
    out = []
    for p, g, v in zip(params, grads, state):
        v *= momentum
        v -= lr * g
        if nesterov:
            out.append(p + momentum * v - lr * g)
        else:
            out.append(p + v)
    return out


def np_adam(params, grads, state, lr, b1=0.9, b2=0.999, eps=1e-7):
    if not state:
        state.append(0)
        state.append([np.zeros_like(p) for p in params])
        state.append([np.zeros_like(p) for p in params])
    state[0] += 1
    t = state[0]
    alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
    out = []
    for p, g, m, v in zip(params, grads, state[1], state[2]):
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        out.append(p - alpha * m / (np.sqrt(v) + eps))
    return out


OPT_CASES = {
    "sgd": (
        lambda: dc.optimizers.SGD(learning_rate=0.1),
        lambda p, g, s: np_sgd(p, g, s, 0.1, 0.0, False),
    ),
    "sgd_momentum": (
        lambda: dc.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        lambda p, g, s: np_sgd(p, g, s, 0.1, 0.9, False),
    ),
    "sgd_nesterov": (
        lambda: dc.optimizers.SGD(learning_rate=0.05, momentum=0.8, nesterov=True),
        lambda p, g, s: np_sgd(p, g, s, 0.05, 0.8, True),
    ),
    "adam": (
        lambda: dc.optimizers.Adam(learning_rate=0.01),
        lambda p, g, s: np_adam(p, g, s, 0.01),
    ),
    "adam_betas": (
        lambda: dc.optimizers.Adam(learning_rate=0.02, beta_1=0.8, beta_2=0.99),
        lambda p, g, s: np_adam(p, g, s, 0.02, 0.8, 0.99),
    ),
}


@pytest.mark.parametrize("opt", sorted(OPT_CASES))
@pytest.mark.parametrize(
    "net",
    [
        ([4, 5, 3], ["tanh", "softmax"], "categorical_crossentropy"),
        ([4, 6, 2], ["relu", "linear"], "mse"),
    ],
    ids=["tanh-softmax-cce", "relu-linear-mse"],
)
def test_fit_steps_match_numpy(rng, opt, net):
    sizes, acts, loss = net
    make_opt, np_step = OPT_CASES[opt]
    n = 12
    params = random_params(rng, sizes)
    x = rng.normal(size=(n, sizes[0])).astype(np.float32).astype(np.float64)
    y = make_targets(rng, loss, n, sizes[-1]).astype(np.float32).astype(np.float64)
    model = build_mlp(sizes, acts)
    model.compile(optimizer=make_opt(), loss=loss)
    model.set_weights(params)
    history = model.fit(x, y, batch_size=n, epochs=3, shuffle=False, verbose=0)

    state, expected_losses, p = [], [], params
    for _ in range(3):
        expected_losses.append(np_total_loss(p, acts, loss, x, y))
        p = np_step(p, np_backprop(p, acts, loss, x, y), state)
    for got, want, init in zip(model.get_weights(), p, params):
        assert not np.allclose(want, init)  # the steps did move the weights
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history.history["loss"], expected_losses, rtol=1e-5)
    assert model.optimizer.iterations == 3


def test_fit_multiple_batches_per_epoch_loss_is_weighted_mean(rng):
    sizes, acts, loss = [3, 4, 2], ["tanh", "softmax"], "categorical_crossentropy"
    n, bs = 11, 4  # batches of 4, 4, 3
    params = random_params(rng, sizes)
    x = rng.normal(size=(n, 3)).astype(np.float32).astype(np.float64)
    y = make_targets(rng, loss, n, 2)
    model = build_mlp(sizes, acts)
    model.compile(optimizer=dc.optimizers.SGD(learning_rate=0.3, momentum=0.5), loss=loss)
    model.set_weights(params)
    history = model.fit(x, y, batch_size=bs, epochs=2, shuffle=False, verbose=0)

    state, p, epoch_losses = [], params, []
    for _ in range(2):
        total = 0.0
        for s in range(0, n, bs):
            xb, yb = x[s : s + bs], y[s : s + bs]
            total += np_total_loss(p, acts, loss, xb, yb) * len(xb)
            p = np_sgd(p, np_backprop(p, acts, loss, xb, yb), state, 0.3, 0.5, False)
        epoch_losses.append(total / n)
    np.testing.assert_allclose(history.history["loss"], epoch_losses, rtol=1e-5)
    for got, want in zip(model.get_weights(), p):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert model.optimizer.iterations == 6


def test_train_on_batch_matches_numpy_step(rng):
    sizes, acts, loss = [4, 3, 1], ["tanh", "sigmoid"], "binary_crossentropy"
    params = random_params(rng, sizes)
    x = rng.normal(size=(8, 4))
    y = rng.integers(0, 2, (8, 1)).astype(np.float64)
    model = build_mlp(sizes, acts)
    model.compile(optimizer=dc.optimizers.Adam(learning_rate=0.05), loss=loss)
    model.set_weights(params)
    state, p = [], params
    for _ in range(2):
        got_loss = model.train_on_batch(x, y)
        np.testing.assert_allclose(got_loss, np_total_loss(p, acts, loss, x, y), rtol=1e-5)
        p = np_adam(p, np_backprop(p, acts, loss, x, y), state, 0.05)
    for got, want in zip(model.get_weights(), p):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fit_with_l2_regularizer_matches_numpy(rng):
    sizes, acts, loss = [4, 5, 3], ["relu", "softmax"], "sparse_categorical_crossentropy"
    params = random_params(rng, sizes)
    x = rng.normal(size=(10, 4))
    y = rng.integers(0, 3, 10)
    model = build_mlp(sizes, acts, l2=0.05)
    model.compile(optimizer=dc.optimizers.SGD(learning_rate=0.2), loss=loss)
    model.set_weights(params)
    history = model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    p, state, losses = params, [], []
    for _ in range(2):
        losses.append(np_total_loss(p, acts, loss, x, y, 0.05))
        p = np_sgd(p, np_backprop(p, acts, loss, x, y, 0.05), state, 0.2, 0.0, False)
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-5)
    for got, want in zip(model.get_weights(), p):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- dropout


def _dropout_pair(rng, rate=0.5):
    with_do = dc.Sequential(
        [
            dc.Input(shape=(6,)),
            dc.layers.Dense(8, activation="relu"),
            dc.layers.Dropout(rate),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    without = dc.Sequential(
        [
            dc.Input(shape=(6,)),
            dc.layers.Dense(8, activation="relu"),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    params = random_params(rng, [6, 8, 3])
    with_do.set_weights(params)
    without.set_weights(params)
    for m in (with_do, without):
        m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    return with_do, without, params


def test_dropout_inactive_in_predict_and_evaluate(rng):
    with_do, without, params = _dropout_pair(rng)
    x = rng.normal(size=(40, 6))
    y = np.eye(3)[rng.integers(0, 3, 40)]
    p1 = with_do.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, with_do.predict(x, verbose=0))
    np.testing.assert_allclose(p1, without.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    expected = np_forward(params, ["relu", "softmax"], x)[-1][1]
    np.testing.assert_allclose(p1, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        with_do.evaluate(x, y, verbose=0), without.evaluate(x, y, verbose=0), rtol=1e-6
    )


def test_dropout_active_in_training(rng):
    with_do, without, _ = _dropout_pair(rng)
    x = rng.normal(size=(40, 6))
    y = np.eye(3)[rng.integers(0, 3, 40)]
    l_do, g_do = with_do.gradients(x, y)
    l_no, g_no = without.gradients(x, y)
    assert l_do != pytest.approx(l_no, rel=1e-4)
    assert not all(np.allclose(a, b, rtol=1e-4) for a, b in zip(g_do, g_no))
    # Fit also uses dropout: same start, same data, different weights after one step.
    with_do.fit(x, y, batch_size=40, epochs=1, shuffle=False, verbose=0)
    without.fit(x, y, batch_size=40, epochs=1, shuffle=False, verbose=0)
    assert not np.allclose(with_do.get_weights()[0], without.get_weights()[0], rtol=1e-5)


def test_dropout_rate_zero_is_identity_in_training(rng):
    with_do, without, _ = _dropout_pair(rng, rate=0.0)
    x = rng.normal(size=(10, 6))
    y = np.eye(3)[rng.integers(0, 3, 10)]
    l1, g1 = with_do.gradients(x, y)
    l2, g2 = without.gradients(x, y)
    assert l1 == pytest.approx(l2, rel=1e-6)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_dropout_inactive_in_validation_during_fit(rng):
    with_do, _, _ = _dropout_pair(rng, rate=0.5)
    x, y = rng.normal(size=(30, 6)), np.eye(3)[rng.integers(0, 3, 30)]
    xv, yv = rng.normal(size=(12, 6)), np.eye(3)[rng.integers(0, 3, 12)]
    h = with_do.fit(x, y, epochs=2, validation_data=(xv, yv), verbose=0)
    vl, va = with_do.evaluate(xv, yv, verbose=0)
    assert h.history["val_loss"][-1] == pytest.approx(vl, rel=1e-6)
    assert h.history["val_accuracy"][-1] == pytest.approx(va, abs=1e-6)


def _dropout_mask(model, d):
    """Units kept by the model's Dropout in one training forward (see the test below)."""
    _, (g,) = model.gradients(np.ones((1, d)), np.zeros((1, 1)))
    return g[:, 0] != 0


def _seeded_dropout_model(d, seed, global_seed):
    dc.utils.set_random_seed(global_seed)
    model = dc.Sequential(
        [
            dc.Input(shape=(d,)),
            dc.layers.Dropout(0.5, seed=seed),
            dc.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
        ]
    )
    model.compile(optimizer=dc.optimizers.SGD(learning_rate=1e-30), loss="mse")
    return model


def test_seeded_dropout_follows_its_seed_and_the_step():
    # Keras' Dropout(seed=...): the masks depend on the layer's seed, not on the global
    # random stream; they change from one training step to the next.
    d = 2000
    a = _dropout_mask(_seeded_dropout_model(d, 7, global_seed=1), d)
    b = _dropout_mask(_seeded_dropout_model(d, 7, global_seed=2), d)
    np.testing.assert_array_equal(a, b)
    assert 0.4 < a.mean() < 0.6
    other_seed = _dropout_mask(_seeded_dropout_model(d, 8, global_seed=1), d)
    assert (other_seed != a).mean() > 0.3
    unseeded = [_dropout_mask(_seeded_dropout_model(d, None, global_seed=g), d) for g in (1, 2)]
    assert (unseeded[0] != unseeded[1]).mean() > 0.3
    model = _seeded_dropout_model(d, 7, global_seed=1)
    model.train_on_batch(np.ones((1, d)), np.zeros((1, 1)))  # one step, weights unchanged
    assert (_dropout_mask(model, d) != a).mean() > 0.3
    assert model.layers[0].get_config()["seed"] == 7


@pytest.mark.parametrize("rate", [0.3, 0.6])
def test_dropout_mask_fraction_and_scaling(rate):
    # Dropout -> Dense(1, kernel=1, no bias), x = 1, y = 0, mse:
    #   out = s * kept,  loss = out^2,  dL/dW_j = 2 * out * mask_j * s,  s = 1 / (1 - rate).
    d = 5000
    model = dc.Sequential(
        [
            dc.Input(shape=(d,)),
            dc.layers.Dropout(rate),
            dc.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    s = 1.0 / (1.0 - rate)
    masks = []
    for _ in range(2):
        loss, (g,) = model.gradients(np.ones((1, d)), np.zeros((1, 1)))
        g = g[:, 0].astype(np.float64)
        kept = g != 0
        masks.append(kept)
        assert abs((1 - kept.mean()) - rate) < 0.03, "fraction of dropped units"
        out = s * kept.sum()
        np.testing.assert_allclose(loss, out**2, rtol=1e-4)  # kept units scaled by s
        np.testing.assert_allclose(g[kept], 2 * out * s, rtol=1e-4)
    assert not np.array_equal(masks[0], masks[1]), "a fresh mask is drawn for every step"


# --------------------------------------------------------------------------- structure


def test_summary_prints_names_shapes_and_params(capsys):
    model = dc.Sequential(
        [
            dc.Input(shape=(4,)),
            dc.layers.Dense(3, activation="relu", name="hidden"),
            dc.layers.Dropout(0.2, name="drop"),
            dc.layers.Dense(2, activation="softmax", name="out"),
        ],
        name="my_model",
    )
    model.summary()
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "my_model" in text

    def row(name):
        found = [l for l in lines if l.startswith(name + " ")]
        assert len(found) == 1, text
        return found[0].split()

    assert row("hidden")[1:] == ["(Dense)", "(None,", "3)", "15"]
    assert row("drop")[1:] == ["(Dropout)", "(None,", "3)", "0"]
    assert row("out")[1:] == ["(Dense)", "(None,", "2)", "8"]
    assert "Total params: 23" in text
    assert "Trainable params: 23" in text


def test_summary_3d_and_large_counts(capsys):
    model = dc.Sequential([dc.Input(shape=(7, 100)), dc.layers.Dense(300, name="big")])
    model.summary()
    text = capsys.readouterr().out
    assert "(None, 7, 300)" in text
    assert "30,300" in text


def test_summary_print_fn():
    model = dc.Sequential([dc.Input(shape=(2,)), dc.layers.Dense(1, name="single")])
    out = []
    model.summary(print_fn=out.append)
    assert len(out) == 1 and "single (Dense)" in out[0] and "Total params: 3" in out[0]


def test_count_params_and_weight_shapes():
    model = dc.Sequential(
        [
            dc.Input(shape=(4,)),
            dc.layers.Dense(16, activation="relu"),
            dc.layers.Dropout(0.5),
            dc.layers.Dense(8, use_bias=False),
            dc.layers.Activation("tanh"),
            dc.layers.Dense(3),
        ]
    )
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(4, 16), (16,), (16, 8), (8, 3), (3,)]
    assert model.count_params() == sum(int(np.prod(s)) for s in shapes) == 80 + 128 + 27
    per_layer = [[w.shape for w in l.get_weights()] for l in model.layers]
    assert per_layer == [[(4, 16), (16,)], [], [(16, 8)], [], [(8, 3), (3,)]]
    assert [l.count_params() for l in model.layers] == [80, 0, 128, 0, 27]
    assert model.layers[0].kernel.shape == (4, 16) and model.layers[0].bias.shape == (16,)


def test_get_set_weights_round_trip(rng):
    model = build_mlp([4, 5, 3], ["relu", "softmax"])
    x = rng.normal(size=(6, 4))
    before = model.predict(x, verbose=0)
    new = [rng.normal(size=w.shape) for w in model.get_weights()]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want.astype(np.float32))
    after = model.predict(x, verbose=0)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(
        after,
        np_forward([w.astype(np.float32).astype(np.float64) for w in new], ["relu", "softmax"], x)[
            -1
        ][1],
        rtol=1e-5,
        atol=1e-6,
    )
    # get_weights returns copies.
    w = model.get_weights()
    w[0][...] = 0
    np.testing.assert_array_equal(model.get_weights()[0], new[0].astype(np.float32))
    # Layer-level round trip.
    layer = model.layers[1]
    lw = [np.full((5, 3), 0.25), np.arange(3.0)]
    layer.set_weights(lw)
    np.testing.assert_array_equal(model.get_weights()[2], lw[0])
    np.testing.assert_array_equal(layer.get_weights()[1], lw[1])


def test_set_weights_transfers_predictions_between_models(rng):
    a = build_mlp([3, 4, 2], ["tanh", "sigmoid"])
    b = build_mlp([3, 4, 2], ["tanh", "sigmoid"])
    x = rng.normal(size=(5, 3))
    assert not np.allclose(a.predict(x, verbose=0), b.predict(x, verbose=0))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))


# --------------------------------------------------------------------------- determinism


def _seeded_run(seed):
    dc.utils.set_random_seed(seed)
    data = np.random.default_rng(99)
    x = data.normal(size=(64, 5))
    y = data.integers(0, 3, 64)
    model = dc.Sequential(
        [
            dc.Input(shape=(5,)),
            dc.layers.Dense(16, activation="relu"),
            dc.layers.Dropout(0.3),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=4, shuffle=True, verbose=0)
    return model.get_weights(), history.history["loss"]


def test_same_seed_gives_bit_identical_training():
    w1, h1 = _seeded_run(7)
    w2, h2 = _seeded_run(7)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2
    w3, _ = _seeded_run(8)
    assert not np.array_equal(w1[0], w3[0])


def test_same_seed_same_initial_weights_and_shuffle_changes_result():
    def init(seed):
        dc.utils.set_random_seed(seed)
        return build_mlp([4, 6, 2], ["relu", "softmax"]).get_weights()

    a, b, c = init(3), init(3), init(4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])

    data = np.random.default_rng(5)
    x, y = data.normal(size=(32, 4)), data.integers(0, 2, 32)

    def train(shuffle):
        dc.utils.set_random_seed(11)
        m = build_mlp([4, 6, 2], ["relu", "softmax"])
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        m.fit(x, y, batch_size=4, epochs=2, shuffle=shuffle, verbose=0)
        return m.get_weights()

    s1, s2, ns = train(True), train(True), train(False)
    np.testing.assert_array_equal(s1[0], s2[0])
    assert not np.array_equal(s1[0], ns[0])


# --------------------------------------------------------------------------- input types


def _input_variants(x_int):
    x32 = x_int.astype(np.float32)
    wide = np.zeros((x_int.shape[0], 2 * x_int.shape[1]), dtype=np.float64)
    wide[:, ::2] = x_int
    return {
        "float64": x_int.astype(np.float64),
        "int64": x_int,
        "int32": x_int.astype(np.int32),
        "list": x_int.tolist(),
        "strided_view": wide[:, ::2],
        "fortran": np.asfortranarray(x32),
        "transposed_copy": x32.T.copy().T,
        "reversed_rows": x32[::-1][::-1],
    }


def test_input_types_give_same_predictions(rng):
    model = build_mlp([4, 5, 2], ["tanh", "softmax"])
    x_int = rng.integers(-3, 4, (9, 4))
    ref = model.predict(np.ascontiguousarray(x_int, np.float32), verbose=0)
    for name, x in _input_variants(x_int).items():
        if name == "strided_view":
            assert not x.flags.c_contiguous
        np.testing.assert_allclose(
            model.predict(x, verbose=0), ref, rtol=1e-6, atol=0, err_msg=name
        )


def test_input_types_give_same_training(rng):
    x_int = rng.integers(-3, 4, (12, 4))
    y_int = rng.integers(0, 3, 12)
    init = random_params(rng, [4, 5, 3])

    def train(x, y):
        m = build_mlp([4, 5, 3], ["relu", "softmax"])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.set_weights(init)
        h = m.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        return m.get_weights(), h.history["loss"]

    ref_w, ref_h = train(x_int.astype(np.float32), y_int.astype(np.float32))
    label_variants = [y_int, y_int.tolist(), y_int.astype(np.float64), y_int.astype(np.uint8)]
    for i, (name, x) in enumerate(_input_variants(x_int).items()):
        w, h = train(x, label_variants[i % len(label_variants)])
        np.testing.assert_allclose(h, ref_h, rtol=1e-6, err_msg=name)
        for a, b in zip(w, ref_w):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=name)


def test_one_hot_labels_as_list_and_float64(rng):
    x = rng.normal(size=(6, 3))
    y = np.eye(2)[rng.integers(0, 2, 6)]
    model = build_mlp([3, 2], ["softmax"])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    l1 = model.evaluate(x, y, verbose=0)
    l2 = model.evaluate(x.tolist(), y.astype(np.int64).tolist(), verbose=0)
    l3 = model.evaluate(x.astype(np.float32), y.astype(np.float32), verbose=0)
    assert l1 == pytest.approx(l2, rel=1e-7) and l1 == pytest.approx(l3, rel=1e-7)


# --------------------------------------------------------------------------- metrics


def _set_random(model, rng):
    model.set_weights([rng.normal(0, 1, w.shape) for w in model.get_weights()])


def test_accuracy_resolves_to_binary_for_one_unit(rng):
    model = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    _set_random(model, rng)
    x = rng.normal(size=(50, 3))
    y = rng.integers(0, 2, 50)
    p = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    expected_acc = np.mean((p > 0.5) == y)
    assert 0.0 < expected_acc < 1.0
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc == pytest.approx(expected_acc, abs=1e-6)
    expected_loss = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    loss2, acc2 = model.evaluate(x, y[:, None], verbose=0)  # (n, 1) labels too
    assert acc2 == pytest.approx(expected_acc, abs=1e-6) and loss2 == pytest.approx(loss)


def test_accuracy_binary_with_mse_loss(rng):
    model = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="mse", metrics=["acc"])
    _set_random(model, rng)
    x = rng.normal(size=(40, 3))
    y = rng.integers(0, 2, (40, 1)).astype(np.float64)
    p = model.predict(x, verbose=0).astype(np.float64)
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc == pytest.approx(np.mean((p > 0.5) == y), abs=1e-6)
    assert loss == pytest.approx(np.mean((p - y) ** 2), rel=1e-5)


def test_accuracy_resolves_to_sparse_for_integer_labels(rng):
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _set_random(model, rng)
    x = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, 60)
    p = model.predict(x, verbose=0)
    expected = np.mean(p.argmax(axis=1) == y)
    assert 0.0 < expected < 1.0
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc == pytest.approx(expected, abs=1e-6)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(60), y].astype(np.float64))), rel=1e-5)
    _, acc_col = model.evaluate(x, y[:, None], verbose=0)
    assert acc_col == pytest.approx(expected, abs=1e-6)


def test_accuracy_resolves_to_categorical_for_one_hot(rng):
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    _set_random(model, rng)
    x = rng.normal(size=(60, 4))
    labels = rng.integers(0, 3, 60)
    y = dc.utils.to_categorical(labels, 3)
    p = model.predict(x, verbose=0)
    expected = np.mean(p.argmax(axis=1) == labels)
    assert 0.0 < expected < 1.0
    _, acc = model.evaluate(x, y, verbose=0)
    assert acc == pytest.approx(expected, abs=1e-6)
    # Also with mse as the loss: "accuracy" still follows the labels (one-hot -> categorical).
    model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])
    _, acc2 = model.evaluate(x, y, verbose=0)
    assert acc2 == pytest.approx(expected, abs=1e-6)


def test_explicit_accuracy_metric_names(rng):
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3, activation="softmax")])
    model.compile(
        optimizer="adam",
        loss="categorical_crossentropy",
        metrics=["categorical_accuracy", dc.metrics.categorical_accuracy],
    )
    _set_random(model, rng)
    x = rng.normal(size=(30, 4))
    labels = rng.integers(0, 3, 30)
    expected = np.mean(model.predict(x, verbose=0).argmax(1) == labels)
    _, a1, a2 = model.evaluate(x, np.eye(3)[labels], verbose=0)
    assert a1 == pytest.approx(expected, abs=1e-6) and a2 == pytest.approx(expected, abs=1e-6)
    assert model.metrics_names == ["loss", "categorical_accuracy", "categorical_accuracy"]


def test_mse_mae_metrics(rng):
    model = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mae", metrics=["mse", "mae"])
    _set_random(model, rng)
    x = rng.normal(size=(25, 3))
    y = rng.normal(size=(25, 2))
    p = model.predict(x, verbose=0).astype(np.float64)
    loss, mse, mae = model.evaluate(x, y, verbose=0, batch_size=7)
    assert mse == pytest.approx(np.mean((p - y) ** 2), rel=1e-5)
    assert mae == pytest.approx(np.mean(np.abs(p - y)), rel=1e-5)
    assert loss == pytest.approx(mae, rel=1e-6)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "mse", "mae"}


def test_training_metric_uses_predictions_before_update(rng):
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3, activation="softmax")])
    model.compile(
        optimizer=dc.optimizers.SGD(learning_rate=1.0),
        loss="categorical_crossentropy",
        metrics=["accuracy", "mse"],
    )
    _set_random(model, rng)
    x = rng.normal(size=(40, 4))
    labels = rng.integers(0, 3, 40)
    y = np.eye(3)[labels]
    p = model.predict(x, verbose=0).astype(np.float64)
    h = model.fit(x, y, batch_size=40, epochs=1, shuffle=False, verbose=0).history
    assert h["accuracy"][0] == pytest.approx(np.mean(p.argmax(1) == labels), abs=1e-6)
    assert h["mse"][0] == pytest.approx(np.mean((p - y) ** 2), rel=1e-5)


def test_history_keys_and_validation_split(rng):
    x = rng.normal(size=(40, 4))
    y = rng.integers(0, 3, 40)
    init = random_params(rng, [4, 5, 3])

    def model():
        m = build_mlp([4, 5, 3], ["relu", "softmax"])
        m.compile(
            optimizer=dc.optimizers.SGD(learning_rate=0.1),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        m.set_weights(init)
        return m

    m = model()
    h = m.fit(x, y, batch_size=30, epochs=3, shuffle=False, verbose=0)
    assert set(h.history) == {"loss", "accuracy"}
    assert h.epoch == [0, 1, 2]

    m = model()
    h = m.fit(x, y, batch_size=30, epochs=3, validation_split=0.25, shuffle=False, verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in h.history.values())
    assert m.history is h
    # The validation set is the last 25% of the samples, evaluated with the epoch-end weights.
    vl, va = m.evaluate(x[30:], y[30:], verbose=0)
    assert h.history["val_loss"][-1] == pytest.approx(vl, rel=1e-6)
    assert h.history["val_accuracy"][-1] == pytest.approx(va, abs=1e-6)
    # With shuffle=True the validation slice is still the last 25% (taken before shuffling).
    m2 = model()
    h2 = m2.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, shuffle=True, verbose=0)
    assert h2.history["val_loss"][-1] == pytest.approx(
        m2.evaluate(x[30:], y[30:], verbose=0)[0], rel=1e-6
    )
    # ... and training used only the first 75%.
    ref = model()
    ref.fit(x[:30], y[:30], batch_size=30, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_history_with_validation_data(rng):
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    xv, yv = rng.normal(size=(11, 4)), rng.integers(0, 3, 11)
    m = build_mlp([4, 5, 3], ["relu", "softmax"])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x, y, epochs=2, validation_data=(xv, yv), verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    vl, va = m.evaluate(xv, yv, verbose=0)
    assert h.history["val_loss"][-1] == pytest.approx(vl, rel=1e-6)
    assert h.history["val_accuracy"][-1] == pytest.approx(va, abs=1e-6)
    assert h.history["val_loss"][0] != pytest.approx(h.history["val_loss"][1], rel=1e-9)


def test_fit_verbose_prints_epochs(rng, capsys):
    m = build_mlp([2, 1], ["sigmoid"])
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    m.fit(rng.normal(size=(8, 2)), rng.integers(0, 2, 8), epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss" in out and "accuracy" in out
    m.fit(rng.normal(size=(8, 2)), rng.integers(0, 2, 8), epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- callbacks


class WeightRecorder(Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def _linear_ramp_model():
    # w_{t+1} = w_t + 0.2 (1 - w_t) from w=0: 0.2, 0.36, 0.488, 0.5904, 0.6723, ...
    m = dc.Sequential(
        [dc.Input(shape=(1,)), dc.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    m.compile(optimizer=dc.optimizers.SGD(learning_rate=0.1), loss="mse")
    return m


def test_early_stopping_restores_best_when_epochs_run_out():
    m = _linear_ramp_model()
    x, y = np.ones((8, 1)), np.ones((8, 1))
    xv, yv = np.ones((4, 1)), np.full((4, 1), 0.5)  # val loss (w - 0.5)^2 is best at w=0.488
    rec = WeightRecorder()
    es = EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    h = m.fit(
        x,
        y,
        batch_size=8,
        epochs=6,
        validation_data=(xv, yv),
        callbacks=[rec, es],
        shuffle=False,
        verbose=0,
    )
    assert len(h.history["loss"]) == 6  # ran out of epochs, no early stop
    ws = [w[0][0, 0] for w in rec.weights]
    np.testing.assert_allclose(ws, [0.2, 0.36, 0.488, 0.5904, 0.67232, 0.737856], rtol=1e-5)
    best = int(np.argmin(h.history["val_loss"]))
    assert best == 2
    assert es.best_epoch == 2
    for got, want in zip(m.get_weights(), rec.weights[best]):
        np.testing.assert_array_equal(got, want)


def test_early_stopping_without_restore_keeps_last_weights():
    m = _linear_ramp_model()
    rec = WeightRecorder()
    es = EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=False)
    m.fit(
        np.ones((8, 1)),
        np.ones((8, 1)),
        batch_size=8,
        epochs=6,
        validation_data=(np.ones((4, 1)), np.full((4, 1), 0.5)),
        callbacks=[rec, es],
        shuffle=False,
        verbose=0,
    )
    np.testing.assert_array_equal(m.get_weights()[0], rec.weights[-1][0])


@pytest.mark.parametrize("patience,expected_epochs", [(0, 2), (1, 2), (3, 4)])
def test_early_stopping_stops_on_plateau(rng, patience, expected_epochs):
    # min_delta larger than any possible change: no epoch after the first counts as improvement.
    m = build_mlp([3, 4, 2], ["tanh", "softmax"])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    es = EarlyStopping(monitor="loss", patience=patience, min_delta=100.0)
    h = m.fit(
        rng.normal(size=(16, 3)), rng.integers(0, 2, 16), epochs=20, callbacks=[es], verbose=0
    )
    assert len(h.history["loss"]) == expected_epochs
    assert es.stopped_epoch == expected_epochs - 1
    assert m.stop_training


def test_early_stopping_stops_when_loss_diverges_and_restores(rng):
    # A huge learning rate makes the loss go up after the first epoch.
    m = _linear_ramp_model()
    m.compile(optimizer=dc.optimizers.SGD(learning_rate=5.0), loss="mse")
    rec = WeightRecorder()
    es = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    h = m.fit(
        np.ones((4, 1)), np.ones((4, 1)), batch_size=4, epochs=50, callbacks=[rec, es], verbose=0
    )
    losses = h.history["loss"]
    assert len(losses) == 2 and losses[1] > losses[0]
    np.testing.assert_array_equal(m.get_weights()[0], rec.weights[0][0])


def test_early_stopping_max_mode_for_accuracy(rng):
    es = EarlyStopping(monitor="val_accuracy")
    assert es.mode == "max"
    assert EarlyStopping(monitor="val_loss").mode == "min"


class BatchCounter(Callback):
    def __init__(self):
        super().__init__()
        self.begin, self.end, self.epochs, self.losses = [], [], [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.begin.append(batch)

    def on_train_batch_end(self, batch, logs=None):
        self.end.append(batch)
        self.losses.append(logs["loss"])

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_batch_hooks_called_once_per_batch(rng):
    x, y = rng.normal(size=(10, 3)), rng.integers(0, 2, 10)
    init = random_params(rng, [3, 4, 2])

    def run(callbacks):
        m = build_mlp([3, 4, 2], ["tanh", "softmax"])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.set_weights(init)
        h = m.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
        return m, h

    cb = BatchCounter()
    m, h = run([cb])
    assert cb.end == [0, 1, 2] * 3
    assert cb.begin == [0, 1, 2] * 3
    assert cb.epochs == [0, 1, 2]
    assert all(np.isfinite(cb.losses))
    # Batch logs hold the epoch's running values (Keras): the last one is the epoch's.
    for e in range(3):
        assert h.history["loss"][e] == pytest.approx(cb.losses[3 * e + 2], rel=1e-12)
    # Training with batch hooks gives the same result as without.
    m2, h2 = run([])
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h.history["loss"], h2.history["loss"], rtol=1e-6)


def test_callback_can_stop_training_and_sees_model(rng):
    class StopAfterTwo(Callback):
        def on_epoch_end(self, epoch, logs=None):
            assert isinstance(self.model, dc.Sequential)
            assert self.params["epochs"] == 10
            if epoch == 1:
                self.model.stop_training = True

    m = build_mlp([2, 1], ["sigmoid"])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    h = m.fit(
        rng.normal(size=(8, 2)),
        rng.integers(0, 2, 8),
        epochs=10,
        callbacks=[StopAfterTwo()],
        verbose=0,
    )
    assert len(h.history["loss"]) == 2


def test_model_with_an_input_is_built_at_once_and_add_keeps_earlier_weights():
    layers = lambda: [dc.layers.Dense(8, activation="relu"), dc.layers.Dense(3)]  # noqa: E731
    dc.utils.set_random_seed(7)
    listed = dc.Sequential([dc.Input(shape=(4,)), *layers()])
    assert listed.built
    dc.utils.set_random_seed(7)
    added = dc.Sequential([dc.Input(shape=(4,))])
    for layer in layers():
        added.add(layer)
    dc.utils.set_random_seed(8)
    dc.utils.rng().random(3)  # later draws do not touch built models
    for a, b in zip(listed.get_weights(), added.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------- calling a layer
def test_calling_a_layer_builds_it_and_keeps_its_weights(rng):
    x = rng.normal(size=(5, 4)).astype(np.float32)
    dense = dc.layers.Dense(3, activation="relu")
    assert dense.weights == []
    y = dense(x)
    W, b = dense.get_weights()
    assert W.shape == (4, 3) and b.shape == (3,)
    np.testing.assert_allclose(y, np.maximum(x.astype(np.float64) @ W + b, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(dense(x), y)  # same weights on the next call
    # Joining a model, the layer brings its weights (Keras: a built layer keeps them).
    model = dc.Sequential([dc.Input(shape=(4,)), dense, dc.layers.Dense(2)])
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], W)
    np.testing.assert_array_equal(model.layers[0].get_weights()[1], b)


def _trained_classifier(rng, rows, activation):
    """A 4-8-3 classifier (logits) trained a few epochs on random data, and that data."""
    x = rng.normal(size=(rows, 4)).astype(np.float32)
    model = dc.Sequential(
        [dc.Input(shape=(4,)), dc.layers.Dense(8, activation=activation), dc.layers.Dense(3)]
    )
    model.compile(optimizer="adam", loss=dc.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, rng.integers(0, 3, rows), epochs=2, verbose=0)
    return model, x


def test_a_layer_of_a_model_runs_on_the_models_current_weights(rng):
    model, x = _trained_classifier(rng, 16, "tanh")
    first, second = model.layers
    W1, b1 = (w.astype(np.float64) for w in first.get_weights())
    hidden = first(x)
    np.testing.assert_allclose(hidden, np.tanh(x @ W1 + b1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second(hidden), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    conv = dc.layers.Conv2D(2, 3, padding="same")
    assert conv(np.ones((2, 5, 5, 1))).shape == (2, 5, 5, 2)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda l: l([dc.Input(shape=(4,)), dc.Input(shape=(4,))]), ValueError, "one tensor"),
        (lambda l: l(3.0), TypeError, "received float"),
        (lambda l: l(np.ones(4)), ValueError, "Received shape (4,)"),
    ],
)
def test_calling_a_layer_on_bad_input(call, error, words):
    with pytest.raises(error, match=re.escape(words)):
        call(dc.layers.Dense(3, name="probe"))


def test_calling_layers_and_models_with_training():
    x = np.ones((400, 50), np.float32)
    drop = dc.layers.Dropout(0.5)
    np.testing.assert_array_equal(drop(x), x)  # (Keras' default for Dropout: inference)
    y = drop(x, training=True)
    assert set(np.unique(y)) == {0.0, 2.0} and 0.45 < (y == 0).mean() < 0.55
    model = dc.Sequential([dc.Input((50,)), dc.layers.Dropout(0.5), dc.layers.Dense(2)])
    np.testing.assert_array_equal(model(x), model.predict(x, verbose=0))
    assert not np.array_equal(model(x, training=True), model(x))
    bn = dc.Sequential([dc.Input((50,)), dc.layers.BatchNormalization(momentum=0.5)])
    moving = bn.layers[0].get_weights()[2].copy()
    bn(x * 3 + 1, training=True)  # (Keras' BatchNormalization updates its moving statistics)
    np.testing.assert_allclose(bn.layers[0].get_weights()[2], 0.5 * moving + 0.5 * 4.0, rtol=1e-6)


# ------------------------------------------------------------ activation layer classes
ACT_LAYERS = {
    "ReLU": (lambda: dc.layers.ReLU(), lambda z: np.maximum(z, 0), lambda z: z > 0),
    "LeakyReLU": (
        lambda: dc.layers.LeakyReLU(negative_slope=0.1),
        lambda z: np.where(z > 0, z, 0.1 * z),
        lambda z: np.where(z > 0, 1.0, 0.1),
    ),
    "LeakyReLU default": (
        lambda: dc.layers.LeakyReLU(),
        lambda z: np.where(z > 0, z, 0.3 * z),
        lambda z: np.where(z > 0, 1.0, 0.3),
    ),
    "ELU": (
        lambda: dc.layers.ELU(alpha=0.5),
        lambda z: np.where(z > 0, z, 0.5 * np.expm1(z)),
        lambda z: np.where(z > 0, 1.0, 0.5 * np.exp(z)),
    ),
}


@pytest.mark.parametrize("name", sorted(ACT_LAYERS))
def test_activation_layer_classes_forward_and_gradient(name, rng, tmp_path):
    make, f, df = ACT_LAYERS[name]
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(5), make()])
    model.compile(optimizer="sgd", loss="mse")
    x = rng.normal(size=(6, 4)).astype(np.float32)
    t = rng.normal(size=(6, 5)).astype(np.float32)
    W, b = (w.astype(np.float64) for w in model.get_weights())
    z = x.astype(np.float64) @ W + b
    np.testing.assert_allclose(model.predict(x, verbose=0), f(z), rtol=1e-5, atol=1e-6)
    # mse over all 30 values: dL/dz = 2 (f(z) - t) / 30 * f'(z)
    dz = 2.0 * (f(z) - t) / z.size * df(z)
    loss, (gW, gb) = model.gradients(x, t)
    np.testing.assert_allclose(loss, np.mean((f(z) - t) ** 2), rtol=1e-5)
    np.testing.assert_allclose(gW, x.T.astype(np.float64) @ dz, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gb, dz.sum(0), rtol=1e-4, atol=1e-6)
    model.save(tmp_path / "m")
    loaded = dc.models.load_model(tmp_path / "m")
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_softmax_layer_class(rng):
    x = rng.normal(size=(3, 5)).astype(np.float32)
    e = np.exp(x.astype(np.float64) - x.max(1, keepdims=True))
    np.testing.assert_allclose(dc.layers.Softmax()(x), e / e.sum(1, keepdims=True), rtol=1e-5)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: dc.layers.LeakyReLU(negative_slope=-1), "negative_slope=-1"),
        (lambda: dc.layers.LeakyReLU(negative_slope="0.1"), "negative_slope='0.1'"),
        (lambda: dc.layers.ELU(alpha=float("nan")), "alpha=nan"),
        (lambda: dc.layers.ReLU(max_value=6), "max_value=6"),
        (lambda: dc.layers.Softmax(axis=1), "axis=1"),
    ],
)
def test_activation_layer_classes_reject_bad_arguments(make, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        make()


def test_a_layer_given_to_a_second_model_is_shared_as_in_keras(rng, tmp_path):
    # Keras' transfer pattern: a new model built from a trained model's layers shares them
    # (Keras shares the variables): training it changes the first model's layer too.
    a, x = _trained_classifier(rng, 32, "relu")
    before = a.get_weights()
    b = dc.Sequential([dc.Input(shape=(4,)), a.layers[0], dc.layers.Dense(2)])
    np.testing.assert_array_equal(b.get_weights()[0], before[0])
    b.compile(optimizer="sgd", loss="mse")
    b.fit(x, rng.normal(size=(32, 2)), epochs=2, verbose=0)
    assert not np.array_equal(b.get_weights()[0], before[0])
    trained = a.get_weights()
    np.testing.assert_array_equal(trained[0], b.get_weights()[0])
    for got, want in zip(trained[2:], before[2:]):  # a's other layers are its own
        np.testing.assert_array_equal(got, want)
    a.save(tmp_path / "a")
    np.testing.assert_array_equal(
        dc.models.load_model(tmp_path / "a").predict(x, verbose=0), a.predict(x, verbose=0)
    )
    a.add(dc.layers.Dense(1))  # rebuilding keeps the model's weights
    for got, want in zip(a.get_weights(), trained):
        np.testing.assert_array_equal(got, want)


def test_trainable_weights_leave_out_moving_statistics():
    model = dc.Sequential(
        [dc.Input(shape=(4,)), dc.layers.Dense(3), dc.layers.BatchNormalization()]
    )
    assert [w.shape for w in model.weights] == [(4, 3), (3,), (3,), (3,), (3,), (3,)]
    assert [w.shape for w in model.trainable_weights] == [(4, 3), (3,), (3,), (3,)]
    model.compile("sgd", "mse")  # one gradient per trainable weight
    _, grads = model.gradients(np.ones((2, 4)), np.zeros((2, 3)))
    assert [g.shape for g in grads] == [w.shape for w in model.trainable_weights]
