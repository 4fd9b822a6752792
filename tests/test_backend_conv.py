"""The convolution, pooling and batch-normalization ops of the backend harness
(_core.device_im2col, device_col2im, device_maxpool(_backward), device_avgpool(_backward),
device_conv_maxpool, device_batchnorm_forward/backward) on the CPU and the guarded backend,
against float64 NumPy references.

The same functions run the CUDA backend in tests/test_cuda_conv.py.
"""

import numpy as np
import pytest
from test_conv import geometry, np_conv2d, np_pool, np_pool_backward, pool_windows

from deepcore import _core

DEVICES = [0, 2]  # CPU, guarded

# n, h, w, c, kh, kw, sh, sw, same: one element, a window larger than the image, odd
# sizes and strides, strides larger than the window (inputs no window reads), the LeNet
# convolutions, a large padded one, and a stride so large that the GPU indexes in 64 bits
CONVS = [
    (1, 1, 1, 1, 1, 1, 1, 1, False),
    (1, 1, 1, 1, 3, 3, 1, 1, True),
    (2, 5, 7, 3, 3, 3, 1, 1, True),
    (3, 6, 5, 2, 2, 3, 2, 1, False),
    (2, 9, 8, 4, 5, 5, 2, 3, True),
    (1, 4, 4, 1, 4, 4, 4, 4, False),
    (2, 7, 7, 3, 2, 2, 3, 3, True),
    (2, 5, 5, 2, 6, 6, 1, 1, True),
    (64, 28, 28, 1, 3, 3, 1, 1, False),
    (16, 13, 13, 32, 3, 3, 1, 1, False),
    (8, 32, 32, 16, 3, 3, 1, 1, True),
    (2, 5, 6, 3, 2, 3, 1 << 30, 3, True),
]
# n, h, w, c, ph, pw, sh, sw, same
POOLS = [
    (1, 1, 1, 1, 1, 1, 1, 1, False),
    (1, 1, 1, 1, 2, 2, 2, 2, True),
    (2, 6, 6, 3, 2, 2, 2, 2, False),
    (2, 7, 5, 3, 3, 3, 2, 2, True),
    (3, 8, 9, 2, 3, 2, 1, 1, True),
    (2, 5, 5, 4, 5, 5, 1, 1, False),
    (2, 9, 9, 3, 2, 2, 3, 3, True),
    (2, 4, 4, 3, 6, 5, 1, 2, True),
    (64, 26, 26, 32, 2, 2, 2, 2, False),
    (8, 33, 31, 16, 3, 3, 2, 2, True),
    (2, 6, 7, 3, 3, 2, 3, 1 << 30, True),
]
# A convolution and the max pooling after it in one pass (inference on the CPU):
# n, h, w, c, kh, kw, sh, sw, same, filters, ph, pw, relu, bias. The LeNet CNN's two (11 x 11
# outputs pooled to 5 x 5: the last row and column are read by no window), "same" padding
# linear without bias, strides with a 3 x 2 pool, a 1 x 1 pool of one output, 3 x 3 windows,
# "same" padding with strides larger than the kernel, uneven strides, a kernel larger than
# the image.
CONV_POOLS = [
    (64, 28, 28, 1, 3, 3, 1, 1, False, 32, 2, 2, True, True),
    (16, 13, 13, 32, 3, 3, 1, 1, False, 64, 2, 2, True, True),
    (3, 17, 15, 3, 3, 3, 1, 1, True, 8, 2, 2, False, False),
    (2, 9, 11, 2, 2, 3, 2, 1, False, 5, 3, 2, True, True),
    (2, 4, 4, 1, 4, 4, 1, 1, False, 3, 1, 1, True, True),
    (5, 12, 12, 7, 3, 3, 1, 1, True, 9, 3, 3, True, True),
    (2, 7, 7, 3, 2, 2, 3, 3, True, 4, 1, 1, True, True),
    (2, 9, 8, 4, 5, 5, 2, 3, True, 6, 2, 1, False, True),
    (3, 5, 5, 2, 6, 6, 1, 1, True, 3, 2, 2, True, False),
    # Winograd's tiles (3x3 convolution, 2x2 pooling, channels x filters large enough): odd
    # sizes padded, linear, no bias; weights beyond our direct kernel's panel
    (6, 11, 9, 8, 3, 3, 1, 1, True, 32, 2, 2, True, False),
    (3, 10, 13, 16, 3, 3, 1, 1, False, 20, 2, 2, False, True),
    (2, 16, 16, 64, 3, 3, 1, 1, True, 64, 2, 2, True, True),
    # and without pooling (windows of one position): 2x2 outputs a tile, an odd last row or
    # column by the direct kernel
    (3, 12, 10, 16, 3, 3, 1, 1, False, 32, 1, 1, True, True),
    (2, 8, 6, 32, 3, 3, 1, 1, True, 16, 1, 1, False, False),
    (2, 9, 9, 16, 3, 3, 1, 1, True, 32, 1, 1, True, True),
    (3, 11, 8, 16, 3, 3, 1, 1, False, 24, 1, 1, False, True),
    (2, 4, 7, 8, 3, 3, 1, 1, False, 32, 1, 1, True, True),
    (61, 9, 11, 16, 3, 3, 1, 1, False, 24, 1, 1, True, True),  # (the edges shared by threads)
]

# m, channels
NORMS = [(1, 1), (1, 5), (7, 3), (64, 17), (129, 512), (2048, 33), (100000, 3)]


def conv_id(case):
    n, h, w, c, kh, kw, sh, sw, same = case
    return f"{n}x{h}x{w}x{c}-k{kh}x{kw}-s{sh}x{sw}-{'same' if same else 'valid'}"


def rel_err(got, want):
    """Largest error over the largest value (norm-wise: no blow-up where want ~ 0)."""
    want = np.asarray(want, np.float64)
    scale = max(np.abs(want).max(), 1e-30)
    return np.abs(np.asarray(got, np.float64) - want).max() / scale


def padded(x, kh, kw, sh, sw, same):
    """x zero-padded as the windows see it, and (oh, ow)."""
    _, h, w, _ = x.shape
    oh, pt, pb = geometry(h, kh, sh, "same" if same else "valid")
    ow, pl, pr = geometry(w, kw, sw, "same" if same else "valid")
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))), (oh, ow), (pt, pl)


def np_im2col(x, kh, kw, sh, sw, same):
    xp, (oh, ow), _ = padded(np.asarray(x, np.float64), kh, kw, sh, sw, same)
    n, c = x.shape[0], x.shape[3]
    cols = np.zeros((n, oh, ow, kh * kw * c))
    for oy in range(oh):
        for ox in range(ow):
            win = xp[:, oy * sh : oy * sh + kh, ox * sw : ox * sw + kw, :]
            cols[:, oy, ox] = win.reshape(n, -1)
    return cols.reshape(n * oh * ow, -1)


def np_col2im(cols, shape, kh, kw, sh, sw, same):
    n, h, w, c = shape
    dxp, (oh, ow), (pt, pl) = padded(np.zeros(shape), kh, kw, sh, sw, same)
    cols = np.asarray(cols, np.float64).reshape(n, oh, ow, kh, kw, c)
    for oy in range(oh):
        for ox in range(ow):
            dxp[:, oy * sh : oy * sh + kh, ox * sw : ox * sw + kw, :] += cols[:, oy, ox]
    return dxp[:, pt : pt + h, pl : pl + w, :]


def np_argmax(x, ph, pw, sh, sw, same):
    """The index in its image of each window's first maximum (row-major), per channel."""
    n, h, w, c = x.shape
    pad = "same" if same else "valid"
    oh, ow = geometry(h, ph, sh, pad)[0], geometry(w, pw, sw, pad)[0]
    out = np.zeros((n, oh, ow, c), np.int64)
    for oy, ox, rows, cols in pool_windows(h, w, (ph, pw), (sh, sw), pad):
        win = x[:, rows, cols, :]
        first = win.reshape(n, -1, c).argmax(axis=1)  # (n, c), into the window
        iy, ix = rows.start + first // win.shape[2], cols.start + first % win.shape[2]
        out[:, oy, ox] = (iy * w + ix) * c + np.arange(c)
    return out


def image(rng, n, h, w, c, ties=False):
    if ties:  # few distinct values: many equal maxima
        return rng.integers(-2, 3, (n, h, w, c)).astype(np.float32)
    return rng.standard_normal((n, h, w, c)).astype(np.float32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CONVS, ids=conv_id)
def test_im2col(rng, device, case):
    n, h, w, c, kh, kw, sh, sw, same = case
    x = image(rng, n, h, w, c)
    got = _core.device_im2col(device, x, kh, kw, sh, sw, same)
    np.testing.assert_array_equal(got, np_im2col(x, kh, kw, sh, sw, same))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CONVS, ids=conv_id)
def test_col2im(rng, device, case):
    n, h, w, c, kh, kw, sh, sw, same = case
    rows = _core.device_im2col(0, np.zeros((n, h, w, c), np.float32), kh, kw, sh, sw, same).shape
    cols = rng.standard_normal(rows).astype(np.float32)
    got = _core.device_col2im(device, cols, n, h, w, c, kh, kw, sh, sw, same)
    assert got.shape == (n, h, w, c)
    assert rel_err(got, np_col2im(cols, (n, h, w, c), kh, kw, sh, sw, same)) < 1e-6


@pytest.mark.parametrize("case", CONVS[:8], ids=conv_id)
def test_col2im_is_the_adjoint_of_im2col(rng, case):
    n, h, w, c, kh, kw, sh, sw, same = case
    x = image(rng, n, h, w, c)
    cols = rng.standard_normal(_core.device_im2col(0, x, kh, kw, sh, sw, same).shape)
    cols = cols.astype(np.float32)
    lhs = np.sum(_core.device_im2col(0, x, kh, kw, sh, sw, same).astype(np.float64) * cols)
    dx = _core.device_col2im(0, cols, n, h, w, c, kh, kw, sh, sw, same)
    rhs = np.sum(x.astype(np.float64) * dx)
    assert abs(lhs - rhs) <= 1e-5 * (1 + abs(lhs))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", POOLS, ids=conv_id)
@pytest.mark.parametrize("ties", [False, True])
def test_maxpool(rng, device, case, ties):
    n, h, w, c, ph, pw, sh, sw, same = case
    pad = "same" if same else "valid"
    x = image(rng, n, h, w, c, ties)
    y, argmax = _core.device_maxpool(device, x, ph, pw, sh, sw, same)
    np.testing.assert_array_equal(y, np_pool(x.astype(np.float64), "max", (ph, pw), (sh, sw), pad))
    assert argmax.dtype == np.int32
    np.testing.assert_array_equal(argmax, np_argmax(x, ph, pw, sh, sw, same))
    # backward: each dy goes to its argmax; overlapping windows may send several to one input
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = _core.device_maxpool_backward(device, dy, argmax, h, w, ph, pw, sh, sw, same)
    want = np_pool_backward(x.astype(np.float64), dy, "max", (ph, pw), (sh, sw), pad)
    assert rel_err(dx, want) < 1e-6


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", POOLS, ids=conv_id)
def test_avgpool(rng, device, case):
    n, h, w, c, ph, pw, sh, sw, same = case
    pad = "same" if same else "valid"
    x = image(rng, n, h, w, c)
    y = _core.device_avgpool(device, x, ph, pw, sh, sw, same)
    assert rel_err(y, np_pool(x.astype(np.float64), "avg", (ph, pw), (sh, sw), pad)) < 1e-6
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = _core.device_avgpool_backward(device, dy, h, w, ph, pw, sh, sw, same)
    want = np_pool_backward(x.astype(np.float64), dy, "avg", (ph, pw), (sh, sw), pad)
    assert rel_err(dx, want) < 1e-6


@pytest.mark.parametrize("case", CONV_POOLS, ids=lambda c: conv_id(c[:9]) + f"-p{c[10]}x{c[11]}")
def test_conv_maxpool(rng, case):
    n, h, w, c, kh, kw, sh, sw, same, f, ph, pw, relu, use_bias = case
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    kernel = (rng.standard_normal((kh, kw, c, f)) / np.sqrt(kh * kw * c)).astype(np.float32)
    bias = rng.standard_normal(f).astype(np.float32) if use_bias else None
    got = _core.device_conv_maxpool(0, x, kernel, bias, relu, sh, sw, same, ph, pw)
    if _core.kernel_set() == "baseline":  # (the fused kernel is the vector sets' only)
        assert got is None
        return
    assert got is not None  # the CPU's vector kernel sets fuse these
    z = np_conv2d(x.astype(np.float64), kernel, bias, (sh, sw), "same" if same else "valid")
    want = np_pool(np.maximum(z, 0) if relu else z, "max", (ph, pw), (ph, pw), "valid")
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-5
    # tiles of 3 images, shared among the threads: the same bits
    tiled = _core.device_conv_maxpool(0, x, kernel, bias, relu, sh, sw, same, ph, pw, tile=3)
    assert np.array_equal(tiled, got)


def test_conv_maxpool_is_left_to_the_layers_where_the_kernel_would_differ(rng):
    """Weights too wide for the CPU's own product (OpenBLAS computes the unfused layer)
    where Winograd's tiles do not fit (a 3x3 pooling) and the guarded backend: not fused
    (None), the layers run one after the other."""
    x = rng.standard_normal((2, 8, 8, 64)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 64, 64)).astype(np.float32)
    assert _core.device_conv_maxpool(0, x, kernel, None, True, 1, 1, False, 3, 3) is None
    x, small = x[..., :4].copy(), kernel[:, :, :4, :8].copy()
    assert _core.device_conv_maxpool(2, x, small, None, True, 1, 1, False, 2, 2) is None


def np_batchnorm(x, gamma, beta, mm, mv, training, momentum, eps):
    """(y, xhat, inv_std, moving_mean, moving_var) in float64."""
    x = x.astype(np.float64)
    mean, var = (x.mean(axis=0), x.var(axis=0)) if training else (mm, mv)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    g = 1.0 if gamma is None else gamma
    b = 0.0 if beta is None else beta
    if training:
        mm, mv = mm * momentum + mean * (1 - momentum), mv * momentum + var * (1 - momentum)
    return g * xhat + b, xhat, inv_std, mm, mv


def bn_inputs(rng, m, c, affine=True):
    x = rng.standard_normal((m, c)) * rng.uniform(0.5, 3, c) + rng.uniform(-2, 2, c)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32) if affine else None
    beta = rng.standard_normal(c).astype(np.float32) if affine else None
    mm = rng.standard_normal(c).astype(np.float32)
    mv = rng.uniform(0.5, 2, c).astype(np.float32)
    return x.astype(np.float32), gamma, beta, mm, mv


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m,c", NORMS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_forward(rng, device, m, c, training, affine):
    x, gamma, beta, mm, mv = bn_inputs(rng, m, c, affine)
    got = _core.device_batchnorm_forward(device, x, gamma, beta, mm, mv, training, 0.9, 1e-3)
    want = np_batchnorm(
        x, gamma, beta, mm.astype(np.float64), mv.astype(np.float64), training, 0.9, 1e-3
    )
    for name, g, w in zip(["y", "xhat", "inv_std", "moving_mean", "moving_var"], got, want):
        assert g.dtype == np.float32 and g.shape == np.shape(w), name
        assert rel_err(g, w) < 2e-6, name


def np_batchnorm_backward(dy, xhat, inv_std, gamma):
    dy, xhat = dy.astype(np.float64), xhat.astype(np.float64)
    m = len(dy)
    g = 1.0 if gamma is None else gamma.astype(np.float64)
    sum_dy, sum_dy_xhat = dy.sum(axis=0), (dy * xhat).sum(axis=0)
    dx = g * inv_std.astype(np.float64) / m * (m * dy - sum_dy - xhat * sum_dy_xhat)
    return dx, sum_dy_xhat, sum_dy


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m,c", NORMS)
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_backward(rng, device, m, c, affine):
    x, gamma, beta, mm, mv = bn_inputs(rng, m, c, affine)
    _, xhat, inv_std, _, _ = _core.device_batchnorm_forward(0, x, gamma, beta, mm, mv, True)
    dy = rng.standard_normal((m, c)).astype(np.float32)
    dx, dgamma, dbeta = _core.device_batchnorm_backward(device, dy, xhat, inv_std, gamma)
    want_dx, want_dgamma, want_dbeta = np_batchnorm_backward(dy, xhat, inv_std, gamma)
    assert rel_err(dx, want_dx) < 1e-5
    assert rel_err(dgamma, want_dgamma) < 1e-6
    assert rel_err(dbeta, want_dbeta) < 1e-6
    # each output only when asked for; the others are the same without them
    only_dx = _core.device_batchnorm_backward(device, dy, xhat, inv_std, gamma, True, False, False)
    assert only_dx[1] is None and only_dx[2] is None
    np.testing.assert_array_equal(only_dx[0], dx)
    params = _core.device_batchnorm_backward(device, dy, xhat, inv_std, gamma, dx=False)
    assert params[0] is None
    np.testing.assert_array_equal(params[1], dgamma)
    np.testing.assert_array_equal(params[2], dbeta)


def test_batchnorm_matches_the_layer_formula_at_one_row():
    # one row: mean = x, variance 0, xhat = 0, y = beta
    x = np.array([[3.0, -1.0]], np.float32)
    beta = np.array([0.5, -0.25], np.float32)
    ones = np.ones(2, np.float32)
    y, xhat, inv_std, _, mv = _core.device_batchnorm_forward(0, x, ones, beta, ones, ones, True)
    np.testing.assert_array_equal(xhat, 0)
    np.testing.assert_array_equal(y, beta[None])
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(1e-3), rtol=1e-6)
    np.testing.assert_allclose(mv, 0.99, rtol=1e-6)


def test_bad_arguments():
    x = np.ones((2, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="4-D"):
        _core.device_im2col(0, np.ones((4, 4, 3), np.float32), 2, 2)
    with pytest.raises(ValueError, match="must not be empty"):
        _core.device_maxpool(0, np.ones((0, 4, 4, 3), np.float32), 2, 2, 2, 2)
    with pytest.raises(ValueError, match="larger than the input"):
        _core.device_im2col(0, x, 5, 2)
    with pytest.raises(ValueError, match="stride height"):
        _core.device_avgpool(0, x, 2, 2, 0, 2)
    with pytest.raises(ValueError, match="window width"):
        _core.device_im2col(0, x, 2, -1)
    with pytest.raises(ValueError, match="too large"):
        _core.device_im2col(0, x, 1 << 20, 1 << 20, 1, 1, True)
    with pytest.raises(ValueError, match="cols must have shape"):
        _core.device_col2im(0, np.ones((5, 12), np.float32), 2, 4, 4, 3, 2, 2)
    y, argmax = _core.device_maxpool(0, x, 2, 2, 2, 2)
    with pytest.raises(ValueError, match="dy must have shape"):
        _core.device_maxpool_backward(0, y[:, :1], argmax, 4, 4, 2, 2, 2, 2)
    for bad in [-1, 48, 1]:  # negative, past the image, in the wrong window
        a = argmax.copy()
        a[1, 1, 1, 0] = bad
        with pytest.raises(ValueError, match="argmax must hold"):
            _core.device_maxpool_backward(0, y, a, 4, 4, 2, 2, 2, 2)
    a = argmax.copy()
    a[0, 0, 0, 0] = a[0, 0, 0, 1]  # another channel
    with pytest.raises(ValueError, match="argmax must hold"):
        _core.device_maxpool_backward(0, y, a, 4, 4, 2, 2, 2, 2)
    with pytest.raises(ValueError, match="dy must have shape"):
        _core.device_avgpool_backward(0, y, 6, 4, 2, 2, 2, 2)
    m = np.ones((3, 2), np.float32)
    c = np.ones(2, np.float32)
    with pytest.raises(ValueError, match="gamma must have one value per channel"):
        _core.device_batchnorm_forward(0, m, np.ones(3, np.float32), None, c, c, True)
    with pytest.raises(ValueError, match="moving_var"):
        _core.device_batchnorm_forward(0, m, None, None, c, c[:1], True)
    with pytest.raises(ValueError, match="must not be empty"):
        _core.device_batchnorm_forward(0, m[:0], None, None, c, c, True)
    with pytest.raises(ValueError, match="xhat must have dy's shape"):
        _core.device_batchnorm_backward(0, m, m[:2], c, None)
    with pytest.raises(ValueError, match="inv_std"):
        _core.device_batchnorm_backward(0, m, m, c[:1], None)
