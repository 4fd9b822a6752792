"""Training on the GPU: deepcore's `fit` against PyTorch eager on the same device, same run.

    python bench/bench_cuda_fit.py [--device cuda|cpu] [--quick]

Per case (an MLP trained with Adam on softmax cross-entropy, synthetic data), steps per
second of
  dc fit    - `model.fit(x, y, batch_size, epochs, shuffle=True)`, the whole call (the
              data goes to the device once per call; a step runs as a CUDA graph)
  dc epoch  - the same, from the best epoch's time (on_epoch_begin to on_epoch_end, each
              epoch ending with the loss read back)
  torch     - a PyTorch loop on device tensors: a fresh permutation per epoch, index,
              forward, CrossEntropyLoss, backward, Adam (PyTorch's defaults), synchronized
              at the end of each epoch
and the ratio dc epoch / torch. Targets (issue: the CUDA backend): tiny >= 10x, mnist
>= 3x, wide >= 1.0x with TF32 on both sides, also reported as the share of cuBLAS's own
TF32 GEMM rate (4096^3) that the training step reaches (6 * batch * sum(in * out) flops).
`--device cpu` runs the same script on the CPU (to check it; smaller wide case).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import deepcore as dc
from deepcore import _core

try:
    import torch
except ImportError:
    torch = None

CASES = [  # name, sizes, batch, rows, epochs, TF32
    ("tiny 4-16-16-3", [4, 16, 16, 3], 16, 16 * 512, 4, False),
    ("mnist 784-512-256-10", [784, 512, 256, 10], 128, 60000, 4, False),
    ("wide 4096-4096-4096-10", [4096, 4096, 4096, 10], 4096, 4096 * 8, 3, True),
]


def data(sizes, rows, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], rows).astype(np.int64)
    return x, y


def deepcore_steps(sizes, batch, x, y, epochs, device):
    """(steps/s of the whole fit call, steps/s of its best epoch)."""
    dc.config.set_device(device)
    try:
        layers = [dc.Input(shape=(sizes[0],))]
        for i, units in enumerate(sizes[1:]):
            last = i == len(sizes) - 2
            layers.append(dc.layers.Dense(units, activation="softmax" if last else "relu"))
        model = dc.Sequential(layers)
    finally:
        dc.config.set_device("cpu")
    model.compile(dc.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    times = []

    class EpochTimes(dc.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # warm-up: workspace, plans
    times.clear()
    steps = -(-len(x) // batch)
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[EpochTimes()])
    whole = time.perf_counter() - t0
    return epochs * steps / whole, steps / min(times)


def torch_steps(sizes, batch, x, y, epochs, device):
    dev = torch.device(device)
    mods = []
    for i in range(1, len(sizes)):
        mods.append(torch.nn.Linear(sizes[i - 1], sizes[i]))
        if i < len(sizes) - 1:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    xg = torch.from_numpy(x).to(dev)
    yg = torch.from_numpy(y).to(dev)
    n = len(x)
    steps = -(-n // batch)

    def epoch():
        perm = torch.randperm(n, device=dev)
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xg[idx]), yg[idx])
            loss.backward()
            opt.step()
        loss.item()  # the loss read back, as fit does once per epoch
        if dev.type == "cuda":
            torch.cuda.synchronize()

    epoch()  # warm-up
    best = float("inf")
    for _ in range(epochs):
        t0 = time.perf_counter()
        epoch()
        best = min(best, time.perf_counter() - t0)
    return steps / best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    device = args.device
    if device == "cuda" and not dc.cuda.is_available():
        raise SystemExit("bench_cuda_fit: no CUDA backend here (deepcore.cuda.is_available())")
    has_torch = torch is not None and (device == "cpu" or torch.cuda.is_available())
    print(f"device: {dc.cuda.device_name() if device == 'cuda' else 'cpu'}")
    print(f"torch: {torch.__version__ if has_torch else 'not available'}")
    gemm_tf32 = None
    if device == "cuda":
        dc.config.set_float32_matmul_precision("high")
        try:
            s = min(_core.device_gemm_seconds(1, 4096, 4096, 4096, 20) for _ in range(3))
        finally:
            dc.config.set_float32_matmul_precision("highest")
        gemm_tf32 = 2 * 4096**3 / s
        print(f"cuBLASLt TF32 GEMM 4096^3: {gemm_tf32 / 1e12:.1f} TFLOP/s")
    print(
        f"{'case':<24} {'batch':>5} | {'dc fit':>9} {'dc epoch':>9} {'torch':>9} "
        f"{'ratio':>6} | {'TFLOP/s':>7} {'% GEMM':>6}   (steps/s)"
    )
    for name, sizes, batch, rows, epochs, tf32 in CASES:
        if device == "cpu":  # a check of the script, not a measurement
            rows, epochs = min(rows, 8 * batch), 2
            if sizes[1] > 1024:
                sizes, batch, rows = [512, 512, 512, 10], 256, 2048
        if args.quick:
            epochs = 2
        x, y = data(sizes, rows)
        if tf32:
            dc.config.set_float32_matmul_precision("high")
            if has_torch and device == "cuda":
                torch.backends.cuda.matmul.allow_tf32 = True
        try:
            fit, ep = deepcore_steps(sizes, batch, x, y, epochs, device)
            tt = torch_steps(sizes, batch, x, y, epochs, device) if has_torch else None
        finally:
            dc.config.set_float32_matmul_precision("highest")
            if has_torch and device == "cuda":
                torch.backends.cuda.matmul.allow_tf32 = False
        flops = 6.0 * batch * sum(a * b for a, b in zip(sizes, sizes[1:]))
        rate = ep * flops
        share = f"{100 * rate / gemm_tf32:5.1f}%" if (tf32 and gemm_tf32) else f"{'-':>6}"
        ratio = f"{ep / tt:6.2f}" if tt else f"{'-':>6}"
        torch_col = f"{tt:9.0f}" if tt else f"{'-':>9}"
        print(
            f"{name + (' tf32' if tf32 else ''):<24} {batch:>5} | {fit:9.0f} {ep:9.0f} "
            f"{torch_col} {ratio} | {rate / 1e12:7.2f} {share}",
            flush=True,
        )


if __name__ == "__main__":
    main()
