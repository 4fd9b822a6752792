"""Metrics computed by the engine, against NumPy over a whole epoch of several batches.

Every metric is checked in fit (training logs) and in evaluate, with and without sample
weights (Keras 3: `metrics` ignore them, `weighted_metrics` use them). In fit, SGD with a
learning rate of 1e-30 leaves the predictions unchanged, so the training logs describe the
predictions of `model.predict`. Precision, Recall and AUC accumulate counts over the epoch:
they are not means of batch values.
"""

import numpy as np
import pytest

import deepcore as dc

N, BATCH = 57, 8  # 8 batches, the last one smaller


def mlp(n_in, n_out, activation):
    return dc.Sequential(
        [
            dc.Input(shape=(n_in,)),
            dc.layers.Dense(6, activation="tanh"),
            dc.layers.Dense(n_out, activation=activation),
        ]
    )


def run(model, loss, metrics, x, y, w):
    """Predictions, logs of one frozen training epoch, logs of evaluate, the metrics given as
    weighted_metrics (weighted by w, as Keras' are)."""
    opt = dc.optimizers.SGD(learning_rate=1e-30)
    model.compile(optimizer=opt, loss=loss, weighted_metrics=metrics)
    model.build((None, x.shape[1]))
    p = model.predict(x, verbose=0).astype(np.float64)
    h = model.fit(x, y, sample_weight=w, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    fit_logs = {k: v[0] for k, v in h.history.items()}
    eval_logs = model.evaluate(x, y, sample_weight=w, batch_size=BATCH, return_dict=True, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), p, rtol=1e-6, atol=1e-7)
    return p, fit_logs, eval_logs


def check(logs_pair, name, expected, rel=1e-6):
    for where, logs in zip(("fit", "evaluate"), logs_pair):
        assert logs[name] == pytest.approx(expected, rel=rel, abs=1e-12), (where, name)


def weights_or_none(rng, weighted):
    if not weighted:
        return None
    w = rng.uniform(0.0, 3.0, N)
    w[::7] = 0.0
    return w


def row_weights(w, n=N):
    return np.ones(n) if w is None else np.asarray(w, dtype=np.float64)


def weighted_mean(values, w):
    w = row_weights(w, len(values))
    return np.sum(w * values) / np.sum(w)


# ---------------------------------------------------------------------- NumPy references


def np_counts(p, y, w, threshold):
    """Weighted tp, fp, fn, tn over every entry (rows x outputs), positive if p > threshold."""
    ww = np.broadcast_to(row_weights(w, len(p))[:, None], p.shape).reshape(-1, 1)
    pos = p.reshape(-1, 1) > np.atleast_1d(threshold)[None, :]
    truth = (y.reshape(-1) != 0)[:, None]
    return (
        (ww * (pos & truth)).sum(0),
        (ww * (pos & ~truth)).sum(0),
        (ww * (~pos & truth)).sum(0),
        (ww * (~pos & ~truth)).sum(0),
    )


def np_precision(p, y, w, threshold=0.5):
    tp, fp, _, _ = np_counts(p, y, w, threshold)
    return float(tp[0] / (tp[0] + fp[0])) if tp[0] + fp[0] > 0 else 0.0


def np_recall(p, y, w, threshold=0.5):
    tp, _, fn, _ = np_counts(p, y, w, threshold)
    return float(tp[0] / (tp[0] + fn[0])) if tp[0] + fn[0] > 0 else 0.0


def keras_thresholds(n):
    return np.array([-1e-7] + [i / (n - 1) for i in range(1, n - 1)] + [1 + 1e-7])


def np_auc(p, y, w, num_thresholds=200):
    tp, fp, fn, tn = np_counts(p, y, w, keras_thresholds(num_thresholds))
    tpr = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1e-300), 0.0)
    fpr = np.where(fp + tn > 0, fp / np.maximum(fp + tn, 1e-300), 0.0)
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


def np_top_k(p, labels, k):
    above = (p > p[np.arange(len(p)), labels][:, None]).sum(axis=1)
    return (above < k).astype(np.float64)


def batch_means(values_fn, p, y, w):
    """Mean over batches of a metric computed batch by batch (what an epoch value is NOT)."""
    vals = []
    for s in range(0, len(p), BATCH):
        sl = slice(s, s + BATCH)
        vals.append(values_fn(p[sl], y[sl], None if w is None else w[sl]))
    return float(np.mean(vals))


# ---------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("weighted", [False, True])
def test_binary_precision_recall_auc_accuracy(rng, weighted):
    x = rng.normal(0, 3, size=(N, 4))
    y = (x[:, 0] + rng.normal(0, 2, N) > 0).astype(np.float64)[:, None]
    w = weights_or_none(rng, weighted)
    metrics = [
        "accuracy",
        dc.metrics.Precision(),
        dc.metrics.Recall(),
        dc.metrics.AUC(),
        dc.metrics.Precision(thresholds=0.3, name="precision_at_0.3"),
        dc.metrics.AUC(num_thresholds=7, name="auc_7"),
    ]
    p, *logs = run(mlp(4, 1, "sigmoid"), "binary_crossentropy", metrics, x, y, w)
    check(logs, "accuracy", weighted_mean(((p > 0.5) == (y > 0.5))[:, 0], w))
    check(logs, "precision", np_precision(p, y, w))
    check(logs, "recall", np_recall(p, y, w))
    check(logs, "auc", np_auc(p, y, w))
    check(logs, "precision_at_0.3", np_precision(p, y, w, 0.3))
    check(logs, "auc_7", np_auc(p, y, w, 7))
    # counts over the epoch, not the mean of the batch values
    for name, fn in (("precision", np_precision), ("recall", np_recall), ("auc", np_auc)):
        assert abs(batch_means(fn, p, y, w) - logs[0][name]) > 1e-4, name


@pytest.mark.parametrize("weighted", [False, True])
def test_auc_is_the_roc_area(rng, weighted):
    # close to the exact ROC area (sklearn) with 200 thresholds
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    x = rng.normal(0, 3, size=(N, 4))
    y = (x[:, 0] + rng.normal(0, 2, N) > 0).astype(np.float64)[:, None]
    w = weights_or_none(rng, weighted)
    p, *logs = run(mlp(4, 1, "sigmoid"), "binary_crossentropy", [dc.metrics.AUC()], x, y, w)
    exact = sklearn_metrics.roc_auc_score(y[:, 0], p[:, 0], sample_weight=w)
    assert 0.6 < exact < 0.99
    check(logs, "auc", exact, rel=0.02)


@pytest.mark.parametrize("weighted", [False, True])
def test_multi_label_counts_cover_every_output(rng, weighted):
    x = rng.normal(0, 3, size=(N, 4))
    y = (rng.uniform(size=(N, 3)) < 0.4).astype(np.float64)
    w = weights_or_none(rng, weighted)
    metrics = [
        dc.metrics.Precision(),
        dc.metrics.Recall(),
        dc.metrics.AUC(),
        dc.metrics.BinaryAccuracy(),
    ]
    p, *logs = run(mlp(4, 3, "sigmoid"), "binary_crossentropy", metrics, x, y, w)
    check(logs, "precision", np_precision(p, y, w))
    check(logs, "recall", np_recall(p, y, w))
    check(logs, "auc", np_auc(p, y, w))
    check(logs, "binary_accuracy", weighted_mean(((p > 0.5) == (y > 0.5)).mean(axis=1), w))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("labels", ["sparse", "one_hot"])
def test_categorical_accuracy_and_top_k(rng, weighted, labels):
    x = rng.normal(0, 3, size=(N, 4))
    classes = rng.integers(0, 5, N)
    w = weights_or_none(rng, weighted)
    if labels == "sparse":
        y, loss = classes, "sparse_categorical_crossentropy"
    else:
        y, loss = dc.utils.to_categorical(classes, 5), "categorical_crossentropy"
    metrics = [
        "accuracy",
        dc.metrics.TopKCategoricalAccuracy(k=2),
        dc.metrics.TopKCategoricalAccuracy(k=3, name="top3"),
    ]
    p, *logs = run(mlp(4, 5, "softmax"), loss, metrics, x, y, w)
    check(logs, "accuracy", weighted_mean((p.argmax(axis=1) == classes).astype(float), w))
    check(logs, "top_k_categorical_accuracy", weighted_mean(np_top_k(p, classes, 2), w))
    check(logs, "top3", weighted_mean(np_top_k(p, classes, 3), w))
    # the metrics differ from each other on this data (the test can tell them apart)
    assert (
        len({round(logs[1][k], 6) for k in ("accuracy", "top_k_categorical_accuracy", "top3")}) == 3
    )


@pytest.mark.parametrize("weighted", [False, True])
def test_mse_and_mae_metrics(rng, weighted):
    x = rng.normal(size=(N, 4))
    y = rng.normal(size=(N, 2))
    w = weights_or_none(rng, weighted)
    p, *logs = run(mlp(4, 2, "linear"), "huber", ["mse", "mae", "mean_squared_error"], x, y, w)
    check(logs, "mse", weighted_mean(((p - y) ** 2).mean(axis=1), w))
    check(logs, "mean_squared_error", weighted_mean(((p - y) ** 2).mean(axis=1), w))
    check(logs, "mae", weighted_mean(np.abs(p - y).mean(axis=1), w))


@pytest.mark.parametrize("weighted", [False, True])
def test_loss_is_the_weighted_sum_over_the_number_of_samples(rng, weighted):
    # Keras' sum_over_batch_size, summed over the epoch: sum(w * loss_i) / n
    x = rng.normal(0, 3, size=(N, 4))
    y = rng.integers(0, 2, N).astype(np.float64)[:, None]
    w = weights_or_none(rng, weighted)
    p, *logs = run(mlp(4, 1, "sigmoid"), "binary_crossentropy", [], x, y, w)
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    per = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))[:, 0]
    check(logs, "loss", np.sum(row_weights(w) * per) / N, rel=1e-5)


def test_weighted_and_unweighted_values_differ(rng):
    # guards the weighted tests above: these weights do change every metric
    x = rng.normal(0, 3, size=(N, 4))
    y = (x[:, 0] + rng.normal(0, 2, N) > 0).astype(np.float64)[:, None]
    w = weights_or_none(rng, True)
    metrics = ["accuracy", dc.metrics.Precision(), dc.metrics.Recall(), dc.metrics.AUC()]
    dc.utils.set_random_seed(9)
    _, _, plain = run(mlp(4, 1, "sigmoid"), "binary_crossentropy", metrics, x, y, None)
    dc.utils.set_random_seed(9)
    _, _, weighted = run(mlp(4, 1, "sigmoid"), "binary_crossentropy", metrics, x, y, w)
    for name in ("accuracy", "precision", "recall", "auc"):
        assert abs(plain[name] - weighted[name]) > 1e-4, name


def test_metric_argument_errors():
    for bad in (1, 2**20 + 1, 2**63, 2.5):  # the engine keeps 4 counts per threshold
        with pytest.raises(ValueError, match=r"AUC: `num_thresholds` must be an integer >= 2"):
            dc.metrics.AUC(num_thresholds=bad)
    for bad in (0, 2**31, 2**64, None):
        with pytest.raises(ValueError, match="`k` must be a positive integer"):
            dc.metrics.TopKCategoricalAccuracy(k=bad)
    for bad in (float("nan"), -0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match=r"Precision: `thresholds` must be a number"):
            dc.metrics.Precision(thresholds=bad)
    for bad in (10**400, 0, float("inf")):
        with pytest.raises(ValueError, match=r"Huber: `delta` must be a number > 0"):
            dc.losses.Huber(delta=bad)


def test_metrics_ignore_sample_weights_and_weighted_metrics_use_them(rng):
    # Keras 3: compile(metrics=...) are unweighted; weighted_metrics=... take the sample
    # weights (and class weights), named weighted_<name> when both lists have the name.
    x = rng.normal(0, 3, size=(N, 4))
    y = (x[:, 0] + rng.normal(0, 2, N) > 0).astype(np.float64)[:, None]
    w = weights_or_none(rng, True)
    model = mlp(4, 1, "sigmoid")
    opt = dc.optimizers.SGD(learning_rate=1e-30)
    model.compile(opt, "binary_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    p = model.predict(x, verbose=0).astype(np.float64)
    logs = model.evaluate(x, y, sample_weight=w, batch_size=BATCH, return_dict=True, verbose=0)
    hit = ((p > 0.5) == (y > 0.5))[:, 0]
    assert logs["accuracy"] == pytest.approx(np.mean(hit), rel=1e-6)
    assert logs["weighted_accuracy"] == pytest.approx(weighted_mean(hit, w), rel=1e-6)
    assert model.metrics_names == ["loss", "accuracy", "weighted_accuracy"]
    h = model.fit(x, y, class_weight={0: 1.0, 1: 3.0}, batch_size=BATCH, verbose=0).history
    assert h["accuracy"][0] == pytest.approx(np.mean(hit), rel=1e-6)
    cw = np.where(y[:, 0] > 0.5, 3.0, 1.0)
    assert h["weighted_accuracy"][0] == pytest.approx(weighted_mean(hit, cw), rel=1e-6)


def test_loss_weights_scale_the_loss_and_its_gradients(rng):
    x, y = rng.normal(size=(N, 4)), rng.normal(size=(N, 1))
    model = mlp(4, 1, None)
    model.compile("sgd", "mse")
    loss, grads = model.gradients(x, y)
    model.compile("sgd", "mse", loss_weights=2.5)
    loss2, grads2 = model.gradients(x, y)
    assert loss2 == pytest.approx(2.5 * loss, rel=1e-6)
    for a, b in zip(grads2, grads):
        np.testing.assert_allclose(a, 2.5 * b, rtol=1e-5)
    with pytest.raises(ValueError, match="pass metrics="):
        model.compile("sgd", "mse", ["accuracy"])
    with pytest.raises(ValueError, match="finite number >= 0"):
        model.compile("sgd", "mse", loss_weights=-1)
