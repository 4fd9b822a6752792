"""Fuzz: random layer arguments and input shapes give a clear error or a model whose outputs
have the shape it reports (see fuzzing.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fuzzing import (
    FUZZ,
    OVERFLOW,
    WrongResult,
    _optional,
    all_finite,
    check_clear,
    expect,
    input_shapes,
    perturbed,
    reshape_targets,
    run_isolated,
)
from hypothesis import example, given
from hypothesis import strategies as st

import deepcore as dc
from deepcore.layers import image_preprocessing

small = st.integers(1, 4)
pairs = st.one_of(small, st.tuples(small, small))
paddings = st.sampled_from(["valid", "same"])
activation_names = st.sampled_from(
    [
        "relu",
        "sigmoid",
        "tanh",
        "softmax",
        "linear",
        None,
        "elu",
        "selu",
        "softplus",
        "swish",
        "gelu",
        "leaky_relu",
    ]
)
COMMON = ["name", "dtype", "trainable", "input_shape", "bogus"]
ENCODINGS = ["one_hot", "multi_hot", "count"]
RESIZINGS = ["bilinear", "nearest", "bicubic", "lanczos3", "lanczos5"]
GEOMETRIC = ["fill_mode", "interpolation", "seed", "fill_value", "data_format"]
LAYERS = {  # valid arguments; the arguments that may get odd values
    "Dense": (
        {
            "units": st.integers(1, 16),
            "activation": _optional(activation_names),
            "use_bias": _optional(st.booleans()),
        },
        [
            "units",
            "activation",
            "use_bias",
            "kernel_initializer",
            "bias_initializer",
            "kernel_regularizer",
            *COMMON,
        ],
    ),
    "Conv2D": (
        {
            "filters": st.integers(1, 4),
            "kernel_size": pairs,
            "strides": _optional(pairs),
            "padding": _optional(paddings),
            "activation": _optional(activation_names),
        },
        [
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "data_format",
            "activation",
            "use_bias",
            *COMMON,
        ],
    ),
    "MaxPooling2D": (
        {
            "pool_size": _optional(pairs),
            "strides": _optional(st.one_of(st.none(), pairs)),
            "padding": _optional(paddings),
        },
        ["pool_size", "strides", "padding", "data_format", *COMMON],
    ),
    "AveragePooling2D": (
        {
            "pool_size": _optional(pairs),
            "strides": _optional(st.one_of(st.none(), pairs)),
            "padding": _optional(paddings),
        },
        ["pool_size", "strides", "padding", "data_format", *COMMON],
    ),
    "GlobalAveragePooling2D": ({}, ["data_format", *COMMON]),
    "Reshape": ({}, ["target_shape", *COMMON]),
    "Flatten": ({}, ["data_format", *COMMON]),
    "Dropout": (
        {
            "rate": st.floats(0, 0.9),
            "seed": _optional(st.one_of(st.none(), st.integers(0, 2**64 - 1))),
        },
        ["rate", "noise_shape", "seed", *COMMON],
    ),
    "BatchNormalization": (
        {
            "momentum": _optional(st.floats(0, 1)),
            "epsilon": _optional(st.floats(1e-6, 1)),
            "center": _optional(st.booleans()),
            "scale": _optional(st.booleans()),
        },
        ["axis", "momentum", "epsilon", "center", "scale", *COMMON],
    ),
    "Activation": ({"activation": activation_names}, ["activation", *COMMON]),
    "Rescaling": (
        {"scale": st.floats(-4, 4), "offset": _optional(st.floats(-4, 4))},
        ["scale", "offset", *COMMON],
    ),
    "Normalization": (
        {
            "axis": _optional(st.sampled_from([-1, -2, None, 1, 2, (1, 2)])),
            "invert": _optional(st.booleans()),
        },
        ["axis", "mean", "variance", "invert", *COMMON],
    ),
    "CategoryEncoding": (
        {"num_tokens": st.integers(1, 6), "output_mode": _optional(st.sampled_from(ENCODINGS))},
        ["num_tokens", "output_mode", "sparse", *COMMON],
    ),
    "Discretization": (
        {
            "bin_boundaries": st.lists(st.floats(-3, 3), min_size=1, max_size=4).map(sorted),
            "output_mode": _optional(st.sampled_from(["int", *ENCODINGS])),
        },
        ["bin_boundaries", "num_bins", "epsilon", "output_mode", "sparse", *COMMON],
    ),
    "Resizing": (
        {
            "height": small,
            "width": small,
            "interpolation": _optional(st.sampled_from(RESIZINGS)),
            "crop_to_aspect_ratio": _optional(st.booleans()),
            "antialias": _optional(st.booleans()),
        },
        [
            "height",
            "width",
            "interpolation",
            "crop_to_aspect_ratio",
            "pad_to_aspect_ratio",
            "fill_mode",
            "fill_value",
            "antialias",
            "data_format",
            *COMMON,
        ],
    ),
    "CenterCrop": ({"height": small, "width": small}, ["height", "width", "data_format", *COMMON]),
    "RandomFlip": (
        {"mode": _optional(st.sampled_from(["horizontal", "vertical", "horizontal_and_vertical"]))},
        ["mode", "seed", "data_format", *COMMON],
    ),
    "RandomRotation": ({"factor": st.floats(0, 0.5)}, ["factor", *GEOMETRIC, *COMMON]),
    "RandomTranslation": (
        {"height_factor": st.floats(0, 0.5), "width_factor": st.floats(0, 0.5)},
        ["height_factor", "width_factor", *GEOMETRIC, *COMMON],
    ),
    "RandomZoom": (
        {"height_factor": st.floats(-0.5, 0.5)},
        ["height_factor", "width_factor", *GEOMETRIC, *COMMON],
    ),
    "RandomCrop": ({"height": small, "width": small}, ["height", "width", "seed", *COMMON]),
    "RandomContrast": ({"factor": st.floats(0, 1)}, ["factor", "value_range", "seed", *COMMON]),
    "RandomBrightness": (
        {"factor": st.floats(0, 1)},
        ["factor", "value_range", "seed", *COMMON],
    ),
}
IMAGE_LAYERS = (
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    *image_preprocessing.__all__,
)
FOLLOWERS = [
    (),
    (),
    ("Flatten",),
    ("Dense",),
    ("Flatten", "Dense"),
    ("GlobalAveragePooling2D",),
    ("Conv2D", "Flatten"),
]  # layers after the fuzzed one (image ones: 1x1 windows)
_FOLLOWER = {
    "Flatten": lambda: dc.layers.Flatten(),
    "Dense": lambda: dc.layers.Dense(2),
    "GlobalAveragePooling2D": lambda: dc.layers.GlobalAveragePooling2D(),
    "Conv2D": lambda: dc.layers.Conv2D(2, 1),
}


@st.composite
def layer_cases(draw):
    """(layer class name, constructor arguments, input shape, layers after it)."""
    name = draw(st.sampled_from(sorted(LAYERS)))
    shape = draw(input_shapes(name in IMAGE_LAYERS))
    valid, names = LAYERS[name]
    if name == "Reshape":
        valid = {"target_shape": reshape_targets(shape)}
    kwargs = draw(perturbed(valid, names))
    extra = draw(st.sampled_from(FOLLOWERS))
    return name, kwargs, shape, extra


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _window(n, k, s, same):
    if same:
        return -(-n // s)
    return (n - k) // s + 1 if n >= k else None


def reference_shape(layer, shape):
    """The output shape (Keras' rules, exact integers) of `layer` for a sample of
    `shape`, or None where no output exists (the model must refuse to build)."""
    name = type(layer).__name__
    if name in ("Dropout", "BatchNormalization", "Activation", "Rescaling"):
        return shape
    if name == "Normalization":
        rank = len(shape) + 1  # (the batch axis counts in Keras' axis)
        ok = all(-rank <= a < rank and a % rank != 0 for a in layer.axis)
        return shape if ok else None
    if name in ("CategoryEncoding", "Discretization"):
        depth = layer.num_tokens if name == "CategoryEncoding" else len(layer.bin_boundaries) + 1
        if len(shape) > 6:
            return None
        if layer.output_mode == "int":
            return shape
        if layer.output_mode == "one_hot":
            return (*(shape[:-1] if shape[-1] == 1 else shape), depth)
        return (*shape[:-1], depth)
    if name == "Dense":
        return (*shape[:-1], layer.units)
    if name == "Flatten":
        return (math.prod(shape),)
    if name == "Reshape":
        target, n = list(layer.target_shape), math.prod(shape)
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            if known <= 0 or n % known:
                return None
            target[target.index(-1)] = n // known
        return tuple(target) if math.prod(target) == n else None
    if len(shape) != 3:  # image layers: (height, width, channels)
        return None
    h, w, c = shape
    if name == "GlobalAveragePooling2D":
        return (c,)
    if name in ("Resizing", "CenterCrop", "RandomCrop"):
        return (layer.height, layer.width, c)
    if name.startswith("Random"):
        return shape
    if name == "Conv2D":
        (kh, kw), (sh, sw), channels = layer.kernel_size, layer.strides, layer.filters
    else:
        (kh, kw), (sh, sw), channels = layer.pool_size, layer.strides, c
    same = layer.padding == "same"
    oh, ow = _window(h, kh, sh, same), _window(w, kw, sw, same)
    return None if oh is None or ow is None else (oh, ow, channels)


def layer_case(name, kwargs, shape, extra):
    """Builds Input(shape) -> layer -> extra layers; the contract in the module doc."""
    rng = np.random.default_rng(0)
    L = dc.layers
    try:
        layer = getattr(L, name)(**kwargs)
    except Exception as e:
        check_clear(e)
        return
    try:
        copy = type(layer).from_config(layer.get_config())
    except Exception as e:
        raise WrongResult(f"from_config(get_config()) of a valid layer raised {e!r}") from None
    expect(repr(copy.get_config()) == repr(layer.get_config()), "get_config does not round-trip")
    followers = [_FOLLOWER[f]() for f in extra]
    try:
        model = dc.Sequential([dc.Input(shape=shape), layer, *followers])
        out = model.output_shape
    except Exception as e:
        check_clear(e, memory_ok=True)
        return
    # the model built. Predict first (a crash is the worst outcome, and reported as one),
    # then compare with the exact (unbounded) reference shapes.
    sample = tuple(int(d) for d in model.input_shape[1:])
    predicted = error = None
    if math.prod(sample) <= 10**5:  # else too large to feed a batch here
        x = rng.standard_normal((2, *sample)).astype(np.float32)
        try:
            predicted = model.predict(x, verbose=0)
        except Exception as e:
            error = e
    expected = sample
    for each in [layer, *followers]:
        expected = reference_shape(each, expected)
        if expected is None:
            raise WrongResult(
                f"built a model that has no valid output: layer {each.name!r} cannot take "
                f"its input; model.output_shape says {out}"
            )
    expect(
        out == (None, *expected),
        f"model.output_shape is {out}, the exact output shape is {(None, *expected)}",
    )
    if error is not None:
        if 2 * 4 * math.prod(expected) <= 256 * 2**20:  # an output that fits in memory
            raise WrongResult(f"predict on a valid batch of {x.shape} raised {error!r}")
        check_clear(error, memory_ok=True)
    elif predicted is not None:
        y = predicted
        expect(isinstance(y, np.ndarray), f"predict returned {type(y).__name__}")
        expect(
            y.shape == (2, *expected),
            f"predict returned shape {y.shape}, expected {(2, *expected)}",
        )
        expect(all_finite(y), "predict returned NaN or inf for a finite input")


def _layer_reproducer(name, kwargs, shape, extra):
    code = {
        "Flatten": "L.Flatten()",
        "Dense": "L.Dense(2)",
        "Conv2D": "L.Conv2D(2, 1)",
        "GlobalAveragePooling2D": "L.GlobalAveragePooling2D()",
    }
    followers = ", ".join(code[f] for f in extra)
    return (
        "python -X faulthandler - <<'EOF'\n"
        "from math import inf, nan\nimport numpy as np, deepcore as dc\nL = dc.layers\n"
        f"layer = L.{name}(**{kwargs!r})\n"
        f"model = dc.Sequential([dc.Input(shape={shape!r}), layer, {followers}])\n"
        "print(model.output_shape)\n"
        "x = np.ones((2, *model.input_shape[1:]), np.float32)\n"
        "print(model.predict(x, verbose=0).shape)\nEOF"
    )


def _run_layer_case(case):
    name, kwargs, shape, extra = case
    run_isolated(
        layer_case,
        name,
        kwargs,
        shape,
        extra,
        seconds=10,
        megabytes=1024,
        reproduce=_layer_reproducer(name, kwargs, shape, extra),
    )


# Known hard cases, run every time (as tests of their own: a failing explicit example would
# stop Hypothesis before it generates any).
KNOWN_LAYER_CASES = [
    ("Reshape", {"target_shape": (OVERFLOW, 7)}, (1,), ()),
    ("Reshape", {"target_shape": (OVERFLOW, 7)}, (1,), ("Flatten", "Dense")),
    ("Reshape", {"target_shape": (-1, OVERFLOW)}, (7,), ()),
    ("Reshape", {"target_shape": (OVERFLOW, 7, 1)}, (1,), ("GlobalAveragePooling2D",)),
    ("Reshape", {"target_shape": (OVERFLOW, 7, 1)}, (1,), ("Conv2D", "Flatten")),
    ("Flatten", {}, (OVERFLOW, 7), ()),
    ("Flatten", {}, (2**32, 2**32), ()),
    ("Dense", {"units": 2}, (OVERFLOW, 7, 1), ()),
    ("Dense", {"units": OVERFLOW}, (7,), ()),
    ("Dense", {"units": 2**63}, (2,), ()),
    ("Dense", {"units": 2**62}, (4,), ()),
    ("Dense", {"units": 3}, (2**63,), ()),
    ("Conv2D", {"filters": 2, "kernel_size": 2**63}, (4, 4, 1), ()),
    ("Conv2D", {"filters": OVERFLOW, "kernel_size": 1}, (1, 1, 7), ()),
    ("MaxPooling2D", {"pool_size": 2, "strides": 2**64}, (4, 4, 1), ()),
    ("AveragePooling2D", {"pool_size": 2**62, "padding": "same"}, (4, 4, 1), ()),
    ("GlobalAveragePooling2D", {}, (OVERFLOW, 7, 1), ()),
]


@pytest.mark.parametrize("case", KNOWN_LAYER_CASES, ids=repr)
def test_known_layer_cases(case):
    _run_layer_case(case)


@FUZZ
@given(case=layer_cases())
@example(case=("Dense", {"units": 3}, (4,), ("Flatten", "Dense")))
@example(case=("Conv2D", {"filters": 2, "kernel_size": 3}, (5, 5, 1), ("Flatten", "Dense")))
def test_layer_arguments_and_input_shapes(case):
    _run_layer_case(case)
