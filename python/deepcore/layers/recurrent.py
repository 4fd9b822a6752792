"""Recurrent layers: SimpleRNN, LSTM and GRU, with Keras 3's arguments, equations and weights.

Each runs in the engine over (batch, steps, features) inputs: the input projections of all
steps in one GEMM, then per step the recurrent GEMM and one fused kernel for the gate maths;
the backward pass through time likewise. A sequence mask (from `Embedding(mask_zero=True)` or
`Masking`) makes them skip the padded steps as Keras does: a masked step keeps the states, and
its output is the kept state (zeros inside `Bidirectional` returning sequences). `dropout` and
`recurrent_dropout` work as in Keras 3 (see `_Recurrent`). Not supported (a ValueError says
so): `stateful=True`, `return_state=True`, GRU's `reset_after=False`, constraints and
`activity_regularizer`; `unroll` and `use_cudnn` are accepted and change nothing (the
engine's loop is its own). `Bidirectional` wraps one of them and runs it both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from .. import _core, activations, initializers, regularizers
from .._registry import check_bool, check_positive_int, is_int, is_number
from .core import Layer

__all__ = ["SimpleRNN", "LSTM", "GRU", "Bidirectional"]

# The activations the engine's cells compute (the derivative known from the output).
_CELL_ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "relu", "linear")
_BidirectionalT = TypeVar("_BidirectionalT", bound="Bidirectional")


class _Recurrent(Layer):
    """What SimpleRNN, LSTM and GRU share: Keras' arguments, the checks of those deepcore
    does not support, the weights kernel, recurrent_kernel and bias (Keras' shapes and
    order: gates side by side along the last axis), and dropout.

    Dropout, as Keras 3 does it, in training only (fit, and `gradients`; never in evaluate or
    predict): `dropout` sets that fraction of the input features to 0 and `recurrent_dropout`
    that fraction of the previous state h_{t-1} where it enters the recurrent kernel (GRU's
    h_t = z * h_{t-1} + ... keeps the unmasked state), the rest scaled by 1 / (1 - rate).
    Each mask is drawn once per batch, for each sample, and is the same at every step. With
    `recurrent_dropout` == 0 one input mask serves all gates (Keras' default implementation);
    with `recurrent_dropout` > 0 every gate has its own input mask and its own state mask, as
    in Keras, which then switches to its per-gate implementation. The masks come from the
    model's random stream (`deepcore.utils.set_random_seed`), or with `seed` (an int >= 0)
    from that seed and the training step only; they cannot be Keras' own random draws.
    Unlike Keras, which clips rates into [0, 1], a rate outside [0, 1) raises a ValueError.
    """

    _CELL: _core.Cell | None = None
    _GATES = 1
    _HAS_REC_ACT = False

    def __init__(
        self,
        units: int,
        activation: str | Callable[..., Any] | None = "tanh",
        recurrent_activation: str | Callable[..., Any] | None = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("use_cudnn", None)
        super().__init__(**kwargs)
        owner = self._owner
        self.units = check_positive_int("units", units, owner)
        self.activation = self._cell_activation("activation", activation)
        self.recurrent_activation = (
            self._cell_activation("recurrent_activation", recurrent_activation)
            if self._HAS_REC_ACT
            else None
        )
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        unsupported = {
            "activity_regularizer": (activity_regularizer, None),
            "kernel_constraint": (kernel_constraint, None),
            "recurrent_constraint": (recurrent_constraint, None),
            "bias_constraint": (bias_constraint, None),
            "return_state": (return_state, False),
            "stateful": (stateful, False),
        }
        for name, (value, default) in unsupported.items():
            if value is not default and value != default:
                raise ValueError(
                    f"{owner}: `{name}` is not supported yet (only {name}={default!r}). "
                    f"Received: {name}={value!r}"
                )
        for name, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not is_number(value) or not (0 <= value < 1):
                raise ValueError(
                    f"{owner}: `{name}` must be a number in [0, 1). Received: {name}={value!r}"
                )
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        if seed is not None and not is_int(seed, 0, 2**64 - 1):  # the engine takes a uint64
            raise ValueError(
                f"{owner}: `seed` must be None or an int in [0, 2**64). Received: seed={seed!r}"
            )
        self.seed = None if seed is None else int(seed)
        self.return_sequences = self._flag("return_sequences", return_sequences)
        self.go_backwards = self._flag("go_backwards", go_backwards)
        self.return_state = self.stateful = False
        self.unroll = bool(unroll)

    def _flag(self, name, value) -> bool:
        return check_bool(name, value, self._owner)

    def _cell_activation(self, name, value):
        fn = activations.get(value)
        if activations.serialize(fn) not in _CELL_ACTIVATIONS:
            raise ValueError(
                f"{self._owner}: `{name}` must be one of {', '.join(_CELL_ACTIVATIONS)} "
                f"(the activations deepcore's recurrent cells compute). Received: {name}={value!r}"
            )
        return fn

    def _engine_args(self) -> tuple:
        """(cell, units, activation, recurrent activation, use_bias) for the engine."""
        rec = self.recurrent_activation or "sigmoid"
        return (
            self._CELL,
            self.units,
            activations.spec(self.activation).kind,
            activations.spec(rec).kind,
            self.use_bias,
        )

    def _dropout_args(self) -> tuple:
        """(dropout, recurrent_dropout, seed) for the engine."""
        return self.dropout, self.recurrent_dropout, self.seed

    def add_to(self, engine):
        engine.add_recurrent(
            *self._engine_args(),
            self.return_sequences,
            self.go_backwards,
            *self._dropout_args(),
        )

    def _training_default(self) -> bool | None:
        return False if self.dropout or self.recurrent_dropout else None

    def _mask_role(self):
        return "read_pass" if self.return_sequences else "read"

    def _bias_initializer(self):
        return self.bias_initializer

    def weight_settings(self) -> list[tuple]:
        s = [
            (self.kernel_initializer, self.kernel_regularizer),
            (self.recurrent_initializer, self.recurrent_regularizer),
        ]
        return s + [(self._bias_initializer(), self.bias_regularizer)] if self.use_bias else s

    def weight_names(self) -> list[str]:
        names = ["kernel", "recurrent_kernel"]
        return names + ["bias"] if self.use_bias else names

    @property
    def kernel(self) -> np.ndarray | None:
        return self._views[0] if self._views else None

    @property
    def recurrent_kernel(self) -> np.ndarray | None:
        return self._views[1] if self._views else None

    @property
    def bias(self) -> np.ndarray | None:
        return self._views[2] if self.use_bias and self._views else None

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
        }
        if self._HAS_REC_ACT:
            config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return {
            **config,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
        }


class SimpleRNN(_Recurrent):
    """Fully connected recurrence: h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel
    + bias), h_0 = 0.

    Inputs (batch, steps, features); the output is the last state (batch, units), or every
    state (batch, steps, units) with `return_sequences=True`. With `go_backwards=True` the
    steps are read last to first and, as in Keras, the sequence returned in that order.

    Args:
        units: Size of the state (positive integer).
        activation: "tanh" (default), "sigmoid", "hard_sigmoid", "relu" or "linear".
        use_bias: Whether to add a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: Initializers of the
            (features, units) kernel, the (units, units) recurrent kernel ("orthogonal") and
            the bias.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Penalties.
        dropout: Fraction of the input features dropped in training (in [0, 1)).
        recurrent_dropout: Fraction of the state h_{t-1} dropped in training, where it
            enters the recurrent kernel (in [0, 1)).
        seed: None (the model's random stream) or an int >= 0: the dropout masks' seed.
        return_sequences: Return every step's state instead of the last.
        go_backwards: Process the sequence backwards.

    Dropout as in Keras 3: one mask per sample over the features, one over the state, the
    same at every step, in training only (the details in `deepcore.layers.recurrent`).

    Not supported (a ValueError): return_state, stateful, masking, constraints,
    activity_regularizer.
    """

    _CELL = _core.Cell.simple_rnn

    def __init__(
        self, units: int, activation: str | Callable[..., Any] | None = "tanh", **kwargs: Any
    ) -> None:
        if "recurrent_activation" in kwargs:
            raise TypeError(
                "Unrecognized keyword arguments passed to SimpleRNN: "
                f"{{'recurrent_activation': {kwargs['recurrent_activation']!r}}}"
            )
        super().__init__(units, activation, **kwargs)


class LSTM(_Recurrent):
    """Long Short-Term Memory (Hochreiter 1997), Keras 3's equations:
    z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias split in four (gates i, f, c, o),
    i, f, o = recurrent_activation(z_i, z_f, z_o), c_t = f * c_{t-1} + i * activation(z_c),
    h_t = o * activation(c_t), with h_0 = c_0 = 0.

    Weights: kernel (features, 4 units), recurrent_kernel (units, 4 units), bias (4 units),
    the gates in Keras' order i, f, c, o, so `set_weights(keras_lstm.get_weights())` gives
    Keras' outputs. With `unit_forget_bias=True` (default) the forget gate's bias starts at 1.

    Args:
        units: Size of the state (positive integer).
        activation: Of the candidate and the output (default "tanh").
        recurrent_activation: Of the gates (default "sigmoid").
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
        kernel_regularizer, recurrent_regularizer, bias_regularizer, dropout,
        recurrent_dropout, seed, return_sequences, go_backwards: As in SimpleRNN.
        unit_forget_bias: Start the forget gate's bias at 1 (bias_initializer elsewhere).

    Dropout as in Keras 3: with `recurrent_dropout` == 0, one input mask for the four gates;
    with `recurrent_dropout` > 0, one input mask and one state mask per gate.

    Not supported (a ValueError): as SimpleRNN.
    """

    _CELL = _core.Cell.lstm
    _GATES = 4
    _HAS_REC_ACT = True

    def __init__(
        self, units: int, *args: Any, unit_forget_bias: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(units, *args, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, init = self.units, self.bias_initializer

        class _ForgetBias(initializers.Initializer):
            def sample(self, shape):
                b = np.asarray(init((units,)), np.float64)
                return np.concatenate([b, np.ones(units), np.asarray(init((2 * units,)))])

        return _ForgetBias()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_Recurrent):
    """Gated Recurrent Unit (Cho 2014) in Keras 3's default `reset_after=True` form:
    x_z, x_r, x_h = split(x_t @ kernel + bias[0]); r_z, r_r, r_h = split(h_{t-1} @
    recurrent_kernel + bias[1]); z = recurrent_activation(x_z + r_z), r =
    recurrent_activation(x_r + r_r), hh = activation(x_h + r * r_h),
    h_t = z * h_{t-1} + (1 - z) * hh, with h_0 = 0.

    Weights: kernel (features, 3 units), recurrent_kernel (units, 3 units), bias (2, 3 units)
    (the input's then the recurrent's), gates in Keras' order z, r, h.

    Args:
        units, activation, recurrent_activation, ...: As in LSTM.
        reset_after: Only True (Keras' default); False raises a ValueError.

    Dropout as in LSTM (per gate with `recurrent_dropout` > 0); the state mask applies to
    h_{t-1} in the recurrent kernel's product only, not in h_t = z * h_{t-1} + ...

    Not supported (a ValueError): as SimpleRNN, and reset_after=False.
    """

    _CELL = _core.Cell.gru
    _GATES = 3
    _HAS_REC_ACT = True

    def __init__(self, units: int, *args: Any, reset_after: bool = True, **kwargs: Any) -> None:
        super().__init__(units, *args, **kwargs)
        if reset_after is not True:
            raise ValueError(
                f"{self._owner}: only reset_after=True (Keras' default) is supported. "
                f"Received: reset_after={reset_after!r}"
            )
        self.reset_after = True

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reset_after": self.reset_after}


_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _removeprefix(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Runs a recurrent layer over the sequence both ways and merges the two outputs.

    As in Keras 3: `forward_layer` is a copy of `layer` (same config, own weights, named
    "forward_<name>"), `backward_layer` a copy with `go_backwards=True` ("backward_<name>")
    unless given; `return_sequences` is the wrapped layer's, and with it the backward
    layer's outputs are put back in the forward time order before the merge. The merge:
    "concat" (default; width units_f + units_b), "sum", "mul" or "ave" (the mean).
    `get_weights()` lists the forward layer's weights, then the backward layer's, as Keras
    does, so `set_weights(keras_bidirectional.get_weights())` gives Keras' outputs.

    Args:
        layer: A SimpleRNN, LSTM or GRU (other layers raise a ValueError).
        merge_mode: "concat", "sum", "mul" or "ave". Keras' None (a list of the two
            outputs) raises a ValueError: a Sequential model passes one output on.
        weights: Initial weights (the forward layer's, then the backward's).
        backward_layer: A SimpleRNN, LSTM or GRU for the backward direction, whose
            `go_backwards` must differ from `layer`'s and whose `return_sequences` must be
            the same.

    Each direction applies its own `dropout` and `recurrent_dropout` with masks of its own
    (the two directions' masks differ). A `seed` of the forward layer (else of the backward
    one) seeds both directions' masks, which still differ.
    """

    def __init__(
        self,
        layer: _Recurrent,
        merge_mode: str | None = "concat",
        weights: Any = None,
        backward_layer: _Recurrent | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = self._owner
        if not isinstance(layer, _Recurrent):
            raise ValueError(
                f"{owner}: `layer` must be a SimpleRNN, LSTM or GRU layer (the recurrent layers "
                f"deepcore runs both ways). Received: layer={layer!r}"
            )
        if backward_layer is not None and not isinstance(backward_layer, _Recurrent):
            raise ValueError(
                f"{owner}: `backward_layer` must be a SimpleRNN, LSTM or GRU layer. "
                f"Received: backward_layer={backward_layer!r}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"{owner}: invalid merge mode; it should be one of 'sum', 'mul', 'ave', "
                f"'concat' or None. Received: merge_mode={merge_mode!r}"
            )
        if merge_mode is None:
            raise ValueError(
                f"{owner}: merge_mode=None (a list of the two outputs) is not supported: a "
                "Sequential model passes one output on. Use 'concat', 'sum', 'mul' or 'ave'. "
                "Received: merge_mode=None"
            )
        config = layer.get_config()
        config["name"] = f"forward_{_removeprefix(layer.name, 'forward_')}"
        self.forward_layer = type(layer).from_config(config)
        if backward_layer is None:
            config = layer.get_config()
            config["go_backwards"] = True
            config["name"] = f"backward_{_removeprefix(layer.name, 'backward_')}"
            backward_layer = type(layer).from_config(config)
        self.backward_layer = backward_layer
        fwd, bwd = self.forward_layer, self.backward_layer
        if fwd.go_backwards == bwd.go_backwards:
            raise ValueError(
                f"{owner}: the forward and backward layers should have different `go_backwards`."
                f" Received: forward_layer.go_backwards={fwd.go_backwards}, "
                f"backward_layer.go_backwards={bwd.go_backwards}"
            )
        if fwd.return_sequences != bwd.return_sequences:
            raise ValueError(
                f"{owner}: the forward and backward layers should have the same "
                f"`return_sequences`. Received: forward_layer.return_sequences="
                f"{fwd.return_sequences}, backward_layer.return_sequences="
                f"{bwd.return_sequences}"
            )
        if merge_mode != "concat" and fwd.units != bwd.units:
            raise ValueError(
                f"{owner}: merge_mode={merge_mode!r} needs the same units in both directions. "
                f"Received: forward units={fwd.units}, backward units={bwd.units}"
            )
        self.merge_mode = merge_mode
        self.return_sequences = fwd.return_sequences
        self.return_state = self.stateful = False
        self._initial_weights = None if weights is None else list(weights)

    def _mask_role(self):
        return "read_pass" if self.return_sequences else "read"

    def add_to(self, engine):
        fwd, bwd = self.forward_layer, self.backward_layer
        engine.add_bidirectional(
            getattr(_core.Merge, self.merge_mode),
            self.return_sequences,
            *fwd._engine_args(),
            fwd.go_backwards,
            *bwd._engine_args(),
            bwd.go_backwards,
            *fwd._dropout_args(),
            *bwd._dropout_args(),
        )

    def weight_settings(self) -> list[tuple]:
        return self.forward_layer.weight_settings() + self.backward_layer.weight_settings()

    def weight_names(self) -> list[str]:
        return [f"forward_{n}" for n in self.forward_layer.weight_names()] + [
            f"backward_{n}" for n in self.backward_layer.weight_names()
        ]

    def bind(self, views: list[np.ndarray], trainable: Iterable[bool] | None = None) -> None:
        super().bind(views, trainable)
        n = len(self.forward_layer.weight_settings())
        self.forward_layer.bind(views[:n])
        self.backward_layer.bind(views[n:])

    def _training_default(self) -> bool | None:
        return self.forward_layer._training_default()

    def _inner_layers(self):
        pair = (getattr(self, "forward_layer", None), getattr(self, "backward_layer", None))
        return [la for la in pair if la is not None]

    def initialize(self) -> None:
        super().initialize()
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def get_config(self) -> dict[str, Any]:
        def serialize(layer):
            return {"class_name": type(layer).__name__, "config": layer.get_config()}

        return {
            **super().get_config(),
            "merge_mode": self.merge_mode,
            "layer": serialize(self.forward_layer),
            "backward_layer": serialize(self.backward_layer),
        }

    @classmethod
    def from_config(cls: type[_BidirectionalT], config: dict[str, Any]) -> _BidirectionalT:
        config = dict(config)
        kinds = {c.__name__: c for c in (SimpleRNN, LSTM, GRU)}
        for key in ("layer", "backward_layer"):
            inner = config.get(key)
            if inner is None and key == "backward_layer":
                continue
            if not isinstance(inner, dict) or inner.get("class_name") not in kinds:
                raise ValueError(f"Bidirectional: unknown wrapped layer {key}={inner!r}")
            config[key] = kinds[inner["class_name"]].from_config(inner["config"])
        return cls(**config)
