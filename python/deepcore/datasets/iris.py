"""Fisher's Iris data (150 samples, 4 features, 3 classes), shipped with the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._split import stratified_split

__all__ = ["load_data", "CLASS_NAMES", "FEATURE_NAMES"]

CLASS_NAMES = ("setosa", "versicolor", "virginica")
FEATURE_NAMES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")


def load_data(
    test_split: float = 0.2, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads Iris, split per class (stratified) into train and test sets.

    Args:
        test_split: Fraction of each class held out for testing (0 keeps all for training).
        seed: Seed of the shuffle before the split.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 features, int64 labels 0..2.
    """
    data = np.loadtxt(Path(__file__).with_name("data") / "iris.csv", delimiter=",", skiprows=1)
    x, y = data[:, :4].astype(np.float32), data[:, 4].astype(np.int64)
    return stratified_split(x, y, 3, test_split, seed)
