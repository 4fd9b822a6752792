"""The CUDA backend's training-step updates against the CPU backend, op by op.

Runs only with a CUDA build on a machine with an NVIDIA GPU (deepcore.cuda.is_available());
skipped elsewhere. Float32 results must match the CPU's to 1e-5 relative element by element
(the kernels share the formulas of deepcore/optimizer_rules.h; only the contraction of
multiply-adds differs); the double reductions (penalty, norm) to 1e-12; dropout masks, row
gathers, products and clipping by value bit for bit.
"""

import numpy as np
import pytest
from device_compare import assert_elementwise
from test_backend_update import (
    BROADCAST_CASES,
    OPTIMIZERS,
    STEP_OPTIMIZERS,
    STEPS,
    broadcast_reference,
    dropout_reference,
    reach,
    run_device,
    update_steps,
)

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CPU, CUDA = 0, 1
# one value, odd sizes, a matrix, more values than one pass of the grid covers
SHAPES = [(1,), (7,), (33, 17), (1000, 1031), ((1 << 20) + 3,)]
# for the reductions: also more blocks than a reduction's first pass has (1024 x 256 threads)
REDUCE_SHAPES = SHAPES + [((1 << 24) + 3,)]


@pytest.fixture
def rng():
    return np.random.default_rng(12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_update(rng, shape, name):
    opt = OPTIMIZERS[name]()
    lr = np.float32(opt.learning_rate)
    w0 = rng.standard_normal(shape).astype(np.float32)
    grads = [
        (rng.standard_normal(shape) * (1e-3 if t == 2 else 1.0)).astype(np.float32)
        for t in range(STEPS)
    ]
    w_cpu, slots_cpu = run_device(CPU, opt, w0, grads, lr)
    w_gpu, slots_gpu = run_device(CUDA, opt, w0, grads, lr)
    assert_elementwise(w_gpu, w_cpu)
    for s_gpu, s_cpu in zip(slots_gpu, slots_cpu):
        assert_elementwise(s_gpu, s_cpu)


@pytest.mark.parametrize("name", ["adam", "adamw_custom"])
@pytest.mark.parametrize("step", [1, 2, 1000, 1 << 40])
def test_adam_bias_correction_on_the_device(rng, name, step):
    # alpha = lr sqrt(1 - b2^t) / (1 - b1^t) from the step count in device memory
    opt = OPTIMIZERS[name]()
    spec = opt.spec()
    w = rng.standard_normal(1000).astype(np.float32)
    g = rng.standard_normal(1000).astype(np.float32)
    slots = [np.abs(rng.standard_normal(1000)).astype(np.float32) for _ in range(2)]
    cpu = _core.device_optimizer_update(CPU, spec, 0.01, step, w, g, slots)
    gpu = _core.device_optimizer_update(CUDA, spec, 0.01, step, w, g, slots)
    assert_elementwise(gpu[0], cpu[0])
    for s_gpu, s_cpu in zip(gpu[1], cpu[1]):
        assert_elementwise(s_gpu, s_cpu)


@pytest.mark.parametrize("shape", REDUCE_SHAPES)
@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.003), (0.02, 0.5)])
def test_l1l2(rng, shape, l1, l2):
    w = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    acc_cpu, g_cpu = _core.device_l1l2(CPU, w, g, l1, l2, 0.75)
    acc_gpu, g_gpu = _core.device_l1l2(CUDA, w, g, l1, l2, 0.75)
    np.testing.assert_allclose(acc_gpu, acc_cpu, rtol=1e-12)
    assert_elementwise(g_gpu, g_cpu, 1e-6)
    acc_none, none = _core.device_l1l2(CUDA, w, None, l1, l2)
    assert none is None
    np.testing.assert_allclose(acc_none, _core.device_l1l2(CPU, w, None, l1, l2)[0], rtol=1e-12)
    # a fixed-order reduction: the same bits on every run
    assert _core.device_l1l2(CUDA, w, None, l1, l2)[0] == acc_none


@pytest.mark.parametrize("shape", SHAPES)
def test_clip_by_value(rng, shape):
    g = (rng.standard_normal(shape) * 2).astype(np.float32)
    g.flat[0] = np.nan
    np.testing.assert_array_equal(
        _core.device_clip_by_value(CUDA, g, 0.7), _core.device_clip_by_value(CPU, g, 0.7)
    )


@pytest.mark.parametrize("shape", REDUCE_SHAPES)
@pytest.mark.parametrize("fraction", [0.5, 2.0])
def test_clip_by_norm(rng, shape, fraction):
    g = rng.standard_normal(shape).astype(np.float32)
    max_norm = fraction * np.sqrt(np.sum(g.astype(np.float64) ** 2))
    gpu = _core.device_clip_by_norm(CUDA, g, max_norm)
    if fraction > 1:
        np.testing.assert_array_equal(gpu, g)
    else:
        assert_elementwise(gpu, _core.device_clip_by_norm(CPU, g, max_norm), 1e-6)
        np.testing.assert_array_equal(_core.device_clip_by_norm(CUDA, g, max_norm), gpu)


@pytest.mark.parametrize("shape", SHAPES)
def test_multiply(rng, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(_core.device_multiply(CUDA, a, b), a * b)


@pytest.mark.parametrize("case", BROADCAST_CASES, ids=str)
@pytest.mark.parametrize("accumulate", [False, True])
def test_broadcast_multiply(rng, case, accumulate):
    shape, a_strides, m_strides = case
    a = rng.standard_normal(reach(shape, a_strides)).astype(np.float32)
    m = rng.standard_normal(reach(shape, m_strides)).astype(np.float32)
    out0 = rng.standard_normal(shape).astype(np.float32) if accumulate else None
    got = _core.device_broadcast_multiply(CUDA, a, m, shape, a_strides, m_strides, out0)
    want = broadcast_reference(a, m, shape, a_strides, m_strides, out0)
    if accumulate:  # out0 + a * m may be one fused multiply-add on the GPU
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout_masks_are_the_cpus(rng, shape, rate):
    x = rng.standard_normal(shape).astype(np.float32)
    seed = 0x0123456789ABCDEF + x.size
    y_cpu, mask_cpu = _core.device_dropout(CPU, rate, seed, x)
    y_gpu, mask_gpu = _core.device_dropout(CUDA, rate, seed, x)
    np.testing.assert_array_equal(mask_gpu, mask_cpu)
    np.testing.assert_array_equal(y_gpu, y_cpu)
    np.testing.assert_array_equal(mask_gpu, dropout_reference(rate, seed, x)[1])


@pytest.mark.parametrize(
    "rows,cols,src_rows", [(1, 1, 1), (5, 1, 9), (33, 7, 40), (300, 784, 6000)]
)
def test_gather_rows(rng, rows, cols, src_rows):
    src = rng.standard_normal((src_rows, cols)).astype(np.float32)
    idx = rng.integers(0, src_rows, rows).astype(np.int64)
    np.testing.assert_array_equal(_core.device_gather_rows(CUDA, src, idx), src[idx])


def test_add_batch_loss(rng):
    totals_cpu = totals_gpu = np.array([1.5, 10.0])
    for rows, scale in [(0, 1.0), (1, 0.5), (128, 1 / 128), (7, 2.0)]:
        batch = rng.standard_normal(2)
        totals_cpu = _core.device_add_batch_loss(CPU, batch, scale, rows, totals_cpu)
        totals_gpu = _core.device_add_batch_loss(CUDA, batch, scale, rows, totals_gpu)
        np.testing.assert_allclose(totals_gpu, totals_cpu, rtol=1e-14)


@pytest.mark.parametrize("name", STEP_OPTIMIZERS)
@pytest.mark.parametrize("n", [1, 1000, (1 << 20) + 3])
def test_update_steps_captured(rng, name, n):
    # a CUDA graph of the step's ops, replayed with each step's values copied to their fixed
    # addresses: the bits of the same steps launched one by one, and the CPU's values
    grads = rng.standard_normal((6, n)).astype(np.float32)
    w0 = rng.standard_normal(n).astype(np.float32)
    cpu, _ = update_steps(CPU, name, grads, w0, False)
    gpu, _ = update_steps(CUDA, name, grads, w0, False)
    captured, _ = update_steps(CUDA, name, grads, w0, True)

    def arrays(r):  # w, the slots, y, mask
        return [r[0], *r[1], r[3], r[4]]

    for a, b in zip(arrays(captured), arrays(gpu)):
        np.testing.assert_array_equal(a, b)
    assert captured[2] == gpu[2]
    assert_elementwise(gpu[0], cpu[0])
    for s_gpu, s_cpu in zip(gpu[1], cpu[1]):
        assert_elementwise(s_gpu, s_cpu)
    np.testing.assert_allclose(gpu[2], cpu[2], rtol=1e-6)
    # the mask depends on the seed and the rate alone
    np.testing.assert_array_equal(gpu[4], cpu[4])
