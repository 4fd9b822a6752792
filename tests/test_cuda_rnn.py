"""The CUDA backend's recurrent step ops against the CPU backend's, on the cases of
tests/test_backend_rnn.py and larger ones: the same per-element maths (recurrent_maths.h)
on the same inputs, so the results agree to float32 rounding of the device's exp and tanh.

Runs only with a CUDA build on a machine with an NVIDIA GPU (deepcore.cuda.is_available());
skipped elsewhere.
"""

import numpy as np
import pytest
from test_backend_rnn import CASES, CELLS, enum, step_inputs

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CPU, CUDA = 0, 1
BIG = [(512, 256, "tanh", "sigmoid", False), (1000, 7, "relu", "hard_sigmoid", False)]


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("case", CASES + BIG, ids=str)
def test_steps_match_the_cpu(cell, case):
    z, hr, prev, rbias = step_inputs(cell, case)
    if prev is None and cell != "simple_rnn":
        prev = np.zeros((z.shape[0], z.shape[1] // CELLS[cell]), np.float32)
    kinds = enum(cell, *case[2:4])
    fwd = [_core.device_recurrent_step_forward(d, *kinds, z, hr, prev, rbias) for d in (CPU, CUDA)]
    for a, b in zip(*fwd):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    gates, h, state = fwd[0]
    rng = np.random.default_rng(2)
    dh = rng.normal(size=h.shape).astype(np.float32)
    dy = rng.normal(size=h.shape).astype(np.float32)
    dc = rng.normal(size=h.shape).astype(np.float32) if cell == "lstm" else None
    bwd = [
        _core.device_recurrent_step_backward(d, *kinds, gates, dh, dy, h, prev, state, dc)
        for d in (CPU, CUDA)
    ]
    for a, b in zip(*bwd):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)


# A recurrent model trained on the GPU against the CPU: tests/test_cuda_fit.py (EVERY_MODEL).
