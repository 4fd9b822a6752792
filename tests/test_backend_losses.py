"""Backend losses and metric updates through the harness (_core.device_loss,
_core.device_metric_update) on the CPU (device 0) and the guarded backend (device 2),
against float64 NumPy references of the same formulas (csrc/include/deepcore/loss_terms.h).

The cases and references here serve tests/test_cuda_losses.py too, which compares the CUDA
backend with the CPU's.
"""

import numpy as np
import pytest

from deepcore import _core

CPU, GUARDED = 0, 2
DEVICES = [CPU, GUARDED]
# Keras' epsilon for clipping probabilities, and the bounds [EPS, 1 - EPS] as float32 kernels
# have them
EPS = float(np.float32(1e-7))
ONE_MINUS_EPS = float(np.float32(1.0) - np.float32(1e-7))
Loss, Metric = _core.Loss, _core.Metric

# Predictions (..., cols): one value, one row, odd sizes, more than two axes, large.
SHAPES = [(1, 1), (1, 7), (5, 3), (33, 17), (2, 3, 4), (128, 10), (300, 129), (4096, 3), (3, 5000)]

# name -> (kind, from_logits, delta)
LOSSES = {
    "mse": (Loss.mean_squared_error, False, 1.0),
    "mae": (Loss.mean_absolute_error, False, 1.0),
    "huber": (Loss.huber, False, 1.0),
    "huber_0.3": (Loss.huber, False, 0.3),
    "hinge": (Loss.hinge, False, 1.0),
    "bce": (Loss.binary_crossentropy, False, 1.0),
    "bce_logits": (Loss.binary_crossentropy, True, 1.0),
    "cce": (Loss.categorical_crossentropy, False, 1.0),
    "cce_logits": (Loss.categorical_crossentropy, True, 1.0),
    "scce": (Loss.sparse_categorical_crossentropy, False, 1.0),
    "scce_logits": (Loss.sparse_categorical_crossentropy, True, 1.0),
}
LOGITS = sorted(name for name, (_, logits, _) in LOSSES.items() if logits)


def loss_spec(name):
    kind, from_logits, delta = LOSSES[name]
    return _core.LossSpec(kind, from_logits, delta)


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def loss_case(name, shape, rng, weighted=False, fused=False):
    """(pred, probs or None, y, w or None) in float32 for loss `name` on predictions `shape`.

    Includes the edge values: exact ties of pred and y (MAE, Huber), probabilities clipped
    at 0 and 1 and beyond, logits far from 0, soft labels.
    """
    cols, lead = shape[-1], shape[:-1]
    rows = int(np.prod(lead))
    f32 = np.float32
    if name in ("mse", "mae", "huber", "huber_0.3"):
        y = rng.normal(size=shape)
        pred = y + rng.normal(size=shape) * 1.5
        pred = np.where(rng.random(shape) < 0.1, y, pred)  # e = 0: a zero (sub)gradient
    elif name == "hinge":
        y = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        pred = rng.normal(size=shape) * 2
    elif name == "bce":
        y = np.where(rng.random(shape) < 0.2, rng.random(shape), rng.random(shape) < 0.5)
        pred = rng.uniform(0.01, 0.99, size=shape)
        edge = rng.random(shape)
        pred = np.where(edge < 0.05, 0.0, np.where(edge > 0.95, 1.0, pred))
        pred = np.where((edge > 0.05) & (edge < 0.08), -2.0, pred)  # clipped, no gradient
    elif name == "bce_logits":
        y = np.where(rng.random(shape) < 0.2, rng.random(shape), rng.random(shape) < 0.5)
        pred = rng.normal(size=shape) * 3
        pred = np.where(rng.random(shape) < 0.05, 40.0 * np.sign(pred), pred)
    elif name in ("cce", "cce_logits"):
        labels = rng.integers(0, cols, size=lead)
        y = np.eye(cols)[labels]
        soft = rng.random(lead) < 0.2  # some rows of soft labels
        y[soft] = rng.dirichlet(np.ones(cols), size=int(soft.sum()))
        if name == "cce":
            pred = rng.uniform(0.05, 1.0, size=shape)
        else:
            pred = rng.normal(size=shape) * 3
    else:  # sparse: one class index per row
        y = rng.integers(0, cols, size=lead).astype(np.float64)
        pred = rng.uniform(0.05, 1.0, size=shape) if name == "scce" else rng.normal(size=shape) * 3
    pred = pred.astype(f32)
    probs = None
    if fused:
        z = pred.astype(np.float64)
        probs = (sigmoid(z) if name == "bce_logits" else softmax(z)).astype(f32)
    w = rng.uniform(0.0, 3.0, size=rows).astype(f32) if weighted else None
    if weighted and rows > 2:
        w[::3] = 0.0
    return pred, probs, y.astype(f32), w


def ref_loss(name, pred, y, w, grad_scale):
    """float64 (sum_r w_r loss_r, d(grad_scale * sum)/d pred, magnitude) of loss `name`;
    magnitude: sum_r w_r (the sum of the magnitudes of what loss_r adds up), the scale of
    float32 rounding errors in the sum (lse - z_c cancels for a confident right class)."""
    _, _, delta = LOSSES[name]
    cols = pred.shape[-1]
    z = pred.astype(np.float64).reshape(-1, cols)
    rows = len(z)
    if name.startswith("scce"):
        t = np.eye(cols)[y.astype(np.int64).reshape(-1)]
    else:
        t = y.astype(np.float64).reshape(-1, cols)
    if name in ("mse", "mae", "huber", "huber_0.3", "hinge", "bce", "bce_logits"):
        e = z - t
        if name == "mse":
            terms, g = e**2, 2 * e
        elif name == "mae":
            terms, g = np.abs(e), np.sign(e)
        elif name.startswith("huber"):
            small = np.abs(e) <= delta
            terms = np.where(small, 0.5 * e**2, delta * np.abs(e) - 0.5 * delta**2)
            g = np.where(small, e, delta * np.sign(e))
        elif name == "hinge":
            m = 1 - t * z
            terms, g = np.maximum(m, 0), np.where(m > 0, -t, 0.0)
        elif name == "bce":
            pc = np.clip(z, EPS, ONE_MINUS_EPS)
            terms = -(t * np.log(pc) + (1 - t) * np.log(1 - pc))
            g = np.where((z > EPS) & (z < ONE_MINUS_EPS), -t / pc + (1 - t) / (1 - pc), 0.0)
        else:  # bce_logits
            terms = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
            g = sigmoid(z) - t
        row, grad = terms.mean(axis=1), g / cols
        size = np.abs(terms).mean(axis=1)
    elif name in ("cce_logits", "scce_logits"):
        m = z.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
        row = (t * (lse - z)).sum(axis=1)
        size = (np.abs(t) * (np.abs(lse) + np.abs(z))).sum(axis=1)
        grad = softmax(z) * t.sum(axis=1, keepdims=True) - t
    else:  # cce, scce: probabilities normalised per row, clipped
        s = z.sum(axis=1, keepdims=True)
        q = z / s
        qc = np.clip(q, EPS, ONE_MINUS_EPS)
        row = -(t * np.log(qc)).sum(axis=1)
        size = np.abs(t * np.log(qc)).sum(axis=1)
        dq = np.where((q > EPS) & (q < ONE_MINUS_EPS), -t / qc, 0.0)
        grad = (dq - (dq * q).sum(axis=1, keepdims=True)) / s
    wr = np.ones(rows) if w is None else w.astype(np.float64)
    grad = (grad * (wr * grad_scale)[:, None]).reshape(pred.shape)
    return float(np.sum(wr * row)), grad, float(np.sum(np.abs(wr) * size))


def assert_loss_sum(got, want, magnitude, rtol=1e-5):
    """|got - want| <= rtol * magnitude (see ref_loss)."""
    assert abs(got - want) <= rtol * magnitude, (got, want, magnitude)


def rel_err(got, want):
    """Largest error over the largest value (norm-wise: no blow-up where want ~ 0)."""
    want = np.asarray(want, np.float64)
    scale = max(np.abs(want).max(), 1e-30)
    return np.abs(np.asarray(got, np.float64) - want).max() / scale


def run_loss(device, name, pred, probs, y, w, grad_scale=0.5, want_grad=True):
    return _core.device_loss(device, loss_spec(name), pred, probs, y, w, grad_scale, want_grad)


# ------------------------------------------------------------------------------- losses
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss(rng, device, name, shape, weighted):
    pred, _, y, w = loss_case(name, shape, rng, weighted)
    total, grad = run_loss(device, name, pred, None, y, w)
    want_total, want_grad, magnitude = ref_loss(name, pred, y, w, 0.5)
    assert_loss_sum(total, want_total, magnitude)
    assert grad.shape == pred.shape and grad.dtype == np.float32
    assert rel_err(grad, want_grad) < 1e-5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", LOGITS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_fused_probs(rng, device, name, shape, weighted):
    # the output layer's softmax / sigmoid given: the loss takes its exponentials from there
    pred, probs, y, w = loss_case(name, shape, rng, weighted, fused=True)
    total, grad = run_loss(device, name, pred, probs, y, w)
    want_total, want_grad, magnitude = ref_loss(name, pred, y, w, 0.5)
    assert_loss_sum(total, want_total, magnitude)
    assert rel_err(grad, want_grad) < 1e-5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_without_gradient(rng, device, name):
    pred, _, y, w = loss_case(name, (37, 6), rng, weighted=True)
    total, grad = run_loss(device, name, pred, None, y, w, want_grad=False)
    assert grad is None
    assert total == run_loss(device, name, pred, None, y, w)[0]


@pytest.mark.parametrize("device", DEVICES)
def test_loss_grad_scale_and_no_rows(device):
    pred = np.array([[0.5, -1.0]], np.float32)
    y = np.array([[1.0, 1.0]], np.float32)
    total, grad = run_loss(device, "mse", pred, None, y, None, grad_scale=0.25)
    assert total == pytest.approx((0.25 + 4.0) / 2)
    np.testing.assert_allclose(grad, [[0.25 * 2 * -0.5 / 2, 0.25 * 2 * -2.0 / 2]])
    for name in ("mse", "scce_logits"):
        empty = np.zeros((0, 3), np.float32)
        labels = np.zeros((0,) if name == "scce_logits" else (0, 3), np.float32)
        total, grad = run_loss(device, name, empty, None, labels, None)
        assert total == 0.0 and grad.shape == (0, 3)


def test_loss_one_hot_and_sparse_agree(rng):
    pred, _, labels, w = loss_case("scce_logits", (50, 9), rng, weighted=True)
    one_hot = np.eye(9, dtype=np.float32)[labels.astype(np.int64)]
    sparse = run_loss(CPU, "scce_logits", pred, None, labels, w)
    dense = run_loss(CPU, "cce_logits", pred, None, one_hot, w)
    assert sparse[0] == pytest.approx(dense[0], rel=1e-6)
    np.testing.assert_allclose(sparse[1], dense[1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["scce", "scce_logits"])
@pytest.mark.parametrize(
    "bad,shown",  # std::to_string of the float32 label
    [
        (-1.0, "-1.000000"),
        (4.0, "4.000000"),
        (0.5, "0.500000"),
        (np.nan, "nan"),
        (1e30, "1000000015047466219876688855040.000000"),
    ],
)
def test_invalid_sparse_label(device, name, bad, shown):
    pred = np.full((3, 4), 0.25, np.float32)
    labels = np.array([1.0, bad, 3.0], np.float32)
    message = r"sparse label must be an integer in \[0, 4\), received: " + shown + "$"
    with pytest.raises(ValueError, match=message):
        run_loss(device, name, pred, None, labels, None)


@pytest.mark.parametrize("device", DEVICES)
def test_loss_bad_arguments(device):
    p = np.ones((4, 3), np.float32)
    spec = loss_spec("mse")
    with pytest.raises(ValueError, match="labels have 1 columns, predictions 3"):
        _core.device_loss(device, spec, p, None, np.ones(4, np.float32), None, 1.0, True)
    with pytest.raises(ValueError, match="labels have 3 columns, predictions 3"):
        _core.device_loss(device, loss_spec("scce"), p, None, p, None, 1.0, True)
    with pytest.raises(ValueError, match="y must be shaped like pred"):
        _core.device_loss(device, spec, p, None, np.ones((5, 3), np.float32), None, 1.0, True)
    with pytest.raises(ValueError, match="probs must be shaped like pred"):
        _core.device_loss(device, spec, p, p[:2], p, None, 1.0, True)
    with pytest.raises(ValueError, match="one value per row"):
        _core.device_loss(device, spec, p, None, p, np.ones(3, np.float32), 1.0, True)
    with pytest.raises(ValueError, match="last axis must not be empty"):
        z = np.ones((4, 0), np.float32)
        _core.device_loss(device, spec, z, None, z, None, 1.0, True)
    with pytest.raises(ValueError, match="at least one axis"):
        z = np.float32(1.0)
        _core.device_loss(device, spec, z, None, z, None, 1.0, True)


# ------------------------------------------------------------------------------ metrics
METRICS = {
    "binary_accuracy": _core.MetricSpec(Metric.binary_accuracy),
    "binary_accuracy_0.3": _core.MetricSpec(Metric.binary_accuracy, threshold=0.3),
    "categorical_accuracy": _core.MetricSpec(Metric.categorical_accuracy),
    "sparse_categorical_accuracy": _core.MetricSpec(Metric.sparse_categorical_accuracy),
    "top_k": _core.MetricSpec(Metric.top_k_categorical_accuracy, k=2),
    "top_k_sparse": _core.MetricSpec(Metric.top_k_categorical_accuracy, k=3),
    "mse": _core.MetricSpec(Metric.mean_squared_error),
    "mae": _core.MetricSpec(Metric.mean_absolute_error),
    "precision": _core.MetricSpec(Metric.precision),
    "recall": _core.MetricSpec(Metric.recall, threshold=0.3),
    "auc": _core.MetricSpec(Metric.auc),
    "auc_7": _core.MetricSpec(Metric.auc, num_thresholds=7),
}
METRIC_PARAMS = {  # threshold, k, num_thresholds of each spec above
    "binary_accuracy_0.3": (0.3, 5, 200),
    "top_k": (0.5, 2, 200),
    "top_k_sparse": (0.5, 3, 200),
    "recall": (0.3, 5, 200),
    "auc_7": (0.5, 5, 7),
}
SPARSE_METRICS = ("sparse_categorical_accuracy", "top_k_sparse")


def state_size(name):
    if name in ("precision", "recall"):
        return 3
    if name.startswith("auc"):
        return 4 * METRIC_PARAMS.get(name, (0.5, 5, 200))[2]
    return 2


def metric_case(name, shape, rng, weighted=False):
    """(pred, y, w or None, state) for metric `name`: predictions with ties (multiples of
    1/4 and AUC thresholds), labels 0/1 or one-hot or class indices, a nonzero state."""
    cols, lead = shape[-1], shape[:-1]
    rows = int(np.prod(lead))
    pred = rng.random(shape)
    tie = rng.random(shape) < 0.3
    pred[tie] = rng.integers(0, 5, size=int(tie.sum())) / 4
    if name.startswith("auc"):
        n = METRIC_PARAMS.get(name, (0.5, 5, 200))[2]
        on = rng.random(shape) < 0.2
        pred[on] = rng.integers(0, n, size=int(on.sum())) / (n - 1)
    if name in SPARSE_METRICS:
        y = rng.integers(0, cols, size=lead).astype(np.float64)
    elif name in ("categorical_accuracy", "top_k"):
        y = np.eye(cols)[rng.integers(0, cols, size=lead)]
        if cols == 1:  # one label column: top-k reads it as a class index
            y[:] = 0.0
    elif name in ("mse", "mae"):
        y = rng.normal(size=shape)
    else:
        y = np.where(rng.random(shape) < 0.1, rng.random(shape), rng.random(shape) < 0.5)
    w = rng.uniform(0.0, 3.0, size=rows).astype(np.float32) if weighted else None
    state = rng.uniform(0.0, 5.0, size=state_size(name))
    return pred.astype(np.float32), y.astype(np.float32), w, state


def keras_thresholds(n):
    return np.array([-1e-7] + [i / (n - 1) for i in range(1, n - 1)] + [1 + 1e-7])


def ref_metric(name, pred, y, w, state):
    """The state after the batch, in float64 (cpu/metrics.cpp's formulas)."""
    threshold, k, n = METRIC_PARAMS.get(name, (0.5, 5, 200))
    cols = pred.shape[-1]
    p32 = pred.reshape(-1, cols)
    p = p32.astype(np.float64)
    rows = len(p)
    wr = np.ones(rows) if w is None else w.astype(np.float64)
    out = state.copy()
    if name in ("precision", "recall") or name.startswith("auc"):
        t = y.reshape(-1, cols) != 0
        ww = np.repeat(wr, cols)
        thresholds = keras_thresholds(n) if name.startswith("auc") else np.array([threshold])
        pos = p.reshape(-1, 1) > thresholds[None, :]
        truth = t.reshape(-1, 1)
        tp = (ww[:, None] * (pos & truth)).sum(0)
        fp = (ww[:, None] * (pos & ~truth)).sum(0)
        fn = (ww[:, None] * (~pos & truth)).sum(0)
        tn = (ww[:, None] * (~pos & ~truth)).sum(0)
        out += np.concatenate([tp, fp, tn, fn] if name.startswith("auc") else [tp, fp, fn])
        return out
    if name in SPARSE_METRICS:
        labels = y.reshape(-1).astype(np.int64)
    else:
        t32 = y.reshape(-1, cols)
        t = t32.astype(np.float64)
    if name.startswith("binary_accuracy"):
        v = ((p32 > np.float32(threshold)) == (t32 > 0.5)).mean(axis=1)
    elif name == "categorical_accuracy":
        v = (p.argmax(axis=1) == t.argmax(axis=1)).astype(np.float64)
    elif name == "sparse_categorical_accuracy":
        v = (p.argmax(axis=1) == labels).astype(np.float64)
    elif name.startswith("top_k"):
        label = labels if name == "top_k_sparse" else t.argmax(axis=1)
        above = (p > p[np.arange(rows), label][:, None]).sum(axis=1)
        v = (above < k).astype(np.float64)
    elif name == "mse":
        v = ((p32 - t32).astype(np.float64) ** 2).mean(axis=1)
    else:  # mae
        v = np.abs(p - t).mean(axis=1)
    out[0] += np.sum(wr * v)
    out[1] += np.sum(wr)
    return out


METRIC_SHAPES = [(1, 1), (1, 7), (5, 3), (33, 17), (2, 3, 4), (128, 10), (300, 129), (4096, 1)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize("shape", METRIC_SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_metric_update(rng, device, name, shape, weighted):
    pred, y, w, state = metric_case(name, shape, rng, weighted)
    got = _core.device_metric_update(device, METRICS[name], pred, y, w, state)
    np.testing.assert_allclose(got, ref_metric(name, pred, y, w, state), rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", SPARSE_METRICS)
@pytest.mark.parametrize("bad", [-1.0, 3.0, 2.5])
def test_metric_invalid_sparse_label(device, name, bad):
    pred = np.full((2, 3), 0.5, np.float32)
    labels = np.array([0.0, bad], np.float32)
    with pytest.raises(ValueError, match=r"sparse label must be an integer in \[0, 3\)"):
        _core.device_metric_update(device, METRICS[name], pred, labels, None, np.zeros(2))


@pytest.mark.parametrize("device", DEVICES)
def test_metric_bad_arguments(device):
    p = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="metric labels have 1 columns, predictions 3"):
        _core.device_metric_update(device, METRICS["mse"], p, p[:, 0], None, np.zeros(2))
    with pytest.raises(ValueError, match="state must be a vector of the metric's 800 values"):
        _core.device_metric_update(device, METRICS["auc"], p, p, None, np.zeros(2))
    with pytest.raises(ValueError, match="AUC needs num_thresholds >= 2"):
        spec = _core.MetricSpec(Metric.auc, num_thresholds=1)
        _core.device_metric_update(device, spec, p, p, None, np.zeros(4))
    with pytest.raises(ValueError, match="one value per row"):
        _core.device_metric_update(
            device, METRICS["mse"], p, p, np.ones(5, np.float32), np.zeros(2)
        )
    with pytest.raises(ValueError, match="y must be shaped like pred"):
        _core.device_metric_update(device, METRICS["mse"], p, p.T, None, np.zeros(2))
