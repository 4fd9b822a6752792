"""Keras' image preprocessing layers over channels_last images (height, width, channels):
Resizing and CenterCrop (with their gradients), and the augmentation layers, active in
training only. They run in the engine (csrc/engine/resample_layers.cpp), so that a saved
model takes raw images."""

from __future__ import annotations

from typing import Any

from .. import _core
from .._registry import check_bool, check_int, check_number, check_positive_int, is_number
from .convolutional import _channels_last
from .core import Layer

__all__ = [
    "Resizing",
    "CenterCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RandomCrop",
    "RandomContrast",
    "RandomBrightness",
]

_INTERPOLATIONS = tuple(_core.Interpolation.__members__)


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
        _channels_last(data_format, self._owner)
        self.data_format = "channels_last"

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
        _channels_last(data_format, self._owner)
        self.data_format = "channels_last"

    def add_to(self, engine: _core.Model) -> None:
        engine.add_center_crop(self.height, self.width)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "data_format": self.data_format,
        }


_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_SAMPLINGS = ("nearest", "bilinear")


def _factor(
    value, name: str, owner: str, low: float = -1.0, high: float = 1.0
) -> tuple[float, float]:
    """Keras' factor: a number f for the range (-|f|, |f|) (clipped at `low`), or a pair
    (lower, upper) sorted; each within [low, high]."""
    pair = isinstance(value, (list, tuple))
    ok = (len(value) == 2 and all(is_number(v) for v in value)) if pair else is_number(value)
    if ok and pair:
        lo, hi = sorted(float(v) for v in value)
        ok = low <= lo and hi <= high
    elif ok:
        lo, hi = float(max(-abs(value), low)), float(abs(value))
        ok = low <= value <= high
    if not ok:
        raise ValueError(
            f"{owner}: `{name}` must be a number or a pair of numbers (lower, upper) in "
            f"[{low}, {high}]. Received: {name}={value!r}"
        )
    return lo, hi


def _value_range(value, owner: str) -> tuple[float, float]:
    if not (
        isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value)
    ):
        raise ValueError(
            f"{owner}: `value_range` must be (low, high), two numbers. Received: "
            f"value_range={value!r}"
        )
    lo, hi = sorted(float(v) for v in value)
    if not lo < hi:
        raise ValueError(f"{owner}: `value_range` must have low < high. Received: {value!r}")
    return lo, hi


class _Augmentation(Layer):
    """A Keras augmentation layer: active in training (fit), each image with its own random
    draws (from the model's random stream, or from `seed` and the training step); in
    evaluate and predict it passes its input through (RandomCrop resizes)."""

    def __init__(self, seed: int | None = None, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.seed = None if seed is None else check_int("seed", seed, 0, 2**63 - 1, self._owner)
        _channels_last(data_format, self._owner)
        self.data_format = "channels_last"

    def _spec(self) -> _core.AugmentSpec:
        raise NotImplementedError

    def add_to(self, engine: _core.Model) -> None:
        engine.add_augment(self._spec(), self.seed)

    def _passes_no_gradient(self) -> bool:
        return True

    def _training_default(self) -> bool | None:
        return True  # (Keras' image augmentation layers transform unless told otherwise)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed, "data_format": self.data_format}


class _Geometric(_Augmentation):
    """The layers that move pixels: fill_mode, fill_value and interpolation, as Keras'."""

    def __init__(
        self,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed, data_format, **kwargs)
        if fill_mode not in _FILL_MODES:
            raise ValueError(
                f"{self._owner}: `fill_mode` must be one of {_FILL_MODES}. Received: "
                f"fill_mode={fill_mode!r}"
            )
        if interpolation not in _SAMPLINGS:
            raise ValueError(
                f"{self._owner}: `interpolation` must be one of {_SAMPLINGS}. Received: "
                f"interpolation={interpolation!r}"
            )
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.fill_value = check_number("fill_value", fill_value, float("-inf"), owner=self._owner)

    def _geometry(self, kind: str, **kw: Any) -> _core.AugmentSpec:
        return _core.AugmentSpec(
            _core.AugmentKind.__members__[kind],
            fill=_core.FillMode.__members__[self.fill_mode],
            fill_value=self.fill_value,
            bilinear=self.interpolation == "bilinear",
            **kw,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


class RandomFlip(_Augmentation):
    """Flips each image with probability 1/2 (Keras' RandomFlip): left-right
    ("horizontal"), upside down ("vertical"), or both at once ("horizontal_and_vertical").

    Args:
        mode: "horizontal", "vertical" or "horizontal_and_vertical".
        seed: Draws from this seed and the training step (else the model's stream).
        data_format: "channels_last" (or None).
    """

    _MODES = {"horizontal": 1, "vertical": 2, "horizontal_and_vertical": 3}

    def __init__(
        self,
        mode: str = "horizontal_and_vertical",
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed, data_format, **kwargs)
        if mode not in self._MODES:
            raise ValueError(
                f"{self._owner}: `mode` must be one of {tuple(self._MODES)}. Received: "
                f"mode={mode!r}"
            )
        self.mode = mode

    def _spec(self) -> _core.AugmentSpec:
        return _core.AugmentSpec(
            _core.AugmentKind.flip, flips=self._MODES[self.mode], bilinear=False
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


class RandomRotation(_Geometric):
    """Rotates each image about its centre by a random angle (Keras' RandomRotation).

    Args:
        factor: The angle's range as fractions of a full turn: f for (-f, f) (0.1: up to
            36 degrees either way), or (lower, upper).
        fill_mode: How points outside the image are filled: "reflect", "wrap", "constant"
            (`fill_value`) or "nearest".
        interpolation: "bilinear" or "nearest".
        seed: Draws from this seed and the training step (else the model's stream).
        fill_value: The value outside the image with fill_mode="constant".
        data_format: "channels_last" (or None).
    """

    def __init__(self, factor: float | tuple[float, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = _factor(factor, "factor", self._owner)

    def _spec(self) -> _core.AugmentSpec:
        return self._geometry("rotation", lo=[self.factor[0], 0.0], hi=[self.factor[1], 0.0])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor)}


class RandomTranslation(_Geometric):
    """Shifts each image by random fractions of its height and width (Keras'
    RandomTranslation).

    Args:
        height_factor: f for shifts in (-f, f) times the height, or (lower, upper).
        width_factor: The same along the width.
        fill_mode, interpolation, seed, fill_value, data_format: As RandomRotation's.
    """

    def __init__(
        self,
        height_factor: float | tuple[float, float],
        width_factor: float | tuple[float, float],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.height_factor = _factor(height_factor, "height_factor", self._owner)
        self.width_factor = _factor(width_factor, "width_factor", self._owner)

    def _spec(self) -> _core.AugmentSpec:
        return self._geometry(
            "translation",
            lo=[self.height_factor[0], self.width_factor[0]],
            hi=[self.height_factor[1], self.width_factor[1]],
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height_factor": list(self.height_factor),
            "width_factor": list(self.width_factor),
        }


class RandomZoom(_Geometric):
    """Zooms each image about its centre by random factors (Keras' RandomZoom): a
    positive factor zooms out (the image shrinks), a negative one zooms in.

    Args:
        height_factor: f for zooms in 1 + (-f, f) vertically, or (lower, upper).
        width_factor: The same horizontally; None (default) keeps the aspect ratio (the
            height's zoom for both).
        fill_mode, interpolation, seed, fill_value, data_format: As RandomRotation's.
    """

    def __init__(
        self,
        height_factor: float | tuple[float, float],
        width_factor: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.height_factor = _factor(height_factor, "height_factor", self._owner)
        self.width_factor = (
            None if width_factor is None else _factor(width_factor, "width_factor", self._owner)
        )
        for lo, _ in (self.height_factor, self.width_factor or (0.0, 0.0)):
            if lo <= -1.0:
                raise ValueError(
                    f"{self._owner}: a zoom factor must be above -1 (a zoom of 1 + factor > 0). "
                    f"Received: height_factor={height_factor!r}, width_factor={width_factor!r}"
                )

    def _spec(self) -> _core.AugmentSpec:
        w = self.width_factor or (0.0, 0.0)
        return self._geometry(
            "zoom",
            lo=[self.height_factor[0], w[0]],
            hi=[self.height_factor[1], w[1]],
            same_zoom=self.width_factor is None,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height_factor": list(self.height_factor),
            "width_factor": None if self.width_factor is None else list(self.width_factor),
        }


class RandomCrop(_Augmentation):
    """A random (height, width) window of each image in training (Keras' RandomCrop); in
    evaluate and predict, and in training for images not larger than the window, the
    largest centred window of the output's aspect ratio resized (bilinear) to it.

    Args:
        height: Output height.
        width: Output width.
        seed: Draws from this seed and the training step (else the model's stream).
        data_format: "channels_last" (or None).
    """

    def __init__(
        self,
        height: int,
        width: int,
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed, data_format, **kwargs)
        self.height = check_positive_int("height", height, self._owner)
        self.width = check_positive_int("width", width, self._owner)

    def _spec(self) -> _core.AugmentSpec:
        return _core.AugmentSpec(
            _core.AugmentKind.crop, bilinear=False, height=self.height, width=self.width
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width}


class _Photometric(_Augmentation):
    def __init__(
        self,
        factor: float | tuple[float, float],
        value_range: tuple[float, float] = (0, 255),
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.factor = _factor(factor, "factor", self._owner, *self._BOUNDS)
        self.value_range = _value_range(value_range, self._owner)

    _BOUNDS = (-1.0, 1.0)
    _KIND = "brightness"

    def _range(self) -> tuple[float, float]:
        return self.factor

    def _spec(self) -> _core.AugmentSpec:
        lo, hi = self._range()
        return _core.AugmentSpec(
            _core.AugmentKind.__members__[self._KIND],
            lo=[lo, 0.0],
            hi=[hi, 0.0],
            value_lo=self.value_range[0],
            value_hi=self.value_range[1],
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "value_range": list(self.value_range),
        }


class RandomBrightness(_Photometric):
    """Adds to each image a random fraction of the value range, then clips to it (Keras'
    RandomBrightness).

    Args:
        factor: f for fractions in (-f, f), or (lower, upper), within [-1, 1].
        value_range: The images' (low, high): (0, 255) by default.
        seed: Draws from this seed and the training step (else the model's stream).
    """


class RandomContrast(_Photometric):
    """Scales each image's deviations from its per-channel mean by a random factor, then
    clips to the value range (Keras' RandomContrast): `(x - mean) * c + mean`, with c drawn
    in [1 - lower, 1 + upper] as Keras 3 draws it (for a number f: lower 0, so [1, 1 + f]).

    Args:
        factor: f, or (lower, upper), within [0, 1].
        value_range: The images' (low, high): (0, 255) by default.
        seed: Draws from this seed and the training step (else the model's stream).
    """

    _BOUNDS = (0.0, 1.0)
    _KIND = "contrast"

    def _range(self) -> tuple[float, float]:
        return 1.0 - self.factor[0], 1.0 + self.factor[1]
