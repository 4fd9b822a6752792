"""The base of every model: its layers, trained by the C++ engine.

Python calls the engine once per epoch (fit), once per batch only when a
callback asks for batch-level hooks, or in chunks of batches to redraw the
progress bar on a terminal; the data is converted to float32 once.
"""

from __future__ import annotations

import math
import re
import time
import warnings

import numpy as np

from .. import _core, config, losses, optimizers, utils
from .. import callbacks as callbacks_module
from .. import metrics as metrics_module
from .._registry import Trainable, check_int, check_positive_int, check_verbose, is_number
from ..layers.core import Layer, _shape_arg
from ..layers.symbolic import is_symbolic
from .epochs import RowStream, StreamRows
from .masks import plan_masks
from .progress import Progress

__all__ = ["Model"]


def _metric_list(metrics) -> list:
    """compile's metrics or weighted_metrics as a list."""
    if isinstance(metrics, str) or callable(metrics):
        return [metrics]
    return list(metrics or [])


def _loss_weight(loss_weights) -> float:
    """compile's loss_weights for a model of one output: a number >= 0, or a list or dict
    of one; 1 when None."""
    given = loss_weights
    if isinstance(loss_weights, dict):
        loss_weights = list(loss_weights.values())
    if isinstance(loss_weights, (list, tuple)):
        if len(loss_weights) != 1 or isinstance(loss_weights[0], str):
            hint = (
                " (compile's third argument is loss_weights, as in Keras: pass metrics=...)"
                if any(isinstance(w, str) for w in loss_weights)
                else ""
            )
            raise ValueError(
                f"`loss_weights` must be a number, or a list or dict of one for a model of one "
                f"output{hint}. Received: loss_weights={given!r}"
            )
        loss_weights = loss_weights[0]
    if loss_weights is None:
        return 1.0
    if not is_number(loss_weights) or not math.isfinite(loss_weights) or loss_weights < 0:
        raise ValueError(
            f"`loss_weights` must be a finite number >= 0. Received: loss_weights={given!r}"
        )
    return float(loss_weights)


def _param_views(engine, trainable, states=None):
    """(layer index, view, is trainable) of each weight in the engine's order: trainable
    ones as views into `trainable` (the weights, or a gradient of them), the others
    (moving statistics) into `states`, or left out when it is None."""
    for li, offset, shape, is_trainable in engine.param_info():
        flat = trainable if is_trainable else states
        if flat is not None:
            yield li, flat[offset : offset + int(np.prod(shape))].reshape(shape), is_trainable


def engine_with(layers, device: int = 0, warn: bool = False):
    """A new engine (on `device`) holding `layers`, not built, its layers pointed at the
    sequence masks they read (with Keras' warnings for the layers that drop one if `warn`),
    and its loss and metrics at the mask that reaches the output, if one does."""
    engine = _core.Model(device)
    for layer in layers:
        layer.add_to(engine)
    maker = plan_masks(layers, engine, warn=warn)
    if maker is not None:
        engine.set_output_mask_source(next(i for i, la in enumerate(layers) if la is maker))
    return engine


def layer_named(layers, message: str):
    """(the layer, the rest) of an engine message "layer #i: rest" about one of `layers`,
    else (None, message)."""
    found = re.match(r"layer #(\d+): (.*)", message, re.S)
    if found and int(found.group(1)) < len(layers):
        return layers[int(found.group(1))], found.group(2)
    return None, message


class _HostMirror:
    """An engine whose memory the host cannot read (a GPU's), used as if it could: its
    weights and states are host arrays (what layers view and `get_weights` copies), written
    to the device before each call that computes and read back after each that trains:
    one copy each way per call, never per batch."""

    _computes = frozenset({"fit_epoch", "fit_rows", "evaluate", "predict", "gradients"})
    # (gradients: BatchNormalization's moving statistics follow the training-mode pass)
    _trains = frozenset({"fit_epoch", "fit_rows", "gradients"})

    def __init__(self, engine):
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_w", engine.read())
        object.__setattr__(self, "_s", engine.read(states=True))

    def weights(self):
        return self._w

    def states(self):
        return self._s

    def __getattr__(self, name):
        attr = getattr(self._engine, name)
        if name not in self._computes:
            return attr

        def call(*args, **kwargs):
            self._engine.write(self._w)
            self._engine.write(self._s, states=True)
            try:
                return attr(*args, **kwargs)
            finally:
                if name in self._trains:  # also after an interrupted epoch
                    self._w[...] = self._engine.read()
                    self._s[...] = self._engine.read(states=True)

        return call

    def __setattr__(self, name, value):
        setattr(self._engine, name, value)


# ------------------------------------------------------------ epoch helpers
_CLASS_LOSSES = (
    _core.Loss.binary_crossentropy,
    _core.Loss.categorical_crossentropy,
    _core.Loss.sparse_categorical_crossentropy,
    _core.Loss.hinge,
)


def _overrides(callback, hook: str) -> bool:
    """Whether `callback` implements `hook` (a method override or a function set on the
    instance, as LambdaCallback does) with work that needs Python after a batch.
    TerminateOnNaN's batch check runs in the engine (fit stops the engine at the first
    non-finite batch loss and then calls the hook), so it needs no per-batch calls."""
    f = getattr(callback, hook, None)
    f = getattr(f, "__func__", f)
    return f is not getattr(callbacks_module.Callback, hook) and f is not getattr(
        callbacks_module.TerminateOnNaN, hook, None
    )


def _nan_stoppers(callbacks) -> list:
    """The callbacks whose batch check the engine runs (see `_overrides`)."""
    return [
        cb
        for cb in callbacks
        if isinstance(cb, callbacks_module.TerminateOnNaN)
        and not _overrides(cb, "on_train_batch_end")
    ]


class Model:
    """The base of every model: layers in an order where each comes after what it reads,
    trained by the engine, with Keras' `compile` / `fit` / `evaluate` / `predict`, the weights,
    `summary` and saving. `Model(inputs, outputs)` makes a functional model
    (models/functional.py); `Sequential` is the graph that is a line.
    """

    trainable = Trainable()

    def __new__(cls, *args, **kwargs):
        # Keras: Model(inputs, outputs) is a functional model.
        if cls is Model:
            from .functional import Functional

            return super().__new__(Functional)
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs):
        # A subclassed model (Keras': layers set in __init__, a `call`) is a functional model
        # whose graph comes from tracing `call` once on symbolic inputs.
        super().__init_subclass__(**kwargs)
        if "call" not in cls.__dict__ or any(c.__name__ == "Functional" for c in cls.__mro__):
            return
        from .functional import Functional

        cls.__bases__ = tuple(Functional if b is Model else b for b in cls.__bases__)

    def __init__(self, name=None, trainable=True):
        self.name = name or "model"
        self.trainable = trainable
        self._layers: list[Layer] = []
        self._input_shape: tuple | None = None
        self._engine = None
        self._layer_views: list[list[np.ndarray]] = []  # each layer's weights in the engine
        self._layer_trained: list[list[bool]] = []  # whether each is trained (not a statistic)
        self._frozen: list[bool] = []  # each layer frozen, as the last compile found it
        self.optimizer = None
        self.loss = None
        self._loss = None
        self._metrics: list = []
        self._metric_weighted: list[bool] = []  # per metric: Keras' weighted_metrics
        self._metric_names: list[str] = []
        self._loss_weight = 1.0
        self.compiled = False
        self.stop_training = False
        self.history = None

    def _shares(self, i: int) -> bool:
        """Whether layer i is a second call of an earlier layer (its weights are that one's)."""
        return False

    def _wire(self, engine) -> None:
        """Points each layer of the new engine at the values it reads (set_inputs): by
        default each reads the one before it, which the engine does by itself."""

    # ------------------------------------------------------------- structure
    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    @property
    def built(self) -> bool:
        return self._engine is not None

    def build(self, input_shape=None) -> None:
        """Creates the engine and the weights. `input_shape` includes the batch axis."""
        if input_shape is not None:
            try:
                shape = tuple(input_shape)[1:]
            except TypeError:
                shape = input_shape  # _shape_arg names it
            self._input_shape = _shape_arg(shape, "input_shape", f"Model {self.name!r}")
        self._build()

    def _new_engine(self, device: int | None = None):
        """An engine (on `device`, the engine's number of a device; by default the one of
        `deepcore.config.set_device`) holding the layers, built for the input shape (its
        weights zero) and with their regularizers; seen through a _HostMirror when the
        host cannot read its memory."""
        device = config.device_index() if device is None else device
        engine = engine_with(self._layers, device, warn=True)
        self._wire(engine)
        try:
            engine.build(list(self._input_shape))
        except ValueError as e:
            layer, message = layer_named(self._layers, str(e))
            where = f"model {self.name!r}"
            if layer is not None:
                where = f"layer {layer.name!r} ({type(layer).__name__}) of {where}"
            raise ValueError(
                f"Cannot build {where} for input shape {(None, *self._input_shape)}: {message}"
            ) from None
        index = 0
        for layer in self._layers:
            for _, reg in layer.weight_settings():
                if reg is not None:
                    engine.set_regularizer(index, reg.l1, reg.l2)
                index += 1
        return engine if engine.host_memory else _HostMirror(engine)

    def _build(self, keep=(), seed=None) -> None:
        """keep: weights (`get_weights` lists) of the first layers, used instead of new
        draws (as are the weights a layer already has); seed: the engine's random seed,
        drawn when None."""
        if not self._layers:
            raise ValueError(f"Model {self.name!r} has no layers: add layers before building it.")
        if self._input_shape is None:
            raise ValueError(
                f"Model {self.name!r} has no input shape yet: start with "
                "deepcore.Input(shape=...), pass input_shape= to the first layer, or call fit."
            )
        engine = self._new_engine()
        engine.seed = int(utils.rng().integers(2**63)) if seed is None else seed
        views = [[] for _ in self._layers]
        trained = [[] for _ in self._layers]
        for li, view, trainable in _param_views(engine, engine.weights(), engine.states()):
            views[li].append(view)
            trained[li].append(trainable)
        self._layer_views, self._layer_trained = views, trained
        for i, layer in enumerate(self._layers):
            if self._shares(i):
                continue  # a layer called again (shared): its weights are its first call's
            # A layer built before (called on data, or in another model) brings its
            # weights along when their shapes still fit, as a Keras layer would.
            previous = layer.get_weights()
            layer.bind(views[i], trained[i])
            if i < len(keep):
                layer.set_weights(keep[i])
            elif previous and [w.shape for w in previous] == [v.shape for v in layer.weights]:
                layer.set_weights(previous)
            else:
                layer.initialize()
        self._engine = engine
        if self.compiled:
            self._compile_engine()

    def _require_engine(self, what: str):
        if self._engine is None:
            self.build()
        self._take_layers()
        return self._engine

    def _take_layers(self) -> None:
        """A layer in several models (a model used inside another, as Keras shares its
        variables) points at the weights of the model that used it last: this model takes
        their values and points the layer back at its own."""
        for i, (layer, views, trained) in enumerate(
            zip(self._layers, self._layer_views, self._layer_trained)
        ):
            current = layer._views
            if current is views or self._shares(i):
                continue
            if [v.shape for v in current] == [v.shape for v in views]:
                for v, c in zip(views, current):
                    v[...] = c
            layer.bind(views, trained)

    def _own_weights(self, what: str) -> list[list[np.ndarray]]:
        """Each layer's weights in this model's engine (taken back from another model that
        used the layer since), through which everything the model reads, sets or saves goes."""
        self._require_engine(what)
        return self._layer_views

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None, *self._input_shape)

    @property
    def output_shape(self):
        return (None, *self._require_engine("output_shape").output_shape(-1))

    # ----------------------------------------------------------------- compile
    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        **kwargs,
    ):
        """Configures training (Keras 3's arguments, in its order).

        Args:
            optimizer: Name or `deepcore.optimizers.Optimizer`.
            loss: Name, function or `deepcore.losses.Loss`.
            loss_weights: A number (or a list or dict of one) scaling the loss and its
                gradients.
            metrics: Metric names (e.g. ["accuracy"]) or objects, computed without the
                sample weights (Keras' `metrics`).
            weighted_metrics: Metrics weighted by the sample weights (and class weights);
                named "weighted_<name>" where `metrics` has the same name.
        """
        unknown = set(kwargs) - {
            "run_eagerly",
            "jit_compile",
            "steps_per_execution",
            "auto_scale_loss",
        }
        if unknown:
            raise TypeError(f"Unrecognized keyword arguments passed to compile: {sorted(unknown)}")
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        self._loss = None if loss is None else losses.get(loss)
        if self._loss is not None and self._loss.reduction in ("none", None):
            raise ValueError(
                f"compile needs a loss that reduces to one number per batch. Received "
                f"{self._loss.name!r} with reduction={self._loss.reduction!r}; use "
                "'sum_over_batch_size' (the mean) or 'sum'."
            )
        self._loss_weight = _loss_weight(loss_weights)
        plain, weighted = _metric_list(metrics), _metric_list(weighted_metrics)
        self._metrics = [metrics_module.get(m) for m in plain + weighted]
        self._metric_weighted = [False] * len(plain) + [True] * len(weighted)
        names = [metrics_module.name_of(m) for m in self._metrics]
        self._metric_names = [
            f"weighted_{n}" if w and n in names[: len(plain)] else n
            for n, w in zip(names, self._metric_weighted)
        ]
        self._frozen = [self._frozen_now(layer) for layer in self._layers]
        self.compiled = True
        if self._engine is not None:
            self._compile_engine()

    def _frozen_now(self, layer) -> bool:
        """Whether `layer` is frozen (by its flag or the model's), for compile."""
        inner = layer._inner_layers()
        if layer.trainable and self.trainable and any(not la.trainable for la in inner):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) is trainable but "
                f"{[la.name for la in inner if not la.trainable]} inside it are not: deepcore "
                "freezes whole layers. Set trainable=False on the outer layer."
            )
        return not (self.trainable and layer.trainable)

    def _compile_engine(self):
        if self._loss is None:
            return
        for i, frozen in enumerate(self._frozen[: len(self._layers)]):
            self._engine.set_trainable(i, not frozen)
        spec = self._loss.spec()
        spec.weight = self._loss_weight
        self._engine.compile(spec, self.optimizer.spec(), [])
        self.optimizer.attach(self._engine)

    def _check_ready(self, what: str):
        if not self.compiled:
            raise ValueError(f"You must call compile() before {what}() on model {self.name!r}.")
        if self._loss is None:
            raise ValueError(
                f"Model {self.name!r} was compiled without a loss; {what}() needs "
                "one: compile(loss=...)."
            )

    # -------------------------------------------------------------------- data
    def _preparer(self, j: int):
        """The layer reading input j may take inputs of its own kind (an Embedding's integer
        indices): its prepare_inputs checks and converts them to the engine's float32."""
        return getattr(self._layers[0], "prepare_inputs", None) if self._layers else None

    def _inputs(self, x, name="x"):
        prepare = self._preparer(0)
        if prepare is not None:
            x = prepare(x, name)
        engine = self._engine
        if (
            engine is not None
            and type(x) is np.ndarray
            and x.dtype == np.float32
            and x.flags["CA"]  # C-contiguous and aligned
            and x.shape[1:] == self._input_shape
            and len(x)
            and _core.all_finite(x)
        ):
            self._take_layers()
            return x, engine  # already in the engine's format: no copy, no conversion
        if x is None:
            raise ValueError(f"`{name}` is required. Received: {name}=None")
        x = utils.as_float_array(x, name)
        if self._input_shape is None:
            if x.ndim < 2:
                raise ValueError(
                    f"`{name}` must have a batch axis and a feature axis. Received shape: {x.shape}"
                )
            self._input_shape = tuple(x.shape[1:])
            try:
                self.build()
            except ValueError:
                self._input_shape = None  # the data's shape was wrong, not the model
                raise
        engine = self._require_engine("fit")
        if x.shape[1:] != tuple(self._input_shape):
            first = self._layers[0]
            raise ValueError(
                f"Input of layer {first.name!r} (first layer of {self.name!r}) is incompatible: "
                f"expected shape {(None, *self._input_shape)}, received {x.shape}."
            )
        return x, engine

    def _targets(self, y, n: int, name="y"):
        if y is None:
            raise ValueError(f"`{name}` is required to train or evaluate. Received: {name}=None")
        y = utils.as_float_array(y, name)
        if len(y) != n:
            raise ValueError(
                f"x and {name} must have the same number of samples. "
                f"Received: x has {n}, {name} has {len(y)}."
            )
        out = tuple(self._engine.output_shape(-1))
        loss = self._loss
        if loss.sparse:
            if y.shape not in ((n, *out[:-1]), (n, *out[:-1], 1)):
                raise ValueError(
                    f"Loss {loss.name!r} expects integer class labels of shape "
                    f"{(n, *out[:-1])} (or {(n, *out[:-1], 1)}) for model output {(n, *out)}. "
                    f"Received: {name}.shape={y.shape}. For one-hot labels use "
                    "categorical_crossentropy."
                )
            bad = np.flatnonzero((y != np.floor(y)) | (y < 0) | (y >= out[-1]))
            if bad.size:
                raise ValueError(
                    f"Loss {loss.name!r} expects integer labels in [0, {out[-1]}). Received "
                    f"{name}[{bad[0]}] = {y.reshape(-1)[bad[0]]}."
                )
            return y
        expected = (n, *out)
        if y.shape != expected:
            if y.size == int(np.prod(expected)) and out[-1] == 1 and y.shape == expected[:-1]:
                y = y.reshape(expected)
            else:
                hint = ""
                if y.ndim == len(expected) - 1 and out[-1] > 1:
                    hint = (
                        " Integer class labels need sparse_categorical_crossentropy or "
                        "deepcore.utils.to_categorical."
                    )
                raise ValueError(
                    f"Loss {loss.name!r} expects {name} of shape {expected} to match the model "
                    f"output. Received: {name}.shape={y.shape}.{hint}"
                )
        return np.ascontiguousarray(loss.prepare_targets(y), np.float32)

    def _weights_for(self, sample_weight, class_weight, y, n):
        w = None
        if sample_weight is not None:
            w = utils.as_weights(sample_weight, "sample_weight")
            if w.shape != (n,):
                raise ValueError(
                    f"`sample_weight` must have one value per sample: expected "
                    f"shape ({n},), received {np.shape(sample_weight)}."
                )
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(
                    "`class_weight` must be a dict {class: weight}. "
                    f"Received: class_weight={class_weight!r}"
                )
            keys = list(class_weight)  # the same check as sample weights, for every class
            table = dict(zip(keys, utils.as_weights(class_weight.values(), "class_weight", keys)))
            labels = self._class_labels(y)
            if labels is None:  # soft or float targets: Keras' argmax, or the rounded value
                flat = y.reshape(n, -1)
                labels = (flat.argmax(axis=1) if flat.shape[1] > 1 else flat[:, 0].round()).astype(
                    np.int64
                )
            classes, inverse = np.unique(labels, return_inverse=True)
            try:
                per_class = np.array([table[int(c)] for c in classes], dtype=np.float32)
            except KeyError as e:
                raise ValueError(
                    f"`class_weight` has no entry for class {e.args[0]}. "
                    f"Received keys: {sorted(class_weight)}"
                ) from None
            cw = per_class[inverse.reshape(-1)]
            w = cw if w is None else w * cw
        return w

    def _set_metrics(self, y):
        out = tuple(self._engine.output_shape(-1))
        kinds = []
        for m, weighted in zip(self._metrics, self._metric_weighted):
            spec = metrics_module.resolve(
                m, y.ndim - 1, y.shape[-1] if y.ndim > 1 else 1, len(out), out[-1]
            )
            spec.weighted = weighted
            kinds.append(spec)
        self._engine.set_metrics(kinds)

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", *self._metric_names]

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_batch_size=None,
        validation_freq=1,
        validation_split_mode="last",
    ):
        """Trains the model; returns a `History` whose `.history` holds per-epoch logs.

        Args:
            x, y: Inputs and targets (NumPy arrays or anything `np.asarray` accepts).
            batch_size: Rows per gradient step (default 32).
            epochs: Index of the last epoch (training starts at `initial_epoch`).
            verbose: "auto" (= 1), 0 (silent), 1 (progress bar on a terminal, one line
                per epoch otherwise) or 2 (one line per epoch).
            callbacks: `deepcore.callbacks.Callback` instances.
            validation_split: Fraction of the rows held out for validation.
            validation_split_mode: Which rows `validation_split` holds out:
                "last" (Keras: the last rows, taken before any shuffling), "shuffle"
                (rows drawn at random from `deepcore.utils.rng()`) or "stratify" (drawn
                at random class by class, so each class keeps its proportion in both
                parts; classes come from integer labels, one-hot rows or binary 0/1
                labels). Both parts keep the original row order.
            validation_data: `(x_val, y_val)` or `(x_val, y_val, sample_weight_val)`;
                takes precedence over `validation_split`.
            shuffle: Reshuffle the training rows every epoch.
            class_weight: `{class: weight}`, multiplied into the sample weights.
            sample_weight: One weight per training row.
            initial_epoch: Epoch to start from (for resuming).
            steps_per_epoch: Batches per epoch; the data is cycled (see below).
            validation_batch_size: Batch size of the validation pass (default batch_size).
            validation_freq: Validate every `validation_freq` epochs.

        Differences from Keras:
            * A `UserWarning` names the classes that `validation_split` puts in the
              validation part only (typically sorted labels with the Keras default
              "last"): the model never trains on them.
            * `class_weight` weights the validation loss and metrics too (with any
              `validation_data` sample weights), so `loss` and `val_loss` measure the
              same objective; Keras applies it to training only. Every metric is
              weighted by the sample weights, in training and validation.
            * `steps_per_epoch` with arrays cycles through the data: an epoch takes the
              next `steps_per_epoch * batch_size` rows of an endless sequence of passes,
              each pass in a fresh order when `shuffle` (batches may span two passes).
              Keras stops with a warning when the arrays run out.
            * `verbose=1` prints the progress bar only when stdout is a terminal; into a
              file or pipe it prints one line per epoch, as `verbose=2` does:
              "Epoch 3/10 - 8/8 - 0s - 1ms/step - accuracy: 0.9000 - loss: 0.2500".

        On a terminal, `verbose=1` trains each epoch in chunks of batches (about
        0.1 s each) to redraw the bar; the chunks follow the row order the engine
        would have drawn, and each chunk goes on from the loss and metric counts of the
        one before, so weights and logs are those of training in one call. Fast epochs run
        in one call and the bar is drawn when they end.
        """
        self._check_ready("fit")
        batch_size = check_positive_int("batch_size", batch_size, default=32)
        if steps_per_epoch is not None:
            steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch)
        epochs = check_int("epochs", epochs, 0)
        initial_epoch = check_int("initial_epoch", initial_epoch, 0)
        verbose = check_verbose(verbose, auto=1)
        validation_freq = check_positive_int("validation_freq", validation_freq)
        if not (is_number(validation_split) and 0 <= validation_split < 1):
            raise ValueError(
                f"`validation_split` must be in [0, 1). "
                f"Received: validation_split={validation_split}"
            )
        if validation_split_mode not in ("last", "shuffle", "stratify"):
            raise ValueError(
                "`validation_split_mode` must be 'last', 'shuffle' or 'stratify'. "
                f"Received: validation_split_mode={validation_split_mode!r}"
            )
        x, engine = self._inputs(x)
        n = len(x)
        y = self._targets(y, n)
        w = self._weights_for(sample_weight, class_weight, y, n)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "`validation_data` must be a tuple (x_val, y_val) or "
                    "(x_val, y_val, sample_weight_val)."
                )
            xv, _ = self._inputs(validation_data[0], "validation_data[0]")
            yv = self._targets(validation_data[1], len(xv), "validation_data[1]")
            wv = self._weights_for(
                validation_data[2] if len(validation_data) == 3 else None,
                class_weight,
                yv,
                len(xv),
            )
            val = (xv, yv, wv)
        elif validation_split:
            (x, y, w), val = self._split(x, y, w, validation_split, validation_split_mode)
            n = len(x)
        val_batch = check_positive_int(
            "validation_batch_size", validation_batch_size, default=batch_size
        )
        self._set_metrics(y)
        steps = steps_per_epoch or -(-n // batch_size)
        # The data goes where the engine computes once per fit, not once per epoch.
        data = engine.dataset(x, y, w)
        val_data = None if val is None else engine.dataset(*val)

        history = callbacks_module.History()
        cbs = callbacks_module.CallbackList(
            [*(callbacks or []), history],  # last, as Keras': it sees what callbacks log
            self,
            {
                "epochs": epochs,
                "steps": steps,
                "verbose": verbose,
                "do_validation": val is not None,
            },
        )
        # Batch-level hooks cost one engine call per batch: only when a callback has them.
        batch_hooks = any(
            _overrides(cb, hook)
            for cb in cbs.callbacks
            for hook in ("on_train_batch_begin", "on_train_batch_end")
        )
        progress = Progress(verbose, epochs, steps)
        nan_stoppers = _nan_stoppers(cbs.callbacks)
        stream = RowStream(engine, n, bool(shuffle)) if steps_per_epoch else None
        last_seconds, order_seconds = None, 0.0
        self.stop_training = False
        logs = {}
        cbs.on_train_begin({})
        for epoch in range(int(initial_epoch), int(epochs)):
            cbs.on_epoch_begin(epoch, {})
            start = time.perf_counter()
            progress.epoch_begin(epoch)
            # Live bar: chunks of batches, unless the epoch is fast (the bar at its end
            # is enough) or drawing the row order in Python costs more than 5% of an epoch.
            live = (
                progress.live
                and steps > 1
                and (
                    last_seconds is None
                    or (
                        last_seconds >= 5 * progress.interval
                        and order_seconds <= 0.05 * last_seconds
                    )
                )
            )
            if stream is not None:
                idx = StreamRows(stream, steps * batch_size)
            elif (batch_hooks or live) and shuffle:
                t = time.perf_counter()
                idx = engine.permutation(n)
                order_seconds = time.perf_counter() - t
            else:
                idx = None
            if stream is None and not batch_hooks and not live:
                loss, values, _, done = engine.fit_epoch(
                    data, batch_size, bool(shuffle), stop_on_nonfinite=bool(nan_stoppers)
                )
                self._after_nonfinite(nan_stoppers, done, loss, values)
            else:
                loss, values, done = self._fit_rows(
                    data,
                    idx,
                    batch_size,
                    cbs if batch_hooks else None,
                    progress if (live or batch_hooks) else None,
                    nan_stoppers,
                )
            logs = {"loss": loss, **dict(zip(self._metric_names, values))}
            if val is not None and (epoch + 1) % validation_freq == 0:
                cbs.on_test_begin({})
                vloss, vvalues = engine.evaluate(val_data, val_batch)
                cbs.on_test_end({"loss": vloss, **dict(zip(self._metric_names, vvalues))})
                logs["val_loss"] = vloss
                logs.update({f"val_{k}": v for k, v in zip(self._metric_names, vvalues)})
            last_seconds = time.perf_counter() - start
            progress.epoch_end(epoch, done, last_seconds, logs)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        self.history = history
        return history

    def _after_nonfinite(self, nan_stoppers, done, loss, values):
        """After an engine call that `nan_stoppers` (TerminateOnNaN) stopped at a batch
        whose loss is not finite: their batch hook, as Keras calls it for that batch."""
        if nan_stoppers and not math.isfinite(loss):
            logs = {"loss": loss, **dict(zip(self._metric_names, values))}
            for cb in nan_stoppers:
                cb.on_train_batch_end(done - 1, logs)

    def _fit_rows(self, data, idx, batch_size, cbs=None, progress=None, nan_stoppers=()):
        """Trains on the rows `idx` of `data` (an engine dataset; all rows in order when
        idx is None), in that order.

        One engine call covers all of them, unless `cbs` (batch-level hooks: one call
        per batch) or `progress` (calls of about `progress.interval` seconds, to redraw
        the bar). Each call goes on from the loss and metric counts of the one before, so
        the values passed on are those of the epoch so far, as one call would give them.
        `nan_stoppers`: the engine stops at the first batch with a non-finite loss.
        Returns the epoch loss, the metric values and the batches done.
        """
        engine = self._engine
        rows = data.rows if idx is None else len(idx)
        steps = -(-rows // batch_size)
        done, start, states = 0, time.perf_counter(), None
        while done < steps:
            if cbs is not None or (progress is not None and done == 0):
                k = 1
            elif progress is None:
                k = steps
            else:
                per_batch = (time.perf_counter() - start) / done
                k = max(1, int(progress.interval / per_batch)) if per_batch > 0 else steps
            if isinstance(idx, StreamRows):
                k = min(k, max(1, idx.chunk // batch_size))
            lo, hi = done * batch_size, min(rows, (done + k) * batch_size)
            if cbs is not None:
                cbs.on_train_batch_begin(done, {})
            stop = bool(nan_stoppers)
            order = None if idx is None else idx[lo:hi]  # (None: rows lo..hi-1, no gather)
            loss, values, states, ran = engine.fit_rows(
                data, batch_size, order, lo, hi - lo, carry=states, stop_on_nonfinite=stop
            )
            done = min(done + ran, steps)
            logs = {"loss": loss, **dict(zip(self._metric_names, values))}
            if cbs is not None:
                cbs.on_train_batch_end(done - 1, logs)
            else:
                self._after_nonfinite(nan_stoppers, done, loss, values)
            if progress is not None:
                progress.update(done, logs)
            if self.stop_training and (cbs is not None or nan_stoppers):
                break
        return loss, values, done

    def _split(self, x, y, w, fraction, mode):
        """(x, y, w) of the training part and of the validation part."""
        n = len(x)
        n_train = int(n * (1.0 - fraction))
        if n_train <= 0 or n_train >= n:
            raise ValueError(
                f"validation_split={fraction} leaves an empty training "
                f"or validation set for {n} samples."
            )
        labels = self._class_labels(y)
        if mode == "stratify" and labels is None:
            raise ValueError(
                "validation_split_mode='stratify' needs class labels: integer labels, "
                "one-hot rows or binary 0/1 labels, one per sample. Received targets of "
                f"shape {y.shape}; use validation_split_mode='shuffle' for other targets."
            )
        if mode == "last":
            train, val = slice(0, n_train), slice(n_train, n)
        elif mode == "shuffle":
            order = utils.rng().permutation(n)
            train, val = np.sort(order[:n_train]), np.sort(order[n_train:])
        else:
            classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
            inverse = inverse.reshape(-1)
            # rows per class for validation: proportional, largest remainders (ties at
            # random) so that the total is n - n_train; every class keeps a training row
            ideal = counts * ((n - n_train) / n)
            take = np.floor(ideal).astype(np.int64)
            extra = (n - n_train) - int(take.sum())
            if extra > 0:
                rank = np.lexsort((utils.rng().random(len(classes)), -(ideal - take)))
                take[rank[:extra]] += 1
            take = np.clip(take, 0, counts - 1)
            order = utils.rng().permutation(n)
            order = order[np.argsort(inverse[order], kind="stable")]  # by class, random within
            first = np.concatenate(([0], np.cumsum(counts)[:-1]))
            position = np.arange(n) - first[inverse[order]]
            is_val = np.zeros(n, dtype=bool)
            is_val[order[position < take[inverse[order]]]] = True
            train, val = np.flatnonzero(~is_val), np.flatnonzero(is_val)
        if labels is not None and (
            self._loss.kind in _CLASS_LOSSES or (y.ndim == 2 and y.shape[1] > 1)
        ):
            missing = np.setdiff1d(np.unique(labels[val]), np.unique(labels[train]))
            if missing.size:
                shown = ", ".join(str(int(c)) for c in missing[:10])
                if missing.size > 10:
                    shown += f", ... ({missing.size} classes)"
                hint = (
                    " Keras' 'last' mode takes the last rows before any shuffling, so "
                    "data sorted by label puts whole classes there."
                    if mode == "last"
                    else ""
                )
                warnings.warn(
                    f"validation_split={fraction} (validation_split_mode={mode!r}) puts "
                    f"class(es) {shown} in the validation part only: the model never "
                    f"trains on them.{hint} Use validation_split_mode='stratify', or "
                    "shuffle the rows before fit.",
                    UserWarning,
                    stacklevel=3,
                )

        def part(rows):
            return x[rows], y[rows], None if w is None else w[rows]

        return part(train), part(val)

    def _class_labels(self, y):
        """One integer class per sample, or None when the targets are not class labels."""
        n = len(y)
        flat = y.reshape(n, -1)
        if flat.shape[1] == 1:
            v = flat[:, 0]
            if not np.array_equal(v, np.round(v)):
                return None
            if self._loss.kind == _core.Loss.hinge and np.isin(v, (-1.0, 1.0)).all():
                v = v > 0  # hinge's targets were mapped from {0, 1} to {-1, 1}
            return v.astype(np.int64)
        if y.ndim == 2 and np.isin(flat, (0.0, 1.0)).all() and (flat.sum(axis=1) == 1).all():
            return flat.argmax(axis=1)
        return None

    # ------------------------------------------------------- evaluate, predict
    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        return_dict=False,
        **kwargs,
    ):
        """Loss (and metrics) on the given data, in inference mode."""
        self._check_ready("evaluate")
        batch_size = check_positive_int("batch_size", batch_size, default=32)
        verbose = check_verbose(verbose, auto=0)
        x, engine = self._inputs(x)
        y = self._targets(y, len(x))
        w = self._weights_for(sample_weight, None, y, len(x))
        self._set_metrics(y)
        loss, values = engine.evaluate(engine.dataset(x, y, w), batch_size)
        logs = {"loss": loss, **dict(zip(self._metric_names, values))}
        if verbose not in (0, "auto") and verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return loss if not self._metric_names else [loss, *values]

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        """Outputs of the model for `x`, computed in batches of `batch_size` (default 32)."""
        batch_size = 32 if batch_size is None else check_positive_int("batch_size", batch_size)
        # (the common cases cost nothing: predict on one sample is fast)
        if not (type(verbose) is int and 0 <= verbose <= 2) and verbose != "auto":
            check_verbose(verbose, auto=0)
        x, engine = self._inputs(x)
        return engine.predict(x, batch_size)

    def __call__(self, x, training=None):
        """On arrays: the model's outputs (inference). On symbolic tensors (the functional
        API): the model's layers called in turn, as Keras calls a model inside another; the
        outer model trains the same layers (their weights are shared)."""
        if is_symbolic(x):
            return self._call_symbolic(x, training)
        if training:
            raise ValueError(
                f"Model {self.name!r}: calling a model with training=True is not supported; "
                "use fit or train_on_batch."
            )
        return self.predict(x, verbose=0)

    def _call_symbolic(self, x, training=None):
        if training is False:
            moving = [
                la.name
                for la in self._layers
                if type(la).__name__ == "Dropout"
                or getattr(la, "dropout", 0)
                or getattr(la, "recurrent_dropout", 0)
                or (type(la).__name__ == "BatchNormalization" and la.trainable)
            ]
            if moving:
                raise ValueError(
                    f"Model {self.name!r} called with training=False: its layers {moving} "
                    "would act as in training when the outer model trains (deepcore runs a "
                    "whole model in one mode). Freeze them (trainable=False: "
                    "BatchNormalization then uses its moving statistics) or call without "
                    "training=False."
                )
        return self._replay(x)

    def _replay(self, x):
        """The model's layers called on symbolic tensors x (in a line)."""
        if isinstance(x, (list, tuple)):
            if len(x) != 1:
                raise ValueError(f"Model {self.name!r} takes one input, received {len(x)}.")
            x = x[0]
        if self._input_shape is not None and tuple(x.shape[1:]) != tuple(self._input_shape):
            raise ValueError(
                f"Model {self.name!r} expects inputs of shape {(None, *self._input_shape)}, "
                f"received {x.shape}."
            )
        for layer in self._layers:
            x = layer(x)
        return x

    def predict_on_batch(self, x):
        x, engine = self._inputs(x)
        return engine.predict(x, len(x))

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics)."""
        self._check_ready("train_on_batch")
        x, engine = self._inputs(x)
        y = self._targets(y, len(x))
        w = self._weights_for(sample_weight, class_weight, y, len(x))
        self._set_metrics(y)
        loss, values, _, _ = engine.fit_epoch(engine.dataset(x, y, w), len(x), False)
        logs = {"loss": loss, **dict(zip(self._metric_names, values))}
        if return_dict:
            return logs
        return loss if not self._metric_names else [loss, *values]

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> list[np.ndarray]:
        return [v.copy() for vs in self._own_weights("get_weights") for v in vs]

    def set_weights(self, weights) -> None:
        own = self._own_weights("set_weights")
        weights = list(weights)
        expected = sum(len(vs) for vs in own)
        if len(weights) != expected:
            raise ValueError(
                f"Model {self.name!r} expects {expected} weight arrays, received {len(weights)}."
            )
        checked, i = [], 0
        for layer, vs in zip(self._layers, own):  # check all first: all are set, or none
            checked.append(layer.check_weights(weights[i : i + len(vs)], vs))
            i += len(vs)
        for vs, ws in zip(own, checked):
            for v, w in zip(vs, ws):
                v[...] = w

    @property
    def weights(self):
        """Live views of all weights, trainable or not (Keras' `weights`)."""
        return [v for vs in self._own_weights("weights") for v in vs]

    def _weights_by(self, trained: bool, what: str) -> list[np.ndarray]:
        """The weights the optimizer updates (trained) or the others (Keras' trainable and
        non_trainable weights), by the layers' `trainable` flags as they are now."""
        out = []
        for layer, vs, ts in zip(self._layers, self._own_weights(what), self._layer_trained):
            on = self.trainable and layer.trainable
            out += [v for v, t in zip(vs, ts) if (on and t) == trained]
        return out

    @property
    def trainable_weights(self):
        """Live views of the weights the optimizer updates: not moving statistics, and
        none of a frozen layer (trainable=False)."""
        return self._weights_by(True, "trainable_weights")

    @property
    def non_trainable_weights(self):
        """Live views of the other weights: moving statistics and frozen layers' weights."""
        return self._weights_by(False, "non_trainable_weights")

    def _inner_layers(self):
        return list(getattr(self, "_layers", ()))

    def count_params(self) -> int:
        """All weights, trainable and not (e.g. BatchNormalization's moving statistics)."""
        return sum(v.size for vs in self._own_weights("count_params") for v in vs)

    def get_layer(self, name=None, index=None) -> Layer:
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name!r}. Existing layers: {[l.name for l in self._layers]}"
        )

    def gradients(self, x, y, sample_weight=None):
        """Loss of one batch and the gradient of every trainable weight (Keras shapes), no
        update."""
        self._check_ready("gradients")
        x, engine = self._inputs(x)
        y = self._targets(y, len(x))
        w = self._weights_for(sample_weight, None, y, len(x))
        loss, flat = engine.gradients(x, y, w)
        return loss, [view for _, view, _ in _param_views(engine, flat)]

    # ------------------------------------------------------------------ summary
    def _connections(self):
        """What each layer reads, for summary's "Connected to" column (None: a line)."""
        return None

    def summary(self, print_fn=None) -> None:
        """Prints each layer's output shape and parameter count (and, for a graph, what it
        reads), and the totals."""
        engine = self._require_engine("summary")
        heads = ("Layer (type)", "Output Shape", "Param #")
        rows = [
            (
                f"{l.name} ({type(l).__name__})",
                str((None, *engine.output_shape(i))),
                f"{sum(v.size for v in self._layer_views[i]):,}",
            )
            for i, l in enumerate(self._layers)
        ]
        connections = self._connections()
        if connections is not None:
            heads += ("Connected to",)
            rows = [r + (c,) for r, c in zip(rows, connections)]
        widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(heads)]
        line = "-" * (sum(widths) + 3 * (len(heads) - 1))

        def fmt(r):
            cells = [f"{r[0]:<{widths[0]}}", f"{r[1]:<{widths[1]}}", f"{r[2]:>{widths[2]}}"]
            return "   ".join(cells + [f"{c:<{w}}" for c, w in zip(r[3:], widths[3:])]).rstrip()

        total, trainable = self.count_params(), sum(v.size for v in self.trainable_weights)
        text = (
            [
                f'Model: "{self.name}"',
                line,
                fmt(heads),
                line.replace("-", "="),
            ]
            + [fmt(r) for r in rows]
            + [
                line,
                f"Total params: {total:,}",
                f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}",
                line,
            ]
        )
        (print_fn or print)("\n".join(text))

    # ------------------------------------------------------------------- saving
    def get_config(self) -> dict:
        """The architecture: name, trainable, input shape (None until known) and each
        layer's `{"class_name", "config"}`. `Sequential.from_config` rebuilds the model
        from it, with new weights."""
        from .. import saving

        return saving.model_config(self)["config"]

    @classmethod
    def from_config(cls, config: dict) -> Model:
        """A new model (fresh weights, not compiled) with the architecture of `get_config()`."""
        from .. import saving

        return saving.model_from_config(config)

    def save(self, filepath, overwrite=True) -> None:
        """Saves the whole model to one file: architecture, weights, compile config and the
        training state needed to resume exactly (`deepcore.models.load_model` reads it).
        The format is documented in `deepcore.saving`; the write is atomic."""
        from .. import saving

        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True) -> None:
        """Saves the weights (with the architecture, to validate `load_weights`)."""
        from .. import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath) -> None:
        """Loads weights written by `save_weights` or `save`; the architecture must match."""
        from .. import saving

        saving.load_weights(self, filepath)
