"""fit, evaluate and predict on data that comes in batches: Python generators, PyDataset
(Keras 3's interface), PyTorch DataLoaders; each batch one step, as the same batches given as
arrays would train (bit for bit), memory bounded by a few batches, Keras' epoch rules
(steps_per_epoch going on where the last epoch stopped, on_epoch_begin/on_epoch_end, a
generator running out), and clear errors for bad batches."""

import tracemalloc
import warnings

import numpy as np
import pytest

import deepcore as dc
from deepcore import layers as L


def make_data(n=320, features=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x[:, :2].sum(1) > 0).astype(np.float32)
    return x, y


def model(features=6):
    m = dc.Sequential([dc.Input(shape=(features,)), L.Dense(8, "relu"), L.Dense(1, "sigmoid")])
    m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return m


class Batches(dc.utils.PyDataset):
    """x, y in batches of `size` (the last one smaller); counts its epochs."""

    def __init__(self, x, y, size=32, weights=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.size, self.w = x, y, size, weights
        self.begun = self.ended = 0

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        s = slice(i * self.size, (i + 1) * self.size)
        if self.w is not None:
            return self.x[s], self.y[s], self.w[s]
        return self.x[s], self.y[s]

    def on_epoch_begin(self):
        self.begun += 1

    def on_epoch_end(self):
        self.ended += 1


def trained(fit_source, fit_arrays):
    """Two models of the same initial weights, one trained by each call: their histories
    and weights, which must be equal bit for bit."""
    dc.utils.set_random_seed(7)
    a = model()
    ha = fit_source(a).history
    dc.utils.set_random_seed(7)
    b = model()
    hb = fit_arrays(b).history
    assert ha == hb
    for p, q in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(p, q)
    return a


def test_a_py_dataset_trains_as_its_arrays():
    x, y = make_data(300)  # (the last batch of each epoch has 12 rows)
    ds = Batches(x, y, weights=np.linspace(0.5, 1.5, 300).astype(np.float32))
    kw = dict(epochs=3, verbose=0)
    w = ds.w
    trained(
        lambda m: m.fit(ds, shuffle=False, **kw),
        lambda m: m.fit(x, y, sample_weight=w, batch_size=32, shuffle=False, **kw),
    )
    assert ds.begun == ds.ended == 3  # (Keras calls them around every epoch)


def test_generators_and_steps_per_epoch_go_on_where_the_last_epoch_stopped():
    x, y = make_data(320)

    def endless():
        while True:
            for i in range(0, 320, 32):
                yield x[i : i + 32], y[i : i + 32]

    # 2 epochs of 5 steps: the arrays' first 160 rows, then the next 160, in order
    dc.utils.set_random_seed(7)
    a = model()
    logs = a.fit(endless(), steps_per_epoch=5, epochs=2, verbose=0).history
    dc.utils.set_random_seed(7)
    b = model()
    fit = dict(batch_size=32, shuffle=False, verbose=0)
    first, second = b.fit(x[:160], y[:160], **fit).history, b.fit(x[160:], y[160:], **fit).history
    assert logs == {k: first[k] + second[k] for k in first}
    for p, q in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(p, q)
    # A PyDataset with steps_per_epoch: the next batches, a new pass when one ends
    ds = Batches(x, y)
    m = model()
    m.fit(ds, steps_per_epoch=6, epochs=3, shuffle=False, verbose=0)
    assert m.optimizer.iterations == 18


def test_a_generator_that_runs_out_stops_training_with_keras_warning():
    x, y = make_data(96)
    finite = ((x[i : i + 32], y[i : i + 32]) for i in range(0, 96, 32))
    m = model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = m.fit(finite, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 1 and m.optimizer.iterations == 3


def test_shuffled_batches_evaluate_predict_and_validation():
    x, y = make_data(256)
    ds = Batches(x, y)
    m = model()
    history = m.fit(ds, epochs=2, validation_data=Batches(x, y, size=100), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert m.evaluate(Batches(x, y, size=50), return_dict=True) == m.evaluate(
        x, y, batch_size=64, return_dict=True
    ) or np.allclose(
        list(m.evaluate(Batches(x, y, size=50), return_dict=True).values()),
        list(m.evaluate(x, y, return_dict=True).values()),
        rtol=1e-6,
    )
    np.testing.assert_array_equal(m.predict(Batches(x, y, size=70), verbose=0), m.predict(x))
    only_x = (x[i : i + 64] for i in range(0, 256, 64))
    np.testing.assert_array_equal(m.predict(only_x, verbose=0), m.predict(x))
    assert m.evaluate(Batches(x, y), steps=2, return_dict=True) == m.evaluate(
        x[:64], y[:64], return_dict=True
    )


def test_workers_fetch_ahead_in_order():
    x, y = make_data(320)
    trained(
        lambda m: m.fit(Batches(x, y, workers=3, max_queue_size=4), shuffle=False, verbose=0),
        lambda m: m.fit(x, y, batch_size=32, shuffle=False, verbose=0),
    )


def test_several_inputs_and_a_torch_data_loader():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    x, y = make_data(200)
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=40)
    trained(
        lambda m: m.fit(loader, epochs=2, verbose=0),
        lambda m: m.fit(x, y, batch_size=40, epochs=2, shuffle=False, verbose=0),
    )
    a, b = dc.Input(shape=(2,)), dc.Input(shape=(4,))
    two = dc.Model([a, b], L.Dense(1, "sigmoid")(L.Concatenate()([a, b])))
    two.compile("adam", "binary_crossentropy")
    batches = [([x[i : i + 50, :2], x[i : i + 50, 2:]], y[i : i + 50]) for i in range(0, 200, 50)]
    two.fit(iter(batches), epochs=1, verbose=0)
    assert two.optimizer.iterations == 4


def test_an_endless_dataset_holds_a_few_batches_in_memory():
    """200 batches of 1 MB through fit: memory holds a few of them, not the 200 MB."""
    rows, features = 256, 1024
    rng = np.random.default_rng(0)

    class Endless(dc.utils.PyDataset):
        @property
        def num_batches(self):
            return None

        def __getitem__(self, i):
            x = rng.normal(size=(rows, features)).astype(np.float32)
            return x, (x[:, 0] > 0).astype(np.float32)

    m = dc.Sequential([dc.Input(shape=(features,)), L.Dense(4, "relu"), L.Dense(1, "sigmoid")])
    m.compile("sgd", "binary_crossentropy")
    batch_bytes = rows * features * 4
    m.fit(Endless(), steps_per_epoch=2, verbose=0)  # (built: its workspace allocated)
    tracemalloc.start()
    try:
        m.fit(Endless(), steps_per_epoch=100, epochs=2, verbose=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert m.optimizer.iterations == 202
    # (a chunk of batches held and joined, and a batch drawn in float64 by the dataset)
    assert peak < 16 * batch_bytes, peak / batch_bytes
    with pytest.raises(ValueError, match="endless PyDataset"):
        m.fit(Endless(), verbose=0)


def test_pandas_frames_are_arrays():
    pd = pytest.importorskip("pandas")
    x, y = make_data(64)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    trained(
        lambda m: m.fit(frame, pd.Series(y), shuffle=False, verbose=0),
        lambda m: m.fit(x, y, shuffle=False, verbose=0),
    )


def test_bad_batches_are_named():
    x, y = make_data(64)
    m = model()
    with pytest.raises(ValueError, match="batch 1 of `x`.*x has 32 samples and y 31"):
        m.fit(iter([(x[:32], y[:32]), (x[32:], y[33:])]), verbose=0)
    with pytest.raises(ValueError, match="a tuple of 4 items"):
        m.fit(iter([(x, y, y, y)]), verbose=0)
    with pytest.raises(ValueError, match="In batch 1 of `x`: .* y of shape"):
        m.fit(iter([(x[:32], y[:32]), (x[32:], np.stack([y[32:], y[32:]], 1))]), verbose=0)
    with pytest.raises(ValueError, match="`y` cannot be given"):
        m.fit(Batches(x, y), y, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(Batches(x, y), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="gave no batches"):
        m.evaluate(iter([]))
    with pytest.raises(ValueError, match="empty"):
        m.fit(iter([(x[:0], y[:0])]), verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(Batches(x, y), verbose=0)  # (no warning for a normal fit)


def test_workers_in_processes():
    x, y = make_data(320)
    trained(
        lambda m: m.fit(
            Batches(x, y, workers=2, use_multiprocessing=True), shuffle=False, verbose=0
        ),
        lambda m: m.fit(x, y, batch_size=32, shuffle=False, verbose=0),
    )
