"""Saving and loading models: `model.save(path)`, `deepcore.models.load_model(path)`,
`model.save_weights(path)`, `model.load_weights(path)`.

The file format is described in `deepcore.saving.file_format`.

Reading: a file is checked whole before anything is built
---------------------------------------------------------

A file is input like any other: whatever its bytes, `load_model`, `load_weights` and
`read_file` raise ``ValueError("Cannot load '<path>': <problem>.")`` naming the entry and the
value at fault (OSError only when the path cannot be opened or read), take time linear in the
file's size, and allocate no more than a small multiple of it: a model's weights are
allocated only once the file has been checked against them. The file is read once, from one
open handle; only regular files are read (a device or a pipe is refused). Readers check, in
this order:

1. The container (`read_file`): the length field (at most the file's size and at most
   ``MAX_HEADER_BYTES``, checked before the rest is read), the header as UTF-8 JSON, the
   ``format``, the ``format_version``, the checksum, then each tensor entry: dtype F32, at
   most ``MAX_DIMS`` dimensions each an int in [0, 2**31), offsets matching the shape, the
   tensors contiguous and covering the data. Every JSON text (the header and the metadata
   values) is refused when it holds NaN, Infinity or a number out of the float range (such
   as 1e999), an integer of more than 20 digits, a key twice in one object, or nesting deeper
   than ``MAX_JSON_DEPTH`` levels; metadata values must be strings.
2. The architecture: a Sequential of known layer classes with a known input shape (ints in
   [1, 2**31)); each layer is constructed from its config (its arguments checked as a
   user's would be), then the engine plans its weights' shapes *without allocating them*
   (`_core.Model.plan`, which refuses any tensor over 2**31 - 1 values). The file's tensors
   must be exactly those weights (``layers.{i}.{name}`` for each of `weight_names()`, same
   shapes) plus ``optimizer.slots`` when the model was compiled with a loss, nothing else.
3. The values. Weights, moving statistics and optimizer slots must be finite, and
   BatchNormalization's ``moving_variance`` and the slots that accumulate squared gradients
   (Adam's and AdamW's v, RMSprop's mean square, Adagrad's accumulator) must be >= 0.
   ``optimizer.slots`` must have the size the optimizer needs (slots x trainable values).
   ``training``: ``iterations`` an int in [0, 2**53), ``learning_rate`` a number > 0 that
   float32 can hold (at most about 3.4e38; the engine steps in float32), ``seed`` and
   ``draws`` ints in [0, 2**64). The optimizer, loss and metrics are constructed from their
   configs (their arguments checked as a user's would be; a fixed learning rate as above),
   and regularizer factors must be finite and >= 0.

Only then is the model built and its weights set, optimizer state included.

Non-finite weights: a file whose weights (or optimizer state) hold NaN or infinity is refused
as corrupt, naming the tensor. Keras would load it; deepcore refuses non-finite weights
everywhere (`set_weights` too), since such a model predicts nothing useful and resuming from
it cannot recover. `save` still writes the weights a diverged model has (so a checkpoint
shows what happened: `read_file` reads it), but such a file does not load.

`load_weights` checks the file the same way (its own architecture against its tensors, then
the model's weights against them) and sets all the weights or none: a failed load leaves the
model as it was (an unbuilt model stays unbuilt).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import _registry, losses, metrics, optimizers, utils
from ..layers.core import Input
from . import keras_format
from .file_checks import (
    _LAYERS,  # noqa: F401 (the layers by class name: keras_format, TimeDistributed)
    _check_file,
    _check_layer_tensors,
    _Checked,
    _layers_from_config,
    _outputs_of,
    _plan,
    _where,
)
from .file_format import (
    FORMAT,
    FORMAT_VERSION,
    _fspath,
    _refusing,
    _short,
    open_regular,
    read_file,
    write_file,
)

if TYPE_CHECKING:
    from ..models.model import Model

__all__ = ["load_model", "save_model", "save_weights", "load_weights", "write_file", "read_file"]


# ----------------------------------------------------------------------------- model level
def model_config(model) -> dict:
    """The architecture of a Sequential or functional model, as stored under "model" in the
    metadata: a functional model's adds its "wiring" (what each layer reads: -1 the input,
    j layer j's output), and "outputs" where they are not the last layer's: their layers,
    names, and whether the model returns them as a dict."""
    config = {
        "name": model.name,
        "trainable": model.trainable,
        "input_shape": None if model._input_shape is None else list(model._input_shape),
        "layers": [_registry.serialize(layer) for layer in model._layers],
    }
    wiring = getattr(model, "_wiring", None)
    if wiring is not None:
        config["wiring"] = [list(w) for w in wiring]
        if any(s >= 0 for s in model._source):  # a layer called again uses an earlier's
            config["shared"] = list(model._source)
        config["input_shapes"] = [list(s) for s in model._input_shapes]
        config["input_names"] = list(model._input_names)
        if model._outputs != [len(model._layers) - 1] or model._dict_outputs:
            config["outputs"] = {
                "layers": list(model._outputs),
                "names": list(model._out_names),
                "as_dict": model._dict_outputs,
            }
    return {"class_name": "Functional" if wiring is not None else "Sequential", "config": config}


def compile_config(model) -> dict:
    """The arguments of `model.compile`, as stored under "compile" in the metadata: for a
    model of several outputs, the loss, loss_weights, metrics and weighted_metrics as lists
    with an entry per output (a metrics entry a list)."""
    from ..trainers.compile_utils import per_output

    out = model._out
    if model.built:
        model._programs(guess=True)  # the custom losses' and metrics' programs, to save
    given = per_output(model._compile_args[0], out.names, "loss", one_for_all=True)
    loss = [
        None if fn is None else g if isinstance(g, str) else losses.serialize(fn)
        for fn, g in zip(out.losses, given)
    ]
    chosen = [
        [
            [metrics.serialize(m) for m, w, k, _ in out.metrics if w == weighted and k == j]
            for j in range(len(out.names))
        ]
        for weighted in (False, True)
    ]
    one = len(out.names) == 1
    config = {
        "optimizer": optimizers.serialize(model.optimizer),
        "loss": loss[0] if one else loss,
        "metrics": chosen[0][0] if one else chosen[0],
    }
    if any(chosen[1]):
        config["weighted_metrics"] = chosen[1][0] if one else chosen[1]
    if any(w != 1.0 for w in out.weights):
        config["loss_weights"] = out.weights[0] if one else out.weights
    return config


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _weights(model) -> dict:
    own = model._own_weights("save")
    return {
        f"layers.{i}.{name}": w
        for i, (layer, views) in enumerate(zip(model._layers, own))
        for name, w in zip(layer.weight_names(), views)
    }


def engine_state(model) -> tuple[dict, dict]:
    """What a model file holds of the model's engine: (tensors: the weights and the
    optimizer's slots; training: its iterations, learning rate and random stream)."""
    engine = model._require_engine("save")
    tensors = _weights(model)
    if model.compiled and model._out.trained:
        tensors["optimizer.slots"] = engine.optimizer_state()
    training = {
        "iterations": int(engine.iterations),
        "learning_rate": float(engine.learning_rate),
        "seed": int(engine.seed),
        "draws": int(engine.draws),
    }
    return tensors, training


def set_engine_state(model, tensors: dict, training: dict | None) -> None:
    """Sets a built (and compiled, if it was) model's engine from `engine_state`'s (checked)
    values: training goes on exactly as it would have in the model they came from."""
    _assign_weights(model, tensors, [_where(i, la) for i, la in enumerate(model._layers)])
    if training is not None:
        engine = model._engine
        if model._out is not None and model._out.trained:
            engine.set_optimizer_state(tensors["optimizer.slots"])
            engine.iterations = training["iterations"]
            if getattr(model.optimizer, "schedule", None) is None:
                model.optimizer.learning_rate = training["learning_rate"]
        engine.seed, engine.draws = training["seed"], training["draws"]


def save_model(model, path, overwrite: bool = True) -> None:
    """Saves architecture, weights, compile config and training state (see the module doc);
    a path ending in ".keras": a Keras 3 archive (keras_format.py; no optimizer state)."""
    if str(_fspath(path)).endswith(".keras"):
        return keras_format.save_keras(model, path, overwrite)
    tensors, training = engine_state(model)
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "contents": "model"}
    meta["model"] = _dumps(model_config(model))
    if model.compiled:
        meta["compile"] = _dumps(compile_config(model))
    meta["training"] = _dumps(training)
    write_file(path, tensors, meta, overwrite)


def save_weights(model, path, overwrite: bool = True) -> None:
    """Saves the weights (and the architecture, to validate `load_weights`); a path ending
    in ".weights.h5": Keras 3's weights file."""
    if str(_fspath(path)).endswith(".weights.h5"):
        return keras_format.save_keras_weights(model, path, overwrite)
    model._require_engine("save_weights")
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "contents": "weights"}
    meta["model"] = _dumps(model_config(model))
    write_file(path, _weights(model), meta, overwrite)


def load_model(
    path: str | os.PathLike[str],
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
    safe_mode: bool = True,
) -> Model:
    """Rebuilds a model saved by `model.save`: architecture, weights, compile config and
    training state (training continues exactly as it would have without saving). The whole
    file is checked before the model is built (see the module doc): ValueError if invalid.
    A Keras 3 file (.keras archive) is read by keras_format.py.

    Args (Keras 3's): custom_objects: {name: function, object or class} for the losses
    and metrics a file names that deepcore does not have (a Keras file's functions, a
    Metric subclass of yours by its class name); compile: False leaves the model
    uncompiled (no optimizer state); safe_mode: accepted for Keras' signature (deepcore never
    runs code from a file, whatever its value)."""
    path = _fspath(path)
    if _kind_of_file(path) == "keras":
        return keras_format.load_keras(path, compile=compile, custom_objects=custom_objects)
    tensors, meta = read_file(path)
    with _refusing(f"Cannot load {path!r}"):
        checked = _check_file(tensors, meta, custom_objects)
        return _restore(checked, compile)


def load_weights(model, path) -> None:
    """Loads weights saved by `save_weights` or `save` into `model` (same architecture): all
    of them, or none (ValueError) when the file is invalid or does not fit the model."""
    path = _fspath(path)
    if _kind_of_file(path) == "keras":
        return keras_format.load_keras_weights(model, path)
    tensors, meta = read_file(path)
    with _refusing(f"Cannot load weights from {path!r} into model {model.name!r}"):
        checked = _check_file(tensors, meta)
        saved = checked.architecture["config"]["layers"]
        if len(saved) != len(model._layers):
            raise ValueError(
                f"the file holds {len(saved)} layers "
                f"{_short([s['config'].get('name') for s in saved])} but the model has "
                f"{len(model._layers)} {_short([l.name for l in model._layers])}"
            )
        input_shape = model._input_shape
        if input_shape is None:  # an unbuilt model takes the saved input shape
            input_shape = checked.input_shape
        where = [
            f"layer {layer.name!r} ({type(layer).__name__}, index {i}, "
            f"{_short(s['config'].get('name'))} in the file)"
            for i, (layer, s) in enumerate(zip(model._layers, saved))
        ]
        wiring = getattr(model, "_wiring", None)
        shapes = getattr(model, "_input_shapes", None)
        if (wiring or None) != (checked.wiring or None) and not (
            _is_line(wiring) and _is_line(checked.wiring)
        ):
            raise ValueError(
                f"the file's layers are connected as {_short(checked.wiring)}, the model's as "
                f"{_short(wiring)}"
            )
        if (
            shapes is not None
            and checked.input_shapes is not None
            and shapes != checked.input_shapes
        ):
            raise ValueError(
                f"the file's inputs have shapes {checked.input_shapes}, the model's {shapes}"
            )
        outputs = model._output_layers() if wiring is not None else None
        planned = _plan(model._layers, input_shape, where, wiring, shapes, outputs)
        _check_layer_tensors(model._layers, planned, tensors, where)
        if model._engine is None:
            before, model._input_shape = model._input_shape, input_shape
            try:
                model._require_engine("load_weights")
            except BaseException:  # the model stays unbuilt
                model._input_shape, model._engine = before, None
                raise
        _assign_weights(model, tensors, where)


def _kind_of_file(path: str) -> str:
    """'keras' for a Keras 3 file (a zip archive, or HDF5), else 'deepcore', whose reader
    says what is wrong with anything else (a pipe is not waited on)."""
    try:
        with open_regular(path) as f:
            head = f.read(8) if f is not None else b""
    except OSError:
        return "deepcore"
    return "keras" if head[:4] == b"PK\x03\x04" or head == b"\x89HDF\r\n\x1a\n" else "deepcore"


def _is_line(wiring) -> bool:
    """Whether a wiring (None: Sequential's) has each layer read the one before it."""
    return wiring is None or all(w == [i - 1] for i, w in enumerate(wiring))


def model_from_config(config: dict):
    """A new model (fresh weights) from the "config" part of `model_config`."""
    from ..models.functional import Functional
    from ..models.sequential import Sequential

    layers = _layers_from_config(config)
    if config.get("wiring") is not None:
        return Functional._from_parts(
            layers,
            config["input_shapes"],
            config["wiring"],
            name=config.get("name"),
            trainable=config.get("trainable", True),
            names=config.get("input_names"),
            outputs=_outputs_of(config.get("outputs")),
        )
    shape = config.get("input_shape")
    return Sequential(
        ([Input(shape=shape)] if shape is not None else []) + layers,
        name=config.get("name"),
        trainable=config.get("trainable", True),
    )


@contextlib.contextmanager
def same_random_stream() -> Iterator[None]:
    """Building a model draws initial weights: the global random stream is left as it was,
    so that loading a model has no effect on later draws."""
    state = utils.rng().bit_generator.state
    try:
        yield
    finally:
        utils.rng().bit_generator.state = state


def _restore(checked: _Checked, compile: bool = True):
    """The model of a checked file: built, its weights and training state set."""
    from ..models.functional import Functional
    from ..models.sequential import Sequential

    config = checked.config
    name, trainable = config.get("name"), config.get("trainable", True)
    with same_random_stream():
        if checked.wiring is not None:
            model = Functional._from_parts(
                checked.layers,
                checked.input_shapes,
                checked.wiring,
                name,
                trainable,
                config.get("input_names"),
                _outputs_of(config.get("outputs")),
            )
        else:
            model = Sequential(name=name, trainable=trainable)
            # The layers are new objects, none twice: set them at once (Sequential.add checks
            # each against all the others, quadratic in a file's hundred thousand layers).
            model._layers, model._input_shape = list(checked.layers), checked.input_shape
            model.build()
    if checked.compile is not None and compile:
        optimizer, loss, chosen, weight = checked.compile
        model.compile(
            optimizer=optimizer,
            loss=loss,
            loss_weights=weight,
            metrics=chosen["metrics"],
            weighted_metrics=chosen["weighted_metrics"],
        )
    set_engine_state(model, checked.tensors, checked.training)
    return model


def _assign_weights(model, tensors: dict, where: list) -> None:
    """Sets every layer's weights from the (checked) file: all, or none."""
    own = model._own_weights("load")
    assign_all(
        (layer, views, [tensors[f"layers.{i}.{n}"] for n in layer.weight_names()], where[i])
        for i, (layer, views) in enumerate(zip(model._layers, own))
        if not model._shares(i)
    )


def assign_all(entries) -> None:
    """Sets layers' weights: `entries` of (layer, its weights' views, the arrays, where
    they come from, for errors), every one checked (`check_weights`) before any is set."""
    updates = []
    for layer, views, arrays, where in entries:
        try:
            updates.append((views, layer.check_weights(arrays, views)))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    for views, arrays in updates:
        for v, a in zip(views, arrays):
            v[...] = a
