"""The CUDA backend's sequence-mask ops and masked recurrent steps against the CPU
backend's: the same per-element maths (mask_maths.h, recurrent_maths.h) on the same inputs.

Runs only with a CUDA build on a machine with an NVIDIA GPU (deepcore.cuda.is_available());
skipped elsewhere. A masked model trained on the GPU: tests/test_cuda_fit.py (EVERY_MODEL).
"""

import numpy as np
import pytest
from test_recurrent import GATES

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CPU, CUDA = 0, 1


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 5), (64, 100, 32)])
def test_mask_ops_match_the_cpu(shape, rng):
    x = rng.normal(size=shape).astype(np.float32)
    x[rng.random(shape[:2]) < 0.3] = 0.0
    for value in (0.0, 0.5):
        a, b = (_core.device_sequence_mask(d, x, value) for d in (CPU, CUDA))
        np.testing.assert_array_equal(b, a)
    m = _core.device_sequence_mask(CPU, x, 0.0)
    m[:, 0] = 1.0
    rows = x.reshape(-1, shape[2])
    a, b = (_core.device_mask_rows(d, rows, m.ravel()) for d in (CPU, CUDA))
    np.testing.assert_array_equal(b, a)
    dy = rng.normal(size=(shape[0], shape[2])).astype(np.float32)
    for a, b in zip(*(_core.device_masked_mean_steps(d, x, m, dy) for d in (CPU, CUDA))):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    w = rng.random(shape[0]).astype(np.float32)
    for mask in (m, np.zeros_like(m)):  # one block counts the unmasked positions
        for a, b in zip(*(_core.device_mask_weights(d, mask, w) for d in (CPU, CUDA))):
            np.testing.assert_allclose(b, a, rtol=1e-6)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_masked_steps_match_the_cpu(kind, rng):
    B, U = 33, 17
    g = GATES[kind]
    z = rng.normal(size=(B, g * U)).astype(np.float32)
    hr = rng.normal(size=(B, g * U)).astype(np.float32)
    hprev, cprev, dh, dy, dcar = (rng.normal(size=(B, U)).astype(np.float32) for _ in range(5))
    mask = (rng.random(B) > 0.4).astype(np.float32)
    prev = cprev if kind == "lstm" else hprev
    kinds = (getattr(_core.Cell, kind), _core.Act.tanh, _core.Act.sigmoid)
    fwd = [
        _core.device_recurrent_step_forward(d, *kinds, z, hr, prev, hprev=hprev, mask=mask)
        for d in (CPU, CUDA)
    ]
    for a, b in zip(*fwd):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    gates, h, state = fwd[0]
    dc_ = dcar if kind == "lstm" else None
    bwd = [
        _core.device_recurrent_step_backward(d, *kinds, gates, dh, dy, h, prev, state, dc_, mask)
        for d in (CPU, CUDA)
    ]
    for a, b in zip(*bwd):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
