"""Arguments that reach the C++ engine are checked in Python first: a ValueError (or a
TypeError for a value of the wrong kind) naming the layer, the argument and the received
value, never a raw binding TypeError ("incompatible function arguments"), an
OverflowError, or a NaN passed on to training."""

import re

import numpy as np
import pytest

import deepcore as dc

L = dc.layers
MAX = 2**31 - 1  # the largest size: the BLAS library takes 32-bit ints

# past int64 (the binding's own range), past uint64, below int64, a NumPy uint64 past
# int64, and just past the size limit
HUGE = [2**63, 2**64, -(2**63) - 1, np.uint64(2**63), MAX + 1]
HUGE_IDS = ["2**63", "2**64", "-2**63-1", "uint64(2**63)", "2**31"]


def _model(units_out=3):
    m = dc.Sequential(
        [dc.Input(shape=(4,)), L.Dense(5, activation="relu"), L.Dense(units_out, "softmax")]
    )
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m


@pytest.fixture
def data(rng):
    x = rng.normal(size=(10, 4)).astype(np.float32)
    labels = np.arange(10) % 3
    return x, np.eye(3, dtype=np.float32)[labels]


def _id(value) -> str:
    return str(value)[:12]


def _received(name, value) -> str:
    return re.escape(f"Received: {name}={value!r}")


def _still_works(model, x, y):
    h = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])


# ------------------------------------------------------------ layer sizes and windows
# (layer class, argument, a model with the layer built from the value, sample shape)
LAYER_SIZES = {
    "Dense units": (
        "Dense",
        "units",
        lambda v: [dc.Input(shape=(4,)), L.Dense(v)],
        r"`units` must be a positive integer <= 2147483647\. ",
    ),
    "Conv2D filters": (
        "Conv2D",
        "filters",
        lambda v: [dc.Input(shape=(8, 8, 3)), L.Conv2D(v, 3)],
        r"`filters` must be a positive integer <= 2147483647\. ",
    ),
    "Conv2D kernel_size": (
        "Conv2D",
        "kernel_size",
        lambda v: [dc.Input(shape=(8, 8, 3)), L.Conv2D(2, v)],
        r"`kernel_size` must be a positive integer <= 2147483647 or a pair of them\. ",
    ),
    "Conv2D strides": (
        "Conv2D",
        "strides",
        lambda v: [dc.Input(shape=(8, 8, 3)), L.Conv2D(2, 3, strides=v)],
        r"`strides` must be a positive integer <= 2147483647 or a pair of them\. ",
    ),
    "MaxPooling2D pool_size": (
        "MaxPooling2D",
        "pool_size",
        lambda v: [dc.Input(shape=(8, 8, 3)), L.MaxPooling2D(v)],
        r"`pool_size` must be a positive integer <= 2147483647 or a pair of them\. ",
    ),
    "MaxPooling2D strides": (
        "MaxPooling2D",
        "strides",
        lambda v: [dc.Input(shape=(8, 8, 3)), L.MaxPooling2D(2, strides=v)],
        r"`strides` must be a positive integer <= 2147483647 or a pair of them\. ",
    ),
    "AveragePooling2D pool_size": (
        "AveragePooling2D",
        "pool_size",
        lambda v: [dc.Input(shape=(8, 8, 3)), L.AveragePooling2D(v)],
        r"`pool_size` must be a positive integer <= 2147483647 or a pair of them\. ",
    ),
    "AveragePooling2D strides": (
        "AveragePooling2D",
        "strides",
        lambda v: [dc.Input(shape=(8, 8, 3)), L.AveragePooling2D(2, strides=v)],
        r"`strides` must be a positive integer <= 2147483647 or a pair of them\. ",
    ),
    "Reshape target_shape": (
        "Reshape",
        "target_shape",
        lambda v: [dc.Input(shape=(4,)), L.Reshape((v,))],
        r"`target_shape` must be a tuple of positive integers \(one may be -1\), "
        r"each <= 2147483647 .*",
    ),
    "Input shape": (
        "InputLayer",
        "shape",
        lambda v: [dc.Input(shape=(v,)), L.Dense(2)],
        r"`shape` must be a tuple of positive integers, each <= 2147483647 .*",
    ),
    "input_shape": (
        "Dense",
        "input_shape",
        lambda v: [L.Dense(2, input_shape=(v,))],
        r"`input_shape` must be a tuple of positive integers, each <= 2147483647 .*",
    ),
    "input_dim": (
        "Dense",
        "input_dim",
        lambda v: [L.Dense(2, input_dim=v)],
        r"`input_dim` must be a positive integer <= 2147483647\. ",
    ),
}


@pytest.mark.parametrize("value", HUGE, ids=HUGE_IDS)
@pytest.mark.parametrize("case", LAYER_SIZES.values(), ids=LAYER_SIZES.keys())
def test_huge_layer_sizes_are_refused_naming_layer_argument_and_value(case, value):
    cls, name, layers, message = case
    pairs = name in ("kernel_size", "strides", "pool_size")
    shapes = name in ("target_shape", "shape", "input_shape")
    shown = (value,) if shapes else value
    with pytest.raises(ValueError) as info:
        dc.Sequential(layers(value))
    text = str(info.value)
    assert re.search(rf"^{cls} '\w+': {message}", text), text
    assert re.search(_received(name, shown) + "$", text), text
    # one entry of a pair too
    if pairs:
        with pytest.raises(ValueError, match=message + _received(name, (3, value))):
            dc.Sequential(layers((3, value)))


def test_the_largest_size_is_taken():
    assert L.Dense(MAX).units == MAX
    assert L.Conv2D(MAX, (1, MAX), strides=MAX).kernel_size == (1, MAX)
    assert L.MaxPooling2D(MAX).pool_size == (MAX, MAX)
    assert L.Reshape((MAX, -1)).target_shape == (MAX, -1)
    assert dc.Input(shape=(np.int64(MAX), 1)).shape == (None, MAX, 1)
    assert dc.Input(shape=(4,), batch_size=MAX).shape == (MAX, 4)


@pytest.mark.parametrize("target", [(2.0, -1), ("2", 2), (True, 4), (2, None), 4.0])
def test_reshape_target_shape_entries_are_ints(target):
    # int() used to turn 2.0, "2" and True into sizes
    with pytest.raises(
        ValueError, match=r"Reshape '\w+': `target_shape` must be a tuple of positive integers"
    ):
        L.Reshape(target)


def test_input_batch_size_is_a_size():
    with pytest.raises(
        ValueError,
        match=r"InputLayer '\w+': `batch_size` must be a positive integer <= 2147483647\. "
        + _received("batch_size", 2**63),
    ):
        dc.Input(shape=(4,), batch_size=2**63)


# ------------------------------------------------------------------------ batch sizes
@pytest.mark.parametrize("value", HUGE, ids=HUGE_IDS)
@pytest.mark.parametrize(
    "method,name",
    [
        ("fit", "batch_size"),
        ("fit", "validation_batch_size"),
        ("fit", "steps_per_epoch"),
        ("evaluate", "batch_size"),
        ("predict", "batch_size"),
    ],
)
def test_huge_batch_sizes_are_refused(data, method, name, value):
    x, y = data
    m = _model()
    before = m.get_weights()
    args = (x,) if method == "predict" else (x, y)
    kwargs = {name: value}
    if method == "fit":
        kwargs.update(verbose=0, validation_split=0.3)
    with pytest.raises(
        ValueError,
        match=rf"^`{name}` must be a positive integer <= 2147483647\. "
        + _received(name, value)
        + "$",
    ):
        getattr(m, method)(*args, **kwargs)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    _still_works(m, x, y)


# --------------------------------------------------------------- class and sample weights
BAD_WEIGHTS = {
    "nan": (float("nan"), ValueError),
    "inf": (float("inf"), ValueError),
    "-inf": (-float("inf"), ValueError),
    "negative": (-0.5, ValueError),
    "past float32": (1e39, ValueError),
    "huge int": (10**400, ValueError),
    "None": (None, TypeError),
    "string": ("2", TypeError),
    "list": ([1.0], TypeError),
}


@pytest.mark.parametrize("method", ["fit", "train_on_batch"])
@pytest.mark.parametrize("bad", BAD_WEIGHTS.values(), ids=BAD_WEIGHTS.keys())
def test_bad_class_weight_values_are_refused_before_training(data, method, bad):
    x, y = data
    value, error = bad
    m = _model()
    before = m.get_weights()
    kwargs = {"verbose": 0} if method == "fit" else {}
    what = "finite numbers >= 0" if error is ValueError else "real numbers"
    with pytest.raises(
        error,
        match=rf"`class_weight` values must be {what}.*"
        + re.escape(f"Received: class_weight[1]={value!r}")
        + "$",
    ):
        getattr(m, method)(x, y, class_weight={0: 1.0, 1: value, 2: 2.0}, **kwargs)
    for a, b in zip(m.get_weights(), before):  # nothing trained on NaN weights
        np.testing.assert_array_equal(a, b)
    _still_works(m, x, y)


def test_class_weight_of_a_class_not_in_the_batch_is_checked_too(data):
    x, y = data
    with pytest.raises(ValueError, match=r"Received: class_weight\[7\]=nan$"):
        _model().fit(x, y, class_weight={0: 1, 1: 1, 2: 1, 7: float("nan")}, verbose=0)


@pytest.mark.parametrize("method", ["fit", "train_on_batch"])
@pytest.mark.parametrize("class_weight", [[1.0, 1.0, 1.0], np.ones(3), 1.0, "balanced"])
def test_class_weight_must_be_a_dict(data, method, class_weight):
    x, y = data
    kwargs = {"verbose": 0} if method == "fit" else {}
    with pytest.raises(TypeError, match=r"`class_weight` must be a dict \{class: weight\}"):
        getattr(_model(), method)(x, y, class_weight=class_weight, **kwargs)


def test_good_class_weights_still_work(data):
    x, y = data
    m = _model()
    cw = {np.int64(0): 1, 1: np.float32(0.5), 2: 0}  # NumPy keys and values, a zero weight
    assert np.isfinite(m.train_on_batch(x, y, class_weight=cw))
    _still_works(m, x, y)


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), -float("inf"), -1.0, 1e39],
    ids=["nan", "inf", "-inf", "negative", "past float32"],
)
@pytest.mark.parametrize("method", ["fit", "train_on_batch", "evaluate", "validation_data"])
def test_bad_sample_weights_name_the_sample_and_value(data, method, value):
    x, y = data
    sw = np.ones(10)
    sw[3] = value
    m = _model()
    match = r"`sample_weight` values must be finite numbers >= 0.*" + re.escape(
        f"Received: sample_weight[3]={np.float64(value)}"
    )
    with pytest.raises(ValueError, match=match):
        if method == "validation_data":
            m.fit(x, y, validation_data=(x, y, sw), verbose=0)
        elif method == "fit":
            m.fit(x, y, sample_weight=sw, verbose=0)
        elif method == "evaluate":
            m.evaluate(x, y, sample_weight=sw, verbose=0)
        else:
            m.train_on_batch(x, y, sample_weight=sw)
    _still_works(m, x, y)


def test_sample_weights_that_are_not_numbers(data):
    x, y = data
    sw = np.array([1.0] * 4 + [None] + [1.0] * 5, dtype=object)
    with pytest.raises(
        TypeError, match=r"`sample_weight` values must be real numbers.*sample_weight\[4\]=None"
    ):
        _model().fit(x, y, sample_weight=sw, verbose=0)


# ----------------------------------------------------------------- other layer arguments
@pytest.mark.parametrize("seed", [-1, np.int64(-1), 2**64, np.float64(3.0), True], ids=_id)
def test_dropout_seed_is_a_uint64(seed):
    with pytest.raises(
        ValueError,
        match=r"Dropout '\w+': `seed` must be None or an int in \[0, 2\*\*64\)\. "
        + _received("seed", seed),
    ):
        L.Dropout(0.5, seed=seed)


def test_dropout_takes_numpy_rates_and_the_largest_seed():
    layer = L.Dropout(np.float32(0.25), seed=np.uint64(2**64 - 1))
    assert layer.rate == 0.25 and layer.seed == 2**64 - 1
    m = dc.Sequential([dc.Input(shape=(4,)), layer, L.Dense(2)])
    m.compile("sgd", "mse")
    m.fit(np.ones((4, 4)), np.ones((4, 2)), verbose=0)


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), 10**400, None, True], ids=_id)
def test_dropout_bad_rate(rate):
    with pytest.raises(
        ValueError, match=r"`rate` must be in \[0, 1\)\. " + _received("rate", rate)
    ):
        L.Dropout(rate)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"momentum": "0.9"},
        {"momentum": None},
        {"momentum": float("nan")},
        {"momentum": 10**400},
        {"momentum": -0.1},
        {"epsilon": float("inf")},
        {"epsilon": None},
        {"epsilon": "1e-3"},
        {"epsilon": 0},
        {"epsilon": 10**400},
    ],
    ids=_id,
)
def test_batch_normalization_momentum_and_epsilon(kwargs):
    ((name, value),) = kwargs.items()
    bound = r">= 0\.0 and <= 1\.0" if name == "momentum" else r"> 0\.0"
    with pytest.raises(
        ValueError,
        match=rf"^BatchNormalization '\w+': `{name}` must be a number {bound}\. "
        + _received(name, value),
    ):
        L.BatchNormalization(**kwargs)
    assert L.BatchNormalization(momentum=1, epsilon=np.float32(1e-5)).momentum == 1.0


@pytest.mark.parametrize("layer,name", [(L.LeakyReLU, "negative_slope"), (L.ELU, "alpha")])
@pytest.mark.parametrize("value", [10**400, float("nan"), float("inf"), None, "0.1", -1], ids=_id)
def test_activation_layer_parameters(layer, name, value):
    # 10**400 used to raise a raw OverflowError
    with pytest.raises(
        ValueError,
        match=rf"^{layer.__name__} '\w+': `{name}` must be a number >= 0\.0\. "
        + _received(name, value),
    ):
        layer(value)


def test_an_int_too_large_for_a_float_is_a_value_error():
    # check_number is shared: the optimizers took 10**400 to an OverflowError
    with pytest.raises(ValueError, match=r"`learning_rate` must be a number > 0"):
        dc.optimizers.Adam(learning_rate=10**400)


# --------------------------------------------------------------------- fit's other counts
@pytest.mark.parametrize("value", [-1, 0.5, "1", None, True], ids=_id)
def test_bad_initial_epoch(data, value):
    x, y = data
    m = _model()
    with pytest.raises(
        ValueError,
        match=r"^`initial_epoch` must be an integer >= 0\. " + _received("initial_epoch", value),
    ):
        m.fit(x, y, epochs=2, initial_epoch=value, verbose=0)
    h = m.fit(x, y, epochs=np.int64(2), initial_epoch=np.int64(1), verbose=0)
    assert h.epoch == [1]


@pytest.mark.parametrize("value", [2.0, "3", None, True, -(2**63) - 1], ids=_id)
def test_bad_epochs(data, value):
    x, y = data
    with pytest.raises(
        ValueError, match=r"^`epochs` must be an integer >= 0\. " + _received("epochs", value)
    ):
        _model().fit(x, y, epochs=value, verbose=0)


@pytest.mark.parametrize("value", [0, 1.5, "2", 2**63, np.uint64(2**63)], ids=_id)
def test_bad_validation_freq(data, value):
    x, y = data
    with pytest.raises(
        ValueError,
        match=r"^`validation_freq` must be a positive integer <= 2147483647\. "
        + _received("validation_freq", value),
    ):
        _model().fit(x, y, validation_split=0.3, validation_freq=value, verbose=0)


@pytest.mark.parametrize("value", ["0.2", None, float("nan"), 10**400, True], ids=_id)
def test_validation_split_that_is_not_a_number(data, value):
    x, y = data
    with pytest.raises(ValueError, match=r"`validation_split` must be in \[0, 1\)"):
        _model().fit(x, y, validation_split=value, verbose=0)


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
@pytest.mark.parametrize("verbose", [3, -1, 1.5, "silent", None, 2**63], ids=_id)
def test_bad_verbose(data, method, verbose, capsys):
    x, y = data
    m = _model()
    args = (x,) if method == "predict" else (x, y)
    with pytest.raises(
        ValueError,
        match=r"^`verbose` must be 'auto', 0, 1 or 2\. " + _received("verbose", verbose) + "$",
    ):
        getattr(m, method)(*args, verbose=verbose)
    for good in ("auto", 0, 1, 2, True, np.int64(0)):
        getattr(m, method)(*args, verbose=good)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True], ids=_id)
def test_set_random_seed_message(seed):
    with pytest.raises(
        ValueError, match=r"^`seed` must be an integer >= 0\. " + _received("seed", seed)
    ):
        dc.utils.set_random_seed(seed)
    dc.utils.set_random_seed(np.uint64(2**64 - 1))  # NumPy takes any size of seed


@pytest.mark.parametrize("shape", [(None, 2**63), (None, 4.5), (None, 0), "abc", (None,)])
def test_build_input_shape_is_checked(shape):
    m = dc.Sequential([dc.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"Model 'sequential': `input_shape` must be a tuple"):
        m.build(shape)
    assert not m.built


def test_a_long_steps_per_epoch_draws_its_rows_a_chunk_at_a_time(monkeypatch):
    # The epoch's row order is not drawn at once: 2**31 - 1 steps of 64 rows would be
    # 2**37 indices. A diverging run that TerminateOnNaN stops ends the epoch early.
    from deepcore.trainers import epoch_iterator

    m = dc.Sequential([dc.Input(shape=(2,)), dc.layers.Dense(1)])
    m.compile(dc.optimizers.SGD(learning_rate=1e10), "mse")
    taken = []
    real = epoch_iterator.RowStream.take
    monkeypatch.setattr(
        epoch_iterator.RowStream, "take", lambda self, n: taken.append(n) or real(self, n)
    )
    x, y = np.ones((100, 2), np.float32), np.full(100, 100.0, np.float32)
    h = m.fit(
        x,
        y,
        batch_size=64,
        steps_per_epoch=2**31 - 1,
        verbose=0,
        callbacks=[dc.callbacks.TerminateOnNaN()],
    )
    assert not np.isfinite(h.history["loss"][-1])
    assert taken and max(taken) <= epoch_iterator.StreamRows.chunk
