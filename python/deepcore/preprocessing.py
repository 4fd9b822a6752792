"""Small helpers to turn image arrays into Conv2D inputs.

    (x_train, y_train), (x_test, y_test) = deepcore.datasets.mnist.load_data()
    x_train = add_channel_axis(rescale(x_train))      # uint8 (n, 28, 28) -> float32 (n, 28, 28, 1)

Every helper returns a new float32 array (add_channel_axis keeps the dtype) and accepts
anything `np.asarray` does.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["rescale", "add_channel_axis", "scale_to_unit"]


def _numeric(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric array. Received dtype {x.dtype}")
    return x


def rescale(x: ArrayLike, scale: float = 1.0 / 255.0, offset: float = 0.0) -> np.ndarray:
    """`x * scale + offset` as float32, as Keras' `Rescaling` layer does.

    The default maps 8-bit pixels 0..255 to 0..1; `scale=1/127.5, offset=-1` maps them to
    -1..1. The product is computed in float64 before the cast, so 255 * (1/255) is 1.0.
    """
    x = _numeric(x, "rescale")
    return (x.astype(np.float64) * float(scale) + float(offset)).astype(np.float32)


def add_channel_axis(x: ArrayLike) -> np.ndarray:
    """Appends a channel axis of size 1: (n, h, w) -> (n, h, w, 1) for a channels_last
    Conv2D. The values and dtype are unchanged."""
    x = np.asarray(x)
    return np.ascontiguousarray(x[..., np.newaxis])


def scale_to_unit(x: ArrayLike, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Min-max scaling to 0..1 over the whole array (one minimum and maximum for the data set,
    not per image or per feature), as float32.

    Args:
        x: The data.
        value_range: `(low, high)` to use instead of `x`'s own minimum and maximum, e.g. the
            training set's range when scaling the test set (values outside it fall outside
            0..1).

    A constant array (high == low) becomes all zeros.
    """
    x = _numeric(x, "scale_to_unit").astype(np.float64)
    if value_range is None:
        if x.size == 0:
            return x.astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError("scale_to_unit: the data contains NaN or inf")
        low, high = float(x.min()), float(x.max())
    else:
        low, high = (float(v) for v in value_range)
        if not (np.isfinite(low) and np.isfinite(high)) or high < low:
            raise ValueError(
                f"scale_to_unit: value_range must be finite (low, high) with low <= high. "
                f"Received: {value_range!r}"
            )
    if high == low:
        return np.zeros(x.shape, np.float32)
    return ((x - low) / (high - low)).astype(np.float32)
