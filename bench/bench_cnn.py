"""LeNet-size CNN training step: deepcore vs PyTorch (CPU), side by side in one run.

    python bench/bench_cnn.py [--quick] [--threads N ...]

The network (225,034 parameters in both libraries):
    28x28x1 -> Conv2D(32, 3, relu) -> MaxPool 2 -> Conv2D(64, 3, relu) -> MaxPool 2
    -> Flatten -> Dense(128, relu) -> Dense(10, softmax)
deepcore runs it NHWC; PyTorch runs the equivalent nn.Conv2d model NCHW, with
CrossEntropyLoss on the logits (= softmax + sparse categorical cross-entropy). Both use
Adam (lr 1e-3), batch 64, random data, one shuffled pass of `steps` batches per call.

Times are microseconds per training step (forward, loss, backward, update) and per
inference batch, the best of several rounds measured alternately for the two libraries
so that machine noise hits both alike. "x torch" > 1 means deepcore is faster.
GFLOP/s counts 2 flops per multiply-add of the convolutions and dense layers,
3x the forward pass for a training step.
"""

from __future__ import annotations

import numpy as np
from timing import interleaved, machine_line, side_by_side_args, table_head, with_threads

import deepcore as dc

try:
    import torch
except ImportError:
    torch = None

BATCH = 64
CLASSES = 10


def forward_flops():
    """Multiply-adds x 2 of one sample's forward pass."""
    conv1 = 26 * 26 * 32 * (3 * 3 * 1)
    conv2 = 11 * 11 * 64 * (3 * 3 * 32)
    dense = 1600 * 128 + 128 * 10
    return 2 * (conv1 + conv2 + dense)


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.random((n, 28, 28, 1), dtype=np.float32),
        rng.integers(0, CLASSES, n).astype(np.int64),
    )


def deepcore_model():
    L = dc.layers
    model = dc.Sequential(
        [
            dc.Input(shape=(28, 28, 1)),
            L.Conv2D(32, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(128, activation="relu"),
            L.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=dc.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def torch_model():
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1600, 128),
        nn.ReLU(),
        nn.Linear(128, CLASSES),
    )


def deepcore_cases(steps):
    x, y = data(BATCH * steps)
    model = deepcore_model()
    xb = x[:BATCH]
    train = lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    infer = lambda: model.predict(xb, batch_size=BATCH)
    return train, infer, model.count_params()


def torch_cases(steps):
    x, y = data(BATCH * steps)
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    y = torch.from_numpy(y)
    model = torch_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xb = x[:BATCH]

    def train():
        model.train()
        perm = torch.randperm(len(x))
        for s in range(steps):
            idx = perm[s * BATCH : (s + 1) * BATCH]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()

    def infer():
        model.eval()
        with torch.inference_mode():
            torch.softmax(model(xb), dim=1)

    return train, infer, sum(p.numel() for p in model.parameters())


def main():
    args, thread_counts, steps, rounds = side_by_side_args(__doc__.splitlines()[0])
    dc.utils.set_random_seed(0)
    if torch is not None:
        torch.manual_seed(0)

    print(machine_line(torch))
    print(
        f"LeNet-size CNN, 28x28x1, batch {BATCH}, Adam, sparse categorical cross-entropy; "
        f"{steps} steps per timed call, best of {rounds} alternating rounds\n"
    )
    header = (
        f"{'threads':>7}  {'case':<16}{'deepcore us':>13}{'torch us':>11}{'x torch':>9}"
        f"{'dc GFLOP/s':>12}{'torch GFLOP/s':>15}"
    )
    table_head(header)
    for threads in with_threads(thread_counts, torch):
        dc_train, dc_infer, dc_params = deepcore_cases(steps)
        train_fns, infer_fns = {"deepcore": dc_train}, {"deepcore": dc_infer}
        if torch is not None:
            th_train, th_infer, th_params = torch_cases(steps)
            assert th_params == dc_params, (th_params, dc_params)
            train_fns["torch"], infer_fns["torch"] = th_train, th_infer
        t_train = {
            k: v / steps
            for k, v in interleaved(train_fns, rounds, 0.05 if args.quick else 0.2).items()
        }
        t_infer = interleaved(infer_fns, rounds, 0.05 if args.quick else 0.1)
        for case, t, flops in (
            ("train step", t_train, 3 * forward_flops() * BATCH),
            ("predict batch", t_infer, forward_flops() * BATCH),
        ):
            t_dc, t_th = t["deepcore"], t.get("torch", float("nan"))
            print(
                f"{threads:>7}  {case:<16}{t_dc * 1e6:>13.1f}{t_th * 1e6:>11.1f}"
                f"{t_th / t_dc:>9.2f}{flops / t_dc / 1e9:>12.1f}{flops / t_th / 1e9:>15.1f}"
            )
    print(f"\nparameters: {dc_params:,} (both models)")


if __name__ == "__main__":
    main()
