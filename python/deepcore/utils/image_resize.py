"""Resizing image arrays on the host as the Resizing layer does (the engine's resampling,
Keras' backend resize): what the image loaders use."""

from __future__ import annotations

import functools

import numpy as np

from .. import _core

__all__ = ["INTERPOLATIONS", "resize"]

INTERPOLATIONS = tuple(_core.Interpolation.__members__)


@functools.lru_cache(maxsize=16)
def _resizer(
    shape: tuple[int, ...], size: tuple[int, int], interpolation: str, crop: bool, pad: bool
):
    """A model of one Resizing layer for images of `shape` (kept for the next of that size)."""
    from ..layers import Input, Resizing
    from ..models.sequential import Sequential

    resizing = Resizing(*size, interpolation, crop_to_aspect_ratio=crop, pad_to_aspect_ratio=pad)
    return Sequential([Input(shape=shape), resizing], name="image_resize")


def resize(
    images: np.ndarray,
    size: tuple[int, int],
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
) -> np.ndarray:
    """A batch of images (n, h, w, c) resized to (n, height, width, c) in float32.

    Args:
        images: The images, channels last.
        size: (height, width).
        interpolation: One of INTERPOLATIONS.
        crop_to_aspect_ratio: Resize the largest centred window with the output's aspect ratio.
        pad_to_aspect_ratio: Pad with zeros, evenly on both sides, to the output's aspect ratio.
    """
    images = np.asarray(images, np.float32)
    height, width = int(size[0]), int(size[1])
    if images.shape[1:3] == (height, width):
        return images.copy()
    model = _resizer(
        images.shape[1:], (height, width), interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio
    )
    return model.predict(images, batch_size=max(len(images), 1), verbose=0)
