"""What `compile` takes for a model's outputs, as Keras takes it (Keras keeps it in
`trainers/compile_utils.py`): each output's loss (or None: the output is not trained), its
weight and its metrics, given as one for every output, a list in the outputs' order, or a
dict by output name; and the names of the logs (`cls_loss`, `cls_accuracy`, ...)."""

from __future__ import annotations

import math

import numpy as np

from .. import losses
from .. import metrics as metrics_module
from .._registry import is_number

__all__ = ["CompiledOutputs", "per_output"]


def per_output(value, names: list[str], what: str, *, one_for_all: bool, lists=False) -> list:
    """`value` as one entry per output: a list or tuple of as many entries, in order; a dict
    by output name; None for every output; or, when `one_for_all` or the model has one
    output, `value` for every output. `lists`: an entry may itself be a list (metrics), so
    a model of one output takes a list as its one entry, and a dict may leave outputs out.
    A ValueError names the expected form."""
    n = len(names)
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown or (not lists and len(value) != n):
            raise ValueError(
                f"`{what}` as a dict takes the model's output names {names} as keys"
                f"{'' if lists else ' (all of them)'}. Received keys: {list(value)}"
            )
        return [value.get(k) for k in names]
    if isinstance(value, (list, tuple)) and not (lists and n == 1):
        if len(value) != n:
            raise ValueError(
                f"`{what}` as a list takes one entry per output of the model ({n}: {names}). "
                f"Received {len(value)}: {what}={value!r}"
            )
        return list(value)
    if one_for_all or n == 1 or value is None:
        return [value] * n
    raise ValueError(
        f"The model has {n} outputs {names}: pass `{what}` as a list of {n} entries (one per "
        f"output) or a dict by output name. Received: {what}={value!r}"
    )


def _metric_list(metrics) -> list:
    """One output's metrics (or weighted_metrics) as a list."""
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics) or not hasattr(metrics, "__iter__"):
        return [metrics]
    return list(metrics)


def _loss_weight(value, given) -> float:
    if value is None:
        return 1.0
    if not is_number(value) or not math.isfinite(value) or value < 0:
        hint = (
            " (compile's third argument is loss_weights, as in Keras: pass metrics=...)"
            if isinstance(value, str)
            else ""
        )
        raise ValueError(
            f"`loss_weights` must be a finite number >= 0 (one per output){hint}. Received: "
            f"loss_weights={given!r}"
        )
    return float(value)


def wrapped_functions(value, out: CompiledOutputs):
    """compile's argument `value` (a loss, a metric, or lists and dicts of them) with each
    function replaced by the wrapper that traced it in `out` (what pickling a model keeps:
    the wrappers carry their programs, and their functions where pickle can)."""
    from ..layers.ops_layers import TracedFunction

    wrappers = [*out.losses, *(m for m, *_ in out.metrics)]
    by_function = {
        id(w.fn): w for w in wrappers if isinstance(w, TracedFunction) and w.fn is not None
    }

    def swap(v):
        if isinstance(v, (list, tuple)):
            return type(v)(swap(x) for x in v)
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        return by_function.get(id(v), v)

    return swap(value)


def _stateful(metric) -> bool:
    return isinstance(metric, metrics_module.Metric) and metric._stateful()


class CompiledOutputs:
    """compile's arguments per output of a model whose outputs are named `names`. The logs
    name an output's loss and metrics after it ("cls_loss", "cls_accuracy") where the outputs
    are `named` (a functional model's); a subclassed model's are not (Keras knows their names
    only once called), and the logs name them as Keras does then: "<loss name>_loss", and
    the metrics by their own names.

    Attributes:
        losses: Each output's `deepcore.losses.Loss`, or None (not trained).
        weights: Each output's loss weight.
        metrics: The metrics, flat: (metric, weighted, output index, log name).
    """

    def __init__(self, names, loss, loss_weights, metrics, weighted_metrics, named=True):
        self.names = list(names)
        n = len(self.names)
        given = per_output(loss, self.names, "loss", one_for_all=True)
        self.losses = [None if g is None else losses.get(g) for g in given]
        self._loss_logs = [
            f"{self.names[k] if named else g if isinstance(g, str) else fn.name}_loss"
            for k, (g, fn) in enumerate(zip(given, self.losses))
        ]
        for fn in self.losses:
            if fn is not None and fn.reduction in ("none", None):
                raise ValueError(
                    f"compile needs a loss that reduces to one number per batch. Received "
                    f"{fn.name!r} with reduction={fn.reduction!r}; use "
                    "'sum_over_batch_size' (the mean) or 'sum'."
                )
        weights = per_output(loss_weights, self.names, "loss_weights", one_for_all=False)
        self.weights = [_loss_weight(w, loss_weights) for w in weights]
        plain = per_output(metrics, self.names, "metrics", one_for_all=False, lists=True)
        weighted = per_output(
            weighted_metrics, self.names, "weighted_metrics", one_for_all=False, lists=True
        )
        self.metrics = []
        for k, (p, w) in enumerate(zip(plain, weighted)):
            p, w = _metric_list(p), _metric_list(w)
            found = [metrics_module.get(m) for m in p + w]
            names = [metrics_module.name_of(m) for m in found]
            for i, (m, name) in enumerate(zip(found, names)):
                is_weighted = i >= len(p)
                if is_weighted and name in names[: len(p)]:
                    name = f"weighted_{name}"
                if n > 1 and named:
                    name = f"{self.names[k]}_{name}"
                self.metrics.append((m, is_weighted, k, name))

    @property
    def trained(self) -> bool:
        """Whether some output has a loss."""
        return any(fn is not None for fn in self.losses)

    def loss_names(self) -> list[str]:
        """The logs of each output's loss (Keras': when more than one output has a loss)."""
        trained = [k for k, fn in enumerate(self.losses) if fn is not None]
        return [self._loss_logs[k] for k in trained] if len(trained) > 1 else []

    def log_names(self) -> list:
        """The names of the logs (see names_and_values)."""
        return ["loss", *self.loss_names(), *(name for *_, name in self.metrics)]

    def names_and_values(self, loss, values, output_losses) -> tuple[list, list]:
        """An engine run's results as Keras reports them: loss, each output's (where more
        than one output has one), the metrics; and their names."""
        trained = [k for k, fn in enumerate(self.losses) if fn is not None]
        per_output = [output_losses[k] for k in trained] if len(trained) > 1 else []
        names = self.log_names()
        engine_values = iter(values)  # (the engine's: all but the stateful metrics')
        values = [
            float(np.asarray(m.result())) if _stateful(m) else next(engine_values)
            for m, *_ in self.metrics
        ]
        return names, [loss, *per_output, *values]

    def stateful(self) -> list:
        """(metric, weighted, output) of each metric Python computes (Keras' subclasses)."""
        return [(m, weighted, k) for m, weighted, k, _ in self.metrics if _stateful(m)]

    def logs(self, loss, values, output_losses) -> dict:
        """An engine run's results as Keras logs them (see names_and_values)."""
        return dict(zip(*self.names_and_values(loss, values, output_losses)))
