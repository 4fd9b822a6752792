"""The CUDA backend's losses and metric updates against the CPU backend's, on the cases of
tests/test_backend_losses.py and larger ones.

Runs only with a CUDA build on a machine with an NVIDIA GPU (deepcore.cuda.is_available());
skipped elsewhere. Float32 results must match the CPU's to 1e-5 relative: loss sums
relative to the magnitude of what they add up (the order of the additions differs),
gradients element-wise where both backends compute each entry alike, norm-wise for the
cross-entropies (row sums); metric states (double sums of the same values) to 1e-12.
"""

import numpy as np
import pytest
from device_compare import assert_elementwise, norm_err
from test_backend_losses import (
    LOGITS,
    LOSSES,
    METRIC_SHAPES,
    METRICS,
    SPARSE_METRICS,
    loss_case,
    loss_spec,
    metric_case,
    ref_loss,
)

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CPU, CUDA = 0, 1
# one value, one row, odd sizes, more than two axes, rows for each group size of the
# kernels (8 lanes: <= 8 classes, a warp: <= 2048, a block: more), many rows
SHAPES = [
    (1, 1),
    (1, 10),
    (7, 3),
    (33, 17),
    (2, 3, 4),
    (129, 255),
    (4096, 3),
    (3, 5000),
    (20000, 5),
    (300, 2049),
    (100000, 1),
]
ELEMENTWISE = ("mse", "mae", "huber", "huber_0.3", "hinge", "bce", "bce_logits")


@pytest.fixture
def rng():
    return np.random.default_rng(12)


def both(name, pred, probs, y, w, want_grad=True):
    spec = loss_spec(name)
    cpu = _core.device_loss(CPU, spec, pred, probs, y, w, 0.5, want_grad)
    gpu = _core.device_loss(CUDA, spec, pred, probs, y, w, 0.5, want_grad)
    return cpu, gpu


def check_loss(name, pred, y, w, cpu, gpu):
    _, _, magnitude = ref_loss(name, pred, y, w, 0.5)
    assert abs(gpu[0] - cpu[0]) <= 1e-5 * magnitude, (gpu[0], cpu[0], magnitude)
    assert gpu[1].shape == cpu[1].shape
    if name in ELEMENTWISE:
        assert_elementwise(gpu[1], cpu[1])
    else:
        assert norm_err(gpu[1], cpu[1]) < 1e-5


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss(rng, name, shape, weighted):
    pred, _, y, w = loss_case(name, shape, rng, weighted)
    cpu, gpu = both(name, pred, None, y, w)
    check_loss(name, pred, y, w, cpu, gpu)


@pytest.mark.parametrize("name", LOGITS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_fused_probs(rng, name, shape, weighted):
    pred, probs, y, w = loss_case(name, shape, rng, weighted, fused=True)
    cpu, gpu = both(name, pred, probs, y, w)
    check_loss(name, pred, y, w, cpu, gpu)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_without_gradient_and_deterministic(rng, name):
    pred, _, y, w = loss_case(name, (5000, 7), rng, weighted=True)
    spec = loss_spec(name)
    first = _core.device_loss(CUDA, spec, pred, None, y, w, 0.5, True)
    second = _core.device_loss(CUDA, spec, pred, None, y, w, 0.5, True)
    assert first[0] == second[0]  # a fixed order of additions: the same bits
    np.testing.assert_array_equal(first[1], second[1])
    total, grad = _core.device_loss(CUDA, spec, pred, None, y, w, 0.5, False)
    assert grad is None and total == first[0]


def test_loss_no_rows():
    empty = np.zeros((0, 3), np.float32)
    total, grad = _core.device_loss(CUDA, loss_spec("mse"), empty, None, empty, None, 1.0, True)
    assert total == 0.0 and grad.shape == (0, 3)


@pytest.mark.parametrize("name", ["scce", "scce_logits"])
@pytest.mark.parametrize("bad", [-1.0, 4.0, 0.5, np.nan, 1e30])
@pytest.mark.parametrize("cols", [4, 3000])
def test_invalid_sparse_label_raises_like_the_cpu(rng, name, bad, cols):
    pred = rng.random((300, cols)).astype(np.float32)
    labels = rng.integers(0, cols, 300).astype(np.float32)
    labels[123] = bad if bad != 4.0 else cols
    spec = loss_spec(name)
    with pytest.raises(ValueError) as on_cpu:
        _core.device_loss(CPU, spec, pred, None, labels, None, 1.0, True)
    with pytest.raises(ValueError) as on_gpu:
        _core.device_loss(CUDA, spec, pred, None, labels, None, 1.0, True)
    assert str(on_gpu.value) == str(on_cpu.value)
    # the error was taken: the backend goes on
    labels[123] = 0.0
    cpu, gpu = both(name, pred, None, labels, None)
    check_loss(name, pred, labels, None, cpu, gpu)


@pytest.mark.parametrize("name", SPARSE_METRICS)
def test_metric_invalid_sparse_label_raises_like_the_cpu(name):
    pred = np.full((2, 3), 0.5, np.float32)
    labels = np.array([0.0, 2.5], np.float32)
    with pytest.raises(ValueError) as on_cpu:
        _core.device_metric_update(CPU, METRICS[name], pred, labels, None, np.zeros(2))
    with pytest.raises(ValueError) as on_gpu:
        _core.device_metric_update(CUDA, METRICS[name], pred, labels, None, np.zeros(2))
    assert str(on_gpu.value) == str(on_cpu.value)
    labels[1] = 1.0  # the error was taken: the backend goes on
    want = _core.device_metric_update(CPU, METRICS[name], pred, labels, None, np.zeros(2))
    got = _core.device_metric_update(CUDA, METRICS[name], pred, labels, None, np.zeros(2))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize("shape", METRIC_SHAPES + [(50000, 3), (200, 3000), (100000, 1)])
@pytest.mark.parametrize("weighted", [False, True])
def test_metric_update(rng, name, shape, weighted):
    pred, y, w, state = metric_case(name, shape, rng, weighted)
    cpu = _core.device_metric_update(CPU, METRICS[name], pred, y, w, state)
    gpu = _core.device_metric_update(CUDA, METRICS[name], pred, y, w, state)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-12)
