"""Convolution layers (channels_last): Conv1D and Conv2D, their pooling, UpSampling1D,
Flatten, Reshape."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _core, activations
from .._registry import MAX_SIZE, check_positive_int, is_size
from .core import KernelLayer, Layer, _shape_arg

__all__ = [
    "Conv1D",
    "MaxPooling1D",
    "AveragePooling1D",
    "UpSampling1D",
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


def _single(value, name: str, owner: str) -> int:
    """`value` (a size, or a tuple of one) as an int in [1, MAX_SIZE]; else a ValueError
    naming the owner, the argument and the received value."""
    one = (value,) if isinstance(value, (int, np.integer)) else value
    try:
        one = tuple(one)
    except TypeError:
        one = ()
    if len(one) != 1 or not is_size(one[0]):
        raise ValueError(
            f"{owner}: `{name}` must be a positive integer <= {MAX_SIZE} or a tuple of one. "
            f"Received: {name}={value!r}"
        )
    return int(one[0])


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
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(activation, use_bias, **kwargs)
        owner = self._owner
        self.filters = check_positive_int("filters", filters, owner)
        self.kernel_size = _pair(kernel_size, "kernel_size", owner)
        self.strides = _pair(strides, "strides", owner)
        self.padding = "same" if _padding(padding, owner) else "valid"
        _channels_last(data_format, owner)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_conv2d(
            self.filters,
            *self.kernel_size,
            *self.strides,
            self.padding == "same",
            activations.spec(self.activation),
            self.use_bias,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
        }


class _Pooling2D(Layer):
    is_max = True

    def __init__(
        self,
        pool_size: int | tuple[int, int] = (2, 2),
        strides: int | tuple[int, int] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = self._owner
        self.pool_size = _pair(pool_size, "pool_size", owner)
        self.strides = self.pool_size if strides is None else _pair(strides, "strides", owner)
        self.padding = "same" if _padding(padding, owner) else "valid"
        _channels_last(data_format, owner)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_pool2d(self.is_max, *self.pool_size, *self.strides, self.padding == "same")

    def get_config(self) -> dict[str, Any]:
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

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _channels_last(data_format, f"GlobalAveragePooling2D {self.name!r}")

    def add_to(self, engine: _core.Model) -> None:
        engine.add_global_average_pooling2d()


class Flatten(Layer):
    """Flattens each sample to one axis."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _channels_last(data_format, f"Flatten {self.name!r}")

    def add_to(self, engine: _core.Model) -> None:
        engine.add_reshape([])


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (one entry may be -1)."""

    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_shape = _shape_arg(target_shape, "target_shape", self._owner, one_unknown=True)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_reshape(list(self.target_shape))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": self.target_shape}


class Conv1D(KernelLayer):
    """1-D convolution over sequences: output = activation(conv1d(input, kernel) + bias).

    Inputs are (batch, steps, channels) (channels_last); the output is (batch, out_steps,
    filters) with Keras' lengths: "valid" floor((steps - (kernel_size - 1) * dilation_rate
    - 1) / strides) + 1, "same" and "causal" ceil(steps / strides).

    Args:
        filters: Number of output channels.
        kernel_size: int (or a tuple of one). The kernel has shape (kernel_size,
            in_channels, filters), as Keras'.
        strides: int (or a tuple of one). Keras refuses strides > 1 with dilation_rate > 1,
            and so does deepcore.
        padding: "valid" (none), "same" (TensorFlow's split: the extra position on the
            right) or "causal" (all (kernel_size - 1) * dilation_rate positions on the left,
            so that output[t] depends on input[:t + 1] only).
        dilation_rate: int (or a tuple of one): the kernel reads every dilation_rate-th step.
        groups: only 1 (Keras' grouped convolutions are not supported).
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer: as in `Dense`.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int],
        strides: int | tuple[int] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int] = 1,
        groups: int = 1,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(activation, use_bias, **kwargs)
        owner = self._owner
        self.filters = check_positive_int("filters", filters, owner)
        self.kernel_size = (_single(kernel_size, "kernel_size", owner),)
        self.strides = (_single(strides, "strides", owner),)
        self.dilation_rate = (_single(dilation_rate, "dilation_rate", owner),)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same", "causal"):
            raise ValueError(
                f"{owner}: `padding` must be 'valid', 'same' or 'causal'. "
                f"Received: padding={padding!r}"
            )
        self.padding = padding.lower()
        _channels_last(data_format, owner)
        if groups != 1:
            raise ValueError(
                f"{owner}: only groups=1 is supported (no grouped convolutions). "
                f"Received: groups={groups!r}"
            )
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(
                f"{owner}: `strides > 1` not supported in conjunction with "
                f"`dilation_rate > 1`. Received: strides={strides!r} and "
                f"dilation_rate={dilation_rate!r}"
            )

    def add_to(self, engine: _core.Model) -> None:
        engine.add_conv1d(
            self.filters,
            self.kernel_size[0],
            self.strides[0],
            self.dilation_rate[0],
            getattr(_core.Padding, self.padding),
            activations.spec(self.activation),
            self.use_bias,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
        }


class _Pooling1D(Layer):
    is_max = True

    def __init__(
        self,
        pool_size: int | tuple[int] = 2,
        strides: int | tuple[int] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = self._owner
        self.pool_size = (_single(pool_size, "pool_size", owner),)
        self.strides = self.pool_size if strides is None else (_single(strides, "strides", owner),)
        self.padding = "same" if _padding(padding, owner) else "valid"
        _channels_last(data_format, owner)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_pool1d(self.is_max, self.pool_size[0], self.strides[0], self.padding == "same")

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
        }


class MaxPooling1D(_Pooling1D):
    """Maximum over each window of pool_size steps (default 2; strides default to
    pool_size), per channel: (batch, steps, channels) -> (batch, out_steps, channels),
    out_steps as in Keras ("valid": floor((steps - pool_size) / strides) + 1, "same":
    ceil(steps / strides), padding never the maximum)."""

    is_max = True


class AveragePooling1D(_Pooling1D):
    """Mean over each window of pool_size steps; with padding="same" the mean covers only
    the steps inside the sequence (as Keras)."""

    is_max = False


class UpSampling1D(Layer):
    """Repeats each step `size` times: (batch, steps, channels) -> (batch, steps * size,
    channels)."""

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = check_positive_int("size", size, self._owner)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_upsampling1d(self.size)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size}
