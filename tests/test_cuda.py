"""The CUDA backend against the CPU backend, op by op, on random inputs of several shapes.

Runs only with a CUDA build on a machine with an NVIDIA GPU (deepcore.cuda.is_available());
skipped elsewhere. Float32 results must match the CPU's to 1e-5 relative (norm-wise for
GEMMs and sums, where the order of the additions differs; element-wise for activations).
"""

import numpy as np
import pytest
from device_compare import assert_elementwise, norm_err
from test_activations import DERIVATIVE, FORWARD

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CPU, CUDA = 0, 1
ACTS = sorted(set(FORWARD) - {"silu"})
DIFFERENTIABLE = sorted(set(DERIVATIVE) - {"silu"})
# rows x cols: one value, one row, odd sizes, a tall and a wide matrix, a large one
SHAPES = [(1, 1), (1, 10), (7, 3), (33, 17), (129, 255), (4096, 3), (3, 5000), (1024, 1031)]
GEMMS = [  # m, n, k
    (1, 1, 1),
    (1, 10, 784),
    (3, 5, 2),
    (37, 29, 61),
    (128, 512, 784),
    (784, 128, 512),
    (333, 257, 129),
    (1024, 1024, 1024),
    (2048, 1000, 1500),
]


@pytest.fixture
def rng():
    return np.random.default_rng(12)


def test_device_name():
    name = dc.cuda.device_name()
    assert isinstance(name, str) and name and name != "cpu"


@pytest.mark.parametrize("n", [1, 7, 1 << 20, (1 << 24) + 3])
def test_memory_roundtrip_and_fill(rng, n):
    x = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(_core.device_roundtrip(CUDA, x), x)
    np.testing.assert_array_equal(_core.device_fill(CUDA, n, -1.25), np.full(n, -1.25, np.float32))


@pytest.mark.parametrize("m,n,k", GEMMS)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm(rng, m, n, k, ta, tb):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    cpu = _core.device_gemm(CPU, a, b, ta, tb)
    gpu = _core.device_gemm(CUDA, a, b, ta, tb)
    assert norm_err(gpu, cpu) < 1e-5


@pytest.mark.parametrize("m,n,k", [(37, 29, 61), (128, 512, 784), (1024, 1024, 1024)])
def test_gemm_in_tf32_when_allowed(rng, m, n, k):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    want = a.astype(np.float64) @ b
    dc.config.set_float32_matmul_precision("high")
    try:
        tf32 = _core.device_gemm(CUDA, a, b)
    finally:
        dc.config.set_float32_matmul_precision("highest")
    assert norm_err(tf32, want) < 1e-3
    assert norm_err(_core.device_gemm(CUDA, a, b), want) < 1e-5  # and back to float32


@pytest.mark.parametrize("m,n,k", [(5, 3, 7), (300, 129, 65)])
def test_gemm_alpha_beta(rng, m, n, k):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    cpu = _core.device_gemm(CPU, a, b, alpha=-0.5, beta=1.5, c=c)
    gpu = _core.device_gemm(CUDA, a, b, alpha=-0.5, beta=1.5, c=c)
    assert norm_err(gpu, cpu) < 1e-5


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("in_place", [True, False])
@pytest.mark.parametrize("m,k,n", [(1, 5, 3), (64, 784, 128), (257, 33, 10)])
def test_affine_forward(rng, name, bias, in_place, m, k, n):
    # in place with relu/linear: cuBLASLt's RELU_BIAS / BIAS epilogues
    spec = dc.activations.spec(name)
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    z_cpu, y_cpu = _core.device_affine(CPU, spec, a, w, b, in_place)
    z_gpu, y_gpu = _core.device_affine(CUDA, spec, a, w, b, in_place)
    assert norm_err(z_gpu, z_cpu) < 1e-5
    # the activation amplifies z's rounding differences by at most |f'|: norm-wise here,
    # element-wise in test_bias_act where both backends start from the same z
    assert norm_err(y_gpu, y_cpu) < 1e-5


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_bias_act(rng, name, shape, bias):
    spec = dc.activations.spec(name)
    z = (rng.standard_normal(shape) * 3).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32) if bias else None
    z_cpu, y_cpu = _core.device_bias_act(CPU, spec, z, b)
    z_gpu, y_gpu = _core.device_bias_act(CUDA, spec, z, b)
    np.testing.assert_array_equal(z_gpu, z_cpu)
    assert_elementwise(y_gpu, y_cpu)
    # y aliasing z
    _, y_gpu_in_place = _core.device_bias_act(CUDA, spec, z, b, True)
    assert_elementwise(y_gpu_in_place, y_cpu)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@pytest.mark.parametrize("shape", SHAPES)
def test_act_backward(rng, name, shape):
    spec = dc.activations.spec(name)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    _, y = _core.device_bias_act(CPU, spec, x, None)
    dy = rng.standard_normal(shape).astype(np.float32)
    cpu = _core.device_act_backward(CPU, spec, x, y, dy)
    gpu = _core.device_act_backward(CUDA, spec, x, y, dy)
    if name == "softmax":  # a dot product per row: the order of the sum differs
        assert norm_err(gpu, cpu) < 1e-5
    else:
        assert_elementwise(gpu, cpu)


def test_step_has_no_gradient_on_cuda():
    x = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="no gradient"):
        _core.device_act_backward(CUDA, dc.activations.spec("step"), x, x, x)


@pytest.mark.parametrize("shape", SHAPES + [(100000, 7)])
def test_col_sum(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    want = x.astype(np.float64).sum(axis=0)
    tol = 1e-6 * np.abs(x).sum(axis=0) + 1e-7
    assert np.all(np.abs(_core.device_col_sum(CPU, x) - want) <= tol)
    assert np.all(np.abs(_core.device_col_sum(CUDA, x) - want) <= tol)


def test_ops_not_written_yet_say_so():
    with pytest.raises(Exception, match="gemm with k = 0 .* is not implemented on CUDA yet"):
        _core.device_not_implemented(CUDA)
