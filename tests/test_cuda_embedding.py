"""The CUDA backend's Embedding ops against the CPU backend's, on the cases of
tests/test_backend_embedding.py and larger ones: the gather is a copy and the gradient adds
the positions in the CPU's order, so both must be bit-identical; an invalid index raises the
CPU's error at the next copy, and the device goes on working.

Runs only with a CUDA build on a machine with an NVIDIA GPU (deepcore.cuda.is_available());
skipped elsewhere.
"""

import numpy as np
import pytest
from test_backend_embedding import CASES, case_id, inputs

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CPU, CUDA = 0, 1
BIG = [(20000, 128, (256, 100)), (1 << 24, 4, (8, 3)), (10, 300, (1000, 50))]


@pytest.mark.parametrize("case", CASES + BIG, ids=case_id)
def test_embedding_forward_and_backward_are_the_cpus_bits(case):
    table, idx, dy = inputs(case)
    np.testing.assert_array_equal(
        _core.device_embedding_forward(CUDA, table, idx),
        _core.device_embedding_forward(CPU, table, idx),
    )
    np.testing.assert_array_equal(
        _core.device_embedding_backward(CUDA, idx, dy, case[0]),
        _core.device_embedding_backward(CPU, idx, dy, case[0]),
    )


@pytest.mark.parametrize("bad", [7.0, -1.0, 0.5, np.nan, np.inf])
def test_invalid_indices_raise_at_the_next_copy(bad):
    table, idx, _ = inputs((7, 3, (2, 5)))
    idx[1, 3] = bad
    with pytest.raises(ValueError, match=r"integers in \[0, input_dim=7\)"):
        _core.device_embedding_forward(CUDA, table, idx)
    idx[1, 3] = 6
    np.testing.assert_array_equal(
        _core.device_embedding_forward(CUDA, table, idx),
        _core.device_embedding_forward(CPU, table, idx),
    )


def test_an_embedding_model_trains_on_the_gpu_as_on_the_cpu():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1000, (64, 11))
    y = rng.integers(0, 2, (64, 1)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        dc.config.set_device(device)
        try:
            dc.utils.set_random_seed(3)
            m = dc.Sequential(
                [
                    dc.Input(shape=(11,)),
                    dc.layers.Embedding(1000, 16),
                    dc.layers.GlobalAveragePooling1D(),
                    dc.layers.Dense(1, activation="sigmoid"),
                ]
            )
            m.compile("adam", "binary_crossentropy")
            h = m.fit(x, y, epochs=3, batch_size=16, verbose=0).history["loss"]
            results.append((h, m.get_weights()))
        finally:
            dc.config.set_device("cpu")
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    for a, b in zip(results[1][1], results[0][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
