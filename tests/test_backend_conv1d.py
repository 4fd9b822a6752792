"""The sequence ops of the backend harness (_core.device_im2col_1d, device_col2im_1d,
device_repeat_rows(_backward)) on the CPU and the guarded backend, against float64 NumPy
references: 1-D windows with dilation and "valid", "same" or "causal" padding (Keras'
lengths), and UpSampling1D's row repetition.

The same functions run the CUDA backend in tests/test_cuda_conv1d.py.
"""

import numpy as np
import pytest

from deepcore import _core

DEVICES = [0, 2]  # CPU, guarded
PADDINGS = {
    "valid": _core.Padding.valid,
    "same": _core.Padding.same,
    "causal": _core.Padding.causal,
}

# n, steps, c, k, stride, dilation, padding: one step, odd lengths, dilations 1-3, strides,
# a dilated kernel as long as the input, dilations beyond the input with padding, a large
# stride (inputs no window reads), and a long sequence with many channels
CONVS = [
    (1, 1, 1, 1, 1, 1, "valid"),
    (1, 1, 1, 3, 1, 1, "same"),
    (1, 1, 2, 3, 1, 2, "causal"),
    (2, 7, 3, 3, 1, 1, "valid"),
    (2, 7, 3, 3, 1, 2, "valid"),
    (1, 9, 2, 4, 1, 3, "same"),
    (3, 11, 2, 5, 1, 2, "causal"),
    (2, 7, 3, 4, 1, 2, "valid"),  # span 7: exactly the input
    (2, 5, 2, 3, 1, 3, "same"),  # span 7 > 5
    (2, 5, 2, 3, 1, 3, "causal"),
    (2, 13, 3, 3, 2, 1, "valid"),
    (2, 13, 3, 4, 3, 1, "same"),
    (2, 13, 3, 3, 2, 1, "causal"),
    (1, 10, 2, 2, 5, 1, "same"),
    (4, 101, 16, 5, 1, 3, "causal"),
    (4, 64, 32, 3, 2, 1, "same"),
]


def conv_id(case):
    n, steps, c, k, s, d, p = case
    return f"{n}x{steps}x{c}-k{k}-s{s}-d{d}-{p}"


def geometry_1d(steps, k, s, d, padding):
    """(out_steps, left padding) as Keras computes them."""
    span = (k - 1) * d + 1
    if padding == "valid":
        return (steps - span) // s + 1, 0
    out = -(-steps // s)
    if padding == "causal":
        return out, span - 1
    return out, max((out - 1) * s + span - steps, 0) // 2


def np_im2col_1d(x, k, s, d, padding):
    """cols[(n, o), (j, c)] = x[n, o * s + j * d - left, c] (0 outside), in float64."""
    n, steps, c = x.shape
    out, left = geometry_1d(steps, k, s, d, padding)
    cols = np.zeros((n, out, k, c))
    for o in range(out):
        for j in range(k):
            i = o * s + j * d - left
            if 0 <= i < steps:
                cols[:, o, j, :] = x[:, i, :]
    return cols.reshape(n * out, k * c)


def np_col2im_1d(cols, shape, k, s, d, padding):
    """The adjoint of np_im2col_1d."""
    n, steps, c = shape
    out, left = geometry_1d(steps, k, s, d, padding)
    cols = cols.reshape(n, out, k, c)
    dx = np.zeros(shape)
    for o in range(out):
        for j in range(k):
            i = o * s + j * d - left
            if 0 <= i < steps:
                dx[:, i, :] += cols[:, o, j, :]
    return dx


def sequence(case, seed=0):
    n, steps, c = case[:3]
    return np.random.default_rng(seed).normal(size=(n, steps, c)).astype(np.float32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CONVS, ids=conv_id)
def test_im2col_1d_matches_numpy(device, case):
    _, _, _, k, s, d, p = case
    x = sequence(case)
    got = _core.device_im2col_1d(device, x, k, s, d, PADDINGS[p])
    np.testing.assert_array_equal(got, np_im2col_1d(x.astype(np.float64), k, s, d, p))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CONVS, ids=conv_id)
def test_col2im_1d_matches_numpy(device, case):
    n, steps, c, k, s, d, p = case
    out, _ = geometry_1d(steps, k, s, d, p)
    cols = np.random.default_rng(1).normal(size=(n * out, k * c)).astype(np.float32)
    got = _core.device_col2im_1d(device, cols, n, steps, c, k, s, d, PADDINGS[p])
    want = np_col2im_1d(cols.astype(np.float64), (n, steps, c), k, s, d, p)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", CONVS, ids=conv_id)
def test_col2im_1d_is_the_adjoint_of_im2col_1d(case):
    """<im2col(x), cols> == <x, col2im(cols)>, in float64 from the float32 results."""
    n, steps, c, k, s, d, p = case
    x = sequence(case, 2)
    cols = np.random.default_rng(3).normal(size=(n * geometry_1d(steps, k, s, d, p)[0], k * c))
    cols = cols.astype(np.float32)
    a = np.vdot(_core.device_im2col_1d(0, x, k, s, d, PADDINGS[p]).astype(np.float64), cols)
    b = np.vdot(x, _core.device_col2im_1d(0, cols, n, steps, c, k, s, d, PADDINGS[p]))
    assert a == pytest.approx(b, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("case", [c for c in CONVS if c[5] == 1 and c[6] != "causal"], ids=conv_id)
def test_undilated_1d_window_is_the_2d_window_of_height_1(case):
    """With dilation 1 and valid or same padding, the 1-D window is the 2-D kernels' (the
    same path, the same bits)."""
    n, steps, c, k, s, _, p = case
    x = sequence(case, 4)
    same = p == "same"
    cols = _core.device_im2col_1d(0, x, k, s, 1, PADDINGS[p])
    np.testing.assert_array_equal(cols, _core.device_im2col(0, x[:, None], 1, k, 1, s, same))
    dx = _core.device_col2im_1d(0, cols, n, steps, c, k, s, 1, PADDINGS[p])
    np.testing.assert_array_equal(
        dx[:, None], _core.device_col2im(0, cols, n, 1, steps, c, 1, k, 1, s, same)
    )


@pytest.mark.parametrize("device", DEVICES)
def test_guarded_1d_ops_give_the_cpu_bits(device):
    case = (3, 17, 5, 3, 1, 2, "causal")
    n, steps, c, k, s, d, p = case
    x = sequence(case, 5)
    cols = _core.device_im2col_1d(device, x, k, s, d, PADDINGS[p])
    np.testing.assert_array_equal(cols, _core.device_im2col_1d(0, x, k, s, d, PADDINGS[p]))
    np.testing.assert_array_equal(
        _core.device_col2im_1d(device, cols, n, steps, c, k, s, d, PADDINGS[p]),
        _core.device_col2im_1d(0, cols, n, steps, c, k, s, d, PADDINGS[p]),
    )


def test_valid_window_longer_than_the_input_is_refused():
    x = np.zeros((1, 6, 1), np.float32)
    with pytest.raises(ValueError, match=r"dilated by 3 \(7 steps\).*6 steps.*valid"):
        _core.device_im2col_1d(0, x, 3, 1, 3, _core.Padding.valid)
    assert _core.device_im2col_1d(0, x, 3, 1, 3, _core.Padding.causal).shape == (6, 3)


# rows, size, cols
REPEATS = [(1, 1, 1), (1, 2, 1), (5, 3, 2), (7, 1, 4), (33, 4, 17), (1000, 2, 64)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", REPEATS, ids=str)
def test_repeat_rows_matches_numpy(device, case):
    rows, size, cols = case
    rng = np.random.default_rng(6)
    x = rng.normal(size=(rows, cols)).astype(np.float32)
    np.testing.assert_array_equal(_core.device_repeat_rows(device, x, size), np.repeat(x, size, 0))
    dy = rng.normal(size=(rows * size, cols)).astype(np.float32)
    want = dy.astype(np.float64).reshape(rows, size, cols).sum(axis=1)
    got = _core.device_repeat_rows_backward(device, dy, size)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # in order: dy[r, 0] + dy[r, 1] + ..., in float32
    ordered = dy.reshape(rows, size, cols)[:, 0].copy()
    for j in range(1, size):
        ordered += dy.reshape(rows, size, cols)[:, j]
    np.testing.assert_array_equal(got, ordered)


def test_repeat_rows_backward_checks_its_shape():
    with pytest.raises(ValueError, match="multiple of size"):
        _core.device_repeat_rows_backward(0, np.zeros((5, 2), np.float32), 2)
