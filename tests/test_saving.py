"""Saving and loading: round trips, exact resume of training, corruption, atomic writes."""

import hashlib
import json
import os
import pathlib

import numpy as np
import pytest

import deepcore as dc
from deepcore import saving

# --------------------------------------------------------------------------- helpers


def _data(n=64, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 4)).astype(np.float32)
    y = dc.utils.to_categorical((x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1), 3)
    return x, y


def _model(optimizer=None, compile=True):
    model = dc.Sequential(
        [
            dc.Input(shape=(4,)),
            dc.layers.Dense(16, activation="relu", kernel_regularizer=dc.regularizers.l2(1e-3)),
            dc.layers.Dropout(0.25),
            dc.layers.Dense(3),
            dc.layers.Activation("softmax"),
        ],
        name="net",
    )
    if compile:
        model.compile(
            optimizer=optimizer or dc.optimizers.Adam(0.01),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model


def _summary(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines


def _trained_file(tmp_path, epochs=1):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    path = tmp_path / "model.dc"
    model.save(path)
    return model, path


def _header(raw):
    n = int.from_bytes(raw[:8], "little")
    return n, json.loads(raw[8 : 8 + n])


# ------------------------------------------------------------------------------ round trip


def test_save_load_round_trip_is_bit_identical(tmp_path):
    x, y = _data()
    model, path = _trained_file(tmp_path, epochs=2)
    loaded = dc.models.load_model(path)
    assert np.array_equal(model.predict(x), loaded.predict(x))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)
    assert _summary(loaded) == _summary(model)
    assert saving.model_config(loaded) == saving.model_config(model)
    assert saving.compile_config(loaded) == saving.compile_config(model)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 8
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert loaded.layers[0].kernel_regularizer.l2 == pytest.approx(1e-3)


def test_compile_settings_survive(tmp_path):
    x, y = _data()
    model = _model(compile=False)
    model.compile(
        optimizer=dc.optimizers.SGD(0.05, momentum=0.9, nesterov=True, clipnorm=1.0),
        loss=dc.losses.CategoricalCrossentropy(from_logits=False, name="cce"),
        metrics=[dc.metrics.AUC(num_thresholds=50), dc.metrics.Precision(thresholds=0.3), "mae"],
    )
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m")
    loaded = dc.models.load_model(tmp_path / "m")
    assert isinstance(loaded.optimizer, dc.optimizers.SGD)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded._loss.get_config() == model._loss.get_config()
    assert loaded.metrics_names == model.metrics_names
    assert loaded._metrics[0].num_thresholds == 50 and loaded._metrics[1].threshold == 0.3
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)

    huber = dc.Sequential([dc.Input((4,)), dc.layers.Dense(3)])
    huber.compile(optimizer="rmsprop", loss=dc.losses.Huber(delta=0.5))
    huber.save(tmp_path / "h")
    assert dc.models.load_model(tmp_path / "h")._loss.delta == 0.5


def test_uncompiled_model_round_trip(tmp_path):
    model = _model(compile=False)
    model.build()
    model.save(tmp_path / "m")
    loaded = dc.models.load_model(tmp_path / "m")
    assert not loaded.compiled
    x, _ = _data()
    assert np.array_equal(model.predict(x), loaded.predict(x))


def test_initializer_settings_survive(tmp_path):
    # The layer configs carry their initializers, so a model rebuilt from a saved file
    # (or from get_config) starts from the same kind of weights.
    init = dc.initializers
    model = dc.Sequential(
        [
            dc.Input(shape=(4,)),
            dc.layers.Dense(
                8,
                kernel_initializer=init.RandomNormal(mean=0.5, stddev=0.1, seed=3),
                bias_initializer=init.Constant(2.0),
            ),
            dc.layers.BatchNormalization(gamma_initializer=init.RandomUniform(1.0, 2.0, seed=4)),
            dc.layers.Dense(
                3, kernel_initializer=init.VarianceScaling(0.5, "fan_out", "uniform", seed=5)
            ),
            dc.layers.Dense(3, kernel_initializer="he_uniform"),
        ]
    )
    model.save(tmp_path / "m")
    loaded = dc.models.load_model(tmp_path / "m")
    for a, b in zip(model.layers, loaded.layers):
        assert a.get_config() == b.get_config()
        copy = type(a).from_config(a.get_config())
        assert copy.get_config() == a.get_config()
    dense = loaded.layers[0].get_config()
    assert dense["kernel_initializer"] == {
        "class_name": "RandomNormal",
        "config": {"mean": 0.5, "stddev": 0.1, "seed": 3},
    }
    assert dense["bias_initializer"]["config"] == {"value": 2.0}
    # Seeded initializers give the same weights again when the config is rebuilt.
    rebuilt = dc.Sequential([dc.Input(shape=(4,)), type(model.layers[0]).from_config(dense)])
    np.testing.assert_array_equal(rebuilt.layers[0].kernel, model.layers[0].kernel)
    with pytest.raises(ValueError, match="Unknown initializer: 'Nope'"):
        init.get({"class_name": "Nope", "config": {}})


def test_loading_does_not_consume_global_random_draws(tmp_path):
    _, path = _trained_file(tmp_path)
    dc.utils.set_random_seed(3)
    expected = dc.utils.rng().random(4)
    dc.utils.set_random_seed(3)
    dc.models.load_model(path)
    assert np.array_equal(dc.utils.rng().random(4), expected)


def test_save_weights_load_weights_round_trip(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.weights")
    other = _model()  # fresh weights, same architecture
    assert not np.array_equal(other.predict(x), model.predict(x))
    other.load_weights(tmp_path / "w.weights")
    assert np.array_equal(other.predict(x), model.predict(x))
    # load_weights also reads full-model files; an unbuilt model takes the saved input shape
    model.save(tmp_path / "full")
    lazy = dc.Sequential(
        [
            dc.layers.Dense(16, activation="relu"),
            dc.layers.Dropout(0.25),
            dc.layers.Dense(3),
            dc.layers.Activation("softmax"),
        ]
    )
    lazy.load_weights(tmp_path / "full")
    assert np.array_equal(lazy.predict(x), model.predict(x))
    # a weights-only file holds no optimizer state or compile config
    _, meta = saving.read_file(tmp_path / "w.weights")
    assert meta["contents"] == "weights" and "compile" not in meta and "training" not in meta


def test_load_weights_rejects_other_architecture(tmp_path):
    model = _model()
    model.build()
    model.save_weights(tmp_path / "w")
    wider = dc.Sequential(
        [
            dc.Input((4,)),
            dc.layers.Dense(16, activation="relu"),
            dc.layers.Dropout(0.25),
            dc.layers.Dense(5, name="head"),
            dc.layers.Activation("softmax"),
        ]
    )
    wider.build()
    before = wider.get_weights()
    with pytest.raises(ValueError, match=r"'head'.*expects shape \(16, 5\), received \(16, 3\)"):
        wider.load_weights(tmp_path / "w")
    for a, b in zip(before, wider.get_weights()):  # nothing was loaded
        assert np.array_equal(a, b)

    shorter = dc.Sequential([dc.Input((4,)), dc.layers.Dense(16, name="only")])
    with pytest.raises(ValueError, match=r"4 layers.*has 1 \['only'\]"):
        shorter.load_weights(tmp_path / "w")

    no_bias = dc.Sequential(
        [
            dc.Input((4,)),
            dc.layers.Dense(16, use_bias=False, name="nb"),
            dc.layers.Dropout(0.25),
            dc.layers.Dense(3),
            dc.layers.Activation("softmax"),
        ]
    )
    with pytest.raises(ValueError, match=r"'nb'.*\['kernel'\], the file has \['kernel', 'bias'\]"):
        no_bias.load_weights(tmp_path / "w")


def _cnn():
    L = dc.layers
    model = dc.Sequential(
        [
            dc.Input(shape=(8, 8, 2)),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(2),
            L.Conv2D(6, (2, 2), strides=(1, 1), activation="tanh"),
            L.AveragePooling2D(pool_size=1),
            L.Reshape((3, 3, 6)),
            L.Dropout(0.2),
            L.GlobalAveragePooling2D(),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_every_layer_kind_survives_save_and_resume(tmp_path):
    # Convolution, pooling, batch normalization (moving statistics too), reshaping,
    # dropout: a saved CNN loads with the same predictions and trains on bit-exactly.
    r = np.random.default_rng(1)
    x = r.normal(size=(32, 8, 8, 2)).astype(np.float32)
    y = r.integers(0, 3, 32)
    fit = dict(batch_size=8, verbose=0)
    dc.utils.set_random_seed(7)
    a = _cnn()
    a.fit(x, y, epochs=4, **fit)
    dc.utils.set_random_seed(7)
    b = _cnn()
    b.fit(x, y, epochs=2, **fit)
    b.save(tmp_path / "cnn")
    c = dc.models.load_model(tmp_path / "cnn")
    assert [type(l) for l in c.layers] == [type(l) for l in b.layers]
    assert saving.model_config(c) == saving.model_config(b)
    assert np.array_equal(c.predict(x), b.predict(x))
    c.fit(x, y, epochs=2, **fit)
    for wa, wc in zip(a.get_weights(), c.get_weights()):
        assert np.array_equal(wa, wc)


def test_get_config_from_config_and_clone_model():
    model = _cnn()
    config = model.get_config()
    assert config["input_shape"] == [8, 8, 2] and len(config["layers"]) == 10
    json.dumps(config)  # plain data
    copy = dc.Sequential.from_config(config)
    assert copy.get_config() == config
    assert not copy.compiled
    clone = dc.models.clone_model(model)
    assert clone.get_config() == config
    assert any(not np.array_equal(a, b) for a, b in zip(clone.get_weights(), model.get_weights()))
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 2)).astype(np.float32)
    assert np.array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    # A model whose input shape is not known yet has no weights, but a config.
    lazy = dc.Sequential([dc.layers.Dense(3)], name="lazy")
    assert lazy.get_config()["input_shape"] is None
    assert dc.Sequential.from_config(lazy.get_config()).get_config() == lazy.get_config()
    with pytest.raises(ValueError, match="unknown layer class 'Bogus'"):
        dc.Sequential.from_config({"layers": [{"class_name": "Bogus", "config": {}}]})


# ---------------------------------------------------------------------------------- resume


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda: dc.optimizers.Adam(0.01), lambda: dc.optimizers.SGD(0.05, momentum=0.9)],
    ids=["adam", "sgd_momentum"],
)
def test_resume_is_bit_exact(tmp_path, make_optimizer):
    x, y = _data()
    fit = dict(batch_size=8, shuffle=True, verbose=0)

    dc.utils.set_random_seed(42)
    a = _model(make_optimizer())
    history_a = a.fit(x, y, epochs=6, **fit).history

    dc.utils.set_random_seed(42)
    b = _model(make_optimizer())
    b.fit(x, y, epochs=3, **fit)
    b.save(tmp_path / "checkpoint")
    del b
    c = dc.models.load_model(tmp_path / "checkpoint")
    history_c = c.fit(x, y, epochs=3, **fit).history

    for wa, wc in zip(a.get_weights(), c.get_weights()):
        assert np.array_equal(wa, wc)
    assert history_a["loss"][3:] == history_c["loss"]
    assert a.optimizer.iterations == c.optimizer.iterations == 48


# ------------------------------------------------------------------------------ corruption


def test_every_flipped_byte_is_detected(tmp_path):
    _, path = _trained_file(tmp_path)
    raw = path.read_bytes()
    n, _ = _header(raw)
    r = np.random.default_rng(2024)
    header_positions = r.choice(8 + n, 50, replace=False)
    data_positions = r.choice(np.arange(8 + n, len(raw)), 50, replace=False)
    positions = np.concatenate([header_positions, data_positions])
    bad = tmp_path / "bad.dc"
    for pos in positions:
        data = bytearray(raw)
        data[pos] ^= int(r.integers(1, 256))
        bad.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="Cannot load"):
            dc.models.load_model(bad)
        with pytest.raises(ValueError, match="Cannot load"):
            _model().load_weights(bad)


def test_truncated_files_are_detected(tmp_path):
    _, path = _trained_file(tmp_path)
    raw = path.read_bytes()
    bad = tmp_path / "short.dc"
    for length in np.random.default_rng(7).choice(len(raw), 20, replace=False):
        bad.write_bytes(raw[:length])
        with pytest.raises(ValueError, match="Cannot load"):
            dc.models.load_model(bad)


def test_newer_format_version_is_refused(tmp_path):
    _, path = _trained_file(tmp_path)
    raw = path.read_bytes()
    assert raw.count(b'"format_version":"1"') == 1
    path.write_bytes(raw.replace(b'"format_version":"1"', b'"format_version":"2"'))
    message = r"newer deepcore \(format_version 2; this version reads 1\)"
    with pytest.raises(ValueError, match=message):
        dc.models.load_model(path)


def test_other_files_are_refused(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(ValueError, match="junk.bin.*not a safetensors file"):
        dc.models.load_model(junk)
    junk.write_bytes(b"")
    with pytest.raises(ValueError, match="truncated"):
        dc.models.load_model(junk)
    # A valid safetensors file that deepcore did not write.
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(len(header).to_bytes(8, "little") + header + np.ones(2, "<f4").tobytes())
    with pytest.raises(ValueError, match="not a deepcore file"):
        dc.models.load_model(foreign)
    with pytest.raises(FileNotFoundError):
        dc.models.load_model(tmp_path / "missing.dc")


def test_file_layout_matches_the_documented_format(tmp_path):
    model, path = _trained_file(tmp_path)
    raw = path.read_bytes()
    n, header = _header(raw)
    assert n % 8 == 0 and raw[8:9] == b"{"
    meta = header.pop("__metadata__")
    assert meta["format"] == "deepcore" and meta["format_version"] == "1"
    assert all(isinstance(v, str) for v in meta.values())
    zeroed = raw.replace(meta["sha256"].encode(), b"0" * 64)
    assert hashlib.sha256(zeroed).hexdigest() == meta["sha256"]
    assert json.loads(meta["training"])["iterations"] == model.optimizer.iterations
    names = ["layers.0.kernel", "layers.0.bias", "layers.2.kernel", "layers.2.bias"]
    assert list(header) == [*names, "optimizer.slots"]
    data = raw[8 + n :]
    for name, w in zip(names, model.get_weights()):
        begin, end = header[name]["data_offsets"]
        assert header[name]["dtype"] == "F32" and header[name]["shape"] == list(w.shape)
        assert np.array_equal(np.frombuffer(data[begin:end], "<f4").reshape(w.shape), w)
    begin, end = header["optimizer.slots"]["data_offsets"]
    assert np.array_equal(np.frombuffer(data[begin:end], "<f4"), model._engine.optimizer_state())
    assert end == len(data)


# ------------------------------------------------------------------------ atomicity, paths


def test_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    x, y = _data()
    model, path = _trained_file(tmp_path)
    first = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)  # the weights change

    def fail(*args):
        raise OSError("disk full")

    for target in ("fsync", "replace"):
        with monkeypatch.context() as m:
            m.setattr(os, target, fail)
            with pytest.raises(OSError, match="disk full"):
                model.save(path)
            with pytest.raises(OSError, match="disk full"):
                model.save_weights(path)
    assert sorted(os.listdir(tmp_path)) == ["model.dc"]
    for a, b in zip(dc.models.load_model(path).get_weights(), first):
        assert np.array_equal(a, b)
    model.save(path)  # a save that succeeds replaces the file
    assert np.array_equal(dc.models.load_model(path).predict(x), model.predict(x))


def test_paths(tmp_path):
    model = _model()
    model.build()
    model.save(str(tmp_path / "plain"))
    model.save(pathlib.Path(tmp_path / "model.keras"))
    assert sorted(os.listdir(tmp_path)) == ["model.keras", "plain"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "no" / "such" / "dir" / "m")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "plain", overwrite=False)
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["model.keras", "plain"]


@pytest.mark.skipif(not hasattr(dc._core, "ScheduleSpec"), reason="engine without schedules")
def test_learning_rate_schedule_survives(tmp_path):
    x, y = _data()
    schedule = dc.schedules.ExponentialDecay(0.05, decay_steps=4, decay_rate=0.5)
    model = _model(dc.optimizers.SGD(schedule, momentum=0.9))
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m")
    loaded = dc.models.load_model(tmp_path / "m")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    model.fit(x, y, epochs=1, verbose=0)
    loaded.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)


def test_metric_settings_survive_and_are_checked_on_load(tmp_path):
    M = dc.metrics
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3, activation="softmax")])
    chosen = [M.Precision(thresholds=0.3, name="p"), M.TopKCategoricalAccuracy(k=2), M.AUC(50)]
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy", *chosen])
    model.save(tmp_path / "m")
    loaded = dc.models.load_model(tmp_path / "m")
    assert loaded._metrics[0] == "accuracy"
    for a, b in zip(loaded._metrics[1:], chosen):
        assert type(a) is type(b) and a.get_config() == b.get_config()
    assert chosen[0].get_config() == {"name": "p", "thresholds": 0.3}
    with pytest.raises(ValueError, match="k must be a positive integer"):
        M.deserialize({"class_name": "TopKCategoricalAccuracy", "config": {"k": 0}})
