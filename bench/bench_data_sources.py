"""fit on a source of batches against fit on the same arrays (deepcore alone).

    python bench/bench_data_sources.py [--quick] [--threads N ...]

The MNIST-size MLP (784 -> Dense(512, relu) -> Dense(256, relu) -> Dense(10, softmax), Adam,
sparse categorical cross-entropy, random data), batch 128, one epoch of STEPS batches, no
shuffling, fed as: the arrays; a `deepcore.utils.PyDataset` slicing the same arrays; a
Python generator of the same slices; a PyTorch DataLoader over them (batch_size=128,
default collation; when torch is installed). Times are microseconds per step, the best of
alternating rounds; "x arrays" is the arrays' time over the source's (target: at least
0.8 for the PyDataset, within 20% of the arrays).
"""

from __future__ import annotations

import numpy as np
from timing import interleaved, machine_line, side_by_side_args, table_head, with_threads

import deepcore as dc

try:
    import torch
except ImportError:
    torch = None

L = dc.layers
BATCH = 128


def mlp():
    model = dc.Sequential(
        [
            dc.Input(shape=(784,)),
            L.Dense(512, activation="relu"),
            L.Dense(256, activation="relu"),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile(dc.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


class Slices(dc.utils.PyDataset):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def __len__(self):
        return -(-len(self.x) // BATCH)

    def __getitem__(self, i):
        return self.x[i * BATCH : (i + 1) * BATCH], self.y[i * BATCH : (i + 1) * BATCH]


def fits(x, y):
    """One epoch of fit of a model of its own, for each way of feeding x and y."""
    models = {name: mlp() for name in ("arrays", "pydataset", "generator", "dataloader")}
    fit = dict(epochs=1, shuffle=False, verbose=0)
    fns = {
        "arrays": lambda: models["arrays"].fit(x, y, batch_size=BATCH, **fit),
        "pydataset": lambda: models["pydataset"].fit(Slices(x, y), **fit),
        "generator": lambda: models["generator"].fit(
            ((x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)), **fit
        ),
    }
    if torch is not None:
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
            batch_size=BATCH,
        )
        fns["dataloader"] = lambda: models["dataloader"].fit(loader, **fit)
    return fns


def main():
    args, thread_counts, steps, rounds = side_by_side_args(__doc__.splitlines()[0])
    steps *= 4
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH * steps, 784), dtype=np.float32)
    y = rng.integers(0, 10, BATCH * steps).astype(np.float32)
    print(machine_line(torch))
    print(f"{steps} steps of batch {BATCH} per timed fit; best of {rounds} alternating rounds\n")
    table_head(
        f"{'threads':>7}  {'source':<12}{'us/step':>10}{'x arrays':>10}{'target':>8}{'met':>5}"
    )
    for threads in with_threads(thread_counts, torch):
        fns = fits(x, y)
        t = interleaved(fns, rounds, 0.05 if args.quick else 0.2)
        for name, seconds in t.items():
            ratio = t["arrays"] / seconds
            target = 0.8 if name == "pydataset" else None
            met = "" if target is None else ("yes" if ratio >= target else "no")
            print(
                f"{threads:>7}  {name:<12}{seconds / steps * 1e6:>10.1f}{ratio:>10.2f}"
                f"{'' if target is None else f'{target:.2f}x':>8}{met:>5}"
            )


if __name__ == "__main__":
    main()
