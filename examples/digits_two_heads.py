"""Two outputs, a Lambda layer and a custom loss and metric on scikit-learn's 8x8 digits
(needs scikit-learn): one network learns the digit and how much ink it has.

    pixels (64,) -> Lambda(standardize each image with deepcore.ops) -> Dense(64, relu)
        -> "digit": Dense(10, softmax)   sparse categorical cross-entropy, accuracy
        -> "ink":   Dense(1)             a pseudo-Huber loss written with deepcore.ops,
                                         and a custom metric (mean relative error)

The model is compiled with a dict of losses and loss_weights by output name, trains on a
dict of targets, is saved and loaded back (its Lambda and custom loss as programs: no code
is needed to load them), and predicts a dict of both outputs.

    python examples/digits_two_heads.py     # a few seconds on one core
"""

import tempfile
import time
from pathlib import Path

import numpy as np

import deepcore as dc
from deepcore import layers as L
from deepcore import ops


def standardize(x):
    """Each image scaled to mean 0 and standard deviation 1 (with deepcore.ops)."""
    centered = x - ops.mean(x, axis=-1, keepdims=True)
    return centered / ops.sqrt(ops.mean(ops.square(centered), axis=-1, keepdims=True) + 1e-6)


def pseudo_huber(y_true, y_pred):
    """sqrt(1 + e^2) - 1: quadratic for small errors, linear for large ones."""
    return ops.mean(ops.sqrt(ops.square(y_true - y_pred) + 1.0) - 1.0, axis=-1)


def relative_error(y_true, y_pred):
    return ops.mean(ops.abs(y_true - y_pred) / (ops.abs(y_true) + 1.0), axis=-1)


def build():
    pixels = dc.Input(shape=(64,), name="pixels")
    h = L.Dense(64, activation="relu")(L.Lambda(standardize, name="standardize")(pixels))
    digit = L.Dense(10, activation="softmax", name="digit")(h)
    ink = L.Dense(1, name="ink")(h)
    return dc.Model(pixels, {"digit": digit, "ink": ink})


def main(epochs=30, verbose=True):
    """Trains, saves, loads and evaluates; returns (digit accuracy, ink mean absolute error)
    of the loaded model on the test images."""
    dc.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = dc.datasets.digits.load_data(test_split=0.2, seed=0)
    x_train, x_test = x_train.reshape(-1, 64) / 16.0, x_test.reshape(-1, 64) / 16.0
    ink_train, ink_test = x_train.sum(axis=1, keepdims=True), x_test.sum(axis=1, keepdims=True)

    model = build()
    model.compile(
        optimizer="adam",
        loss={"digit": "sparse_categorical_crossentropy", "ink": pseudo_huber},
        loss_weights={"digit": 1.0, "ink": 0.2},
        metrics={"digit": ["accuracy"], "ink": [relative_error]},
    )
    start = time.perf_counter()
    history = model.fit(
        x_train, {"digit": y_train, "ink": ink_train}, batch_size=32, epochs=epochs, verbose=0
    )
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "two_heads.dc")
        loaded = dc.models.load_model(Path(folder) / "two_heads.dc")
    logs = loaded.evaluate(x_test, {"digit": y_test, "ink": ink_test}, verbose=0, return_dict=True)
    predicted = loaded.predict(x_test, verbose=0)
    ink_mae = float(np.abs(predicted["ink"] - ink_test).mean())
    if verbose:
        print("last epoch:", {k: round(v[-1], 4) for k, v in history.history.items()})
        print(
            f"test digit accuracy: {logs['digit_accuracy']:.4f}   ink: mean absolute error "
            f"{ink_mae:.3f} (of {ink_test.mean():.1f} on average), relative error "
            f"{logs['ink_relative_error']:.4f}   training time: {seconds:.2f} s"
        )
    return logs["digit_accuracy"], ink_mae


if __name__ == "__main__":
    main()
