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
import math
import os
import re
import stat

import numpy as np

from .. import _core, _registry, losses, metrics, optimizers, utils
from .. import layers as layers_module
from ..layers.core import Input
from . import keras_format
from .file_format import (
    FORMAT,
    FORMAT_VERSION,
    MAX_DIM,
    MAX_DIMS,
    _fspath,
    _json,
    _refusing,
    _short,
    read_file,
    write_file,
)

__all__ = ["load_model", "save_model", "save_weights", "load_weights", "write_file", "read_file"]

_F32_MAX = float(np.finfo(np.float32).max)
_F32_TINY = float(np.finfo(np.float32).smallest_subnormal)
# Every layer a Sequential model can hold, by class name.
_LAYERS = {
    name: getattr(layers_module, name)
    for name in layers_module.__all__
    if name not in ("Layer", "InputLayer", "Input")
    and isinstance(getattr(layers_module, name), type)
}
_TRAINING_KEYS = ("iterations", "learning_rate", "seed", "draws")
# The optimizers' slots in the engine's order (csrc/cpu/optimizers.cpp), and those that hold
# sums or averages of squared gradients, which are never negative.
_SLOT_NAMES = {
    _core.Opt.SGD: ("momentum velocity",),
    _core.Opt.Adam: ("first moment m", "second moment v"),
    _core.Opt.AdamW: ("first moment m", "second moment v"),
    _core.Opt.RMSprop: ("mean square", "momentum", "mean gradient"),
    _core.Opt.Adagrad: ("accumulator",),
}
_NON_NEGATIVE_SLOTS = {
    _core.Opt.Adam: (1,),
    _core.Opt.AdamW: (1,),
    _core.Opt.RMSprop: (0,),
    _core.Opt.Adagrad: (0,),
}


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


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
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
    says what is wrong with anything else (a pipe is not waited on: opened non-blocking)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return "deepcore"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "deepcore"
        head = os.read(fd, 8)
    finally:
        os.close(fd)
    return "keras" if head[:4] == b"PK\x03\x04" or head == b"\x89HDF\r\n\x1a\n" else "deepcore"


def _is_line(wiring) -> bool:
    """Whether a wiring (None: Sequential's) has each layer read the one before it."""
    return wiring is None or all(w == [i - 1] for i, w in enumerate(wiring))


def _layers_from_config(config: dict) -> list:
    """The layers of a Sequential "config" (not added to a model: nothing is allocated)."""
    layers = []
    for i, layer in enumerate(config["layers"]):
        if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
            raise ValueError(f"layer {i}: expected {{class_name, config}}, not {_short(layer)}")
        if layer.get("class_name") not in _LAYERS:
            raise ValueError(f"unknown layer class {_short(layer.get('class_name'))}")
        layers.append(_LAYERS[layer["class_name"]].from_config(layer["config"]))
    shared = config.get("shared")
    if shared is not None:  # a functional model's layer called several times: one object
        if not (
            isinstance(shared, list)
            and len(shared) == len(layers)
            and all(type(s) is int and -1 <= s < i for i, s in enumerate(shared))
        ):
            raise ValueError(
                f"the model's shared must list, for each of its {len(layers)} layers, -1 or "
                f"an earlier layer, not {_short(shared)}"
            )
        for i, s in enumerate(shared):
            if s >= 0:
                if type(layers[s]) is not type(layers[i]) or shared[s] != -1:
                    raise ValueError(f"layer {i} cannot share the weights of layer {s}")
                layers[i] = layers[s]
    return layers


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


class _Checked:
    """A file's contents, all checked: what `_restore` builds the model from."""

    def __init__(self, tensors, meta):
        self.tensors, self.meta = tensors, meta
        self.architecture = self.config = self.layers = self.input_shape = self.wiring = None
        self.input_shapes = self.outputs = None  # outputs: their layers (None: the last)
        self.compile = self.training = None  # (optimizer, loss, metrics); the dict


def _check_file(tensors: dict, meta: dict, custom_objects=None) -> _Checked:
    """Checks everything a model file holds, in the order of the module doc, allocating no
    weights (ValueError naming the entry and the value)."""
    checked = _Checked(tensors, meta)
    contents = meta.get("contents")
    if contents not in ("model", "weights"):
        raise ValueError(f"contents must be 'model' or 'weights', not {_short(contents)}")
    if contents == "model" and "training" not in meta:
        raise ValueError("missing entry 'training'")

    # The architecture, and the weights it has: planned, not allocated.
    arch = _json(meta["model"], "the 'model' entry")
    if not isinstance(arch, dict):
        raise ValueError(f"the 'model' entry is not a JSON object: {_short(arch)}")
    if arch.get("class_name") not in ("Sequential", "Functional"):
        raise ValueError(f"unknown model class {_short(arch.get('class_name'))}")
    config = arch.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError(f"the 'model' entry has no list of layers: {_short(config)}")
    if not isinstance(config.get("name"), (str, type(None))):
        raise ValueError(f"the model's name must be a string, not {_short(config.get('name'))}")
    shape = config.get("input_shape")
    if not (
        isinstance(shape, list)
        and 1 <= len(shape) <= MAX_DIMS
        and all(type(d) is int and 1 <= d < MAX_DIM for d in shape)
    ):
        raise ValueError(
            f"the model's input_shape must be a list of 1 to {MAX_DIMS} ints in [1, 2**31), "
            f"not {_short(shape)}"
        )
    for i, layer in enumerate(config["layers"]):
        entry = layer.get("config") if isinstance(layer, dict) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, (str, type(None))):
            raise ValueError(f"layer {i}: its name must be a string, not {_short(name)}")
    layers = _layers_from_config(config)
    if not layers:
        raise ValueError("the model has no layers")
    shapes = _checked_input_shapes(arch, shape)
    wiring = _checked_wiring(arch, len(layers), len(shapes or [shape]))
    checked.outputs = _checked_outputs(arch, len(layers))
    where = [_where(i, layer) for i, layer in enumerate(layers)]
    planned = _plan(layers, shape, where, wiring, shapes, checked.outputs)
    _check_layer_tensors(layers, planned, tensors, where)
    checked.architecture, checked.config, checked.layers = arch, config, layers
    checked.input_shape, checked.wiring, checked.input_shapes = tuple(shape), wiring, shapes

    # What compile took, and the optimizer's state.
    optimizer = None
    if "compile" in meta:
        c = _json(meta["compile"], "the 'compile' entry")
        optional = {"weighted_metrics", "loss_weights"}
        if not isinstance(c, dict) or sorted(set(c) - optional) != ["loss", "metrics", "optimizer"]:
            raise ValueError(
                f"the 'compile' entry must hold optimizer, loss and metrics (and maybe "
                f"weighted_metrics and loss_weights), not {_short(c)}"
            )
        optimizer = optimizers.deserialize(c["optimizer"])
        if optimizer.schedule is None:
            _check_learning_rate(optimizer.learning_rate, "the optimizer's learning_rate")
        n_out = len(checked.outputs or [0])

        def per_output(value, what, check):
            """One entry per output, each checked: a model of several has a list of them."""
            if n_out == 1:
                return check(value)
            if not (isinstance(value, list) and len(value) == n_out):
                raise ValueError(
                    f"the compile {what} of a model of {n_out} outputs must be a list of "
                    f"{n_out}, not {_short(value)}"
                )
            return [check(v) for v in value]

        def one_loss(loss):  # None, a name, or a serialized Loss
            if isinstance(loss, dict):
                return losses.deserialize(loss)
            if isinstance(loss, str):
                losses.get(loss)  # a known name
            elif loss is not None:
                raise ValueError(f"the compile loss must be a name or a config, not {_short(loss)}")
            return loss

        def one_metrics(listed):
            if not isinstance(listed, list) or not all(isinstance(m, (str, dict)) for m in listed):
                raise ValueError(
                    f"the compile metrics must be names or configs, not {_short(listed)}"
                )
            found = [metrics.deserialize(m, custom_objects) for m in listed]
            for m in found:
                metrics.get(m)  # a known name
            return found

        def one_weight(weight):
            if not (type(weight) in (int, float) and math.isfinite(weight) and weight >= 0):
                raise ValueError(
                    f"the compile loss_weights must be numbers >= 0, not {_short(weight)}"
                )
            return weight

        loss = per_output(c["loss"], "loss", one_loss)
        none = [] if n_out == 1 else [[] for _ in range(n_out)]
        chosen = {
            key: per_output(c.get(key, none), key, one_metrics)
            for key in ("metrics", "weighted_metrics")
        }
        ones = 1.0 if n_out == 1 else [1.0] * n_out
        weight = per_output(c.get("loss_weights", ones), "loss_weights", one_weight)
        checked.compile = (optimizer, loss, chosen, weight)
        if all(fn is None for fn in (loss if n_out > 1 else [loss])):
            optimizer = None  # compiled without a loss: no optimizer state
    if optimizer is not None:
        if "training" not in meta:
            raise ValueError("missing entry 'training'")
        trainable = sum(math.prod(s) for per_layer in planned for s, t in per_layer if t)
        _check_slots(tensors, optimizer, trainable)
    elif "optimizer.slots" in tensors:
        raise ValueError("the file holds optimizer.slots but no optimizer compiled with a loss")

    # The values: weights finite, moving variances >= 0.
    repeats = _repeats(layers)
    for i, layer in enumerate(layers):
        for name in [] if i in repeats else layer.weight_names():
            key = f"layers.{i}.{name}"
            _check_finite(tensors[key], key)
            if name == "moving_variance":
                _check_non_negative(tensors[key], key, "a variance")

    if "training" in meta:
        t = _json(meta["training"], "the 'training' entry")
        if not isinstance(t, dict) or sorted(t) != sorted(_TRAINING_KEYS):
            raise ValueError(
                f"the 'training' entry must hold {', '.join(_TRAINING_KEYS)}, not {_short(t)}"
            )
        _check_int(t["iterations"], "training entry 'iterations'", 2**53, "2**53")
        _check_learning_rate(t["learning_rate"], "training entry 'learning_rate'")
        _check_int(t["seed"], "training entry 'seed'", 2**64, "2**64")
        _check_int(t["draws"], "training entry 'draws'", 2**64, "2**64")
        checked.training = t
    return checked


def _where(i: int, layer) -> str:
    return f"layer {layer.name!r} ({type(layer).__name__}, index {i})"


def _checked_input_shapes(arch: dict, shape: list):
    """A functional model's input shapes (their sizes adding up to input_shape's), and
    names; None for a Sequential model."""
    if arch["class_name"] != "Functional":
        return None
    config = arch["config"]
    shapes, names = config.get("input_shapes"), config.get("input_names")
    if not (
        isinstance(shapes, list)
        and 1 <= len(shapes) <= 1024
        and all(
            isinstance(s, list)
            and 1 <= len(s) <= MAX_DIMS
            and all(type(d) is int and 1 <= d < MAX_DIM for d in s)
            for s in shapes
        )
    ):
        raise ValueError(
            f"the model's input_shapes must be a list of shapes (lists of 1 to {MAX_DIMS} ints "
            f"in [1, 2**31)), not {_short(shapes)}"
        )
    total = sum(math.prod(s) for s in shapes)
    if (len(shapes) == 1 and shapes[0] != shape) or (len(shapes) > 1 and shape != [total]):
        raise ValueError(f"the input_shapes {_short(shapes)} do not make input_shape {shape}")
    if not (
        isinstance(names, list)
        and len(names) == len(shapes)
        and all(isinstance(n, str) for n in names)
    ):
        raise ValueError(f"the model's input_names must be {len(shapes)} strings")
    return [tuple(s) for s in shapes]


def _checked_wiring(arch: dict, n: int, inputs: int):
    """A functional model's wiring: for each of the n layers a list of 1 to 16 values it
    reads, each -1 - j (input j) or an earlier layer; None for a Sequential model."""
    if arch["class_name"] != "Functional":
        return None
    wiring = arch["config"].get("wiring")
    if not (isinstance(wiring, list) and len(wiring) == n):
        raise ValueError(f"the model's wiring must be a list of {n} lists, not {_short(wiring)}")
    for i, values in enumerate(wiring):
        if not (
            isinstance(values, list)
            and 1 <= len(values) <= 16
            and all(type(v) is int and -inputs <= v < i for v in values)
        ):
            raise ValueError(
                f"the wiring of layer {i} must list 1 to 16 values, each an input (-1 to "
                f"-{inputs}) or an earlier layer, not {_short(values)}"
            )
    return wiring


def _outputs_of(entry):
    """_from_parts' outputs from a config's "outputs" entry (None: the last layer)."""
    if entry is None:
        return None
    return entry["layers"], entry["names"], entry["as_dict"]


def _checked_outputs(arch: dict, n: int):
    """A functional model's output layers from its "outputs" entry (checked: distinct
    names, one per layer, a flag), or None when its output is the last layer's."""
    entry = arch["config"].get("outputs") if arch["class_name"] == "Functional" else None
    if entry is None:
        return None
    layers = entry.get("layers") if isinstance(entry, dict) else None
    names = entry.get("names") if isinstance(entry, dict) else None
    if not (
        isinstance(layers, list)
        and 1 <= len(layers) <= 4096
        and all(type(v) is int and 0 <= v < n for v in layers)
        and isinstance(names, list)
        and len(names) == len(layers)
        and all(isinstance(k, str) for k in names)
        and len(set(names)) == len(names)
        and type(entry.get("as_dict")) is bool
        and len(entry) == 3
    ):
        raise ValueError(
            f"the model's outputs must be {{'layers': layers (0 to {n - 1}), 'names': as many "
            f"different names, 'as_dict': a bool}}, not {_short(entry)}"
        )
    return layers


def _plan(
    layers: list, input_shape, where: list, wiring=None, input_shapes=None, outputs=None
) -> list:
    """Each layer's weights as (shape, trainable), in the engine's order, from the engine's
    plan: nothing is allocated. ValueError naming the layer for impossible shapes or wiring."""
    from ..models.engines import engine_with, layer_named

    try:
        engine = engine_with(layers, wiring=wiring, outputs=outputs)
        if input_shapes is not None and len(input_shapes) > 1:
            engine.set_input_shapes([list(s) for s in input_shapes])
        for i, values in enumerate(wiring or ()):
            engine.set_inputs(i, values)
        if outputs is not None:
            engine.set_outputs(list(outputs))
        first = {}  # a layer listed again is called again: it uses its first call's weights
        for i, layer in enumerate(layers):
            if first.setdefault(id(layer), i) != i:
                engine.set_weight_source(i, first[id(layer)])
        params = engine.plan(list(input_shape))
    except ValueError as e:
        layer, message = layer_named(layers, str(e))
        if layer is not None:
            message = f"{where[layers.index(layer)]}: {message}"
        raise ValueError(
            f"the model cannot be built for input shape {(None, *input_shape)}: {message}"
        ) from None
    planned = [[] for _ in layers]
    for li, shape, trainable in params:
        planned[li].append((tuple(shape), bool(trainable)))
    return planned


def _repeats(layers: list) -> set:
    """The indices of entries that repeat an earlier one (a shared layer: its weights are
    that entry's, and the file holds them there)."""
    first = {}
    return {i for i, layer in enumerate(layers) if first.setdefault(id(layer), i) != i}


def _check_layer_tensors(layers: list, planned: list, tensors: dict, where: list) -> None:
    """The file's layer tensors are exactly the planned weights (names and shapes); the
    other tensors, only optimizer.slots. Linear in the number of tensors and layers."""
    by_layer, unknown = {}, []
    for key in tensors:
        found = re.fullmatch(r"layers\.(0|[1-9][0-9]{0,8})\.(.+)", key, re.S)
        if found:
            by_layer.setdefault(int(found.group(1)), []).append(found.group(2))
        elif key != "optimizer.slots":
            unknown.append(key)
    repeats = _repeats(layers)
    for i, (layer, params) in enumerate(zip(layers, planned)):
        names = [] if i in repeats else layer.weight_names()
        found = by_layer.pop(i, [])
        if len(names) != len(params):
            raise ValueError(f"{where[i]} names {len(names)} weights, the engine has {len(params)}")
        if sorted(found) != sorted(names):
            raise ValueError(f"{where[i]} has weights {names}, the file has {_short(found)}")
        for name, (shape, _) in zip(names, params):
            key = f"layers.{i}.{name}"
            if tensors[key].shape != shape:
                raise ValueError(
                    f"{where[i]}: weight {name!r} expects shape {shape}, received "
                    f"{tensors[key].shape} (tensor {key!r})"
                )
    unknown += [f"layers.{i}.{name}" for i, names in by_layer.items() for name in names]
    if unknown:
        raise ValueError(f"the file holds tensors the model does not have: {_short(unknown)}")


def _check_finite(array, key: str, what: str = "weights") -> None:
    if not _core.all_finite(array):
        flat = np.ravel(array)
        at = int(np.flatnonzero(~np.isfinite(flat))[0])
        raise ValueError(
            f"tensor {key!r} holds {float(flat[at])} at index {at}: {what} must be finite "
            "(the file is corrupted, or was saved after training diverged)"
        )


def _check_non_negative(array, key: str, what: str) -> None:
    if array.size and array.min() < 0:
        flat = np.ravel(array)
        at = int(np.argmin(flat))
        raise ValueError(f"tensor {key!r} holds {float(flat[at])} at index {at}: {what} is >= 0")


def _check_slots(tensors: dict, optimizer, trainable: int) -> None:
    """optimizer.slots: the optimizer's slots over the `trainable` values, finite, and >= 0
    where a slot accumulates squared gradients."""
    nslots = _core.optimizer_slots(optimizer.spec())
    slots = tensors.get("optimizer.slots")
    if slots is None:
        raise ValueError("missing entry 'optimizer.slots' (the optimizer's state)")
    if slots.shape != (nslots * trainable,):
        raise ValueError(
            f"optimizer.slots has shape {slots.shape}, the optimizer needs "
            f"({nslots * trainable},) ({nslots} slots of {trainable} values)"
        )
    _check_finite(slots, "optimizer.slots", "the optimizer's state")
    names = _SLOT_NAMES.get(optimizer.kind, ())
    for k in _NON_NEGATIVE_SLOTS.get(optimizer.kind, ()):
        part = slots[k * trainable : (k + 1) * trainable]
        if part.size and part.min() < 0:
            at = int(np.argmin(part))
            raise ValueError(
                f"tensor 'optimizer.slots' holds {float(part[at])} at index "
                f"{k * trainable + at}: {type(optimizer).__name__}'s {names[k]} (slot {k}) "
                "is >= 0"
            )


def _check_int(value, what: str, high: int, high_text: str) -> None:
    if not (type(value) is int and 0 <= value < high):
        raise ValueError(f"{what} must be an int in [0, {high_text}), received {_short(value)}")


def _check_learning_rate(value, what: str) -> None:
    if not (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and _F32_TINY <= value <= _F32_MAX
    ):
        raise ValueError(
            f"{what} must be a number > 0 that float32 holds (at most {_F32_MAX:.7g}), "
            f"received {_short(value)}"
        )


@contextlib.contextmanager
def same_random_stream():
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
