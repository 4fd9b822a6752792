"""Keras 3 files both ways: `model.save("x.keras")` writes a `.keras` archive Keras'
load_model opens, deepcore opens the archives and `.weights.h5` files Keras writes, for
every layer kind deepcore has (predictions within 1e-5); nothing in a file runs as code,
and what deepcore lacks is refused by name."""

import json
import zipfile

import numpy as np
import pytest

import deepcore as dc
from deepcore import layers as L

pytest.importorskip("h5py")


def cnn(lib):
    return lib.Sequential(
        [
            lib.Input(shape=(8, 8, 1)),
            lib.layers.Conv2D(3, 3, activation="relu", padding="same"),
            lib.layers.BatchNormalization(),
            lib.layers.MaxPooling2D(),
            lib.layers.Conv2D(2, 2, strides=2, kernel_regularizer=lib.regularizers.L2(0.01)),
            lib.layers.AveragePooling2D(2, padding="same"),
            lib.layers.Flatten(),
            lib.layers.Dropout(0.3),
            lib.layers.Dense(4, activation="softmax"),
        ]
    )


def sequences(lib):
    ids = lib.Input(shape=(7,))
    e = lib.layers.Embedding(12, 4, mask_zero=True)(ids)
    h = lib.layers.Bidirectional(lib.layers.LSTM(3, return_sequences=True))(e)
    h = lib.layers.GRU(3, return_sequences=True)(h)
    s = lib.layers.SimpleRNN(2)(e)
    t = lib.layers.TimeDistributed(lib.layers.Dense(2))(h)
    pooled = lib.layers.GlobalAveragePooling1D()(t)
    out = lib.layers.Dense(1, activation="sigmoid")(lib.layers.Concatenate()([pooled, s]))
    return lib.Model(ids, out)


def conv1d(lib):
    return lib.Sequential(
        [
            lib.Input(shape=(12, 2)),
            lib.layers.Conv1D(4, 3, activation="relu"),
            lib.layers.MaxPooling1D(2),
            lib.layers.UpSampling1D(2),
            lib.layers.GlobalMaxPooling1D(),
            lib.layers.Dense(2),
            lib.layers.LeakyReLU(0.2),
        ]
    )


def graph(lib):
    a, b = lib.Input(shape=(4,), name="a"), lib.Input(shape=(3,), name="b")
    shared = lib.layers.Dense(4, activation="tanh")
    inner = lib.Sequential([lib.Input(shape=(3,)), lib.layers.Dense(4)], name="inner")
    ha, hb = shared(a), shared(lib.layers.Dense(4)(b))
    frozen = lib.layers.Dense(4)
    frozen.trainable = False
    s = lib.layers.Add()([ha, hb, frozen(inner(b))])
    d = lib.layers.Dot(axes=1)([ha, hb])
    m = lib.layers.Multiply()([s, lib.layers.Subtract()([ha, hb])])
    out = lib.layers.Dense(2, activation="softmax")(lib.layers.Concatenate()([m, d]))
    return lib.Model([a, b], out)


def inputs(kind, rng):
    if kind == "cnn":
        return rng.normal(size=(5, 8, 8, 1)).astype(np.float32)
    if kind == "sequences":
        ids = rng.integers(1, 12, (5, 7))
        ids[0, 3:] = 0
        ids[2, 1:] = 0
        return ids
    if kind == "conv1d":
        return rng.normal(size=(5, 12, 2)).astype(np.float32)
    return [rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)]


MODELS = {"cnn": cnn, "sequences": sequences, "conv1d": conv1d, "graph": graph}


def trained(kind, rng):
    model = MODELS[kind](dc)
    model.compile(dc.optimizers.Adam(0.01), "mse", metrics=["mae"])
    x = inputs(kind, rng)
    y = model.predict(x, verbose=0) + 0.1
    model.fit(x, y, epochs=2, verbose=0)
    return model, x


@pytest.mark.parametrize("kind", list(MODELS))
def test_deepcore_reads_its_keras_files(kind, rng, tmp_path):
    model, x = trained(kind, rng)
    path = tmp_path / "m.keras"
    model.save(path)
    assert zipfile.is_zipfile(path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert json.loads(z.read("metadata.json"))["keras_version"].startswith("3.")
    loaded = dc.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    got, want = loaded.optimizer.get_config(), model.optimizer.get_config()
    assert got.pop("learning_rate") == pytest.approx(want.pop("learning_rate"))  # (float32)
    assert loaded.compiled and got == want
    loaded.fit(x, model.predict(x, verbose=0), verbose=0)  # (compiled as it was)
    # .weights.h5: Keras' weights file, into a model of the same architecture
    model.save_weights(tmp_path / "w.weights.h5")
    fresh = MODELS[kind](dc)
    fresh.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.fixture(scope="module")
def keras():
    from keras_reference import import_keras

    return import_keras()


@pytest.mark.parametrize("kind", list(MODELS))
def test_keras_reads_deepcore_files_and_deepcore_reads_keras(keras, kind, rng, tmp_path):
    model, x = trained(kind, rng)
    model.save(tmp_path / "dc.keras")
    theirs = keras.models.load_model(tmp_path / "dc.keras")
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(theirs.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    assert [w.shape for w in theirs.get_weights()] == [w.shape for w in model.get_weights()]
    # Keras' own file of a Keras model: deepcore opens it
    k = MODELS[kind](keras)
    k.compile(keras.optimizers.RMSprop(0.002), "mse", metrics=["mae"])
    k.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in k.get_weights()])
    k.save(tmp_path / "k.keras")
    ours = dc.models.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(
        ours.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert ours.optimizer.get_config()["learning_rate"] == pytest.approx(0.002)
    k.save_weights(tmp_path / "k.weights.h5")
    mine = MODELS[kind](dc)
    if kind == "graph":  # (a model inside: deepcore's holds its layers, not the model)
        with pytest.raises(ValueError, match="a model inside"):
            mine.load_weights(tmp_path / "k.weights.h5")
        return
    mine.load_weights(tmp_path / "k.weights.h5")
    np.testing.assert_allclose(
        mine.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_frozen_layers_stay_frozen(keras, tmp_path, rng):
    model, _ = trained("graph", rng)
    frozen = [la.name for la in model.layers if not la.trainable]
    assert len(frozen) == 1
    model.save(tmp_path / "g.keras")
    assert keras.models.load_model(tmp_path / "g.keras").get_layer(frozen[0]).trainable is False
    ours = dc.models.load_model(tmp_path / "g.keras")
    assert [la.name for la in ours.layers if not la.trainable] == frozen


def test_what_deepcore_lacks_is_refused_by_name(tmp_path, rng):
    x = dc.Input(shape=(3,))
    with_lambda = dc.Model(x, L.Lambda(lambda t: t * 2.0)(L.Dense(2)(x)))
    with pytest.raises(ValueError, match="Lambda.*deepcore file"):
        with_lambda.save(tmp_path / "l.keras")
    assert not (tmp_path / "l.keras").exists()
    model = dc.Sequential([dc.Input(shape=(3,)), L.Dense(2)])
    model.save(tmp_path / "ok.keras")

    def rewritten(change, name):
        with zipfile.ZipFile(tmp_path / "ok.keras") as z:
            files = {n: z.read(n) for n in z.namelist()}
        config = json.loads(files["config.json"])
        change(config)
        files["config.json"] = json.dumps(config)
        with zipfile.ZipFile(tmp_path / name, "w") as z:
            for n, data in files.items():
                z.writestr(n, data)
        return tmp_path / name

    def dense(config):
        return config["config"]["layers"][1]

    cases = [
        (lambda c: dense(c).update(class_name="Lambda"), "deepcore does not run code"),
        (lambda c: dense(c).update(class_name="Conv3D"), "no layer of this kind"),
        (
            lambda c: dense(c)["config"].update(kernel_constraint={"class_name": "NonNeg"}),
            "does not support kernel_constraint",
        ),
        (lambda c: dense(c)["config"].update(dtype="float16"), "dtype 'float16'"),
        (lambda c: c.update(class_name="MyModel"), "model of class 'MyModel'"),
    ]
    for i, (change, message) in enumerate(cases):
        with pytest.raises(ValueError, match=message):
            dc.models.load_model(rewritten(change, f"bad{i}.keras"))
    (tmp_path / "junk.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a Keras 3 .keras archive"):
        dc.models.load_model(tmp_path / "junk.keras")
    other = dc.Sequential([dc.Input(shape=(3,)), L.Dense(5)])
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(ValueError, match="Cannot load weights"):
        model.load_weights(tmp_path / "other.weights.h5")


def dense_bn(lib):
    return lib.Sequential(
        [
            lib.Input(shape=(6,)),
            lib.layers.Dense(8, activation="tanh"),
            lib.layers.BatchNormalization(),
            lib.layers.Dense(4),
        ]
    )


OPTIMIZERS = {
    "adam": lambda lib: lib.optimizers.Adam(0.01),
    "rmsprop": lambda lib: lib.optimizers.RMSprop(0.01, momentum=0.5),
    "sgd": lambda lib: lib.optimizers.SGD(0.05, momentum=0.9),
    "adagrad": lambda lib: lib.optimizers.Adagrad(0.05),
}


def fit_more(model, x, y):
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_the_optimizer_state_goes_on(opt, rng, tmp_path):
    x, y = rng.normal(size=(32, 6)).astype(np.float32), rng.normal(size=(32, 4)).astype(np.float32)
    model = dense_bn(dc)
    model.compile(OPTIMIZERS[opt](dc), "mse")
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = dc.models.load_model(tmp_path / "m.keras")
    assert loaded.optimizer.iterations == 8
    for a, b in zip(fit_more(loaded, x, y), fit_more(model, x, y), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_keras_goes_on_from_deepcore_and_back(keras, opt, rng, tmp_path):
    x, y = rng.normal(size=(32, 6)).astype(np.float32), rng.normal(size=(32, 4)).astype(np.float32)
    model = dense_bn(dc)
    model.compile(OPTIMIZERS[opt](dc), "mse")
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert int(theirs.optimizer.iterations) == 8
    for a, b in zip(fit_more(model, x, y), fit_more(theirs, x, y), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    theirs.save(tmp_path / "k.keras")
    ours = dc.models.load_model(tmp_path / "k.keras")
    for a, b in zip(fit_more(ours, x, y), fit_more(theirs, x, y), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_custom_objects_and_compile_false(tmp_path, rng):
    model = dense_bn(dc)
    model.compile("adam", "mse")
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.normal(size=(16, 4)).astype(np.float32)
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        files = {n: z.read(n) for n in z.namelist()}
    config = json.loads(files["config.json"])
    # (how Keras writes a loss function of the user's: by name)
    config["compile_config"]["loss"] = {
        "module": "builtins",
        "class_name": "function",
        "config": "my_loss",
        "registered_name": "function",
    }
    files["config.json"] = json.dumps(config)
    with zipfile.ZipFile(tmp_path / "custom.keras", "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match="no loss 'my_loss'; pass it in custom_objects"):
        dc.models.load_model(tmp_path / "custom.keras")

    def my_loss(y_true, y_pred):
        return dc.ops.mean(dc.ops.abs(y_pred - y_true), axis=-1)

    loaded = dc.models.load_model(tmp_path / "custom.keras", custom_objects={"my_loss": my_loss})
    assert loaded.loss is my_loss
    mae = dc.Sequential([dc.Input(shape=(6,)), *dense_bn(dc).layers])
    mae.set_weights(loaded.get_weights())
    mae.compile("adam", "mae")
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(mae.evaluate(x, y, verbose=0))
    plain = dc.models.load_model(tmp_path / "custom.keras", compile=False)
    assert not plain.compiled
    np.testing.assert_array_equal(plain.predict(x, verbose=0), model.predict(x, verbose=0))
    assert not dc.models.load_model(tmp_path / "m.keras", compile=False).compiled
    model.save(tmp_path / "m.deepcore")
    assert not dc.models.load_model(tmp_path / "m.deepcore", compile=False).compiled


def test_hostile_configs_give_value_errors(tmp_path):
    """Mutated configs (wrong types, absurd sizes, missing parts) are refused with a
    ValueError naming the file, never a crash or an allocation the machine cannot hold."""
    model = dc.Sequential([dc.Input(shape=(3,)), L.Dense(4, activation="relu"), L.Dense(2)])
    model.save(tmp_path / "ok.keras")
    with zipfile.ZipFile(tmp_path / "ok.keras") as z:
        files = {n: z.read(n) for n in z.namelist()}
    base = json.loads(files["config.json"])
    rng = np.random.default_rng(0)
    values = [None, -1, 0, 2**40, 1e308, "x", [], {}, [1, 2], {"class_name": 3}, True]

    def paths(node, at=()):
        if isinstance(node, dict):
            for k, v in node.items():
                yield at + (k,)
                yield from paths(v, at + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield at + (i,)
                yield from paths(v, at + (i,))

    every = list(paths(base))
    for trial in range(120):
        config = json.loads(files["config.json"])
        path = every[rng.integers(len(every))]
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = values[rng.integers(len(values))]
        name = tmp_path / f"t{trial}.keras"
        with zipfile.ZipFile(name, "w") as z:
            for n, data in files.items():
                z.writestr(n, json.dumps(config) if n == "config.json" else data)
        try:
            dc.models.load_model(name)
        except ValueError as e:
            assert "Cannot load" in str(e), (path, str(e))
    big = json.loads(files["config.json"])
    big["config"]["layers"][1]["config"]["units"] = 2**30
    with zipfile.ZipFile(tmp_path / "big.keras", "w") as z:
        for n, data in files.items():
            z.writestr(n, json.dumps(big) if n == "config.json" else data)
    with pytest.raises(ValueError, match="Cannot load"):
        dc.models.load_model(tmp_path / "big.keras")


def mean_abs(y_true, y_pred):  # (module level: a file names it)
    return dc.ops.mean(dc.ops.abs(y_pred - y_true), axis=-1)


def test_functions_of_the_user_are_saved_by_name(tmp_path, rng):
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.normal(size=(16, 4)).astype(np.float32)
    model = dense_bn(dc)
    model.compile("adam", mean_abs, metrics=[mean_abs])
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "f.keras")
    loaded = dc.models.load_model(tmp_path / "f.keras", custom_objects={"mean_abs": mean_abs})
    assert loaded.evaluate(x, y, return_dict=True) == model.evaluate(x, y, return_dict=True)
    model.compile("adam", lambda a, b: mean_abs(a, b))
    with pytest.warns(UserWarning, match="without its compile configuration"):
        model.save(tmp_path / "l.keras")
    assert not dc.models.load_model(tmp_path / "l.keras").compiled
