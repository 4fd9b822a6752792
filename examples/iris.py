"""The tutorial's Iris network: 4 -> 16 relu -> 16 relu -> 3 softmax, Adam, cross-entropy.

Trains on the Iris data shipped with deepcore and prints test accuracy and time.
"""

import time

import deepcore as dc

dc.utils.set_random_seed(42)
(x_train, y_train), (x_test, y_test) = dc.datasets.iris.load_data(test_split=0.2, seed=1)
mean, std = x_train.mean(axis=0), x_train.std(axis=0)
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

model = dc.Sequential()
model.add(dc.Input(shape=(4,)))
model.add(dc.layers.Dense(16, activation="relu"))
model.add(dc.layers.Dense(16, activation="relu"))
model.add(dc.layers.Dense(3, activation="softmax"))
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.summary()

start = time.perf_counter()
history = model.fit(
    x_train, dc.utils.to_categorical(y_train, 3), epochs=100, batch_size=16, verbose=0
)
seconds = time.perf_counter() - start

loss, accuracy = model.evaluate(x_test, dc.utils.to_categorical(y_test, 3), verbose=0)
print(f"train samples: {len(x_train)}, test samples: {len(x_test)}")
print(f"final training loss: {history.history['loss'][-1]:.4f}")
print(f"test accuracy: {accuracy:.4f}  (test loss {loss:.4f})")
print(
    f"training time: {seconds * 1e3:.1f} ms for 100 epochs "
    f"({seconds / (100 * -(-len(x_train) // 16)) * 1e6:.1f} us per step)"
)
