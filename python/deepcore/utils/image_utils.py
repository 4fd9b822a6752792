"""Image files as Keras 3's `keras.utils` reads and writes them: `load_img`, `img_to_array`,
`array_to_img` and `save_img`, on Pillow (an optional dependency: `pip install pillow`, or
`pip install "deepcore[image]"`). Pillow is imported when one of these functions is called,
not when deepcore is imported.

Only the channels-last layout (height, width, channels) is supported.
"""

from __future__ import annotations

import io
import os
import pathlib
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = ["load_img", "img_to_array", "array_to_img", "save_img"]

#: load_img's interpolations: the name Keras gives each, and Pillow's resampling filter.
PIL_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")

#: Color modes, and the Pillow mode each converts an image to.
COLOR_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def pil_image() -> Any:
    """Pillow's `PIL.Image` module; an ImportError telling how to install it when missing."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "deepcore's image utilities need Pillow, which is not installed: "
            '`pip install pillow` (or `pip install "deepcore[image]"`).'
        ) from None
    return Image


def check_data_format(data_format: str | None) -> None:
    """A ValueError unless `data_format` is None or "channels_last" (the only layout)."""
    if data_format not in (None, "channels_last"):
        raise ValueError(
            "deepcore's image utilities support only data_format='channels_last' (images of "
            f"shape (height, width, channels)). Received: data_format={data_format!r}"
        )


def check_color_mode(color_mode: str) -> str:
    """`color_mode` if it is one of COLOR_MODES; else a ValueError naming it."""
    if not isinstance(color_mode, str) or color_mode not in COLOR_MODES:
        raise ValueError(
            f"`color_mode` must be one of {tuple(COLOR_MODES)}. Received: color_mode={color_mode!r}"
        )
    return color_mode


def check_size(name: str, size: Any) -> tuple[int, int]:
    """`size` as (height, width), two ints >= 1 (an int n stands for (n, n)); else a
    ValueError naming the argument."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    ok = isinstance(size, (list, tuple)) and len(size) == 2
    if ok:
        ok = all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in size
        )
    if not ok:
        raise ValueError(
            f"`{name}` must be (height, width): two integers >= 1. Received: {name}={size!r}"
        )
    return int(size[0]), int(size[1])


def convert_mode(img: Any, color_mode: str) -> Any:
    """`img` in the Pillow mode of `color_mode`, as Keras converts it: grayscale keeps 8-,
    16- and 32-bit grayscale images ("L", "I;16", "I") as they are, and makes others "L"."""
    if color_mode == "grayscale":
        return img if img.mode in ("L", "I;16", "I") else img.convert("L")
    mode = COLOR_MODES[color_mode]
    return img if img.mode == mode else img.convert(mode)


def _open(path: Any) -> Any:
    """The image at `path` (a path, or a binary file object such as io.BytesIO), read into
    memory so that no file stays open."""
    Image = pil_image()
    if isinstance(path, pathlib.Path):
        path = str(path.resolve())
    if isinstance(path, (str, bytes, os.PathLike)):
        with open(path, "rb") as f:
            data: Any = io.BytesIO(f.read())
    elif hasattr(path, "read"):
        data = path
    else:
        raise TypeError(
            f"`path` must be a path (str, bytes, os.PathLike) or a binary file object such as "
            f"io.BytesIO. Received: {type(path).__name__}"
        )
    try:
        img = Image.open(data)
        img.load()
    except Image.UnidentifiedImageError:
        raise Image.UnidentifiedImageError(
            f"cannot identify the image file {path!r}: not an image Pillow reads"
        ) from None
    return img


def load_img(
    path: str | os.PathLike | io.BytesIO,
    color_mode: str = "rgb",
    target_size: tuple[int, int] | None = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
) -> Any:
    """Loads an image file as a Pillow image, as `keras.utils.load_img`.

    Example:
        >>> img = load_img("cat.jpg", target_size=(224, 224))
        >>> x = img_to_array(img)[None]  # a batch of one image, for predict

    Args:
        path: Path of the image file, or a binary file object (io.BytesIO).
        color_mode: "rgb" (3 channels), "rgba" (4) or "grayscale" (1; 16- and 32-bit
            grayscale images stay as they are, others become 8-bit).
        target_size: (height, width) to resize the image to with Pillow, or None to keep
            its size.
        interpolation: Pillow's resampling filter for the resize: "nearest", "bilinear",
            "bicubic", "hamming", "box" or "lanczos".
        keep_aspect_ratio: Whether to first crop the largest centred window of the target
            aspect ratio, so that the resize does not distort the image.

    Returns:
        A `PIL.Image.Image`.

    Raises:
        ImportError: Pillow is not installed.
        ValueError: a bad `color_mode`, `target_size` or `interpolation`.
        FileNotFoundError: no file at `path`.
        PIL.UnidentifiedImageError: the file is not an image Pillow reads.
    """
    check_color_mode(color_mode)
    if target_size is not None:
        target_size = check_size("target_size", target_size)
        if interpolation not in PIL_INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {PIL_INTERPOLATIONS}. Received: "
                f"interpolation={interpolation!r}"
            )
    Image = pil_image()
    img = convert_mode(_open(path), color_mode)
    if target_size is None:
        return img
    height, width = target_size
    if img.size == (width, height):
        return img
    resample = getattr(getattr(Image, "Resampling", Image), interpolation.upper())
    if not keep_aspect_ratio:
        return img.resize((width, height), resample)
    w, h = img.size
    crop_h = min(h, (w * height) // width)
    crop_w = min(w, (h * width) // height)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    return img.resize((width, height), resample, box=(left, top, left + crop_w, top + crop_h))


def img_to_array(
    img: Any, data_format: str | None = None, dtype: DTypeLike | None = None
) -> np.ndarray:
    """A Pillow image (or anything NumPy converts) as an array, as `keras.utils.img_to_array`.

    Args:
        img: A `PIL.Image.Image`.
        data_format: None or "channels_last" (the only layout supported).
        dtype: dtype of the array; float32 when None.

    Returns:
        A new array of shape (height, width, channels): a grayscale image gets a channel
        axis of size 1.
    """
    check_data_format(data_format)
    x = np.array(img, dtype=np.float32 if dtype is None else dtype)
    if x.ndim == 2:
        return x.reshape(x.shape + (1,))
    if x.ndim != 3:
        raise ValueError(
            f"An image converts to an array of 2 or 3 axes. Received an array of shape {x.shape}"
        )
    return x


def array_to_img(
    x: ArrayLike, data_format: str | None = None, scale: bool = True, dtype: DTypeLike | None = None
) -> Any:
    """An array (height, width, channels) as a Pillow image, as `keras.utils.array_to_img`.

    Args:
        x: The image: 1 channel (grayscale), 3 (RGB) or 4 (RGBA).
        data_format: None or "channels_last" (the only layout supported).
        scale: Whether to map the values linearly onto [0, 255] (the minimum to 0, the
            maximum to 255); otherwise they are cast to 8 bits as they are.
        dtype: dtype the values are converted to first; float32 when None.

    Returns:
        A `PIL.Image.Image` of mode "L" (or "I", 32-bit, for a single channel whose values
        exceed 255), "RGB" or "RGBA".
    """
    check_data_format(data_format)
    Image = pil_image()
    arr = np.asarray(x, dtype=np.float32 if dtype is None else dtype)
    if arr.ndim != 3:
        raise ValueError(
            "`x` must be one image of shape (height, width, channels) (3 axes). Received "
            f"shape: {arr.shape}"
        )
    if scale:
        arr = arr - np.min(arr)
        top = np.max(arr)
        if top != 0:
            arr /= top
        arr *= 255
    channels = arr.shape[2]
    if channels in (3, 4):  # (Pillow reads uint8 (h, w, 3) as RGB, (h, w, 4) as RGBA)
        return Image.fromarray(arr.astype("uint8"))
    if channels == 1:  # (uint8 (h, w) as L, int32 as I)
        gray = arr[:, :, 0]
        return Image.fromarray(gray.astype("int32" if np.max(gray) > 255 else "uint8"))
    raise ValueError(
        f"An image has 1, 3 or 4 channels. Received {channels} channels (shape {arr.shape})"
    )


def save_img(
    path: str | os.PathLike | io.BytesIO,
    x: ArrayLike,
    data_format: str | None = None,
    file_format: str | None = None,
    scale: bool = True,
    **kwargs: Any,
) -> None:
    """Writes an array (height, width, channels) as an image file, as
    `keras.utils.save_img`.

    Args:
        path: Path of the file, or a binary file object (then give `file_format`).
        x: The image (see `array_to_img`).
        data_format: None or "channels_last" (the only layout supported).
        file_format: "png", "jpeg", "bmp", ...; None: from the file name's extension.
        scale: Whether to map the values linearly onto [0, 255] first (see
            `array_to_img`).
        **kwargs: Passed on to Pillow's `Image.save` (`quality=95` for a JPEG, say).
    """
    check_data_format(data_format)
    if file_format is None and isinstance(path, (str, os.PathLike)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format and file_format.lower() == "jpeg":
        warnings.warn("JPEG has no alpha channel: the RGBA image is saved as RGB.", stacklevel=2)
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)
