"""model.export(path, format="onnx"): the exported file, run in onnxruntime, gives the
model's predictions (within 1e-5) for every layer kind that exports; the others are refused
by name."""

import numpy as np
import pytest

import deepcore as dc
from deepcore import layers as L

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def cnn():
    return dc.Sequential(
        [
            dc.Input(shape=(9, 9, 2)),
            L.Conv2D(4, 3, activation="relu", padding="same"),
            L.BatchNormalization(),
            L.MaxPooling2D(padding="same"),
            L.Conv2D(3, 2, strides=2, activation="elu"),
            L.AveragePooling2D(2, strides=1, padding="same"),
            L.Flatten(),
            L.Dropout(0.3),
            L.Dense(5, activation="softmax"),
        ]
    )


def conv1d():
    return dc.Sequential(
        [
            dc.Input(shape=(12, 3)),
            L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="gelu"),
            L.MaxPooling1D(2),
            L.Conv1D(4, 2, padding="same", activation="swish"),
            L.AveragePooling1D(2, padding="same"),
            L.UpSampling1D(3),
            L.BatchNormalization(),
            L.GlobalAveragePooling1D(),
            L.Dense(3),
            L.LeakyReLU(0.2),
        ]
    )


def recurrent():
    ids = dc.Input(shape=(6,))
    e = L.Embedding(11, 4)(ids)
    a = L.LSTM(3, return_sequences=True)(e)
    b = L.GRU(3, return_sequences=True, go_backwards=True)(e)
    c = L.Bidirectional(L.SimpleRNN(2, return_sequences=True), merge_mode="sum")(e)
    d = L.Bidirectional(L.LSTM(2))(L.Concatenate()([a, b, c]))
    t = L.TimeDistributed(L.Dense(2, activation="tanh"))(c)
    pooled = L.GlobalMaxPooling1D()(t)
    last = L.GRU(2)(L.Reshape((6, 2))(L.Flatten()(t)))
    return dc.Model(ids, L.Dense(1, activation="sigmoid")(L.Concatenate()([d, pooled, last])))


def graph():
    a, b = dc.Input(shape=(4,), name="a"), dc.Input(shape=(3,), name="b")
    shared = L.Dense(4, activation="selu")
    ha, hb = shared(a), shared(L.Dense(4, activation="hard_sigmoid")(b))
    s = L.Add()([ha, hb, L.Dense(4, activation="softplus")(a)])
    m = L.Multiply()([s, L.Subtract()([ha, hb]), L.Average()([ha, hb])])
    mx = L.Maximum()([ha, hb, m])
    mn = L.Minimum()([ha, hb])
    d = L.Dot(axes=1, normalize=True)([mx, mn])
    seq = L.Reshape((2, 2))(mx)
    d3 = L.Flatten()(L.Dot(axes=(1, 1))([seq, L.Reshape((2, 2))(mn)]))
    out1 = L.Dense(2, activation="softmax", name="cls")(L.Concatenate()([m, d, d3]))
    out2 = L.Activation("softsign", name="reg")(L.Dense(1)(mn))
    return dc.Model([a, b], [out1, out2])


def inputs(kind, rng):
    if kind == "cnn":
        return [rng.normal(size=(6, 9, 9, 2)).astype(np.float32)]
    if kind == "conv1d":
        return [rng.normal(size=(6, 12, 3)).astype(np.float32)]
    if kind == "recurrent":
        return [rng.integers(0, 11, (6, 6)).astype(np.float32)]
    return [rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)]


MODELS = {"cnn": cnn, "conv1d": conv1d, "recurrent": recurrent, "graph": graph}


@pytest.mark.parametrize("kind", list(MODELS))
def test_onnxruntime_gives_the_predictions(kind, rng, tmp_path):
    model = MODELS[kind]()
    model.compile("adam", "mse")
    xs = inputs(kind, rng)
    # trained a little: batch statistics and weights away from their initial values
    ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    model.fit(xs if len(xs) > 1 else xs[0], ys, epochs=2, verbose=0)
    path = tmp_path / "m.onnx"
    model.export(path, format="onnx", verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: x for i, x in zip(session.get_inputs(), xs)}
    got = session.run(None, feed)
    want = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    want = want if isinstance(want, list) else [want]
    names = None if isinstance(model, dc.Sequential) else model.output_names
    assert [o.name for o in session.get_outputs()] == (names or ["output"])
    if kind == "graph":
        assert names == ["cls", "reg"] and [i.name for i in session.get_inputs()] == ["a", "b"]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6)
    # a batch of another size (the batch axis is free)
    one = {k: v[:1] for k, v in feed.items()}
    np.testing.assert_allclose(session.run(None, one)[0], want[0][:1], rtol=1e-5, atol=2e-6)


def test_what_does_not_export_is_refused_by_name(tmp_path):
    x = dc.Input(shape=(5,))
    masked = dc.Model(x, L.LSTM(2)(L.Embedding(10, 3, mask_zero=True)(x)))
    with pytest.raises(ValueError, match="'embedding.*masks have no ONNX export"):
        masked.export(tmp_path / "m.onnx", format="onnx")
    lam = dc.Model(x, L.Lambda(lambda t: t * 2.0)(x))
    with pytest.raises(ValueError, match="Lambda.*does not export to ONNX"):
        lam.export(tmp_path / "l.onnx", format="onnx")
    with pytest.raises(ValueError, match="format='onnx' only"):
        lam.export(tmp_path / "saved")
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "l.onnx").exists()
