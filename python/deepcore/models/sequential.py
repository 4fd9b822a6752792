"""The Sequential model: a stack of layers trained by the C++ engine.

Python calls the engine once per epoch (fit), or once per batch only when a
callback asks for batch-level hooks; the data is converted to float32 once.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .. import _core, losses, optimizers, utils
from .. import callbacks as callbacks_module
from .. import metrics as metrics_module
from ..layers.core import InputLayer, Layer

__all__ = ["Sequential"]


def _positive_int(value, name, default=None):
    if value is None and default is not None:
        return default
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


class Sequential:
    """A linear stack of layers, with Keras' `compile` / `fit` / `evaluate` / `predict`.

    Args:
        layers: Optional list of layers (may start with `deepcore.Input(shape=...)`).
        name: Model name.
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = name or "sequential"
        self.trainable = trainable
        self._layers: list[Layer] = []
        self._input_shape: tuple | None = None
        self._engine = None
        self.optimizer = None
        self.loss = None
        self._loss = None
        self._metrics: list = []
        self._metric_names: list[str] = []
        self.compiled = False
        self.stop_training = False
        self.history = None
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------- structure
    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def add(self, layer) -> None:
        """Appends a layer (or sets the input shape with `deepcore.Input`)."""
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("deepcore.Input must come before every other layer.")
            self._input_shape = layer.shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a deepcore layer. Received: {layer!r}")
        if any(layer is other for other in self._layers):
            raise ValueError(f"Layer {layer.name!r} is already in the model.")
        if not self._layers and self._input_shape is None and layer.input_shape_arg:
            self._input_shape = layer.input_shape_arg
        kept = [l.get_weights() for l in self._layers] if self._engine is not None else None
        self._layers.append(layer)
        self._engine = None
        if kept is not None:
            self.build()
            for l, w in zip(self._layers, kept):
                l.set_weights(w)

    def pop(self) -> Layer:
        if not self._layers:
            raise ValueError("There are no layers in the model.")
        layer = self._layers.pop()
        kept = [l.get_weights() for l in self._layers] if self._engine is not None else None
        self._engine = None
        if kept is not None and self._layers:
            self.build()
            for l, w in zip(self._layers, kept):
                l.set_weights(w)
        return layer

    @property
    def built(self) -> bool:
        return self._engine is not None

    def build(self, input_shape=None) -> None:
        """Creates the engine and the weights. `input_shape` includes the batch axis."""
        if input_shape is not None:
            self._input_shape = tuple(int(d) for d in tuple(input_shape)[1:])
        if not self._layers:
            raise ValueError(f"Model {self.name!r} has no layers: add layers before building it.")
        if self._input_shape is None:
            raise ValueError(
                f"Model {self.name!r} has no input shape yet: start with "
                "deepcore.Input(shape=...), pass input_shape= to the first layer, or call fit."
            )
        engine = _core.Model(0)
        for layer in self._layers:
            layer.add_to(engine)
        try:
            engine.build(list(self._input_shape))
        except ValueError as e:
            raise ValueError(
                f"Model {self.name!r} cannot be built for input shape "
                f"{(None, *self._input_shape)}: {e}"
            ) from None
        engine.seed = int(utils.rng().integers(2**63))
        flat = engine.weights()
        views = {id(l): [] for l in self._layers}
        for li, offset, shape in engine.param_info():
            layer = self._layers[li]
            size = int(np.prod(shape))
            views[id(layer)].append(flat[offset : offset + size].reshape(shape))
        for layer in self._layers:
            layer.bind(views[id(layer)])
            layer.initialize()
        index = 0
        for layer in self._layers:
            for _, reg in layer.weight_settings():
                if reg is not None:
                    engine.set_regularizer(index, reg.l1, reg.l2)
                index += 1
        self._engine = engine
        if self.compiled:
            self._compile_engine()

    def _require_engine(self, what: str):
        if self._engine is None:
            self.build()
        return self._engine

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None, *self._input_shape)

    @property
    def output_shape(self):
        return (None, *self._require_engine("output_shape").output_shape(-1))

    # ----------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Configures training.

        Args:
            optimizer: Name or `deepcore.optimizers.Optimizer`.
            loss: Name, function or `deepcore.losses.Loss`.
            metrics: List of metric names (e.g. ["accuracy"]) or functions.
        """
        unknown = set(kwargs) - {
            "run_eagerly",
            "jit_compile",
            "steps_per_execution",
            "auto_scale_loss",
        }
        if unknown:
            raise TypeError(f"Unrecognized keyword arguments passed to compile: {sorted(unknown)}")
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        self._loss = None if loss is None else losses.get(loss)
        if isinstance(metrics, (str,)) or callable(metrics):
            metrics = [metrics]
        self._metrics = [metrics_module.get(m) for m in (metrics or [])]
        self._metric_names = [metrics_module.name_of(m) for m in self._metrics]
        self.compiled = True
        if self._engine is not None:
            self._compile_engine()

    def _compile_engine(self):
        if self._loss is None:
            return
        self._engine.compile(self._loss.spec(), self.optimizer.spec(), [])
        self.optimizer.attach(self._engine)

    def _check_ready(self, what: str):
        if not self.compiled:
            raise ValueError(f"You must call compile() before {what}() on model {self.name!r}.")
        if self._loss is None:
            raise ValueError(
                f"Model {self.name!r} was compiled without a loss; {what}() needs "
                "one: compile(loss=...)."
            )

    # -------------------------------------------------------------------- data
    def _inputs(self, x, name="x"):
        engine = self._engine
        if (
            engine is not None
            and type(x) is np.ndarray
            and x.dtype == np.float32
            and x.flags.c_contiguous
            and x.shape[1:] == self._input_shape
            and len(x)
            and _core.all_finite(x)
        ):
            return x, engine  # already in the engine's format: no copy, no conversion
        if x is None:
            raise ValueError(f"`{name}` is required. Received: {name}=None")
        x = utils.as_float_array(x, name)
        if self._input_shape is None:
            if x.ndim < 2:
                raise ValueError(
                    f"`{name}` must have a batch axis and a feature axis. Received shape: {x.shape}"
                )
            self._input_shape = tuple(x.shape[1:])
        engine = self._require_engine("fit")
        if x.shape[1:] != tuple(self._input_shape):
            first = self._layers[0]
            raise ValueError(
                f"Input of layer {first.name!r} (first layer of {self.name!r}) is incompatible: "
                f"expected shape {(None, *self._input_shape)}, received {x.shape}."
            )
        return x, engine

    def _targets(self, y, n: int, name="y"):
        if y is None:
            raise ValueError(f"`{name}` is required to train or evaluate. Received: {name}=None")
        y = utils.as_float_array(y, name)
        if len(y) != n:
            raise ValueError(
                f"x and {name} must have the same number of samples. "
                f"Received: x has {n}, {name} has {len(y)}."
            )
        out = tuple(self._engine.output_shape(-1))
        loss = self._loss
        if loss.sparse:
            if y.shape not in ((n, *out[:-1]), (n, *out[:-1], 1)):
                raise ValueError(
                    f"Loss {loss.name!r} expects integer class labels of shape "
                    f"{(n, *out[:-1])} (or {(n, *out[:-1], 1)}) for model output {(n, *out)}. "
                    f"Received: {name}.shape={y.shape}. For one-hot labels use "
                    "categorical_crossentropy."
                )
            bad = np.flatnonzero((y != np.floor(y)) | (y < 0) | (y >= out[-1]))
            if bad.size:
                raise ValueError(
                    f"Loss {loss.name!r} expects integer labels in [0, {out[-1]}). Received "
                    f"{name}[{bad[0]}] = {y.reshape(-1)[bad[0]]}."
                )
            return y
        expected = (n, *out)
        if y.shape != expected:
            if y.size == int(np.prod(expected)) and out[-1] == 1 and y.shape == expected[:-1]:
                y = y.reshape(expected)
            else:
                hint = ""
                if y.ndim == len(expected) - 1 and out[-1] > 1:
                    hint = (
                        " Integer class labels need sparse_categorical_crossentropy or "
                        "deepcore.utils.to_categorical."
                    )
                raise ValueError(
                    f"Loss {loss.name!r} expects {name} of shape {expected} to match the model "
                    f"output. Received: {name}.shape={y.shape}.{hint}"
                )
        return np.ascontiguousarray(loss.prepare_targets(y), np.float32)

    def _weights_for(self, sample_weight, class_weight, y, n):
        w = None
        if sample_weight is not None:
            w = utils.as_float_array(sample_weight, "sample_weight").reshape(-1)
            if w.shape != (n,):
                raise ValueError(
                    f"`sample_weight` must have one value per sample: expected "
                    f"shape ({n},), received {np.shape(sample_weight)}."
                )
            if (w < 0).any():
                raise ValueError("`sample_weight` must be >= 0.")
        if class_weight is not None:
            labels = (
                y.reshape(n, -1).argmax(axis=1)
                if (y.ndim > 1 and y.shape[-1] > 1)
                else y.reshape(n, -1)[:, 0].round()
            ).astype(np.int64)
            try:
                cw = np.array([class_weight[int(c)] for c in labels], dtype=np.float32)
            except KeyError as e:
                raise ValueError(
                    f"`class_weight` has no entry for class {e.args[0]}. "
                    f"Received keys: {sorted(class_weight)}"
                ) from None
            w = cw if w is None else w * cw
        return w

    def _set_metrics(self, y):
        out = tuple(self._engine.output_shape(-1))
        kinds = [
            metrics_module.resolve(
                m, y.ndim - 1, y.shape[-1] if y.ndim > 1 else 1, len(out), out[-1]
            )
            for m in self._metrics
        ]
        self._engine.set_metrics(kinds)

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", *self._metric_names]

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_batch_size=None,
        validation_freq=1,
    ):
        """Trains the model; returns a `History` whose `.history` holds per-epoch logs."""
        self._check_ready("fit")
        if steps_per_epoch is not None:
            raise ValueError(
                "steps_per_epoch is not supported for NumPy inputs yet; every "
                "epoch covers the whole dataset."
            )
        batch_size = _positive_int(batch_size, "batch_size", 32)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"`epochs` must be an integer >= 0. Received: epochs={epochs!r}")
        if not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(
                f"`validation_split` must be in [0, 1). "
                f"Received: validation_split={validation_split}"
            )
        x, engine = self._inputs(x)
        n = len(x)
        y = self._targets(y, n)
        w = self._weights_for(sample_weight, class_weight, y, n)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "`validation_data` must be a tuple (x_val, y_val) or "
                    "(x_val, y_val, sample_weight_val)."
                )
            xv, _ = self._inputs(validation_data[0], "validation_data[0]")
            yv = self._targets(validation_data[1], len(xv), "validation_data[1]")
            wv = self._weights_for(
                validation_data[2] if len(validation_data) == 3 else None, None, yv, len(xv)
            )
            val = (xv, yv, wv)
        elif validation_split:
            split = int(n * (1.0 - validation_split))
            if split <= 0 or split >= n:
                raise ValueError(
                    f"validation_split={validation_split} leaves an empty training "
                    f"or validation set for {n} samples."
                )
            val = (x[split:], y[split:], None if w is None else w[split:])
            x, y, w = x[:split], y[:split], (None if w is None else w[:split])
            n = split
        val_batch = _positive_int(validation_batch_size, "validation_batch_size", batch_size)
        self._set_metrics(y)
        verbose = 1 if verbose == "auto" else int(verbose)

        history = callbacks_module.History()
        cbs = callbacks_module.CallbackList(
            [history, *(callbacks or [])],
            self,
            {"epochs": epochs, "steps": -(-n // batch_size), "verbose": verbose},
        )
        batch_hooks = any(
            type(cb).on_train_batch_begin is not callbacks_module.Callback.on_train_batch_begin
            or type(cb).on_train_batch_end is not callbacks_module.Callback.on_train_batch_end
            for cb in cbs.callbacks
        )
        self.stop_training = False
        logs = {}
        cbs.on_train_begin()
        for epoch in range(int(initial_epoch), int(epochs)):
            cbs.on_epoch_begin(epoch)
            start = time.perf_counter()
            if batch_hooks:
                loss, values = self._epoch_with_batch_hooks(x, y, w, batch_size, shuffle, cbs)
            else:
                loss, values = engine.fit_epoch(x, y, w, batch_size, bool(shuffle))
            logs = {"loss": loss, **dict(zip(self._metric_names, values))}
            if val is not None and (epoch + 1) % validation_freq == 0:
                vloss, vvalues = engine.evaluate(val[0], val[1], val[2], val_batch)
                logs["val_loss"] = vloss
                logs.update({f"val_{k}": v for k, v in zip(self._metric_names, vvalues)})
            if verbose:
                self._print_epoch(
                    epoch, epochs, time.perf_counter() - start, -(-n // batch_size), logs
                )
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        self.history = history
        return history

    def _epoch_with_batch_hooks(self, x, y, w, batch_size, shuffle, cbs):
        n = len(x)
        order = utils.rng().permutation(n) if shuffle else np.arange(n)
        loss_sum, metric_sums = 0.0, np.zeros(len(self._metric_names))
        for b, start in enumerate(range(0, n, batch_size)):
            idx = order[start : start + batch_size]
            cbs.on_train_batch_begin(b)
            loss, values = self._engine.fit_epoch(
                x[idx], y[idx], None if w is None else w[idx], len(idx), False
            )
            loss_sum += loss * len(idx)
            metric_sums += np.asarray(values) * len(idx)
            cbs.on_train_batch_end(b, {"loss": loss, **dict(zip(self._metric_names, values))})
            if self.stop_training:
                n = start + len(idx)
                break
        return loss_sum / n, list(metric_sums / n)

    @staticmethod
    def _print_epoch(epoch, epochs, seconds, steps, logs):
        items = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        print(
            f"Epoch {epoch + 1}/{epochs}\n{steps}/{steps} - {seconds:.2f}s - "
            f"{1e3 * seconds / max(steps, 1):.3f}ms/step - {items}",
            file=sys.stdout,
        )

    # ------------------------------------------------------- evaluate, predict
    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        return_dict=False,
        **kwargs,
    ):
        """Loss (and metrics) on the given data, in inference mode."""
        self._check_ready("evaluate")
        batch_size = _positive_int(batch_size, "batch_size", 32)
        x, engine = self._inputs(x)
        y = self._targets(y, len(x))
        w = self._weights_for(sample_weight, None, y, len(x))
        self._set_metrics(y)
        loss, values = engine.evaluate(x, y, w, batch_size)
        logs = {"loss": loss, **dict(zip(self._metric_names, values))}
        if verbose not in (0, "auto") and verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return loss if not self._metric_names else [loss, *values]

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        """Outputs of the model for `x`, computed in batches of `batch_size` (default 32)."""
        batch_size = _positive_int(batch_size, "batch_size", 32)
        x, engine = self._inputs(x)
        return engine.predict(x, batch_size)

    def __call__(self, x, training=False):
        return self.predict(x)

    def predict_on_batch(self, x):
        x, engine = self._inputs(x)
        return engine.predict(x, len(x))

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics)."""
        self._check_ready("train_on_batch")
        x, engine = self._inputs(x)
        y = self._targets(y, len(x))
        w = self._weights_for(sample_weight, class_weight, y, len(x))
        self._set_metrics(y)
        loss, values = engine.fit_epoch(x, y, w, len(x), False)
        logs = {"loss": loss, **dict(zip(self._metric_names, values))}
        if return_dict:
            return logs
        return loss if not self._metric_names else [loss, *values]

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> list[np.ndarray]:
        self._require_engine("get_weights")
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        self._require_engine("set_weights")
        weights = list(weights)
        expected = sum(len(l.weights) for l in self._layers)
        if len(weights) != expected:
            raise ValueError(
                f"Model {self.name!r} expects {expected} weight arrays, received {len(weights)}."
            )
        i = 0
        for layer in self._layers:
            k = len(layer.weights)
            layer.set_weights(weights[i : i + k])
            i += k

    @property
    def weights(self):
        self._require_engine("weights")
        return [w for layer in self._layers for w in layer.weights]

    trainable_weights = weights

    def count_params(self) -> int:
        return int(self._require_engine("count_params").num_params)

    def get_layer(self, name=None, index=None) -> Layer:
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name!r}. Existing layers: {[l.name for l in self._layers]}"
        )

    def gradients(self, x, y, sample_weight=None):
        """Loss of one batch and the gradient of every weight (Keras shapes), no update."""
        self._check_ready("gradients")
        x, engine = self._inputs(x)
        y = self._targets(y, len(x))
        w = self._weights_for(sample_weight, None, y, len(x))
        loss, flat = engine.gradients(x, y, w)
        grads = []
        for _, offset, shape in engine.param_info():
            grads.append(flat[offset : offset + int(np.prod(shape))].reshape(shape))
        return loss, grads

    # ------------------------------------------------------------------ summary
    def summary(self, print_fn=None) -> None:
        """Prints each layer's output shape and parameter count, and the totals."""
        engine = self._require_engine("summary")
        rows = [
            (
                f"{l.name} ({type(l).__name__})",
                str((None, *engine.output_shape(i))),
                f"{l.count_params():,}",
            )
            for i, l in enumerate(self._layers)
        ]
        widths = [
            max(len(h), *(len(r[k]) for r in rows))
            for k, h in enumerate(("Layer (type)", "Output Shape", "Param #"))
        ]
        line = "-" * (sum(widths) + 6)
        fmt = lambda r: f"{r[0]:<{widths[0]}}   {r[1]:<{widths[1]}}   {r[2]:>{widths[2]}}"
        total = self.count_params()
        text = (
            [
                f'Model: "{self.name}"',
                line,
                fmt(("Layer (type)", "Output Shape", "Param #")),
                line.replace("-", "="),
            ]
            + [fmt(r) for r in rows]
            + [
                line,
                f"Total params: {total:,}",
                f"Trainable params: {total:,}",
                "Non-trainable params: 0",
                line,
            ]
        )
        (print_fn or print)("\n".join(text))
