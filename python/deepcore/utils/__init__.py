"""Utilities: one-hot encoding, seeding, sequence padding, time-series windows, image files
(with Pillow), and the input conversion shared by the package."""

from __future__ import annotations

import math
import numbers
import random

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .._registry import check_int

__all__ = [
    "to_categorical",
    "set_random_seed",
    "normalize",
    "pad_sequences",
    "timeseries_dataset_from_array",
    "timeseries_windows",
    "TimeseriesDataset",
    "PyDataset",
    "load_img",
    "img_to_array",
    "array_to_img",
    "save_img",
    "image_dataset_from_directory",
]

_rng = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seeds every random draw deepcore makes (initializers, shuffling, dropout).

    With the same seed, two runs of the same program give bit-identical weights.
    Python's `random` and NumPy's global generator are seeded too, as in Keras.

    Args:
        seed: A non-negative integer.
    """
    global _rng
    seed = check_int("seed", seed, 0)
    _rng = np.random.default_rng(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def rng() -> np.random.Generator:
    """The generator behind every random draw of deepcore (see `set_random_seed`)."""
    return _rng


def to_categorical(x: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """One-hot encodes integer class labels.

    Args:
        x: Integer labels, shape `(n,)` (a trailing axis of size 1 is dropped).
        num_classes: Number of classes; `max(x) + 1` when None.

    Returns:
        float32 array of shape `x.shape + (num_classes,)`.
    """
    x = np.asarray(x)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    if x.size and not np.all(np.equal(np.mod(x, 1), 0)):
        raise ValueError("to_categorical expects integer class labels.")
    x = x.astype(np.int64)
    if x.size and x.min() < 0:
        raise ValueError(f"class labels must be >= 0. Received: min label {x.min()}")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(f"label {int(x.max())} does not fit num_classes={num_classes}.")
    out = np.zeros(x.shape + (num_classes,), dtype=np.float32)
    np.put_along_axis(out, x[..., None], 1.0, axis=-1)
    return out


def normalize(x: ArrayLike, axis: int = -1, order: int = 2) -> np.ndarray:
    """Scales `x` to unit `order`-norm along `axis` (zero vectors stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def _is_real(arr: np.ndarray) -> bool:
    """Whether `arr` holds real numbers (any int, float or bool dtype)."""
    return arr.dtype.kind in "biuf"


def _to_float(v: numbers.Real) -> float:
    """`v` as a float; an int too large for one as inf (with its sign)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf  # type: ignore[operator]  # (Real has no __gt__)


def as_weights(values, name: str, keys=None) -> np.ndarray:
    """`values` as a flat float32 array of weights, each a real number, finite in float32
    and >= 0: one per sample (`sample_weight`, an array), or with `keys` one per class
    (the values of `class_weight`, `keys` its classes). Else a TypeError (not a number) or
    a ValueError (NaN, inf, negative, too large for float32) naming the argument, the
    entry (`name[class]`, or `name[index]`) and the received value."""
    values = list(values) if keys is not None else np.asarray(values)
    flat = values if keys is not None else values.reshape(-1)

    def received(i: int) -> str:
        if keys is not None:
            return f"Received: {name}[{keys[i]!r}]={values[i]!r}"
        index = np.unravel_index(i, values.shape) if values.ndim > 1 else (i,)
        return f"Received: {name}[{', '.join(str(int(j)) for j in index)}]={flat[i]}"

    reals = flat
    if keys is not None or not _is_real(values):  # entry by entry, naming the first bad one
        for i, v in enumerate(flat):
            if not isinstance(v, numbers.Real):
                raise TypeError(
                    f"`{name}` values must be real numbers (float or int). {received(i)}"
                )
        reals = [_to_float(v) for v in flat]
    with np.errstate(over="ignore"):
        out = np.array(reals, dtype=np.float32)
    bad = np.flatnonzero(~(np.isfinite(out) & (out >= 0)))
    if bad.size:
        raise ValueError(
            f"`{name}` values must be finite numbers >= 0 (at most "
            f"{np.finfo(np.float32).max:.7g}, float32). {received(int(bad[0]))}"
        )
    return out


def as_float_array(x, name: str, allow_empty: bool = False) -> np.ndarray:
    """Converts `x` (array, list, any real dtype, any strides) once to C-contiguous, aligned
    float32.

    Raises TypeError for non-numeric data and ValueError for empty input or NaN/inf,
    naming the argument.
    """
    arr = np.asarray(x)
    if not _is_real(arr):
        raise TypeError(
            f"`{name}` must hold real numbers (float or int). Received dtype: {arr.dtype}"
        )
    if arr.ndim == 0:
        raise ValueError(f"`{name}` must be an array with a batch axis. Received a scalar: {arr}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"`{name}` is empty. Received shape: {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not out.flags.aligned:  # a view at an odd address: the engine reads aligned floats
        out = out.copy()
    if not _core.all_finite(out):
        bad = np.argwhere(~np.isfinite(out))[0]
        raise ValueError(
            f"`{name}` contains NaN or inf (first at index {tuple(int(i) for i in bad)}: "
            f"{out[tuple(bad)]}). Expected finite values."
        )
    return out


from .image_dataset import image_dataset_from_directory  # noqa: E402
from .image_utils import array_to_img, img_to_array, load_img, save_img  # noqa: E402
from .py_dataset import PyDataset  # noqa: E402
from .sequence_utils import pad_sequences  # noqa: E402 (after rng, which they use)
from .timeseries_dataset_utils import (  # noqa: E402
    TimeseriesDataset,
    timeseries_dataset_from_array,
    timeseries_windows,
)
