"""Core layers: Input, Dense, Activation, Dropout."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _core, activations, initializers, regularizers
from .._registry import (
    MAX_SIZE,
    Trainable,
    check_number,
    check_positive_int,
    is_int,
    is_number,
    is_size,
)
from .symbolic import SymbolicTensor, is_symbolic

if TYPE_CHECKING:
    from ..models.sequential import Sequential

__all__ = ["Layer", "InputLayer", "Input", "Dense", "Activation", "Dropout", "BatchNormalization"]

_name_counts: dict[str, int] = {}
_LayerT = TypeVar("_LayerT", bound="Layer")


def _auto_name(base: str) -> str:
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _snake(name: str) -> str:
    """Keras' layer-name rule: "Conv2D" -> "conv2d", "MaxPooling2D" -> "max_pooling2d"."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _shape_arg(shape, name: str, owner: str, one_unknown: bool = False) -> tuple:
    """`shape` as a tuple of sizes, ints in [1, MAX_SIZE] (with `one_unknown`, one entry
    may be -1); else a ValueError naming the owner, the argument and the received value."""
    received = shape
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        shape = ()
    unknown = [one_unknown and is_int(d, -1, -1) for d in shape]
    if not shape or sum(unknown) > 1 or not all(is_size(d) or u for d, u in zip(shape, unknown)):
        raise ValueError(
            f"{owner}: `{name}` must be a tuple of positive integers"
            + (" (one may be -1)" if one_unknown else "")
            + f", each <= {MAX_SIZE} (an axis holds no more than {MAX_SIZE} values). "
            f"Received: {name}={received!r}"
        )
    return tuple(int(d) for d in shape)


class EagerArray(np.ndarray):
    """The float32 array a layer or model called on data returns: a NumPy array that also
    answers `.numpy()`, as the tensors of Keras' eager calls do."""

    def numpy(self) -> np.ndarray:
        return np.array(self)


class Layer:
    """Base class. A layer stores its settings; its weights live in the model's engine.

    Args:
        name: Layer name (unique names are generated from the class name by default).
        input_shape: Shape of one sample, for the first layer of a Sequential model.
        input_dim: Shorthand for `input_shape=(input_dim,)`.
    """

    trainable = Trainable()

    def __init__(
        self,
        name: str | None = None,
        input_shape: Sequence[int | None] | None = None,
        input_dim: int | None = None,
        trainable: bool = True,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        if dtype not in (None, "float32", np.float32):
            raise ValueError(
                f"{type(self).__name__}: only float32 is supported. Received: dtype={dtype!r}"
            )
        self.name = name or _auto_name(_snake(type(self).__name__))
        if input_shape is None and input_dim is not None:
            input_shape = (check_positive_int("input_dim", input_dim, self._owner),)
        self.input_shape_arg = (
            None if input_shape is None else _shape_arg(input_shape, "input_shape", self._owner)
        )
        self.trainable = trainable
        self._views: list[np.ndarray] = []
        # the one-layer model built by a first call on data
        self._call_model: Sequential | None = None

    @property
    def _owner(self) -> str:
        """The layer in messages: "Dense 'dense_1'"."""
        return f"{type(self).__name__} {self.name!r}"

    # --- what a subclass provides
    def add_to(self, engine: _core.Model) -> None:
        """Appends this layer to the engine's model."""
        raise NotImplementedError

    def weight_settings(self) -> list[tuple]:
        """(initializer, regularizer) for each weight, in the engine's order."""
        return []

    def _mask_role(self) -> str:
        """What the layer does with a sequence mask from a layer before it (models/masks.py):
        "drop" it by default, as a Keras layer without masking support does."""
        return "drop"

    def _merge_masks(self, makers, layers):
        """The mask a layer of several inputs passes on, given the layer making each input's
        mask (None: unmasked); by default a mask is refused there."""
        if all(m is None for m in makers):
            return None
        names = sorted({layers[m].name for m in makers if m is not None})
        raise ValueError(
            f"Layer {self.name!r} ({type(self).__name__}) joins inputs carrying the masks made "
            f"by {names}; deepcore cannot combine masks there yet. End the masks before it "
            "(an LSTM returning its last output, GlobalAveragePooling1D)."
        )

    def _inner_layers(self) -> list:
        """The layers inside this one (a wrapper's), which take its `trainable` flag."""
        return []

    def weight_names(self) -> list[str]:
        """Names of the weights, in the engine's order (used as keys in saved files)."""
        return [f"weight_{i}" for i in range(len(self.weight_settings()))]

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: `type(layer).from_config(layer.get_config())` copies it."""
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls: type[_LayerT], config: dict[str, Any]) -> _LayerT:
        return cls(**config)

    # --- weights
    @property
    def weights(self) -> list[np.ndarray]:
        """Live views of this layer's weights inside the engine (Keras shapes): those of
        the model that built it last, when it is in several."""
        return list(self._views)

    def bind(self, views: list[np.ndarray], trainable: Iterable[bool] | None = None) -> None:
        """Points the layer at its weights in a model's engine; `trainable`: whether each
        one is a trained weight (not a moving statistic), all by default."""
        self._views = views
        self._trained = [True] * len(views) if trainable is None else list(trainable)

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """The weights the optimizer updates: none when the layer is frozen (Keras')."""
        if not self.trainable:
            return []
        return [v for v, t in zip(self._views, getattr(self, "_trained", ())) if t]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """The other weights: moving statistics, and every weight of a frozen layer."""
        if not self.trainable:
            return list(self._views)
        return [v for v, t in zip(self._views, getattr(self, "_trained", ())) if not t]

    def initialize(self) -> None:
        for view, (init, _) in zip(self._views, self.weight_settings()):
            view[...] = init(view.shape)

    def get_weights(self) -> list[np.ndarray]:
        return [v.copy() for v in self._views]

    def check_weights(
        self, weights: Iterable[ArrayLike], views: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """`weights` as float32 arrays fitting `views` (this layer's, by default), or a
        ValueError naming the layer, the weight and the expected and received shapes (NaN
        and inf refused). Changes nothing."""
        views = self._views if views is None else views
        weights = list(weights)
        if len(weights) != len(views):
            raise ValueError(
                f"Layer {self.name!r} expects {len(views)} weight arrays, received {len(weights)}"
            )
        checked = []
        for i, (view, w) in enumerate(zip(views, weights)):
            w = np.asarray(w, dtype=np.float32)
            if w.shape != view.shape:
                raise ValueError(
                    f"Layer {self.name!r} weight {i} expects shape {view.shape}, received {w.shape}"
                )
            if not np.isfinite(w).all():
                raise ValueError(f"Layer {self.name!r} weight {i} contains NaN or inf")
            checked.append(w)
        return checked

    def set_weights(self, weights: Iterable[ArrayLike]) -> None:
        """Sets all weights, or none when any is invalid."""
        for view, w in zip(self._views, self.check_weights(weights)):
            view[...] = w

    def count_params(self) -> int:
        return int(sum(v.size for v in self._views))

    @overload
    def __call__(
        self, inputs: SymbolicTensor | Sequence[SymbolicTensor], training: bool | None = None
    ) -> SymbolicTensor: ...
    @overload
    def __call__(self, inputs: ArrayLike, training: bool | None = None) -> NDArray[np.float32]: ...
    def __call__(
        self,
        inputs: SymbolicTensor | Sequence[SymbolicTensor] | ArrayLike,
        training: bool | None = None,
    ) -> SymbolicTensor | NDArray[np.float32]:
        """Runs the layer on a batch, as Keras' eager call: `Dense(3)(x)` with `x` a NumPy
        array whose first axis is the batch; returns a float32 array. A layer with no
        weights yet is built for `x`'s sample shape, with new weights that it keeps (and
        brings into a model it joins later); a layer of a model runs on that model's
        current weights. `training`: as in training (Dropout drops, augmentation layers
        transform); by default as Keras' layers default (augmentation layers on, the
        others in inference).

        Called on symbolic tensors (`deepcore.Input` and what layers return from them), it
        records the call and returns the symbolic output, as Keras' functional API does."""
        from ..models.sequential import Sequential

        if is_symbolic(inputs):
            return self._call_symbolic(inputs)
        if isinstance(inputs, Layer) or not isinstance(inputs, (np.ndarray, list, tuple)):
            raise TypeError(
                f"Layer {self.name!r} can be called on a NumPy array (a batch) or on symbolic "
                f"tensors (deepcore.Input), received {type(inputs).__name__}."
            )
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim < 2:
            raise ValueError(
                f"Layer {self.name!r} expects a batch: an array of at least 2 dimensions, "
                f"batch first. Received shape {x.shape}."
            )
        shape = x.shape[1:]
        if self._call_model is None and not self._views:  # first call: build the layer
            self._call_model = Sequential([InputLayer(shape=shape), self], name=f"{self.name}_call")
        model = self._call_model
        if (
            model is None
            or model._layer_views[0] is not self._views
            or model.input_shape[1:] != shape  # type: ignore[index]  # (it has an input)
        ):
            # a layer of a model, or called on another shape: a copy with its weights
            model = Sequential([InputLayer(shape=shape), type(self).from_config(self.get_config())])
            model.layers[0].set_weights(self.get_weights())
        return model(x, training=training)

    # --- the functional API
    def compute_output_shape(self, input_shape: Sequence[Any]) -> tuple[int | None, ...]:
        """The output shape (batch axis first, None) for `input_shape` (batch axis first),
        from the engine's plan of this layer alone: ValueError naming the layer when it
        cannot take that shape."""
        from .. import _core

        shape = tuple(input_shape)[1:]
        engine = _core.Model(0)
        self.add_to(engine)
        try:
            engine.plan(list(shape))
        except ValueError as e:
            message = re.sub(r"^layer #0: ", "", str(e))
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) cannot take inputs of shape "
                f"{(None, *shape)}: {message}"
            ) from None
        return (None, *engine.output_shape(-1))

    def _call_symbolic(self, inputs):
        """Records a call on symbolic tensors and returns its symbolic output."""
        many = isinstance(inputs, (list, tuple))
        if many != self._takes_several_inputs():
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) takes "
                + ("a list of tensors" if self._takes_several_inputs() else "one tensor")
                + f", received {inputs!r}."
            )
        tensors = list(inputs) if many else [inputs]
        shapes = [t.shape for t in tensors]
        out = self.compute_output_shape(shapes if many else shapes[0])
        return SymbolicTensor(tuple(out)[1:], self, tensors)

    def _training_default(self) -> bool | None:
        """How Keras runs the layer when a call does not say: True (as in training: the
        augmentation layers), False (in inference: Dropout, BatchNormalization), None (the
        same either way)."""
        return None

    def _takes_several_inputs(self) -> bool:
        """Whether the layer is called on a list of tensors (merge layers)."""
        return False

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class InputLayer(Layer):
    """Declares the shape of one input sample (without the batch axis)."""

    def __init__(
        self,
        shape: int | Sequence[int] | None = None,
        batch_size: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.shape = _shape_arg(shape, "shape", self._owner)
        self.batch_size = (
            None
            if batch_size is None
            else check_positive_int("batch_size", batch_size, self._owner)
        )


def Input(
    shape: int | Sequence[int] | None = None,
    batch_size: int | None = None,
    name: str | None = None,
) -> SymbolicTensor:
    """A symbolic tensor of samples of `shape` (Keras' `keras.Input`): the input of a
    functional model (`deepcore.Model(inputs, outputs)`), or the first entry of a Sequential
    model, which takes its shape."""
    layer = InputLayer(shape=shape, batch_size=batch_size, name=name or _auto_name("input_layer"))
    return SymbolicTensor(layer.shape, layer, batch_size=layer.batch_size)


class KernelLayer(Layer):
    """Base of layers computing activation(input (*) kernel + bias): Dense and Conv2D.

    Holds the settings they share: activation, use_bias, the initializers and the
    regularizers of the kernel and the bias.
    """

    def __init__(
        self,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def weight_settings(self) -> list[tuple]:
        s = [(self.kernel_initializer, self.kernel_regularizer)]
        return s + [(self.bias_initializer, self.bias_regularizer)] if self.use_bias else s

    def weight_names(self) -> list[str]:
        return ["kernel", "bias"] if self.use_bias else ["kernel"]

    @property
    def kernel(self) -> np.ndarray | None:
        return self._views[0] if self._views else None

    @property
    def bias(self) -> np.ndarray | None:
        return self._views[1] if self.use_bias and self._views else None

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }


class Dense(KernelLayer):
    """Fully connected layer: output = activation(input @ kernel + bias).

    Args:
        units: Output size (positive integer).
        activation: Activation name or function (None: linear).
        use_bias: Whether to add a bias vector.
        kernel_initializer: Initializer of the `(in, units)` kernel.
        bias_initializer: Initializer of the bias.
        kernel_regularizer: Penalty on the kernel, e.g. `deepcore.regularizers.l2(0.01)`.
        bias_regularizer: Penalty on the bias.
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(activation, use_bias, **kwargs)
        self.units = check_positive_int("units", units, self._owner)

    def _mask_role(self):
        return "pass"  # as Keras: the mask goes on unchanged

    def add_to(self, engine: _core.Model) -> None:
        engine.add_dense(self.units, activations.spec(self.activation), self.use_bias)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


class Activation(Layer):
    """Applies an activation function to its input."""

    def __init__(self, activation: str | Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def _mask_role(self):
        return "pass"  # as Keras: the mask goes on unchanged

    def add_to(self, engine: _core.Model) -> None:
        engine.add_activation(activations.spec(self.activation))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class _ParamActivation(Activation):
    """An activation layer with Keras' own class (ReLU, LeakyReLU, ELU, Softmax); `_PARAM`
    names its one numeric argument, if it has one."""

    _FN = "linear"
    _PARAM: str | None = None

    def __init__(self, value=None, **kwargs):
        super().__init__(self._FN, **kwargs)
        if self._PARAM is not None:
            setattr(self, self._PARAM, check_number(self._PARAM, value, owner=self._owner))

    def _param(self) -> dict:
        return {self._PARAM: getattr(self, self._PARAM)} if self._PARAM is not None else {}

    def add_to(self, engine: _core.Model) -> None:
        engine.add_activation(activations.spec(self.activation, *self._param().values()))

    def get_config(self) -> dict[str, Any]:
        return {**Layer.get_config(self), **self._param()}


class ReLU(_ParamActivation):
    """max(x, 0). Keras' `max_value`, `negative_slope` and `threshold` keep their defaults
    here (use LeakyReLU for a negative slope)."""

    _FN = "relu"

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if max_value is not None or negative_slope != 0.0 or threshold != 0.0:
            raise ValueError(
                "ReLU: only max_value=None, negative_slope=0 and threshold=0 are supported. "
                f"Received: max_value={max_value!r}, negative_slope={negative_slope!r}, "
                f"threshold={threshold!r}"
            )
        super().__init__(**kwargs)


class LeakyReLU(_ParamActivation):
    """x if x > 0 else negative_slope * x (Keras 3's default slope, 0.3)."""

    _FN, _PARAM = "leaky_relu", "negative_slope"

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        super().__init__(negative_slope, **kwargs)


class ELU(_ParamActivation):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    _FN, _PARAM = "elu", "alpha"

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(alpha, **kwargs)


class Softmax(_ParamActivation):
    """Softmax over the last axis (the only axis supported)."""

    _FN = "softmax"

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        if axis != -1:
            raise ValueError(f"Softmax: only axis=-1 is supported. Received: axis={axis!r}")
        super().__init__(**kwargs)


class Dropout(Layer):
    """Sets a fraction `rate` of inputs to 0 during training and scales the rest by 1/(1-rate).

    Inactive in evaluate and predict. Without `seed` the masks come from the model's random
    stream (`deepcore.utils.set_random_seed`); with a `seed` (an int >= 0) they depend on
    that seed and on the training step only.
    """

    def __init__(
        self,
        rate: float,
        noise_shape: Sequence[int | None] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (is_number(rate) and 0 <= rate < 1):
            raise ValueError(f"{self._owner}: `rate` must be in [0, 1). Received: rate={rate!r}")
        if noise_shape is not None:
            raise ValueError("Dropout: noise_shape is not supported yet")
        if seed is not None and not is_int(seed, 0, 2**64 - 1):  # the engine takes a uint64
            raise ValueError(
                f"{self._owner}: `seed` must be None or an int in [0, 2**64). "
                f"Received: seed={seed!r}"
            )
        self.rate = float(rate)
        self.seed = None if seed is None else int(seed)

    def _training_default(self) -> bool | None:
        return False

    def _mask_role(self):
        return "pass"  # as Keras: the mask goes on unchanged

    def add_to(self, engine: _core.Model) -> None:
        engine.add_dropout(self.rate, self.seed)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class BatchNormalization(Layer):
    """Normalizes the last axis: gamma * (x - mean) / sqrt(var + epsilon) + beta.

    In training the batch's mean and (biased) variance are used and the moving
    statistics updated: moving = moving * momentum + batch * (1 - momentum). In
    evaluate and predict the moving statistics are used. Weights, in Keras' order:
    gamma, beta (trainable), moving_mean, moving_variance (not trainable).
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(
                f"BatchNormalization {self.name!r}: only axis=-1 (channels_last) "
                f"is supported. Received: axis={axis!r}"
            )
        self.momentum = check_number(
            "momentum", momentum, 0.0, high=1.0, high_inclusive=True, owner=self._owner
        )
        self.epsilon = check_number("epsilon", epsilon, 0.0, inclusive=False, owner=self._owner)
        self.axis = axis
        self.center, self.scale = bool(center), bool(scale)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_initializer = initializers.get(beta_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def _training_default(self) -> bool | None:
        return False if self.trainable else None  # (frozen: the moving statistics always)

    def _mask_role(self):
        return "refuse"  # Keras' statistics leave the masked steps out; deepcore's cannot yet

    def add_to(self, engine: _core.Model) -> None:
        engine.add_batch_normalization(self.momentum, self.epsilon, self.center, self.scale)

    def weight_settings(self) -> list[tuple]:
        s = [(self.gamma_initializer, None)] if self.scale else []
        s += [(self.beta_initializer, None)] if self.center else []
        return s + [(self.moving_mean_initializer, None), (self.moving_variance_initializer, None)]

    def weight_names(self) -> list[str]:
        return (
            (["gamma"] if self.scale else [])
            + (["beta"] if self.center else [])
            + ["moving_mean", "moving_variance"]
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
        }
