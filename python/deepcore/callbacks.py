"""Callbacks with Keras' hook names.

fit calls every hook with its logs as a positional argument (a dict, never None):
`on_train_begin(logs)`, `on_epoch_begin(epoch, logs)`, `on_epoch_end(epoch, logs)`,
`on_train_batch_begin(batch, logs)`, `on_train_batch_end(batch, logs)`,
`on_train_end(logs)`. Batch-level hooks cost one engine call per batch, so fit
calls them only when a callback implements them.
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from ._registry import check_int

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .utils.summary_writer import SummaryWriter

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "EarlyStopping",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "TerminateOnNaN",
    "CSVLogger",
    "LambdaCallback",
    "TensorBoard",
]


def _auto_mode(monitor: str) -> str:
    """Mode "max" for accuracy, AUC, precision and recall (and their val_ forms), else "min"."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    return "max" if any(s in name for s in ("acc", "auc", "precision", "recall")) else "min"


def _resolve_mode(mode, monitor: str) -> str:
    """ "min" or "max": `mode` itself, or for "auto" what suits `monitor`."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    return _auto_mode(monitor) if mode == "auto" else mode


def _improves(current, best, mode: str, min_delta: float = 0.0) -> bool:
    """Whether `current` beats `best` (None: nothing yet) by more than min_delta in the
    direction of `mode`. NaN never improves."""
    current = float(current)
    if current != current:
        return False
    if best is None:
        return True
    return current > best + min_delta if mode == "max" else current < best - min_delta


def _monitored(callback, monitor: str, logs, who: str):
    """The value of `monitor` in `logs`; None for a val_ quantity on an epoch without
    validation (validation_freq > 1); a ValueError when it can never be in the logs."""
    logs = logs or {}
    if monitor in logs:
        return logs[monitor]
    if (
        monitor.startswith("val_")
        and callback.params.get("do_validation")
        and not any(k.startswith("val_") for k in logs)
    ):
        return None
    raise ValueError(
        f"{who} monitors {monitor!r}, which is not in the logs. "
        f"Available: {', '.join(sorted(logs))}"
    )


class Callback:
    """Base class; override the hooks you need. `self.model` is set by fit."""

    def __init__(self) -> None:
        self.model: Any = None  # (the model being trained, set by fit)
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_end(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None: ...
    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_test_end(self, logs: dict[str, Any] | None = None) -> None: ...


class CallbackList:
    """Calls a hook on every callback in order."""

    def __init__(self, callbacks: Iterable[Callback], model: Any, params: dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be deepcore.callbacks.Callback instances. Received: {cb!r}"
                )
            cb.set_model(model)
            cb.set_params(params)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)

        return call


class History(Callback):
    """Records the logs of every epoch: `history.history["loss"]` is a list per epoch.

    A key present only on some epochs (val_ keys with `validation_freq` > 1) has a
    shorter list; `plot` puts each value at the epoch it came from.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self._epochs: dict[str, list[int]] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
            self._epochs.setdefault(k, []).append(epoch)

    def plot(self, path: str | os.PathLike[str] | None = None) -> Figure:
        """Draws the loss and each metric per epoch, training and validation.

        One panel per quantity (loss first), with the training curve and, when
        present, the validation curve. Needs matplotlib, an optional dependency:
        `pip install "deepcore[plot]"`.

        Args:
            path: When given, the figure is saved there (format from the extension,
                e.g. "history.png"), drawn with the Agg canvas: no window and no
                change to pyplot's backend. When None, the figure comes from pyplot
                (shown by notebooks, or by `plt.show()`).

        Returns:
            The matplotlib `Figure`.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError(
                "History.plot needs matplotlib, an optional dependency: "
                'pip install "deepcore[plot]"'
            ) from None
        if not self.history:
            raise ValueError("History.plot: nothing to plot yet (no epoch has ended).")
        names = [k for k in self.history if not k.startswith("val_")]
        names += [k[4:] for k in self.history if k.startswith("val_") and k[4:] not in names]
        names.sort(key=lambda k: k != "loss")  # loss first, the others in log order
        cols = min(len(names), 3)
        rows = -(-len(names) // cols)
        size = (4.5 * cols, 3.5 * rows)
        if path is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=size)
        else:
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            fig = Figure(figsize=size)
            FigureCanvasAgg(fig)
        axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
        for ax, name in zip(axes, names):
            for key, label in ((name, "training"), (f"val_{name}", "validation")):
                values = self.history.get(key)
                if not values:
                    continue
                epochs: Sequence[int] | None = self._epochs.get(key)
                if epochs is None or len(epochs) != len(values):
                    epochs = range(len(values))
                ax.plot(
                    [e + 1 for e in epochs],
                    values,
                    marker="." if len(values) < 50 else None,
                    label=label,
                )
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.legend()
        for ax in axes[len(names) :]:
            ax.set_visible(False)
        fig.tight_layout()
        if path is not None:
            fig.savefig(os.fspath(path))
        return fig


class EarlyStopping(Callback):
    """Stops training when `monitor` has stopped improving.

    Unlike Keras, with `restore_best_weights=True` the best weights are restored
    whenever training ends (early stop or last epoch), and a line says so when
    verbose > 0.

    Args:
        monitor: Quantity to watch, e.g. "val_loss", "loss", "val_accuracy".
        min_delta: Smallest change counted as an improvement.
        patience: Epochs without improvement before stopping.
        verbose: 1 prints when stopping or restoring.
        mode: "min", "max" or "auto" (max for names with acc, auc, precision or recall).
        baseline: Value the monitor must beat.
        restore_best_weights: Restore the weights of the best epoch at the end.
        start_from_epoch: Epochs to wait before watching.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.mode = _resolve_mode(mode, monitor)
        if patience < 0:
            raise ValueError(f"patience must be >= 0. Received: patience={patience}")
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.min_delta = abs(min_delta)
        self.stopped_epoch = 0
        self.best_epoch = 0

    def _better(self, current, reference):
        return _improves(current, reference, self.mode, self.min_delta)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = _monitored(self, self.monitor, logs, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._better(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    f"Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (or its weights) during training.

    Args:
        filepath: Where to save; may hold "{epoch:02d}" (1-based, as Keras) and any log
            key, e.g. "ckpt/{epoch:02d}-{val_loss:.2f}.keras" (and "{batch}" when saving
            every few batches). Missing folders are created.
        monitor: Quantity compared when `save_best_only`.
        verbose: 1 prints a line each time the callback saves (or declines to).
        save_best_only: Save only when `monitor` improves on the best value seen so
            far (strictly; NaN never improves; the best value carries over to later fit
            calls, as in Keras).
        save_weights_only: `model.save_weights(path)` instead of `model.save(path)`.
        mode: "min", "max" or "auto" (max for names with acc, auc, precision or recall).
        save_freq: "epoch" (at the end of every epoch) or an integer: every that many
            batches (then fit calls batch-level hooks: one engine call per batch, and
            `save_best_only` needs a training quantity as `monitor`).
        initial_value_threshold: Value `monitor` must beat for the first save.

    Differences from Keras: no file-extension rule (the format is that of
    `model.save` / `model.save_weights`); a `monitor` that can never be in the logs
    (e.g. "val_loss" without validation data) raises a ValueError instead of a warning,
    and epochs without validation (`validation_freq` > 1) are skipped.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.mode = _resolve_mode(mode, monitor)
        if save_freq != "epoch" and (
            not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq <= 0
        ):
            raise ValueError(
                "save_freq must be 'epoch' or a positive integer. "
                f"Received: save_freq={save_freq!r}"
            )
        if save_freq != "epoch" and save_best_only and monitor.startswith("val_"):
            raise ValueError(
                f"ModelCheckpoint: save_best_only with save_freq={save_freq} (batches) "
                f"cannot monitor {monitor!r}: batch logs hold no validation values. "
                "Monitor a training quantity (e.g. 'loss') or use save_freq='epoch'."
            )
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = bool(save_best_only), bool(save_weights_only)
        self.save_freq = save_freq
        no_best = -math.inf if self.mode == "max" else math.inf
        self.best = no_best if initial_value_threshold is None else initial_value_threshold
        self._epoch, self._batches_seen = 0, 0
        if save_freq != "epoch":  # batch hooks only when needed: they slow fit down
            self.on_train_batch_end = self._on_train_batch_end  # type: ignore[method-assign]

    def _improved(self, current) -> bool:
        return _improves(current, self.best, self.mode)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._batches_seen = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches_seen += 1
        if self._batches_seen % self.save_freq == 0:  # type: ignore[operator]  # (an int)
            self._save(self._epoch, batch, logs or {})

    def _path(self, epoch, batch, logs) -> str:
        fields = {**logs, "epoch": epoch + 1}
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                f"ModelCheckpoint cannot format filepath {self.filepath!r}: {e!r}. "
                f"Available keys: {', '.join(sorted(fields))}"
            ) from None

    def _save(self, epoch, batch, logs):
        what = "weights" if self.save_weights_only else "model"
        if self.save_best_only:
            current = _monitored(self, self.monitor, logs, "ModelCheckpoint")
            if current is None:
                return
            if not self._improved(current):
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            path = self._path(epoch, batch, logs)
            if self.verbose > 0:
                print(
                    f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                    f"{float(current):.5f}, saving {what} to {path}"
                )
            self.best = float(current)
        else:
            path = self._path(epoch, batch, logs)
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: saving {what} to {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


def _log_learning_rate(callback, logs) -> None:
    """Keras 3's learning-rate callbacks add the rate to the epoch's logs (History and the
    callbacks after them see it as "learning_rate")."""
    if logs is not None:  # the float32 rate the engine uses, as Keras logs its variable
        logs["learning_rate"] = float(np.float32(callback.model.optimizer.learning_rate))


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by `factor` when `monitor` has stopped improving.

    Sets `model.optimizer.learning_rate`, which the engine uses from the next batch.

    Args:
        monitor: Quantity to watch.
        factor: New rate = rate * factor (0 < factor < 1).
        patience: Epochs without improvement before reducing.
        verbose: 1 prints each reduction.
        mode: "min", "max" or "auto" (max for names with acc, auc, precision or recall).
        min_delta: An improvement must beat the best value by more than this.
        cooldown: Epochs to wait after a reduction before counting again.
        min_lr: Lower bound of the learning rate.

    Differences from Keras: "auto" mode also maximizes AUC, precision and recall; a
    `monitor` that can never be in the logs raises a ValueError instead of a warning.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__()
        self.mode = _resolve_mode(mode, monitor)
        if not 0.0 < factor < 1.0:
            raise ValueError(
                f"ReduceLROnPlateau: factor must be in (0, 1). Received: factor={factor}"
            )
        if patience < 0 or cooldown < 0 or min_lr < 0:
            raise ValueError(
                "ReduceLROnPlateau: patience, cooldown and min_lr must be >= 0. Received: "
                f"patience={patience}, cooldown={cooldown}, min_lr={min_lr}"
            )
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.min_delta = verbose, abs(float(min_delta))
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)

    def _improved(self, current) -> bool:
        return _improves(current, self.best, self.mode, self.min_delta)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.best = -math.inf if self.mode == "max" else math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        _log_learning_rate(self, logs)
        current = _monitored(self, self.monitor, logs, "ReduceLROnPlateau")
        if current is None:
            return
        current = float(current)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose > 0:
                        print(
                            f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}."
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch: `schedule(epoch, lr) -> new lr`.

    `epoch` counts from 0; `lr` is the current rate. A schedule that takes a single
    argument is called as `schedule(epoch)`. (Keras tries two arguments and falls back
    to one on any TypeError, which also hides TypeErrors raised inside the schedule;
    here the signature decides.)
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable. Received: {schedule!r}")
        self.schedule, self.verbose = schedule, verbose
        try:
            params = inspect.signature(schedule).parameters.values()
        except (TypeError, ValueError):
            self._with_lr = True
        else:
            kinds = [p.kind for p in params]
            positional = sum(
                k in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p, k in zip(params, kinds)
            )
            self._with_lr = positional >= 2 or inspect.Parameter.VAR_POSITIONAL in kinds

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        lr = float(self.model.optimizer.learning_rate)
        new = self.schedule(epoch, lr) if self._with_lr else self.schedule(epoch)
        try:  # the optimizer checks the rate (a finite number > 0)
            self.model.optimizer.learning_rate = new
        except ValueError:
            raise ValueError(
                "LearningRateScheduler: the schedule must return a finite number > 0. "
                f"Received: {new!r} at epoch {epoch}"
            ) from None
        value = self.model.optimizer.learning_rate
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {value}.")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        _log_learning_rate(self, logs)


class TerminateOnNaN(Callback):
    """Stops training at the first batch whose loss is NaN or infinite (Keras' check after
    every batch).

    The check runs in the engine: fit stops the engine right after that batch and calls
    `on_train_batch_end` for it, without one Python call per batch. The weights are then
    those after the non-finite step: pair it with EarlyStopping(restore_best_weights=True)
    or ModelCheckpoint to keep good ones.
    """

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Writes the logs of every epoch to a CSV file: a header "epoch,<keys...>", then one
    row per epoch (epoch counted from 0, as Keras).

    Args:
        filename: The CSV file.
        separator: Field separator.
        append: Append to an existing file (no second header) instead of overwriting it.

    The columns are the keys of the first epoch, plus the val_ keys when fit validates
    on later epochs only (`validation_freq` > 1); a missing value is written "NA".
    The file is flushed after every row.
    """

    def __init__(
        self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False
    ) -> None:
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep, self.append = separator, bool(append)
        self.keys: list[str] | None = None
        self._file: IO[str] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._header = not (
            self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        )
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = csv.writer(self._file, delimiter=self.sep, lineterminator="\n")
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            keys = list(logs)
            if self.params.get("do_validation") and not any(k.startswith("val_") for k in keys):
                keys += [f"val_{k}" for k in keys]
            self.keys = sorted(keys)
            if self._header:
                self._writer.writerow(["epoch", *self.keys])
        self._writer.writerow([epoch, *(logs.get(k, "NA") for k in self.keys)])
        self._file.flush()  # type: ignore[union-attr]  # (open from on_train_begin)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorBoard(Callback):
    """Keras 3's TensorBoard callback: event files that TensorBoard reads (no TensorFlow
    needed), under `log_dir/train` and `log_dir/validation`: each epoch's logs as scalars
    "epoch_<name>" (and the learning rate, as Keras), every `update_freq` batches
    "batch_<name>" (update_freq="batch": every batch; costs a Python call per batch), and
    every `histogram_freq` epochs a histogram of each weight ("<layer>/<weight>").

    Keras' `write_graph`, `write_images`, `profile_batch` and `embeddings_*` are accepted
    and write nothing (there is no TensorFlow graph to draw).
    """

    _writers: dict[str, SummaryWriter]

    def __init__(
        self,
        log_dir: str | os.PathLike[str] = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: str | int = "epoch",
        profile_batch: Any = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: Any = None,
    ) -> None:
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = check_int("histogram_freq", histogram_freq, 0)
        self.write_steps_per_second = bool(write_steps_per_second)
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch":
            self.update_freq: int | str = check_int("update_freq", update_freq, 1)
            self.on_train_batch_end = self._batch_end  # type: ignore[method-assign]  # (batch hooks only when asked)
        else:
            self.update_freq = "epoch"
        self._writers, self._batches = {}, 0

    def _writer(self, which: str):
        if which not in self._writers:
            from .utils.summary_writer import SummaryWriter

            self._writers[which] = SummaryWriter(os.path.join(self.log_dir, which))
        return self._writers[which]

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._batches, self._epoch_start = 0, time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start, self._epoch_batches = time.perf_counter(), self._batches

    def _batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches += 1
        if self._batches % self.update_freq == 0:  # type: ignore[operator]  # (an int)
            for name, value in (logs or {}).items():
                self._writer("train").scalar(f"batch_{name}", value, self._batches)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        if self.model is not None and self.model.optimizer is not None:
            train["learning_rate"] = float(self.model.optimizer.learning_rate)
        if self.write_steps_per_second:
            steps = self.params.get("steps") or 0
            train["steps_per_second"] = steps / max(time.perf_counter() - self._epoch_start, 1e-9)
        for name, value in train.items():
            self._writer("train").scalar(f"epoch_{name}", value, epoch)
        for name, value in logs.items():
            if name.startswith("val_"):
                self._writer("validation").scalar(f"epoch_{name[4:]}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for layer in self.model.layers:
                for wname, w in zip(layer.weight_names(), layer.get_weights()):
                    self._writer("train").histogram(f"{layer.name}/{wname}", w, epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class LambdaCallback(Callback):
    """A callback made of functions, called as the hooks of the same name:
    `on_epoch_begin(epoch, logs)`, `on_epoch_end(epoch, logs)`, `on_train_begin(logs)`,
    `on_train_end(logs)`, `on_train_batch_begin(batch, logs)`,
    `on_train_batch_end(batch, logs)`, and `on_test_begin(logs)` / `on_test_end(logs)`
    around fit's validation. Hooks left None do nothing; fit calls batch-level hooks (one
    engine call per batch) only when one is given.
    """

    _HOOKS = (
        "on_epoch_begin",
        "on_epoch_end",
        "on_train_begin",
        "on_train_end",
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_test_begin",
        "on_test_end",
    )

    def __init__(
        self,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_train_begin: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_train_batch_begin: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        **kwargs: Callable[..., Any] | None,
    ) -> None:
        super().__init__()
        unknown = set(kwargs) - set(self._HOOKS)
        if unknown:
            raise TypeError(
                f"LambdaCallback: unknown hooks {sorted(unknown)}. Known: {', '.join(self._HOOKS)}"
            )
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable. Received: {fn!r}")
            setattr(self, name, fn)
