"""The training loop of every model (Keras keeps it in `trainers/trainer.py`): compile, fit,
evaluate, predict and the one-batch calls, on the model's engine.

Python calls the engine once per epoch (fit), once per batch only when a callback asks for
batch-level hooks, or in chunks of batches to redraw the progress bar on a terminal; the
data is converted to float32 once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import callbacks as callbacks_module
from .. import metrics as metrics_module
from .. import optimizers
from .._registry import check_int, check_positive_int, check_verbose, is_number
from ..utils.progbar import Progress
from .compile_utils import CompiledOutputs
from .data_sources import BatchSource, Feeder, is_source
from .epoch_iterator import RowStream, StreamRows

__all__ = ["Trainer"]


def _overrides(callback, hook: str) -> bool:
    """Whether `callback` implements `hook` (a method override or a function set on the
    instance, as LambdaCallback does) with work that needs Python after a batch.
    TerminateOnNaN's batch check runs in the engine (fit stops the engine at the first
    non-finite batch loss and then calls the hook), so it needs no per-batch calls."""
    f = getattr(callback, hook, None)
    f = getattr(f, "__func__", f)
    return f is not getattr(callbacks_module.Callback, hook) and f is not getattr(
        callbacks_module.TerminateOnNaN, hook, None
    )


def _nan_stoppers(callbacks) -> list:
    """The callbacks whose batch check the engine runs (see `_overrides`)."""
    return [
        cb
        for cb in callbacks
        if isinstance(cb, callbacks_module.TerminateOnNaN)
        and not _overrides(cb, "on_train_batch_end")
    ]


class Trainer:
    """compile, fit, evaluate, predict, train_on_batch, predict_on_batch and gradients of a
    model (models/model.py holds its layers, engine and weights)."""

    if TYPE_CHECKING:  # (the model's, set in models/model.py)
        name: str
        trainable: bool
        _layers: list
        _engine: Any
        _compile_args: tuple[Any, Any, Any, Any]  # (None before compile)
        _out: Any

        def _named_outputs(self) -> bool: ...

        _output_names: Any
        _inputs: Any
        _targets: Any
        _weights_for: Any
        _split: Any
        _split_outputs: Any

    def compile(
        self,
        optimizer: str | optimizers.Optimizer = "rmsprop",
        loss: Any = None,
        loss_weights: Sequence[float] | Mapping[str, float] | None = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        """Configures training (Keras 3's arguments, in its order).

        Args:
            optimizer: Name or `deepcore.optimizers.Optimizer`.
            loss: Name, function or `deepcore.losses.Loss`; for a model of several outputs,
                one for all, a list (one per output, None for an output not trained) or a
                dict by output name. The model's loss is the sum of the outputs'.
            loss_weights: A number scaling the loss and its gradients; for several
                outputs, a list or dict by output name.
            metrics: Metric names (e.g. ["accuracy"]) or objects, computed without the
                sample weights (Keras' `metrics`); for several outputs, a list with one
                entry (a metric, a list of them, or None) per output, or a dict by output
                name. Logged as "<output>_<metric>" then.
            weighted_metrics: Metrics weighted by the sample weights (and class weights);
                named "weighted_<name>" where `metrics` has the same name.
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
        self._compile_args = (loss, loss_weights, metrics, weighted_metrics)
        names = self._output_names()  # (None: a subclassed model's, until it is traced)
        self._out = None if names is None else self._compiled_outputs(names)
        self._frozen = [self._frozen_now(layer) for layer in self._layers]
        self.compiled = True
        if self._engine is not None:
            self._compile_engine()

    def _frozen_now(self, layer) -> bool:
        """Whether `layer` is frozen (by its flag or the model's), for compile."""
        inner = layer._inner_layers()
        if layer.trainable and self.trainable and any(not la.trainable for la in inner):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) is trainable but "
                f"{[la.name for la in inner if not la.trainable]} inside it are not: deepcore "
                "freezes whole layers. Set trainable=False on the outer layer."
            )
        return not (self.trainable and layer.trainable)

    def _compile_engine(self):
        # (again: a subclassed model knows its outputs once traced)
        self._out = self._compiled_outputs(self._output_names())
        if not self._out.trained:
            return
        self._configure(self._engine)
        self.optimizer.attach(self._engine)

    def _compiled_outputs(self, names) -> CompiledOutputs:
        return CompiledOutputs(names, *self._compile_args, named=self._named_outputs())

    def _configure(self, engine) -> None:
        """Sets `engine` (the model's, or a copy of it) to train as compile said: the
        frozen layers, each output's loss and weight, the optimizer."""
        for i, frozen in enumerate(self._frozen[: len(self._layers)]):
            engine.set_trainable(i, not frozen)
        programs, loss_at, _ = self._programs()
        specs = []
        for fn, weight, at in zip(self._out.losses, self._out.weights, loss_at):
            spec = None if fn is None else fn.spec()
            if spec is not None:
                spec.weight, spec.program = weight, at
            specs.append(spec)
        engine.compile(specs, self.optimizer.spec(), [])
        self._set_programs(engine, programs)

    def _set_programs(self, engine, programs) -> None:
        """engine.set_programs, unless the model's engine has these programs already (its
        constants then stay where they were uploaded)."""
        specs, key = programs
        if engine is self._engine and key == self.__dict__.get("_programs_set"):
            return
        engine.set_programs(specs)
        if engine is self._engine:
            self._programs_set = key

    def _programs(self, guess=False):
        """The programs of the custom losses and metrics (deepcore.ops functions, traced
        once per label shape) for the labels `_targets` converted last: (the engine's
        OutputPrograms, a key telling them apart) (none before any labels, as Keras traces a
        loss at its first batch; with `guess`, for labels shaped as the outputs), and the
        index of each output's loss program and each metric's (-1: none)."""
        from .. import _core
        from ..layers.ops_layers import traced

        shapes = self._output_shapes()
        labels = self._label_shapes if len(self._label_shapes) == len(shapes) else None
        labels = shapes if labels is None and guess else labels
        custom, at = [], []
        for k, fn in enumerate(self._out.losses):
            at.append(len(custom) if fn is not None and fn.custom else -1)
            if at[-1] >= 0:
                custom.append((fn, k, f"Loss {fn.name!r}"))
        for m, _, k, _ in self._out.metrics:
            at.append(len(custom) if isinstance(m, metrics_module.MeanMetricWrapper) else -1)
            if at[-1] >= 0:
                custom.append((m, k, f"Metric {m.name!r}"))
        made = [
            (k, traced(obj, obj.call, labels[k], shapes[k], owner))
            for obj, k, owner in (custom if labels is not None else ())
        ]
        # Made once (each fit asks again) and numbered: the number tells them apart (the
        # cache holds the programs: ids of live objects)
        ids = [(k, id(program)) for k, program in made]
        cached = self.__dict__.get("_program_specs")
        if cached is None or [(k, id(p)) for k, p in cached[2]] != ids:
            specs = [  # (the engine averages the values per sample)
                _core.OutputProgram(k, list(labels[k]), *program.averaged().spec())
                for k, program in made
            ]
            number = 1 + (cached[0] if cached else 0)
            self._program_specs = cached = (number, specs, made)
        key, programs = cached[0], cached[1]
        n = len(self._out.losses)
        return (programs, key), at[:n], at[n:]

    def _check_ready(self, what: str):
        if not self.compiled:
            raise ValueError(f"You must call compile() before {what}() on model {self.name!r}.")
        if not (self._out.trained if self._out else self._compile_args[0] is not None):
            raise ValueError(
                f"Model {self.name!r} was compiled without a loss; {what}() needs "
                "one: compile(loss=...)."
            )

    def _set_metrics(self, engine=None):
        """The engine's metrics (of `engine`, by default the model's), and each output's
        label columns, for the labels that `_targets` converted last."""
        engine = self._engine if engine is None else engine
        programs, _, metric_at = self._programs()
        self._set_programs(engine, programs)
        kinds = []
        for (m, weighted, k, _), at in zip(self._out.metrics, metric_at):
            if isinstance(m, metrics_module.Metric) and m._stateful():
                continue  # (computed in Python: _update_stateful)
            out, labels = self._output_shapes()[k], self._label_shapes[k]
            spec = metrics_module.resolve(
                m, len(labels), labels[-1] if labels else 1, len(out), out[-1]
            )
            spec.weighted, spec.output, spec.program = weighted, k, at
            kinds.append(spec)
        engine.set_metrics(kinds)
        if len(self._label_shapes) > 1:
            engine.set_label_columns([max(1, math.prod(s)) for s in self._label_shapes])

    @property
    def metrics_names(self) -> list[str]:
        if self._out is None:
            return ["loss"]
        return self._out.log_names()

    def _results(self, result, return_dict: bool):
        """evaluate's and train_on_batch's return value from the engine's `result` (loss,
        metrics, each output's loss): the logs, or their values."""
        names, values = self._out.names_and_values(*result)
        if return_dict:
            return dict(zip(names, values))
        return values[0] if len(values) == 1 else values

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: Sequence[callbacks_module.Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool | str = True,
        class_weight: Mapping[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
        validation_split_mode: str = "last",
    ) -> callbacks_module.History:
        """Trains the model; returns a `History` whose `.history` holds per-epoch logs.

        Args:
            x, y: Inputs and targets (NumPy arrays or anything `np.asarray` accepts), or
                x a source of batches (`(x, y)` or `(x, y, sample_weight)` each, y None):
                a generator or iterator, a `deepcore.utils.PyDataset`, a PyTorch
                DataLoader; each batch is one step, a few batches held at a time.
            batch_size: Rows per gradient step (default 32).
            epochs: Index of the last epoch (training starts at `initial_epoch`).
            verbose: "auto" (= 1), 0 (silent), 1 (progress bar on a terminal, one line
                per epoch otherwise) or 2 (one line per epoch).
            callbacks: `deepcore.callbacks.Callback` instances.
            validation_split: Fraction of the rows held out for validation.
            validation_split_mode: Which rows `validation_split` holds out:
                "last" (Keras: the last rows, taken before any shuffling), "shuffle"
                (rows drawn at random from `deepcore.utils.rng()`) or "stratify" (drawn
                at random class by class, so each class keeps its proportion in both
                parts; classes come from integer labels, one-hot rows or binary 0/1
                labels). Both parts keep the original row order.
            validation_data: `(x_val, y_val)` or `(x_val, y_val, sample_weight_val)`;
                takes precedence over `validation_split`.
            shuffle: Reshuffle the training rows every epoch.
            class_weight: `{class: weight}`, multiplied into the sample weights.
            sample_weight: One weight per training row.
            initial_epoch: Epoch to start from (for resuming).
            steps_per_epoch: Batches per epoch; the data is cycled (see below). A source
                of batches goes on from where the epoch before stopped (needed for an
                endless one).
            validation_steps: Batches of a validation source to evaluate (default: all).
            validation_batch_size: Batch size of the validation pass (default batch_size).
            validation_freq: Validate every `validation_freq` epochs.

        Differences from Keras:
            * A `UserWarning` names the classes that `validation_split` puts in the
              validation part only (typically sorted labels with the Keras default
              "last"): the model never trains on them.
            * `class_weight` weights the validation loss and metrics too (with any
              `validation_data` sample weights), so `loss` and `val_loss` measure the
              same objective; Keras applies it to training only.
            * `steps_per_epoch` with arrays cycles through the data: an epoch takes the
              next `steps_per_epoch * batch_size` rows of an endless sequence of passes,
              each pass in a fresh order when `shuffle` (batches may span two passes).
              Keras stops with a warning when the arrays run out.
            * `verbose=1` prints the progress bar only when stdout is a terminal; into a
              file or pipe it prints one line per epoch, as `verbose=2` does:
              "Epoch 3/10 - 8/8 - 0s - 1ms/step - accuracy: 0.9000 - loss: 0.2500".

        On a terminal, `verbose=1` trains each epoch in chunks of batches (about
        0.1 s each) to redraw the bar; the chunks follow the row order the engine
        would have drawn, and each chunk goes on from the loss and metric counts of the
        one before, so weights and logs are those of training in one call. Fast epochs run
        in one call and the bar is drawn when they end.
        """
        self._check_ready("fit")
        batch_size = check_positive_int("batch_size", batch_size, default=32)
        if steps_per_epoch is not None:
            steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch)
        epochs = check_int("epochs", epochs, 0)
        initial_epoch = check_int("initial_epoch", initial_epoch, 0)
        verbose = check_verbose(verbose, auto=1)
        validation_freq = check_positive_int("validation_freq", validation_freq)
        if not (is_number(validation_split) and 0 <= validation_split < 1):
            raise ValueError(
                f"`validation_split` must be in [0, 1). "
                f"Received: validation_split={validation_split}"
            )
        if validation_split_mode not in ("last", "shuffle", "stratify"):
            raise ValueError(
                "`validation_split_mode` must be 'last', 'shuffle' or 'stratify'. "
                f"Received: validation_split_mode={validation_split_mode!r}"
            )
        source: BatchSource | None = None
        val: BatchSource | tuple[Any, Any, Any] | None = None
        if is_source(x):
            for arg, value in (("y", y), ("sample_weight", sample_weight)):
                if value is not None:
                    raise ValueError(
                        f"`{arg}` cannot be given with `x` a {type(x).__name__}: its batches "
                        "carry the targets and sample weights, (x, y, sample_weight)."
                    )
            if validation_split:
                raise ValueError(
                    "`validation_split` splits arrays only; with `x` a "
                    f"{type(x).__name__}, pass validation_data."
                )
            source = BatchSource(x, "x", bool(shuffle))
        else:
            x, engine = self._inputs(x)
            n = len(x)
            y = self._targets(y, n)
            w = self._weights_for(sample_weight, class_weight, y, n)
        if validation_data is not None and is_source(validation_data):
            val = BatchSource(validation_data, "validation_data")
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "`validation_data` must be a tuple (x_val, y_val) or "
                    "(x_val, y_val, sample_weight_val)."
                )
            xv, _ = self._inputs(validation_data[0], "validation_data[0]")
            yv = self._targets(validation_data[1], len(xv), "validation_data[1]")
            wv = self._weights_for(
                validation_data[2] if len(validation_data) == 3 else None,
                class_weight,
                yv,
                len(xv),
            )
            val = (xv, yv, wv)
        elif validation_split:
            (x, y, w), val = self._split(x, y, w, validation_split, validation_split_mode)
            n = len(x)
        val_batch = check_positive_int(
            "validation_batch_size", validation_batch_size, default=batch_size
        )
        if source is None:
            self._set_metrics()
            steps = steps_per_epoch or -(-n // batch_size)
            # The data goes where the engine computes once per fit, not once per epoch.
            data = engine.dataset(x, y, w)
        else:  # (None: as many as a generator gives)
            steps = steps_per_epoch or source.length
        val_data = (
            None if val is None or isinstance(val, BatchSource) else self._engine.dataset(*val)
        )

        history = callbacks_module.History()
        cbs = callbacks_module.CallbackList(
            [*(callbacks or []), history],  # last, as Keras': it sees what callbacks log
            self,
            {
                "epochs": epochs,
                "steps": steps,
                "verbose": verbose,
                "do_validation": val is not None,
            },
        )
        # Batch-level hooks cost one engine call per batch: only when a callback has them,
        # or a metric is computed in Python (`observe`: after every batch).
        batch_hooks = any(
            _overrides(cb, hook)
            for cb in cbs.callbacks
            for hook in ("on_train_batch_begin", "on_train_batch_end")
        )
        observe = self._update_stateful if self._out.stateful() else None
        progress = Progress(verbose, epochs, steps)
        nan_stoppers = _nan_stoppers(cbs.callbacks)
        stream = RowStream(engine, n, bool(shuffle)) if steps_per_epoch and not source else None
        last_seconds, order_seconds = None, 0.0
        self.stop_training = False
        logs = {}
        cbs.on_train_begin({})
        for epoch in range(int(initial_epoch), int(epochs)):
            self._reset_stateful()
            cbs.on_epoch_begin(epoch, {})
            start = time.perf_counter()
            progress.epoch_begin(epoch)
            # Live bar: chunks of batches, unless the epoch is fast (the bar at its end
            # is enough) or drawing the row order in Python costs more than 5% of an epoch.
            live = (
                progress.live
                and steps > 1
                and (
                    last_seconds is None
                    or (
                        last_seconds >= 5 * progress.interval
                        and order_seconds <= 0.05 * last_seconds
                    )
                )
            )
            if source is not None:
                idx = None
            elif stream is not None:
                idx = StreamRows(stream, steps * batch_size)
            elif (batch_hooks or live or observe) and shuffle:
                t = time.perf_counter()
                idx = engine.permutation(n)
                order_seconds = time.perf_counter() - t
            else:
                idx = None
            if source is not None:
                logs, done = self._fit_pieces(
                    self._source_feed(source.epoch(steps_per_epoch), class_weight),
                    steps,
                    cbs if batch_hooks else None,
                    progress if (progress.live or batch_hooks) else None,
                    nan_stoppers,
                    observe,
                )
                if source.ran_out(done, steps_per_epoch):
                    self.stop_training = True
                    if not done:
                        break
                progress.steps = steps = steps or done  # (a generator's: known now)
            elif stream is None and not batch_hooks and not live and not observe:
                loss, values, _, done, per_output = engine.fit_epoch(
                    data, batch_size, bool(shuffle), stop_on_nonfinite=bool(nan_stoppers)
                )
                logs = self._out.logs(loss, values, per_output)
                self._after_nonfinite(nan_stoppers, done, logs)
            else:
                logs, done = self._fit_rows(
                    data,
                    idx,
                    batch_size,
                    cbs if batch_hooks else None,
                    progress if (live or batch_hooks) else None,
                    nan_stoppers,
                    observe,
                )
            if val is not None and (epoch + 1) % validation_freq == 0:
                cbs.on_test_begin({})
                if isinstance(val, BatchSource):
                    result = self._evaluate_source(val, validation_steps, class_weight)
                else:
                    result = self._evaluate_data(val_data, val_batch)
                val_logs = self._out.logs(*result)
                cbs.on_test_end(val_logs)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            last_seconds = time.perf_counter() - start
            progress.epoch_end(epoch, done, last_seconds, logs)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        self.history = history
        return history

    def _after_nonfinite(self, nan_stoppers, done, logs):
        """After an engine call that `nan_stoppers` (TerminateOnNaN) stopped at a batch
        whose loss is not finite: their batch hook, as Keras calls it for that batch."""
        if nan_stoppers and not math.isfinite(logs["loss"]):
            for cb in nan_stoppers:
                cb.on_train_batch_end(done - 1, logs)

    def _fit_pieces(self, feed, steps, cbs=None, progress=None, nan_stoppers=(), observe=None):
        """Trains on the batches `feed(done, k)` hands out: (engine dataset, batch size, row
        order or None, first row, rows) of at most k batches after the `done` ones, None at
        the end; `steps`: the batches expected (None: unknown).

        One engine call covers as many as feed gives, unless `cbs` (batch-level hooks: one
        call per batch) or `progress` (calls of about `progress.interval` seconds, to redraw
        the bar). Each call goes on from the loss and metric counts of the one before, so
        the values passed on are those of the epoch so far, as one call would give them.
        `nan_stoppers`: the engine stops at the first batch with a non-finite loss;
        `observe()`: called after every batch (one engine call per batch then).
        Returns the epoch's logs and the batches done.
        """
        done, start, states, logs = 0, time.perf_counter(), None, {}
        while steps is None or done < steps:
            if cbs is not None or observe is not None or (progress is not None and done == 0):
                k = 1
            elif progress is None:
                k = steps or 2**62
            else:
                per_batch = (time.perf_counter() - start) / done
                k = max(1, int(progress.interval / per_batch)) if per_batch > 0 else 2**62
            piece = feed(done, k)
            if piece is None:
                break
            if cbs is not None:
                cbs.on_train_batch_begin(done, {})
            stop = bool(nan_stoppers)
            loss, values, states, ran, per_output = self._engine.fit_rows(
                *piece, carry=states, stop_on_nonfinite=stop
            )
            done = done + ran if steps is None else min(done + ran, steps)
            if observe is not None and ran:
                observe()
            logs = self._out.logs(loss, values, per_output)
            if cbs is not None:
                cbs.on_train_batch_end(done - 1, logs)
            else:
                self._after_nonfinite(nan_stoppers, done, logs)
            if progress is not None:
                progress.update(done, logs)
            if self.stop_training and (cbs is not None or nan_stoppers):
                break
        return logs, done

    def _fit_rows(
        self, data, idx, batch_size, cbs=None, progress=None, nan_stoppers=(), observe=None
    ):
        """_fit_pieces over the rows `idx` of `data` (an engine dataset; all rows in order
        when idx is None), in that order."""
        rows = data.rows if idx is None else len(idx)

        def feed(done, k):
            if isinstance(idx, StreamRows):
                k = min(k, max(1, idx.chunk // batch_size))
            lo, hi = done * batch_size, min(rows, (done + k) * batch_size)
            order = None if idx is None else idx[lo:hi]  # (None: rows lo..hi-1, no gather)
            return data, batch_size, order, lo, hi - lo

        steps = -(-rows // batch_size)
        return self._fit_pieces(feed, steps, cbs, progress, nan_stoppers, observe)

    def _source_feed(self, batches, class_weight=None):
        """feed (see _fit_pieces) of chunks of a source's batches, each converted and
        checked as arrays are (the first one builds the model if it is not built yet, and
        sets the metrics for its labels)."""
        feeder = Feeder(batches)

        def feed(done, k):
            got = feeder.take(k)
            if got is None:
                return None
            x, y, w, batch_size, count = got
            try:
                data = self._batch_data(x, y, w, class_weight, first=done == 0)
            except (ValueError, TypeError) as e:
                where = f"batch {done}" if count == 1 else f"batches {done}-{done + count - 1}"
                raise type(e)(f"In {where} of `x`: {e}") from None
            return data, batch_size, None, 0, data.rows

        return feed

    def _batch_data(self, x, y, w, class_weight=None, first=True, what="x"):
        """The engine dataset of a source's batches x, y and sample weights w, converted
        and checked; the `first` sets the metrics for its labels, the others must have
        labels of the same shape."""
        shapes = list(self._label_shapes)
        x, engine = self._inputs(x, what)
        y = self._targets(y, len(x))
        w = self._weights_for(w, class_weight, y, len(x))
        if first:
            self._set_metrics()
        elif shapes != self._label_shapes:
            raise ValueError(
                f"A batch of `{what}` has labels of sample shape {self._label_shapes}; the "
                f"batches before it had {shapes}"
            )
        return engine.dataset(x, y, w)

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        return_dict: bool = False,
        **kwargs: Any,
    ) -> Any:  # the loss, [loss, metrics...], or {name: value} with return_dict
        """Loss (and metrics) on the given data, in inference mode; x may be a source of
        batches as fit takes (`steps` of them, by default all)."""
        self._check_ready("evaluate")
        batch_size = check_positive_int("batch_size", batch_size, default=32)
        verbose = check_verbose(verbose, auto=0)
        if is_source(x):
            steps = None if steps is None else check_positive_int("steps", steps)
            result = self._evaluate_source(BatchSource(x, "x"), steps)
        else:
            x, engine = self._inputs(x)
            y = self._targets(y, len(x))
            w = self._weights_for(sample_weight, None, y, len(x))
            self._set_metrics()
            result = self._evaluate_data(engine.dataset(x, y, w), batch_size)
        if verbose not in (0, "auto") and verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in self._out.logs(*result).items()))
        return self._results(result, return_dict)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        steps: int | None = None,
        **kwargs: Any,
    ) -> Any:  # an array; a list (or dict by name) of arrays for several outputs
        """Outputs of the model for `x`; x may be a source of batches as fit takes (their x;
        `steps` of them, by default all). On a GPU the rows go in batches of `batch_size`
        (default 32); on the CPU the engine cuts them into pieces that stay in cache whatever
        `batch_size` is, and the predictions are the same bits for every batch size."""
        batch_size = 32 if batch_size is None else check_positive_int("batch_size", batch_size)
        # (the common cases cost nothing: predict on one sample is fast)
        if not (type(verbose) is int and 0 <= verbose <= 2) and verbose != "auto":
            check_verbose(verbose, auto=0)
        if is_source(x):
            steps = None if steps is None else check_positive_int("steps", steps)
            feeder, outputs = Feeder(BatchSource(x, "x").epoch(steps)), []
            while (got := feeder.take()) is not None:
                xs, engine = self._inputs(got[0])
                outputs.append(engine.predict(xs, got[3]))
            if not outputs:
                raise ValueError(f"`x` ({type(x).__name__}) gave no batches to predict")
            return self._split_outputs(np.concatenate(outputs))
        x, engine = self._inputs(x)
        return self._split_outputs(engine.predict(x, batch_size))

    def _evaluate_data(self, data, batch_size):
        """evaluate's engine result over an engine dataset (the stateful metrics reset)."""
        if not self._out.stateful():
            return self._engine.evaluate(data, batch_size)
        self._reset_stateful()
        return self._evaluate_rows(data, batch_size)[0]

    def _evaluate_rows(self, data, batch_size, states=None):
        """(evaluate's result, the states to go on from) over `data`, going on from
        `states`: one engine call, or one per batch for the metrics computed in Python."""
        engine = self._engine
        if not self._out.stateful():
            loss, values, states, _, per_output = engine.evaluate_rows(data, batch_size, states)
            return (loss, values, per_output), states
        for first in range(0, data.rows, batch_size):
            count = min(batch_size, data.rows - first)
            loss, values, states, _, per_output = engine.evaluate_rows(
                data, batch_size, states, first, count
            )
            self._update_stateful()
        return (loss, values, per_output), states

    def _reset_stateful(self):
        for m, _, _ in self._out.stateful():
            m.reset_state()

    def _update_stateful(self):
        """The metrics computed in Python (Keras' Metric subclasses) updated from the last
        batch the engine ran: its outputs, labels and sample weights (weighted metrics)."""
        engine, rows, batch = self._engine, self._engine.last_rows(), {}
        for m, weighted, k in self._out.stateful():
            if k not in batch:  # (each output's arrays copied once for all its metrics)
                w = engine.last_batch(k, 2)
                batch[k] = (
                    engine.last_batch(k, 1).reshape(rows, *self._label_shapes[k]),
                    engine.last_batch(k, 0).reshape(rows, *self._output_shapes()[k]),
                    w if len(w) else None,
                )
            y, out, w = batch[k]
            m.update_state(y, out, w if weighted else None)

    def _evaluate_source(self, source, steps=None, class_weight=None):
        """evaluate's engine result over `steps` batches of `source` (all by default), in
        chunks, each going on from the counts of the one before."""
        feeder, states, result, what = Feeder(source.epoch(steps)), None, None, source.what
        self._reset_stateful()
        while (got := feeder.take()) is not None:
            x, y, w, batch_size, _ = got
            data = self._batch_data(x, y, w, class_weight, result is None, what)
            result, states = self._evaluate_rows(data, batch_size, states)
        if result is None:
            raise ValueError(f"`{what}` ({type(source.x).__name__}) gave no batches to evaluate")
        return result

    def _predict_training(self, x: Any) -> Any:
        """The outputs for x computed as in training, the whole batch as one step."""
        x, engine = self._inputs(x)
        return self._split_outputs(engine.predict(x, max(len(x), 1), True))

    def predict_on_batch(self, x: Any) -> Any:
        x, engine = self._inputs(x)
        return self._split_outputs(engine.predict(x, len(x)))

    def train_on_batch(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        class_weight: Mapping[int, float] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """One optimizer step on one batch; returns the loss (and metrics)."""
        self._check_ready("train_on_batch")
        x, engine = self._inputs(x)
        y = self._targets(y, len(x))
        w = self._weights_for(sample_weight, class_weight, y, len(x))
        self._set_metrics()
        loss, values, _, _, per_output = engine.fit_epoch(engine.dataset(x, y, w), len(x), False)
        self._reset_stateful()  # (Keras' reset_metrics=True)
        if self._out.stateful():
            self._update_stateful()
        return self._results((loss, values, per_output), return_dict)

    def gradients(
        self, x: Any, y: Any, sample_weight: Any = None
    ) -> tuple[float, list[np.ndarray]]:
        """Loss of one batch and the gradient of every trainable weight (Keras shapes), no
        update."""
        self._check_ready("gradients")
        x, engine = self._inputs(x)
        y = self._targets(y, len(x))
        w = self._weights_for(sample_weight, None, y, len(x))
        self._set_metrics()
        from ..models.engines import _param_views

        loss, flat = engine.gradients(x, y, w)
        return loss, [view for _, view, _ in _param_views(engine, flat)]
