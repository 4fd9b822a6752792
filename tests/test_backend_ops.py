"""The backend test harness (_core.device_*) on the CPU, against float64 NumPy references.

The same functions run the CUDA backend in tests/test_cuda.py; here they check the harness
itself and the CPU backend's memory API (allocate, upload, copy, fill, download).
"""

import numpy as np
import pytest
from test_activations import DERIVATIVE, FORWARD, engine_alpha

import deepcore as dc
from deepcore import _core

CPU = 0
SHAPES = [(1, 1), (1, 7), (5, 3), (33, 17), (128, 64), (300, 129)]
ACTS = sorted(set(FORWARD) - {"silu"})


def rel_err(got, want):
    """Largest error over the largest value (norm-wise: no blow-up where want ~ 0)."""
    want = np.asarray(want, np.float64)
    scale = max(np.abs(want).max(), 1e-30)
    return np.abs(np.asarray(got, np.float64) - want).max() / scale


def test_roundtrip_and_fill(rng):
    for shape in [(1,), (7,), (3, 5), (1000, 33)]:
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_array_equal(_core.device_roundtrip(CPU, x), x)
    np.testing.assert_array_equal(_core.device_fill(CPU, 1001, 2.5), np.full(1001, 2.5, np.float32))
    assert _core.device_fill(CPU, 0, 1.0).shape == (0,)
    assert _core.device_name(CPU) == "cpu"


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize(
    "m,n,k",
    # (the last three: B streamed by our kernel, B past that bound, sums too short for it)
    [
        (1, 1, 1),
        (1, 10, 784),
        (5, 3, 2),
        (37, 29, 61),
        (256, 130, 96),
        (130, 300, 257),
        (40, 1100, 1000),
        (100, 300, 40),
        (1, 1000, 50),  # (one row: blocks of whole rows' vectors, then narrow ones)
        (1, 200, 33),
    ],
)
def test_gemm(rng, ta, tb, m, n, k):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = (a64.T if ta else a64) @ (b64.T if tb else b64)
    assert rel_err(_core.device_gemm(CPU, a, b, ta, tb), want) < 1e-5
    got = _core.device_gemm(CPU, a, b, ta, tb, alpha=0.5, beta=2.0, c=c)
    assert rel_err(got, 0.5 * want + 2.0 * c) < 1e-5


def test_gemm_one_row_is_the_same_bits_as_in_a_block(rng):
    """A single row (predicting one sample) goes through wider blocks than several rows do;
    each row's values are the same bits either way (row i of A B = A[i] B)."""
    for n, k in ((700, 30), (256, 100), (129, 17)):
        a = rng.standard_normal((4, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        whole = _core.device_gemm(CPU, a, b)
        for i in range(4):
            assert np.array_equal(_core.device_gemm(CPU, a[i : i + 1], b), whole[i : i + 1])


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("m,k,n", [(19, 23, 11), (1, 40, 700)])  # (one row: wide blocks)
def test_affine(rng, name, bias, in_place, m, k, n):
    spec = dc.activations.spec(name)
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) * 0.3).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    z64 = a.astype(np.float64) @ w.astype(np.float64) + (b if bias else 0.0)
    z, y = _core.device_affine(CPU, spec, a, w, b, in_place)
    ref = FORWARD[name]
    alpha = engine_alpha(name)
    want = ref(z64) if alpha is None else ref(z64, alpha)
    assert rel_err(y, want) < 1e-5
    if not in_place:
        assert rel_err(z, z64) < 1e-5


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("shape", [(1, 1), (4, 9), (65, 33)])
def test_bias_act(rng, name, shape):
    spec = dc.activations.spec(name)
    z = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32)
    z_out, y = _core.device_bias_act(CPU, spec, z, b)
    z64 = z.astype(np.float64) + b
    alpha = engine_alpha(name)
    want = FORWARD[name](z64) if alpha is None else FORWARD[name](z64, alpha)
    assert rel_err(z_out, z64) < 1e-6
    assert rel_err(y, want) < 1e-5


@pytest.mark.parametrize("name", sorted(set(DERIVATIVE) - {"silu"}))
@pytest.mark.parametrize("shape", [(1, 1), (3, 10), (70, 31)])
def test_act_backward(rng, name, shape):
    spec = dc.activations.spec(name)
    x = rng.standard_normal(shape).astype(np.float32) * 2
    y = dc.activations.get(name)(x).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    alpha = engine_alpha(name)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    want = DERIVATIVE[name](x64, dy64) if alpha is None else DERIVATIVE[name](x64, dy64, alpha)
    got = _core.device_act_backward(CPU, spec, x, y, dy)
    assert rel_err(got, want) < 1e-5


def test_step_has_no_gradient():
    x = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="no gradient"):
        _core.device_act_backward(CPU, dc.activations.spec("step"), x, x, x)


@pytest.mark.parametrize("shape", SHAPES + [(5000, 3)])
def test_col_sum(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    want = x.astype(np.float64).sum(axis=0)
    got = _core.device_col_sum(CPU, x)
    # float32 sums: error relative to the sum of magnitudes
    assert np.all(np.abs(got - want) <= 1e-6 * np.abs(x).sum(axis=0) + 1e-7)


def test_bad_arguments():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="do not fit"):
        _core.device_gemm(CPU, a, a)
    with pytest.raises(ValueError, match="unknown device"):
        _core.device_roundtrip(7, a)


def test_cuda_is_reported_not_raised():
    # On any build and machine: a bool, never an exception; the reason comes with device_name.
    assert isinstance(dc.cuda.is_available(), bool)
    if not dc.cuda.is_available():
        with pytest.raises(ValueError, match="cuda' is not available"):
            dc.cuda.device_name()
