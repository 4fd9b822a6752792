"""The TensorBoard callback: event files that TensorBoard reads (checked with TensorBoard's
own reader where it is installed, and record by record: framing and CRC-32C)."""

import os
import struct

import numpy as np
import pytest

import deepcore as dc
from deepcore.utils.summary_writer import _masked, crc32c


def test_crc32c_known_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283  # (the CRC-32C check value)


def records(path):
    """The records of an event file, each frame's length and CRCs checked."""
    data, out, at = open(path, "rb").read(), [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        (crc,) = struct.unpack_from("<I", data, at + 8)
        assert crc == _masked(crc32c(data[at : at + 8]))
        body = data[at + 12 : at + 12 + length]
        (crc,) = struct.unpack_from("<I", data, at + 12 + length)
        assert crc == _masked(crc32c(body))
        out.append(body)
        at += 16 + length
    return out


def fit_with_board(tmp_path, **kwargs):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.integers(0, 3, 64)
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(8, "relu"), dc.layers.Dense(3)])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    board = dc.callbacks.TensorBoard(tmp_path / "logs", **kwargs)
    history = model.fit(
        x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[board]
    )
    return history.history, model


def test_epoch_scalars_histograms_and_batches(tmp_path):
    history, model = fit_with_board(tmp_path, histogram_freq=1, update_freq=2)
    train, val = tmp_path / "logs" / "train", tmp_path / "logs" / "validation"
    files = [train / f for f in os.listdir(train)] + [val / f for f in os.listdir(val)]
    assert len(files) == 2 and all(f.name.startswith("events.out.tfevents.") for f in files)
    assert all(records(f)[0].find(b"brain.Event:2") > 0 for f in files)
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = ea.EventAccumulator(str(train), size_guidance={ea.HISTOGRAMS: 0, ea.SCALARS: 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(tags["scalars"])
    got = [e.value for e in acc.Scalars("epoch_loss")]
    np.testing.assert_allclose(got, history["loss"], rtol=1e-6)
    assert [e.step for e in acc.Scalars("epoch_loss")] == [0, 1, 2]
    assert [e.step for e in acc.Scalars("batch_loss")] == [2, 4, 6, 8]  # every 2 of 9 batches
    kernel = f"{model.layers[0].name}/kernel"
    assert kernel in tags["histograms"] and len(acc.Histograms(kernel)) == 3
    validation = ea.EventAccumulator(str(val))
    validation.Reload()
    got = [e.value for e in validation.Scalars("epoch_loss")]
    np.testing.assert_allclose(got, history["val_loss"], rtol=1e-6)


def test_epoch_logging_adds_no_batch_calls(tmp_path):
    board = dc.callbacks.TensorBoard(tmp_path)
    assert "on_train_batch_end" not in vars(board)  # (no Python call per batch)
    with pytest.raises(ValueError, match="update_freq"):
        dc.callbacks.TensorBoard(tmp_path, update_freq=0)
