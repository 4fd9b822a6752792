"""Preprocessing inside the model: deepcore against PyTorch (CPU), side by side in one run.

    python bench/bench_preprocessing.py [--quick] [--threads N ...]

Cases (random 28x28x1 images with values 0..255, batch 64):
- train step with augmentation: RandomFlip("horizontal") -> RandomRotation(0.1) ->
  RandomZoom(0.1) -> Rescaling(1/255) -> Conv2D(16, 3, relu) -> MaxPool 2 -> Flatten ->
  Dense(10, softmax), Adam. PyTorch draws the same kinds of transforms per image and applies
  them as torchvision's tensor transforms do (a flip with torch.where, rotation and zoom as
  one affine_grid + grid_sample, bilinear, reflected borders), then the same network.
- resize + normalize inference: Resizing(56, 56) (bilinear) -> Normalization (fixed mean
  and variance), PyTorch F.interpolate(bilinear, align_corners=False) and the same
  arithmetic.
- Normalization.adapt over 1,048,576 rows of 8 features (float64 sums, in slices): deepcore
  against NumPy's mean and var over the whole array (the memory it needs: 8x the data).

Times are microseconds per call, the best of rounds measured alternately; "x torch" > 1
means deepcore is faster.
"""

from __future__ import annotations

import math

import numpy as np
from timing import interleaved, machine_line, side_by_side_args, table_head, with_threads

import deepcore as dc
from deepcore import layers as L

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

BATCH, STEPS = 64, 8


def deepcore_augmented():
    model = dc.Sequential(
        [
            dc.Input((28, 28, 1)),
            L.RandomFlip("horizontal"),
            L.RandomRotation(0.1),
            L.RandomZoom(0.1),
            L.Rescaling(1 / 255),
            L.Conv2D(16, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def torch_augmented():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 13 * 13, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def augment(x):
        n = x.shape[0]
        flip = torch.rand(n, 1, 1, 1) <= 0.5
        x = torch.where(flip, x.flip(-1), x)
        angle = (torch.rand(n) * 0.2 - 0.1) * 2 * math.pi
        zoom = 1 + (torch.rand(n) * 0.2 - 0.1)
        cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
        theta = torch.stack(
            [
                torch.stack([cos, -sin, torch.zeros(n)], 1),
                torch.stack([sin, cos, torch.zeros(n)], 1),
            ],
            1,
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(net(augment(x) / 255.0), y)
        loss.backward()
        opt.step()

    return step


def main():
    args, threads, _, rounds = side_by_side_args(__doc__.split("\n\n")[0])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (BATCH * STEPS, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, BATCH * STEPS)
    rows = 1 << 20
    table = rng.standard_normal((rows, 8)).astype(np.float32) * 3 + 1
    print(machine_line(torch))
    table_head(f"{'case':<34} {'threads':>7} {'deepcore us':>12} {'torch us':>10} {'x torch':>8}")
    for t in with_threads(threads, torch):
        _cases(t, x, y, table, rounds)


def _cases(t, x, y, table, rounds):
    model = deepcore_augmented()
    fns = {"deepcore": lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)}
    if torch is not None:
        step = torch_augmented()
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        yt = torch.from_numpy(y)

        def torch_epoch():
            for i in torch.randperm(STEPS):
                s = slice(int(i) * BATCH, (int(i) + 1) * BATCH)
                step(xt[s], yt[s])

        fns["torch"] = torch_epoch
    times = interleaved(fns, rounds=rounds)
    _row("augmented train step (batch 64)", t, times, STEPS)

    mean, var = np.float32(0.4), np.float32(0.09)
    prep = dc.Sequential(
        [
            dc.Input((28, 28, 1)),
            L.Resizing(56, 56),
            L.Normalization(axis=None, mean=mean, variance=var),
        ]
    )
    batch = x[:BATCH] / 255.0
    fns = {"deepcore": lambda: prep.predict(batch, batch_size=BATCH, verbose=0)}
    if torch is not None:
        bt = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())

        def torch_prep():
            with torch.no_grad():
                z = F.interpolate(bt, size=(56, 56), mode="bilinear", align_corners=False)
                return (z - mean) / math.sqrt(var)

        fns["torch"] = torch_prep
    times = interleaved(fns, rounds=rounds)
    _row("resize 28->56 + normalize (64)", t, times, 1)

    norm = L.Normalization()
    fns = {
        "deepcore": lambda: norm.adapt(table),
        "numpy": lambda: (
            table.mean(axis=0, dtype=np.float64),
            table.var(axis=0, dtype=np.float64),
        ),
    }
    times = interleaved(fns, rounds=max(2, rounds // 2), min_seconds=0.5)
    print(
        f"{'Normalization.adapt 1M x 8':<34} {t:>7} {times['deepcore'] * 1e6:>12.0f} "
        f"{'numpy ' + format(times['numpy'] * 1e6, '.0f'):>10} "
        f"{times['numpy'] / times['deepcore']:>8.2f}"
    )


def _row(name, threads, times, steps):
    us = times["deepcore"] / steps * 1e6
    if "torch" in times:
        tu = times["torch"] / steps * 1e6
        print(f"{name:<34} {threads:>7} {us:>12.0f} {tu:>10.0f} {tu / us:>8.2f}")
    else:
        print(f"{name:<34} {threads:>7} {us:>12.0f} {'-':>10} {'-':>8}")


if __name__ == "__main__":
    main()
