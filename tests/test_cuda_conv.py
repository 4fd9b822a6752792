"""The CUDA backend's convolution, pooling and batch-normalization ops against the CPU
backend's, on the cases of tests/test_backend_conv.py and larger ones.

Runs only with a CUDA build on a machine with an NVIDIA GPU (deepcore.cuda.is_available());
skipped elsewhere. Copies (im2col, max pooling's values) and argmax indices must be
identical; sums must match the CPU's to 1e-5 relative: element-wise where both backends add
the same values in the same order (col2im and the pooling backwards gather in the CPU's
order), norm-wise where the order differs (batch normalization's per-channel sums).
"""

import numpy as np
import pytest
from device_compare import assert_elementwise, norm_err
from test_backend_conv import CONVS, NORMS, POOLS, bn_inputs, conv_id, image

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CPU, CUDA = 0, 1
# larger than the CPU tests': a first convolution of larger images, a deep one
BIG_CONVS = [
    (128, 32, 32, 3, 3, 3, 1, 1, True),
    (32, 28, 28, 64, 3, 3, 2, 2, True),
    (16, 15, 17, 24, 5, 5, 1, 1, False),
]
BIG_POOLS = [
    (64, 56, 56, 32, 3, 3, 2, 2, True),
    (128, 28, 28, 64, 2, 2, 2, 2, False),
    (32, 7, 7, 512, 7, 7, 7, 7, False),  # a global average pooling
]
BIG_NORMS = [(65536, 64), (1000, 4096), (1 << 20, 1)]


@pytest.fixture
def rng():
    return np.random.default_rng(12)


@pytest.mark.parametrize("case", CONVS + BIG_CONVS, ids=conv_id)
def test_im2col_col2im(rng, case):
    n, h, w, c, kh, kw, sh, sw, same = case
    x = image(rng, n, h, w, c)
    cols = _core.device_im2col(CPU, x, kh, kw, sh, sw, same)
    np.testing.assert_array_equal(_core.device_im2col(CUDA, x, kh, kw, sh, sw, same), cols)
    g = rng.standard_normal(cols.shape).astype(np.float32)
    cpu = _core.device_col2im(CPU, g, n, h, w, c, kh, kw, sh, sw, same)
    gpu = _core.device_col2im(CUDA, g, n, h, w, c, kh, kw, sh, sw, same)
    assert_elementwise(gpu, cpu)
    # a gather: the same result on every run
    np.testing.assert_array_equal(
        _core.device_col2im(CUDA, g, n, h, w, c, kh, kw, sh, sw, same), gpu
    )


@pytest.mark.parametrize("case", POOLS + BIG_POOLS, ids=conv_id)
@pytest.mark.parametrize("values", ["normal", "ties", "nan_inf"])
def test_maxpool(rng, case, values):
    n, h, w, c, ph, pw, sh, sw, same = case
    x = image(rng, n, h, w, c, ties=values == "ties")
    if values == "nan_inf":  # NaN and -inf as the CPU treats them: a NaN met first stays
        x[rng.random(x.shape) < 0.05] = np.nan
        x[rng.random(x.shape) < 0.05] = -np.inf
    y_cpu, a_cpu = _core.device_maxpool(CPU, x, ph, pw, sh, sw, same)
    y_gpu, a_gpu = _core.device_maxpool(CUDA, x, ph, pw, sh, sw, same)
    np.testing.assert_array_equal(a_gpu, a_cpu)
    np.testing.assert_array_equal(y_gpu, y_cpu)
    dy = rng.standard_normal(y_cpu.shape).astype(np.float32)
    cpu = _core.device_maxpool_backward(CPU, dy, a_cpu, h, w, ph, pw, sh, sw, same)
    gpu = _core.device_maxpool_backward(CUDA, dy, a_gpu, h, w, ph, pw, sh, sw, same)
    assert_elementwise(gpu, cpu)


@pytest.mark.parametrize("case", POOLS + BIG_POOLS, ids=conv_id)
def test_avgpool(rng, case):
    n, h, w, c, ph, pw, sh, sw, same = case
    x = image(rng, n, h, w, c)
    cpu = _core.device_avgpool(CPU, x, ph, pw, sh, sw, same)
    assert_elementwise(_core.device_avgpool(CUDA, x, ph, pw, sh, sw, same), cpu)
    dy = rng.standard_normal(cpu.shape).astype(np.float32)
    cpu = _core.device_avgpool_backward(CPU, dy, h, w, ph, pw, sh, sw, same)
    gpu = _core.device_avgpool_backward(CUDA, dy, h, w, ph, pw, sh, sw, same)
    assert_elementwise(gpu, cpu)


@pytest.mark.parametrize("m,c", NORMS + BIG_NORMS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_forward(rng, m, c, training, affine):
    x, gamma, beta, mm, mv = bn_inputs(rng, m, c, affine)
    args = (x, gamma, beta, mm, mv, training, 0.9, 1e-3)
    cpu = _core.device_batchnorm_forward(CPU, *args)
    gpu = _core.device_batchnorm_forward(CUDA, *args)
    for name, g, want in zip(["y", "xhat", "inv_std", "moving_mean", "moving_var"], gpu, cpu):
        if name in ("y", "xhat"):
            assert norm_err(g, want) < 1e-5, name
        else:
            assert_elementwise(g, want)
    again = _core.device_batchnorm_forward(CUDA, *args)
    for g, a in zip(gpu, again):
        np.testing.assert_array_equal(a, g)


@pytest.mark.parametrize("m,c", NORMS + BIG_NORMS)
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_backward(rng, m, c, affine):
    x, gamma, beta, mm, mv = bn_inputs(rng, m, c, affine)
    _, xhat, inv_std, _, _ = _core.device_batchnorm_forward(CPU, x, gamma, beta, mm, mv, True)
    dy = rng.standard_normal((m, c)).astype(np.float32)
    cpu = _core.device_batchnorm_backward(CPU, dy, xhat, inv_std, gamma)
    gpu = _core.device_batchnorm_backward(CUDA, dy, xhat, inv_std, gamma)
    for name, g, want in zip(["dx", "dgamma", "dbeta"], gpu, cpu):
        assert norm_err(g, want) < 1e-5, name
    only_dx = _core.device_batchnorm_backward(CUDA, dy, xhat, inv_std, gamma, True, False, False)
    assert only_dx[1] is None and only_dx[2] is None
    np.testing.assert_array_equal(only_dx[0], gpu[0])
    params = _core.device_batchnorm_backward(CUDA, dy, xhat, inv_std, gamma, dx=False)
    assert params[0] is None
    np.testing.assert_array_equal(params[1], gpu[1])
    np.testing.assert_array_equal(params[2], gpu[2])
