"""deepcore against onnxruntime, jax.jit and PyTorch eager on the cases where deepcore is not
yet first (the speed issue): predict of the LeNet CNN and the MNIST MLP (1 sample and a batch
of 1,024) and their training steps, every library with the same weights, in interleaved
rounds, at one thread count per process, confined to that many cores.

    python bench/bench_inference.py --threads 1
    python bench/bench_inference.py --threads 2

onnxruntime runs the ONNX file deepcore exports from the same model; JAX runs the same maths
written with jax.lax under jax.jit (XLA's CPU threads set before it loads); PyTorch (when
installed) copies the weights. The ratio is the contender's time over deepcore's (below 1:
the contender is faster). Each library is optional but deepcore.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

import numpy as np

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--quick", action="store_true", help="shorter timings")
ARGS = ap.parse_args()
T = ARGS.threads
# Every library on T cores: XLA's CPU runtime keeps threads of its own whatever its flags say,
# so the process itself is confined (Linux), before any library starts a thread.
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:T]))
# XLA reads its CPU thread settings when it loads
os.environ.setdefault(
    "XLA_FLAGS",
    f"--xla_cpu_multi_thread_eigen={'false' if T == 1 else 'true'} "
    f"intra_op_parallelism_threads={T}",
)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cnn  # noqa: E402
import bench_mlp  # noqa: E402
from timing import interleaved, machine_line  # noqa: E402

import deepcore as dc  # noqa: E402

try:
    import torch
except ImportError:
    torch = None
try:
    import jax
    import jax.numpy as jnp
except ImportError:
    jax = None
try:
    import onnxruntime as ort
except ImportError:
    ort = None

dc.config.set_num_threads(T)
if torch is not None:
    torch.set_num_threads(T)


def lenet():
    return bench_cnn.deepcore_model()  # (compiled: Adam, sparse categorical cross-entropy)


MLP_SIZES = [784, 512, 256, 10]
MLP_BATCH = 128  # (the training step's)


def mlp():
    return bench_mlp.deepcore_model(MLP_SIZES)


def jax_forward(kind):
    """The model's forward pass in jax.lax (NHWC, Keras' weight layouts)."""

    def dense(x, w, b, act):
        y = x @ w + b
        return jax.nn.relu(y) if act == "relu" else jax.nn.softmax(y)

    def conv_pool(x, w, b):
        y = jax.lax.conv_general_dilated(
            x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        y = jax.nn.relu(y + b)
        return jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    def forward(p, x):
        if kind == "lenet":
            x = conv_pool(x, p[0], p[1])
            x = conv_pool(x, p[2], p[3])
            x = x.reshape(x.shape[0], -1)
            return dense(dense(x, p[4], p[5], "relu"), p[6], p[7], "softmax")
        x = dense(x, p[0], p[1], "relu")
        x = dense(x, p[2], p[3], "relu")
        return dense(x, p[4], p[5], "softmax")

    return forward


def jax_train_step(kind, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """One Adam step on sparse categorical cross-entropy, as Keras does, jitted."""
    forward = jax_forward(kind)

    def loss(p, x, y):
        probs = forward(p, x)
        return -jnp.mean(jnp.log(jnp.clip(jnp.take_along_axis(probs, y[:, None], 1), 1e-7)))

    @jax.jit
    def step(p, m, v, t, x, y):
        g = jax.grad(loss)(p, x, y)
        t = t + 1
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        a = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        p = [pi - a * mi / (jnp.sqrt(vi) + eps) for pi, mi, vi in zip(p, m, v)]
        return p, m, v, t

    return step


def torch_model(kind, weights):
    nn = torch.nn
    if kind == "lenet":
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10),
        )  # fmt: skip
        convs, denses = [net[0], net[3]], [net[7], net[9]]
    else:
        net = nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)
        )
        convs, denses = [], [net[0], net[2], net[4]]
    with torch.no_grad():
        i = 0
        for c in convs:
            c.weight.copy_(torch.from_numpy(weights[i].transpose(3, 2, 0, 1).copy()))
            c.bias.copy_(torch.from_numpy(weights[i + 1]))
            i += 2
        for d in denses:
            w = weights[i]
            if kind == "lenet" and d is denses[0]:  # NHWC flatten order -> NCHW's
                w = w.reshape(5, 5, 64, 128).transpose(2, 0, 1, 3).reshape(1600, 128)
            d.weight.copy_(torch.from_numpy(w.T.copy()))
            d.bias.copy_(torch.from_numpy(weights[i + 1]))
            i += 2
    return net


def predict_contenders(kind, model, x):
    fns = {"deepcore": lambda: model.predict(x, batch_size=len(x), verbose=0)}
    weights = model.get_weights()
    ref = fns["deepcore"]()
    if ort is not None:
        path = os.path.join(tempfile.mkdtemp(), f"{kind}.onnx")
        model.export(path, format="onnx", verbose=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = T, 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        fns["onnxruntime"] = lambda: sess.run(None, feed)[0]
    if jax is not None:
        forward = jax.jit(jax_forward(kind))
        params = [jnp.asarray(w) for w in weights]
        xj = jnp.asarray(x)
        fns["jax.jit"] = lambda: forward(params, xj).block_until_ready()
    if torch is not None:
        net = torch_model(kind, weights).eval()
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)

        def run():
            with torch.inference_mode():
                return torch.softmax(net(xt), 1)

        fns["torch eager"] = run
    for name, fn in fns.items():  # the same outputs from the same weights
        out = np.asarray(fn() if name != "torch eager" else fn().numpy())
        np.testing.assert_allclose(out, ref, atol=2e-4, err_msg=f"{kind} {name}")
    return fns


def train_contenders(kind, model, x, y):
    batch = len(x)
    xs, ys = np.concatenate([x] * 8), np.concatenate([y] * 8)
    fns = {
        "deepcore": lambda: model.fit(xs, ys, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    }
    steps = {"deepcore": 8}
    weights = model.get_weights()
    if jax is not None:
        step = jax_train_step(kind)
        state = {"p": [jnp.asarray(w) for w in weights]}
        state["m"] = [jnp.zeros_like(p) for p in state["p"]]
        state["v"] = [jnp.zeros_like(p) for p in state["p"]]
        state["t"] = jnp.asarray(0.0)
        xj, yj = jnp.asarray(x), jnp.asarray(y)

        def jax_steps():
            p, m, v, t = state["p"], state["m"], state["v"], state["t"]
            for _ in range(8):
                p, m, v, t = step(p, m, v, t, xj, yj)
            jax.block_until_ready(p)
            state.update(p=p, m=m, v=v, t=t)

        fns["jax.jit"], steps["jax.jit"] = jax_steps, 8
    if torch is not None:
        net = torch_model(kind, weights)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        loss_fn = torch.nn.CrossEntropyLoss()
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)
        yt = torch.from_numpy(y.astype(np.int64))

        def torch_steps():
            for _ in range(8):
                opt.zero_grad(set_to_none=True)
                loss_fn(net(xt), yt).backward()
                opt.step()

        fns["torch eager"], steps["torch eager"] = torch_steps, 8
    return fns, steps


def table(rows):
    print(f"{'case':<34}{'contender':<14}{'us':>12}{'x deepcore':>12}")
    print("-" * 72)
    for case, times in rows:
        base = times["deepcore"]
        for name, t in times.items():
            ratio = "" if name == "deepcore" else f"{t / base:12.2f}"
            print(f"{case:<34}{name:<14}{t * 1e6:12.1f}{ratio}")


def main():
    rng = np.random.default_rng(0)
    print(machine_line(torch, f"  threads: {T}  jax: {jax.__version__ if jax else '-'}  "
                              f"onnxruntime: {ort.__version__ if ort else '-'}"))  # fmt: skip
    min_s = 0.2 if ARGS.quick else 1.0
    rows = []
    for kind, make, shape in (("lenet", lenet, (28, 28, 1)), ("mlp", mlp, (784,))):
        model = make()
        for n in (1, 1024):
            x = rng.random((n, *shape), dtype=np.float32)
            fns = predict_contenders(kind, model, x)
            times = interleaved(fns, ARGS.rounds, min_s, reduce=statistics.median)
            rows.append((f"{kind} predict, batch {n}", times))
    train_cases = (("mlp", mlp, (784,), MLP_BATCH), ("lenet", lenet, (28, 28, 1), 64))
    for kind, make, shape, batch in train_cases:
        x = rng.random((batch, *shape), dtype=np.float32)
        y = rng.integers(0, 10, batch)
        fns, steps = train_contenders(kind, make(), x, y)
        times = interleaved(fns, ARGS.rounds, min_s, reduce=statistics.median)
        rows.append(
            (f"{kind} train step, batch {batch}", {k: t / steps[k] for k, t in times.items()})
        )
    table(rows)
    # The MLP's step in GFLOP/s: 2 flops per multiply-add of the forward pass, the weight
    # gradients and the input gradients of every layer but the first (to compare with one
    # core's FMA peak, which ./build/bench/bench_engine prints).
    pairs = list(zip(MLP_SIZES, MLP_SIZES[1:]))
    macs = MLP_BATCH * (3 * sum(a * b for a, b in pairs) - MLP_SIZES[0] * MLP_SIZES[1])
    t = dict(rows)[f"mlp train step, batch {MLP_BATCH}"]["deepcore"]  # (seconds per step)
    print(f"\nmlp train step, deepcore: {2 * macs / t / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
