"""A training step's update ops through the backend harness (_core.device_*), on the CPU and
the guarded backend, against float64 NumPy references.

Optimizer updates (every rule, with and without weight decay), L1/L2 penalties, clipping by
value and by norm, multiply, broadcast multiply, dropout (whose mask is checked bit for bit
against a NumPy version of the counter-based stream), row gathers and the loss total.
tests/test_cuda_update.py runs the same functions on the CUDA backend and compares it with the
CPU.
"""

import numpy as np
import pytest
from test_optimizers import CONFIGS, REFERENCE, engine_hyper, initial_slots

import deepcore as dc
from deepcore import _core

O = dc.optimizers
CPU, GUARDED = 0, 2
DEVICES = [CPU, GUARDED]
STEPS = 5
# one value, odd sizes, a matrix, a large vector (several threads' parts on the CPU)
SHAPES = [(1,), (7,), (33, 17), (100003,)]

OPTIMIZERS = dict(
    CONFIGS,
    adam_weight_decay=lambda: O.Adam(learning_rate=0.01, weight_decay=0.1),
    rmsprop_weight_decay=lambda: O.RMSprop(learning_rate=0.01, momentum=0.5, weight_decay=0.05),
    adagrad_weight_decay=lambda: O.Adagrad(learning_rate=0.1, weight_decay=0.02),
    sgd_nesterov_weight_decay=lambda: O.SGD(
        learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.01
    ),
)


def assert_close(got, want, rtol):
    """|got - want| <= rtol (|want| + 0.1 max|want|): relative, with a floor for values near
    0 (where float32 rounding of a sum of larger terms is a large relative error)."""
    want = np.asarray(want, np.float64)
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape
    floor = 0.1 * max(np.abs(want).max(initial=0.0), 1e-30)
    bad = np.abs(got - want) > rtol * (np.abs(want) + floor)
    assert not bad.any(), f"{bad.sum()} of {bad.size} differ; first at {np.argwhere(bad)[0]}"


# ------------------------------------------------------------------------ optimizers
def run_device(device, opt, w0, grads, lr):
    """STEPS updates through the harness, the slots carried from call to call."""
    spec = opt.spec()
    w = w0.astype(np.float32)
    slots = [s.astype(np.float32) for s in initial_slots(spec, w0)]
    for t, g in enumerate(grads, start=1):
        w, slots = _core.device_optimizer_update(device, spec, lr, t, w, g, slots)
    return w, slots


def kernel_hyper(opt, lr):
    """The hyper-parameters as the float32 kernels use them: rounded to float32 (1 - beta and
    1 - rho are then exact in float32 too), the learning rate the float32 one."""
    hp = engine_hyper(opt)
    for k in ("momentum", "beta_1", "beta_2", "epsilon", "rho", "weight_decay"):
        hp[k] = float(np.float32(hp[k]))
    hp["learning_rate"] = float(lr)
    return hp


def ref_adam(w, g, state, t, hp, beta_1, beta_2):
    """test_optimizers' Adam, with the bias correction from the exact (double) betas."""
    lr, eps = hp["learning_rate"], hp["epsilon"]
    if hp["weight_decay"]:
        w = w - w * hp["weight_decay"] * lr
    m, v = state
    alpha = lr * np.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
    m = m + (g - m) * (1.0 - hp["beta_1"])
    v = v + (g * g - v) * (1.0 - hp["beta_2"])
    return w - alpha * m / (np.sqrt(v) + eps), [m, v]


def run_reference(opt, w0, grads, lr):
    """The float64 references of test_optimizers, with the kernels' hyper-parameters."""
    hp = kernel_hyper(opt, lr)
    spec = opt.spec()
    state = initial_slots(spec, w0)
    w = w0.astype(np.float64)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if isinstance(opt, O.Adam):  # AdamW too
            w, state = ref_adam(w, g, state, t, hp, spec.beta_1, spec.beta_2)
        else:
            w, state = REFERENCE[type(opt)](w, g, state, t, hp)
    return w, state


def problem(rng, shape):
    w0 = rng.standard_normal(shape).astype(np.float32)
    # one step of small gradients: the slots' averages move through several scales
    grads = [
        (rng.standard_normal(shape) * (1e-3 if t == 2 else 1.0)).astype(np.float32)
        for t in range(STEPS)
    ]
    return w0, grads


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_update(rng, device, shape, name):
    opt = OPTIMIZERS[name]()
    lr = np.float32(opt.learning_rate)
    w0, grads = problem(rng, shape)
    w, slots = run_device(device, opt, w0, grads, lr)
    w_ref, state_ref = run_reference(opt, w0, grads, lr)
    assert w.dtype == np.float32 and w.shape == shape
    assert np.abs(w_ref - w0).max() > 1e-4  # the weights really moved
    assert_close(w, w_ref, 1e-5)
    assert len(slots) == len(state_ref)
    for s, s_ref in zip(slots, state_ref):
        assert s.shape == shape
        assert_close(s, s_ref, 1e-5)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_update_is_the_cpu_kernel(rng, name):
    # the backend op (lr and step read from a StepValues in device memory, the work split
    # over threads) gives the bits of the kernel _core.optimizer_step runs in one piece
    opt = OPTIMIZERS[name]()
    spec = opt.spec()
    lr = np.float32(opt.learning_rate)
    w0, grads = problem(rng, (70001,))
    w_direct = w0.copy()
    slots_direct = [s.astype(np.float32) for s in initial_slots(spec, w0)]
    for t, g in enumerate(grads, start=1):
        _core.optimizer_step(spec, float(lr), t, w_direct, g, slots_direct)
    for device in DEVICES:
        w, slots = run_device(device, opt, w0, grads, lr)
        np.testing.assert_array_equal(w, w_direct)
        for s, s_direct in zip(slots, slots_direct):
            np.testing.assert_array_equal(s, s_direct)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_bias_correction_follows_the_step(rng, name):
    # the same state and gradient at steps 1 and 1000: alpha = lr sqrt(1 - b2^t) / (1 - b1^t)
    opt = OPTIMIZERS[name]()
    spec = opt.spec()
    w0 = rng.standard_normal(9).astype(np.float32)
    g = rng.standard_normal(9).astype(np.float32)
    lr = np.float32(opt.learning_rate)
    for t in (1, 1000):
        slots = [s.astype(np.float32) for s in initial_slots(spec, w0)]
        w, _ = _core.device_optimizer_update(GUARDED, spec, lr, t, w0, g, slots)
        w_ref, _ = ref_adam(
            w0.astype(np.float64),
            g.astype(np.float64),
            initial_slots(spec, w0),
            t,
            kernel_hyper(opt, lr),
            spec.beta_1,
            spec.beta_2,
        )
        assert_close(w, w_ref, 1e-6)


def test_optimizer_update_of_nothing():
    spec = O.Adam().spec()
    e = np.zeros(0, np.float32)
    w, slots = _core.device_optimizer_update(GUARDED, spec, 0.1, 1, e, e, [e, e])
    assert w.shape == (0,) and [s.shape for s in slots] == [(0,), (0,)]


def test_optimizer_update_checks_its_arguments():
    spec = O.Adam().spec()
    w = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="same size"):
        _core.device_optimizer_update(CPU, spec, 0.1, 1, w, np.zeros(3, np.float32), [w, w])
    with pytest.raises(ValueError, match="needs 2 slot arrays"):
        _core.device_optimizer_update(CPU, spec, 0.1, 1, w, w, [w])
    with pytest.raises(ValueError, match="slots and w"):
        _core.device_optimizer_update(CPU, spec, 0.1, 1, w, w, [w, np.zeros(5, np.float32)])
    with pytest.raises(ValueError, match="step must be >= 1"):
        _core.device_optimizer_update(CPU, spec, 0.1, 0, w, w, [w, w])
    with pytest.raises(ValueError, match="unknown device"):
        _core.device_optimizer_update(7, spec, 0.1, 1, w, w, [w, w])


# ------------------------------------------------------------ penalties and clipping
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.003), (0.02, 0.5)])
def test_l1l2(rng, device, shape, l1, l2):
    w = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    l1_, l2_ = float(np.float32(l1)), float(np.float32(l2))
    w64 = w.astype(np.float64)
    penalty = l1_ * np.abs(w64) + l2_ * w64 * w64
    acc, g_out = _core.device_l1l2(device, w, g, l1, l2, 0.75)
    np.testing.assert_allclose(acc, 0.75 + penalty.sum(), rtol=1e-12)
    assert_close(g_out, g + l1_ * np.sign(w64) + 2 * l2_ * w64, 1e-6)
    acc, none = _core.device_l1l2(device, w, None, l1, l2)
    assert none is None
    np.testing.assert_allclose(acc, penalty.sum(), rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
def test_clip_by_value(rng, device, shape):
    g = (rng.standard_normal(shape) * 2).astype(np.float32)
    g.flat[0] = np.nan  # stays NaN, as std::min(std::max(NaN, -v), v)
    v = np.float32(0.7)
    np.testing.assert_array_equal(_core.device_clip_by_value(device, g, v), np.clip(g, -v, v))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fraction", [0.5, 2.0])  # max_norm below and above the norm
def test_clip_by_norm(rng, device, shape, fraction):
    g = rng.standard_normal(shape).astype(np.float32)
    norm = np.sqrt(np.sum(g.astype(np.float64) ** 2))
    max_norm = fraction * norm
    got = _core.device_clip_by_norm(device, g, max_norm)
    if fraction > 1:
        np.testing.assert_array_equal(got, g)
    else:
        want = g.astype(np.float64) * (max_norm / norm)
        assert_close(got, want, 1e-6)
        assert abs(np.sqrt(np.sum(got.astype(np.float64) ** 2)) - max_norm) < 1e-5 * max_norm


def test_clip_checks_its_arguments():
    g = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="max_norm"):
        _core.device_clip_by_norm(CPU, g, 0.0)
    with pytest.raises(ValueError, match="max_norm"):
        _core.device_clip_by_norm(CPU, g, float("nan"))
    with pytest.raises(ValueError, match="v must be"):
        _core.device_clip_by_value(CPU, g, -1.0)
    with pytest.raises(ValueError, match="same size"):
        _core.device_l1l2(CPU, g, np.ones(2, np.float32), 0.1, 0.1)


# ------------------------------------------------------------- multiply and dropout
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
def test_multiply(rng, device, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(_core.device_multiply(device, a, b), a * b)
    with pytest.raises(ValueError, match="same size"):
        _core.device_multiply(device, a, np.ones(a.size + 1, np.float32))


# (n0, n1, n2), a's strides, m's strides: a mask (rows, width) over every step of a
# sequence, the same mask read at a gate's offset, a strided state against per-gate masks,
# one value, and one large enough for several threads' parts.
BROADCAST_CASES = [
    ((3, 5, 4), (20, 4), (4, 0)),
    ((2, 7, 3), (21, 3), (12, 0)),
    ((4, 3, 5), (35, 0), (15, 5)),
    ((1, 1, 1), (1, 1), (1, 1)),
    ((1, 1, 1), (0, 0), (0, 0)),
    ((257, 33, 13), (33 * 13, 13), (13, 0)),
]


def broadcast_reference(a, m, shape, a_strides, m_strides, out0=None):
    """out[i, j, k] = a[i a0 + j a1 + k] * m[i m0 + j m1 + k] (+ out0), in float32."""
    i, j, k = np.indices(shape)
    out = a[i * a_strides[0] + j * a_strides[1] + k] * m[i * m_strides[0] + j * m_strides[1] + k]
    return out if out0 is None else out0 + out


def reach(shape, strides):
    """The values an operand read with `strides` over `shape` needs."""
    return (shape[0] - 1) * strides[0] + (shape[1] - 1) * strides[1] + shape[2]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", BROADCAST_CASES, ids=str)
@pytest.mark.parametrize("accumulate", [False, True])
def test_broadcast_multiply(rng, device, case, accumulate):
    shape, a_strides, m_strides = case
    a = rng.standard_normal(reach(shape, a_strides)).astype(np.float32)
    m = rng.standard_normal(reach(shape, m_strides)).astype(np.float32)
    out0 = rng.standard_normal(shape).astype(np.float32) if accumulate else None
    got = _core.device_broadcast_multiply(device, a, m, shape, a_strides, m_strides, out0)
    want = broadcast_reference(a, m, shape, a_strides, m_strides, out0)
    if accumulate:  # out0 + a * m may be one fused multiply-add
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


def test_broadcast_multiply_checks_its_arguments():
    a = np.ones(12, np.float32)
    with pytest.raises(ValueError, match="past the end"):
        _core.device_broadcast_multiply(CPU, a, a, (2, 3, 4), (12, 4), (0, 0))
    with pytest.raises(ValueError, match="3 sizes"):
        _core.device_broadcast_multiply(CPU, a, a, (2, 6), (6, 0), (6, 0))
    with pytest.raises(ValueError, match=">= 0"):
        _core.device_broadcast_multiply(CPU, a, a, (2, 3, 2), (-1, 2), (6, 2))
    with pytest.raises(ValueError, match="out0"):
        _core.device_broadcast_multiply(CPU, a, a, (2, 3, 2), (6, 2), (6, 2), a[:5])
    empty = _core.device_broadcast_multiply(CPU, a, a, (0, 3, 2), (6, 2), (6, 2))
    assert empty.shape == (0, 3, 2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (16, 16), (17, 33), (64, 256), (300, 5)])
def test_transpose(rng, device, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(_core.device_transpose(device, a), a.T)
    with pytest.raises(ValueError, match="2-D"):
        _core.device_transpose(device, a.ravel())


def splitmix64(x):
    """deepcore/rng.h's splitmix64 on uint64 arrays (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def dropout_reference(rate, seed, x):
    """rng.h's uniform01(seed, i) for every i, and the mask and output dropout makes of it."""
    i = np.arange(x.size, dtype=np.uint64)
    bits = splitmix64(splitmix64(np.array([seed], np.uint64)) ^ (i * np.uint64(0xD1B54A32D192ED03)))
    u = (bits >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    keep = np.float32(1) - np.float32(rate)
    mask = np.where(u < keep, np.float32(1) / keep, np.float32(0)).astype(np.float32)
    mask = mask.reshape(x.shape)
    return x * mask, mask


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES + [(1 << 20,)])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout(rng, device, shape, rate):
    x = rng.standard_normal(shape).astype(np.float32)
    seed = 0xDEADBEEF12345 + x.size
    y, mask = _core.device_dropout(device, rate, seed, x)
    y_ref, mask_ref = dropout_reference(rate, seed, x)
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_array_equal(y, y_ref)
    if x.size >= 100000:
        kept = np.count_nonzero(mask) / mask.size
        assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / mask.size) + 1e-12
    # another seed, another mask
    if 0 < rate and x.size >= 1000:
        _, other = _core.device_dropout(device, rate, seed + 1, x)
        assert not np.array_equal(mask, other)


def test_dropout_checks_its_rate():
    x = np.ones(4, np.float32)
    for rate in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="rate must be in"):
            _core.device_dropout(CPU, rate, 1, x)


# ------------------------------------------------------- captured training steps
STEP_OPTIMIZERS = ["sgd_nesterov_weight_decay", "adamw", "rmsprop_centered_momentum", "adagrad"]


def update_steps(device, name, grads, w0, captured, l1=0.01, l2=0.02, max_norm=2.0, rate=0.25):
    """device_update_steps with the optimizer `name`, a learning rate and a seed per step."""
    opt = OPTIMIZERS[name]()
    spec = opt.spec()
    steps = grads.shape[0]
    lrs = [float(np.float32(opt.learning_rate * (1 + 0.5 * t))) for t in range(steps)]
    seeds = [1000 + 17 * t for t in range(steps)]
    slots = [s.astype(np.float32) for s in initial_slots(spec, w0)]
    args = (spec, lrs, grads, w0, slots, l1, l2, max_norm, rate, seeds)
    return _core.device_update_steps(device, *args, captured), (opt, lrs, seeds, l1, l2, max_norm)


def update_steps_reference(opt, lrs, seeds, l1, l2, max_norm, grads, w0, rate=0.25):
    """The float64 reference of device_update_steps: penalty, clipping, update, dropout."""
    l1_, l2_ = float(np.float32(l1)), float(np.float32(l2))
    spec = opt.spec()
    state = initial_slots(spec, w0)
    w = w0.astype(np.float64)
    acc = 0.0
    for t, g in enumerate(grads.astype(np.float64)):
        acc += np.sum(l1_ * np.abs(w) + l2_ * w * w)
        g = g + l1_ * np.sign(w) + 2 * l2_ * w
        norm = np.sqrt(np.sum(g * g))
        if norm > max_norm:
            g = g * (max_norm / norm)
        hp = kernel_hyper(opt, lrs[t])
        if isinstance(opt, O.Adam):
            w, state = ref_adam(w, g, state, t + 1, hp, spec.beta_1, spec.beta_2)
        else:
            w, state = REFERENCE[type(opt)](w, g, state, t + 1, hp)
    return w, state, acc


@pytest.mark.parametrize("name", STEP_OPTIMIZERS)
@pytest.mark.parametrize("n", [1, 1000, 70001])
def test_update_steps_captured(rng, name, n):
    # a step captured once and replayed reads the step's learning rate, step count, seed and
    # gradient from device memory: the bits of the same steps run one by one
    grads = rng.standard_normal((6, n)).astype(np.float32)
    w0 = rng.standard_normal(n).astype(np.float32)
    (w, slots, acc, y, mask), ref_args = update_steps(CPU, name, grads, w0, False)
    for device, captured in [(CPU, True), (GUARDED, False), (GUARDED, True)]:
        got, _ = update_steps(device, name, grads, w0, captured)
        np.testing.assert_array_equal(got[0], w)
        for s, s_cpu in zip(got[1], slots):
            np.testing.assert_array_equal(s, s_cpu)
        assert got[2] == acc
        np.testing.assert_array_equal(got[3], y)
        np.testing.assert_array_equal(got[4], mask)
    w_ref, state_ref, acc_ref = update_steps_reference(*ref_args, grads, w0)
    assert_close(w, w_ref, 1e-5)
    for s, s_ref in zip(slots, state_ref):
        assert_close(s, s_ref, 1e-5)
    np.testing.assert_allclose(acc, acc_ref, rtol=1e-5)
    seed = ref_args[2][-1]
    y_ref, mask_ref = dropout_reference(0.25, seed, w)
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_array_equal(y, y_ref)


def test_update_steps_checks_its_arguments():
    spec = O.Adam().spec()
    g = np.zeros((2, 3), np.float32)
    w = np.zeros(3, np.float32)
    ok = (spec, [0.1, 0.1], g, w, [w, w], 0.0, 0.0, 1.0, 0.5, [1, 2], True)

    def call(**changes):
        names = ["spec", "lrs", "grads", "w", "slots", "l1", "l2", "max_norm", "rate", "seeds"]
        args = dict(zip(names + ["captured"], ok), **changes)
        return _core.device_update_steps(GUARDED, *args.values())

    call()
    for changes, message in [
        (dict(lrs=[0.1]), "one value per step"),
        (dict(seeds=[1, 2, 3]), "one value per step"),
        (dict(w=np.zeros(4, np.float32)), "grads' columns"),
        (dict(slots=[w]), "needs 2 slot arrays"),
        (dict(max_norm=0.0), "max_norm"),
        (dict(rate=1.0), "rate"),
        (dict(grads=np.zeros(3, np.float32)), "matrix"),
    ]:
        with pytest.raises(ValueError, match=message):
            call(**changes)


# ---------------------------------------------------------- row gathers, loss total
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rows,cols,src_rows", [(1, 1, 1), (5, 1, 9), (33, 7, 40), (300, 784, 512)])
def test_gather_rows(rng, device, rows, cols, src_rows):
    src = rng.standard_normal((src_rows, cols)).astype(np.float32)
    idx = rng.integers(0, src_rows, rows).astype(np.int64)
    np.testing.assert_array_equal(_core.device_gather_rows(device, src, idx), src[idx])


def test_gather_rows_checks_its_indices():
    src = np.ones((4, 3), np.float32)
    for idx in ([0, 4], [-1]):
        with pytest.raises(ValueError, match="is not a row of src"):
            _core.device_gather_rows(CPU, src, np.array(idx, np.int64))
    with pytest.raises(ValueError, match="matrix"):
        _core.device_gather_rows(CPU, np.ones(4, np.float32), np.array([0], np.int64))
    with pytest.raises(ValueError, match="1-D"):
        _core.device_gather_rows(CPU, src, np.zeros((1, 1), np.int64))
    assert _core.device_gather_rows(CPU, src, np.zeros(0, np.int64)).shape == (0, 3)


@pytest.mark.parametrize("device", DEVICES)
def test_add_batch_loss(rng, device):
    totals = np.array([1.5, 10.0])
    want = totals.copy()
    for rows, scale in [(0, 1.0), (1, 0.5), (128, 1 / 128), (7, 2.0)]:
        batch = rng.standard_normal(2)
        totals = _core.device_add_batch_loss(device, batch, scale, rows, totals)
        want = want + [(batch[0] * scale + batch[1]) * rows, rows]
        np.testing.assert_allclose(totals, want, rtol=1e-14)


def test_add_batch_loss_checks_its_arguments():
    with pytest.raises(ValueError, match="2 values"):
        _core.device_add_batch_loss(CPU, np.zeros(3), 1.0, 1, np.zeros(2))
    with pytest.raises(ValueError, match="rows must be"):
        _core.device_add_batch_loss(CPU, np.zeros(2), 1.0, -1, np.zeros(2))


@pytest.mark.parametrize("device", DEVICES)
def test_subnormal_values_are_flushed_to_zero(device):
    """The moments of weights whose gradient is zero decay geometrically: Adam's first
    moment 0.9 x 1.1e-38 would be subnormal (x86 ~100x slower on such values); the CPU
    kernels flush them to zero as XLA and TensorFlow do, and read subnormal inputs as zero,
    on every thread (a vector long enough to be shared among them)."""
    n = 100003
    w = np.ones(n, np.float32)
    g = np.zeros(n, np.float32)
    m = np.full(n, 1.1e-38, np.float32)  # (normal: FLT_MIN is 1.18e-38; 0.9 x it is not)
    v = np.full(n, 5e-39, np.float32)  # (subnormal already)
    spec = O.Adam(learning_rate=0.01).spec()
    w_out, (m_out, v_out) = _core.device_optimizer_update(device, spec, 0.01, 1, w, g, [m, v])
    assert not np.any(m_out) and not np.any(v_out)
    assert np.array_equal(w_out, w)  # (m read as zero: no update)
