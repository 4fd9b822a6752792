"""Saving and loading models: `model.save(path)`, `deepcore.models.load_model(path)`,
`model.save_weights(path)`, `model.load_weights(path)`.

The deepcore file format, version 1
===================================

A deepcore file is a safetensors file (the layout of https://github.com/huggingface/safetensors),
written and read with NumPy; nothing in it is ever unpickled or executed::

    bytes [0, 8)          N: length of the header, unsigned 64-bit little-endian
    bytes [8, 8 + N)      header: a JSON object (UTF-8), padded with spaces to a multiple of 8
    bytes [8 + N, end)    data: the raw bytes of every tensor, back to back

The header maps each tensor name to ``{"dtype": "F32", "shape": [...], "data_offsets":
[begin, end]}``: float32 little-endian values in C order, at ``data[begin:end]``. The tensors
are contiguous and cover the data exactly. Tensors:

    ``layers.{i}.kernel``, ``layers.{i}.bias``  weights of the i-th layer of the model (from 0;
                                                 `deepcore.Input` is not a layer)
    ``optimizer.slots``                          the optimizer's state (e.g. Adam's m and v), all
                                                 slots concatenated as the engine holds them
                                                 (full-model files of models compiled with a loss)

The header's ``"__metadata__"`` maps strings to strings; structured values are JSON texts:

    ``format``          ``"deepcore"``
    ``format_version``  ``"1"``; a reader refuses versions newer than its own
    ``contents``        ``"model"`` (`model.save`) or ``"weights"`` (`model.save_weights`)
    ``model``           the architecture: ``{"class_name": "Sequential", "config": {"name",
                        "trainable", "input_shape", "layers": [{"class_name", "config"}, ...]}}``
                        with each layer's `get_config()`: its constructor's arguments, with
                        initializers and regularizers as ``{"class_name", "config"}``
    ``compile``         (model files of compiled models) ``{"optimizer": {"class_name",
                        "config"}, "loss": name | {"class_name", "config"} | null,
                        "metrics": [name | {"class_name", "config"}, ...]}``
    ``training``        (model files) what resuming needs to continue bit-exactly:
                        ``{"iterations", "learning_rate", "seed", "draws"}`` (optimizer steps
                        taken, current learning rate, and the engine's random stream: seed and
                        number of draws made so far, used by shuffling and dropout)
    ``sha256``          integrity check: lowercase hex SHA-256 of the whole file (length,
                        header, padding and data) as written, computed while these 64
                        characters are ``"0" * 64``

Readers check, in this order: the length and JSON header, ``format``, ``format_version``, the
checksum, then the tensor entries; any failure raises ValueError naming the file and the
problem. Writes are atomic: the file is written to a temporary file in the same directory,
flushed to disk, then renamed onto the target, so an existing file is never left half-written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid

import numpy as np

from . import _registry, losses, metrics, optimizers, utils
from . import layers as layers_module
from .layers.core import Input

__all__ = ["load_model", "save_model", "save_weights", "load_weights", "write_file", "read_file"]

FORMAT = "deepcore"
FORMAT_VERSION = 1
# Every layer a Sequential model can hold, by class name.
_LAYERS = {
    name: getattr(layers_module, name)
    for name in layers_module.__all__
    if name not in ("Layer", "InputLayer", "Input")
}
_CHECKSUM = b'"sha256":"'
_ZERO = b"0" * 64


# ------------------------------------------------------------------------------- container
def write_file(path, tensors: dict, metadata: dict, overwrite: bool = True) -> None:
    """Atomically writes float32 `tensors` (name -> array) and string `metadata` to `path`."""
    header, chunks, offset = {"__metadata__": {**metadata, "sha256": _ZERO.decode()}}, [], 0
    for name, array in tensors.items():
        chunk = np.ascontiguousarray(array, "<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(np.shape(array)),
            "data_offsets": [offset, offset + len(chunk)],
        }
        chunks.append(chunk)
        offset += len(chunk)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    blob = bytearray(len(text).to_bytes(8, "little") + text + b"".join(chunks))
    at = blob.index(_CHECKSUM + _ZERO) + len(_CHECKSUM)
    blob[at : at + 64] = hashlib.sha256(blob).hexdigest().encode()
    _atomic_write(_fspath(path), blob, overwrite)


def read_file(path) -> tuple[dict, dict]:
    """Reads and validates a deepcore file: returns (tensors, metadata); ValueError if invalid."""
    path = _fspath(path)
    with open(path, "rb") as f:
        raw = f.read()

    def fail(problem):
        return ValueError(f"Cannot load {path!r}: {problem}.")

    if len(raw) < 8:
        raise fail(f"the file is truncated or not a deepcore file (only {len(raw)} bytes)")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise fail(
            f"the file is truncated or not a safetensors file (header length {n}, "
            f"file size {len(raw)})"
        )
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (ValueError, RecursionError):
        raise fail(
            "the header is not valid JSON (the file is corrupted or not safetensors)"
        ) from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise fail('not a deepcore file (no "format": "deepcore" in its safetensors metadata)')
    version = meta.get("format_version")
    if not (isinstance(version, str) and version.isascii() and version.isdigit()):
        raise fail(f"invalid format_version {version!r}")
    if int(version) > FORMAT_VERSION:
        raise fail(
            f"written by a newer deepcore (format_version {int(version)}; "
            f"this version reads {FORMAT_VERSION})"
        )
    at = raw.find(_CHECKSUM, 8, 8 + n)
    if at < 0 or not isinstance(meta.get("sha256"), str):
        raise fail("it has no sha256 checksum")
    at += len(_CHECKSUM)
    digest = hashlib.sha256(raw[:at] + _ZERO + raw[at + 64 :]).hexdigest()
    if raw[at : at + 64] != digest.encode() or meta["sha256"] != digest:
        raise fail("checksum mismatch: the file is corrupted or was modified after saving")

    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        entry = entry if isinstance(entry, dict) else {}
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (
            entry.get("dtype") == "F32"
            and _int_list(shape)
            and _int_list(offsets)
            and len(offsets) == 2
            and offsets[1] - offsets[0] == 4 * math.prod(shape)
        ):
            raise fail(f"invalid header entry for tensor {name!r}: {entry!r}")
        spans.append((offsets[0], offsets[1], name, shape))
    data, tensors, position = memoryview(raw)[8 + n :], {}, 0
    for begin, end, name, shape in sorted(spans):
        if begin != position or end > len(data):
            raise fail(f"tensor {name!r} is not where the previous one ends, or past the data")
        tensors[name] = np.frombuffer(data[begin:end], "<f4").reshape(shape).astype(np.float32)
        position = end
    if position != len(data):
        raise fail(f"the data section has {len(data)} bytes, the tensors {position}")
    return tensors, meta


def _int_list(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


def _fspath(path) -> str:
    path = os.fspath(path)
    return os.fsdecode(path) if isinstance(path, bytes) else path


def _atomic_write(path: str, blob: bytes, overwrite: bool) -> None:
    """Writes `blob` to a temporary file next to `path`, fsyncs it, then renames it onto `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Cannot save to {path!r}: directory {directory!r} does not exist.")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"Cannot save to {path!r}: the file exists and overwrite=False.")
    temp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------- model level
def model_config(model) -> dict:
    """The architecture of a Sequential model, as stored under "model" in the metadata."""
    return {
        "class_name": "Sequential",
        "config": {
            "name": model.name,
            "trainable": model.trainable,
            "input_shape": None if model._input_shape is None else list(model._input_shape),
            "layers": [_registry.serialize(layer) for layer in model.layers],
        },
    }


def compile_config(model) -> dict:
    """The arguments of `model.compile`, as stored under "compile" in the metadata."""
    if model._loss is None:
        loss = None
    else:
        loss = model.loss if isinstance(model.loss, str) else losses.serialize(model._loss)
    return {
        "optimizer": optimizers.serialize(model.optimizer),
        "loss": loss,
        "metrics": [metrics.serialize(m) for m in model._metrics],
    }


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _weights(model) -> dict:
    own = model._own_weights("save")
    return {
        f"layers.{i}.{name}": w
        for i, (layer, views) in enumerate(zip(model.layers, own))
        for name, w in zip(layer.weight_names(), views)
    }


def save_model(model, path, overwrite: bool = True) -> None:
    """Saves architecture, weights, compile config and training state (see the module doc)."""
    engine = model._require_engine("save")
    tensors = _weights(model)
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "contents": "model"}
    meta["model"] = _dumps(model_config(model))
    if model.compiled:
        meta["compile"] = _dumps(compile_config(model))
    if model._loss is not None:
        tensors["optimizer.slots"] = engine.optimizer_state()
    meta["training"] = _dumps(
        {
            "iterations": int(engine.iterations),
            "learning_rate": float(engine.learning_rate),
            "seed": int(engine.seed),
            "draws": int(engine.draws),
        }
    )
    write_file(path, tensors, meta, overwrite)


def save_weights(model, path, overwrite: bool = True) -> None:
    """Saves the weights (and the architecture, to validate `load_weights`)."""
    model._require_engine("save_weights")
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "contents": "weights"}
    meta["model"] = _dumps(model_config(model))
    write_file(path, _weights(model), meta, overwrite)


def load_model(path):
    """Rebuilds a model saved by `model.save`: architecture, weights, compile config and
    training state (training continues exactly as it would have without saving)."""
    path = _fspath(path)
    tensors, meta = read_file(path)
    try:
        return _restore(tensors, meta)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        problem = f"missing entry {e}" if isinstance(e, KeyError) else str(e).rstrip(".")
        raise ValueError(f"Cannot load {path!r}: {problem}.") from None


def load_weights(model, path) -> None:
    """Loads weights saved by `save_weights` or `save` into `model` (same architecture)."""
    path = _fspath(path)
    tensors, meta = read_file(path)
    try:
        architecture = json.loads(meta["model"])
        if model._input_shape is None:
            model._input_shape = tuple(architecture["config"]["input_shape"])
        model._require_engine("load_weights")
        _assign_weights(model, architecture, tensors)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        problem = f"missing entry {e}" if isinstance(e, KeyError) else str(e).rstrip(".")
        raise ValueError(
            f"Cannot load weights from {path!r} into model {model.name!r}: {problem}."
        ) from None


def model_from_config(config: dict):
    """A new Sequential model (fresh weights) from the "config" part of `model_config`."""
    from .models.sequential import Sequential

    layers = []
    for layer in config["layers"]:
        if layer["class_name"] not in _LAYERS:
            raise ValueError(f"unknown layer class {layer['class_name']!r}")
        layers.append(_LAYERS[layer["class_name"]].from_config(layer["config"]))
    shape = config.get("input_shape")
    return Sequential(
        ([Input(shape=shape)] if shape is not None else []) + layers,
        name=config.get("name"),
        trainable=config.get("trainable", True),
    )


def _restore(tensors: dict, meta: dict):
    architecture = json.loads(meta["model"])
    if architecture["class_name"] != "Sequential":
        raise ValueError(f"unknown model class {architecture['class_name']!r}")
    state = utils.rng().bit_generator.state  # building draws initial weights: keep the
    try:  # global random stream as it was, so loading has no effect on later draws
        model = model_from_config(architecture["config"])
    finally:
        utils.rng().bit_generator.state = state
    _assign_weights(model, architecture, tensors)
    if "compile" in meta:
        c = json.loads(meta["compile"])
        loss = c["loss"]  # None, a name, or a serialized Loss
        model.compile(
            optimizer=optimizers.deserialize(c["optimizer"]),
            loss=losses.deserialize(loss) if isinstance(loss, dict) else loss,
            metrics=[metrics.deserialize(m) for m in c["metrics"]],
        )
    if "training" in meta:
        training, engine = json.loads(meta["training"]), model._engine
        if model._loss is not None:
            slots, state = tensors["optimizer.slots"], engine.optimizer_state()
            if slots.shape != state.shape:
                raise ValueError(
                    f"optimizer.slots has shape {slots.shape}, the optimizer needs {state.shape}"
                )
            engine.set_optimizer_state(slots)
            engine.iterations = training["iterations"]
            if getattr(model.optimizer, "schedule", None) is None:
                model.optimizer.learning_rate = training["learning_rate"]
        engine.seed, engine.draws = training["seed"], training["draws"]
    return model


def _assign_weights(model, architecture: dict, tensors: dict) -> None:
    """Checks every layer's weights against the file, then sets them all (or none)."""
    saved = architecture["config"]["layers"]
    if len(saved) != len(model.layers):
        raise ValueError(
            f"the file holds {len(saved)} layers {[s['config'].get('name') for s in saved]} "
            f"but the model has {len(model.layers)} {[l.name for l in model.layers]}"
        )
    updates = []
    own = model._own_weights("load")
    for i, (layer, entry, views) in enumerate(zip(model.layers, saved, own)):
        where = f"layer {layer.name!r} (index {i}, {entry['config'].get('name')!r} in the file)"
        prefix, names = f"layers.{i}.", layer.weight_names()
        found = [k[len(prefix) :] for k in tensors if k.startswith(prefix)]
        if sorted(found) != sorted(names):
            raise ValueError(f"{where} has weights {names}, the file has {found}")
        try:
            updates.append(
                (views, layer.check_weights([tensors[prefix + n] for n in names], views))
            )
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    for views, weights in updates:
        for v, w in zip(views, weights):
            v[...] = w
