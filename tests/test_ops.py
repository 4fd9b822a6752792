"""deepcore.ops: on arrays against NumPy; on a model's tensors (ops nodes and Lambda layers
traced into programs) forward against float64 NumPy and gradients against finite
differences, broadcasting and reductions included; step for step against Keras' Lambda where
Keras is installed; saving, Sequential and subclassed models, and the errors."""

import numpy as np
import pytest
from keras_reference import import_keras
from test_functional import assert_gradients_match, assert_trains_as_keras

import deepcore as dc
from deepcore import layers as L
from deepcore import ops


def np_softmax(v, axis=-1):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# (name, the ops on a and b (samples of shape (3, 4)), the same in float64 NumPy)
CASES = [
    ("negative", lambda a, b: -a, lambda a, b: -a),
    ("abs", lambda a, b: ops.abs(b), lambda a, b: np.abs(b)),
    ("square", lambda a, b: ops.square(b), lambda a, b: b**2),
    ("sqrt", lambda a, b: ops.sqrt(ops.square(b) + 1.0), lambda a, b: np.sqrt(b**2 + 1)),
    ("exp_log", lambda a, b: ops.log(ops.exp(a) + 2.0), lambda a, b: np.log(np.exp(a) + 2)),
    ("log1p", lambda a, b: ops.log1p(ops.square(b)), lambda a, b: np.log1p(b**2)),
    ("reciprocal", lambda a, b: ops.reciprocal(a + 3.0), lambda a, b: 1 / (a + 3)),
    ("clip", lambda a, b: ops.clip(b, -0.5, 0.7), lambda a, b: np.clip(b, -0.5, 0.7)),
    ("sin_cos", lambda a, b: ops.sin(a) * ops.cos(b), lambda a, b: np.sin(a) * np.cos(b)),
    ("activations", lambda a, b: ops.relu(b) + ops.sigmoid(b) * ops.tanh(a) + ops.softplus(b),
     lambda a, b: np.maximum(b, 0) + np.tanh(a) / (1 + np.exp(-b)) + np.log1p(np.exp(b))),
    ("leaky_elu", lambda a, b: ops.leaky_relu(b, 0.1) + ops.elu(b, 0.5),
     lambda a, b: np.where(b > 0, b, 0.1 * b) + np.where(b > 0, b, 0.5 * np.expm1(b))),
    ("softmax", lambda a, b: ops.softmax(b), lambda a, b: np_softmax(b)),
    ("softmax_axis1", lambda a, b: ops.softmax(b, axis=1), lambda a, b: np_softmax(b, 1)),
    ("log_softmax", lambda a, b: ops.log_softmax(b),
     lambda a, b: np.log(np_softmax(b))),
    ("broadcast_constants", lambda a, b: a * np.array([1.0, -2.0, 0.5, 3.0]) + 0.25 - b / 2.0,
     lambda a, b: a * np.array([1.0, -2.0, 0.5, 3.0]) + 0.25 - b / 2),
    ("broadcast_tensors", lambda a, b: ops.maximum(a, ops.mean(b, axis=1, keepdims=True)),
     lambda a, b: np.maximum(a, b.mean(axis=1, keepdims=True))),
    ("divide_power", lambda a, b: ops.power(a + 2.0, 2.5) / (ops.square(b) + 1.0),
     lambda a, b: (a + 2) ** 2.5 / (b**2 + 1)),
    ("minimum_rsub", lambda a, b: ops.minimum(1.0 - a, b), lambda a, b: np.minimum(1 - a, b)),
    ("reductions", lambda a, b: ops.sum(b, axis=-1) + ops.max(a, axis=2) - ops.min(b, axis=-1),
     lambda a, b: b.sum(-1) + a.max(2) - b.min(-1)),
    ("mean_all", lambda a, b: ops.mean(ops.square(a - b)),
     lambda a, b: ((a - b) ** 2).mean((1, 2))),
    ("var_std", lambda a, b: ops.var(b, axis=1, keepdims=True) + ops.std(a, axis=-1, keepdims=True),
     lambda a, b: b.var(1, keepdims=True) + a.std(-1, keepdims=True)),
    ("logsumexp", lambda a, b: ops.logsumexp(b, axis=-1),
     lambda a, b: np.log(np.exp(b).sum(-1))),
    ("shapes", lambda a, b: ops.squeeze(ops.expand_dims(ops.reshape(a, (-1, 6, 2)), 1), 1) * 2.0,
     lambda a, b: a.reshape(-1, 6, 2) * 2),
    ("where", lambda a, b: ops.where(ops.greater(a, b), a, b * b),
     lambda a, b: np.where(a > b, a, b * b)),
    ("comparisons", lambda a, b: (a > 0.1) * b + ops.less_equal(b, a) * a,
     lambda a, b: (a > 0.1) * b + (b <= a) * a),
    ("transpose", lambda a, b: ops.transpose(a, (0, 2, 1)) * np.arange(3.0),
     lambda a, b: a.transpose(0, 2, 1) * np.arange(3.0)),
    ("matmul", lambda a, b: ops.matmul(a, ops.transpose(b, (0, 2, 1))),
     lambda a, b: a @ b.transpose(0, 2, 1)),
    ("concatenate", lambda a, b: ops.concatenate([a, ops.square(b)], axis=1),
     lambda a, b: np.concatenate([a, b**2], axis=1)),
    ("floor_sign", lambda a, b: ops.floor(a * 3.0) * b + ops.sign(b) * a,
     lambda a, b: np.floor(a * 3) * b + np.sign(b) * a),
]  # fmt: skip


@pytest.mark.parametrize("name, dc_fn, np_fn", CASES, ids=[c[0] for c in CASES])
def test_ops_in_a_model_forward_and_gradients(name, dc_fn, np_fn, rng):
    x = dc.Input(shape=(3, 5))
    dense_a, dense_b = L.Dense(4, activation="tanh"), L.Dense(4)
    out = dc_fn(dense_a(x), dense_b(x))
    model = dc.Model(x, ops.reshape(out, (-1, int(np.prod(out.shape[1:])))))
    w = [rng.normal(0, 0.7, v.shape).astype(np.float32) for v in model.get_weights()]
    model.set_weights(w)
    model.compile("sgd", "mse")
    xs = rng.normal(size=(4, 3, 5)).astype(np.float32)
    p = [v.astype(np.float64) for v in w]
    at = {id(la): 2 * k for k, la in enumerate(model.layers) if isinstance(la, L.Dense)}

    def np_out():  # (a Dense the ops do not read is not in the model)
        zero = np.zeros((len(xs), 3, 4))
        i, j = at.get(id(dense_a)), at.get(id(dense_b))
        ha = zero if i is None else np.tanh(xs @ p[i] + p[i + 1])
        hb = zero if j is None else xs @ p[j] + p[j + 1]
        return np.asarray(np_fn(ha, hb)).reshape(len(xs), -1)

    got = model.predict(xs, verbose=0).reshape(len(xs), -1)
    np.testing.assert_allclose(got, np_out(), rtol=2e-5, atol=2e-6)
    y = rng.normal(size=got.shape).astype(np.float32)
    assert_gradients_match(model, xs, y, lambda: np.mean((np_out() - y) ** 2), p)


def test_ops_on_arrays_compute_at_once():
    v = np.array([[-1.5, 0.0, 2.0]], np.float32)
    np.testing.assert_allclose(ops.relu(v), [[0, 0, 2]])
    np.testing.assert_allclose(ops.mean(v, axis=-1), [1 / 6], rtol=1e-6)
    np.testing.assert_allclose(ops.softmax(v), np_softmax(v.astype(np.float64)), rtol=1e-6)
    np.testing.assert_allclose(ops.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_allclose(ops.where(v > 0, v, -v), [[1.5, 0, 2]])
    assert ops.add(1, 2) == 3


def test_a_lambda_is_one_program_and_trains_as_keras(rng):
    keras = import_keras()

    def make(lib, o):
        x = lib.Input(shape=(6,))
        h = lib.layers.Dense(5, activation="tanh")(x)
        scaled = lib.layers.Lambda(lambda t: o.square(t) * 2.0 - o.mean(t, axis=-1, keepdims=True))(
            h
        )
        return lib.Model(x, lib.layers.Dense(3, activation="softmax")(scaled))

    km, dm = make(keras, keras.ops), make(dc, ops)
    assert [type(la).__name__ for la in dm.layers] == ["Dense", "Lambda", "Dense"]
    program = dm.layers[1]._program
    assert [s["kind"] for s in program.steps] == ["unary", "binary", "reduce", "binary"]
    dm.set_weights(km.get_weights())
    xs, ys = rng.normal(size=(48, 6)).astype(np.float32), rng.integers(0, 3, 48)
    assert_trains_as_keras(keras, km, dm, xs, ys, "sparse_categorical_crossentropy")


def test_lambdas_and_ops_in_sequential_subclassed_and_saved_models(rng, tmp_path):
    xs = rng.normal(size=(16, 4)).astype(np.float32)
    seq = dc.Sequential(
        [dc.Input((4,)), L.Dense(3), L.Lambda(lambda t, k: ops.relu(t) * k, arguments={"k": 2.0})]
    )
    hv = xs @ seq.get_weights()[0] + seq.get_weights()[1]
    np.testing.assert_allclose(
        seq.predict(xs, verbose=0), 2 * np.maximum(hv, 0), rtol=1e-5, atol=1e-6
    )

    class Net(dc.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(3)

        def call(self, x):
            h = self.dense(x)
            return ops.sum(ops.square(h), axis=-1, keepdims=True) / 3.0 + 1.0

    net = Net()
    net.compile("sgd", "mse")
    net.fit(xs, np.ones((16, 1), np.float32), epochs=1, verbose=0)
    assert [type(la).__name__ for la in net.layers] == ["Dense"]  # the ops are not layers
    hv = xs @ net.get_weights()[0] + net.get_weights()[1]
    np.testing.assert_allclose(
        net.predict(xs, verbose=0), (hv**2).mean(-1, keepdims=True) + 1, rtol=1e-5
    )
    for model in (seq, net):
        model.compile("adam", "mse")
        model.fit(xs, np.zeros((16, *model.output_shape[1:]), np.float32), verbose=0)
        model.save(tmp_path / "m.dc")
        loaded = dc.models.load_model(tmp_path / "m.dc")
        np.testing.assert_array_equal(loaded.predict(xs, verbose=0), model.predict(xs, verbose=0))
        assert [type(la).__name__ for la in loaded.layers] == [
            type(la).__name__ for la in model.layers
        ]


def test_ops_errors_name_the_op_and_the_shapes():
    x = dc.Input(shape=(3, 4))
    with pytest.raises(ValueError, match="axis 0 is the batch axis"):
        ops.sum(x, axis=0)
    with pytest.raises(ValueError, match=r"do not broadcast"):
        ops.add(x, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="cannot reshape \\(None, 3, 4\\) to \\(None, 5\\)"):
        ops.reshape(x, (-1, 5))
    with pytest.raises(ValueError, match="the batch axis stays first: pass axes=\\(0, ...\\)"):
        ops.transpose(x)
    with pytest.raises(ValueError, match="is not an order of the axes"):
        ops.transpose(x, (0, 1, 1))
    with pytest.raises(ValueError, match="a fixed matrix is a Dense layer"):
        ops.matmul(x, np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="models compute in float32"):
        ops.cast(x, "int32")
    with pytest.raises(ValueError, match="may use deepcore.ops and operators only; it calls Dense"):
        L.Lambda(lambda t: L.Dense(2)(t))(x)

    def branchy(t):
        if ops.sum(t) > 0:  # a value-dependent branch
            return t
        return -t

    with pytest.raises(ValueError, match="cannot be traced at .*test_ops.py:\\d+ \\(if ops.sum"):
        L.Lambda(branchy)(x)
    with pytest.raises(ValueError, match="program"):
        dc.layers.Lambda.from_config(
            {
                "name": "bad",
                "program": {"inputs": 1, "constants": [], "steps": [{"kind": "nope", "a": 0}]},
            }
        )
