"""The functional API on scikit-learn's 8x8 handwritten digits (needs scikit-learn):
two inputs, a shared layer, a residual block, then fine-tuning with a frozen base.

    pixels (8, 8, 1) -> Conv2D -> MaxPooling2D -> Flatten ---------\\
    profiles (16,): each row's and column's ink -> Dense (shared) --> Concatenate
        -> Dense(64) -> residual Dense(64) + Add -> Dense(10, softmax)

The row profile and the column profile go through one Dense layer (the same weights for
both, as Keras shares a layer called twice). After training, the convolution branch is
frozen (trainable=False) and the head trains on alone for a few epochs.

    python examples/digits_functional.py     # a few seconds on one core
"""

import time

import numpy as np

import deepcore as dc
from deepcore import layers as L


def profiles(images):
    """Each image's ink per row and per column (8 + 8 values)."""
    return images.sum(axis=2), images.sum(axis=1)


def build():
    pixels = dc.Input(shape=(8, 8, 1), name="pixels")
    rows, cols = dc.Input(shape=(8,), name="rows"), dc.Input(shape=(8,), name="cols")
    conv = L.Flatten()(L.MaxPooling2D()(L.Conv2D(16, 3, activation="relu", padding="same")(pixels)))
    profile = L.Dense(8, activation="relu", name="profile")  # called twice: shared
    h = L.Concatenate()([conv, profile(rows), profile(cols)])
    h = L.Dense(64, activation="relu")(h)
    h = L.Add()([h, L.Dense(64, activation="relu")(h)])
    return dc.Model([pixels, rows, cols], L.Dense(10, activation="softmax")(h))


def main(epochs=15, verbose=True):
    """Trains, fine-tunes and evaluates; returns the test accuracy."""
    dc.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = dc.datasets.digits.load_data(test_split=0.2, seed=0)
    x_train, x_test = x_train / 16.0, x_test / 16.0

    def inputs(x):
        r, c = profiles(x)
        return {"pixels": x[..., np.newaxis], "rows": r / 8.0, "cols": c / 8.0}

    model = build()
    if verbose:
        model.summary()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(inputs(x_train), y_train, batch_size=32, epochs=epochs, verbose=0)
    for layer in model.layers[:2]:  # the convolution branch: Conv2D and its pooling
        layer.trainable = False
    model.compile(
        optimizer=dc.optimizers.Adam(1e-4),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(inputs(x_train), y_train, batch_size=32, epochs=3, verbose=0)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(inputs(x_test), y_test, verbose=0)
    if verbose:
        print(f"test accuracy: {accuracy:.4f}   training time: {seconds:.2f} s")
    return accuracy


if __name__ == "__main__":
    main()
