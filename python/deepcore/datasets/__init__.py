"""Small data sets: Iris and the yearly sunspot numbers (shipped), scikit-learn's 8x8 digits,
MNIST from local IDX files."""

from . import digits, iris, mnist, sunspots

__all__ = ["digits", "iris", "mnist", "sunspots"]
