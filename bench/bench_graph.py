"""Functional models: deepcore vs PyTorch (CPU eager) per training step, and a functional
model against the same layers as a Sequential model.

    python bench/bench_graph.py [--quick] [--threads N ...]

Cases (Adam, lr 1e-3, random data, the same batches in the same order):
    residual    x -> Dense(16, relu) -> Dense(16) -> Add with x -> Dense(3, softmax), 16
                features, batch 32, sparse categorical cross-entropy; PyTorch: the same
                module (x + l2(relu(l1(x)))) with CrossEntropyLoss on the logits
    mnist mlp   784 -> Dense(512, relu) -> Dense(256, relu) -> Dense(10, softmax), batch 128,
                built with deepcore.Model(inputs, outputs), against the same Sequential
    two inputs  the mnist mlp on two inputs of 392 features joined by Concatenate, against
                the Sequential on their 784
    custom ce   the mnist mlp with a categorical cross-entropy written with deepcore.ops
                (-sum(y log clip(p)) on one-hot labels), against the built-in loss
    custom mse  the residual model, 3 linear outputs, with a mean squared error written with
                deepcore.ops, against the built-in loss

The MNIST-size rows time fits of 4 epochs (see EPOCHS). Times are microseconds per training
step (forward, loss, backward, update), the best of alternating rounds. "x other" > 1 means
deepcore's functional model is faster; for the Sequential rows, "x other" is Sequential's
time over the functional model's (target: within 5%, so at least 0.95); for the custom
losses, the built-in loss's time over the custom one's (target: at most 10% more, so at
least 0.91).
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
# The MNIST-size rows time fits of EPOCHS epochs (per-step costs, each fit's set-up shared
# by its epochs as in training: a fit of several inputs joins them once per fit).
EPOCHS = 4


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


def two_inputs():
    a, b = dc.Input(shape=(392,)), dc.Input(shape=(392,))
    y = L.Concatenate()([a, b])
    for layer in mnist_layers():
        y = layer(y)
    return dc.Model([a, b], y)


def custom_ce(y_true, y_pred):
    ops = dc.ops
    return -ops.sum(y_true * ops.log(ops.clip(y_pred, 1e-7, 1.0 - 1e-7)), axis=-1)


def custom_mse(y_true, y_pred):
    return dc.ops.mean(dc.ops.square(y_pred - y_true), axis=-1)


def residual_linear():
    x = dc.Input(shape=(16,))
    h = L.Dense(16)(L.Dense(16, activation="relu")(x))
    return dc.Model(x, L.Dense(3)(L.Add()([x, h])))


def deepcore_fit(make, loss, x, y, batch, epochs=1):
    model = make()
    model.compile(dc.optimizers.Adam(1e-3), loss)
    return lambda: model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0)


def data(features, classes, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features), dtype=np.float32), rng.integers(0, classes, n)


def deepcore_train(make, features, classes, batch, steps, epochs=1):
    x, y = data(features, classes, batch * steps)
    return deepcore_fit(make, "sparse_categorical_crossentropy", x, y, batch, epochs)


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
        e = EPOCHS  # (steps per timed call: steps * e)
        fns = {
            "functional": deepcore_train(mnist_functional, 784, 10, 128, steps, e),
            "sequential": deepcore_train(mnist_sequential, 784, 10, 128, steps, e),
        }
        t = interleaved(fns, rounds, min_seconds)
        n = steps * e
        rows.append(("mnist mlp", t["functional"] / n, t["sequential"] / n, "sequential", 0.95))
        x, y = data(784, 10, 128 * steps)
        halves = [x[:, :392], x[:, 392:]]
        fns = {
            "two": deepcore_fit(two_inputs, "sparse_categorical_crossentropy", halves, y, 128, e),
            "sequential": deepcore_train(mnist_sequential, 784, 10, 128, steps, e),
        }
        t = interleaved(fns, rounds, min_seconds)
        rows.append(("two inputs", t["two"] / n, t["sequential"] / n, "sequential", 0.95))
        onehot = np.eye(10, dtype=np.float32)[y]
        fns = {
            "custom": deepcore_fit(mnist_sequential, custom_ce, x, onehot, 128, e),
            "builtin": deepcore_fit(
                mnist_sequential, "categorical_crossentropy", x, onehot, 128, e
            ),
        }
        t = interleaved(fns, rounds, min_seconds)
        rows.append(("custom ce", t["custom"] / n, t["builtin"] / n, "built-in", 0.91))
        xs, _ = data(16, 3, 32 * tiny)
        ys = np.random.default_rng(1).standard_normal((32 * tiny, 3)).astype(np.float32)
        fns = {
            "custom": deepcore_fit(residual_linear, custom_mse, xs, ys, 32),
            "builtin": deepcore_fit(residual_linear, "mse", xs, ys, 32),
        }
        t = interleaved(fns, rounds, min_seconds)
        rows.append(("custom mse", t["custom"] / tiny, t["builtin"] / tiny, "built-in", 0.91))
        for case, mine, theirs, other, target in rows:
            ratio = theirs / mine
            print(
                f"{threads:>7}  {case:<12}{mine * 1e6:>13.1f}{theirs * 1e6:>12.1f}{other:>12}"
                f"{ratio:>9.2f}{target:>7.2f}x{'yes' if ratio >= target else 'no':>5}"
            )


if __name__ == "__main__":
    main()
