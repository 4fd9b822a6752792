"""The base of every model: its layers, its engine and its weights (the training loop is
trainers/trainer.py's, the data handling trainers/data_adapters.py's)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike

from .. import config, utils
from .._registry import Trainable
from ..layers.core import EagerArray, Layer, _shape_arg
from ..layers.symbolic import SymbolicTensor, is_symbolic
from ..trainers.data_adapters import ArrayData
from ..trainers.trainer import Trainer
from .engines import (
    _HostMirror,
    _param_views,
    check_augmentation_first,
    engine_with,
    layer_named,
)

__all__ = ["Model"]


def _eager(out):
    """Outputs as EagerArrays (answering `.numpy()`), in their list or dict."""
    if isinstance(out, dict):
        return {k: _eager(v) for k, v in out.items()}
    if isinstance(out, list):
        return [_eager(v) for v in out]
    return np.asarray(out).view(EagerArray)


class Model(Trainer, ArrayData):
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

    @overload
    def __init__(self, name: str | None = None, trainable: bool = True) -> None: ...
    @overload
    def __init__(
        self,
        inputs: SymbolicTensor | Sequence[SymbolicTensor] | Mapping[str, SymbolicTensor],
        outputs: SymbolicTensor | Sequence[SymbolicTensor] | Mapping[str, SymbolicTensor],
        name: str | None = None,
        trainable: bool = True,
    ) -> None: ...
    # (the second form: `Model(inputs, outputs)` is a Functional, made by __new__ and set up
    # by Functional.__init__)
    def __init__(self, name: str | None = None, trainable: bool = True) -> None:  # type: ignore[misc]
        self.name = name or "model"
        self.trainable = trainable
        self._layers: list[Layer] = []
        self._input_shape: tuple | None = None
        self._engine = None
        self._layer_views: list[list[np.ndarray]] = []  # each layer's weights in the engine
        self._layer_trained: list[list[bool]] = []  # whether each is trained (not a statistic)
        self._frozen: list[bool] = []  # each layer frozen, as the last compile found it
        self.optimizer: Any = None  # (an Optimizer once compiled)
        self.loss = None
        self._compile_args: Any = None  # compile's loss, loss_weights, metrics, weighted_metrics
        self._out = None  # they per output (trainers/compile_utils.py)
        self._label_shapes: list[tuple] = []  # each output's labels as _targets converted them
        self.compiled = False
        self.stop_training = False
        self.history: Any = None  # (the last fit's History)

    # Caches of engine objects, made again when needed
    _UNPICKLED = ("_program_specs", "_programs_set")

    def __getstate__(self) -> dict:
        """pickle and copy.deepcopy (so joblib, multiprocessing and scikit-learn's clone):
        the model's Python state, and of its engine what its file holds (weights, optimizer
        slots, iterations, learning rate, random stream). The copy is of the same class,
        built on the current device, and trains on exactly as the original would."""
        state = {k: v for k, v in self.__dict__.items() if k not in self._UNPICKLED}
        if self._out is not None:  # (compile's functions as their traced wrappers)
            from ..trainers.compile_utils import wrapped_functions

            state["loss"] = wrapped_functions(self.loss, self._out)
            state["_compile_args"] = wrapped_functions(self._compile_args, self._out)
        if self._engine is not None:
            from .. import saving

            state["_engine_state"] = saving.engine_state(self)
            state["_engine"], state["_layer_views"] = None, []
        return state

    def __setstate__(self, state: dict) -> None:
        from .. import saving

        saved = state.pop("_engine_state", None)
        self.__dict__.update(state)
        if saved is not None:
            tensors, training = saved
            with saving.same_random_stream():
                self._build(seed=training["seed"])
            saving.set_engine_state(self, tensors, training)

    def _shares(self, i: int) -> bool:
        """Whether layer i is a second call of an earlier layer (its weights are that one's)."""
        return False

    def _weights_by_layer(self, what: str) -> dict:
        """Each layer's weights in the engine (`_own_weights`), by id(layer): a layer called
        several times once, with its first call's."""
        own = self._own_weights(what)
        return {id(la): own[i] for i, la in enumerate(self._layers) if not self._shares(i)}

    def _wire(self, engine) -> None:
        """Points each layer of the new engine at the values it reads (set_inputs): by
        default each reads the one before it, which the engine does by itself."""

    def _output_layers(self) -> list[int]:
        """The layers whose outputs are the model's, in order (by default the last one)."""
        return [len(self._layers) - 1]

    def _output_names(self) -> list[str]:
        """The outputs' names (compile's dicts and the logs use them): the layers'."""
        return [self._layers[i].name if self._layers else "output" for i in self._output_layers()]

    def _named_outputs(self) -> bool:
        """Whether the logs name each output's loss and metrics after it (see
        trainers/compile_utils.py): not for a subclassed model's, as in Keras."""
        return True

    def _output_shapes(self) -> list[tuple]:
        """Each output's shape, without the batch axis."""
        engine = self._require_engine("output_shape")
        return [tuple(engine.output_shape(i)) for i in self._output_layers()]

    def _split_outputs(self, flat):
        """predict's engine result (a model of several outputs: a row holds them all) as
        the model returns it: an array, or one per output in a list (Keras')."""
        if len(self._output_layers()) == 1:
            return flat
        shapes = self._output_shapes()
        out, at = [], 0
        for shape in shapes:
            size = math.prod(shape)
            out.append(np.ascontiguousarray(flat[:, at : at + size]).reshape(len(flat), *shape))
            at += size
        return out

    # ------------------------------------------------------------- structure
    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    @property
    def built(self) -> bool:
        return self._engine is not None

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Creates the engine and the weights. `input_shape` includes the batch axis."""
        if input_shape is not None:
            try:
                shape = tuple(input_shape)[1:]
            except TypeError:
                shape = input_shape  # type: ignore[assignment]  # _shape_arg names it
            self._input_shape = _shape_arg(shape, "input_shape", f"Model {self.name!r}")
        self._build()

    def _new_engine(self, device: int | None = None):
        """An engine (on `device`, the engine's number of a device; by default the one of
        `deepcore.config.set_device`) holding the layers, built for the input shape (its
        weights zero) and with their regularizers; seen through a _HostMirror when the
        host cannot read its memory."""
        device = config.device_index() if device is None else device
        if any(getattr(la, "_program", True) is None for la in self._layers):
            from ..layers.core import Input

            Model._replay(self, Input(shape=self._input_shape))  # traces the Lambda layers
        engine = engine_with(
            self._layers,
            device,
            warn=True,
            wiring=getattr(self, "_wiring", None),
            outputs=self._output_layers(),
        )
        self._wire(engine)
        assert self._input_shape is not None  # (_build checked it)
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
        views: list[list[np.ndarray]] = [[] for _ in self._layers]
        trained: list[list[bool]] = [[] for _ in self._layers]
        for li, view, trainable in _param_views(engine, engine.weights(), engine.states()):
            views[li].append(view)
            trained[li].append(trainable)
        self._layer_views, self._layer_trained = views, trained
        check_augmentation_first(self._layers, getattr(self, "_wiring", None), trained)
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
    def input_shape(self) -> tuple[int | None, ...] | list[tuple[int | None, ...]] | None:
        return None if self._input_shape is None else (None, *self._input_shape)

    @property
    def output_shape(self) -> tuple[int | None, ...] | list[tuple[int | None, ...]]:
        shapes = [(None, *s) for s in self._output_shapes()]
        return shapes[0] if len(shapes) == 1 else shapes

    # --------------------------------------------------------------------- fit
    def __call__(self, x, training=None):
        """On arrays: the model's outputs, in inference; with `training=True` as in training
        (Dropout drops, augmentation layers transform, BatchNormalization uses and updates
        the batch's statistics), the whole batch as one step; by default in training when
        the model has augmentation layers and none whose Keras default is inference
        (Dropout, BatchNormalization: deepcore runs a model in one mode). On symbolic
        tensors (the functional API): the model's layers called in turn, as Keras calls a
        model inside another; the outer model trains the same layers (their weights are
        shared)."""
        if is_symbolic(x):
            return self._call_symbolic(x, training)
        if training is None:  # each layer's Keras default, when they agree
            defaults = {la._training_default() for la in self._layers}
            training = True in defaults and False not in defaults
        out = self._predict_training(x) if training else self.predict(x, verbose=0)
        return _eager(out)

    def _call_symbolic(self, x, training=None):
        if training is False:
            moving = [la.name for la in self._layers if la._training_default() is not None]
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

    # ------------------------------------------------------------------ weights
    def _weight_order(self) -> list[int]:
        """The order of the layers in the weight lists (Keras': the model's layer order)."""
        return list(range(len(self._layers)))

    def _by_layer(self, what: str):
        """(layer, its weights, whether each is trained) in the weight lists' order."""
        own = self._own_weights(what)
        return [(self._layers[i], own[i], self._layer_trained[i]) for i in self._weight_order()]

    def get_weights(self) -> list[np.ndarray]:
        return [v.copy() for _, vs, _ in self._by_layer("get_weights") for v in vs]

    def set_weights(self, weights: Iterable[ArrayLike]) -> None:
        by_layer = self._by_layer("set_weights")
        weights = list(weights)
        expected = sum(len(vs) for _, vs, _ in by_layer)
        if len(weights) != expected:
            raise ValueError(
                f"Model {self.name!r} expects {expected} weight arrays, received {len(weights)}."
            )
        checked, i = [], 0
        for layer, vs, _ in by_layer:  # check all first: all are set, or none
            checked.append(layer.check_weights(weights[i : i + len(vs)], vs))
            i += len(vs)
        for (_, vs, _), ws in zip(by_layer, checked):
            for v, w in zip(vs, ws):
                v[...] = w

    @property
    def weights(self) -> list[np.ndarray]:
        """Live views of all weights, trainable or not (Keras' `weights`)."""
        return [v for _, vs, _ in self._by_layer("weights") for v in vs]

    def _weights_by(self, trained: bool, what: str) -> list[np.ndarray]:
        """The weights the optimizer updates (trained) or the others (Keras' trainable and
        non_trainable weights), by the layers' `trainable` flags as they are now."""
        out = []
        for layer, vs, ts in self._by_layer(what):
            on = self.trainable and layer.trainable
            out += [v for v, t in zip(vs, ts) if (on and t) == trained]
        return out

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """Live views of the weights the optimizer updates: not moving statistics, and
        none of a frozen layer (trainable=False)."""
        return self._weights_by(True, "trainable_weights")

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """Live views of the other weights: moving statistics and frozen layers' weights."""
        return self._weights_by(False, "non_trainable_weights")

    def _inner_layers(self):
        return list(getattr(self, "_layers", ()))

    def count_params(self) -> int:
        """All weights, trainable and not (e.g. BatchNormalization's moving statistics)."""
        return sum(v.size for vs in self._own_weights("count_params") for v in vs)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name!r}. Existing layers: {[l.name for l in self._layers]}"
        )

    # ------------------------------------------------------------------ summary
    def _connections(self):
        """What each layer reads, for summary's "Connected to" column (None: a line)."""
        return None

    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Prints each layer's output shape and parameter count (and, for a graph, what it
        reads: each call's inputs for a layer called several times), and the totals."""
        engine = self._require_engine("summary")
        heads: tuple[str, ...] = ("Layer (type)", "Output Shape", "Param #")
        first: dict[int, int] = {}  # a layer called several times: one row, at its first call
        for i, layer in enumerate(self._layers):
            first.setdefault(id(layer), i)
        once = [i for i, layer in enumerate(self._layers) if first[id(layer)] == i]
        rows: list[tuple[str, ...]] = [
            (
                f"{self._layers[i].name} ({type(self._layers[i]).__name__})",
                str((None, *engine.output_shape(i))),
                f"{sum(v.size for v in self._layer_views[i]):,}",
            )
            for i in once
        ]
        connections = self._connections()
        if connections is not None:
            heads += ("Connected to",)
            calls: dict[int, list[str]] = {i: [] for i in once}
            for j, layer in enumerate(self._layers):
                calls[first[id(layer)]].append(connections[j])
            rows = [r + ("; ".join(calls[i]),) for r, i in zip(rows, once)]
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

    def save(self, filepath: str | os.PathLike[str], overwrite: bool = True) -> None:
        """Saves the whole model to one file: architecture, weights, compile config and the
        training state needed to resume exactly (`deepcore.models.load_model` reads it).
        The format is documented in `deepcore.saving`; the write is atomic."""
        from .. import saving

        saving.save_model(self, filepath, overwrite=overwrite)

    def export(
        self,
        filepath: str | os.PathLike[str],
        format: str = "tf_saved_model",
        verbose: bool = True,
        **kwargs: Any,
    ) -> None:
        """Keras 3's export: `format="onnx"` writes the inference graph as an ONNX file
        (deepcore.export.onnx lists the layers that export); Keras' other formats
        (TensorFlow's SavedModel, OpenVINO, LiteRT) are TensorFlow's and are refused."""
        if format != "onnx":
            raise ValueError(
                f"Model {self.name!r}: deepcore exports format='onnx' only (Keras' "
                f"{format!r} is TensorFlow's or another runtime's). Received: format={format!r}"
            )
        from ..export import export_onnx

        export_onnx(self, filepath, **kwargs)
        if verbose:
            print(f"Saved artifact at {str(filepath)!r} (ONNX, opset {kwargs.get('opset', 17)}).")

    def save_weights(self, filepath: str | os.PathLike[str], overwrite: bool = True) -> None:
        """Saves the weights (with the architecture, to validate `load_weights`)."""
        from .. import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str | os.PathLike[str]) -> None:
        """Loads weights written by `save_weights` or `save`; the architecture must match."""
        from .. import saving

        saving.load_weights(self, filepath)
