"""Functional models (`deepcore.Model(inputs, outputs)`) and the merge layers: forward and
gradients against float64 NumPy and finite differences (a value read by several layers gets
the sum of their gradients), step for step against Keras where it is installed, saving and
cloning, and the errors of graphs deepcore cannot build."""

import re

import numpy as np
import pytest
from keras_reference import import_keras
from test_recurrent import fd_gradients

import deepcore as dc
from deepcore import layers as L

MERGES = {
    "add": (L.Add, lambda xs: sum(xs)),
    "subtract": (L.Subtract, lambda xs: xs[0] - xs[1]),
    "multiply": (L.Multiply, lambda xs: np.prod(xs, axis=0)),
    "average": (L.Average, lambda xs: sum(xs) / len(xs)),
    "maximum": (L.Maximum, lambda xs: np.max(xs, axis=0)),
    "minimum": (L.Minimum, lambda xs: np.min(xs, axis=0)),
}


def branches(merge, n, rng, width=4, features=3):
    """x -> n Dense(width) branches (tanh) -> merge -> Dense(2), and its NumPy float64 form
    over a weight list."""
    x = dc.Input(shape=(features,))
    heads = [L.Dense(width, activation="tanh")(x) for _ in range(n)]
    layer, np_merge = MERGES[merge]
    out = L.Dense(2)(layer()(heads))
    model = dc.Model(x, out)
    w = [rng.normal(0, 0.7, a.shape).astype(np.float32) for a in model.get_weights()]
    model.set_weights(w)

    def np_forward(params, xs):
        hs = [np.tanh(xs @ params[2 * i] + params[2 * i + 1]) for i in range(n)]
        return np_merge(np.stack(hs)) @ params[2 * n] + params[2 * n + 1]

    return model, w, np_forward


def assert_gradients_match(model, x, y, np_loss, params):
    """The model's loss on (x, y) and its gradients against the float64 NumPy loss over
    `params` (the model's weights) and its central differences."""
    loss, grads = model.gradients(x, y)
    np.testing.assert_allclose(loss, np_loss(), rtol=1e-5)
    for got, want in zip(grads, fd_gradients(np_loss, params), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)


def assert_fits_alike(km, dm, x, y):
    """Keras' compiled model km and deepcore's dm (the same weights) trained alike, 3 epochs
    without shuffling: the same logs, every logged value and the weights within 5e-4."""
    fit = dict(epochs=3, batch_size=8, shuffle=False, verbose=0)
    kh, dh = km.fit(x, y, **fit).history, dm.fit(x, y, **fit).history
    assert set(dh) == set(kh), (sorted(dh), sorted(kh))
    for key in kh:
        np.testing.assert_allclose(dh[key], kh[key], rtol=5e-4, err_msg=key)
    for a, b in zip(dm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=5e-4, atol=1e-5)


def assert_trains_as_keras(keras, km, dm, x, y, loss):
    """assert_fits_alike with Adam and `loss`, accuracy logged."""
    for m, lib in ((km, keras), (dm, dc)):
        m.compile(lib.optimizers.Adam(0.01), loss, metrics=["accuracy"])
    assert_fits_alike(km, dm, x, y)


@pytest.mark.parametrize("merge", list(MERGES))
def test_merge_layers_forward_and_gradients(merge, rng):
    n = 2 if merge == "subtract" else 3
    model, w, np_forward = branches(merge, n, rng)
    model.compile("sgd", "mse")
    xs = rng.normal(size=(5, 3)).astype(np.float32)
    ys = rng.normal(size=(5, 2)).astype(np.float32)
    params = [a.astype(np.float64) for a in w]
    np.testing.assert_allclose(
        model.predict(xs, verbose=0), np_forward(params, xs), rtol=1e-5, atol=1e-6
    )

    def np_loss():
        return np.mean((np_forward(params, xs) - ys) ** 2)

    assert_gradients_match(model, xs, ys, np_loss, params)


def residual(lib=dc, width=16):
    x = lib.Input(shape=(width,))
    h = lib.layers.Dense(width, activation="relu")(x)
    h = lib.layers.Dense(width)(h)
    y = lib.layers.Add()([x, h])
    return lib.Model(x, lib.layers.Dense(3, activation="softmax")(y))


def test_gradients_share_buffers_when_never_alive_at_once():
    # a line of 12 layers keeps its input gradients in 2 buffers (each layer's backward pass
    # reads one and writes the other); a branch keeps its gradient until its value's pass
    line = dc.Sequential([dc.Input(shape=(8,)), *[L.Dense(8 - i % 3) for i in range(12)]])
    assert sorted(line._engine.gradient_buffers) == [8, 8]
    x = dc.Input(shape=(4,))
    a = L.Dense(6)(x)
    model = dc.Model(x, L.Add()([L.Dense(6)(L.Dense(5)(a)), a]))
    assert len(model._engine.gradient_buffers) == 3
    # no gradient flows where no weights are trained: a frozen base, layers of no weights on
    # the inputs (Concatenate); the backward pass stops at the first layer it trains
    for layer in line.layers[:-1]:
        layer.trainable = False
    line.compile("sgd", "mse")
    assert line._engine.gradient_buffers == [8 - 11 % 3]  # the loss's gradient only
    y, z = dc.Input(shape=(3,)), dc.Input(shape=(2,))
    joined = dc.Model([y, z], L.Dense(4)(L.Concatenate()([y, z])))
    joined.compile("sgd", "mse")
    assert joined._engine.gradient_buffers == [4]


def test_residual_gradients_sum_over_the_readers(rng):
    # the input value x is read by the first Dense and by Add; a hidden value by two layers
    x = dc.Input(shape=(4,))
    a = L.Dense(4, activation="tanh")(x)
    b = L.Dense(4, activation="sigmoid")(a)
    c = L.Concatenate()([a, L.Multiply()([a, b]), x])
    model = dc.Model(x, L.Dense(2)(c))
    w = [rng.normal(0, 0.7, v.shape).astype(np.float32) for v in model.get_weights()]
    model.set_weights(w)
    model.compile("sgd", "mse")
    xs, ys = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 2)).astype(np.float32)
    p = [v.astype(np.float64) for v in w]

    def np_loss():
        ha = np.tanh(xs @ p[0] + p[1])
        hb = 1 / (1 + np.exp(-(ha @ p[2] + p[3])))
        out = np.concatenate([ha, ha * hb, xs], axis=1) @ p[4] + p[5]
        return np.mean((out - ys) ** 2)

    assert_gradients_match(model, xs, ys, np_loss, p)


@pytest.mark.parametrize("axis", [1, 2, -1, -2])
def test_concatenate_along_any_axis(axis, rng):
    x = dc.Input(shape=(3, 4))
    a = L.Dense(4)(x)
    b = L.Dense(4, activation="tanh")(x)
    model = dc.Model(x, L.Concatenate(axis=axis)([a, b, x]))
    xs = rng.normal(size=(2, 3, 4)).astype(np.float32)
    w = model.get_weights()
    want = np.concatenate([xs @ w[0] + w[1], np.tanh(xs @ w[2] + w[3]), xs], axis=axis)
    assert model.output_shape == want.shape[:0] + (None, *want.shape[1:])
    np.testing.assert_allclose(model.predict(xs, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_a_line_graph_equals_the_sequential_model(rng):
    x = dc.Input(shape=(5,))
    y = L.Dense(3, activation="softmax")(L.Dense(8, activation="relu")(x))
    functional = dc.Model(inputs=x, outputs=y)
    seq = dc.Sequential(
        [dc.Input(shape=(5,)), L.Dense(8, activation="relu"), L.Dense(3, "softmax")]
    )
    seq.set_weights(functional.get_weights())
    xs, ys = rng.normal(size=(40, 5)).astype(np.float32), rng.integers(0, 3, 40)
    for m in (functional, seq):
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    a = functional.fit(xs, ys, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    b = seq.fit(xs, ys, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    assert a == b
    for u, v in zip(functional.get_weights(), seq.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_save_load_clone_and_config(rng, tmp_path):
    model = residual()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    xs, ys = rng.normal(size=(32, 16)).astype(np.float32), rng.integers(0, 3, 32)
    model.fit(xs, ys, epochs=1, verbose=0)
    model.save(tmp_path / "residual.deepcore")
    loaded = dc.models.load_model(tmp_path / "residual.deepcore")
    assert type(loaded).__name__ == "Functional" and loaded._wiring == model._wiring
    np.testing.assert_array_equal(loaded.predict(xs, verbose=0), model.predict(xs, verbose=0))
    a = model.fit(xs, ys, epochs=1, shuffle=False, verbose=0).history
    b = loaded.fit(xs, ys, epochs=1, shuffle=False, verbose=0).history
    assert a == b
    clone = dc.models.clone_model(model)
    assert clone._wiring == model._wiring and clone.count_params() == model.count_params()
    again = type(model).from_config(model.get_config())
    assert [type(la) for la in again.layers] == [type(la) for la in model.layers]
    model.save_weights(tmp_path / "w.deepcore")
    clone.load_weights(tmp_path / "w.deepcore")
    np.testing.assert_array_equal(clone.predict(xs, verbose=0), model.predict(xs, verbose=0))
    x = dc.Input(shape=(16,))
    h1 = L.Dense(16)(x)
    other = dc.Model(x, L.Dense(3)(L.Add()([h1, L.Dense(16)(h1)])))  # the same weights
    with pytest.raises(ValueError, match=r"connected as \[\[-1\], \[0\], \[-1, 1\]"):
        other.load_weights(tmp_path / "w.deepcore")


def test_summary_shows_the_connections():
    lines = []
    residual().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text
    assert re.search(r"add(_\d+)? \(Add\) .* input_layer(_\d+)?, dense(_\d+)?\n", text), text
    # a layer called twice: one row (its weights once), each call's inputs
    x, z = dc.Input(shape=(4,), name="x"), dc.Input(shape=(4,), name="z")
    shared = L.Dense(3, name="shared")
    lines.clear()
    dc.Model([x, z], L.Add(name="sum")([shared(x), shared(z)])).summary(print_fn=lines.append)
    lines = "\n".join(lines).splitlines()
    rows = [line.split() for line in lines if line.startswith(("shared", "sum"))]
    assert rows == [
        ["shared", "(Dense)", "(None,", "3)", "15", "x;", "z"],
        ["sum", "(Add)", "(None,", "3)", "0", "shared,", "shared"],
    ]
    assert "Total params: 15" in lines


def test_frozen_layers_in_a_functional_model(rng):
    model = residual()
    first = model.layers[0]
    first.trainable = False
    model.compile("adam", "sparse_categorical_crossentropy")
    kernel = first.get_weights()[0].copy()
    xs, ys = rng.normal(size=(32, 16)).astype(np.float32), rng.integers(0, 3, 32)
    model.fit(xs, ys, epochs=1, verbose=0)
    np.testing.assert_array_equal(first.get_weights()[0], kernel)


# --------------------------------------------------------------------- errors
def test_graphs_deepcore_cannot_build_are_refused():
    x, other = dc.Input(shape=(4,)), dc.Input(shape=(4,))
    with pytest.raises(ValueError, match="graph disconnected.*input_layer"):
        dc.Model(x, L.Add()([L.Dense(4)(x), other]))
    with pytest.raises(ValueError, match="outputs need different names"):
        same = L.Dense(2, name="same")
        dc.Model(x, [same(x), same(L.Dense(4)(x))])
    with pytest.raises(ValueError, match="an input is given twice"):
        dc.Model([x, x], L.Dense(2)(x))
    with pytest.raises(ValueError, match="uses the weights of layer #0, whose shapes differ"):
        shared = L.Dense(3, name="twice")
        dc.Model(x, shared(shared(x)))  # (4 -> 3) then (3 -> 3): not one set of weights
    with pytest.raises(
        ValueError, match=r"one shape; received shapes \[\(None, 4\), \(None, 3\)\]"
    ):
        L.Add(name="sum")([x, L.Dense(3)(x)])
    with pytest.raises(ValueError, match="takes exactly 2 inputs"):
        L.Subtract()([x, x, x])
    with pytest.raises(ValueError, match="one shape except along"):
        L.Concatenate(axis=1)([dc.Input(shape=(2, 3)), dc.Input(shape=(2, 4))])
    with pytest.raises(ValueError, match="takes a list of tensors"):
        L.Add()(x)
    with pytest.raises(ValueError, match="an output is an input"):
        dc.Model(x, [L.Dense(2)(x), x])
    with pytest.raises(ValueError, match="`axis` must be a non-zero integer"):
        L.Concatenate(axis=0)
    with pytest.raises(TypeError, match="has no value to branch on"):
        if x:
            pass
    with pytest.raises(TypeError, match="is the output of a layer call"):
        dc.Sequential([L.Dense(3)(dc.Input(shape=(2,)))])


# ---------------------------------------------------------------------- Keras
def two_branch(lib):
    x = lib.Input(shape=(6,))
    a = lib.layers.Dense(8, activation="relu")(x)
    b = lib.layers.Dense(8, activation="tanh")(x)
    s = lib.layers.Add()([a, b])
    m = lib.layers.Maximum()([a, lib.layers.Dense(8)(b)])
    c = lib.layers.Concatenate()([s, m, x])
    return lib.Model(x, lib.layers.Dense(3, activation="softmax")(c))


@pytest.mark.parametrize("make", [residual, two_branch], ids=["residual", "branches"])
def test_functional_models_train_as_keras(make, rng):
    keras = import_keras()
    km, dm = make(keras), make(dc)
    dm.set_weights(km.get_weights())
    n = km.input_shape[-1]
    xs, ys = rng.normal(size=(48, n)).astype(np.float32), rng.integers(0, 3, 48)
    assert_trains_as_keras(keras, km, dm, xs, ys, "sparse_categorical_crossentropy")


@pytest.mark.parametrize(
    "wiring, words",
    [
        ([[-1], [0], [-1, 1], [3]], "wiring of layer 3"),  # reads itself
        ([[-1], [0], [-1, 1]], "list of 4 lists"),
        ([[-1], [-1, 0], [-1, 1], [2]], "takes one input"),  # Dense given two inputs
        ([[-1], [0], [1], [2]], "takes 2 to 16 inputs"),  # Add given one
        ([[-1], [0], [0, 1], [1]], "neither read"),  # Add's output unused
        ([[-1], [0], [-1, 1], ["2"]], "wiring of layer 3"),
    ],
)
def test_a_file_with_a_bad_wiring_is_refused(wiring, words, tmp_path):
    from test_saving import _meta, _tamper

    path = tmp_path / "residual.deepcore"
    residual().save(path)

    def rewire(model):
        model["config"]["wiring"] = wiring

    bad = _tamper(path, header=_meta("model", rewire))
    with pytest.raises(ValueError, match=words):
        dc.models.load_model(bad)


# ---------------------------------------------------------------- several inputs
def two_inputs(lib=dc):
    a = lib.Input(shape=(4,), name="numbers")
    b = lib.Input(shape=(3,), name="more")
    h = lib.layers.Dense(5, activation="tanh")(a)
    s = lib.layers.Add()([lib.layers.Dense(5)(b), h])
    c = lib.layers.Concatenate()([s, b])
    return lib.Model([a, b], lib.layers.Dense(2, activation="softmax")(c))


def test_two_inputs_forward_and_gradients(rng):
    model = two_inputs()
    w = [rng.normal(0, 0.7, v.shape).astype(np.float32) for v in model.get_weights()]
    model.set_weights(w)
    model.compile("sgd", "categorical_crossentropy")
    xa, xb = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 6)]
    p = [v.astype(np.float64) for v in w]
    names = [la.name for la in model.layers]
    assert [type(la).__name__ for la in model.layers] == [
        "Dense",
        "Dense",
        "Add",
        "Concatenate",
        "Dense",
    ], names  # Keras' order: the deepest calls first

    def np_out():
        s = (xb @ p[0] + p[1]) + np.tanh(xa @ p[2] + p[3])
        z = np.concatenate([s, xb], axis=1) @ p[4] + p[5]
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def np_loss():
        return -np.mean(np.sum(y * np.log(np_out()), axis=1))

    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), np_out(), rtol=1e-5)
    np.testing.assert_allclose(
        model.predict({"more": xb, "numbers": xa}, verbose=0), np_out(), rtol=1e-5
    )
    assert_gradients_match(model, [xa, xb], y, np_loss, p)


def test_two_inputs_save_load_and_errors(rng, tmp_path):
    model = two_inputs()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    xa, xb = (
        rng.normal(size=(20, 4)).astype(np.float32),
        rng.normal(size=(20, 3)).astype(np.float32),
    )
    y = rng.integers(0, 2, 20)
    model.fit([xa, xb], y, epochs=1, verbose=0, validation_split=0.25)
    model.save(tmp_path / "two.deepcore")
    loaded = dc.models.load_model(tmp_path / "two.deepcore")
    assert loaded.input_shape == [(None, 4), (None, 3)]
    np.testing.assert_array_equal(
        loaded.predict([xa, xb], verbose=0), model.predict([xa, xb], verbose=0)
    )
    with pytest.raises(ValueError, match=r"has 2 inputs \['numbers', 'more'\]"):
        model.predict(xa, verbose=0)
    with pytest.raises(ValueError, match=r"Input 'more' .* expected shape \(None, 3\)"):
        model.predict([xa, xa], verbose=0)
    with pytest.raises(ValueError, match="different numbers of samples"):
        model.predict([xa, xb[:5]], verbose=0)
    with pytest.raises(ValueError, match="by name"):
        model.predict({"numbers": xa, "other": xb}, verbose=0)


def test_an_embedding_reads_its_own_integer_input(rng):
    words = dc.Input(shape=(5,), name="words")
    extra = dc.Input(shape=(2,), name="extra")
    pooled = L.GlobalAveragePooling1D()(L.Embedding(10, 3)(words))
    model = dc.Model([words, extra], L.Dense(1)(L.Concatenate()([pooled, extra])))
    idx, more = rng.integers(0, 10, (4, 5)), rng.normal(size=(4, 2)).astype(np.float32)
    table, kernel, bias = model.get_weights()
    want = np.concatenate([table[idx].mean(1), more], axis=1) @ kernel + bias
    np.testing.assert_allclose(model.predict([idx, more], verbose=0), want, rtol=1e-5)
    with pytest.raises(ValueError, match="Embedding"):
        model.predict([idx + 10, more], verbose=0)


def test_two_inputs_train_as_keras(rng):
    keras = import_keras()
    km, dm = two_inputs(keras), two_inputs(dc)
    dm.set_weights(km.get_weights())
    xa, xb = (
        rng.normal(size=(48, 4)).astype(np.float32),
        rng.normal(size=(48, 3)).astype(np.float32),
    )
    y = rng.integers(0, 2, 48)
    assert_trains_as_keras(keras, km, dm, [xa, xb], y, "sparse_categorical_crossentropy")


# ------------------------------------------------------------ a model inside another
def base_model(lib=dc, frozen=True):
    base = lib.Sequential(
        [
            lib.Input(shape=(6,)),
            lib.layers.Dense(8, activation="relu"),
            lib.layers.BatchNormalization(),
            lib.layers.Dense(5, activation="tanh"),
        ]
    )
    base.trainable = not frozen
    return base


def fine_tuned(lib=dc, frozen=True):
    base = base_model(lib, frozen)
    x = lib.Input(shape=(6,))
    y = lib.layers.Dense(3, activation="softmax")(base(x, training=False if frozen else None))
    return lib.Model(x, y), base


def test_a_model_inside_another_shares_its_layers(rng):
    model, base = fine_tuned(frozen=False)
    xs, ys = rng.normal(size=(40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    head = model.layers[-1]
    k, b = head.get_weights()
    e = np.exp(base.predict(xs, verbose=0) @ k + b)
    np.testing.assert_allclose(model.predict(xs, verbose=0), e / e.sum(1, keepdims=True), rtol=1e-5)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(xs, ys, epochs=2, verbose=0)
    # the inner model sees what the outer one trained, and its own training reaches the outer
    for a, c in zip(base.get_weights(), model.get_weights()[:8]):
        np.testing.assert_array_equal(a, c)
    base.compile("sgd", "mse")
    base.fit(xs, rng.normal(size=(40, 5)).astype(np.float32), epochs=1, verbose=0)
    for a, c in zip(base.get_weights(), model.get_weights()[:8]):
        np.testing.assert_array_equal(a, c)


def test_a_functional_model_inside_another(rng):
    inner = residual()
    x = dc.Input(shape=(16,))
    outer = dc.Model(x, L.Dense(2)(inner(x)))
    assert len(outer.layers) == len(inner.layers) + 1
    xs = rng.normal(size=(4, 16)).astype(np.float32)
    k, b = outer.layers[-1].get_weights()
    want = inner.predict(xs, verbose=0) @ k + b
    np.testing.assert_allclose(outer.predict(xs, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_training_false_needs_frozen_layers():
    base = dc.Sequential([dc.Input(shape=(4,)), L.Dense(4), L.Dropout(0.5)])
    with pytest.raises(ValueError, match=r"training=False: its layers \['dropout"):
        base(dc.Input(shape=(4,)), training=False)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 4\)"):
        base(dc.Input(shape=(5,)))


@pytest.mark.parametrize("frozen", [True, False])
def test_fine_tuning_trains_as_keras(frozen, rng):
    keras = import_keras()
    (km, _), (dm, _) = fine_tuned(keras, frozen), fine_tuned(dc, frozen)
    dm.set_weights(km.get_weights())
    xs, ys = rng.normal(size=(48, 6)).astype(np.float32), rng.integers(0, 3, 48)
    assert_trains_as_keras(keras, km, dm, xs, ys, "sparse_categorical_crossentropy")
    assert len(dm.trainable_weights) == len(km.trainable_weights)


# -------------------------------------------------------------- subclassed models
class ResidualNet(dc.Model):
    """Keras' subclassing: layers in __init__, the graph in call (traced once)."""

    def __init__(self, lib=dc, **kwargs):
        super().__init__(**kwargs)
        self.lib = lib
        self.hidden = lib.layers.Dense(16, activation="relu")
        self.back = lib.layers.Dense(16)
        self.head = lib.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.head(x + self.back(self.hidden(x)))


def test_a_subclassed_model_is_traced_into_the_graph(rng):
    model = ResidualNet()
    xs, ys = rng.normal(size=(32, 16)).astype(np.float32), rng.integers(0, 3, 32)
    with pytest.raises(ValueError, match="no input shape yet"):
        model.summary()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(xs, ys, epochs=1, verbose=0)
    assert [type(la).__name__ for la in model.layers] == ["Dense", "Dense", "Add", "Dense"]
    assert isinstance(model, ResidualNet) and model.name == "residual_net"
    w = [v.astype(np.float64) for v in model.get_weights()]
    h = xs + np.maximum(xs @ w[0] + w[1], 0) @ w[2] + w[3]
    e = np.exp(h @ w[4] + w[5])
    np.testing.assert_allclose(model.predict(xs, verbose=0), e / e.sum(1, keepdims=True), rtol=1e-5)
    built = ResidualNet()
    built.build((None, 16))
    assert built.count_params() == model.count_params()


def test_untraceable_calls_name_the_line():
    class Branching(dc.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2)

        def call(self, x):
            if x:  # depends on the values
                return self.dense(x)
            return x

    with pytest.raises(ValueError, match=r"cannot be traced at .*test_functional.py:\d+ \(if x:"):
        Branching().build((None, 3))
    x = dc.Input(shape=(3,))
    assert (x + 1.0).shape == (None, 3)  # (an op of deepcore.ops)


def test_a_subclassed_model_trains_as_keras(rng):
    keras = import_keras()

    class KerasResidual(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(16, activation="relu")
            self.back = keras.layers.Dense(16)
            self.head = keras.layers.Dense(3, activation="softmax")

        def call(self, x):
            return self.head(x + self.back(self.hidden(x)))

    km, dm = KerasResidual(), ResidualNet()
    km(np.zeros((1, 16), np.float32))  # Keras creates a subclassed model's weights on a call
    dm.build((None, 16))
    dm.set_weights(km.get_weights())
    xs, ys = rng.normal(size=(48, 16)).astype(np.float32), rng.integers(0, 3, 48)
    assert_trains_as_keras(keras, km, dm, xs, ys, "sparse_categorical_crossentropy")


# ------------------------------------------------------------------ shared layers
def siamese(lib=dc):
    a, b = lib.Input(shape=(5,)), lib.Input(shape=(5,))
    encode = lib.layers.Dense(4, activation="tanh")
    distance = lib.layers.Subtract()([encode(a), encode(b)])
    product = lib.layers.Multiply()([distance, distance])
    return lib.Model([a, b], lib.layers.Dense(1, activation="sigmoid")(product))


def test_a_shared_layer_has_one_set_of_weights_and_sums_its_gradients(rng):
    model = siamese()
    assert len(model.layers) == 4 and len(model.get_weights()) == 4
    w = [rng.normal(0, 0.7, v.shape).astype(np.float32) for v in model.get_weights()]
    model.set_weights(w)
    model.compile("sgd", "binary_crossentropy")
    xa, xb = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(6, 5)).astype(np.float32)
    y = rng.integers(0, 2, (6, 1)).astype(np.float32)
    p = [v.astype(np.float64) for v in w]

    def np_out():
        d = np.tanh(xa @ p[0] + p[1]) - np.tanh(xb @ p[0] + p[1])
        return 1 / (1 + np.exp(-((d * d) @ p[2] + p[3])))

    def np_loss():
        q = np.clip(np_out(), 1e-7, 1 - 1e-7)
        return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))

    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), np_out(), rtol=1e-5)
    assert_gradients_match(model, [xa, xb], y, np_loss, p)


def test_a_shared_layer_saves_once_and_freezes_everywhere(rng, tmp_path):
    model = siamese()
    model.compile("adam", "binary_crossentropy")
    xa, xb = (
        rng.normal(size=(16, 5)).astype(np.float32),
        rng.normal(size=(16, 5)).astype(np.float32),
    )
    y = rng.integers(0, 2, (16, 1)).astype(np.float32)
    model.fit([xa, xb], y, epochs=1, verbose=0)
    model.save(tmp_path / "siamese.deepcore")
    loaded = dc.models.load_model(tmp_path / "siamese.deepcore")
    assert len(loaded.layers) == 4 and loaded._layers[0] is loaded._layers[1]
    np.testing.assert_array_equal(
        loaded.predict([xa, xb], verbose=0), model.predict([xa, xb], verbose=0)
    )
    clone = dc.models.clone_model(model)
    assert clone._layers[0] is clone._layers[1]
    encode = model.layers[0]
    encode.trainable = False
    model.compile("adam", "binary_crossentropy")
    kernel = encode.get_weights()[0].copy()
    model.fit([xa, xb], y, epochs=1, verbose=0)
    np.testing.assert_array_equal(encode.get_weights()[0], kernel)


def test_a_shared_layer_trains_as_keras(rng):
    keras = import_keras()
    km, dm = siamese(keras), siamese(dc)
    dm.set_weights(km.get_weights())
    xa, xb = (
        rng.normal(size=(48, 5)).astype(np.float32),
        rng.normal(size=(48, 5)).astype(np.float32),
    )
    y = rng.integers(0, 2, (48, 1)).astype(np.float32)
    assert_trains_as_keras(keras, km, dm, [xa, xb], y, "binary_crossentropy")


@pytest.mark.parametrize(
    "shared, words",
    [
        ([-1, 3, -1, -1, -1], "shared must list"),
        ([-1, 0, 0, -1, -1], "layer 2 cannot share the weights of layer 0"),
        ([-1, 0], "shared must list"),
    ],
)
def test_a_file_with_a_bad_sharing_is_refused(shared, words, tmp_path):
    from test_saving import _meta, _tamper

    path = tmp_path / "siamese.deepcore"
    siamese().save(path)

    def reshare(model):
        model["config"]["shared"] = shared

    with pytest.raises(ValueError, match=words):
        dc.models.load_model(_tamper(path, header=_meta("model", reshare)))


# ------------------------------------------------------------------------- Dot
DOTS = [((5,), (5,), 1, "bk,bk->b"), ((3, 4), (2, 4), 2, "bik,bjk->bij")]
DOTS += [((3, 4), (3, 2), (1, 1), "bki,bkj->bij"), ((3, 4), (4, 2), (2, 1), "bik,bkj->bij")]
DOTS += [((3, 4), (2, 3), (1, 2), "bki,bjk->bij")]


def np_normalize(v, axis):
    """Keras' L2 normalization along `axis`: v * min(1 / sqrt(sum v^2), 1e7)."""
    return v * np.minimum(1 / np.sqrt((v**2).sum(axis, keepdims=True)), 1e7)


@pytest.mark.parametrize("normalize", [False, True], ids=["dot", "cosine"])
@pytest.mark.parametrize("sa, sb, axes, spec", DOTS, ids=str)
def test_dot_forward_and_gradients(sa, sb, axes, spec, normalize, rng):
    # Dense on each input first, so that the gradients through Dot reach weights
    a, b = dc.Input(shape=sa), dc.Input(shape=sb)
    da, db = L.Dense(sa[-1], activation="tanh")(a), L.Dense(sb[-1])(b)
    model = dc.Model([a, b], L.Flatten()(L.Dot(axes, normalize=normalize)([da, db])))
    w = [rng.normal(0, 0.7, v.shape).astype(np.float32) for v in model.get_weights()]
    model.set_weights(w)
    model.compile("sgd", "mse")
    xa = rng.normal(size=(3, *sa)).astype(np.float32)
    xb = rng.normal(size=(3, *sb)).astype(np.float32)
    p = [v.astype(np.float64) for v in w]
    assert model.layers[0].activation.__name__ == "tanh"  # Keras' order: Dot's first input first

    def np_out():
        ha, hb = np.tanh(xa @ p[0] + p[1]), xb @ p[2] + p[3]
        if normalize:
            ax, ay = axes if isinstance(axes, tuple) else (axes, axes)
            ha, hb = np_normalize(ha, ax), np_normalize(hb, ay)
        return np.einsum(spec, ha, hb).reshape(len(xa), -1)

    y = rng.normal(size=np_out().shape).astype(np.float32)

    def np_loss():
        return np.mean((np_out() - y) ** 2)

    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), np_out(), rtol=1e-5, atol=1e-6)
    assert_gradients_match(model, [xa, xb], y, np_loss, p)


def test_dot_errors():
    a, b = dc.Input(shape=(3,)), dc.Input(shape=(4,))
    with pytest.raises(ValueError, match="they must be equal"):
        L.Dot(1)([a, b])
    with pytest.raises(ValueError, match="`normalize` must be True or False"):
        L.Dot(1, normalize="yes")
    with pytest.raises(ValueError, match="0 is the batch"):
        L.Dot(0)
    with pytest.raises(ValueError, match="one rank, 2 or 3"):
        L.Dot(1)([a, dc.Input(shape=(3, 3))])


def recommender(lib=dc, normalize=False):
    users, items = lib.Input(shape=(1,)), lib.Input(shape=(1,))
    u = lib.layers.Flatten()(lib.layers.Embedding(7, 4)(users))
    v = lib.layers.Flatten()(lib.layers.Embedding(9, 4)(items))
    score = lib.layers.Dot(axes=1, normalize=normalize)([u, v])
    return lib.Model([users, items], lib.layers.Dense(1, activation="sigmoid")(score))


def test_a_cosine_of_zero_vectors_is_zero_with_finite_gradients(rng):
    a, b = dc.Input(shape=(3,)), dc.Input(shape=(3,))
    model = dc.Model([a, b], L.Dot(1, normalize=True)([a, L.Dense(3)(b)]))
    model.compile("sgd", "mse")
    zeros, xb = np.zeros((4, 3), np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    assert not np.any(model.predict([zeros, xb], verbose=0))
    loss, grads = model.gradients([zeros, xb], np.ones((4, 1), np.float32))
    assert loss == pytest.approx(1.0) and all(np.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("normalize", [False, True], ids=["dot", "cosine"])
def test_a_dot_recommender_trains_as_keras(normalize, rng):
    keras = import_keras()
    km, dm = recommender(keras, normalize), recommender(dc, normalize)
    dm.set_weights(km.get_weights())
    users, items = rng.integers(0, 7, (48, 1)), rng.integers(0, 9, (48, 1))
    liked = rng.integers(0, 2, (48, 1)).astype(np.float32)
    assert_trains_as_keras(keras, km, dm, [users, items], liked, "binary_crossentropy")


def test_a_subclassed_models_weights_follow_its_attributes_as_keras(rng):
    # Keras lists a subclassed model's weights in the order __init__ sets its layers, which
    # need not be the order call uses them in.
    keras = import_keras()

    def make(lib):
        class Net(lib.Model):
            def __init__(self):
                super().__init__()
                self.head = lib.layers.Dense(2)
                self.blocks = [lib.layers.Dense(5, activation="tanh"), lib.layers.Dense(3)]

            def call(self, x):
                return self.head(self.blocks[1](self.blocks[0](x)))

        return Net()

    km, dm = make(keras), make(dc)
    km(np.zeros((1, 4), np.float32))
    dm.build((None, 4))
    assert [w.shape for w in dm.get_weights()] == [w.shape for w in km.get_weights()]
    dm.set_weights(km.get_weights())
    xs = rng.normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_allclose(dm.predict(xs, verbose=0), km.predict(xs, verbose=0), atol=1e-5)
