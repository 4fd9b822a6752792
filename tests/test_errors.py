"""Bad input raises ValueError/TypeError naming what was expected and what was received."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deepcore as dc


def _model(units_out=3, activation="softmax", loss="categorical_crossentropy", metrics=None):
    m = dc.Sequential(
        [
            dc.Input(shape=(4,)),
            dc.layers.Dense(5, activation="relu"),
            dc.layers.Dense(units_out, activation=activation),
        ]
    )
    m.compile(optimizer="adam", loss=loss, metrics=metrics)
    return m


@pytest.fixture
def data(rng):
    x = rng.normal(size=(10, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 10)
    return x, labels, np.eye(3, dtype=np.float32)[labels]


def _still_works(model, x, y):
    h = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict", "train_on_batch"])
def test_feature_count_mismatch(data, rng, method):
    x, _, y = data
    m = _model()
    bad = rng.normal(size=(10, 5))
    args = (bad,) if method == "predict" else (bad, y)
    with pytest.raises(ValueError, match=r"expected shape \(None, 4\).*received \(10, 5\)"):
        getattr(m, method)(*args)
    _still_works(m, x, y)


def test_input_rank_mismatch(data):
    x, _, _ = data
    m = _model()
    with pytest.raises(ValueError, match=r"expected shape \(None, 4\).*received \(10, 2, 2\)"):
        m.predict(x.reshape(10, 2, 2))


def test_integer_labels_with_categorical_crossentropy(data):
    x, labels, _ = data
    m = _model()
    with pytest.raises(
        ValueError,
        match=r"categorical_crossentropy.*\(10, 3\).*"
        r"y\.shape=\(10,\).*sparse_categorical_crossentropy",
    ):
        m.fit(x, labels, verbose=0)


def test_one_hot_labels_with_sparse_crossentropy(data):
    x, _, y = data
    m = _model(loss="sparse_categorical_crossentropy")
    with pytest.raises(
        ValueError,
        match=r"sparse_categorical_crossentropy.*integer class labels"
        r".*\(10,\).*y\.shape=\(10, 3\)",
    ):
        m.fit(x, y, verbose=0)


def test_wrong_number_of_label_columns(data):
    x, labels, _ = data
    m = _model()
    with pytest.raises(ValueError, match=r"expects y of shape \(10, 3\).*y\.shape=\(10, 2\)"):
        m.fit(x, np.eye(2)[labels % 2], verbose=0)
    with pytest.raises(ValueError, match=r"expects y of shape \(10, 3\).*y\.shape=\(10, 4\)"):
        m.evaluate(x, np.eye(4)[labels], verbose=0)


def test_binary_labels_wrong_shape(data):
    x, labels, _ = data
    m = _model(units_out=1, activation="sigmoid", loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"expects y of shape \(10, 1\).*y\.shape=\(10, 2\)"):
        m.fit(x, np.stack([labels % 2, labels % 2], axis=1), verbose=0)


@pytest.mark.parametrize(
    "bad,shown", [(5, r"y\[3\] = 5"), (-1, r"y\[3\] = -1"), (3, r"y\[3\] = 3")]
)
def test_sparse_labels_out_of_range(data, bad, shown):
    x, labels, _ = data
    m = _model(loss="sparse_categorical_crossentropy")
    y = labels.astype(np.float64)
    y[3] = bad
    with pytest.raises(ValueError, match=r"integer labels in \[0, 3\).*" + shown):
        m.fit(x, y, verbose=0)
    _still_works(m, x, labels)


def test_sparse_labels_non_integer_names_the_value(data):
    # 1.5 lies inside [0, 3) but is not an integer: the message must show the bad value.
    x, labels, _ = data
    m = _model(loss="sparse_categorical_crossentropy")
    y = labels.astype(np.float64)
    y[3] = 1.5
    with pytest.raises(ValueError, match=r"integer labels.*1\.5"):
        m.fit(x, y, verbose=0)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_x(data, value):
    x, _, y = data
    m = _model()
    x = x.copy()
    x[2, 1] = value
    with pytest.raises(ValueError, match=r"`x` contains NaN or inf.*\(2, 1\).*finite"):
        m.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"`x` contains NaN or inf"):
        m.predict(x)
    with pytest.raises(ValueError, match=r"`x` contains NaN or inf"):
        m.evaluate(x, y, verbose=0)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_y(data, value):
    x, _, y = data
    m = _model()
    y = y.copy()
    y[4, 0] = value
    with pytest.raises(ValueError, match=r"`y` contains NaN or inf.*\(4, 0\)"):
        m.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"`y` contains NaN or inf"):
        m.evaluate(x, y, verbose=0)


def test_non_finite_validation_data(data):
    x, _, y = data
    m = _model()
    xv = x.copy()
    xv[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"validation_data\[0\]` contains NaN or inf"):
        m.fit(x, y, validation_data=(xv, y), verbose=0)


def test_empty_arrays(data):
    x, _, _ = data
    m = _model()
    with pytest.raises(ValueError, match=r"`x` is empty.*\(0, 4\)"):
        m.fit(np.zeros((0, 4)), np.zeros((0, 3)), verbose=0)
    with pytest.raises(ValueError, match=r"`x` is empty"):
        m.predict(np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"`y` is empty|same number of samples"):
        m.fit(x, np.zeros((0, 3)), verbose=0)
    with pytest.raises(ValueError, match=r"`x` is empty"):
        m.predict([])


def test_sample_count_mismatch(data):
    x, _, y = data
    m = _model()
    with pytest.raises(ValueError, match=r"same number of samples.*x has 10, y has 8"):
        m.fit(x, y[:8], verbose=0)
    with pytest.raises(ValueError, match=r"x has 10, y has 12"):
        m.evaluate(x, np.concatenate([y, y[:2]]), verbose=0)
    with pytest.raises(ValueError, match=r"one value per sample.*\(10,\).*\(9,\)"):
        m.fit(x, y, sample_weight=np.ones(9), verbose=0)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([["a", "b", "c", "d"]] * 3),
        np.array([[object(), 1, 2, 3]] * 3, dtype=object),
        [["1", "2", "3", "4"]],
    ],
)
def test_string_or_object_input_is_type_error(bad):
    m = _model()
    with pytest.raises(TypeError, match=r"`x` must hold real numbers.*Received dtype"):
        m.predict(bad)


def test_string_labels_is_type_error(data):
    x, _, _ = data
    m = _model(loss="sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match=r"`y` must hold real numbers.*<U"):
        m.fit(x, np.array(["cat"] * 10), verbose=0)


def test_complex_input_is_type_error(data):
    x, _, y = data
    with pytest.raises(TypeError, match=r"real numbers.*complex"):
        _model().fit(x + 1j, y, verbose=0)


def test_ragged_list_input_raises():
    with pytest.raises((ValueError, TypeError)):
        _model().predict([[1, 2, 3, 4], [1, 2]])


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "kind,call",
    [
        ("optimizer", lambda: _model().compile(optimizer="adamm", loss="mse")),
        ("loss", lambda: _model().compile(optimizer="adam", loss="categorical_crossentropyy")),
        ("metric", lambda: _model().compile(optimizer="adam", loss="mse", metrics=["acuracy"])),
        ("activation", lambda: dc.layers.Dense(3, activation="rellu")),
        ("activation", lambda: dc.layers.Activation("sigmod")),
        ("initializer", lambda: dc.layers.Dense(3, kernel_initializer="glorot_unifrom")),
    ],
)
def test_unknown_names(kind, call):
    wrong = {
        "optimizer": "adamm",
        "loss": "categorical_crossentropyy",
        "metric": "acuracy",
        "activation": "rellu|sigmod",
        "initializer": "glorot_unifrom",
    }[kind]
    known = {
        "optimizer": "adam",
        "loss": "mean_squared_error",
        "metric": "accuracy",
        "activation": "relu",
        "initializer": "glorot_uniform",
    }[kind]
    pattern = rf"Unknown {kind}: '({wrong})'.*Known {kind}(e)?s:.*{known}"
    with pytest.raises(ValueError, match=pattern):
        call()


def test_custom_python_activation_rejected():
    with pytest.raises(ValueError, match=r"Custom activation.*Known activations"):
        dc.layers.Dense(3, activation=lambda z: z)


# --------------------------------------------------------------------------- order of calls


def test_fit_evaluate_before_compile(data):
    x, _, y = data
    m = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"compile\(\) before fit\(\)"):
        m.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"compile\(\) before evaluate\(\)"):
        m.evaluate(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"compile\(\) before train_on_batch\(\)"):
        m.train_on_batch(x, y)
    assert m.predict(x).shape == (10, 3)  # predict needs no compile
    m.compile(optimizer="sgd", loss="mse")
    _still_works(m, x, y)


def test_compile_without_loss(data):
    x, _, y = data
    m = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3)])
    m.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"without a loss.*compile\(loss=\.\.\.\)"):
        m.fit(x, y, verbose=0)


def test_predict_on_empty_model(data):
    x, _, _ = data
    m = dc.Sequential()
    with pytest.raises(ValueError, match=r"has no layers"):
        m.predict(x)
    with pytest.raises(ValueError, match=r"has no layers"):
        m.summary()
    with pytest.raises(ValueError, match=r"no layers"):
        m.pop()


def test_model_without_input_shape_needs_data_or_input():
    m = dc.Sequential([dc.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"no input shape.*deepcore\.Input\(shape=\.\.\.\)"):
        m.summary()
    with pytest.raises(ValueError, match=r"no input shape"):
        m.get_weights()
    # Calling on data builds it from the data's shape, as in Keras.
    assert m.predict(np.ones((2, 6))).shape == (2, 3)
    assert m.get_weights()[0].shape == (6, 3)


def test_input_after_layers_and_non_layer():
    m = dc.Sequential([dc.layers.Dense(3, input_shape=(2,))])
    with pytest.raises(ValueError, match=r"Input must come before"):
        m.add(dc.Input(shape=(2,)))
    with pytest.raises(TypeError, match=r"expects a deepcore layer.*Received: 'dense'"):
        m.add("dense")


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("units", [-3, 0, 2.5, "3", True])
def test_dense_bad_units(units):
    with pytest.raises(
        ValueError, match=r"`units` must be a positive integer.*" + re.escape(f"units={units!r}")
    ):
        dc.layers.Dense(units)


def test_dense_units_minus_three_message():
    with pytest.raises(ValueError) as info:
        dc.layers.Dense(units=-3)
    assert "units=-3" in str(info.value)
    assert "positive integer" in str(info.value)


@pytest.mark.parametrize("rate", [1.5, 1.0, -0.1, "0.5"])
def test_dropout_bad_rate(rate):
    with pytest.raises(
        ValueError, match=r"`rate` must be in \[0, 1\).*" + re.escape(f"rate={rate!r}")
    ):
        dc.layers.Dropout(rate=rate)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, 2**64])
def test_dropout_bad_seed(seed):
    with pytest.raises(
        ValueError,
        match=r"`seed` must be None or an int in \[0, 2\*\*64\).*" + re.escape(f"seed={seed!r}"),
    ):
        dc.layers.Dropout(0.5, seed=seed)


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
@pytest.mark.parametrize("bs", [0, -4, 2.5])
def test_bad_batch_size(data, method, bs):
    x, _, y = data
    m = _model()
    args = (x,) if method == "predict" else (x, y)
    kwargs = {"batch_size": bs}
    if method != "predict":
        kwargs["verbose"] = 0
    with pytest.raises(
        ValueError,
        match=r"`batch_size` must be a positive integer.*" + re.escape(f"batch_size={bs}"),
    ):
        getattr(m, method)(*args, **kwargs)
    _still_works(m, x, y)


@pytest.mark.parametrize("split", [1.5, 1.0, -0.2])
def test_bad_validation_split(data, split):
    x, _, y = data
    m = _model()
    with pytest.raises(
        ValueError,
        match=r"`validation_split` must be in \[0, 1\).*" + re.escape(f"validation_split={split}"),
    ):
        m.fit(x, y, validation_split=split, verbose=0)


def test_validation_split_leaving_empty_set(data):
    x, _, y = data
    with pytest.raises(ValueError, match=r"validation_split=0\.5 leaves an empty.*1 samples"):
        _model().fit(x[:1], y[:1], validation_split=0.5, verbose=0)


def test_bad_validation_data(data):
    x, _, y = data
    with pytest.raises(ValueError, match=r"validation_data.*tuple"):
        _model().fit(x, y, validation_data=x, verbose=0)
    with pytest.raises(ValueError, match=r"validation_data\[1\].*\(3, 3\).*\(3, 2\)"):
        _model().fit(x, y, validation_data=(x[:3], y[:3, :2]), verbose=0)


def test_bad_epochs(data):
    x, _, y = data
    with pytest.raises(ValueError, match=r"`epochs` must be an integer >= 0.*epochs=-1"):
        _model().fit(x, y, epochs=-1, verbose=0)


def test_set_weights_wrong_count(data):
    m = _model()
    w = m.get_weights()
    with pytest.raises(ValueError, match=r"expects 4 weight arrays, received 3"):
        m.set_weights(w[:3])
    with pytest.raises(ValueError, match=r"expects 4 weight arrays, received 5"):
        m.set_weights(w + [w[-1]])
    with pytest.raises(ValueError, match=r"expects 2 weight arrays, received 1"):
        m.layers[0].set_weights(w[:1])


def test_set_weights_wrong_shape_leaves_weights_unchanged(data):
    m = _model()
    w = m.get_weights()
    bad = [w[0].T, w[1], w[2], w[3]]
    with pytest.raises(ValueError, match=r"weight 0 expects shape \(4, 5\), received \(5, 4\)"):
        m.set_weights(bad)
    bad = [w[0], w[1], w[2], np.zeros(4)]
    with pytest.raises(ValueError, match=r"weight 1 expects shape \(3,\), received \(4,\)"):
        m.set_weights(bad)
    for a, b in zip(m.get_weights(), w):
        np.testing.assert_array_equal(a, b)
    nan_w = [x.copy() for x in w]
    nan_w[2][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf"):
        m.set_weights(nan_w)


def test_bad_optimizer_hyperparameters():
    with pytest.raises(
        ValueError,
        match=r"`learning_rate` must be a number > 0.*"
        r"learning_rate=-0\.1",
    ):
        dc.optimizers.Adam(learning_rate=-0.1)
    with pytest.raises(ValueError, match=r"`momentum`.*momentum=2"):
        dc.optimizers.SGD(momentum=2)


def test_bad_compile_kwarg():
    with pytest.raises(TypeError, match=r"Unrecognized keyword arguments.*lr"):
        _model().compile(optimizer="adam", loss="mse", lr=0.1)


def test_bad_layer_kwarg_and_input_shape():
    with pytest.raises(TypeError, match=r"Unrecognized keyword arguments passed to Dense.*unitz"):
        dc.layers.Dense(3, unitz=4)
    with pytest.raises(
        ValueError,
        match=r"`shape` must be a tuple of positive integers"
        r".*shape=\(4, -1\)",
    ):
        dc.Input(shape=(4, -1))


def test_early_stopping_unknown_monitor(data):
    x, _, y = data
    m = _model()
    es = dc.callbacks.EarlyStopping(monitor="val_loss")
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*not in the logs.*Available: loss"):
        m.fit(x, y, epochs=2, callbacks=[es], verbose=0)


def test_bad_callback_type(data):
    x, _, y = data
    with pytest.raises(TypeError, match=r"Callback instances.*Received"):
        _model().fit(x, y, callbacks=[lambda: None], verbose=0)


def test_to_categorical_errors():
    with pytest.raises(ValueError, match=r"label 5 does not fit num_classes=3"):
        dc.utils.to_categorical([0, 5], num_classes=3)
    with pytest.raises(ValueError, match=r">= 0.*-1"):
        dc.utils.to_categorical([0, -1])


def test_neuron_and_perceptron_errors():
    with pytest.raises(ValueError, match=r"expects inputs with 2 values.*\(3,\)"):
        dc.Neuron([0, 1], 4).feedforward([1, 2, 3])
    with pytest.raises(ValueError, match=r"before fit"):
        dc.Perceptron().predict([[0, 1]])
    with pytest.raises(ValueError, match=r"labels must be 0 or 1"):
        dc.Perceptron().fit([[0, 1], [1, 0]], [0, 2])


# --------------------------------------------------------------------------- no crash


def test_bad_inputs_do_not_crash_the_process():
    """Runs a batch of bad calls in a fresh interpreter: it must exit normally."""
    script = textwrap.dedent("""
        import numpy as np, deepcore as dc
        m = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x = np.ones((6, 4))
        bad_calls = [
            lambda: m.fit(np.ones((6, 5)), np.zeros(6), verbose=0),
            lambda: m.fit(x, np.full(6, 7), verbose=0),
            lambda: m.fit(x, np.full(6, -3), verbose=0),
            lambda: m.fit(x, np.full(6, np.nan), verbose=0),
            lambda: m.fit(np.zeros((0, 4)), np.zeros(0), verbose=0),
            lambda: m.predict(np.ones((3, 4, 1))),
            lambda: m.predict(np.ones(4)),
            lambda: m.predict(np.float32(3.0)),
            lambda: m.fit(x, np.zeros(6), batch_size=0, verbose=0),
            lambda: m.set_weights([np.ones((3, 4)), np.ones(3)]),
            lambda: m.fit(x, np.zeros((6, 9)), verbose=0),
            lambda: m.fit(x.astype(str), np.zeros(6), verbose=0),
        ]
        caught = 0
        for call in bad_calls:
            try:
                call()
            except (ValueError, TypeError):
                caught += 1
        m.fit(x, np.zeros(6), verbose=0)
        print("caught", caught)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "caught 12" in proc.stdout, proc.stdout + proc.stderr


def test_model_set_weights_is_all_or_nothing():
    model = dc.Sequential([dc.Input(shape=(2,)), dc.layers.Dense(3), dc.layers.Dense(1)])
    before = model.get_weights()
    bad = [np.ones_like(w) for w in before]
    bad[-1] = np.ones((2,), np.float32)  # last bias has the wrong shape
    with pytest.raises(ValueError, match=r"expects shape \(1,\), received \(2,\)"):
        model.set_weights(bad)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)  # the first layer was not changed either


def test_metric_labels_of_the_wrong_width_are_refused():
    # Precision compares labels and predictions value by value: one sparse label per row
    # against 3 outputs would read past the labels.
    m = dc.Sequential([dc.Input((4,)), dc.layers.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=[dc.metrics.Precision()])
    with pytest.raises(ValueError, match="metric labels have 1 columns, predictions 3"):
        m.fit(np.zeros((5, 4)), np.array([0, 1, 2, 0, 1]), verbose=0)


def test_engine_gradients_checks_the_sample_weights():
    m = dc.Sequential([dc.Input((4,)), dc.layers.Dense(2)])
    m.compile("sgd", "mse")
    x, y = np.zeros((5, 4), np.float32), np.zeros((5, 2), np.float32)
    with pytest.raises(ValueError, match="sample_weight must have one value per sample"):
        m._engine.gradients(x, y, np.ones(3, np.float32))


@pytest.mark.parametrize("bad", ["False", None, 0.5, [False]])
def test_trainable_must_be_a_boolean(bad):
    with pytest.raises(ValueError, match=r"`trainable` must be True or False"):
        dc.layers.Dense(2, trainable=bad)
    with pytest.raises(ValueError, match=r"`trainable` must be True or False"):
        dc.Sequential([dc.layers.Dense(2)]).trainable = bad


@pytest.mark.parametrize("target", [(-1, -1), (0, 3), (2, -2), "ab", ()])
def test_reshape_target_with_at_most_one_unknown_size(target):
    with pytest.raises(ValueError, match=r"`target_shape` must be a tuple of positive integers"):
        dc.layers.Reshape(target)
    assert dc.layers.Reshape((4, -1)).target_shape == (4, -1)


# ----------------------------------------------------------------- size arithmetic
OVERFLOWING_MODELS = {
    # 7 x C wraps to 1 in int64: built, saved, loaded, then predict read out of bounds.
    "reshape wrapping to one value": "[dc.Input(shape=(1,)), "
    "L.Reshape((1, 7, 0x6DB6DB6DB6DB6DB7)), L.MaxPooling2D(1), L.Flatten()]",
    "image of 2**40 pixels": "[dc.Input(shape=(2**20, 2**20, 1)), L.GlobalAveragePooling2D()]",
    "pooling a huge image": "[dc.Input(shape=(2**31, 2**31, 3)), L.AveragePooling2D(2)]",
    "conv window over 2**31 values": "[dc.Input(shape=(8, 8, 1)), "
    "L.Conv2D(4, (2**16, 2**16), padding='same')]",
    "conv weights over 2**31 values": "[dc.Input(shape=(8, 8, 2**16)), L.Conv2D(2**16, 1)]",
    "dense weights over 2**31 values": "[dc.Input(shape=(2**16,)), L.Dense(2**16)]",
    "reshape of an impossible size": "[dc.Input(shape=(6,)), L.Reshape((2**40, 2**40, -1))]",
}


@pytest.mark.parametrize("layers", OVERFLOWING_MODELS.values(), ids=OVERFLOWING_MODELS.keys())
def test_sizes_past_the_engine_limit_are_refused_before_allocation(layers):
    # Each size is checked against 2**31 - 1 values (with overflow-free arithmetic)
    # before anything is allocated; in a fresh interpreter so that a crash fails here.
    script = textwrap.dedent(f"""
        import resource, numpy as np, deepcore as dc
        L = dc.layers
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            m = dc.Sequential({layers})
            m.predict(np.ones((2, *m.input_shape[1:]), np.float32))
            print("built", m.output_shape)
        except ValueError as e:
            print("refused:", e)
        print("grew MB", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout, proc.stdout
    assert re.search(r"more than 2147483647 values|cannot reshape", proc.stdout), proc.stdout
    assert int(re.search(r"grew MB (\d+)", proc.stdout).group(1)) < 500, proc.stdout


def test_a_batch_past_the_engine_limit_names_the_largest_batch():
    # im2col of a 64x64 window over a 64x64 image: 2**24 values per sample
    m = dc.Sequential([dc.Input(shape=(64, 64, 1)), dc.layers.Conv2D(1, 64, padding="same")])
    m.compile(loss="mse")
    x = np.zeros((128, 64, 64, 1), np.float32)
    with pytest.raises(ValueError, match=r"batch_size=128 is too large .* at most 127"):
        m.evaluate(x, x, batch_size=128, verbose=0)
    assert np.isfinite(m.evaluate(x[:2], x[:2], batch_size=2, verbose=0))
    # predict on the CPU goes in pieces of its own (batch_size bounds nothing there)
    assert m.predict(x, batch_size=128, verbose=0).shape == (128, 64, 64, 1)
