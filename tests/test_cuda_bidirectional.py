"""The CUDA backend's Bidirectional merge op against the CPU backend's, on the cases of
tests/test_bidirectional.py and larger ones: the same per-element maths (recurrent_maths.h),
so the results agree exactly. A Bidirectional model trained on the GPU against the CPU:
tests/test_cuda_fit.py (EVERY_MODEL).

Runs only with a CUDA build on a machine with an NVIDIA GPU (deepcore.cuda.is_available());
skipped elsewhere.
"""

import numpy as np
import pytest

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CPU, CUDA = 0, 1


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize(
    "shape", [(1, 1, 3, 3), (3, 5, 4, 4), (2, 7, 2, 5), (300, 40, 64, 32)], ids=str
)
def test_merge_matches_the_cpu(mode, shape, rng):
    rows, steps, ua, ub = shape
    if mode != "concat":
        ub = ua
    a = rng.normal(size=(rows, steps, ua)).astype(np.float32)
    b = rng.normal(size=(rows, steps, ub)).astype(np.float32)
    width = ua + ub if mode == "concat" else ua
    dy = rng.normal(size=(rows, steps, width)).astype(np.float32)
    kind = getattr(_core.Merge, mode)
    want = _core.device_bidir_merge(CPU, kind, a, b, dy)
    got = _core.device_bidir_merge(CUDA, kind, a, b, dy)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
