"""The engine on the guarded backend: CPU kernels on memory the engine cannot read (its
addresses are 2**62 bytes off, so any direct host access faults), with the copies between
host and device counted. Training, evaluation and prediction must give the CPU's bits,
with a number of copies per call that does not grow with the number of batches."""

import numpy as np
import pytest

import deepcore as dc
from deepcore import _core

GUARDED = 2  # Device::Guarded


def twin(model, x, y, metrics=()):
    """The CPU engine of a compiled Sequential `model` and the same model (layers, weights,
    states, regularizers, optimizer, random stream) on the guarded backend."""
    model._set_metrics(y)
    cpu = model._engine
    guarded = model._new_engine(GUARDED)._engine  # the engine itself, not its host mirror
    guarded.write(cpu.weights().copy())
    guarded.write(cpu.states().copy(), states=True)
    guarded.compile(model._loss.spec(), model.optimizer.spec(), [])
    kinds = [
        dc.metrics.resolve(
            m, y.ndim - 1, y.shape[-1] if y.ndim > 1 else 1, 1, cpu.output_shape(-1)[-1]
        )
        for m in model._metrics
    ]
    guarded.set_metrics(kinds)
    guarded.seed, guarded.draws = cpu.seed, cpu.draws
    return cpu, guarded


def mlp(rng):
    m = dc.Sequential(
        [
            dc.Input(shape=(6,)),
            dc.layers.Dense(16, activation="relu", kernel_regularizer=dc.regularizers.L2(1e-3)),
            dc.layers.BatchNormalization(),
            dc.layers.Dropout(0.25),
            dc.layers.Dense(8, activation="tanh"),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(dc.optimizers.Adam(1e-2, clipnorm=1.0), "categorical_crossentropy", ["accuracy"])
    x = rng.normal(size=(100, 6)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 100)]
    return m, x, y


def cnn(rng):
    m = dc.Sequential(
        [
            dc.Input(shape=(8, 8, 2)),
            dc.layers.Conv2D(4, 3, padding="same", activation="relu"),
            dc.layers.MaxPooling2D(2),
            dc.layers.Conv2D(4, 3, activation="elu"),
            dc.layers.AveragePooling2D(1),
            dc.layers.Flatten(),
            dc.layers.Dense(1, activation="sigmoid"),
        ]
    )
    m.compile(
        dc.optimizers.SGD(0.05, momentum=0.9, global_clipnorm=2.0),
        "binary_crossentropy",
        ["accuracy"],
    )
    x = rng.normal(size=(60, 8, 8, 2)).astype(np.float32)
    y = rng.integers(0, 2, (60, 1)).astype(np.float32)
    return m, x, y


def copies_of(call, *args):
    """call(*args), and the (uploads, downloads) it made."""
    before = _core.guarded_copies()
    result = call(*args)
    after = _core.guarded_copies()
    return result, (after[0] - before[0], after[1] - before[1])


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp-bn-dropout", "cnn"])
def test_the_guarded_backend_trains_to_the_cpus_bits(make, rng):
    model, x, y = make(rng)
    cpu, guarded = twin(model, x, y)
    w = rng.uniform(0.5, 2.0, len(x)).astype(np.float32)
    for epoch in range(2):
        a = cpu.fit_epoch(x, y, w, 8, True)
        b = guarded.fit_epoch(x, y, w, 8, True)
        assert a[0] == b[0] and a[1] == b[1] and a[3] == b[3], epoch
    np.testing.assert_array_equal(guarded.read(), cpu.weights())
    np.testing.assert_array_equal(guarded.read(states=True), cpu.states())
    np.testing.assert_array_equal(guarded.optimizer_state(), cpu.optimizer_state())
    assert guarded.iterations == cpu.iterations and guarded.draws == cpu.draws
    order = cpu.permutation(len(x))
    guarded.permutation(len(x))
    assert (
        cpu.fit_rows(x, y, None, 16, order[:50])[:2]
        == guarded.fit_rows(x, y, None, 16, order[:50])[:2]
    )
    assert cpu.evaluate(x, y, w, 7) == guarded.evaluate(x, y, w, 7)
    np.testing.assert_array_equal(guarded.predict(x, 9), cpu.predict(x, 9))
    la, ga = cpu.gradients(x[:20], y[:20], None)
    lb, gb = guarded.gradients(x[:20], y[:20], None)
    assert la == lb
    np.testing.assert_array_equal(ga, gb)


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp-bn-dropout", "cnn"])
def test_copies_per_call_do_not_grow_with_the_batches(make, rng):
    # Data goes to the device once per call and the loss and metrics come back once: the
    # same copies for 4 batches as for 100.
    model, x, y = make(rng)
    _, guarded = twin(model, x, y)
    counts = {}
    for batch in (25, 1):
        guarded.fit_epoch(x, y, None, batch, True)  # workspace for this batch size
        _, counts[("fit", batch)] = copies_of(guarded.fit_epoch, x, y, None, batch, True)
        _, counts[("evaluate", batch)] = copies_of(guarded.evaluate, x, y, None, batch)
        _, counts[("predict", batch)] = copies_of(guarded.predict, x, batch)
    for call in ("fit", "evaluate", "predict"):
        assert counts[(call, 25)] == counts[(call, 1)], counts
    assert counts[("predict", 1)] == (1, 1), counts
    uploads, downloads = counts[("fit", 1)]
    assert uploads <= 5 and downloads <= 1, counts  # x, y, order, states (and w); states


def test_views_of_weights_need_host_memory(rng):
    model, x, y = mlp(rng)
    _, guarded = twin(model, x, y)
    with pytest.raises(RuntimeError, match="need host memory"):
        guarded.weights()
    with pytest.raises(ValueError, match="the weights hold"):
        guarded.write(np.zeros(3, np.float32))


@pytest.fixture
def on_guarded():
    dc.config.set_device("guarded")
    yield
    dc.config.set_device("cpu")


def fit_everything(make, tmp_path):
    """A Sequential trained, evaluated, saved and loaded on the current device."""
    dc.utils.set_random_seed(5)
    model, x, y = make(np.random.default_rng(0))
    h = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.2, verbose=0)
    model.save(tmp_path / "m.dc")
    loaded = dc.models.load_model(tmp_path / "m.dc")
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    return (
        h.history,
        model.evaluate(x, y, verbose=0),
        model.predict(x, verbose=0),
        model.get_weights(),
        loaded.get_weights(),
    )


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp-bn-dropout", "cnn"])
def test_a_keras_workflow_on_the_guarded_backend(make, tmp_path, request):
    # What a user writes, on a device whose memory the host cannot read: the weights
    # go through host copies (layers see them, get_weights, saving), never through views.
    cpu = fit_everything(make, tmp_path)
    request.getfixturevalue("on_guarded")
    before = _core.guarded_copies()
    guarded = fit_everything(make, tmp_path)
    assert _core.guarded_copies() != before  # it did run there
    assert guarded[0] == cpu[0] and guarded[1] == cpu[1]
    np.testing.assert_array_equal(guarded[2], cpu[2])
    for a, b in zip(guarded[3] + guarded[4], cpu[3] + cpu[4]):
        np.testing.assert_array_equal(a, b)
