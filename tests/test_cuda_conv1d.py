"""The CUDA backend's sequence ops (dilated and causal 1-D im2col / col2im, row repetition)
against the CPU backend's, on the cases of tests/test_backend_conv1d.py and larger ones.

Runs only with a CUDA build on a machine with an NVIDIA GPU; skipped elsewhere. im2col and
the repetition are copies, and col2im and the repetition's backward add the same values in
the CPU's order (a gather over the windows, earliest first): all must be bit-identical.
"""

import numpy as np
import pytest
from test_backend_conv1d import CONVS, PADDINGS, REPEATS, conv_id, geometry_1d, sequence

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CPU, CUDA = 0, 1
BIG_CONVS = [
    (64, 1000, 32, 5, 1, 4, "causal"),
    (128, 257, 64, 3, 2, 1, "same"),
    (32, 500, 16, 7, 1, 3, "valid"),
]


@pytest.mark.parametrize("case", CONVS + BIG_CONVS, ids=conv_id)
def test_im2col_col2im_1d_match_the_cpu_bit_for_bit(case):
    n, steps, c, k, s, d, p = case
    x = sequence(case)
    pad = PADDINGS[p]
    cols = _core.device_im2col_1d(CUDA, x, k, s, d, pad)
    np.testing.assert_array_equal(cols, _core.device_im2col_1d(CPU, x, k, s, d, pad))
    out, _ = geometry_1d(steps, k, s, d, p)
    g = np.random.default_rng(1).normal(size=(n * out, k * c)).astype(np.float32)
    np.testing.assert_array_equal(
        _core.device_col2im_1d(CUDA, g, n, steps, c, k, s, d, pad),
        _core.device_col2im_1d(CPU, g, n, steps, c, k, s, d, pad),
    )


@pytest.mark.parametrize("case", REPEATS + [(100000, 3, 8)], ids=str)
def test_repeat_rows_matches_the_cpu_bit_for_bit(case):
    rows, size, cols = case
    rng = np.random.default_rng(2)
    x = rng.normal(size=(rows, cols)).astype(np.float32)
    dy = rng.normal(size=(rows * size, cols)).astype(np.float32)
    np.testing.assert_array_equal(
        _core.device_repeat_rows(CUDA, x, size), _core.device_repeat_rows(CPU, x, size)
    )
    np.testing.assert_array_equal(
        _core.device_repeat_rows_backward(CUDA, dy, size),
        _core.device_repeat_rows_backward(CPU, dy, size),
    )


def test_conv1d_model_trains_on_the_gpu_as_on_the_cpu():
    """A Conv1D -> MaxPooling1D -> UpSampling1D -> Conv1D -> Flatten -> Dense model: the same
    loss and weights on both devices after a few steps (GEMMs may differ in the last bits)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 37, 3)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    models = []
    for device in ("cpu", "cuda"):
        dc.config.set_device(device)
        try:
            dc.utils.set_random_seed(4)
            m = dc.Sequential(
                [
                    dc.Input(shape=(37, 3)),
                    dc.layers.Conv1D(8, 5, padding="causal", dilation_rate=2, activation="relu"),
                    dc.layers.MaxPooling1D(),
                    dc.layers.UpSampling1D(2),
                    dc.layers.Conv1D(8, 3, strides=2, padding="same", activation="tanh"),
                    dc.layers.AveragePooling1D(3, padding="same"),
                    dc.layers.Flatten(),
                    dc.layers.Dense(3),
                ]
            )
            m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
            models.append(m)
        finally:
            dc.config.set_device("cpu")
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
