"""What a Keras user writes, type-checked (CI: `python -m mypy --warn-unused-ignores
tests/typing`): the public API gives the calls their types (not Any), and mypy errors if one
changes."""

from typing import Any, assert_type

import numpy as np

import deepcore as dc

model = dc.Sequential(
    [dc.Input(shape=(4,)), dc.layers.Dense(8, activation="relu"), dc.layers.Dense(3)]
)
assert_type(model.compile(optimizer="adam", loss="mse"), None)
x = np.zeros((8, 4), np.float32)
y = np.zeros((8, 3), np.float32)
history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
assert_type(history, dc.callbacks.History)
assert_type(history.history, dict[str, list[float]])
assert_type(model.count_params(), int)
assert_type(model.get_weights(), list[np.ndarray])
assert_type(model.evaluate(x, y, verbose=0), Any)
assert_type(dc.config.cpu_features(), dict[str, Any])


class PrintLoss(dc.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        print(epoch, (logs or {}).get("loss"))


assert_type(model.gradients(x, y), tuple[float, list[np.ndarray]])

# Wrong argument types are errors (CI runs mypy with --warn-unused-ignores: an ignore that
# no longer silences an error fails the check).
dc.optimizers.Adam(learning_rate="fast")  # type: ignore[arg-type]
dc.layers.Dense("8")  # type: ignore[arg-type]
model.fit(x, y, epochs="2")  # type: ignore[arg-type]
