"""scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), split like Iris.

The images come from `sklearn.datasets.load_digits`, which ships the data with
scikit-learn (no download); scikit-learn is imported only when `load_data` is called.
"""

from __future__ import annotations

import numpy as np

from ._split import stratified_split

__all__ = ["load_data", "NUM_CLASSES"]

NUM_CLASSES = 10


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            "deepcore.datasets.digits needs scikit-learn, which ships the 8x8 digits: "
            "pip install scikit-learn"
        ) from e
    return load_digits()


def load_data(
    test_split: float = 0.2, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the 8x8 digits, split per class (stratified) into train and test sets.

    Args:
        test_split: Fraction of each class held out for testing (0 keeps all for training).
        seed: Seed of the shuffle before the split.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 images of shape (n, 8, 8) with
        values 0..16 (ink per cell), int64 labels 0..9. Add a channel axis
        (`deepcore.preprocessing.add_channel_axis`) before a Conv2D.

    Raises:
        ImportError: scikit-learn is not installed.
    """
    if not 0.0 <= test_split < 1.0:  # before the import that may fail
        raise ValueError(f"test_split must be in [0, 1). Received: test_split={test_split}")
    bunch = _load_digits()
    x = np.asarray(bunch.images, dtype=np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    return stratified_split(x, y, NUM_CLASSES, test_split, seed)
