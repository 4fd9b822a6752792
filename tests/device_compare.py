"""What the CUDA tests (tests/test_cuda*.py) compare results with: a device's output
against the CPU's, to float32 rounding."""

import numpy as np


def norm_err(got, want):
    """Largest difference over the largest magnitude."""
    want = np.asarray(want, np.float64)
    return np.abs(np.asarray(got, np.float64) - want).max() / max(np.abs(want).max(), 1e-30)


def assert_elementwise(got, want, rtol=1e-5):
    """|got - want| <= rtol |want|, with a floor of rtol * 0.1 * max|want| for values near 0
    (where a 1-ulp difference in an input is a large relative one)."""
    want = np.asarray(want, np.float64)
    floor = rtol * 0.1 * max(np.abs(want).max(), 1e-30)
    bad = np.abs(np.asarray(got, np.float64) - want) > rtol * np.abs(want) + floor
    assert not bad.any(), f"{bad.sum()} of {bad.size} differ; first at {np.argwhere(bad)[0]}"
