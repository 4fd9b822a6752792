"""Fuzz: corrupted and edited model files (flips, truncations, header edits with the
checksum recomputed) give a clear error or a model that predicts (see fuzzing.py)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from fuzzing import (
    FUZZ,
    OVERFLOW,
    UnclearError,
    WrongResult,
    all_finite,
    check_clear,
    expect,
    run_isolated,
)
from hypothesis import given
from hypothesis import strategies as st

import deepcore as dc


# ------------------------------------------------------------------------ (c) model files
def _file_models():
    L = dc.layers
    dense = dc.Sequential(
        [
            dc.Input(shape=(4,)),
            L.Dense(3, activation="relu"),
            L.Dropout(0.25),
            L.Dense(2, activation="softmax"),
        ],
        name="dense",
    )
    dense.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    conv = dc.Sequential(
        [
            dc.Input(shape=(6, 6, 2)),
            L.Conv2D(3, 3, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(2),
        ],
        name="conv",
    )
    conv.compile(optimizer=dc.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    pool = dc.Sequential(
        [
            dc.Input(shape=(8,)),
            L.Reshape((2, 2, 2)),
            L.Conv2D(2, 1),
            L.AveragePooling2D(1),
            L.GlobalAveragePooling2D(),
            L.Dense(1),
        ],
        name="pool",
    )
    pool.compile(optimizer="rmsprop", loss="mse")
    # a graph of two outputs, a Lambda, ops, a custom loss and a custom metric (programs)
    ops = dc.ops
    x = dc.Input(shape=(5,))
    h = L.Dense(4, activation="tanh")(x)
    shaped = L.Lambda(lambda t: ops.square(t) * np.array([1.0, 2.0, 3.0, 4.0]) - 0.5)(h)
    graph = dc.Model(x, [L.Dense(2)(shaped + h), ops.mean(h, axis=-1, keepdims=True)])

    def custom(y_true, y_pred):
        return ops.mean(ops.abs(y_true - y_pred) + ops.square(y_pred), axis=-1)

    graph.compile("adam", [custom, "mse"], loss_weights=[1.0, 0.5], metrics=[[custom], []])
    return {"dense": dense, "conv": conv, "pool": pool, "graph": graph}


def _train_batch(model):
    """A valid batch (x, y) for `model`'s input and loss (a list for several outputs)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *model.input_shape[1:])).astype(np.float32)
    shapes = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
    ys = []
    for out, loss in zip(shapes, model._out.losses):
        out = out[1:]
        ys.append(np.zeros((2, *(out[:-1] if loss.sparse else out)), np.float32))
    return x, ys if len(ys) > 1 else ys[0]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """name -> bytes of a saved compiled model (after one training epoch)."""
    dc.utils.set_random_seed(3)
    folder = tmp_path_factory.mktemp("fuzz_files")
    files = {}
    for name, model in _file_models().items():
        x, y = _train_batch(model)
        y = [np.repeat(a, 4, 0) for a in y] if isinstance(y, list) else np.repeat(y, 4, 0)
        model.fit(np.repeat(x, 4, 0), y, epochs=1, batch_size=4, verbose=0)
        path = folder / f"{name}.deepcore"
        model.save(path)
        files[name] = path.read_bytes()
    return files


_ZERO = "0" * 64
_RAW = "@@raw@@"


def split_file(blob: bytes):
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def join_file(header: dict, data: bytes, raw: str | None = None, checksum: bool = True) -> bytes:
    """A deepcore file of `header` (a dict; "@@raw@@" replaced by `raw` text) and `data`,
    padded and with its sha256 recomputed as `model.save` computes it (with `checksum`)."""
    meta = header.get("__metadata__")
    if checksum and isinstance(meta, dict) and isinstance(meta.get("sha256"), str):
        meta["sha256"] = _ZERO
    text = json.dumps(header, separators=(",", ":")).encode()
    if raw is not None:
        text = text.replace(json.dumps(_RAW).encode(), raw.encode())
    text += b" " * (-len(text) % 8)
    blob = bytearray(len(text).to_bytes(8, "little") + text + data)
    at = blob.find(b'"sha256":"' + _ZERO.encode())
    if checksum and at >= 0:
        at += len(b'"sha256":"')
        blob[at : at + 64] = hashlib.sha256(blob).hexdigest().encode()
    return bytes(blob)


json_values = st.one_of(
    st.integers(-5, 50),
    st.sampled_from(
        [2**26, 2**31, 2**32, 2**53, 2**62, 2**63 - 1, 2**63, 2**64, -(2**63), 10**30, OVERFLOW]
    ),
    st.sampled_from([0.5, -0.5, -0.0, 1e308, math.nan, math.inf, -math.inf]),
    st.sampled_from(
        [
            None,
            True,
            False,
            "",
            "relu",
            "same",
            "Dense",
            "F32",
            "x" * 20,
            [],
            {},
            [1, 1],
            [2**62, 2**62],
            [OVERFLOW, 7],
            [-1],
            [0, 0],
            [3, 3],
            [2, -1],
            {"class_name": "L2", "config": {"l2": math.nan}},
            {"class_name": "GlorotUniform", "config": {"seed": -1}},
        ]
    ),
    st.lists(st.integers(-2, 9), max_size=4),
)
CONFIG_KEYS = [
    "units",
    "filters",
    "kernel_size",
    "strides",
    "pool_size",
    "padding",
    "rate",
    "seed",
    "momentum",
    "epsilon",
    "center",
    "scale",
    "activation",
    "use_bias",
    "target_shape",
    "name",
    "trainable",
    "kernel_initializer",
    "kernel_regularizer",
    "data_format",
    "bogus",
    "class_name",
    "config",
]
META_KEYS = [
    "format",
    "format_version",
    "contents",
    "model",
    "compile",
    "training",
    "sha256",
    "other",
]
edits = st.one_of(
    st.tuples(
        st.just("tensor_field"),
        st.integers(0, 9),
        st.sampled_from(["shape", "data_offsets", "dtype", "other"]),
        json_values,
    ),
    st.tuples(st.just("tensor_drop"), st.integers(0, 9)),
    st.tuples(
        st.just("tensor_add"),
        st.sampled_from(["layers.0.kernel", "layers.9.bias", "optimizer.slots", "x"]),
        st.fixed_dictionaries(
            {
                "dtype": st.sampled_from(["F32", "F16", "I64"]),
                "shape": st.lists(st.integers(0, 3), max_size=3),
                "data_offsets": st.lists(st.integers(-4, 64), min_size=2, max_size=2),
            }
        ),
    ),
    st.tuples(
        st.just("meta_set"),
        st.sampled_from(META_KEYS),
        st.one_of(json_values, json_values.map(json.dumps)),
    ),
    st.tuples(st.just("meta_drop"), st.sampled_from(META_KEYS)),
    st.tuples(
        st.just("layer_config"), st.integers(-1, 9), st.sampled_from(CONFIG_KEYS), json_values
    ),
    st.tuples(
        st.just("model_config"),
        st.sampled_from(["input_shape", "layers", "name", "trainable", "bogus"]),
        json_values,
    ),
    st.tuples(
        st.just("compile"),
        st.sampled_from(
            [
                "learning_rate",
                "momentum",
                "beta_1",
                "beta_2",
                "rho",
                "epsilon",
                "class_name",
                "loss",
                "metrics",
                "bogus",
            ]
        ),
        json_values,
    ),
    st.tuples(
        st.just("training"),
        st.sampled_from(["iterations", "learning_rate", "seed", "draws", "bogus"]),
        json_values,
    ),
    st.tuples(
        st.just("data_value"),
        st.integers(0, 9),
        st.integers(0, 10**6),
        st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e-45]),
    ),
    st.tuples(
        st.just("nest"),
        st.sampled_from(["model", "compile", "training", "header"]),
        st.sampled_from([100, 10**5]),
    ),
    st.tuples(
        st.just("huge_list"),
        st.sampled_from(["tensor_shape", "input_shape", "target_shape", "kernel_size"]),
        st.sampled_from([1000, 10**5]),
        st.sampled_from([1, 2, 0, 2**62, "pad"]),
    ),
)
raw_edits = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("length"), st.sampled_from([0, 1, 7, 2**32, 2**63, 2**64 - 1])),
)
file_cases = st.tuples(
    st.sampled_from(["dense", "conv", "pool"]),
    st.one_of(
        st.lists(edits, min_size=1, max_size=3),
        st.lists(raw_edits, min_size=1, max_size=2),
    ),
)


def _tensors(header):
    return sorted(k for k in header if k != "__metadata__")


def _edit_json_text(meta, key, change):
    """Applies `change` to the JSON object in metadata string `key`, if it is one."""
    try:
        value = json.loads(meta[key])
    except (KeyError, TypeError, ValueError, RecursionError):
        return
    if isinstance(value, dict):
        change(value)
        meta[key] = json.dumps(value, separators=(",", ":"))


def mutate(blob: bytes, ops) -> bytes:
    """The file `blob` changed by `ops` (the `edits` or `raw_edits` strategies)."""
    if ops[0][0] in ("flip", "truncate", "append", "length"):
        out = bytearray(blob)
        for op in ops:
            if op[0] == "flip" and out:
                out[int(op[1] * len(out))] ^= op[2]
            elif op[0] == "truncate":
                del out[int(op[1] * len(out)) :]
            elif op[0] == "append":
                out += op[1]
            elif len(out) >= 8:
                out[:8] = op[1].to_bytes(8, "little")
        return bytes(out)
    header, data = split_file(blob)
    data, raw = bytearray(data), None
    meta = header["__metadata__"]
    for op in ops:
        try:
            raw = _apply(op, header, meta, data) or raw
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError):
            pass  # the edit does not apply to this file (an earlier edit removed its target)
    checksum = not any(op[0] in ("meta_set", "meta_drop") and op[1] == "sha256" for op in ops)
    return join_file(header, bytes(data), raw, checksum)


def _apply(op, header, meta, data):
    """Applies one edit in place; returns the raw header text of a "nest" edit."""
    kind, names = op[0], _tensors(header)
    if kind == "tensor_field" and names:
        entry = header[names[op[1] % len(names)]]
        if isinstance(entry, dict):
            entry[op[2]] = op[3]
    elif kind == "tensor_drop" and names:
        del header[names[op[1] % len(names)]]
    elif kind == "tensor_add":
        header[op[1]] = op[2]
    elif kind == "meta_set":
        meta[op[1]] = op[2]
    elif kind == "meta_drop":
        meta.pop(op[1], None)
    elif kind == "layer_config":

        def change(model, index=op[1], key=op[2], value=op[3]):
            layers = model.get("config", {}).get("layers")
            if not isinstance(layers, list) or not layers:
                return
            layer = layers[index % len(layers)] if index >= 0 else layers[0]
            if not isinstance(layer, dict):
                return
            if key in ("class_name", "config"):
                layer[key] = value
            elif isinstance(layer.get("config"), dict):
                layer["config"][key] = value

        _edit_json_text(meta, "model", change)
    elif kind == "model_config":
        _edit_json_text(
            meta, "model", lambda m, k=op[1], v=op[2]: m.get("config", {}).__setitem__(k, v)
        )
    elif kind == "compile":

        def change(c, key=op[1], value=op[2]):
            if key in ("loss", "metrics"):
                c[key] = value
            elif isinstance(c.get("optimizer"), dict):
                target = c["optimizer"]
                if key != "class_name":
                    target = target.setdefault("config", {})
                if isinstance(target, dict):
                    target[key] = value

        _edit_json_text(meta, "compile", change)
    elif kind == "training":
        _edit_json_text(meta, "training", lambda t, k=op[1], v=op[2]: t.__setitem__(k, v))
    elif kind == "data_value" and names:
        entry = header[names[op[1] % len(names)]]
        begin, end = entry["data_offsets"]
        if end > begin:
            at = begin + 4 * (op[2] % ((end - begin) // 4))
            data[at : at + 4] = np.float32(op[3]).tobytes()
    elif kind == "nest":
        deep = "[" * op[2] + "]" * op[2]
        if op[1] == "header":
            header["deep"] = _RAW
            return deep
        meta[op[1]] = deep
    elif kind == "huge_list":  # n copies of a value, or n ones before the list ("pad")

        def values(old, n=op[2], v=op[3]):
            return [1] * n + list(old) if v == "pad" else [v] * n

        where = op[1]
        if where == "tensor_shape" and names:
            entry = header[names[0]]
            entry["shape"] = values(entry["shape"])
        elif where == "input_shape":

            def change(m):
                m["config"]["input_shape"] = values(m["config"]["input_shape"])

            _edit_json_text(meta, "model", change)
        else:

            def change(model, key=where):
                for layer in model["config"]["layers"]:
                    if key in layer["config"]:
                        layer["config"][key] = values(layer["config"][key])

            _edit_json_text(meta, "model", change)
    return None


def load_case(path):
    try:
        model = dc.models.load_model(path)
    except Exception as e:
        if not isinstance(e, OSError):
            check_clear(e)
        elif not str(e).strip():
            raise UnclearError(f"raised {type(e).__name__} without a message") from None
        return
    sample = model.input_shape[1:] if model.input_shape else None
    expect(
        sample is not None
        and 1 <= len(sample) <= 16
        and all(isinstance(d, int) and d > 0 for d in sample)
        and math.prod(sample) <= 10**6,
        f"loaded a model with an unusable input shape ({len(sample or ())} axes): "
        f"{str(sample)[:120]}",
    )
    out = model.output_shape
    x, y = _train_batch(model)
    try:
        result = model.predict(x, verbose=0)
    except Exception as e:
        raise WrongResult(f"the loaded model's predict raised {e!r}") from None
    results = result if isinstance(result, list) else [result]
    outs = out if isinstance(out, list) else [out]
    expect(
        [r.shape for r in results] == [(2, *o[1:]) for o in outs],
        f"the loaded model's predict returned shapes {[r.shape for r in results]}; "
        f"output_shape is {out}",
    )
    expect(all(all_finite(r) for r in results), "the loaded model's predict returned NaN or inf")
    if model.compiled and model._out.trained:
        rate = float(model.optimizer.learning_rate)
        expect(math.isfinite(rate), f"loaded a non-finite learning rate {rate}")
        if abs(rate) > 1e3:
            return  # a valid but huge learning rate: training may diverge, as asked
        try:
            loss = model.train_on_batch(x, y)
        except Exception as e:  # the file may name another (valid) loss than x, y suit
            check_clear(e)
            return
        expect(all_finite(loss), f"a training step of the loaded model gave loss {loss}")
        expect(
            all(all_finite(w) for w in model.get_weights()),
            "a training step of the loaded model left NaN or inf weights (its optimizer "
            "state or hyperparameters are invalid)",
        )
        after = model.predict(x, verbose=0)
        after = after if isinstance(after, list) else [after]
        expect(all(all_finite(r) for r in after), "predict after a step gave NaN or inf")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_scratch")


def _run_file_case(model_files, scratch, case):
    name, ops = case
    if not ops:
        blob = model_files[name]
    else:
        blob = mutate(model_files[name], ops)
    digest = hashlib.sha256(blob).hexdigest()[:16]
    path = scratch / f"{name}-{digest}.deepcore"
    path.write_bytes(blob)
    run_isolated(
        load_case,
        str(path),
        seconds=5,
        megabytes=256,
        reproduce=f"python -X faulthandler -c 'import deepcore as dc; "
        f"dc.models.load_model({json.dumps(str(path))})'  # the file is kept",
    )
    path.unlink()


KNOWN_FILE_CASES = [
    ("dense", []),
    ("conv", []),
    ("pool", []),
    ("dense", [("layer_config", 0, "units", 2**26)]),
    ("dense", [("layer_config", 0, "units", 2**62)]),
    ("dense", [("layer_config", 0, "units", OVERFLOW)]),
    ("dense", [("huge_list", "input_shape", 10**5, 1)]),
    ("dense", [("huge_list", "input_shape", 10**5, "pad")]),
    ("conv", [("huge_list", "input_shape", 10**5, "pad")]),
    ("dense", [("huge_list", "tensor_shape", 10**5, 1)]),
    ("dense", [("huge_list", "tensor_shape", 10**5, 2**62)]),  # took 23 s (quadratic product)
    ("conv", [("huge_list", "kernel_size", 10**5, 1)]),
    ("pool", [("huge_list", "target_shape", 10**5, "pad")]),
    ("dense", [("huge_list", "tensor_shape", 10**5, "pad")]),
    ("dense", [("model_config", "input_shape", [OVERFLOW, 7])]),
    ("dense", [("training", "iterations", -5)]),
    ("dense", [("training", "iterations", 2**64)]),
    ("dense", [("training", "iterations", 2**63 - 1)]),  # the next step overflows
    ("dense", [("training", "learning_rate", math.nan)]),
    ("dense", [("training", "learning_rate", -1.0)]),
    ("dense", [("compile", "learning_rate", math.nan)]),
    ("dense", [("compile", "beta_1", 1.0)]),
    ("dense", [("data_value", 4, 0, math.nan)]),  # optimizer.slots
    ("dense", [("data_value", 4, 99, -1.0)]),  # Adam's second moments (v)
    ("conv", [("data_value", 5, 0, -1.0)]),  # BatchNormalization's moving_variance
    ("dense", [("nest", "model", 10**5)]),
    ("dense", [("nest", "header", 10**5)]),
    ("dense", [("tensor_field", 0, "data_offsets", [0, 2**64])]),
    ("dense", [("length", 2**64 - 1)]),
]


@pytest.mark.parametrize("case", KNOWN_FILE_CASES, ids=repr)
def test_known_file_cases(model_files, scratch, case):
    _run_file_case(model_files, scratch, case)


@FUZZ
@given(case=file_cases)
def test_model_files(model_files, scratch, case):
    _run_file_case(model_files, scratch, case)
