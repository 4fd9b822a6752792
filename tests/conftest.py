import os

import numpy as np
import pytest

import deepcore as dc

# DEEPCORE_TEST_DEVICE=guarded runs the tests' models on the guarded backend (CPU kernels on
# memory the engine cannot read; see tests/test_guarded.py).
if os.environ.get("DEEPCORE_TEST_DEVICE"):
    dc.config.set_device(os.environ["DEEPCORE_TEST_DEVICE"])


@pytest.fixture(autouse=True)
def _seed():
    dc.utils.set_random_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
