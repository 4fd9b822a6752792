"""Small data sets: Iris (shipped), scikit-learn's 8x8 digits, MNIST from local IDX files."""

from . import digits, iris, mnist

__all__ = ["digits", "iris", "mnist"]
