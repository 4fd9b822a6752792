"""Keras 3's files: the `.keras` archive (a zip of `metadata.json`, `config.json` and
`model.weights.h5`) and `.weights.h5` files, written so that `keras.models.load_model` and
`model.load_weights` open them, and read from Keras 3 for every layer kind deepcore has.

What they hold: the architecture (Keras' layer configs; a Sequential, or a functional model
with its `inbound_nodes`), the weights (HDF5 groups `layers/<class in snake_case, numbered
by kind>/vars/<i>`, a recurrent layer's under `cell`, a wrapper's under `layer`,
`forward_layer`, `backward_layer`), the compile configuration where it is Keras' (names
or built-in objects), and the optimizer's state as Keras' optimizer variables (iterations,
learning rate, then its slots per trained weight: training goes on from them in Keras or
deepcore). Not the random stream (deepcore's own file keeps it, to resume bit for bit).
h5py is needed (pip install h5py).

Reading never runs code from the file (Keras' `safe_mode`): a Lambda layer in a Keras file
is refused, as is any layer, option or value deepcore does not have, by name.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import time
import zipfile

import numpy as np

from .. import initializers, losses, metrics, optimizers, regularizers
from ..layers.core import Input
from ..layers.ops_layers import TracedFunction
from .file_format import _atomic_write, _fspath, _short

__all__ = ["save_keras", "load_keras", "save_keras_weights", "load_keras_weights", "is_keras"]

KERAS_VERSION = "3.10.0"  # the format written (Keras 3's saving_lib)
_WRAPPED = {"module", "registered_name", "shared_object_id", "build_config"}

# Keras' options deepcore does not have, at the values that make them no-ops (dropped when
# read; any other value is refused, naming the layer and the option).
_NEUTRAL = {
    "activity_regularizer": None,
    "kernel_constraint": None,
    "bias_constraint": None,
    "recurrent_constraint": None,
    "embeddings_constraint": None,
    "beta_constraint": None,
    "gamma_constraint": None,
    "depthwise_constraint": None,
    "quantization_config": None,
    "lora_rank": None,
    "lora_alpha": None,
    "synchronized": False,
    "renorm": False,
    "renorm_clipping": None,
    "noise_shape": None,
    "data_format": "channels_last",
    "groups": 1,
    "sparse": False,
    "ragged": False,
    "optional": False,
    "stateful": False,
    "unroll": False,
    "return_state": False,
    "reset_after": True,
    "unit_forget_bias": True,
    "weights": None,
    "input_length": None,
    "axis": -1,
    "seed": None,
    "dilation_rate": [1, 1],
    "interpolation": "nearest",
    "use_ema": False,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
    "amsgrad": False,
}
# (read elsewhere, or of no effect where the option above is neutral)
# (zero_output_for_mask: deepcore's recurrent layers follow Keras' choice for each place)
_ANY = {"renorm_momentum", "ema_momentum", "zero_output_for_mask", "dtype", "name", "trainable"}


def is_keras(path) -> bool:
    """Whether `path` names a Keras 3 file (by its extension, as Keras decides)."""
    text = str(_fspath(path))
    return text.endswith(".keras") or text.endswith(".weights.h5")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras 3 files need h5py: pip install h5py") from None
    return h5py


def _snake(name: str) -> str:
    """Keras' naming.to_snake_case of a class name (Conv2D: conv2d, LeakyReLU: leaky_re_lu)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _weight_paths(class_name: str, base: str, count: int, inner=None) -> list[str]:
    """The HDF5 datasets of a layer's `count` weights (get_weights order) under `base`."""
    if class_name in ("SimpleRNN", "LSTM", "GRU"):
        return [f"{base}/cell/vars/{i}" for i in range(count)]
    if class_name == "Bidirectional":
        half = count // 2
        return _weight_paths(inner, f"{base}/forward_layer", half) + _weight_paths(
            inner, f"{base}/backward_layer", half
        )
    if class_name == "TimeDistributed":
        return _weight_paths(inner, f"{base}/layer", count)
    return [f"{base}/vars/{i}" for i in range(count)]


def _paths_by_kind(class_names) -> list[str]:
    """Keras' HDF5 group of each layer of a model's `layers`: its class in snake case,
    numbered among the layers of its kind (dense, dense_1, ...)."""
    used: dict[str, int] = {}
    paths = []
    for name in class_names:
        snake = _snake(name)
        used[snake] = used.get(snake, -1) + 1
        paths.append(f"layers/{snake}" + (f"_{used[snake]}" if used[snake] else ""))
    return paths


# ------------------------------------------------------------------------------ writing
def _keras_object(config, module: str):
    """A deepcore {"class_name", "config"} as Keras serializes it, from Keras' `module`
    (keras.initializers, ...); a learning-rate schedule inside, from its own."""
    if not isinstance(config, dict) or "class_name" not in config:
        return config
    inner = {k: _keras_object(v, "keras.optimizers.schedules") for k, v in config["config"].items()}
    return {
        "module": module,
        "class_name": config["class_name"],
        "config": inner,
        "registered_name": None,
    }


def _layer_entry(layer) -> dict:
    """A layer's entry in Keras' config.json."""
    kind = type(layer).__name__
    if kind == "Lambda" or kind == "TextVectorization":
        raise ValueError(
            f"Layer {layer.name!r} ({kind}) has no Keras 3 file form deepcore writes (a "
            "Lambda's is Python code); save to a deepcore file (another extension)."
        )
    config = {}
    for key, value in layer.get_config().items():
        if isinstance(value, dict) and "class_name" in value:
            if kind in ("Bidirectional", "TimeDistributed"):  # (the wrapped layer)
                value = _layer_entry(_wrapped(layer, key))
            else:  # (an initializer or regularizer: Keras' take no None options)
                family = "initializers" if key.endswith("initializer") else "regularizers"
                value = _keras_object(value, f"keras.{family}")
                value["config"] = {k: v for k, v in value["config"].items() if v is not None}
        config[key] = value
    config["dtype"] = "float32"
    return {"module": "keras.layers", "class_name": kind, "config": config, "registered_name": None}


def _input_entry(name: str, shape) -> dict:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, *shape], "dtype": "float32", "name": name},
        "registered_name": None,
    }


def _tensor(name: str, node: int, shape) -> dict:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, *shape], "dtype": "float32", "keras_history": [name, node, 0]},
    }


def _functional_config(model, engine) -> tuple[dict, list]:
    """Keras' config of a functional model and its layers (each once, in order)."""
    inputs = [_input_entry(n, s) for n, s in zip(model._input_names, model._input_shapes)]
    entries, layers, at = [], [], {}  # at: id(layer) -> its entry
    node_of: list[int] = []
    shapes = [engine.output_shape(i) for i in range(len(model._layers))]

    def ref(v):
        if v < 0:
            return _tensor(model._input_names[-1 - v], 0, model._input_shapes[-1 - v])
        return _tensor(model._layers[v].name, node_of[v], shapes[v])

    for layer, wires in zip(model._layers, model._wiring):
        if getattr(layer, "_op_node", False):
            raise ValueError(
                f"Model {model.name!r} applies deepcore.ops to its tensors ({layer.name!r}): "
                "Keras 3 files hold layers only; save to a deepcore file (another extension)."
            )
        if id(layer) not in at:
            at[id(layer)] = {**_layer_entry(layer), "name": layer.name, "inbound_nodes": []}
            entries.append(at[id(layer)])
            layers.append(layer)
        args = [ref(v) for v in wires]
        at[id(layer)]["inbound_nodes"].append(
            {"args": [args if layer._takes_several_inputs() else args[0]], "kwargs": {}}
        )
        node_of.append(len(at[id(layer)]["inbound_nodes"]) - 1)

    def out(i):
        return [model._layers[i].name, node_of[i], 0]

    outs = [out(i) for i in model._outputs]
    config = {
        "name": model.name,
        "trainable": model.trainable,
        "layers": [
            {**e, "name": n, "inbound_nodes": []} for e, n in zip(inputs, model._input_names)
        ]
        + entries,
        "input_layers": [[n, 0, 0] for n in model._input_names],
        "output_layers": dict(zip(model._out_names, outs)) if model._dict_outputs else outs,
    }
    return config, layers


def _compile_config(model):
    """Keras' compile_config (None for a model not compiled): Keras' objects by their
    configs, the user's functions and classes by name, as Keras writes them (loading
    them takes `custom_objects`). A lambda has no name to load it by: the file is then
    written without its compile configuration, with a warning."""
    if not model.compiled or model._compile_args is None:
        return None
    loss, loss_weights, chosen_metrics, weighted = model._compile_args

    def keras_form(value):
        if value is None or isinstance(value, (str, int, float)):
            return value
        if isinstance(value, (list, tuple)):
            return [keras_form(v) for v in value]
        if isinstance(value, dict):
            return {k: keras_form(v) for k, v in value.items()}
        fn = value.fn if isinstance(value, TracedFunction) else value
        if callable(fn) and not hasattr(fn, "get_config"):  # (a function of the user's)
            if "<" in getattr(fn, "__qualname__", "<"):
                raise TypeError(f"the function {fn!r} has no name to be loaded by")
            name = fn.__name__
            return {"module": "builtins", "class_name": "function", "config": name,
                    "registered_name": "function"}  # fmt: skip
        if getattr(value, "custom", False) or (
            isinstance(value, metrics.Metric) and value._stateful()
        ):  # (a class of the user's)
            name = type(value).__name__
            return {
                "module": type(value).__module__,
                "class_name": name,
                "config": value.get_config(),
                "registered_name": name,
            }
        module = "keras.losses" if isinstance(value, losses.Loss) else "keras.metrics"
        return _keras_object(
            {"class_name": type(value).__name__, "config": value.get_config()}, module
        )

    try:
        return {
            "optimizer": _keras_object(optimizers.serialize(model.optimizer), "keras.optimizers"),
            "loss": keras_form(loss),
            "loss_weights": keras_form(loss_weights),
            "metrics": keras_form(chosen_metrics),
            "weighted_metrics": keras_form(weighted),
        }
    except TypeError as e:
        import warnings

        warnings.warn(
            f"Model {model.name!r} is saved to a Keras file without its compile "
            f"configuration: {e}. Name the function (def) to keep it.",
            stacklevel=4,
        )
        return None


def _model_config(model) -> tuple[dict, list]:
    """Keras' config.json of a model and its layers in Keras' order."""
    engine = model._require_engine("save")
    if getattr(model, "_wiring", None) is None:
        shape = list(model._input_shape)
        layers = list(model._layers)
        config = {
            "name": model.name,
            "trainable": model.trainable,
            "layers": [_input_entry("input_layer", shape)] + [_layer_entry(la) for la in layers],
            "build_input_shape": [None, *shape],
        }
        entry: dict = {"module": "keras", "class_name": "Sequential", "config": config}
        entry["build_config"] = {"input_shape": [None, *shape]}
    else:
        config, layers = _functional_config(model, engine)
        entry = {"module": "keras.src.models.functional", "class_name": "Functional"}
        entry["config"] = config
    entry["registered_name"] = None
    compiled = _compile_config(model)
    if compiled is not None:
        entry["compile_config"] = compiled
    return entry, layers


def _wrapped(layer, key: str):
    """The layer a wrapper's config holds under `key` ("layer", "backward_layer")."""
    if key == "layer":
        return getattr(layer, "forward_layer", None) or layer.layer
    return layer.backward_layer


def _inner_kind(layer):
    """The class of a wrapper's layer (Bidirectional, TimeDistributed), else None."""
    inner = getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)
    return type(inner).__name__ if inner is not None else None


def _keras_slots(optimizer) -> tuple[list[int], bool]:
    """deepcore's optimizer slots that Keras' optimizer keeps, in the order it creates its
    variables, and whether they are interleaved per model variable (Adam's momentum and
    velocity) or one block of all variables each (RMSprop's velocity, then momentum)."""
    kind = type(optimizer).__name__
    if kind in ("Adam", "AdamW"):
        return [0, 1], True
    if kind == "SGD":
        return ([0] if optimizer.momentum != 0 else []), False
    if kind == "RMSprop":
        return [
            0,
            *([1] if optimizer.momentum > 0 else []),
            *([2] if optimizer.centered else []),
        ], False
    return [0], False  # Adagrad's accumulator


def _optimizer_layout(model):
    """(engine, flat slots, [(slot, view)] in Keras' order of the optimizer's variables
    after iterations and learning rate), or None for a model without an optimizer state:
    views into each deepcore slot of the trained (not frozen) weights, Keras' order."""
    if not (model.compiled and model._out is not None and model._out.trained):
        return None
    from ..models.engines import _param_views

    engine = model._engine
    flat = np.array(engine.optimizer_state(), np.float32)
    n = sum(int(np.prod(shape)) for _, _, shape, trained in engine.param_info() if trained)
    order, interleaved = _keras_slots(model.optimizer)
    per_slot = []
    for k in order:
        views = [
            view
            for li, view, trained in _param_views(engine, flat[k * n : (k + 1) * n])
            if trained and not model._frozen[li]
        ]
        per_slot.append([(k, v) for v in views])
    if interleaved:
        pairs = [pair for group in zip(*per_slot) for pair in group]
    else:
        pairs = [pair for block in per_slot for pair in block]
    return engine, flat, pairs


def _write_optimizer(model, h5) -> None:
    layout = _optimizer_layout(model)
    if layout is None:
        return
    engine, _, pairs = layout
    group = h5.create_group("optimizer/vars")
    group.attrs["name"] = model.optimizer.name
    group.create_dataset("0", data=np.int64(engine.iterations))
    at = 1
    if getattr(model.optimizer, "schedule", None) is None:
        group.create_dataset("1", data=np.float32(engine.learning_rate))
        at = 2
    for i, (_, view) in enumerate(pairs):
        group.create_dataset(str(at + i), data=np.asarray(view, np.float32))


def _read_optimizer(model, h5) -> bool:
    """The optimizer's state from Keras' variables, where they fit the model's (as Keras
    does, a warning and a fresh state otherwise); whether it was read."""
    import warnings

    layout = _optimizer_layout(model)
    group = h5.get("optimizer/vars")
    if layout is None or group is None or not len(group):
        return False
    engine, flat, pairs = layout
    scheduled = getattr(model.optimizer, "schedule", None) is not None
    at = 1 if scheduled else 2
    arrays = [np.asarray(group[str(at + i)]) for i in range(len(group) - at)]
    if [a.shape for a in arrays] != [v.shape for _, v in pairs]:
        warnings.warn(
            f"Skipping the optimizer state of the file: it has {len(arrays)} variables of "
            f"shapes that do not fit the {len(pairs)} of model {model.name!r}'s optimizer.",
            stacklevel=4,
        )
        return False
    for (_, view), a in zip(pairs, arrays):
        view[...] = a
    engine.set_optimizer_state(flat)
    engine.iterations = int(np.asarray(group["0"]))
    if not scheduled:
        model.optimizer.learning_rate = float(np.asarray(group["1"]))
    return True


def _write_weights(model, layers, h5, inputs: int) -> None:
    """The weights of `layers` (Keras' order; after `inputs` InputLayers) into an open HDF5
    file. (The numbering is by kind: the inputs' groups do not move the others'.)"""
    for path in _paths_by_kind(["InputLayer"] * inputs):
        h5.create_group(path + "/vars")
    by_layer = model._weights_by_layer("save")
    for layer, path in zip(layers, _paths_by_kind([type(la).__name__ for la in layers])):
        h5.create_group(path + "/vars").attrs["name"] = layer.name
        weights = by_layer[id(layer)]
        names = _weight_paths(type(layer).__name__, path, len(weights), _inner_kind(layer))
        for dataset, w in zip(names, weights):
            h5.create_dataset(dataset, data=np.asarray(w, np.float32))
    h5.create_group("vars").attrs["name"] = model.name
    _write_optimizer(model, h5)


def _weights_bytes(model, layers, inputs: int) -> bytes:
    buffer = io.BytesIO()
    with _h5py().File(buffer, "w") as h5:
        _write_weights(model, layers, h5, inputs)
    return buffer.getvalue()


def _inputs(entry: dict, model) -> int:
    """The InputLayers among a model's Keras layers (a functional model's)."""
    return len(model._input_names) if entry["class_name"] == "Functional" else 0


def save_keras(model, path, overwrite: bool = True) -> None:
    """Writes `model` as a Keras 3 `.keras` archive (atomically)."""
    entry, layers = _model_config(model)
    weights = _weights_bytes(model, layers, _inputs(entry, model))
    meta = {"keras_version": KERAS_VERSION, "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("metadata.json", json.dumps(meta))
        z.writestr("config.json", json.dumps(entry))
        z.writestr("model.weights.h5", weights)
    _atomic_write(_fspath(path), buffer.getvalue(), overwrite)


def save_keras_weights(model, path, overwrite: bool = True) -> None:
    """Writes the weights as a Keras 3 `.weights.h5` file (atomically)."""
    entry, layers = _model_config(model)
    data = _weights_bytes(model, layers, _inputs(entry, model))
    _atomic_write(_fspath(path), data, overwrite)


# ------------------------------------------------------------------------------ reading
class _Refused(ValueError):
    pass


def _plain(value):
    """A Keras serialized object without its module and registry fields."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in _WRAPPED}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _accepted(cls) -> set:
    names = set()
    for c in cls.__mro__:
        if "__init__" in c.__dict__:
            names |= set(inspect.signature(c.__init__).parameters) - {"self", "kwargs"}
    return names | {"name", "trainable"}


def _object(config, family: str, classes, where: str):
    """A deepcore initializer, regularizer, optimizer or loss from Keras' config of it."""
    if config is None or isinstance(config, str):
        return config
    config = _plain(config)
    name = config.get("class_name")
    cls = {c.__name__.lower(): c for c in classes}.get(str(name).lower())
    if cls is None:
        hint = "; pass it in custom_objects" if family in ("loss", "metric") else ""
        raise _Refused(f"{where}: deepcore has no {family} {_short(name)}{hint}")
    kept = _kept(config.get("config") or {}, cls, f"{where} ({name})")
    return cls.from_config(kept) if hasattr(cls, "from_config") else cls(**kept)


def _kept(config: dict, cls, where: str) -> dict:
    """The options of a Keras config that deepcore's `cls` takes; the others must be at
    their neutral values (_NEUTRAL, or None)."""
    accepted, kept = _accepted(cls), {}
    for key, value in config.items():
        if key in accepted:
            kept[key] = value
        elif key in _ANY or value is None or _NEUTRAL.get(key, object()) == value:
            continue
        elif key == "dilation_rate" and value in (1, [1], (1,), (1, 1)):
            continue
        else:
            raise _Refused(f"{where}: deepcore does not support {key}={_short(value)}")
    return kept


_MODELS = ("Sequential", "Functional", "Model")


def _made(entry: dict, path: str):
    """(deepcore layer or model, [(layer, Keras class, wrapped class, HDF5 group)]) of
    Keras' entry of a layer or a model (whose layers' groups are under its own)."""
    if entry.get("class_name") in _MODELS:
        return _model_from(entry, path + "/")
    cls, config = _layer_config(entry)
    layer = cls.from_config(config)
    return layer, [(layer, entry.get("class_name"), _inner(entry), path)]


def _layer_config(entry: dict):
    """(deepcore's class, its config) of Keras' entry of a layer: its options checked and
    its initializers and regularizers made; a wrapped layer's as {"class_name", "config"}."""
    from . import _LAYERS

    kind, config = entry.get("class_name"), dict(entry.get("config") or {})
    where = f"Layer {config.get('name', kind)!r} ({kind})"
    if kind == "Lambda":
        raise _Refused(f"{where}: deepcore does not run code from files (Keras' safe_mode)")
    cls = _LAYERS.get(kind)  # type: ignore[arg-type]  # (no class_name: None)
    if cls is None:
        raise _Refused(f"{where}: deepcore has no layer of this kind")
    dtype = config.pop("dtype", None)
    dtype = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    if dtype not in (None, "float32"):
        raise _Refused(f"{where}: dtype {_short(dtype)}; deepcore computes in float32")
    for key, value in list(config.items()):
        if key.endswith("_initializer"):
            config[key] = _object(value, "initializer", _subclasses(initializers), where)
        elif key.endswith("_regularizer") and key != "activity_regularizer":
            config[key] = _object(value, "regularizer", _subclasses(regularizers), where)
        elif key in ("layer", "backward_layer") and isinstance(value, dict):
            inner, inner_config = _layer_config(value)
            config[key] = {"class_name": inner.__name__, "config": inner_config}
    return cls, _kept(config, cls, where)


def _subclasses(module) -> list:
    return [
        v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__
    ]


def _history(tensor, where: str) -> tuple:
    if not (isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__"):
        raise _Refused(f"{where}: expected a layer's tensor, received {_short(tensor)}")
    name, node, index = tensor["config"]["keras_history"]
    return str(name), int(node), int(index)


def _model_from(entry: dict, prefix: str = ""):
    """(deepcore model, its layers' items as _made gives them) of Keras' entry of a model;
    `prefix`: its group in the HDF5 file."""
    from ..models.functional import Functional
    from ..models.sequential import Sequential

    kind, config = entry.get("class_name"), entry.get("config") or {}
    entries = config.get("layers") or []
    if kind not in _MODELS:
        raise _Refused(f"deepcore cannot read a Keras model of class {_short(kind)}")
    if kind == "Sequential":
        shape = config.get("build_input_shape")
        if entries and entries[0].get("class_name") == "InputLayer":
            first = entries[0]["config"]
            shape = first.get("batch_shape") or first.get("batch_input_shape") or shape
            entries = entries[1:]
    paths = _paths_by_kind([e.get("class_name") for e in entries])
    items, made, outputs, order = [], {}, {}, []  # outputs: (name, node) -> tensor
    for e, path in zip(entries, paths):
        name = e.get("name") or (e.get("config") or {}).get("name")
        if e.get("class_name") == "InputLayer":
            shape_in = e["config"].get("batch_shape") or e["config"].get("batch_input_shape")
            outputs[(name, 0)] = Input(shape=tuple(shape_in[1:]), name=name)
        elif e.get("class_name") != "NotEqual":  # (Keras' Embedding mask: deepcore's own)
            layer, its = _made(e, prefix + path)
            made[name] = (layer, e)
            order.append(name)
            items += its
    if kind == "Sequential":
        layers = [made[n][0] for n in order]
        inputs = [Input(shape=tuple(shape[1:]))] if shape else []
        return Sequential(inputs + layers, name=config.get("name")), items
    _connect(made, order, outputs)

    def tensors_of(spec):
        if isinstance(spec, dict):
            return {k: tensors_of(v) for k, v in spec.items()}
        if spec and isinstance(spec[0], str):
            return outputs[(spec[0], int(spec[1]))]
        return [tensors_of(t) for t in spec]

    ins, outs = tensors_of(config["input_layers"]), tensors_of(config["output_layers"])
    return Functional(ins, outs, name=config.get("name")), items


def _connect(made, order, outputs) -> None:
    """Calls the layers on their inbound nodes' tensors, each node once its tensors are
    made (Keras' order of nodes, whatever the order of the layers), filling `outputs`."""
    pending = {name: list(made[name][1].get("inbound_nodes") or []) for name in order}
    done = {name: 0 for name in order}
    progress = True
    while progress and any(pending.values()):
        progress = False
        for name in order:
            layer = made[name][0]
            while pending[name]:
                node = pending[name][0]
                arg = node["args"][0] if node.get("args") else None
                refs = arg if isinstance(arg, list) else [arg]
                keys = [_history(t, f"Layer {name!r}")[:2] for t in refs]
                if any(k not in outputs for k in keys):
                    break
                tensors = [outputs[k] for k in keys]
                tensors = tensors if isinstance(arg, list) else tensors[0]
                outputs[(name, done[name])] = layer(tensors)
                done[name] += 1
                pending[name].pop(0)
                progress = True
    if any(pending.values()):
        stuck = sorted(n for n, p in pending.items() if p)
        raise _Refused(f"the layers {stuck} read tensors no layer of the file makes")


def _inner(entry: dict):
    layer = (entry.get("config") or {}).get("layer")
    return layer.get("class_name") if isinstance(layer, dict) else None


def _read_weights(model, items, h5) -> None:
    """Sets each layer's weights from the HDF5 file (all of them, or none); `items`: (layer,
    Keras class, wrapped class, HDF5 group) of each."""
    from . import assign_all

    updates = []
    by_layer = model._weights_by_layer("load")
    for layer, kind, inner, path in items:
        views = by_layer.get(id(layer), [])
        datasets = _weight_paths(kind, path, len(views), inner)
        missing = [d for d in datasets if d not in h5]
        if missing:
            raise _Refused(f"layer {layer.name!r} ({kind}) has no weights {missing[0]} there")
        arrays = [np.asarray(h5[d], np.float32) for d in datasets]
        updates.append((layer, views, arrays, f"layer {layer.name!r}"))
    try:
        assign_all(updates)
    except ValueError as e:
        raise _Refused(str(e)) from None


def load_keras(path, compile: bool = True, custom_objects=None):
    """A deepcore model from a Keras 3 `.keras` archive: architecture, weights, and the
    compile configuration where deepcore has its optimizer, loss and metrics."""
    path = _fspath(path)
    try:
        with zipfile.ZipFile(path) as z:
            entry = json.loads(z.read("config.json"))
            weights = z.read("model.weights.h5")
        model, items = _model_from(entry)
        with _h5py().File(io.BytesIO(weights), "r") as h5:
            _read_weights(model, items, h5)
        compiled = entry.get("compile_config")
        if compile and compiled:
            _compile_from(model, compiled, "its compile configuration", custom_objects or {})
            with _h5py().File(io.BytesIO(weights), "r") as h5:
                _read_optimizer(model, h5)
    except _Refused as e:
        raise ValueError(f"Cannot load {path!r}: {e}.") from None
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as e:
        raise ValueError(f"Cannot load {path!r}: not a Keras 3 .keras archive ({e}).") from None
    except (ValueError, TypeError, AttributeError, IndexError, OverflowError) as e:
        # (a config whose values deepcore's layers refuse, or of the wrong types)
        raise ValueError(f"Cannot load {path!r}: {type(e).__name__}: {e}") from None
    return model


def _compile_from(model, compiled: dict, where: str, custom_objects: dict) -> None:
    def objects(value, family, module):
        if isinstance(value, list):
            return [objects(v, family, module) for v in value]
        if isinstance(value, dict) and "class_name" not in value:
            return {k: objects(v, family, module) for k, v in value.items()}
        if isinstance(value, dict) and value.get("class_name") == "function":
            value = value.get("config")  # (a function, by its name)
        if isinstance(value, dict) and value.get("class_name") in custom_objects:
            custom = custom_objects[value["class_name"]]
            return (
                custom.from_config(value.get("config") or {})
                if isinstance(custom, type)
                else custom
            )
        if isinstance(value, str):
            if value in custom_objects:
                return custom_objects[value]
            try:
                module.get(value)
            except ValueError:
                raise _Refused(
                    f"{where}: deepcore has no {family} {value!r}; pass it in custom_objects"
                ) from None
            return value
        return _object(value, family, _subclasses(module), where)

    model.compile(
        optimizer=_object(compiled.get("optimizer"), "optimizer", _subclasses(optimizers), where)
        or "rmsprop",
        loss=objects(compiled.get("loss"), "loss", losses),
        loss_weights=compiled.get("loss_weights"),
        metrics=objects(compiled.get("metrics"), "metric", metrics),
        weighted_metrics=objects(compiled.get("weighted_metrics"), "metric", metrics),
    )


def load_keras_weights(model, path) -> None:
    """Loads a Keras 3 `.weights.h5` file (or a `.keras` archive's weights) into `model`,
    whose layers must be those of the file's model, in Keras' order."""
    path = _fspath(path)
    _, layers = _model_config(model)
    paths = _paths_by_kind([type(la).__name__ for la in layers])
    items = [(la, type(la).__name__, _inner_kind(la), p) for la, p in zip(layers, paths)]
    try:
        source = path
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                source = io.BytesIO(z.read("model.weights.h5"))
        with _h5py().File(source, "r") as h5:
            nested = [k for k in h5.get("layers", {}) if "layers" in h5["layers"][k]]
            if nested:
                raise _Refused(
                    f"the file's model has a model inside ({nested[0]!r}); deepcore's holds "
                    "that model's layers, not the model: load the .keras archive instead"
                )
            _read_weights(model, items, h5)
    except _Refused as e:
        raise ValueError(
            f"Cannot load weights from {path!r} into model {model.name!r}: {e}."
        ) from None
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"Cannot load weights from {path!r}: not a Keras 3 file ({e}).") from None
