"""Saving and loading: round trips, exact resume of training, corruption, atomic writes."""

import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import threading
import time

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


def _tamper(path, header=None, data=None, out=None):
    """A copy of the deepcore file `path` (at `out`, by default "tampered.dc" next to it)
    with its header and data edited and the checksum recomputed, so that it passes the
    integrity check: what a hostile file looks like. `data(tensors)` edits the tensors
    (writable arrays over the data, by name) or returns new data bytes; `header(header)`
    edits the header dict in place (the metadata values are JSON texts) or returns a new
    header, as a dict or as JSON text. Returns the new file's path."""
    raw = pathlib.Path(path).read_bytes()
    n, head = _header(raw)
    body = bytearray(raw[8 + n :])
    if data is not None:
        tensors = {}
        for name, entry in head.items():
            if name != "__metadata__":
                begin, end = entry["data_offsets"]
                count = (end - begin) // 4
                tensors[name] = np.frombuffer(body, "<f4", count, begin).reshape(entry["shape"])
        replaced = data(tensors)
        body = body if replaced is None else bytearray(replaced)
    head["__metadata__"]["sha256"] = "0" * 64
    if header is not None:
        head = header(head) or head
    text = (head if isinstance(head, str) else json.dumps(head, separators=(",", ":"))).encode()
    text += b" " * (-len(text) % 8)
    blob = bytearray(len(text).to_bytes(8, "little") + text + bytes(body))
    at = blob.index(b'"sha256":"' + b"0" * 64) + len(b'"sha256":"')
    blob[at : at + 64] = hashlib.sha256(blob).hexdigest().encode()
    out = pathlib.Path(out or pathlib.Path(path).with_name("tampered.dc"))
    out.write_bytes(bytes(blob))
    return out


def _meta(key, change):
    """A `header` edit for `_tamper`: `change` edits the parsed JSON of metadata entry `key`
    in place (or returns the new value)."""

    def edit(header):
        value = json.loads(header["__metadata__"][key])
        value = change(value) or value
        header["__metadata__"][key] = json.dumps(value, separators=(",", ":"))

    return edit


def _text(key, old, new):
    """A `header` edit for `_tamper`: replaces `old` by `new` in the JSON text of metadata
    entry `key` (for what json.dumps does not write: 1e999, deep nesting, ...)."""

    def edit(header):
        assert old in header["__metadata__"][key]
        header["__metadata__"][key] = header["__metadata__"][key].replace(old, new)

    return edit


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
    assert loaded._out.losses[0].get_config() == model._out.losses[0].get_config()
    assert loaded.metrics_names == model.metrics_names
    chosen = [m for m, *_ in loaded._out.metrics]
    assert chosen[0].num_thresholds == 50 and chosen[1].threshold == 0.3
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)

    huber = dc.Sequential([dc.Input((4,)), dc.layers.Dense(3)])
    huber.compile(optimizer="rmsprop", loss=dc.losses.Huber(delta=0.5))
    huber.save(tmp_path / "h")
    assert dc.models.load_model(tmp_path / "h")._out.losses[0].delta == 0.5


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
    found = [m for m, *_ in loaded._out.metrics]
    assert found[0] == "accuracy"
    for a, b in zip(found[1:], chosen):
        assert type(a) is type(b) and a.get_config() == b.get_config()
    assert chosen[0].get_config() == {"name": "p", "thresholds": 0.3}
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        M.deserialize({"class_name": "TopKCategoricalAccuracy", "config": {"k": 0}})


# --------------------------------------------------------------------------- hostile files
# Files with a valid checksum whose contents are hostile: each must be refused with
# ValueError("Cannot load '<path>': ...") in time linear in its size, before the model's
# weights are allocated.


def _small_file(tmp_path):
    model = dc.Sequential([dc.Input((4,)), dc.layers.Dense(2, name="small")])
    model.save(tmp_path / "small.dc")
    return tmp_path / "small.dc"


def test_huge_shape_list_is_refused_in_linear_time(tmp_path):
    # One tensor entry with a 100,000-entry shape list of 19-digit dimensions (2 MB):
    # multiplying them out took 23-30 s (quadratic in the size of the growing product).
    def huge(header):
        header["layers.0.kernel"]["shape"] = [2**62] * 100_000

    bad = _tamper(_small_file(tmp_path), huge)
    assert bad.stat().st_size > 2_000_000
    for load in (dc.models.load_model, lambda p: _model().load_weights(p)):
        start = time.perf_counter()
        with pytest.raises(
            ValueError,
            match=r"tampered.dc'.*'layers.0.kernel'.*at most 32 dimensions, received 100000",
        ):
            load(bad)
        seconds = time.perf_counter() - start
        print(f"2 MB hostile header ({bad.stat().st_size} bytes) refused in {seconds:.3f} s")
        assert seconds < 2


@pytest.mark.parametrize(
    "entry, match",
    [
        ({"shape": [1] * 33}, "at most 32 dimensions, received 33"),
        ({"shape": [2, -1]}, r"must hold ints in \[0, 2\*\*31\)"),
        ({"shape": [2**31, 0]}, r"must hold ints in \[0, 2\*\*31\)"),
        ({"shape": [2, True]}, r"must hold ints in \[0, 2\*\*31\)"),
        ({"shape": [2, 2.0]}, r"must hold ints in \[0, 2\*\*31\)"),
        ({"shape": "42"}, "the shape must be a list"),
        ({"shape": [2**30] * 32}, "does not match data_offsets"),
        ({"dtype": "F16"}, "dtype 'F16', deepcore files hold F32"),
        ({"data_offsets": [8, 0]}, "must be \\[begin, end\\] with 0 <= begin <= end"),
        ({"data_offsets": [0, 2**60]}, "must be \\[begin, end\\] with 0 <= begin <= end"),
        ({"data_offsets": [0, 2**70]}, "header holds an integer of 22 digits"),
        ({"extra": 1}, "expected the keys dtype, shape, data_offsets"),
    ],
)
def test_tensor_entries_are_checked(tmp_path, entry, match):
    bad = _tamper(_small_file(tmp_path), lambda h: h["layers.0.kernel"].update(entry))
    where = "" if "digits" in match else "'layers.0.kernel'.*"
    with pytest.raises(ValueError, match="tampered.dc'.*" + where + match):
        dc.models.load_model(bad)


MEMORY_CHILD = textwrap.dedent(
    """
    import json, os, resource, sys
    import deepcore as dc

    small, huge_units, huge_input = sys.argv[1:4]
    dc.models.load_model(small)  # warm up: imports, the engine's threads
    dc.Sequential([dc.layers.Dense(2)]).load_weights(small)

    def peak_mb():
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb / 2**20 if sys.platform == "darwin" else kb / 2**10

    if os.path.exists("/proc/self/statm") and os.environ.get("DEEPCORE_SANITIZED") != "1":
        # 2 GiB more address space than now, so that a regression fails (MemoryError)
        # instead of taking the machine's memory: unchecked, these files take 5.7 GB.
        size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + 2 * 2**30, resource.RLIM_INFINITY))
    results = {}

    def attempt(name, load):
        before = peak_mb()
        try:
            load()
            outcome = "loaded"
        except ValueError as e:
            outcome = "ValueError: " + str(e)
        except BaseException as e:
            outcome = type(e).__name__ + ": " + str(e)
        results[name] = {"outcome": outcome, "growth_mb": peak_mb() - before}

    attempt("load_model", lambda: dc.models.load_model(huge_units))
    lazy = dc.Sequential([dc.layers.Dense(16, name="lazy")])
    attempt("load_weights", lambda: lazy.load_weights(huge_input))
    results["lazy_built"] = lazy.built
    attempt("device", lambda: dc.models.load_model("/dev/zero"))
    print(json.dumps(results))
    """
)


def test_architecture_is_checked_before_allocating(tmp_path):
    # Small files describing a Dense of 2**26 units (1.25 GB of weights, 5.7 GB at the
    # peak of building and initialising them) or a 2**25-value input (2 GB of kernel),
    # whose tensors do not match: the engine plans the weights' shapes and the file is
    # refused before any is allocated (an unbuilt model stays unbuilt).
    small = _small_file(tmp_path)
    units = json.dumps({"units": 2**26})[1:-1]
    huge_units = _tamper(small, _text("model", '"units":2', units), out=tmp_path / "units.dc")
    minimal = {
        "__metadata__": {
            "format": "deepcore",
            "format_version": "1",
            "contents": "weights",
            "model": json.dumps(
                {
                    "class_name": "Sequential",
                    "config": {
                        "input_shape": [2**25],
                        "layers": [{"class_name": "Dense", "config": {"units": 16}}],
                    },
                }
            ),
            "sha256": "0" * 64,
        }
    }
    huge_input = _tamper(small, lambda h: minimal, lambda t: b"", out=tmp_path / "input.dc")
    print(f"hostile files: {huge_units.stat().st_size} and {huge_input.stat().st_size} bytes")
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(small), str(huge_units), str(huge_input)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout.strip().splitlines()[-1])
    for name in ("load_model", "load_weights", "device"):
        print(
            f"{name}: peak memory growth {results[name]['growth_mb']:.1f} MB; "
            f"{results[name]['outcome']}"
        )
    assert results["load_model"]["outcome"].startswith("ValueError: Cannot load")
    assert re.search(
        r"layer 'small' \(Dense, index 0\): weight 'kernel' expects shape \(4, 67108864\), "
        r"received \(4, 2\)",
        results["load_model"]["outcome"],
    )
    assert results["load_weights"]["outcome"].startswith("ValueError: Cannot load weights")
    assert re.search(
        r"\(Dense, index 0\) has weights \['kernel', 'bias'\], the file has \[\]",
        results["load_weights"]["outcome"],
    )
    assert not results["lazy_built"]  # a failed load_weights leaves the model unbuilt
    assert results["device"]["outcome"].startswith("ValueError: Cannot load")
    assert "not a regular file" in results["device"]["outcome"]
    for name in ("load_model", "load_weights", "device"):
        assert results[name]["growth_mb"] < 50, results


def _drop_slots(tensors):
    """A `data` edit for `_tamper` (with `_no_slots_entry`): the data without the optimizer
    state, which the file stores last."""
    return b"".join(t.tobytes() for name, t in tensors.items() if name != "optimizer.slots")


def _no_slots_entry(header):
    del header["optimizer.slots"]


@pytest.mark.parametrize(
    "header, data, match",
    [
        (
            _text("model", '"units":3', '"units":5'),
            None,
            r"layer 'dense_\d+' \(Dense, index 2\): weight 'kernel' expects shape \(16, 5\), "
            r"received \(16, 3\) \(tensor 'layers.2.kernel'\)",
        ),
        (
            lambda h: h.update(extra={"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}),
            None,
            r"holds tensors the model does not have: \['extra'\]",
        ),
        (
            lambda h: h.update({"layers.1.kernel": h.pop("layers.2.kernel")}),
            None,
            r"\(Dropout, index 1\) has weights \[\], the file has \['kernel'\]",
        ),
        (_no_slots_entry, _drop_slots, r"missing entry 'optimizer.slots'"),
        (
            lambda h: h["optimizer.slots"].update(shape=[2, h["optimizer.slots"]["shape"][0] // 2]),
            None,
            r"optimizer.slots has shape \(2, 131\), the optimizer needs \(262,\) "
            r"\(2 slots of 131 values\)",
        ),
        (_text("model", '"Dense"', '"Bogus"'), None, "unknown layer class 'Bogus'"),
        (_text("model", '"Sequential"', '"Graph"'), None, "unknown model class"),
        (_text("model", '"Sequential"', '"Functional"'), None, "input_shapes must be a list"),
        (_text("model", '"input_shape":[4]', '"input_shape":[]'), None, "input_shape must be"),
        (_text("compile", '"loss":"categorical_crossentropy"', '"loss":"nope"'), None, "nope"),
        (lambda h: h["__metadata__"].pop("training") and None, None, "missing entry 'training'"),
        (lambda h: h["__metadata__"].update(contents="x"), None, "contents must be"),
        (lambda h: h["__metadata__"].update(extra=3), None, "metadata entry 'extra' is not a"),
    ],
    ids=[
        "units",
        "unknown tensor",
        "tensor of a layer without weights",
        "no optimizer state",
        "optimizer state shape",
        "layer class",
        "model class",
        "wiring",
        "input shape",
        "loss",
        "no training state",
        "contents",
        "metadata value",
    ],
)
def test_file_must_describe_one_model(tmp_path, header, data, match):
    # The architecture, the tensors and the optimizer state must agree exactly.
    _, path = _trained_file(tmp_path)
    bad = _tamper(path, header, data)
    with pytest.raises(ValueError, match=r"Cannot load '.*tampered.dc': .*" + match):
        dc.models.load_model(bad)
    with pytest.raises(ValueError, match=r"Cannot load (weights from )?'.*tampered.dc'.*" + match):
        _model().load_weights(bad)  # it checks the whole file too


def _bn_file(tmp_path, optimizer):
    model = dc.Sequential(
        [
            dc.Input((4,)),
            dc.layers.Dense(8, kernel_regularizer=dc.regularizers.l2(1e-3)),
            dc.layers.BatchNormalization(),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "bn.dc")
    return tmp_path / "bn.dc"


def _set(name, index, value):
    """A `data` edit for `_tamper`: tensor `name`'s value at flat `index` (an int, or a
    function of the tensor's size) becomes `value`."""

    def edit(tensors):
        flat = tensors[name].reshape(-1)
        flat[index(flat.size) if callable(index) else index] = value

    return edit


STATE_CASES = {
    # name: (optimizer, header edit, data edit, message)
    "iterations -1": (
        "adam",
        _meta("training", lambda t: t.update(iterations=-1)),
        None,
        r"training entry 'iterations' must be an int in \[0, 2\*\*53\), received -1",
    ),
    "iterations 2**63 - 1": (  # the next step's count would overflow
        "adam",
        _meta("training", lambda t: t.update(iterations=2**63 - 1)),
        None,
        r"training entry 'iterations' must be an int in \[0, 2\*\*53\), received 9\d{18}",
    ),
    "iterations 1.5": (
        "adam",
        _meta("training", lambda t: t.update(iterations=1.5)),
        None,
        r"'iterations' must be an int in \[0, 2\*\*53\), received 1.5",
    ),
    "iterations true": (
        "adam",
        _meta("training", lambda t: t.update(iterations=True)),
        None,
        r"'iterations' must be an int in \[0, 2\*\*53\), received True",
    ),
    "learning rate 1e300": (
        "adam",
        _meta("training", lambda t: t.update(learning_rate=1e300)),
        None,
        r"training entry 'learning_rate' must be a number > 0 that float32 holds "
        r"\(at most 3.402823e\+38\), received 1e\+300",
    ),
    "learning rate 0": (
        "adam",
        _meta("training", lambda t: t.update(learning_rate=0.0)),
        None,
        r"'learning_rate' must be a number > 0 .* received 0.0",
    ),
    "learning rate text": (
        "adam",
        _meta("training", lambda t: t.update(learning_rate="fast")),
        None,
        r"'learning_rate' must be a number > 0 .* received 'fast'",
    ),
    "optimizer learning rate 1e300": (
        "adam",
        _meta("compile", lambda c: c["optimizer"]["config"].update(learning_rate=1e300)),
        None,
        r"the optimizer's learning_rate must be a number > 0 .* received 1e\+300",
    ),
    "optimizer argument": (
        "adam",
        _meta("compile", lambda c: c["optimizer"]["config"].update(beta_1=-1)),
        None,
        r"`beta_1` must be a number >= 0.0 and < 1.0. Received: beta_1=-1",
    ),
    "seed -1": (
        "adam",
        _meta("training", lambda t: t.update(seed=-1)),
        None,
        r"training entry 'seed' must be an int in \[0, 2\*\*64\), received -1",
    ),
    "seed 2**64": (
        "adam",
        _meta("training", lambda t: t.update(seed=2**64)),
        None,
        r"'seed' must be an int in \[0, 2\*\*64\), received 18446744073709551616",
    ),
    "draws 2.0": (
        "adam",
        _meta("training", lambda t: t.update(draws=2.0)),
        None,
        r"'draws' must be an int in \[0, 2\*\*64\), received 2.0",
    ),
    "unknown training entry": (
        "adam",
        _meta("training", lambda t: t.update(epoch=3)),
        None,
        r"the 'training' entry must hold iterations, learning_rate, seed, draws",
    ),
    "regularizer -1": (
        "adam",
        _text("model", '"l2":0.001', '"l2":-1'),
        None,
        r"`l2` must be a finite number >= 0. Received: l2=-1",
    ),
    "regularizer NaN": (
        "adam",
        _text("model", '"l2":0.001', '"l2":NaN'),
        None,
        r"the 'model' entry holds NaN: numbers must be finite",
    ),
    "kernel NaN": (
        "adam",
        None,
        _set("layers.0.kernel", 5, np.nan),
        r"tensor 'layers.0.kernel' holds nan at index 5: weights must be finite",
    ),
    "bias inf": (
        "adam",
        None,
        _set("layers.2.bias", 1, -np.inf),
        r"tensor 'layers.2.bias' holds -inf at index 1",
    ),
    "moving variance -1": (
        "adam",
        None,
        _set("layers.1.moving_variance", 3, -1.0),
        r"tensor 'layers.1.moving_variance' holds -1.0 at index 3: a variance is >= 0",
    ),
    "moving mean NaN": (
        "adam",
        None,
        _set("layers.1.moving_mean", 0, np.nan),
        r"tensor 'layers.1.moving_mean' holds nan at index 0",
    ),
    "optimizer state NaN": (
        "adam",
        None,
        _set("optimizer.slots", 7, np.nan),
        r"tensor 'optimizer.slots' holds nan at index 7",
    ),
    "adam v -1": (
        "adam",
        None,
        _set("optimizer.slots", lambda size: size // 2 + 2, -1.0),
        r"tensor 'optimizer.slots' holds -1.0 at index \d+: Adam's second moment v \(slot 1\) "
        r"is >= 0",
    ),
    "adamw v -1": (
        "adamw",
        None,
        _set("optimizer.slots", lambda size: size - 1, -0.5),
        r"holds -0.5 at index \d+: AdamW's second moment v \(slot 1\) is >= 0",
    ),
    "rmsprop mean square -1": (
        "rmsprop",
        None,
        _set("optimizer.slots", 0, -1.0),
        r"holds -1.0 at index 0: RMSprop's mean square \(slot 0\) is >= 0",
    ),
    "adagrad accumulator -1": (
        "adagrad",
        None,
        _set("optimizer.slots", lambda size: size - 1, -1.0),
        r"holds -1.0 at index \d+: Adagrad's accumulator \(slot 0\) is >= 0",
    ),
}


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_loaded_state_is_checked_like_user_input(tmp_path, case):
    optimizer, header, data, match = STATE_CASES[case]
    path = _bn_file(tmp_path, optimizer)
    bad = _tamper(path, header, data)
    with pytest.raises(ValueError, match=r"Cannot load '.*tampered.dc': .*" + match):
        dc.models.load_model(bad)
    # load_weights checks the whole file too
    fresh = dc.Sequential.from_config(json.loads(saving.read_file(path)[1]["model"])["config"])
    with pytest.raises(ValueError, match=r"Cannot load weights from '.*tampered.dc'.*" + match):
        fresh.load_weights(bad)


def test_slots_that_may_be_negative_load(tmp_path):
    # Adam's m, RMSprop's momentum and mean gradient, SGD's velocity take any sign.
    for optimizer, index in (
        ("adam", 0),
        (dc.optimizers.RMSprop(momentum=0.5, centered=True), 1),
        (dc.optimizers.SGD(momentum=0.9), 0),
    ):
        path = _bn_file(tmp_path, optimizer)
        n = dc.models.load_model(path).count_params() - 16  # trainable: not the moving stats
        bad = _tamper(path, data=_set("optimizer.slots", index * n, -3.0))
        state = dc.models.load_model(bad)._engine.optimizer_state()
        assert state[index * n] == -3.0


DEEP = "[" * 100_000 + "]" * 100_000

ERROR_CASES = {
    # name: (header edit, message): RecursionError and OverflowError escaped load_model
    "deep header": (
        lambda h: json.dumps(h, separators=(",", ":"))[:-1] + ',"deep":' + DEEP + "}",
        "the header is nested more than 32 levels deep",
    ),
    "deep model entry": (
        lambda h: h["__metadata__"].update(model=DEEP),
        "the 'model' entry is nested more than 32 levels deep",
    ),
    "deep compile entry": (
        lambda h: h["__metadata__"].update(compile=DEEP),
        "the 'compile' entry is nested more than 32 levels deep",
    ),
    "deep training entry": (
        lambda h: h["__metadata__"].update(training=DEEP),
        "the 'training' entry is nested more than 32 levels deep",
    ),
    "33 levels": (
        lambda h: h["__metadata__"].update(model="[" * 33 + "]" * 33),
        "the 'model' entry is nested more than 32 levels deep",
    ),
    "input shape 1e999": (
        _text("model", '"input_shape":[4]', '"input_shape":[1e999]'),
        "the 'model' entry holds the number '1e999', out of the float range",
    ),
    "input shape 2**64": (
        _text("model", '"input_shape":[4]', f'"input_shape":[{2**64}]'),
        r"input_shape must be a list of 1 to 32 ints in \[1, 2\*\*31\), "
        r"not \[18446744073709551616\]",
    ),
    "input shape 4.0": (
        _text("model", '"input_shape":[4]', '"input_shape":[4.0]'),
        r"input_shape must be a list of 1 to 32 ints",
    ),
    "units 2**64": (
        _text("model", '"units":16', f'"units":{2**64}'),
        r"dense.*units=18446744073709551616",  # the layer's check, or else the engine's
    ),
    "units 10**30": (
        _text("model", '"units":16', f'"units":{10**30}'),
        "the 'model' entry holds an integer of 31 digits",
    ),
    "rate -1e999": (
        _text("model", '"rate":0.25', '"rate":-1e999'),
        "the 'model' entry holds the number '-1e999', out of the float range",
    ),
    "iterations Infinity": (
        _text("training", '"iterations":4', '"iterations":Infinity'),
        "the 'training' entry holds Infinity: numbers must be finite",
    ),
    "learning rate 1e999": (
        _text("training", '"learning_rate":0.01', '"learning_rate":1e999'),
        "the 'training' entry holds the number '1e999'",
    ),
    "key twice": (
        _text("training", '"iterations":4', '"iterations":4,"iterations":5'),
        "the 'training' entry holds the key 'iterations' twice in one object",
    ),
    "bad JSON": (
        _text("training", '"iterations":4', '"iterations":'),
        r"the 'training' entry is not valid JSON \(Expecting value",
    ),
    "layer name": (
        _text("model", '"name":"dense', '"name":["dense"],"n":"'),
        r"layer 0: its name must be a string, not \['dense'\]",
    ),
    "layer argument": (
        _text("model", '"units":16', '"units":16,"bogus":1'),
        r"Unrecognized keyword arguments passed to Dense: \{'bogus': 1\}",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_every_failure_is_a_value_error(tmp_path, case):
    header, match = ERROR_CASES[case]
    _, path = _trained_file(tmp_path)  # 4 iterations, learning rate 0.01
    bad = _tamper(path, header)
    with pytest.raises(ValueError, match=r"Cannot load '.*tampered.dc': .*" + match):
        dc.models.load_model(bad)
    with pytest.raises(ValueError, match=r"Cannot load (weights from )?'.*tampered.dc'.*" + match):
        _model().load_weights(bad)


def test_header_length_is_checked_before_reading(tmp_path):
    # A length field past the end of the file, or over the limit of the header's size, is
    # refused after reading its 8 bytes.
    _, path = _trained_file(tmp_path)
    raw = path.read_bytes()
    bad = tmp_path / "bad.dc"
    bad.write_bytes((len(raw) - 7).to_bytes(8, "little") + raw[8:])
    with pytest.raises(ValueError, match=rf"header length {len(raw) - 7}, file size {len(raw)}"):
        dc.models.load_model(bad)
    big = saving.file_format.MAX_HEADER_BYTES + 8
    with open(bad, "wb") as f:  # a sparse file of 16 MiB and more
        f.write(big.to_bytes(8, "little"))
        f.truncate(big + 8)
    with pytest.raises(ValueError, match=rf"header length {big} is over the {big - 8} bytes"):
        dc.models.load_model(bad)
    with pytest.raises(IsADirectoryError):
        dc.models.load_model(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_pipes_are_refused_without_waiting(tmp_path):
    # Opening a named pipe waits for a writer; reading one could go on forever.
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)

    def unblock():  # a writer, should the load be waiting for one (a regression)
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    timer = threading.Timer(5, unblock)
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=r"model.fifo': not a regular file"):
            dc.models.load_model(fifo)
    finally:
        timer.cancel()
    assert time.perf_counter() - start < 4


def test_failed_load_weights_changes_nothing(tmp_path):
    _, path = _trained_file(tmp_path)
    model = _model()
    before = model.get_weights()
    bad = _tamper(path, data=_set("layers.2.bias", 2, np.nan))  # the last tensor but one
    with pytest.raises(ValueError, match=r"tensor 'layers.2.bias' holds nan at index 2"):
        model.load_weights(bad)
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(a, b)
    # An unbuilt model stays unbuilt, without an input shape.
    lazy = dc.Sequential([dc.layers.Dense(16), dc.layers.Dropout(0.2), dc.layers.Dense(3)])
    lazy.add(dc.layers.Activation("softmax"))
    with pytest.raises(ValueError, match="holds nan"):
        lazy.load_weights(bad)
    assert not lazy.built and lazy.input_shape is None
    lazy.load_weights(path)  # the valid file still loads
    assert lazy.built and lazy.input_shape == (None, 4)
