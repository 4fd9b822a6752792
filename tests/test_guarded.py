"""The engine on the guarded backend: CPU kernels on memory the engine cannot read (its
addresses are 2**62 bytes off, so any direct host access faults), with the copies between
host and device counted. Training, evaluation and prediction must give the CPU's bits,
with a number of copies per call that does not grow with the number of batches."""

import numpy as np
import pytest

import deepcore as dc
from deepcore import _core

GUARDED = 2  # Device::Guarded


def twin(model, x, y):
    """The CPU engine of a compiled `model` and the same model (layers, weights, states,
    regularizers, optimizer, random stream) on the guarded backend, and the inputs x and the
    labels y as the engines take them."""
    x, _ = model._inputs(x)
    y = model._targets(y, len(x))
    cpu = model._engine
    model._set_metrics()
    guarded = model._new_engine(GUARDED)._engine  # the engine itself, not its host mirror
    guarded.write(cpu.weights().copy())
    guarded.write(cpu.states().copy(), states=True)
    model._configure(guarded)
    model._set_metrics(guarded)
    guarded.seed, guarded.draws = cpu.seed, cpu.draws
    return cpu, guarded, x, y


def arrays_of(x) -> int:
    """The arrays of inputs the engine takes for x (several inputs: one each)."""
    return len(x._arrays) if hasattr(x, "_arrays") else 1


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
    m.compile(
        dc.optimizers.Adam(1e-2, clipnorm=1.0), "categorical_crossentropy", metrics=["accuracy"]
    )
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
        metrics=["accuracy"],
    )
    x = rng.normal(size=(60, 8, 8, 2)).astype(np.float32)
    y = rng.integers(0, 2, (60, 1)).astype(np.float32)
    return m, x, y


def images(rng):  # preprocessing and augmentation inside the model
    L = dc.layers
    m = dc.Sequential(
        [
            dc.Input(shape=(10, 9, 1)),
            L.RandomFlip(),
            L.RandomRotation(0.1, fill_mode="constant"),
            L.RandomZoom(0.2, seed=4),
            L.RandomContrast(0.3),
            L.RandomBrightness(0.1, seed=5),
            L.RandomCrop(9, 8),
            L.Rescaling(1 / 255),
            L.Resizing(12, 12, interpolation="bicubic"),
            L.CenterCrop(8, 8),
            L.Normalization(axis=None, mean=0.5, variance=0.1),
            L.Conv2D(4, 3, activation="relu"),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.uniform(0, 255, (60, 10, 9, 1)).astype(np.float32)
    return m, x, rng.integers(0, 3, 60).astype(np.float32)


def text(rng):
    m = dc.Sequential(
        [
            dc.Input(shape=(9,)),
            dc.layers.Embedding(50, 8, embeddings_regularizer=dc.regularizers.L2(1e-3)),
            dc.layers.TimeDistributed(dc.layers.Dense(6, activation="relu")),
            dc.layers.GlobalMaxPooling1D(keepdims=True),
            dc.layers.Flatten(),
            dc.layers.Dense(4, activation="tanh"),
            dc.layers.Reshape((4, 1)),
            dc.layers.GlobalAveragePooling1D(),
            dc.layers.Dense(1, activation="sigmoid"),
        ]
    )
    m.compile(dc.optimizers.Adam(1e-2), "binary_crossentropy", weighted_metrics=["accuracy"])
    x = rng.integers(0, 50, (60, 9)).astype(np.float32)
    y = rng.integers(0, 2, (60, 1)).astype(np.float32)
    return m, x, y


def seq1d(rng):
    m = dc.Sequential(
        [
            dc.Input(shape=(13, 3)),
            dc.layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
            dc.layers.MaxPooling1D(2, padding="same"),
            dc.layers.UpSampling1D(3),
            dc.layers.Conv1D(4, 3, strides=2, padding="same", activation="tanh"),
            dc.layers.AveragePooling1D(2),
            dc.layers.Flatten(),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(dc.optimizers.Adam(1e-2), "categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(60, 13, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
    return m, x, y


def recurrent(rng):
    m = dc.Sequential(
        [
            dc.Input(shape=(7, 3)),
            dc.layers.GRU(6, return_sequences=True),
            dc.layers.LSTM(5, return_sequences=True, go_backwards=True),
            dc.layers.SimpleRNN(4),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(dc.optimizers.Adam(1e-2), "categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(60, 7, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
    return m, x, y


def bidirectional(rng):
    m = dc.Sequential(
        [
            dc.Input(shape=(6, 3)),
            dc.layers.Bidirectional(dc.layers.LSTM(4, return_sequences=True)),
            dc.layers.Bidirectional(dc.layers.GRU(3), merge_mode="mul"),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(dc.optimizers.Adam(1e-2), "categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(60, 6, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
    return m, x, y


def recurrent_dropout(rng):
    # input and state dropout: one mask and per-gate masks, a seeded layer, both directions
    m = dc.Sequential(
        [
            dc.Input(shape=(5, 3)),
            dc.layers.LSTM(5, dropout=0.3, return_sequences=True),
            dc.layers.Bidirectional(
                dc.layers.GRU(4, dropout=0.2, recurrent_dropout=0.4, return_sequences=True)
            ),
            dc.layers.SimpleRNN(4, recurrent_dropout=0.25, seed=11),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(dc.optimizers.Adam(1e-2), "categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(60, 5, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
    return m, x, y


def masked(rng):
    # padded sequences, with state dropout on the masked LSTM
    m = dc.Sequential(
        [
            dc.Input(shape=(9,)),
            dc.layers.Embedding(12, 4, mask_zero=True),
            dc.layers.Bidirectional(dc.layers.GRU(3, return_sequences=True)),
            dc.layers.LSTM(4, return_sequences=True, go_backwards=True, recurrent_dropout=0.2),
            dc.layers.GlobalAveragePooling1D(),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(dc.optimizers.Adam(1e-2), "categorical_crossentropy", metrics=["accuracy"])
    x = rng.integers(1, 12, (60, 9))
    lengths = rng.integers(1, 10, 60)
    x[np.arange(9) >= lengths[:, None]] = 0  # padded at the end, at least one step kept
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
    return m, x.astype(np.float32), y


def masked_tagger(rng):
    # a label per step, the mask reaching the loss and the metrics
    m = dc.Sequential(
        [
            dc.Input(shape=(8,)),
            dc.layers.Embedding(12, 4, mask_zero=True),
            dc.layers.LSTM(5, return_sequences=True),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(dc.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.integers(1, 12, (60, 8))
    x[np.arange(8) >= rng.integers(0, 9, 60)[:, None]] = 0  # some samples all padding
    return m, x.astype(np.float32), rng.integers(0, 3, (60, 8)).astype(np.float32)


def frozen(rng):
    # a frozen Dense and a frozen BatchNormalization (normalizing with its moving statistics)
    m, x, y = mlp(rng)
    m.layers[0].trainable = False
    m.layers[1].trainable = False
    m.compile(dc.optimizers.Adam(1e-2), "categorical_crossentropy", metrics=["accuracy"])
    return m, x, y


def functional(rng):
    # a graph: the input read by two branches and a Concatenate, merged by Add and Maximum
    L = dc.layers
    x = dc.Input(shape=(6,))
    a = L.Dense(8, activation="relu")(x)
    b = L.Dense(8, activation="tanh")(x)
    m = L.Maximum()([L.Add()([a, b]), L.Dense(8)(b)])
    out = L.Dense(3, activation="softmax")(L.Concatenate()([m, x]))
    model = dc.Model(x, out)
    model.compile(dc.optimizers.Adam(1e-2), "categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(60, 6)).astype(np.float32)
    return model, x, np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]


def multi_output(rng):
    # two inputs (each its own array) and two outputs: "trunk" (a custom loss, also read by
    # "cls") and "cls" (softmax, its loss fused; a custom metric), which reads a cosine
    # similarity, a Lambda and ops too
    L = dc.layers
    x, side = dc.Input(shape=(6,)), dc.Input(shape=(3,))
    h = L.Dense(5, activation="tanh", name="trunk")(x)
    cosine = L.Dot(1, normalize=True)([h, L.Dense(5)(L.Concatenate()([x, side]))])
    shaped = L.Lambda(lambda t: dc.ops.log1p(dc.ops.square(t)) - dc.ops.mean(t, 1, True))(h)
    features = L.Concatenate()([shaped, cosine, dc.ops.maximum(h, 0.1) * 2.0])
    model = dc.Model([x, side], [h, L.Dense(3, activation="softmax", name="cls")(features)])

    def pseudo_huber(y_true, y_pred):  # custom loss and metric: programs of deepcore.ops
        return dc.ops.mean(dc.ops.sqrt(dc.ops.square(y_true - y_pred) + 1.0) - 1.0, axis=-1)

    def top(y_true, y_pred):
        return dc.ops.max(y_pred, axis=-1)

    model.compile(
        dc.optimizers.Adam(1e-2),
        [pseudo_huber, "sparse_categorical_crossentropy"],
        loss_weights=[0.5, 1.0],
        metrics=[["mae"], ["accuracy", top]],
    )
    xs = [rng.normal(size=(60, 6)).astype(np.float32), rng.normal(size=(60, 3)).astype(np.float32)]
    return model, xs, [rng.normal(size=(60, 5)).astype(np.float32), rng.integers(0, 3, 60)]


def rows(y, n):
    """The first n rows of inputs or labels (a list of several: of each)."""
    return [a[:n] for a in y] if isinstance(y, list) else y[:n]


# Every model above: dense with batch norm and dropout, convolutional, text, 1-D conv,
# recurrent, bidirectional, recurrent with dropout, masked sequences, a masked loss, frozen
# layers, a functional graph, several outputs.
EVERY_MODEL = pytest.mark.parametrize(
    "make",
    [
        mlp,
        cnn,
        text,
        seq1d,
        recurrent,
        bidirectional,
        recurrent_dropout,
        masked,
        masked_tagger,
        frozen,
        functional,
        multi_output,
        images,
    ],
    ids=[
        "mlp-bn-dropout",
        "cnn",
        "text",
        "conv1d",
        "recurrent",
        "bidirectional",
        "recurrent-dropout",
        "masked",
        "masked-loss",
        "frozen",
        "functional",
        "multi-output",
        "images",
    ],
)


def copies_of(call, *args):
    """call(*args), and the (uploads, downloads) it made."""
    before = _core.device_copies(GUARDED)
    result = call(*args)
    after = _core.device_copies(GUARDED)
    return result, (after[0] - before[0], after[1] - before[1])


@EVERY_MODEL
def test_the_guarded_backend_trains_to_the_cpus_bits(make, rng):
    model, x, y = make(rng)
    cpu, guarded, x, y = twin(model, x, y)
    w = rng.uniform(0.5, 2.0, len(x)).astype(np.float32)
    data = {e: e.dataset(x, y, w) for e in (cpu, guarded)}
    for epoch in range(2):
        a = cpu.fit_epoch(data[cpu], 8, True)
        b = guarded.fit_epoch(data[guarded], 8, True)
        assert a[0] == b[0] and a[1] == b[1] and a[3] == b[3], epoch
    np.testing.assert_array_equal(guarded.read(), cpu.weights())
    np.testing.assert_array_equal(guarded.read(states=True), cpu.states())
    np.testing.assert_array_equal(guarded.optimizer_state(), cpu.optimizer_state())
    assert guarded.iterations == cpu.iterations and guarded.draws == cpu.draws
    order = cpu.permutation(len(x))
    guarded.permutation(len(x))
    plain = {e: e.dataset(x, y) for e in (cpu, guarded)}
    assert (
        cpu.fit_rows(plain[cpu], 16, order[:50])[:2]
        == guarded.fit_rows(plain[guarded], 16, order[:50])[:2]
    )
    assert (
        cpu.fit_rows(plain[cpu], 16, first=7, count=40)[:2]
        == guarded.fit_rows(plain[guarded], 16, first=7, count=40)[:2]
    )
    assert cpu.evaluate(data[cpu], 7) == guarded.evaluate(data[guarded], 7)
    np.testing.assert_array_equal(guarded.predict(x, 9), cpu.predict(x, 9))
    la, ga = cpu.gradients(x[:20], y[:20], None)
    lb, gb = guarded.gradients(x[:20], y[:20], None)
    assert la == lb
    np.testing.assert_array_equal(ga, gb)


@EVERY_MODEL
def test_copies_per_call_do_not_grow_with_the_batches(make, rng):
    # Data goes to the device once (a dataset), and per call only the row order and the
    # per-step values (learning rate, step count, seeds) go, and the loss and metrics come
    # back once: the same copies for 3 batches as for 60.
    model, x, y = make(rng)
    _, guarded, x, y = twin(model, x, y)
    w = rng.uniform(0.5, 2.0, len(x)).astype(np.float32)
    data, made = copies_of(guarded.dataset, x, y, w)
    assert made == (arrays_of(x) + 2, 0)  # x (each input's array), y, w
    counts = {}
    for batch in (25, 1):
        guarded.fit_epoch(data, batch, True)  # workspace for this batch size
        _, counts[("fit", batch)] = copies_of(guarded.fit_epoch, data, batch, True)
        _, counts[("in order", batch)] = copies_of(guarded.fit_epoch, data, batch, False)
        _, counts[("evaluate", batch)] = copies_of(guarded.evaluate, data, batch)
        _, counts[("predict", batch)] = copies_of(guarded.predict, x, batch)
    for call in ("fit", "in order", "evaluate", "predict"):
        assert counts[(call, 25)] == counts[(call, 1)], counts
    assert counts[("fit", 1)] == (3, 1), counts  # order, step values, seeds; states
    assert counts[("in order", 1)] == (2, 1), counts
    assert counts[("evaluate", 1)] == (0, 1), counts
    assert counts[("predict", 1)] == (arrays_of(x), 1), counts  # x; outputs


def test_views_of_weights_need_host_memory(rng):
    model, x, y = mlp(rng)
    _, guarded, x, y = twin(model, x, y)
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


@EVERY_MODEL
def test_a_keras_workflow_on_the_guarded_backend(make, tmp_path, request):
    # What a user writes, on a device whose memory the host cannot read: the weights
    # go through host copies (layers see them, get_weights, saving), never through views.
    cpu = fit_everything(make, tmp_path)
    request.getfixturevalue("on_guarded")
    before = _core.device_copies(GUARDED)
    guarded = fit_everything(make, tmp_path)
    assert _core.device_copies(GUARDED) != before  # it did run there
    assert guarded[0] == cpu[0] and guarded[1] == cpu[1]
    predicted = [(guarded[2], cpu[2])] if not isinstance(cpu[2], list) else zip(guarded[2], cpu[2])
    for a, b in list(predicted) + list(zip(guarded[3] + guarded[4], cpu[3] + cpu[4])):
        np.testing.assert_array_equal(a, b)


@EVERY_MODEL
def test_fit_copies_its_data_once_and_a_constant_per_epoch(make, on_guarded):
    # The training and validation data go to the device once per fit; an epoch then copies
    # the same few values whatever the number of batches or rows.
    model, x, y = make(np.random.default_rng(0))

    def copies(epochs, n, batch_size):
        before = _core.device_copies(GUARDED)
        model.fit(
            rows(x, n),
            rows(y, n),
            batch_size=batch_size,
            epochs=epochs,
            verbose=0,
            validation_data=(rows(x, 10), rows(y, 10)),
        )
        after = _core.device_copies(GUARDED)
        return after[0] - before[0], after[1] - before[1]

    copies(1, 60, 4)  # workspace for these batch sizes
    one, four = copies(1, 60, 4), copies(4, 60, 4)
    per_epoch = ((four[0] - one[0]) // 3, (four[1] - one[1]) // 3)
    assert four == (one[0] + 3 * per_epoch[0], one[1] + 3 * per_epoch[1])
    # weights and states in (before training and before validating), row order, step
    # values and seeds; weights and states out (after training), the two runs' states.
    # (The cnn has no states: an empty buffer is no copy.)
    buffers = 2 if make in (mlp, frozen) else 1
    assert per_epoch == (3 + 2 * buffers, buffers + 2), per_epoch
    # x (each input's array), y (training and validation) once per fit
    arrays = len(x) if isinstance(x, list) else 1
    assert one == (per_epoch[0] + 2 * (arrays + 1), per_epoch[1]), one
    assert copies(4, 40, 1) == four  # 40 batches an epoch instead of 15
