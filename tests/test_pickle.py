"""pickle and copy.deepcopy of models: the copy is of the same class, predicts the same bits,
and trains on exactly as the original does (weights, optimizer slots, iterations, learning
rate and the random stream of dropout and shuffling carried over); it shares nothing with
the original."""

import copy
import pickle

import numpy as np
import pytest

import deepcore as dc
from deepcore import layers as L
from deepcore import ops


def pickled(model):
    return pickle.loads(pickle.dumps(model))


COPIES = {"pickle": pickled, "deepcopy": copy.deepcopy}


def clipped_mse(y_true, y_pred):  # (module level: pickle refers to it by name)
    return ops.mean(ops.square(ops.clip(y_pred - y_true, -1.0, 1.0)), axis=-1)


class Net(dc.Model):
    def __init__(self):
        super().__init__()
        self.hidden = L.Dense(8, activation="relu")
        self.drop = L.Dropout(0.25)
        self.out = L.Dense(2)

    def call(self, x):
        return self.out(self.drop(self.hidden(x)))


def sequential():
    return dc.Sequential([dc.Input(shape=(5,)), L.Dense(8, "relu"), L.Dropout(0.25), L.Dense(2)])


def functional():
    x = dc.Input(shape=(5,))
    h = L.Dense(8, activation="tanh")(x)
    h = L.Lambda(lambda t: ops.square(t) * 0.5)(h)
    frozen = L.Dense(5)
    frozen.trainable = False
    y = L.Add()([x, frozen(h)])
    return dc.Model(x, L.Dense(2)(L.Dropout(0.25)(y)))


MODELS = {"sequential": sequential, "functional": functional, "subclassed": Net}


def data(rng, n=64):
    return rng.normal(size=(n, 5)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("kind", list(MODELS))
def test_a_copy_trains_on_exactly_as_the_original(kind, how, rng):
    x, y = data(rng)
    model = MODELS[kind]()
    schedule = dc.optimizers.schedules.ExponentialDecay(0.01, decay_steps=3, decay_rate=0.9)
    model.compile(dc.optimizers.Adam(schedule), clipped_mse, metrics=["mae"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    twin = COPIES[how](model)
    assert type(twin) is type(model) and twin is not model
    np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))
    assert twin.optimizer.iterations == model.optimizer.iterations == 8
    # (dropout and shuffling draw from the carried random stream: the same bits)
    h_model = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    h_twin = twin.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert h_model == h_twin
    for a, b in zip(model.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_copy_is_independent(rng):
    x, y = data(rng)
    model = sequential()
    model.compile("adam", "mse")
    model.fit(x, y, verbose=0)
    twin = pickled(model)
    before = [w.copy() for w in model.get_weights()]
    twin.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    twin.layers[0].set_weights([np.zeros((5, 8), np.float32), np.zeros(8, np.float32)])
    assert np.any(model.layers[0].get_weights()[0] != 0)


def test_learning_rate_and_unfit_models(rng):
    x, y = data(rng)
    model = sequential()
    model.compile(dc.optimizers.SGD(0.1), "mse")
    model.optimizer.learning_rate = 0.05
    twin = copy.deepcopy(model)
    assert twin.optimizer.learning_rate == pytest.approx(0.05)
    twin.fit(x, y, verbose=0)  # compiled, never trained: trains from its copied weights
    unbuilt = dc.Sequential([L.Dense(3), L.Dense(1)])
    copied = pickled(unbuilt)
    assert not copied.built and len(copied.layers) == 2
    copied.compile("adam", "mse")
    copied.fit(x, y[:, :1], verbose=0)


def test_lambdas_travel_as_their_traced_programs(rng):
    """A lambda cannot be pickled; once traced (a Lambda layer in its model, a custom loss
    or metric at the first fit) its programs travel instead, as a saved file keeps them."""
    x, y = data(rng)
    inner = dc.Sequential([dc.Input(shape=(5,)), L.Dense(4, "relu")])
    inp = dc.Input(shape=(5,))
    model = dc.Model(inp, L.Dense(2)(L.Lambda(lambda t: t * 2.0 + 1.0)(inner(inp))))
    model.compile(
        "adam",
        lambda yt, yp: ops.mean(ops.abs(yp - yt), axis=-1),
        metrics=[lambda yt, yp: ops.max(ops.abs(yp - yt), axis=-1)],
    )
    model.fit(x, y, epochs=2, verbose=0)
    twin = pickled(model)
    np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))
    assert twin.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert model.fit(x, y, verbose=0).history == twin.fit(x, y, verbose=0).history
