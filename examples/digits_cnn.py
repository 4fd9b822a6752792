"""The tutorial's CNN on scikit-learn's 8x8 handwritten digits (needs scikit-learn).

    Conv2D(32, 3, relu, same) -> MaxPooling2D -> Conv2D(64, 3, relu, same) -> MaxPooling2D
    -> Flatten -> Dense(128, relu) -> Dense(10, softmax), Adam, sparse cross-entropy.

Prints the summary, one line per epoch (verbose=2) with the training and test accuracy,
then the final test accuracy and the training time. The same network reads MNIST
(28x28x1) unchanged apart from the input shape: see deepcore.datasets.mnist.
"""

import time

import deepcore as dc
from deepcore.layers import Conv2D, Dense, Flatten, MaxPooling2D
from deepcore.preprocessing import add_channel_axis

dc.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = dc.datasets.digits.load_data(test_split=0.2, seed=0)
# pixels are 0..16: scale to 0..1 and add the channel axis, (n, 8, 8) -> (n, 8, 8, 1)
x_train, x_test = add_channel_axis(x_train / 16.0), add_channel_axis(x_test / 16.0)

model = dc.Sequential(
    [
        dc.Input(shape=(8, 8, 1)),
        Conv2D(32, 3, activation="relu", padding="same"),
        MaxPooling2D(),
        Conv2D(64, 3, activation="relu", padding="same"),
        MaxPooling2D(),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.summary()

start = time.perf_counter()
history = model.fit(
    x_train,
    y_train,
    epochs=30,
    batch_size=16,
    validation_data=(x_test, y_test),
    verbose=2,
)
seconds = time.perf_counter() - start

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"train samples: {len(x_train)}, test samples: {len(x_test)}")
print(f"final test accuracy: {accuracy:.4f}  (test loss {loss:.4f})")
print(f"training time: {seconds:.2f} s for 30 epochs")
