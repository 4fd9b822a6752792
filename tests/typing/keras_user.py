"""What a Keras user writes, type-checked (CI: `python -m mypy --warn-unused-ignores
tests/typing`): the public API gives the calls their types (not Any), and mypy errors if one
changes."""

from collections.abc import Callable
from typing import Any, assert_type

import numpy as np
import numpy.typing as npt

import deepcore as dc
from deepcore.layers.symbolic import SymbolicTensor

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

# deepcore.ops (Keras' keras.ops): on arrays they compute at once (float32 arrays), on a
# model's symbolic tensors they give symbolic tensors.
assert_type(dc.ops.mean(dc.ops.square(y - 0.5), axis=-1), npt.NDArray[np.float32])
inputs = dc.Input(shape=(4,))
hidden = dc.layers.Dense(8, activation="relu")(inputs)
assert_type(hidden, SymbolicTensor)
gated = dc.ops.multiply(hidden, dc.ops.sigmoid(hidden))
assert_type(gated, SymbolicTensor)
assert_type(1.0 - gated, SymbolicTensor)
functional = dc.Model(inputs, dc.layers.Dense(3)(gated))
assert_type(functional, dc.Model)
assert_type(dc.layers.Dense(3)(x), npt.NDArray[np.float32])


def log_cosh(y_true: dc.ops.Tensor, y_pred: dc.ops.Tensor) -> dc.ops.Tensor:
    """A custom loss with deepcore.ops: traced on symbolic tensors in the model."""
    diff = dc.ops.subtract(y_pred, y_true)
    return dc.ops.mean(diff + dc.ops.softplus(-2.0 * diff) - np.log(2.0), axis=-1)


functional.compile(optimizer=dc.optimizers.Adam(1e-3), loss=log_cosh, metrics=["mae"])
assert_type(log_cosh(y, y), dc.ops.Tensor)

# Activations, losses, metrics and initializers called on arrays.
assert_type(dc.activations.relu(x), npt.NDArray[np.floating[Any]])
assert_type(dc.activations.get("tanh"), Callable[..., npt.NDArray[np.floating[Any]]])
mse = dc.losses.MeanSquaredError(reduction="sum")
assert_type(mse(y, y), np.floating[Any] | npt.NDArray[np.floating[Any]])
assert_type(dc.losses.huber(y, y, delta=0.5), npt.NDArray[np.floating[Any]])
accuracy = dc.metrics.BinaryAccuracy(threshold=0.7)
assert_type(accuracy, dc.metrics.Metric)
assert_type(accuracy(y, y), float)
assert_type(dc.initializers.GlorotUniform(seed=1)((4, 3)), npt.NDArray[np.float32])
assert_type(dc.initializers.get("he_normal"), dc.initializers.Initializer)


class MeanAbsoluteError(dc.metrics.Metric):
    """A stateful metric as Keras writes one: variables updated per batch."""

    def __init__(self, name: str = "mean_absolute_error") -> None:
        super().__init__(name=name)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> None:
        errors = np.abs(np.asarray(y_true) - np.asarray(y_pred))
        self.total.assign_add(errors.sum())
        self.count.assign_add(errors.size)

    def result(self) -> npt.ArrayLike:
        return self.total / self.count


assert_type(MeanAbsoluteError()(y, y), float)

# Wrong argument types are errors (CI runs mypy with --warn-unused-ignores: an ignore that
# no longer silences an error fails the check).
dc.optimizers.Adam(learning_rate="fast")  # type: ignore[arg-type]
dc.layers.Dense("8")  # type: ignore[arg-type]
model.fit(x, y, epochs="2")  # type: ignore[arg-type]
dc.activations.relu(inputs)  # type: ignore[arg-type]  # (symbolic: deepcore.ops.relu)
dc.ops.mean(x, axis="last")  # type: ignore[arg-type]
dc.losses.Huber(delta="1")  # type: ignore[arg-type]
dc.metrics.AUC(num_thresholds=None)  # type: ignore[arg-type]
dc.initializers.RandomNormal(stddev="0.1")  # type: ignore[arg-type]
