"""Keras' masked loss and metrics: where a sequence mask reaches a model's output (Embedding
(mask_zero=True) or Masking, recurrent layers returning sequences, a Dense on every step),
the loss is the mean over the unmasked steps (Keras' apply_mask: weights mask * positions /
unmasked positions, times the sample weights) and the metrics average over the unmasked steps
(weights mask * sample weights). Per-sample weights apply to every step of the sample (Keras 3
takes only (samples, steps) weights with a mask). Checked against float64 NumPy, finite
differences, the backend op on each device, and Keras where it is installed."""

import numpy as np
import pytest
from keras_reference import import_keras
from test_masking import padded
from test_recurrent import CLASSES, fd_gradients, np_recurrent, random_weights

import deepcore as dc
from deepcore import _core
from deepcore import layers as L

DEVICES = [0, 2]  # CPU, guarded


def np_mask_weights(mask, w=None):
    """Keras' (metric weights, loss weights) of a batch's mask (rows, steps), in float64."""
    m = np.asarray(mask, np.float64)
    mw = m * (1.0 if w is None else np.asarray(w, np.float64)[:, None])
    valid = m.sum()
    return mw, mw * (m.size / valid if valid > 0 else 0.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_mask_weights_op(device, shape, weighted, rng):
    mask = (rng.random(shape) > 0.4).astype(np.float32)
    w = rng.random(shape[0]).astype(np.float32) if weighted else None
    for m in (mask, np.zeros_like(mask), np.ones_like(mask)):
        mw, lw = _core.device_mask_weights(device, m, w)
        want_mw, want_lw = np_mask_weights(m, w)
        np.testing.assert_allclose(mw, want_mw, rtol=1e-6)
        np.testing.assert_allclose(lw, want_lw, rtol=1e-6)


def tagger(kind, steps, vocab, classes, lib=dc):
    """Embedding(mask_zero=True) -> a recurrent layer returning sequences -> Dense(softmax)
    on every step: the mask reaches the output."""
    return lib.Sequential(
        [
            lib.Input(shape=(steps,)),
            lib.layers.Embedding(vocab, 4, mask_zero=True),
            getattr(lib.layers, CLASSES[kind].__name__)(5, return_sequences=True),
            lib.layers.Dense(classes, activation="softmax"),
        ]
    )


def padded_tokens(rng, batch, steps, vocab):
    idx = rng.integers(1, vocab, (batch, steps))
    for b in range(batch):
        idx[b, rng.integers(1, steps + 1) :] = 0  # every sample keeps its first step
    idx[1, 0] = 0  # and one starts with padding
    return idx


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("weighted", [False, True])
def test_masked_loss_and_metrics_match_numpy(kind, weighted, rng):
    B, T, V, C, batch = 10, 6, 9, 3, 4
    model = tagger(kind, T, V, C)
    metrics = dict(metrics=["accuracy"], weighted_metrics=["accuracy"])
    model.compile("adam", "sparse_categorical_crossentropy", **metrics)
    x, y = padded_tokens(rng, B, T, V), rng.integers(0, C, (B, T))
    sw = rng.random(B).astype(np.float32) + 0.5 if weighted else None
    p = model.predict(x, verbose=0).astype(np.float64)
    ce = -np.log(np.clip(np.take_along_axis(p, y[..., None], -1)[..., 0], 1e-7, 1 - 1e-7))
    hit = (p.argmax(-1) == y).astype(np.float64)
    mask = x != 0
    loss_sum = hits = weight = 0.0
    for s in range(0, B, batch):  # Keras: each batch's loss, averaged over batches by rows
        part = slice(s, s + batch)
        mw, lw = np_mask_weights(mask[part], None if sw is None else sw[part])
        loss_sum += (ce[part] * lw).mean() * len(ce[part])
        hits += (hit[part] * mw).sum()
        weight += mw.sum()
    got = model.evaluate(x, y, sample_weight=sw, batch_size=batch, verbose=0, return_dict=True)
    np.testing.assert_allclose(got["loss"], loss_sum / B, rtol=1e-5)
    np.testing.assert_allclose(got["weighted_accuracy"], hits / weight, rtol=1e-6)
    # metrics= take the mask and not the sample weights
    np.testing.assert_allclose(got["accuracy"], (hit * mask).sum() / mask.sum(), rtol=1e-6)


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_loss_gradients_match_finite_differences(kind, go_backwards, rng):
    # Masking -> the recurrent layer returning sequences -> mean squared error over the
    # unmasked steps; padded() masks every step of one sample.
    B, T, F, U = 4, 5, 3, 4
    model = dc.Sequential(
        [
            dc.Input(shape=(T, F)),
            L.Masking(),
            CLASSES[kind](U, return_sequences=True, go_backwards=go_backwards),
        ]
    )
    model.compile("sgd", "mse")
    w = random_weights(kind, F, U, rng)
    model.set_weights(w)
    x, keep = padded(rng, B, T, F)
    y = rng.normal(size=(B, T, U)).astype(np.float32)
    params = [a.astype(np.float64) for a in w]

    def np_loss():
        out = np_recurrent(kind, params, x, True, go_backwards, mask=keep)
        return (((out - y) ** 2).mean(-1) * keep).sum() / keep.sum()

    loss, grads = model.gradients(x, y)
    np.testing.assert_allclose(loss, np_loss(), rtol=1e-5)
    for got, want in zip(grads, fd_gradients(np_loss, params)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)


def test_a_batch_with_every_step_masked_has_zero_loss_and_gradients(rng):
    model = tagger("lstm", 4, 6, 2)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.zeros((3, 4), np.int64), np.ones((3, 4), np.int64)
    loss, grads = model.gradients(x, y)
    assert loss == 0.0
    assert all(not np.any(g) for g in grads)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_masked_tagger_trains_as_keras(kind, rng):
    # SGD: with TensorFlow, Keras' Adam updates an Embedding from its sparse gradient and
    # differs from its JAX and PyTorch backends. The metrics are compared through evaluate:
    # Keras' fit on JAX leaves the mask out of its logged metrics, its evaluate does not.
    keras = import_keras()
    B, T, V, C = 12, 7, 11, 3
    x, y = padded_tokens(rng, B, T, V), rng.integers(0, C, (B, T))
    km, dm = tagger(kind, T, V, C, keras), tagger(kind, T, V, C)
    dm.set_weights(km.get_weights())
    for m, lib in ((km, keras), (dm, dc)):
        m.compile(lib.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    fit = dict(epochs=3, batch_size=4, shuffle=False, verbose=0)
    kh, dh = km.fit(x, y, **fit).history, dm.fit(x, y, **fit).history
    np.testing.assert_allclose(dh["loss"], kh["loss"], rtol=5e-4)
    for a, b in zip(dm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=5e-4, atol=1e-5)
    ke = km.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    de = dm.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(de[key], ke[key], rtol=5e-4, err_msg=key)
