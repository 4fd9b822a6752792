"""Fuzz: random fit/predict inputs (dtypes, layouts, shapes, values) give a clear error or
a correct result (see fuzzing.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from fuzzing import (
    FUZZ,
    all_finite,
    check_clear,
    expect,
    run_isolated,
)
from hypothesis import example, given
from hypothesis import strategies as st

import deepcore as dc

# --------------------------------------------------------------- (b) fit/predict inputs
DTYPES = [
    "float16",
    "float32",
    "float64",
    "longdouble",
    ">f4",
    "int8",
    "int16",
    "int32",
    "int64",
    ">i8",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
    "object",
    "U4",
    "S4",
    "datetime64[s]",
    "timedelta64[s]",
]
LAYOUTS = [
    "c",
    "fortran",
    "strided",
    "reversed",
    "reversed_columns",
    "broadcast",
    "unaligned",
    "readonly",
    "list",
    "tuple",
    "ragged_list",
    "masked",
    "matrix",
]
LABELS = [
    "labels",
    "labels_column",
    "float_labels",
    "out_of_range",
    "negative",
    "nan",
    "wrong_length",
    "one_hot",
    "strings",
    "none",
    "list",
    "empty",
]
VALID_IO = {  # each case: these, with 0 to 3 of them replaced by odd values
    "rows": 5,
    "form": "2d",
    "features": 4,
    "dtype": "float32",
    "layout": "c",
    "special": None,
    "y": "labels",
    "batch_size": None,
    "epochs": 1,
    "validation_split": 0.0,
}
ODD_IO = {
    "rows": st.sampled_from([1, 2, 3, 7, 33, 0]),
    "form": st.sampled_from(["1d", "0d", "3d", "none"]),
    "features": st.sampled_from([0, 1, 3, 5]),
    "dtype": st.sampled_from(DTYPES),
    "layout": st.sampled_from(LAYOUTS),
    "special": st.sampled_from(["nan", "inf", "-inf", "huge", "extreme"]),
    "y": st.sampled_from(LABELS),
    "batch_size": st.sampled_from(
        [
            1,
            2,
            3,
            32,
            0,
            -1,
            2**31,
            2**62,
            2**63 - 1,
            2**63,
            2**64,
            1.5,
            "4",
            True,
            np.int64(3),
            np.uint64(2**64 - 1),
            math.nan,
        ]
    ),
    "epochs": st.sampled_from([2, 0, -1, 1.5, None, True, "2"]),
    "validation_split": st.sampled_from([0.25, 0.5, 1.0, -0.5, math.nan]),
}
OPS = ["predict", "predict_on_batch", "call", "evaluate", "fit", "train_on_batch"]


@st.composite
def io_cases(draw):
    case = dict(VALID_IO, op=draw(st.sampled_from(OPS)), seed=draw(st.integers(0, 3)))
    for key in draw(st.lists(st.sampled_from(sorted(ODD_IO)), max_size=3, unique=True)):
        case[key] = draw(ODD_IO[key])
    return case


def make_array(spec):
    """An input as `spec` describes it (deterministic), and whether its values are
    moderate (finite, |v| <= 1e4: a finite result is then required)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # overflow in casts, complex to real: intended
        return _make_array(spec)


def _make_array(spec):
    rng = np.random.default_rng(spec["seed"])
    n, f, form = spec["rows"], spec["features"], spec["form"]
    shape = {"2d": (n, f), "1d": (f,), "0d": (), "3d": (n, f, 1), "none": None}[form]
    if shape is None:
        return None, True
    base = rng.standard_normal(shape) * 2
    dtype = np.dtype(spec["dtype"])
    special = spec["special"]
    if dtype.kind == "f" or dtype.kind == "c":
        if special in ("nan", "inf", "-inf") and base.size:
            base.flat[rng.integers(base.size)] = float(special)
        elif special == "huge" and base.size:
            base.flat[rng.integers(base.size)] = 1e30
        elif special == "extreme" and base.size:
            base.flat[rng.integers(base.size)] = 1e300
        x = base.astype(dtype) if dtype.kind == "f" else (base + 1j * base).astype(dtype)
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = (
            (info.min, info.max)
            if special in ("huge", "extreme")
            else (max(info.min, -3), min(info.max, 3))
        )
        x = rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype.newbyteorder("="))
        x = x.astype(dtype)
    elif dtype.kind == "b":
        x = base > 0
    elif dtype.kind == "O":
        x = base.astype(object)
        if special and base.size:
            x.flat[0] = None if special == "nan" else "1.5"
    elif dtype.kind in "US":
        x = base.round(1).astype(dtype)
    else:  # datetime64, timedelta64
        x = rng.integers(0, 100, size=shape).astype(dtype)
    x = np.asarray(x)  # 0-d operations give NumPy scalars
    layout = spec["layout"]
    if layout == "fortran":
        x = np.asfortranarray(x)
    elif layout == "strided" and x.ndim >= 1:
        wide = np.repeat(np.repeat(x, 2, axis=0), 2, axis=-1) if x.ndim >= 2 else np.repeat(x, 2)
        x = wide[::2, ::2] if x.ndim >= 2 else wide[::2]
    elif layout == "reversed" and x.ndim >= 1:
        x = x[::-1]
    elif layout == "reversed_columns" and x.ndim >= 2:
        x = x[:, ::-1]
    elif layout == "broadcast" and x.ndim >= 1 and len(x):
        x = np.broadcast_to(x[:1], x.shape)
    elif layout == "unaligned" and x.dtype.kind != "O" and x.dtype.itemsize > 1:
        buffer = np.zeros(x.nbytes + 1, np.uint8)[1:]
        view = buffer.view(x.dtype).reshape(x.shape)
        view[...] = x
        x = view
    elif layout == "readonly":
        x = x.copy()
        x.flags.writeable = False
    elif layout == "list":
        x = x.tolist()
    elif layout == "tuple" and x.ndim >= 1:
        x = tuple(x.tolist())
    elif layout == "ragged_list" and x.ndim >= 2 and len(x) >= 2:
        x = x.tolist()
        x[-1] = x[-1][:-1]
    elif layout == "masked":
        x = np.ma.masked_array(x, mask=np.zeros(np.shape(x), bool))
    elif layout == "matrix" and np.ndim(x) == 2:
        x = np.asmatrix(x)
    try:
        values = np.asarray(x, dtype=np.float64)
        moderate = bool(np.isfinite(values).all() and (np.abs(values) <= 1e4).all())
    except (TypeError, ValueError, OverflowError):
        moderate = False
    return x, moderate


def make_labels(kind, n):
    labels = np.arange(n) % 3
    return {
        "labels": labels,
        "labels_column": labels[:, None],
        "float_labels": labels + 0.5,
        "out_of_range": labels + 3,
        "negative": labels - 3,
        "nan": np.where(labels == 0, np.nan, labels),
        "wrong_length": np.arange(n + 1) % 3,
        "one_hot": np.eye(3)[labels],
        "strings": labels.astype(str),
        "none": None,
        "list": labels.tolist(),
        "empty": np.zeros(0),
    }[kind]


def _io_model():
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def io_case(model, case):
    x, moderate = make_array(case)
    try:
        rows = np.shape(x)[0] if np.ndim(x) >= 1 else None
    except ValueError:  # a ragged list
        rows = case["rows"]
    y = make_labels(case["y"], rows or 0)
    op, batch_size = case["op"], case["batch_size"]
    try:
        if op == "predict":
            result = model.predict(x, batch_size=batch_size, verbose=0)
        elif op == "predict_on_batch":
            result = model.predict_on_batch(x)
        elif op == "call":
            result = model(x)
        elif op == "evaluate":
            result = model.evaluate(x, y, batch_size=batch_size, verbose=0)
        elif op == "train_on_batch":
            result = model.train_on_batch(x, y)
        else:
            result = model.fit(
                x,
                y,
                batch_size=batch_size,
                epochs=case["epochs"],
                verbose=0,
                validation_split=case["validation_split"],
            )
    except Exception as e:
        check_clear(e)
        return
    if op in ("predict", "predict_on_batch", "call"):
        expect(isinstance(result, np.ndarray), f"{op} returned {type(result).__name__}")
        expect(
            result.shape == (rows, 3),
            f"{op} returned shape {result.shape} for an input "
            f"of shape {np.shape(x)}; expected {(rows, 3)}",
        )
        expect(not moderate or all_finite(result), f"{op} returned NaN or inf")
    elif op == "fit":
        losses = result.history.get("loss", [])
        expect(not moderate or all_finite(losses), f"fit logged a non-finite loss {losses}")
    else:
        expect(not moderate or all_finite(result), f"{op} returned {result}")
    # Training on finite but huge inputs may overflow float32 and diverge, as in Keras;
    # anything else leaves the weights finite.
    diverged = op in ("fit", "train_on_batch") and not moderate
    expect(
        diverged or all(all_finite(w) for w in model.get_weights()), f"{op} left NaN or inf weights"
    )


@pytest.fixture(scope="module")
def io_model():
    dc.utils.set_random_seed(7)
    return _io_model()


def _io(op, **changes):
    return dict(VALID_IO, op=op, seed=0, **changes)


KNOWN_IO_CASES = [
    _io("predict", layout="unaligned"),
    _io("fit", layout="unaligned"),
    _io("predict", batch_size=2**63),
    _io("predict", batch_size=2**62),
    _io("fit", dtype="float64", layout="fortran", batch_size=2**62, rows=7),
    _io("fit", batch_size=2**63),
    _io("train_on_batch", layout="unaligned"),
    _io("evaluate", batch_size=2**63 - 1),
    _io("predict", layout="broadcast"),
]


@pytest.mark.parametrize(
    "case", KNOWN_IO_CASES, ids=lambda c: f"{c['op']}-{c['layout']}-{c['batch_size']}"
)
def test_known_io_cases(io_model, case):
    run_isolated(io_case, io_model, case, seconds=10, megabytes=256)


@FUZZ
@given(case=io_cases())
@example(case=_io("fit", layout="reversed"))
def test_fit_and_predict_inputs(io_model, case):
    run_isolated(io_case, io_model, case, seconds=10, megabytes=256)
