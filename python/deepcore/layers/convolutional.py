"""Image layers (channels_last, NHWC): Conv2D, pooling, Flatten, Reshape."""

from __future__ import annotations

import numpy as np

from .. import activations
from .._registry import MAX_SIZE, check_positive_int, is_size
from .core import KernelLayer, Layer, _shape_arg

__all__ = [
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Reshape",
]


def _pair(value, name: str, owner: str) -> tuple[int, int]:
    """`value` (a size, or a pair of them) as (height, width), each an int in [1, MAX_SIZE];
    else a ValueError naming the owner, the argument and the received value."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(is_size(v) for v in pair):
        raise ValueError(
            f"{owner}: `{name}` must be a positive integer <= {MAX_SIZE} or a pair of them. "
            f"Received: {name}={value!r}"
        )
    return int(pair[0]), int(pair[1])


def _padding(padding, owner: str) -> bool:
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(
            f"{owner}: `padding` must be 'valid' or 'same'. Received: padding={padding!r}"
        )
    return padding.lower() == "same"


def _channels_last(data_format, owner: str) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"{owner}: only data_format='channels_last' (NHWC) is supported. "
            f"Received: data_format={data_format!r}"
        )


class Conv2D(KernelLayer):
    """2-D convolution: output = activation(conv(input, kernel) + bias), NHWC.

    Args:
        filters: Number of output channels.
        kernel_size: int or (height, width).
        strides: int or (height, width).
        padding: "valid" (no padding) or "same" (output size ceil(input / stride)).
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer: as in `Dense`. The kernel has shape (kh, kw, in_channels, filters).
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        data_format=None,
        activation=None,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(activation, use_bias, **kwargs)
        owner = self._owner
        self.filters = check_positive_int("filters", filters, owner)
        self.kernel_size = _pair(kernel_size, "kernel_size", owner)
        self.strides = _pair(strides, "strides", owner)
        self.padding = "same" if _padding(padding, owner) else "valid"
        _channels_last(data_format, owner)

    def add_to(self, engine):
        engine.add_conv2d(
            self.filters,
            *self.kernel_size,
            *self.strides,
            self.padding == "same",
            activations.spec(self.activation),
            self.use_bias,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
        }


class _Pooling2D(Layer):
    is_max = True

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner
        self.pool_size = _pair(pool_size, "pool_size", owner)
        self.strides = self.pool_size if strides is None else _pair(strides, "strides", owner)
        self.padding = "same" if _padding(padding, owner) else "valid"
        _channels_last(data_format, owner)

    def add_to(self, engine):
        engine.add_pool2d(self.is_max, *self.pool_size, *self.strides, self.padding == "same")

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
        }


class MaxPooling2D(_Pooling2D):
    """Maximum over each pool_size window (default 2x2, strides = pool_size)."""

    is_max = True


class AveragePooling2D(_Pooling2D):
    """Mean over each window; with padding="same" the mean covers only the image part."""

    is_max = False


class GlobalAveragePooling2D(Layer):
    """Mean over height and width: (h, w, c) -> (c,)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        _channels_last(data_format, f"GlobalAveragePooling2D {self.name!r}")

    def add_to(self, engine):
        engine.add_global_average_pooling2d()


class Flatten(Layer):
    """Flattens each sample to one axis."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        _channels_last(data_format, f"Flatten {self.name!r}")

    def add_to(self, engine):
        engine.add_reshape([])


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = _shape_arg(target_shape, "target_shape", self._owner, one_unknown=True)

    def add_to(self, engine):
        engine.add_reshape(list(self.target_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}
