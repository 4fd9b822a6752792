"""Recurrent layers: SimpleRNN, LSTM and GRU, with Keras 3's arguments, equations and weights.

Each runs in the engine over (batch, steps, features) inputs: the input projections of all
steps in one GEMM, then per step the recurrent GEMM and one fused kernel for the gate maths;
the backward pass through time likewise. Not supported (a ValueError says so): masking,
`dropout` and `recurrent_dropout` > 0, `stateful=True`, `return_state=True`, GRU's
`reset_after=False`, constraints and `activity_regularizer`; `unroll` and `use_cudnn` are
accepted and change nothing (the engine's loop is its own). `Bidirectional` is not
available yet.
"""

from __future__ import annotations

import numpy as np

from .. import _core, activations, initializers, regularizers
from .._registry import check_positive_int
from .core import Layer

__all__ = ["SimpleRNN", "LSTM", "GRU"]

# The activations the engine's cells compute (the derivative known from the output).
_CELL_ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "relu", "linear")


class _Recurrent(Layer):
    """What SimpleRNN, LSTM and GRU share: Keras' arguments, the checks of those deepcore
    does not support, the weights kernel, recurrent_kernel and bias (Keras' shapes and
    order: gates side by side along the last axis)."""

    _CELL = None  # _core.Cell
    _GATES = 1
    _HAS_REC_ACT = False

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        **kwargs,
    ):
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
            if not isinstance(value, (int, float, np.floating, np.integer)) or not (0 <= value < 1):
                raise ValueError(
                    f"{owner}: `{name}` must be a number in [0, 1). Received: {name}={value!r}"
                )
            if value != 0:
                raise ValueError(
                    f"{owner}: `{name}` > 0 is not supported yet (only {name}=0.0). "
                    f"Received: {name}={value!r}"
                )
        self.dropout = self.recurrent_dropout = 0.0
        self.seed = seed
        self.return_sequences = self._flag("return_sequences", return_sequences)
        self.go_backwards = self._flag("go_backwards", go_backwards)
        self.return_state = self.stateful = False
        self.unroll = bool(unroll)

    def _flag(self, name, value) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(
                f"{self._owner}: `{name}` must be True or False. Received: {name}={value!r}"
            )
        return bool(value)

    def _cell_activation(self, name, value):
        fn = activations.get(value)
        if activations.serialize(fn) not in _CELL_ACTIVATIONS:
            raise ValueError(
                f"{self._owner}: `{name}` must be one of {', '.join(_CELL_ACTIVATIONS)} "
                f"(the activations deepcore's recurrent cells compute). Received: {name}={value!r}"
            )
        return fn

    def add_to(self, engine):
        rec = self.recurrent_activation or "sigmoid"
        engine.add_recurrent(
            self._CELL,
            self.units,
            activations.spec(self.activation).kind,
            activations.spec(rec).kind,
            self.use_bias,
            self.return_sequences,
            self.go_backwards,
        )

    def _bias_initializer(self):
        return self.bias_initializer

    def weight_settings(self):
        s = [
            (self.kernel_initializer, self.kernel_regularizer),
            (self.recurrent_initializer, self.recurrent_regularizer),
        ]
        return s + [(self._bias_initializer(), self.bias_regularizer)] if self.use_bias else s

    def weight_names(self):
        names = ["kernel", "recurrent_kernel"]
        return names + ["bias"] if self.use_bias else names

    @property
    def kernel(self):
        return self._views[0] if self._views else None

    @property
    def recurrent_kernel(self):
        return self._views[1] if self._views else None

    @property
    def bias(self):
        return self._views[2] if self.use_bias and self._views else None

    def get_config(self):
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
        return_sequences: Return every step's state instead of the last.
        go_backwards: Process the sequence backwards.

    Not supported (a ValueError): dropout, recurrent_dropout > 0, return_state, stateful,
    masking, constraints, activity_regularizer.
    """

    _CELL = _core.Cell.simple_rnn

    def __init__(self, units, activation="tanh", **kwargs):
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
        kernel_regularizer, recurrent_regularizer, bias_regularizer, return_sequences,
        go_backwards: As in SimpleRNN.
        unit_forget_bias: Start the forget gate's bias at 1 (bias_initializer elsewhere).

    Not supported (a ValueError): as SimpleRNN.
    """

    _CELL = _core.Cell.lstm
    _GATES = 4
    _HAS_REC_ACT = True

    def __init__(self, units, *args, unit_forget_bias=True, **kwargs):
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

    def get_config(self):
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

    Not supported (a ValueError): as SimpleRNN, and reset_after=False.
    """

    _CELL = _core.Cell.gru
    _GATES = 3
    _HAS_REC_ACT = True

    def __init__(self, units, *args, reset_after=True, **kwargs):
        super().__init__(units, *args, **kwargs)
        if reset_after is not True:
            raise ValueError(
                f"{self._owner}: only reset_after=True (Keras' default) is supported. "
                f"Received: reset_after={reset_after!r}"
            )
        self.reset_after = True

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}
