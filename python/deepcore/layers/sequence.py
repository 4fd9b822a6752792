"""Sequence layers: Embedding, GlobalAveragePooling1D, GlobalMaxPooling1D, TimeDistributed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .. import initializers, regularizers
from .._registry import check_bool, check_positive_int
from .convolutional import _channels_last
from .core import Activation, Dense, Layer

if TYPE_CHECKING:
    from .. import _core

_TimeDistributedT = TypeVar("_TimeDistributedT", bound="TimeDistributed")

__all__ = [
    "Embedding",
    "Masking",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "TimeDistributed",
]

# The most rows of a table: the engine carries indices as float32 values, which hold every
# integer up to 2**24 exactly.
MAX_INPUT_DIM = 2**24


class Embedding(Layer):
    """Turns integer indices into dense vectors: row `i` of the `embeddings` table
    `(input_dim, output_dim)` for each index `i`.

    Inputs of any shape `(batch, d1, ..., dk)` give outputs `(batch, d1, ..., dk,
    output_dim)`. As in Keras the indices may be integer arrays or float arrays holding
    integers; each must lie in `[0, input_dim)`: Keras (on the JAX and TensorFlow CPU
    backends) gives zeros or clips for an index outside, deepcore raises a ValueError
    naming the layer, the index and its position (also for NaN, inf and non-integers). The
    gradient of each row is the sum of the output gradients of the positions naming it.

    Args:
        input_dim: Size of the vocabulary: the largest index plus 1 (at most 2**24).
        output_dim: Size of each vector.
        embeddings_initializer: Initializer of the table (Keras' default "uniform":
            RandomUniform(-0.05, 0.05)).
        embeddings_regularizer: Penalty on the table, e.g. `deepcore.regularizers.l2(1e-4)`.
        mask_zero: Whether index 0 is padding: the layer then makes a sequence mask (index
            != 0) that recurrent layers and GlobalAveragePooling1D use to skip the padded
            steps, and that Dense and Dropout pass on, as in Keras.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        weights: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = self._owner
        self.input_dim = check_positive_int("input_dim", input_dim, owner)
        if self.input_dim > MAX_INPUT_DIM:
            raise ValueError(
                f"{owner}: `input_dim` must be at most 2**24 = {MAX_INPUT_DIM} (deepcore "
                f"carries indices as float32 values). Received: input_dim={input_dim!r}"
            )
        self.output_dim = check_positive_int("output_dim", output_dim, owner)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        if embeddings_constraint is not None:
            raise ValueError(
                f"{owner}: constraints are not supported. "
                f"Received: embeddings_constraint={embeddings_constraint!r}"
            )
        self.mask_zero = check_bool("mask_zero", mask_zero, owner)
        self._initial = None if weights is None else list(weights)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_embedding(self.input_dim, self.output_dim, self.mask_zero)

    def _mask_role(self):
        return "make" if self.mask_zero else "drop"

    def weight_settings(self) -> list[tuple]:
        return [(self.embeddings_initializer, self.embeddings_regularizer)]

    def weight_names(self) -> list[str]:
        return ["embeddings"]

    def initialize(self) -> None:
        super().initialize()
        if self._initial is not None:  # Keras' `weights=[table]`
            self.set_weights(self._initial)
            self._initial = None

    @property
    def embeddings(self) -> np.ndarray | None:
        return self._views[0] if self._views else None

    def prepare_inputs(self, x, name: str) -> np.ndarray | None:
        """`x` as C-contiguous float32 indices, each checked: an integer in [0, input_dim),
        else a ValueError naming the layer, the first bad value and its position."""
        if x is None:
            return x
        arr = np.asarray(x)
        if arr.dtype == bool or not (
            np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        ):
            raise TypeError(
                f"{self._owner}: `{name}` must hold integer indices (an int or float array). "
                f"Received dtype: {arr.dtype}"
            )
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise ValueError(
                f"{self._owner}: `{name}` must be a non-empty batch of indices. "
                f"Received shape: {arr.shape}"
            )
        if np.issubdtype(arr.dtype, np.integer):
            bad = (arr < 0) | (arr >= self.input_dim)
        else:
            with np.errstate(invalid="ignore"):
                bad = ~((arr >= 0) & (arr < self.input_dim) & (arr == np.floor(arr)))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{self._owner}: `{name}` must hold integer indices in [0, input_dim="
                f"{self.input_dim}). Received {arr[where]!r} at index {where}"
                + (f" ({int(bad.sum())} invalid values in all)." if bad.sum() > 1 else ".")
            )
        out = np.ascontiguousarray(arr, dtype=np.float32)
        return out if out.flags.aligned else out.copy()

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "mask_zero": self.mask_zero,
        }


class Masking(Layer):
    """Marks padding steps: a position (all axes but the last) whose features all equal
    `mask_value` is masked, its output set to 0, and the sequence mask it makes lets the
    recurrent layers and GlobalAveragePooling1D after it skip those steps, as in Keras.

    Args:
        mask_value: The value of padding (Keras' default 0.0).
    """

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(mask_value, (bool, np.bool_)) or not isinstance(
            mask_value, (int, float, np.integer, np.floating)
        ):
            raise ValueError(
                f"{self._owner}: `mask_value` must be a number. Received: mask_value={mask_value!r}"
            )
        self.mask_value = float(mask_value)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_masking(self.mask_value)

    def _mask_role(self):
        return "make"

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}


class _GlobalPooling1D(Layer):
    is_max = False

    def __init__(
        self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _channels_last(data_format, self._owner)
        self.data_format = "channels_last"
        self.keepdims = check_bool("keepdims", keepdims, self._owner)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_global_pooling1d(self.is_max, self.keepdims)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the steps: (batch, steps, features) -> (batch, features), or (batch, 1,
    features) with `keepdims=True`. channels_last only (Keras' default). Given a sequence
    mask (`Embedding(mask_zero=True)`, `Masking`), the mean over the steps it keeps, as in
    Keras (NaN for a sample whose steps are all masked, as Keras' 0 / 0)."""

    is_max = False

    def _mask_role(self):
        return "read"


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Maximum over the steps: (batch, steps, features) -> (batch, features), or (batch, 1,
    features) with `keepdims=True`. The gradient goes to the first step holding the maximum
    (Keras' backends may share it among tied steps)."""

    is_max = True


class TimeDistributed(Layer):
    """Applies `layer` to every step of (batch, steps, ...) inputs.

    deepcore supports the layers that act on the last axis alone, Dense and the activation
    layers, for which Keras' TimeDistributed gives what the layer itself gives on N-D
    inputs; its weights are the inner layer's (same names, shapes and order as Keras').
    Any other layer raises a ValueError.
    """

    def __init__(self, layer: Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(layer, (Dense, Activation)):
            raise ValueError(
                f"{self._owner}: only Dense and activation layers can be wrapped. "
                f"Received: layer={layer!r}"
            )
        self.layer = layer

    def _mask_role(self):
        return "pass"  # (Keras' TimeDistributed passes the mask on: its layer works per step)

    def add_to(self, engine: _core.Model) -> None:
        self.layer.add_to(engine)

    def weight_settings(self) -> list[tuple]:
        return self.layer.weight_settings()

    def weight_names(self) -> list[str]:
        return self.layer.weight_names()

    def bind(self, views: list[np.ndarray], trainable: Iterable[bool] | None = None) -> None:
        super().bind(views, trainable)
        self.layer.bind(views, trainable)

    def _inner_layers(self):
        return [self.layer] if hasattr(self, "layer") else []

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "layer": {"class_name": type(self.layer).__name__, "config": self.layer.get_config()},
        }

    @classmethod
    def from_config(cls: type[_TimeDistributedT], config: dict[str, Any]) -> _TimeDistributedT:
        from ..saving import _LAYERS

        config = dict(config)
        inner = config.pop("layer")
        if not isinstance(inner, dict) or inner.get("class_name") not in _LAYERS:
            raise ValueError(f"TimeDistributed: unknown wrapped layer {inner!r}")
        layer = _LAYERS[inner["class_name"]].from_config(inner["config"])
        return cls(layer, **config)
