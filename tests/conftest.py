import numpy as np
import pytest

import deepcore as dc


@pytest.fixture(autouse=True)
def _seed():
    dc.utils.set_random_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
