"""The stratified train/test split shared by the bundled datasets."""

from __future__ import annotations

from typing import Any

import numpy as np


def stratified_split(x, y, num_classes: int, test_split: float, seed):
    """`(x_train, y_train), (x_test, y_test)`: `test_split` of each class (rounded) goes to
    the test part; both parts are shuffled, all from `np.random.default_rng(seed)`."""
    if not 0.0 <= test_split < 1.0:
        raise ValueError(f"test_split must be in [0, 1). Received: test_split={test_split}")
    rng = np.random.default_rng(seed)
    train: Any = []  # (then arrays of indices)
    test: Any = []
    for c in range(num_classes):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * test_split))
        test.extend(idx[:k])
        train.extend(idx[k:])
    train = rng.permutation(np.array(train, dtype=np.int64))
    test = rng.permutation(np.array(test, dtype=np.int64))
    return (x[train], y[train]), (x[test], y[test])
