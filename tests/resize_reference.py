"""A float64 NumPy reference of Keras' image resize (its JAX backend's `jax.image.resize`),
for the tests of Resizing, CenterCrop and the image loaders: each output pixel a weighted
sum of input pixels, separable along height and width.

Along one axis of `n` input positions resized to `m`, output position i samples the input at
s = (i + 0.5) * n / m - 0.5 (half-pixel centres) with a kernel of the distance: linear
max(0, 1 - |d|) ("bilinear"), Keys' cubic with a = -0.5 ("bicubic"), Lanczos of radius 3 or 5;
the weights of each output are divided by their sum (taps outside the image are dropped),
and an output whose sample lies outside [-0.5, n - 0.5] gets none. "nearest" takes input
floor((i + 0.5) * n / m) (computed in float32, as JAX does). An axis whose size does not
change is copied.
"""

from __future__ import annotations

import numpy as np

INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")


def _lanczos(radius: int):
    def kernel(d):
        d = np.abs(d)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = radius * np.sin(np.pi * d) * np.sin(np.pi * d / radius) / (np.pi**2 * d**2)
        return np.where(d > radius, 0.0, np.where(d > 1e-3, y, 1.0))

    return kernel


def _keys_cubic(d):
    d = np.abs(d)
    near = ((1.5 * d - 2.5) * d) * d + 1.0
    far = ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0
    return np.where(d >= 2.0, 0.0, np.where(d >= 1.0, far, near))


_KERNELS = {
    "bilinear": lambda d: np.maximum(0.0, 1.0 - np.abs(d)),
    "bicubic": _keys_cubic,
    "lanczos3": _lanczos(3),
    "lanczos5": _lanczos(5),
}


def axis_weights(n: int, m: int, interpolation: str, antialias: bool = False) -> np.ndarray:
    """The (m, n) float64 matrix of one axis: output i = sum over j of w[i, j] * input j
    (with `antialias`, a shrinking axis's kernel widened by n / m)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"interpolation must be one of {INTERPOLATIONS}. Received: interpolation="
            f"{interpolation!r}"
        )
    if n == m:
        return np.eye(n)
    w = np.zeros((m, n))
    if interpolation == "nearest":
        at = np.floor(((np.arange(m, dtype=np.float32) + 0.5) * np.float32(n / m))).astype(int)
        w[np.arange(m), np.minimum(at, n - 1)] = 1.0
        return w
    sample = (np.arange(m) + 0.5) * (n / m) - 0.5
    widen = max(1.0, n / m) if antialias else 1.0
    w = _KERNELS[interpolation]((sample[:, None] - np.arange(n)[None, :]) / widen)
    total = w.sum(axis=1, keepdims=True)
    w = np.where(np.abs(total) > 1000 * np.finfo(np.float32).eps, w / np.where(total, total, 1), 0)
    inside = (sample >= -0.5) & (sample <= n - 0.5)
    return np.where(inside[:, None], w, 0.0)


def crop_box(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) of the centred crop of an h x w image with the
    aspect ratio of height x width (Keras' `crop_to_aspect_ratio`)."""
    ch = max(min(h, int(float(w * height) / width)), 1)
    cw = max(min(w, int(float(h * width) / height)), 1)
    return int(float(h - ch) / 2), int(float(w - cw) / 2), ch, cw


def placed(weights: np.ndarray, start: int, n: int) -> np.ndarray:
    """An axis matrix over a window [start, start + its width) as one over the n input
    positions: a crop (start >= 0), or zero padding around the input (start < 0)."""
    full = np.zeros((weights.shape[0], n))
    for j in range(weights.shape[1]):
        if 0 <= start + j < n:
            full[:, start + j] = weights[:, j]
    return full


def pad_box(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, padded height, padded width) of an h x w image padded with zeros evenly
    on both sides to the aspect ratio of height x width (Keras' `pad_to_aspect_ratio`)."""
    top = int(float(max(h, int(float(w * height) / width)) - h) / 2)
    left = int(float(max(w, int(float(h * width) / height)) - w) / 2)
    return -top, -left, h + 2 * top, w + 2 * left


def resize(
    images: np.ndarray,
    size: tuple[int, int],
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    antialias: bool = False,
) -> np.ndarray:
    """A batch of images (n, h, w, c) resized to (n, height, width, c), in float64."""
    images = np.asarray(images, np.float64)
    _, h, w, _ = images.shape
    height, width = size
    top, left, ch, cw = (0, 0, h, w)
    if crop_to_aspect_ratio:
        top, left, ch, cw = crop_box(h, w, height, width)
    elif pad_to_aspect_ratio:
        top, left, ch, cw = pad_box(h, w, height, width)
    wh = placed(axis_weights(ch, height, interpolation, antialias), top, h)
    ww = placed(axis_weights(cw, width, interpolation, antialias), left, w)
    out = np.einsum("ij,njkc->nikc", wh, images)
    return np.einsum("ij,nkjc->nkic", ww, out)


def center_crop(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Keras' CenterCrop: the centred window, or a bilinear resize of the largest centred
    window with the output's aspect ratio when the image is smaller."""
    _, h, w, _ = images.shape
    if h >= height and w >= width:
        top, left = (h - height) // 2, (w - width) // 2
        return np.asarray(images, np.float64)[:, top : top + height, left : left + width]
    return resize(images, (height, width), crop_to_aspect_ratio=True)
