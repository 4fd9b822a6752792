"""The Embedding ops of the backend harness (_core.device_embedding_forward and
device_embedding_backward) on the CPU and the guarded backend, against float64 NumPy
references: a gather of table rows, and the table's gradient (each row the sum of the output
gradients of the positions naming it).

The same functions run the CUDA backend in tests/test_cuda_embedding.py.
"""

import numpy as np
import pytest

from deepcore import _core

DEVICES = [0, 2]  # CPU, guarded

# input_dim, dim, index shape: one row, odd sizes, many repeats, a table larger than the
# positions, many positions (the CPU's threads split the table's rows)
CASES = [
    (1, 1, (1,)),
    (7, 3, (2, 5)),
    (3, 17, (4, 9)),
    (1000, 16, (32, 11)),
    (50, 64, (64, 200)),
    (100000, 8, (16, 7)),
]


def case_id(case):
    v, d, s = case
    return f"{v}x{d}-{'x'.join(map(str, s))}"


def inputs(case, seed=0):
    v, d, shape = case
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(v, d)).astype(np.float32)
    idx = rng.integers(0, v, shape).astype(np.float32)
    dy = rng.normal(size=(*shape, d)).astype(np.float32)
    return table, idx, dy


def reference_backward(idx, dy, input_dim):
    d = dy.shape[-1]
    out = np.zeros((input_dim, d))
    np.add.at(out, idx.astype(np.int64).ravel(), dy.reshape(-1, d).astype(np.float64))
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_embedding_forward(device, case):
    table, idx, _ = inputs(case)
    out = np.asarray(_core.device_embedding_forward(device, table, idx), np.float32)
    np.testing.assert_array_equal(out.reshape(*idx.shape, -1), table[idx.astype(np.int64)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_embedding_backward(device, case):
    _, idx, dy = inputs(case)
    got = _core.device_embedding_backward(device, idx, dy, case[0])
    want = reference_backward(idx, dy, case[0])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # the positions' order, whatever the threads: the bits of a serial float32 sum
    serial = np.zeros((case[0], case[1]), np.float32)
    for i, r in enumerate(idx.astype(np.int64).ravel()):
        serial[r] += dy.reshape(-1, case[1])[i]
    np.testing.assert_array_equal(got, serial)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bad", [7.0, -1.0, 0.5, np.nan, np.inf])
def test_embedding_forward_refuses_invalid_indices(device, bad):
    table, idx, _ = inputs((7, 3, (2, 5)))
    idx[1, 3] = bad
    with pytest.raises(ValueError, match=r"integers in \[0, input_dim=7\)"):
        _core.device_embedding_forward(device, table, idx)
    # the device goes on working
    idx[1, 3] = 6
    out = np.asarray(_core.device_embedding_forward(device, table, idx), np.float32)
    np.testing.assert_array_equal(out.reshape(2, 5, 3), table[idx.astype(np.int64)])
