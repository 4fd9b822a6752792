"""deepcore against NumPy and PyTorch (and Keras when installed), side by side in one run.

    python bench/bench_mlp.py [--quick] [--threads N]

Prints, per case, microseconds per training step (Adam, softmax cross-entropy),
the ratio to PyTorch, GFLOP/s over 6 * batch * sum(in * out) flops and the share
of the sgemm peak (the best rate of NumPy's and deepcore's sgemm at n = 1024 and 2048,
measured in the same alternating rounds as the case, so that machine noise hits the peak
and the case alike); then Iris fit time,
single-sample predict latency and a batch-size scaling table.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
from timing import interleaved

import deepcore as dc

try:
    import torch
except ImportError:
    torch = None

CASES = [
    ("tiny 4-16-16-3", [4, 16, 16, 3], 16),
    ("mnist 784-512-256-10", [784, 512, 256, 10], 128),
    ("wide 1024-2048-2048-10", [1024, 2048, 2048, 10], 256),
]


def sgemm_contenders():
    """sgemm at n=1024 and 2048 by NumPy and by deepcore: {name: (fn, flops per call)}."""
    out = {}
    for n in (1024, 2048):
        a = np.random.rand(n, n).astype(np.float32)
        b = np.random.rand(n, n).astype(np.float32)
        out[f"numpy sgemm {n}"] = (lambda a=a, b=b: a @ b, 2 * n**3)
        out[f"deepcore sgemm {n}"] = (lambda a=a, b=b: dc._core.gemm(a, b), 2 * n**3)
    return out


def flops_per_step(sizes, batch):
    return 6 * batch * sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))


def data(sizes, n, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, sizes[0]), dtype=np.float32),
        rng.integers(0, sizes[-1], n).astype(np.int64),
    )


def deepcore_model(sizes):
    model = dc.Sequential([dc.Input(shape=(sizes[0],))])
    for i, units in enumerate(sizes[1:]):
        model.add(dc.layers.Dense(units, activation="relu" if i < len(sizes) - 2 else "softmax"))
    model.compile(optimizer=dc.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def deepcore_epoch(sizes, batch, steps):
    x, y = data(sizes, batch * steps)
    model = deepcore_model(sizes)
    return lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0)


def torch_model(sizes):
    mods = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def torch_epoch(sizes, batch, steps):
    x, y = data(sizes, batch * steps)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model = torch_model(sizes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        perm = torch.randperm(len(x))
        for s in range(steps):
            idx = perm[s * batch : (s + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()

    return epoch


def numpy_epoch(sizes, batch, steps):
    """The same step written in NumPy float32 (forward, backward, Adam)."""
    x, y = data(sizes, batch * steps)
    rng = np.random.default_rng(1)
    ws = [
        rng.standard_normal((a, b), dtype=np.float32) * np.float32(np.sqrt(2 / a))
        for a, b in zip(sizes[:-1], sizes[1:])
    ]
    bs = [np.zeros(b, np.float32) for b in sizes[1:]]
    params = ws + bs
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def step(xb, yb):
        acts = [xb]
        for i, (w, b) in enumerate(zip(ws, bs)):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0) if i < len(ws) - 1 else z)
        z = acts[-1]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(yb)), yb] -= 1
        d = p / len(yb)
        gw, gb = [None] * len(ws), [None] * len(ws)
        for i in range(len(ws) - 1, -1, -1):
            gw[i], gb[i] = acts[i].T @ d, d.sum(axis=0)
            if i:
                d = (d @ ws[i].T) * (acts[i] > 0)
        t[0] += 1
        lr = 1e-3 * np.sqrt(1 - 0.999 ** t[0]) / (1 - 0.9 ** t[0])
        for k, g in enumerate(gw + gb):
            m[k] += (g - m[k]) * 0.1
            v[k] += (g * g - v[k]) * 0.001
            params[k] -= lr * m[k] / (np.sqrt(v[k]) + 1e-7)

    def epoch():
        perm = np.random.permutation(len(x))
        for s in range(steps):
            idx = perm[s * batch : (s + 1) * batch]
            step(x[idx], y[idx])

    return epoch


def iris_fit_times():
    (x, y), _ = dc.datasets.iris.load_data(test_split=0.0)
    x = (x - x.mean(0)) / x.std(0)
    out = {}
    model = deepcore_model([4, 16, 16, 3])
    start = time.perf_counter()
    model.fit(x, y, batch_size=16, epochs=100, verbose=0)
    out["deepcore"] = time.perf_counter() - start
    if torch is not None:
        tm = torch_model([4, 16, 16, 3])
        opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        start = time.perf_counter()
        for _ in range(100):
            perm = torch.randperm(150)
            for s in range(0, 150, 16):
                idx = perm[s : s + 16]
                opt.zero_grad(set_to_none=True)
                loss_fn(tm(xt[idx]), yt[idx]).backward()
                opt.step()
        out["pytorch"] = time.perf_counter() - start
    try:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras

        km = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        km.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        start = time.perf_counter()
        km.fit(x, y, batch_size=16, epochs=100, verbose=0)
        out["keras"] = time.perf_counter() - start
    except Exception:  # Keras is optional
        pass
    return out


def predict_latency(sizes):
    x1 = data(sizes, 1)[0]
    model = deepcore_model(sizes)
    fns = {"deepcore": lambda: model.predict(x1)}
    if torch is not None:
        tm = torch_model(sizes).eval()
        xt = torch.from_numpy(x1)

        def run():
            with torch.inference_mode():
                tm(xt)

        fns["pytorch"] = run
    return interleaved(fns, rounds=5, min_seconds=0.05)


def scaling_rss(batch):
    """Peak RSS (VmHWM) growth (MB) over the imports of a fresh process (deepcore and NumPy only)
    fitting the MNIST-size MLP at this batch size, and what that must hold: the data,
    parameters, gradients, Adam's two slots, one batch of activations and their gradients."""
    sizes = [784, 512, 256, 10]
    code = (
        "import numpy as np, deepcore as dc\n"
        "hwm = lambda: int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
        f"batch = {batch}\n"
        "base = hwm()\n"
        "x = np.random.default_rng(0).standard_normal((batch * 8, 784), dtype=np.float32)\n"
        "y = np.arange(batch * 8) % 10\n"
        "m = dc.Sequential([dc.Input(shape=(784,)), dc.layers.Dense(512, activation='relu'),\n"
        "    dc.layers.Dense(256, activation='relu'), dc.layers.Dense(10, activation='softmax')])\n"
        "m.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
        "m.fit(x, y, batch_size=batch, epochs=2, verbose=0)\n"
        "print(hwm() - base)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    acts = batch * (sizes[0] + 3 * sum(sizes[1:]))  # batch input; outputs, pre-acts, grads
    data_values = batch * 8 * (784 + 1)
    expected = 4 * (4 * params + acts + data_values) / 2**20  # weights, grads, 2 Adam slots
    return int(out.stdout.strip()) / 1024, expected


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, skip the scaling table")
    ap.add_argument("--threads", type=int, default=None, help="deepcore and PyTorch threads")
    args = ap.parse_args()
    if args.threads:
        dc.config.set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    dc.utils.set_random_seed(0)
    sgemm = sgemm_contenders()
    print(
        f"date: {time.strftime('%Y-%m-%d')}  machine: {platform.processor() or platform.machine()}"
        f", {os.cpu_count()} cores  deepcore threads: {dc.config.get_num_threads()}"
        f"  torch: {torch.__version__ if torch else 'not installed'}"
    )
    print("% peak: of the best sgemm rate (NumPy's or deepcore's, n=1024 and 2048) measured in")
    print("the same alternating rounds as the case; that peak is the last column\n")

    print(
        f"{'case':<24}{'batch':>6}{'deepcore us':>13}{'numpy us':>11}{'torch us':>11}"
        f"{'x torch':>9}{'GFLOP/s':>9}{'% peak':>8}{'peak GF/s':>11}"
    )
    for name, sizes, batch in CASES:
        steps = 4 if args.quick and batch > 100 else 16
        fns = {
            "deepcore": deepcore_epoch(sizes, batch, steps),
            "numpy": numpy_epoch(sizes, batch, steps),
        }
        if torch is not None:
            fns["torch"] = torch_epoch(sizes, batch, steps)
        fns.update({k: fn for k, (fn, _) in sgemm.items()})
        best = interleaved(fns, rounds=3 if args.quick else 5)
        peak = max(flops / best[k] for k, (_, flops) in sgemm.items()) / 1e9
        t = {k: v / steps for k, v in best.items()}
        t_dc, t_np, t_th = t["deepcore"], t["numpy"], t.get("torch", float("nan"))
        gf = flops_per_step(sizes, batch) / t_dc / 1e9
        print(
            f"{name:<24}{batch:>6}{t_dc * 1e6:>13.1f}{t_np * 1e6:>11.1f}{t_th * 1e6:>11.1f}"
            f"{t_th / t_dc:>9.1f}{gf:>9.1f}{100 * gf / peak:>7.1f}%{peak:>11.1f}"
        )

    iris = iris_fit_times()
    print(
        "\nIris fit (150 samples, 100 epochs, batch 16): "
        + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in iris.items())
    )
    for other in ("pytorch", "keras"):
        if other in iris:
            print(f"  deepcore is {iris[other] / iris['deepcore']:.0f}x faster than {other}")

    print("\nsingle-sample predict latency:")
    for name, sizes, _ in CASES[:2]:
        lat = predict_latency(sizes)
        ratio = lat.get("pytorch", float("nan")) / lat["deepcore"]
        print(
            f"  {name:<24} deepcore {lat['deepcore'] * 1e6:7.1f} us   pytorch "
            f"{lat.get('pytorch', float('nan')) * 1e6:7.1f} us   ratio {ratio:5.1f}x"
        )

    if not args.quick:
        sizes = [784, 512, 256, 10]
        print("\nscaling, mnist 784-512-256-10 (us per sample should stay flat):")
        print(
            f"{'batch':>6}{'us/step':>10}{'us/sample':>11}{'GFLOP/s':>9}"
            f"{'peak RSS +MB':>14}{'data+model MB':>15}"
        )
        for batch in (32, 64, 128, 256, 512, 1024):
            t = interleaved({"dc": deepcore_epoch(sizes, batch, 8)}, rounds=3)["dc"] / 8
            rss, need = scaling_rss(batch)
            print(
                f"{batch:>6}{t * 1e6:>10.1f}{t * 1e6 / batch:>11.2f}"
                f"{flops_per_step(sizes, batch) / t / 1e9:>9.1f}{rss:>14.1f}{need:>15.1f}"
            )


if __name__ == "__main__":
    main()
