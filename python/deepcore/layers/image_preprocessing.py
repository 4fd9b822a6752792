"""Keras' image preprocessing layers over channels_last images (height, width, channels):
Resizing and CenterCrop, run in the engine (csrc/engine/resample_layers.cpp) with their
gradients, so that a saved model takes raw images."""

from __future__ import annotations

from typing import Any

from .. import _core
from .._registry import check_bool, check_number, check_positive_int
from .core import Layer

__all__ = ["Resizing", "CenterCrop"]

_INTERPOLATIONS = tuple(_core.Interpolation.__members__)


def _channels_last(data_format, owner: str) -> str:
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"{owner}: deepcore's images are channels_last (height, width, channels). "
            f"Received: data_format={data_format!r}"
        )
    return "channels_last"


class Resizing(Layer):
    """Resizes images to (height, width) as Keras' Resizing (its JAX backend's resize):
    half-pixel sampling, bilinear by default, no antialiasing unless asked.

    Args:
        height: Output height.
        width: Output width.
        interpolation: "bilinear", "nearest", "bicubic", "lanczos3" or "lanczos5".
        crop_to_aspect_ratio: Resize the largest centred window with the output's aspect
            ratio instead of the whole image (no distortion).
        pad_to_aspect_ratio: Pad the image with zeros (centred) to the output's aspect
            ratio before resizing.
        fill_mode: "constant" (the only mode, as in Keras).
        fill_value: The padding's value: 0 only.
        antialias: Widen the kernel when shrinking (a low-pass filter).
        data_format: "channels_last" (or None).
    """

    def __init__(
        self,
        height: int,
        width: int,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
        antialias: bool = False,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.height = check_positive_int("height", height, self._owner)
        self.width = check_positive_int("width", width, self._owner)
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"{self._owner}: `interpolation` must be one of {_INTERPOLATIONS}. Received: "
                f"interpolation={interpolation!r}"
            )
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = check_bool(
            "crop_to_aspect_ratio", crop_to_aspect_ratio, self._owner
        )
        self.pad_to_aspect_ratio = check_bool(
            "pad_to_aspect_ratio", pad_to_aspect_ratio, self._owner
        )
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError(
                f"{self._owner}: only one of `pad_to_aspect_ratio` and `crop_to_aspect_ratio` "
                "can be True."
            )
        if fill_mode != "constant":
            raise ValueError(
                f"{self._owner}: `fill_mode` must be 'constant'. Received: fill_mode={fill_mode!r}"
            )
        self.fill_mode = fill_mode
        self.fill_value = check_number("fill_value", fill_value, float("-inf"), owner=self._owner)
        if self.fill_value != 0.0:
            raise ValueError(
                f"{self._owner}: deepcore pads with zeros only. Received: fill_value={fill_value!r}"
            )
        self.antialias = check_bool("antialias", antialias, self._owner)
        self.data_format = _channels_last(data_format, self._owner)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_resizing(
            self.height,
            self.width,
            _core.Interpolation.__members__[self.interpolation],
            self.crop_to_aspect_ratio,
            self.pad_to_aspect_ratio,
            self.antialias,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "antialias": self.antialias,
            "data_format": self.data_format,
        }


class CenterCrop(Layer):
    """The centred (height, width) window of each image (Keras' CenterCrop); an image smaller
    than that along an axis is instead resized (bilinear) from its largest centred window
    with the output's aspect ratio, as Keras does.

    Args:
        height: Output height.
        width: Output width.
        data_format: "channels_last" (or None).
    """

    def __init__(
        self, height: int, width: int, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.height = check_positive_int("height", height, self._owner)
        self.width = check_positive_int("width", width, self._owner)
        self.data_format = _channels_last(data_format, self._owner)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_center_crop(self.height, self.width)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "data_format": self.data_format,
        }
