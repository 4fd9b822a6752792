"""The checks of a deepcore model file before anything is built (saving/__init__.py reads
the file, these check all it holds, in the order of the format's documentation): layer
configs, wiring, shapes, tensors, compile configuration, optimizer slots and training
state, each refusal naming what is wrong and where."""

from __future__ import annotations

import math
import re

import numpy as np

from .. import _core, losses, metrics, optimizers
from .. import layers as layers_module
from .file_format import MAX_DIM, MAX_DIMS, _json, _short

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
        none: list = [] if n_out == 1 else [[] for _ in range(n_out)]
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
        # a layer listed again is called again: it uses its first call's weights
        first: dict[int, int] = {}
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
    planned: list[list[tuple]] = [[] for _ in layers]
    for li, shape, trainable in params:
        planned[li].append((tuple(shape), bool(trainable)))
    return planned


def _repeats(layers: list) -> set:
    """The indices of entries that repeat an earlier one (a shared layer: its weights are
    that entry's, and the file holds them there)."""
    first: dict[int, int] = {}
    return {i for i, layer in enumerate(layers) if first.setdefault(id(layer), i) != i}


def _check_layer_tensors(layers: list, planned: list, tensors: dict, where: list) -> None:
    """The file's layer tensors are exactly the planned weights (names and shapes); the
    other tensors, only optimizer.slots. Linear in the number of tensors and layers."""
    by_layer: dict = {}  # layer index -> its weight names
    unknown = []
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
