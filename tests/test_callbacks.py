"""Callbacks: ReduceLROnPlateau, LearningRateScheduler, TerminateOnNaN, CSVLogger,
LambdaCallback, ModelCheckpoint, EarlyStopping's auto mode, History.plot."""

import csv
import math
import os
import sys

import numpy as np
import pytest

import deepcore as dc
from deepcore.callbacks import (
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from deepcore.models import model as model_module

X1, Y1 = np.ones((8, 1)), np.ones((8, 1))
VAL = (np.ones((2, 1)), np.full((2, 1), 0.6))  # val loss (w - 0.6)^2


def ramp_model(lr=0.1):
    """w <- w - lr * 2 (w - 1) on x = 1, y = 1 (mse, SGD, one batch per epoch), from w = 0."""
    m = dc.Sequential(
        [dc.Input(shape=(1,)), dc.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    m.compile(optimizer=dc.optimizers.SGD(learning_rate=lr), loss="mse")
    return m


def ramp(lrs, w=0.0):
    """Weights after each epoch for the learning rates `lrs`, in NumPy."""
    out = []
    for lr in lrs:
        w = w - lr * 2 * (w - 1)
        out.append(w)
    return np.array(out)


def lr_recorder(model, into):
    def record(epoch, logs):
        into.append((model.optimizer.learning_rate, model._engine.learning_rate))

    return LambdaCallback(on_epoch_end=record)


def kernel(model):
    return float(model.get_weights()[0][0, 0])


# ---------------------------------------------------------------------- ReduceLROnPlateau


def test_reduce_lr_on_plateau_lowers_the_engine_learning_rate():
    m = ramp_model(lr=0.1)
    lrs, ws = [], []
    # min_delta larger than any change: every epoch after the first is a plateau
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=100.0)
    m.fit(
        X1,
        Y1,
        batch_size=8,
        epochs=5,
        verbose=0,
        shuffle=False,
        callbacks=[
            cb,
            lr_recorder(m, lrs),
            LambdaCallback(on_epoch_end=lambda e, logs: ws.append(kernel(m))),
        ],
    )
    expected = [0.1, 0.05, 0.025, 0.0125, 0.00625]
    np.testing.assert_allclose([a for a, _ in lrs], expected, rtol=1e-12)
    np.testing.assert_allclose([b for _, b in lrs], expected, rtol=1e-12)  # the engine's own
    assert m.optimizer.learning_rate == pytest.approx(0.00625)
    # the engine trained with those rates: epoch e used the rate set at the end of e - 1
    np.testing.assert_allclose(ws, ramp([0.1, 0.1, 0.05, 0.025, 0.0125]), rtol=1e-5)


def test_reduce_lr_on_plateau_cooldown_min_lr_and_patience():
    m = ramp_model(lr=0.1)
    lrs = []
    cb = ReduceLROnPlateau(
        monitor="loss", factor=0.5, patience=1, cooldown=2, min_delta=100.0, min_lr=0.02
    )
    m.fit(X1, Y1, batch_size=8, epochs=8, verbose=0, callbacks=[cb, lr_recorder(m, lrs)])
    # reductions at epochs 1, 3 (after a 2-epoch cooldown), 5 (floored at min_lr), then none
    np.testing.assert_allclose(
        [a for a, _ in lrs], [0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02], rtol=1e-12
    )

    m = ramp_model(lr=0.1)
    lrs = []
    cb = ReduceLROnPlateau(monitor="loss", factor=0.1, patience=3, min_delta=100.0)
    m.fit(X1, Y1, batch_size=8, epochs=6, verbose=0, callbacks=[cb, lr_recorder(m, lrs)])
    np.testing.assert_allclose([a for a, _ in lrs], [0.1] * 3 + [0.01] * 3, rtol=1e-12)


def test_reduce_lr_on_plateau_keeps_the_rate_while_improving(capsys):
    m = ramp_model(lr=0.1)
    cb = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, verbose=1)
    h = m.fit(X1, Y1, batch_size=8, epochs=10, validation_data=VAL, callbacks=[cb], verbose=0)
    # val_loss improves for epochs 0..3 then rises: two bad epochs (4, 5) -> one reduction
    assert int(np.argmin(h.history["val_loss"])) == 3
    out = capsys.readouterr().out
    assert "Epoch 6: ReduceLROnPlateau reducing learning rate to 0.05." in out
    assert m.optimizer.learning_rate < 0.1


def test_reduce_lr_on_plateau_auto_mode_and_errors():
    assert ReduceLROnPlateau(monitor="val_accuracy").mode == "max"
    assert ReduceLROnPlateau(monitor="val_auc").mode == "max"
    assert ReduceLROnPlateau(monitor="loss").mode == "min"
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\)"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="mode must be"):
        ReduceLROnPlateau(mode="up")
    m = ramp_model()
    with pytest.raises(
        ValueError, match=r"ReduceLROnPlateau monitors 'val_loss'.*Available: learning_rate, loss"
    ):
        m.fit(X1, Y1, epochs=2, callbacks=[ReduceLROnPlateau()], verbose=0)


# ------------------------------------------------------------------- LearningRateScheduler


def test_learning_rate_scheduler_sets_the_rate_before_each_epoch(capsys):
    m = ramp_model(lr=0.1)
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr if epoch == 0 else lr * 0.5

    ws = []
    m.fit(
        X1,
        Y1,
        batch_size=8,
        epochs=4,
        verbose=0,
        callbacks=[
            LearningRateScheduler(schedule, verbose=1),
            LambdaCallback(on_epoch_end=lambda e, logs: ws.append(kernel(m))),
        ],
    )
    assert [e for e, _ in seen] == [0, 1, 2, 3]
    np.testing.assert_allclose([lr for _, lr in seen], [0.1, 0.1, 0.05, 0.025], rtol=1e-12)
    assert m._engine.learning_rate == pytest.approx(0.0125)
    np.testing.assert_allclose(ws, ramp([0.1, 0.05, 0.025, 0.0125]), rtol=1e-5)
    out = capsys.readouterr().out
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.05." in out


def test_learning_rate_scheduler_one_argument_schedule_and_errors():
    m = ramp_model(lr=0.1)
    lrs = []
    m.fit(
        X1,
        Y1,
        epochs=3,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1)), lr_recorder(m, lrs)],
    )
    np.testing.assert_allclose([b for _, b in lrs], [0.01, 0.02, 0.03], rtol=1e-12)

    def broken(epoch, *args):  # a TypeError inside the schedule is not swallowed (Keras
        if args:  # retries schedule(epoch) on any TypeError, which would succeed here)
            raise TypeError("bug inside the schedule")
        return 0.5

    with pytest.raises(TypeError, match="bug inside the schedule"):
        m.fit(X1, Y1, epochs=1, verbose=0, callbacks=[LearningRateScheduler(broken)])
    for bad in (
        lambda e, lr: "0.1",
        lambda e, lr: None,
        lambda e, lr: -1.0,
        lambda e, lr: float("nan"),
    ):
        with pytest.raises(ValueError, match="schedule must return a finite number > 0"):
            m.fit(X1, Y1, epochs=1, verbose=0, callbacks=[LearningRateScheduler(bad)])
    with pytest.raises(TypeError, match="schedule must be callable"):
        LearningRateScheduler(0.1)


# -------------------------------------------------------------------------- TerminateOnNaN


def test_a_schedule_may_start_from_zero():
    # Keras' warm-up: the rate rises from 0; the optimizer takes the schedule as it is.
    m = ramp_model()
    warmup = dc.schedules.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=4)
    m.compile(optimizer=dc.optimizers.SGD(warmup), loss="mse")
    m.fit(X1, Y1, batch_size=8, epochs=2, verbose=0)
    assert m.optimizer.learning_rate == pytest.approx(0.05)
    for bad in (float("inf"), "0.1", True):
        with pytest.raises(ValueError, match="learning_rate"):
            m.optimizer.learning_rate = bad


def diverging_run(callbacks):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    y = 100 * x.sum(axis=1)
    dc.utils.set_random_seed(3)
    m = dc.Sequential([dc.Input(shape=(2,)), dc.layers.Dense(1)])
    m.compile(optimizer=dc.optimizers.SGD(learning_rate=1e10), loss="mse")
    return m, m.fit(x, y, epochs=50, batch_size=8, callbacks=callbacks, verbose=0)


def test_terminate_on_nan_stops_at_the_first_nonfinite_batch(capsys):
    m, h = diverging_run([TerminateOnNaN()])
    losses = h.history["loss"]
    assert 1 <= len(losses) < 50
    assert not math.isfinite(losses[-1]) and all(math.isfinite(v) for v in losses[:-1])
    assert m.stop_training
    steps = m.optimizer.iterations
    assert steps < 8 * len(losses)  # stopped inside the epoch, not at its end
    assert f"Batch {steps - 8 * (len(losses) - 1) - 1}: Invalid loss" in capsys.readouterr().out
    # The same stop as Keras' check after every batch (here through per-batch engine
    # calls, which a batch hook forces): the same step, the same weights.
    batch_losses = []
    record = dc.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: batch_losses.append(logs["loss"])
    )
    m2, h2 = diverging_run([record, TerminateOnNaN()])
    assert m2.optimizer.iterations == steps
    assert sum(math.isfinite(v) for v in batch_losses) == len(batch_losses) - 1
    np.testing.assert_array_equal(m2.get_weights()[0], m.get_weights()[0])


def test_terminate_on_nan_leaves_finite_runs_alone():
    m = ramp_model()
    h = m.fit(X1, Y1, epochs=5, callbacks=[TerminateOnNaN()], verbose=0)
    assert len(h.history["loss"]) == 5 and not m.stop_training


# ------------------------------------------------------------------------------ CSVLogger


def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_writes_header_and_one_row_per_epoch(tmp_path, rng):
    path = tmp_path / "log.csv"
    x, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    m = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(
        x,
        y,
        epochs=3,
        validation_split=0.25,
        validation_split_mode="shuffle",
        callbacks=[CSVLogger(path)],
        verbose=0,
    )
    rows = read_csv(path)
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for i, key in enumerate(rows[0][1:], start=1):
        assert [float(r[i]) for r in rows[1:]] == h.history[key]  # full precision
    # append: more rows, no second header
    m.fit(
        x, y, epochs=2, validation_split=0.25, callbacks=[CSVLogger(path, append=True)], verbose=0
    )
    rows = read_csv(path)
    assert len(rows) == 6 and rows[4][0] == "0" and rows.count(rows[0]) == 1
    # not append: overwritten
    m.fit(x, y, epochs=1, callbacks=[CSVLogger(path)], verbose=0)
    rows = read_csv(path)
    assert rows[0] == ["epoch", "accuracy", "loss"] and len(rows) == 2 and rows[1][0] == "0"


def test_csv_logger_separator_and_epochs_without_validation(tmp_path):
    path = tmp_path / "log.tsv"
    m = ramp_model()
    m.fit(
        X1,
        Y1,
        epochs=4,
        validation_data=VAL,
        validation_freq=2,
        callbacks=[CSVLogger(str(path), separator="\t")],
        verbose=0,
    )
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch\tloss\tval_loss"
    assert lines[1].endswith("\tNA") and lines[3].endswith("\tNA")
    assert not lines[2].endswith("NA") and len(lines) == 5


# ------------------------------------------------------------------------- LambdaCallback


def test_lambda_callback_calls_every_hook_in_order(rng):
    calls = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, logs["loss"])),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, sorted(logs))),
        on_train_end=lambda logs: calls.append(("train_end", sorted(logs))),
        on_test_begin=lambda logs: calls.append(("test_begin", logs)),
        on_test_end=lambda logs: calls.append(("test_end", sorted(logs))),
    )
    m = ramp_model()
    m.fit(X1, Y1, batch_size=5, epochs=2, validation_data=VAL, callbacks=[cb], verbose=0)
    names = [c[0] for c in calls]
    epoch = ["epoch_begin", "batch_begin", "batch_end", "batch_begin", "batch_end"]
    epoch += ["test_begin", "test_end", "epoch_end"]  # validation between batches and epoch end
    assert names == ["train_begin", *epoch, *epoch, "train_end"]
    assert calls[0] == ("train_begin", {})
    assert [c[1] for c in calls if c[0] == "batch_begin"] == [0, 1, 0, 1]
    assert all(math.isfinite(c[2]) for c in calls if c[0] == "batch_end")
    assert calls[-2] == ("epoch_end", 1, ["loss", "val_loss"])
    assert calls[-1] == ("train_end", ["loss", "val_loss"])
    assert ("test_end", ["loss"]) in calls


def test_lambda_callback_without_batch_hooks_keeps_one_engine_call_per_epoch(monkeypatch):
    called = []

    def per_batch_path(*args, **kwargs):  # fit's path for batch hooks (or a live bar)
        called.append(1)
        raise AssertionError("batch-level path used")

    monkeypatch.setattr(model_module.Model, "_fit_rows", per_batch_path)
    epochs = []
    m = ramp_model()
    m.fit(
        X1,
        Y1,
        batch_size=2,
        epochs=3,
        verbose=0,
        callbacks=[LambdaCallback(on_epoch_end=lambda e, logs: epochs.append(e))],
    )
    assert epochs == [0, 1, 2] and not called
    with pytest.raises(TypeError, match="unknown hooks"):
        LambdaCallback(on_batch_end=print)
    with pytest.raises(TypeError, match="must be callable"):
        LambdaCallback(on_epoch_end=3)


# -------------------------------------------------------------------------- ModelCheckpoint


def test_model_checkpoint_save_best_only_writes_only_on_improvement(tmp_path, capsys):
    m = ramp_model()
    kept = []
    cb = ModelCheckpoint(
        str(tmp_path / "ckpt" / "{epoch:02d}-{val_loss:.4f}.keras"), save_best_only=True, verbose=1
    )
    h = m.fit(
        X1,
        Y1,
        batch_size=8,
        epochs=7,
        validation_data=VAL,
        verbose=0,
        callbacks=[cb, LambdaCallback(on_epoch_end=lambda e, logs: kept.append(m.get_weights()))],
    )
    vl = h.history["val_loss"]
    best = int(np.argmin(vl))
    assert best == 3
    files = sorted(os.listdir(tmp_path / "ckpt"))  # the folder was created
    assert files == [f"{e + 1:02d}-{vl[e]:.4f}.keras" for e in range(best + 1)]
    assert cb.best == pytest.approx(vl[best])
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss improved from inf to" in out
    assert f"Epoch 5: val_loss did not improve from {vl[best]:.5f}" in out
    # the file of the best epoch holds that epoch's model
    restored = dc.models.load_model(str(tmp_path / "ckpt" / files[-1]))
    np.testing.assert_array_equal(restored.get_weights()[0], kept[best][0])


def test_model_checkpoint_names_files_only_on_epochs_it_saves(tmp_path, capsys):
    # With validation every 2nd epoch, the epochs without val_loss are skipped: their
    # file name (which needs val_loss) is never formatted. Max mode starts from -inf.
    m = ramp_model()
    cb = ModelCheckpoint(
        str(tmp_path / "{val_loss:.4f}.keras"),
        monitor="val_accuracy",
        mode="max",
        save_best_only=True,
        verbose=1,
    )
    m.compile(optimizer=dc.optimizers.SGD(0.1), loss="mse", metrics=["accuracy"])
    m.fit(
        X1,
        Y1,
        batch_size=8,
        epochs=2,
        validation_data=VAL,
        validation_freq=2,
        verbose=0,
        callbacks=[cb],
    )
    assert len(os.listdir(tmp_path)) == 1
    assert "Epoch 2: val_accuracy improved from -inf to" in capsys.readouterr().out


def test_model_checkpoint_every_epoch_and_weights_only(tmp_path):
    m = ramp_model()
    kept = []
    m.fit(
        X1,
        Y1,
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[
            ModelCheckpoint(
                str(tmp_path / "w{epoch}.weights"), save_weights_only=True, monitor="loss"
            ),
            ModelCheckpoint(str(tmp_path / "m{epoch}-{loss:.3f}.deepcore")),
            LambdaCallback(on_epoch_end=lambda e, logs: kept.append(m.get_weights())),
        ],
    )
    names = sorted(os.listdir(tmp_path))
    assert [n for n in names if n.startswith("w")] == ["w1.weights", "w2.weights", "w3.weights"]
    assert len([n for n in names if n.startswith("m")]) == 3
    _, meta = dc.saving.read_file(str(tmp_path / "w2.weights"))
    assert meta["contents"] == "weights"
    _, meta = dc.saving.read_file(str(tmp_path / sorted(n for n in names if n.startswith("m"))[0]))
    assert meta["contents"] == "model"
    other = ramp_model()
    other.load_weights(str(tmp_path / "w2.weights"))
    np.testing.assert_array_equal(other.get_weights()[0], kept[1][0])


def test_model_checkpoint_save_freq_in_batches_and_errors(tmp_path):
    m = ramp_model()
    m.fit(
        X1,
        Y1,
        batch_size=2,
        epochs=2,
        verbose=0,  # 4 batches per epoch, 8 in all
        callbacks=[
            ModelCheckpoint(
                str(tmp_path / "e{epoch}-b{batch}.weights"), save_freq=3, save_weights_only=True
            )
        ],
    )
    assert sorted(os.listdir(tmp_path)) == ["e1-b3.weights", "e2-b2.weights"]
    with pytest.raises(ValueError, match="save_freq must be 'epoch' or a positive integer"):
        ModelCheckpoint("x", save_freq=0)
    with pytest.raises(ValueError, match="batch logs hold no validation values"):
        ModelCheckpoint("x", save_freq=2, save_best_only=True)  # monitor="val_loss"
    with pytest.raises(ValueError, match=r"cannot format filepath.*val_acc"):
        m.fit(
            X1,
            Y1,
            epochs=1,
            verbose=0,
            callbacks=[ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.keras"))],
        )
    with pytest.raises(ValueError, match=r"ModelCheckpoint monitors 'val_loss'"):
        m.fit(
            X1,
            Y1,
            epochs=1,
            verbose=0,
            callbacks=[ModelCheckpoint(str(tmp_path / "a.keras"), save_best_only=True)],
        )
    assert ModelCheckpoint("x", monitor="val_precision").mode == "max"


# ---------------------------------------------------------------------------- EarlyStopping


def test_early_stopping_auto_mode_maximizes_precision_recall_auc():
    for name in ("val_precision", "recall", "val_auc", "val_accuracy"):
        assert EarlyStopping(monitor=name).mode == "max", name
    assert EarlyStopping(monitor="val_mean_absolute_error").mode == "min"


def test_early_stopping_ignores_nan_as_best():
    # a NaN epoch must not become the best one
    cb = EarlyStopping(monitor="loss", patience=5)
    cb.set_model(ramp_model())
    cb.on_train_begin({})
    cb.on_epoch_end(0, {"loss": float("nan")})
    cb.on_epoch_end(1, {"loss": 1.0})
    assert cb.best == 1.0 and cb.best_epoch == 1


# ---------------------------------------------------------------------------- History.plot


def test_history_plot_writes_a_png(tmp_path, rng):
    pytest.importorskip("matplotlib")
    x, y = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    m = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(
        x,
        y,
        epochs=4,
        validation_split=0.2,
        validation_split_mode="shuffle",
        validation_freq=2,
        verbose=0,
    )
    path = tmp_path / "history.png"
    fig = h.plot(path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"]
    for ax, key in zip(axes, ["loss", "accuracy"]):
        train, val = ax.get_lines()
        assert list(train.get_xdata()) == [1, 2, 3, 4]
        np.testing.assert_allclose(train.get_ydata(), h.history[key])
        assert list(val.get_xdata()) == [2, 4]  # validated every second epoch
        np.testing.assert_allclose(val.get_ydata(), h.history[f"val_{key}"])


def test_history_plot_without_matplotlib_says_how_to_install(monkeypatch):
    h = dc.callbacks.History()
    h.on_epoch_end(0, {"loss": 1.0})
    for name in [k for k in sys.modules if k == "matplotlib" or k.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r'pip install "deepcore\[plot\]"'):
        h.plot()


def test_history_plot_needs_epochs():
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="nothing to plot"):
        dc.callbacks.History().plot()


@pytest.mark.parametrize(
    "make, want",
    [
        (lambda: dc.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5), [0.05, 0.025]),
        (lambda: dc.callbacks.ReduceLROnPlateau(monitor="loss", patience=0), [0.1, 0.1]),
    ],
    ids=["scheduler", "plateau"],
)
def test_learning_rate_callbacks_log_the_rate_as_keras(make, want):
    # Keras 3 adds "learning_rate" (its float32 variable's value) to the epoch's logs, and
    # History, called after the user's callbacks, records it.
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 3)).astype(np.float32), rng.random((32, 1)).astype(np.float32)
    model = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(1)])
    model.compile(dc.optimizers.SGD(0.1), "mse")
    h = model.fit(x, y, epochs=2, verbose=0, callbacks=[make()]).history
    assert h["learning_rate"] == [float(np.float32(v)) for v in want]
    plain = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(1)])
    plain.compile(dc.optimizers.SGD(0.1), "mse")
    assert "learning_rate" not in plain.fit(x, y, epochs=1, verbose=0).history
