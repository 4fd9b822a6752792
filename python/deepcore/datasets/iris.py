"""Fisher's Iris data (150 samples, 4 features, 3 classes), shipped with the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_data", "CLASS_NAMES", "FEATURE_NAMES"]

CLASS_NAMES = ("setosa", "versicolor", "virginica")
FEATURE_NAMES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")


def load_data(test_split: float = 0.2, seed: int = 0):
    """Loads Iris, split per class (stratified) into train and test sets.

    Args:
        test_split: Fraction of each class held out for testing (0 keeps all for training).
        seed: Seed of the shuffle before the split.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 features, int64 labels 0..2.
    """
    if not 0.0 <= test_split < 1.0:
        raise ValueError(f"test_split must be in [0, 1). Received: test_split={test_split}")
    data = np.loadtxt(Path(__file__).with_name("data") / "iris.csv", delimiter=",", skiprows=1)
    x, y = data[:, :4].astype(np.float32), data[:, 4].astype(np.int64)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in range(3):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * test_split))
        test.extend(idx[:k])
        train.extend(idx[k:])
    train, test = rng.permutation(train), rng.permutation(np.array(test, dtype=np.int64))
    return (x[train], y[train]), (x[test], y[test])
