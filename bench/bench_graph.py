"""Functional models: deepcore vs PyTorch (CPU eager) per training step, and a functional
model against the same layers as a Sequential model.

    python bench/bench_graph.py [--quick] [--threads N ...]

Cases (Adam, lr 1e-3, random data, the same batches in the same order):
    residual    x -> Dense(16, relu) -> Dense(16) -> Add with x -> Dense(3, softmax), 16
                features, batch 32, sparse categorical cross-entropy; PyTorch: the same
                module (x + l2(relu(l1(x)))) with CrossEntropyLoss on the logits
    mnist mlp   784 -> Dense(512, relu) -> Dense(256, relu) -> Dense(10, softmax), batch 128,
                built with deepcore.Model(inputs, outputs), against the same Sequential

Times are microseconds per training step (forward, loss, backward, update), the best of
alternating rounds. "x other" > 1 means deepcore's functional model is faster; for the
Sequential row, "x other" is Sequential's time over the functional model's (target: within
5%, so at least 0.95).
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


def residual_model():
    x = dc.Input(shape=(16,))
    h = L.Dense(16)(L.Dense(16, activation="relu")(x))
    return dc.Model(x, L.Dense(3, activation="softmax")(L.Add()([x, h])))


def mnist_layers():
    return [
        L.Dense(512, activation="relu"),
        L.Dense(256, activation="relu"),
        L.Dense(10, "softmax"),
    ]


def mnist_functional():
    x = dc.Input(shape=(784,))
    y = x
    for layer in mnist_layers():
        y = layer(y)
    return dc.Model(x, y)


def mnist_sequential():
    return dc.Sequential([dc.Input(shape=(784,)), *mnist_layers()])


def data(features, classes, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features), dtype=np.float32), rng.integers(0, classes, n)


def deepcore_train(make, features, classes, batch, steps):
    x, y = data(features, classes, batch * steps)
    model = make()
    model.compile(dc.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return lambda: model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)


def torch_residual(batch, steps):
    nn = torch.nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.head = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 3)

        def forward(self, x):
            return self.head(x + self.l2(torch.relu(self.l1(x))))

    x, y = data(16, 3, batch * steps)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model, loss_fn = Residual(), nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train():
        for s in range(steps):
            xb, yb = x[s * batch : (s + 1) * batch], y[s * batch : (s + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            opt.step()

    return train


def main():
    args, thread_counts, steps, rounds = side_by_side_args(__doc__.splitlines()[0])
    min_seconds = 0.05 if args.quick else 0.2
    dc.utils.set_random_seed(0)
    print(machine_line(torch))
    print(f"Adam; {steps} steps per timed call; best of {rounds} alternating rounds\n")
    header = (
        f"{'threads':>7}  {'case':<12}{'deepcore us':>13}{'other us':>12}{'other':>12}"
        f"{'x other':>9}{'target':>8}{'met':>5}"
    )
    table_head(header)
    for threads in with_threads(thread_counts, torch):
        tiny = steps * 8  # the residual steps are tiny: more of them per timed call
        fns = {"deepcore": deepcore_train(residual_model, 16, 3, 32, tiny)}
        if torch is not None:
            fns["torch"] = torch_residual(32, tiny)
        t = interleaved(fns, rounds, min_seconds)
        rows = [("residual", t["deepcore"] / tiny, t.get("torch", np.nan) / tiny, "torch", 50.0)]
        fns = {
            "functional": deepcore_train(mnist_functional, 784, 10, 128, steps),
            "sequential": deepcore_train(mnist_sequential, 784, 10, 128, steps),
        }
        t = interleaved(fns, rounds, min_seconds)
        rows.append(
            ("mnist mlp", t["functional"] / steps, t["sequential"] / steps, "sequential", 0.95)
        )
        for case, mine, theirs, other, target in rows:
            ratio = theirs / mine
            print(
                f"{threads:>7}  {case:<12}{mine * 1e6:>13.1f}{theirs * 1e6:>12.1f}{other:>12}"
                f"{ratio:>9.2f}{target:>7.2f}x{'yes' if ratio >= target else 'no':>5}"
            )


if __name__ == "__main__":
    main()
