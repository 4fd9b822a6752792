"""fit's training workflow: validation splits, steps_per_epoch, weighted validation metrics,
EarlyStopping at the end of training, batch hooks and the progress output (pty and pipe)."""

import io
import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import deepcore as dc
from deepcore.callbacks import EarlyStopping, LambdaCallback
from deepcore.models import model as model_module
from deepcore.utils import progbar

# the child processes import the same deepcore as this one (source tree or installed)
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(dc.__file__)))


def classifier(n_in=4, n_out=3, hidden=8, dropout=0.0):
    layers = [dc.Input(shape=(n_in,)), dc.layers.Dense(hidden, activation="tanh")]
    if dropout:
        layers.append(dc.layers.Dropout(dropout))
    layers.append(dc.layers.Dense(n_out, activation="softmax" if n_out > 1 else "sigmoid"))
    return dc.Sequential(layers)


def sorted_classes(rng, counts, n_in=4):
    """Rows sorted by label (class 0 first), features loosely tied to the label."""
    y = np.repeat(np.arange(len(counts)), counts)
    x = rng.normal(size=(len(y), n_in)) + y[:, None]
    return x, y


@pytest.fixture
def split_spy(monkeypatch):
    """Records what Sequential._split returns: ((x, y, w) training, (x, y, w) validation)."""
    calls = []
    real = dc.Sequential._split

    def spy(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls.append(out)
        return out

    monkeypatch.setattr(dc.Sequential, "_split", spy)
    return calls


def same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))


# ------------------------------------------------------------------ validation split traps


def test_sorted_labels_last_split_warns_about_classes_missing_from_training(rng):
    x, y = sorted_classes(rng, [40, 40, 10])  # the last 18 rows: 8 of class 1, all of class 2
    m = classifier()
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.warns(
        UserWarning,
        match=r"validation_split=0\.2.*'last'.*class\(es\) 2 in the "
        r"validation part only.*stratify",
    ):
        m.fit(x, y, epochs=1, validation_split=0.2, verbose=0)


@pytest.mark.parametrize("kind", ["one_hot", "binary"])
def test_missing_class_warning_for_one_hot_and_binary_labels(rng, kind):
    if kind == "one_hot":
        x, y = sorted_classes(rng, [20, 20, 10])
        y, m = dc.utils.to_categorical(y, 3), classifier()
        m.compile("adam", "categorical_crossentropy")
        missing = "2"
    else:
        x, y = sorted_classes(rng, [40, 10])
        m = classifier(n_out=1)
        m.compile("adam", "binary_crossentropy")
        missing = "1"
    with pytest.warns(UserWarning, match=rf"class\(es\) {missing} in the validation part only"):
        m.fit(x, y, epochs=1, validation_split=0.25, verbose=0)


def test_no_warning_when_every_validation_class_is_in_training(rng):
    x, y = sorted_classes(rng, [30, 30, 30])
    order = rng.permutation(len(y))
    m = classifier()
    m.compile("adam", "sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(x[order], y[order], epochs=1, validation_split=0.2, verbose=0)


def test_regression_targets_never_warn(rng):
    # integer-valued regression targets sorted: no class warning for a regression loss
    x = rng.normal(size=(50, 4))
    y = np.sort(rng.integers(0, 20, 50)).astype(float)
    m = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(1)])
    m.compile("sgd", "mse")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(x, y, epochs=1, validation_split=0.2, verbose=0)


def test_last_mode_takes_the_last_rows_before_shuffling(rng, split_spy):
    x, y = sorted_classes(rng, [25, 25])
    order = rng.permutation(50)
    x, y = x[order], y[order]
    m = classifier(n_out=2)
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, validation_split=0.2, shuffle=True, verbose=0)
    (xt, yt, _), (xv, yv, _) = split_spy[0]
    np.testing.assert_array_equal(xt, x[:40].astype(np.float32))
    np.testing.assert_array_equal(xv, x[40:].astype(np.float32))
    np.testing.assert_array_equal(yv, y[40:])


@pytest.mark.parametrize("labels", ["integer", "one_hot"])
def test_stratify_keeps_each_class_in_both_parts_in_proportion(rng, split_spy, labels):
    counts = np.array([50, 30, 20])
    x, y = sorted_classes(rng, counts)
    x[:, 0] = np.arange(len(y))  # row id, to check that the parts partition the rows
    target = y if labels == "integer" else dc.utils.to_categorical(y, 3)
    m = classifier()
    m.compile(
        "adam",
        "sparse_categorical_crossentropy" if labels == "integer" else "categorical_crossentropy",
        metrics=["accuracy"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing-class warning
        h = m.fit(
            x, target, epochs=1, validation_split=0.2, validation_split_mode="stratify", verbose=0
        )
    (xt, yt, _), (xv, yv, _) = split_spy[0]
    to_labels = (lambda t: t.astype(int)) if labels == "integer" else (lambda t: t.argmax(1))
    np.testing.assert_array_equal(np.bincount(to_labels(yv), minlength=3), counts // 5)
    np.testing.assert_array_equal(np.bincount(to_labels(yt), minlength=3), counts - counts // 5)
    ids_t, ids_v = xt[:, 0].astype(int), xv[:, 0].astype(int)
    np.testing.assert_array_equal(np.sort(np.concatenate([ids_t, ids_v])), np.arange(100))
    # both parts keep the original row order, labels still match their rows
    assert np.all(np.diff(ids_t) > 0) and np.all(np.diff(ids_v) > 0)
    np.testing.assert_array_equal(to_labels(yv), y[ids_v])
    # random within each class: not a block of consecutive rows
    for c in range(3):
        assert np.any(np.diff(ids_v[y[ids_v] == c]) > 1), c
    # the validation logs are computed on that part
    val_loss, val_acc = m.evaluate(xv, yv, verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(val_loss, rel=1e-6)
    assert h.history["val_accuracy"][0] == pytest.approx(val_acc, abs=1e-9)


def test_stratify_binary_labels_and_sample_weights_follow_their_rows(rng, split_spy):
    x, y = sorted_classes(rng, [80, 20])
    w = np.arange(100, dtype=float) + 1.0
    x[:, 0] = np.arange(100)
    m = classifier(n_out=1)
    m.compile("adam", "binary_crossentropy")
    m.fit(
        x,
        y,
        sample_weight=w,
        epochs=1,
        validation_split=0.3,
        validation_split_mode="stratify",
        verbose=0,
    )
    (xt, yt, wt), (xv, yv, wv) = split_spy[0]
    assert np.bincount(yv[:, 0].astype(int)).tolist() == [24, 6]
    np.testing.assert_array_equal(wv, w[xv[:, 0].astype(int)])
    np.testing.assert_array_equal(wt, w[xt[:, 0].astype(int)])


def test_shuffle_mode_draws_random_rows_reproducibly(rng, split_spy):
    x, y = sorted_classes(rng, [30, 30, 30])
    x[:, 0] = np.arange(90)
    ids = []
    for _ in range(2):
        dc.utils.set_random_seed(7)
        m = classifier()
        m.compile("adam", "sparse_categorical_crossentropy")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m.fit(x, y, epochs=1, validation_split=0.2, validation_split_mode="shuffle", verbose=0)
        ids.append(split_spy[-1][1][0][:, 0].astype(int))
    np.testing.assert_array_equal(ids[0], ids[1])
    assert len(ids[0]) == 18 and not np.array_equal(ids[0], np.arange(72, 90))
    assert len(set(y[ids[0]])) == 3


def test_split_mode_errors(rng):
    x, y = sorted_classes(rng, [10, 10])
    m = classifier(n_out=2)
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"validation_split_mode.*'last', 'shuffle' or 'stratify'"):
        m.fit(x, y, validation_split=0.2, validation_split_mode="random", verbose=0)
    r = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(1)])
    r.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"'stratify' needs class labels"):
        r.fit(
            x,
            rng.normal(size=20),
            validation_split=0.2,
            validation_split_mode="stratify",
            verbose=0,
        )


# ------------------------------------------------------------ weighted validation metrics


def _np_sparse_ce(p, y):
    return -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))


def test_weighted_validation_metrics_match_numpy_with_validation_data(rng):
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    xv, yv = rng.normal(size=(23, 4)), rng.integers(0, 3, 23)
    wv = rng.uniform(0.0, 3.0, 23)
    cw = {0: 1.0, 1: 2.5, 2: 0.25}
    m = classifier()
    m.compile("adam", "sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
    h = m.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        validation_data=(xv, yv, wv),
        class_weight=cw,
        validation_batch_size=5,
        verbose=0,
    )
    p = m.predict(xv, verbose=0).astype(np.float64)
    weights = wv * np.array([cw[c] for c in yv])
    # Keras' sum_over_batch_size: the weighted sum divided by the number of samples
    expected_loss = np.sum(weights * _np_sparse_ce(p, yv)) / len(yv)
    expected_acc = np.sum(weights * (p.argmax(1) == yv)) / np.sum(weights)
    assert h.history["val_loss"][-1] == pytest.approx(expected_loss, rel=1e-5)
    assert h.history["val_accuracy"][-1] == pytest.approx(expected_acc, rel=1e-6)
    # and the weights matter: the unweighted values differ
    assert abs(np.mean(p.argmax(1) == yv) - expected_acc) > 1e-3


def test_weighted_metrics_match_numpy_with_validation_split(rng):
    # one batch per epoch: the training logs describe the weights before the update
    x, y = rng.normal(size=(50, 4)), rng.integers(0, 3, 50)
    sw = rng.uniform(0.0, 2.0, 50)
    cw = {0: 0.5, 1: 1.0, 2: 3.0}
    m = classifier()
    m.compile(
        dc.optimizers.SGD(learning_rate=0.1),
        "sparse_categorical_crossentropy",
        weighted_metrics=["accuracy"],
    )
    m.build((None, 4))
    p0 = m.predict(x[:40], verbose=0).astype(np.float64)
    h = m.fit(
        x,
        y,
        batch_size=40,
        epochs=1,
        sample_weight=sw,
        class_weight=cw,
        validation_split=0.2,
        shuffle=False,
        verbose=0,
    )
    w = sw * np.array([cw[c] for c in y])
    wt, yt = w[:40], y[:40]
    assert h.history["loss"][0] == pytest.approx(np.sum(wt * _np_sparse_ce(p0, yt)) / 40, rel=1e-5)
    assert h.history["accuracy"][0] == pytest.approx(
        np.sum(wt * (p0.argmax(1) == yt)) / wt.sum(), rel=1e-6
    )
    p1 = m.predict(x[40:], verbose=0).astype(np.float64)
    wv, yv = w[40:], y[40:]
    assert h.history["val_loss"][0] == pytest.approx(
        np.sum(wv * _np_sparse_ce(p1, yv)) / 10, rel=1e-5
    )
    assert h.history["val_accuracy"][0] == pytest.approx(
        np.sum(wv * (p1.argmax(1) == yv)) / wv.sum(), rel=1e-6
    )


# ---------------------------------------------------------------------- EarlyStopping


def _ramp_model():
    # SGD on mse with x = 1, y = 1 from w = 0: w_t = 1 - 0.8^t
    m = dc.Sequential(
        [dc.Input(shape=(1,)), dc.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    m.compile(optimizer=dc.optimizers.SGD(learning_rate=0.1), loss="mse")
    return m


def test_early_stopping_restores_best_weights_when_epochs_run_out(capsys):
    m = _ramp_model()
    recorded = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: recorded.append(m.get_weights()))
    es = EarlyStopping(monitor="val_loss", patience=100, restore_best_weights=True, verbose=1)
    # val loss (w - 0.6)^2 is lowest at w_4 = 0.5904 (epoch index 3)
    h = m.fit(
        np.ones((8, 1)),
        np.ones((8, 1)),
        batch_size=8,
        epochs=8,
        validation_data=(np.ones((2, 1)), np.full((2, 1), 0.6)),
        callbacks=[record, es],
        verbose=0,
    )
    assert len(h.history["loss"]) == 8 and not m.stop_training  # no early stop
    best = int(np.argmin(h.history["val_loss"]))
    assert best == 3 and es.best_epoch == 3
    assert not same_weights(m.get_weights(), recorded[-1])
    assert same_weights(m.get_weights(), recorded[best])
    assert "Restoring model weights from the end of the best epoch: 4." in capsys.readouterr().out


def test_early_stopping_skips_epochs_without_validation():
    m = _ramp_model()
    es = EarlyStopping(monitor="val_loss", patience=100, restore_best_weights=True)
    h = m.fit(
        np.ones((8, 1)),
        np.ones((8, 1)),
        batch_size=8,
        epochs=8,
        validation_freq=2,
        validation_data=(np.ones((2, 1)), np.full((2, 1), 0.6)),
        callbacks=[es],
        verbose=0,
    )
    assert len(h.history["val_loss"]) == 4
    assert es.best_epoch == 3  # w after epoch index 3 (0.5904) is the closest to 0.6
    assert m.get_weights()[0][0, 0] == pytest.approx(1 - 0.8**4, rel=1e-5)


# ------------------------------------------------------------------------- steps_per_epoch


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3"])
def test_steps_per_epoch_must_be_a_positive_int(rng, bad):
    m = classifier(n_out=2)
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"`steps_per_epoch` must be a positive integer"):
        m.fit(rng.normal(size=(10, 4)), rng.integers(0, 2, 10), steps_per_epoch=bad, verbose=0)


def test_steps_per_epoch_cycles_through_the_data():
    # Linear model, SGD, mse, no shuffling: replay the batches in NumPy.
    x = np.linspace(-1.0, 1.0, 10)[:, None]
    y = 3.0 * x[:, 0] - 0.5
    m = dc.Sequential([dc.Input(shape=(1,)), dc.layers.Dense(1, kernel_initializer="zeros")])
    m.compile(optimizer=dc.optimizers.SGD(learning_rate=0.2), loss="mse")
    batches = []
    counter = LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    h = m.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        steps_per_epoch=3,
        shuffle=False,
        callbacks=[counter],
        verbose=0,
    )
    assert batches == [0, 1, 2, 0, 1, 2]
    stream = np.tile(np.arange(10), 3)  # rows 0..9, 0..9, ...: batches may span two passes
    k, b = 0.0, 0.0
    expected_losses = []
    for epoch in range(2):
        total = 0.0
        for step in range(3):
            rows = stream[epoch * 12 + step * 4 : epoch * 12 + step * 4 + 4]
            err = k * x[rows, 0] + b - y[rows]
            total += np.mean(err**2) * len(rows)
            k -= 0.2 * np.mean(2 * err * x[rows, 0])
            b -= 0.2 * np.mean(2 * err)
        expected_losses.append(total / 12)
    np.testing.assert_allclose(m.get_weights()[0][0, 0], k, rtol=1e-5)
    np.testing.assert_allclose(m.get_weights()[1][0], b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h.history["loss"], expected_losses, rtol=1e-5)


@pytest.mark.parametrize("n", [40, 3000])
def test_steps_per_epoch_one_full_pass_equals_plain_fit(rng, n):
    # With steps_per_epoch * batch_size == n, each epoch is one shuffled pass drawn as the
    # engine draws it (one engine call, rows in that order, no shuffling): bit-identical
    # weights. This also guards `engine.permutation`, the order the engine shuffles in.
    x, y = rng.normal(size=(n, 4)), rng.integers(0, 3, n)
    results = []
    for steps in (None, n // 8):
        dc.utils.set_random_seed(3)
        m = classifier(dropout=0.2)
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        h = m.fit(x, y, batch_size=8, epochs=3, steps_per_epoch=steps, verbose=0)
        results.append((m.get_weights(), h.history))
    assert same_weights(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_steps_per_epoch_sets_params_steps(rng):
    seen = []

    class Params(dc.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.params["steps"])

    m = classifier(n_out=2)
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(
        rng.normal(size=(10, 4)),
        rng.integers(0, 2, 10),
        batch_size=4,
        steps_per_epoch=7,
        callbacks=[Params()],
        verbose=0,
    )
    m.fit(
        rng.normal(size=(10, 4)),
        rng.integers(0, 2, 10),
        batch_size=4,
        callbacks=[Params()],
        verbose=0,
    )
    assert seen == [7, 3]


# ------------------------------------------------------------- same results on every path


def _train(x, y, w=None, metrics=("accuracy",), callbacks=(), verbose=0, seed=11):
    dc.utils.set_random_seed(seed)
    m = classifier(dropout=0.25)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=list(metrics))
    h = m.fit(
        x, y, sample_weight=w, batch_size=4, epochs=3, verbose=verbose, callbacks=list(callbacks)
    )
    return m.get_weights(), h.history


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_batch_hooks_do_not_change_shuffled_training(rng):
    x, y, w = rng.normal(size=(30, 4)), rng.integers(0, 3, 30), rng.uniform(0.5, 2.0, 30)
    plain_w, plain_h = _train(x, y, w)
    hook = LambdaCallback(on_train_batch_begin=lambda batch, logs: None)
    hooked_w, hooked_h = _train(x, y, w, callbacks=[hook])
    assert same_weights(plain_w, hooked_w)
    np.testing.assert_allclose(hooked_h["loss"], plain_h["loss"], rtol=1e-12)
    np.testing.assert_allclose(hooked_h["accuracy"], plain_h["accuracy"], rtol=1e-12)


def test_live_progress_bar_chunks_give_identical_results(rng, monkeypatch):
    x, y, w = rng.normal(size=(60, 4)), rng.integers(0, 3, 60), rng.uniform(0.5, 2.0, 60)
    plain_w, plain_h = _train(x, y, w)
    calls = []
    real = model_module.Model._fit_rows

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(model_module.Model, "_fit_rows", counting)
    monkeypatch.setattr(progbar.Progress, "interval", 0.0)  # one batch per chunk
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stdout", tty)
    live_w, live_h = _train(x, y, w, verbose=1)
    monkeypatch.undo()
    assert calls, "the live bar did not train in chunks"
    out = tty.getvalue()
    assert out.count("ETA:") >= 14  # redrawn after every batch of the first epoch
    assert same_weights(plain_w, live_w)
    for key in plain_h:
        np.testing.assert_allclose(live_h[key], plain_h[key], rtol=1e-12, err_msg=key)


def test_batch_logs_hold_the_epoch_so_far_exactly(rng):
    # Keras: on_train_batch_end gets the running loss and metrics of the epoch so far.
    # With a learning rate of 1e-30 the weights stay fixed, so each running value must equal
    # evaluate() on the rows seen so far, counts-based metrics included.
    x, y = rng.normal(size=(30, 4)), (rng.normal(size=30) > 0).astype(float)
    m = classifier(n_out=1)
    metrics = [dc.metrics.Precision(), dc.metrics.Recall(), dc.metrics.AUC(), "accuracy"]
    m.compile(dc.optimizers.SGD(learning_rate=1e-30), "binary_crossentropy", metrics=metrics)
    logs = []
    cb = LambdaCallback(on_train_batch_end=lambda batch, l: logs.append(dict(l)))
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[cb])
    assert len(logs) == 4
    for i, got in enumerate(logs):
        seen = min(8 * (i + 1), 30)
        want = m.evaluate(x[:seen], y[:seen], batch_size=8, verbose=0, return_dict=True)
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-7), (i, key)
    assert logs[0]["precision"] != logs[-1]["precision"]  # the values really move


def test_count_metrics_are_exact_with_a_live_bar(rng, monkeypatch):
    # The loss and the AUC and precision counts are carried over the chunks: the same logs.
    x, y = rng.normal(size=(60, 4)), rng.integers(0, 3, 60)
    y_bin = (y > 0).astype(float)

    def run(verbose):
        dc.utils.set_random_seed(5)
        m = classifier(n_out=1)
        m.compile("adam", "binary_crossentropy", metrics=[dc.metrics.AUC(), dc.metrics.Precision()])
        return m.fit(x, y_bin, batch_size=4, epochs=2, verbose=verbose).history

    plain = run(0)
    monkeypatch.setattr(progbar.Progress, "interval", 0.0)
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stdout", tty)
    live = run(1)
    monkeypatch.undo()
    assert tty.getvalue().count("ETA:") >= 14  # trained in chunks of one batch
    assert live.keys() == plain.keys()
    for key in plain:
        np.testing.assert_allclose(live[key], plain[key], rtol=1e-12, err_msg=key)


# ------------------------------------------------------------------------- progress output

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import deepcore as dc
    from deepcore.utils import progbar
    verbose, epochs, interval = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    progbar.Progress.interval = interval
    dc.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)); y = (x[:, 0] > 0).astype(float)
    m = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(8, activation="relu"),
                       dc.layers.Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    m.fit(x, y, batch_size=10, epochs=epochs, validation_split=0.2, verbose=verbose)
    print("DONE")
    """
)


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _run_child(tmp_path, args, tty):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    cmd = [sys.executable, str(script), *map(str, args)]
    if not tty:
        out = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_env(),
            timeout=120,
            check=True,
        )
        return out.stdout.decode()
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE, env=_child_env())
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    # the terminal turns "\n" into "\r\n": undo that, a remaining "\r" is a redraw
    return b"".join(chunks).decode().replace("\r\n", "\n")


LINE = re.compile(
    r"^Epoch (\d+)/3 - 16/16 - \d+s - \d+(us|ms|s)/step - accuracy: \d\.\d{4} - "
    r"loss: \d\.\d{4} - val_accuracy: \d\.\d{4} - val_loss: \d\.\d{4}$"
)


@pytest.mark.parametrize("verbose", [1, 2, "auto"])
def test_pipe_output_is_one_line_per_epoch(tmp_path, verbose):
    out = _run_child(tmp_path, [1 if verbose == "auto" else verbose, 3, 0.0], tty=False)
    lines = out.splitlines()
    assert lines[-1] == "DONE"
    assert "\r" not in out
    assert len(lines) == 4
    assert [int(LINE.match(line).group(1)) for line in lines[:3]] == [1, 2, 3]


def test_pty_output_redraws_a_progress_bar_with_eta(tmp_path):
    out = _run_child(tmp_path, [1, 3, 0.0], tty=True)
    assert out.endswith("DONE\n")
    # interval 0: every batch of the first epoch redraws the bar (later epochs are too fast
    # to be worth chunking and are drawn when they end)
    assert out.count("ETA:") >= 16
    assert re.search(r"\r\s*\d+/16 \[=*>?\.*\] - ETA: \d+s", out)
    for epoch in (1, 2, 3):
        assert f"Epoch {epoch}/3\n" in out
    finals = re.findall(r"\r(16/16 \[=+\] - \d+s - \d+(?:us|ms|s)/step - .*?)\s*\n", out)
    assert len(finals) == 3 and all("val_loss" in f for f in finals)


def test_pty_default_interval_still_draws_the_bar(tmp_path):
    out = _run_child(tmp_path, [1, 2, 0.1], tty=True)
    assert "\r" in out and "[" + "=" * 30 + "]" in out
    assert out.count("Epoch ") == 2


def test_pty_verbose_2_prints_one_line_per_epoch(tmp_path):
    out = _run_child(tmp_path, [2, 3, 0.0], tty=True)
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 4 and all(LINE.match(line) for line in lines[:3])


@pytest.mark.parametrize("tty", [False, True])
def test_verbose_0_prints_nothing(tmp_path, tty):
    assert _run_child(tmp_path, [0, 2, 0.0], tty=tty) == "DONE\n"


def test_bad_verbose_value(rng):
    m = classifier(n_out=2)
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"`verbose` must be 'auto', 0, 1 or 2"):
        m.fit(rng.normal(size=(10, 4)), rng.integers(0, 2, 10), verbose=3)


def test_the_bar_draws_in_jupyter_and_in_keras3_style(rng, monkeypatch):
    """A Jupyter kernel's stdout (ipykernel's OutStream) gets the live bar, as Keras draws
    it there; set_progress_style("keras3") draws Keras 3's bar."""
    jupyter_stream = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    m = classifier()
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    for style, marks in (("classic", ["[====", "ETA:"]), ("keras3", ["━", "/step - accuracy"])):
        out = jupyter_stream()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(dc.config, "_progress_style", style)
        m.fit(x, y, batch_size=4, epochs=2, verbose=1)
        monkeypatch.undo()
        text = out.getvalue()
        assert "\r" in text and text.count("Epoch ") == 2, text[:200]
        assert all(mark in text for mark in marks), (style, text[-300:])
    with pytest.raises(ValueError, match="style must be one of"):
        dc.config.set_progress_style("fancy")
