import math

import numpy as np
import pytest

import deepcore as dc

S = dc.schedules


def ref_exponential(lr0, steps, rate, staircase, t):
    p = t / steps
    return lr0 * rate ** (math.floor(p) if staircase else p)


def ref_piecewise(boundaries, values, t):
    for b, v in zip(boundaries, values):
        if t <= b:
            return v
    return values[-1]


def ref_cosine(lr0, steps, alpha, target, warm, t):
    if target is not None:
        if t < warm:
            return lr0 + (target - lr0) * t / warm
        lr0, t = target, t - warm
    frac = min(t, steps) / steps
    return lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * frac)) + alpha)


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay(staircase):
    s = S.ExponentialDecay(0.1, 7, 0.8, staircase=staircase)
    for t in range(40):
        assert s(t) == pytest.approx(ref_exponential(0.1, 7, 0.8, staircase, t), rel=1e-12)


def test_piecewise_constant_decay():
    s = S.PiecewiseConstantDecay([3, 8], [1.0, 0.5, 0.25])
    assert [s(t) for t in range(12)] == [
        ref_piecewise([3, 8], [1.0, 0.5, 0.25], t) for t in range(12)
    ]
    with pytest.raises(ValueError, match="len\\(values\\)"):
        S.PiecewiseConstantDecay([1, 2], [1.0])


@pytest.mark.parametrize("target,warm,alpha", [(None, 0, 0.0), (None, 0, 0.1), (0.2, 5, 0.0)])
def test_cosine_decay(target, warm, alpha):
    s = S.CosineDecay(0.05, 20, alpha=alpha, warmup_target=target, warmup_steps=warm)
    for t in range(40):
        assert s(t) == pytest.approx(
            ref_cosine(0.05, 20, alpha, target, warm, t), rel=1e-12, abs=1e-15
        )


def test_schedule_drives_each_training_step():
    """SGD on y = w.x with a schedule: weights equal a NumPy loop using schedule(t) at step t."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 1)).astype(np.float32)
    sched = S.ExponentialDecay(0.1, 2, 0.5)
    model = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=dc.optimizers.SGD(learning_rate=sched), loss="mse")
    w = model.get_weights()[0].astype(np.float64)
    model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    t = 0
    for _ in range(2):
        for s in range(0, 8, 2):
            xb, yb = x[s : s + 2].astype(np.float64), y[s : s + 2].astype(np.float64)
            grad = xb.T @ (2 * (xb @ w - yb) / 2)
            w -= sched(t) * grad
            t += 1
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-5, atol=1e-6)
    assert model.optimizer.iterations == 8
    assert model.optimizer.learning_rate == pytest.approx(sched(8))


def test_setting_a_fixed_rate_replaces_the_schedule():
    model = dc.Sequential([dc.Input(shape=(2,)), dc.layers.Dense(1)])
    opt = dc.optimizers.Adam(learning_rate=S.CosineDecay(0.01, 10))
    model.compile(optimizer=opt, loss="mse")
    opt.learning_rate = 0.003
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=3, verbose=0)
    assert opt.learning_rate == pytest.approx(0.003)
