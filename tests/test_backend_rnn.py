"""The recurrent step ops of the backend harness (_core.device_recurrent_step_forward and
device_recurrent_step_backward) on the CPU and the guarded backend, against float64 NumPy
implementations of one step of SimpleRNN, LSTM and GRU (Keras 3's equations; GRU's
reset_after form), forward and backward (the backward's gradients checked against the
float64 step's finite differences).

The same functions run the CUDA backend in tests/test_cuda_rnn.py.
"""

import numpy as np
import pytest
from test_recurrent import ACTS, GATES, fd_gradients

from deepcore import _core

DEVICES = [0, 2]  # CPU, guarded
CELLS = GATES  # gate blocks per cell
# batch, units, act, rec, first step (no hr, no previous state)
CASES = [
    (1, 1, "tanh", "sigmoid", False),
    (3, 5, "tanh", "sigmoid", True),
    (7, 9, "relu", "hard_sigmoid", False),
    (64, 33, "linear", "sigmoid", False),
]


def step_inputs(cell, case, seed=0):
    b, u, _, _, first = case
    g = CELLS[cell] * u
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(b, g)).astype(np.float32)
    hr = None if first else rng.normal(size=(b, g)).astype(np.float32)
    prev = None if first or cell == "simple_rnn" else rng.normal(size=(b, u)).astype(np.float32)
    rbias = rng.normal(size=g).astype(np.float32) if cell == "gru" else None
    return z, hr, prev, rbias


def np_step(cell, act, rec, z, hr, prev, rbias):
    """(h, state): one step in float64 from the pre-activations z (x W + b) and hr."""
    f, g = ACTS[act], ACTS[rec]
    z = z.astype(np.float64)
    hr = np.zeros_like(z) if hr is None else hr.astype(np.float64)
    u = z.shape[1] // CELLS[cell]
    p = np.zeros((len(z), u)) if prev is None else prev.astype(np.float64)
    if cell == "simple_rnn":
        h = f(z + hr)
        return h, h
    if cell == "lstm":
        i, fg, cc, o = np.split(z + hr, 4, axis=1)
        c = g(fg) * p + g(i) * f(cc)
        return g(o) * f(c), c
    rz, rr, rh = np.split(hr + rbias, 3, axis=1)
    xz, xr, xh = np.split(z, 3, axis=1)
    zg, r = g(xz + rz), g(xr + rr)
    hh = f(xh + r * rh)
    return zg * p + (1 - zg) * hh, rh


def enum(cell, act, rec):
    return getattr(_core.Cell, cell), getattr(_core.Act, act), getattr(_core.Act, rec)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("case", CASES, ids=str)
def test_step_forward(device, cell, case):
    z, hr, prev, rbias = step_inputs(cell, case)
    _, h, state = _core.device_recurrent_step_forward(
        device, *enum(cell, *case[2:4]), z, hr, prev, rbias
    )
    want_h, want_state = np_step(cell, *case[2:4], z, hr, prev, rbias)
    np.testing.assert_allclose(h, want_h, rtol=1e-5, atol=1e-6)
    if cell != "simple_rnn":
        np.testing.assert_allclose(state, want_state, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("case", CASES[:3], ids=str)
def test_step_backward_against_finite_differences(device, cell, case):
    # L = sum(wh * h) + sum(wc * c) (LSTM); the step's gradients wrt z, hr (dr for GRU, else
    # dz), h_{t-1} (GRU's direct part) and c_{t-1} (LSTM) against central differences.
    act, rec = case[2:4]
    z, hr, prev, rbias = step_inputs(cell, case)
    if prev is None and cell != "simple_rnn":
        prev = np.zeros((z.shape[0], z.shape[1] // CELLS[cell]), np.float32)
    rng = np.random.default_rng(1)
    dh = rng.normal(size=prev.shape if prev is not None else (z.shape[0], case[1]))
    dh = dh.astype(np.float32)
    dc = rng.normal(size=dh.shape).astype(np.float32)
    gates, h, state = _core.device_recurrent_step_forward(
        device, *enum(cell, act, rec), z, hr, prev, rbias
    )
    dz, dr, dh_prev, dc_prev = _core.device_recurrent_step_backward(
        device,
        *enum(cell, act, rec),
        gates,
        dh,
        None,
        h,
        prev,
        state,
        dc if cell == "lstm" else None,
    )

    def loss(z_, hr_, prev_):
        h_, s_ = np_step(cell, act, rec, z_, hr_, prev_, rbias)
        out = np.sum(dh * h_)
        return out + (np.sum(dc * s_) if cell == "lstm" else 0.0)

    z64 = z.astype(np.float64)
    hr64 = np.zeros_like(z64) if hr is None else hr.astype(np.float64)
    p64 = None if prev is None else prev.astype(np.float64)

    def fd(arr, call):
        return fd_gradients(call, [arr])[0]

    call = lambda: loss(z64, hr64, p64)  # noqa: E731
    tol = {"rtol": 1e-4, "atol": 1e-5}
    np.testing.assert_allclose(dz, fd(z64, call), **tol)
    np.testing.assert_allclose(dr if cell == "gru" else dz, fd(hr64, call), **tol)
    if cell == "gru":
        np.testing.assert_allclose(dh_prev, fd(p64, call), **tol)
    elif cell == "lstm":
        np.testing.assert_allclose(dc_prev, fd(p64, call), **tol)
        np.testing.assert_array_equal(dh_prev, 0)
    else:
        np.testing.assert_array_equal(dh_prev, 0)


def test_bad_shapes_raise():
    z = np.zeros((2, 7), np.float32)
    with pytest.raises(ValueError, match="z must have shape"):
        _core.device_recurrent_step_forward(0, *enum("lstm", "tanh", "sigmoid"), z)
