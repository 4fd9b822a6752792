"""Sequence-model training steps: deepcore vs PyTorch (CPU eager) and Keras `fit`.

    python bench/bench_seq.py [--quick] [--threads N ...]

Cases (the same sizes in both libraries; random data; Adam, lr 1e-3):
    lstm      LSTM(64) on 50 steps x 8 features -> Dense(1), mean squared error, batch 32
    embed     Embedding(10000, 64) -> LSTM(64) -> Dense(1, sigmoid) on 100 token indices,
              binary cross-entropy, batch 64
    gru       GRU(32, return_sequences) -> GRU(32) -> Dense(5, softmax) on 30 steps x 16,
              sparse categorical cross-entropy, batch 32
    conv1d    Conv1D(32, 5, relu) -> MaxPooling1D(2) -> Conv1D(64, 5, relu)
              -> GlobalAveragePooling1D -> Dense(3, softmax) on 128 steps x 4, batch 64
    keras fit the lstm case through Keras 3's `fit` (KERAS_BACKEND, else jax if installed,
              else torch), when Keras is installed; skipped otherwise

PyTorch runs nn.LSTM / nn.GRU (reset_after form, as Keras' default) / nn.Embedding /
nn.Conv1d (NCW, the data transposed once before timing) with batch_first, the last step's
output into nn.Linear, and the loss on logits where it fuses the activation
(BCEWithLogitsLoss, CrossEntropyLoss). PyTorch's LSTM carries two bias vectors where
Keras has one (4 x units more parameters); every other count is equal.

Every contender takes the same `steps` batches in the same order (no shuffling) per timed
call; times are microseconds per training step (forward, loss, backward, update), the best
of several rounds measured alternately so that machine noise hits all alike, each after a
cool-down. "x other" > 1 means deepcore is faster; the last columns are the target ratio
and whether this run meets it.
"""

from __future__ import annotations

import os

import numpy as np
from timing import interleaved, machine_line, side_by_side_args, table_head, with_threads

import deepcore as dc

try:
    import torch
except ImportError:
    torch = None

# name: (batch, input shape per sample, target ratio against PyTorch)
CASES = {
    "lstm": (32, (50, 8), 2.0),
    "embed": (64, (100,), 1.5),
    "gru": (32, (30, 16), 2.0),
    "conv1d": (64, (128, 4), 2.0),
}
KERAS_TARGET = 20.0
VOCAB = 10000


def data(case, n, seed=0):
    """Inputs and targets of `n` samples for a case (the same arrays for every library)."""
    rng = np.random.default_rng(seed)
    _, shape, _ = CASES[case]
    if case == "embed":
        x = rng.integers(0, VOCAB, (n, *shape)).astype(np.int64)
    else:
        x = rng.standard_normal((n, *shape), dtype=np.float32)
    if case == "lstm":
        y = rng.standard_normal((n, 1), dtype=np.float32)
    elif case == "embed":
        y = rng.integers(0, 2, (n, 1)).astype(np.float32)
    else:
        y = rng.integers(0, 5 if case == "gru" else 3, n).astype(np.int64)
    return x, y


def deepcore_model(case, lib=dc):
    """The case's model in deepcore, or in Keras when `lib` is the keras module."""
    L = lib.layers
    _, shape, _ = CASES[case]
    if case == "lstm":
        body, loss = [L.LSTM(64), L.Dense(1)], "mse"
    elif case == "embed":
        body = [L.Embedding(VOCAB, 64), L.LSTM(64), L.Dense(1, activation="sigmoid")]
        loss = "binary_crossentropy"
    elif case == "gru":
        body = [L.GRU(32, return_sequences=True), L.GRU(32), L.Dense(5, activation="softmax")]
        loss = "sparse_categorical_crossentropy"
    else:
        body = [
            L.Conv1D(32, 5, activation="relu"),
            L.MaxPooling1D(),
            L.Conv1D(64, 5, activation="relu"),
            L.GlobalAveragePooling1D(),
            L.Dense(3, activation="softmax"),
        ]
        loss = "sparse_categorical_crossentropy"
    model = lib.Sequential([lib.Input(shape=shape), *body])
    model.compile(optimizer=lib.optimizers.Adam(1e-3), loss=loss)
    return model


def deepcore_train(case, steps, lib=dc):
    """One call = `steps` training steps through `fit`, batches in order."""
    batch = CASES[case][0]
    x, y = data(case, batch * steps)
    model = deepcore_model(case, lib)
    fn = lambda: model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return fn, model.count_params()


if torch is not None:

    class _Recurrent(torch.nn.Module):
        """Stacked nn.LSTM / nn.GRU (batch_first) whose last step feeds a Linear head;
        an optional nn.Embedding in front."""

        def __init__(self, kind, sizes, out, vocab=None):
            super().__init__()
            nn = torch.nn
            self.embed = nn.Embedding(vocab, sizes[0]) if vocab else None
            cls = nn.LSTM if kind == "lstm" else nn.GRU
            self.rnns = nn.ModuleList(cls(a, b, batch_first=True) for a, b in zip(sizes, sizes[1:]))
            self.head = nn.Linear(sizes[-1], out)

        def forward(self, x):
            if self.embed is not None:
                x = self.embed(x)
            for rnn in self.rnns:
                x, _ = rnn(x)
            return self.head(x[:, -1])


def torch_model(case):
    """The case's model in PyTorch and its loss on the model's output."""
    nn = torch.nn
    if case == "lstm":
        return _Recurrent("lstm", [8, 64], 1), nn.MSELoss()
    if case == "embed":
        return _Recurrent("lstm", [64, 64], 1, vocab=VOCAB), nn.BCEWithLogitsLoss()
    if case == "gru":
        return _Recurrent("gru", [16, 32, 32], 5), nn.CrossEntropyLoss()
    model = nn.Sequential(
        nn.Conv1d(4, 32, 5),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(32, 64, 5),
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(64, 3),
    )
    return model, nn.CrossEntropyLoss()


def torch_train(case, steps):
    batch = CASES[case][0]
    x, y = data(case, batch * steps)
    if case == "conv1d":
        x = np.ascontiguousarray(x.transpose(0, 2, 1))  # NWC -> NCW
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model, loss_fn = torch_model(case)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train():
        model.train()
        for s in range(steps):
            xb, yb = x[s * batch : (s + 1) * batch], y[s * batch : (s + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            opt.step()

    return train, sum(p.numel() for p in model.parameters())


def import_keras():
    """Keras 3 on KERAS_BACKEND, else JAX when installed, else PyTorch; None without it."""
    if "KERAS_BACKEND" not in os.environ:
        try:
            import jax  # noqa: F401

            os.environ["KERAS_BACKEND"] = "jax"
        except ImportError:
            os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError:
        return None
    return keras


def main():
    args, thread_counts, steps, rounds = side_by_side_args(__doc__.splitlines()[0])
    min_seconds = 0.05 if args.quick else 0.2
    keras = import_keras()
    dc.utils.set_random_seed(0)
    if torch is not None:
        torch.manual_seed(0)

    keras_line = f"{keras.__version__} ({keras.backend.backend()})" if keras else "not installed"
    print(machine_line(torch, f"  keras: {keras_line}"))
    print(
        f"Adam; {steps} steps per timed call, same batches in the same order; best of "
        f"{rounds} alternating rounds\n"
    )
    header = (
        f"{'threads':>7}  {'case':<12}{'deepcore us':>13}{'other us':>12}{'other':>8}"
        f"{'x other':>9}{'target':>8}{'met':>5}"
    )
    table_head(header)
    for threads in with_threads(thread_counts, torch):
        for case, (_, _, target) in CASES.items():
            fns = {}
            fns["deepcore"], dc_params = deepcore_train(case, steps)
            if torch is not None:
                fns["torch"], th_params = torch_train(case, steps)
                extra = 4 * 64 if case in ("lstm", "embed") else 0  # PyTorch's second bias
                assert th_params == dc_params + extra, (case, th_params, dc_params)
            t = {k: v / steps for k, v in interleaved(fns, rounds, min_seconds).items()}
            t_dc, t_th = t["deepcore"], t.get("torch", float("nan"))
            ratio = t_th / t_dc
            print(
                f"{threads:>7}  {case:<12}{t_dc * 1e6:>13.1f}{t_th * 1e6:>12.1f}{'torch':>8}"
                f"{ratio:>9.2f}{target:>7.1f}x{'yes' if ratio >= target else 'no':>5}"
            )
        if keras is not None:
            fns = {
                "deepcore": deepcore_train("lstm", steps)[0],
                "keras": deepcore_train("lstm", steps, keras)[0],
            }
            t = {k: v / steps for k, v in interleaved(fns, rounds, min_seconds).items()}
            ratio = t["keras"] / t["deepcore"]
            print(
                f"{threads:>7}  {'keras fit':<12}{t['deepcore'] * 1e6:>13.1f}"
                f"{t['keras'] * 1e6:>12.1f}{'keras':>8}{ratio:>9.2f}{KERAS_TARGET:>7.1f}x"
                f"{'yes' if ratio >= KERAS_TARGET else 'no':>5}"
            )
        else:
            print(f"{threads:>7}  {'keras fit':<12}  skipped: Keras is not installed")


if __name__ == "__main__":
    main()
