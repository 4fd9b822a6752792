"""The data a model takes (Keras keeps its adapters in `trainers/data_adapters/`): NumPy
arrays (and what `np.asarray` takes) checked against the model's input and output and
converted once to the engine's float32 rows; sample and class weights; the validation
split."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _core, utils
from .compile_utils import per_output

__all__ = ["ArrayData"]

_CLASS_LOSSES = (
    _core.Loss.binary_crossentropy,
    _core.Loss.categorical_crossentropy,
    _core.Loss.sparse_categorical_crossentropy,
    _core.Loss.hinge,
)


class InputArrays:
    """A model of several inputs' data: one float32 array per input (a row per sample),
    handed to the engine as they are (no copy joins them side by side). Behaves as the
    data's rows: `len`, and rows selected by an index or a slice."""

    def __init__(self, arrays):
        self._arrays = list(arrays)

    def __len__(self) -> int:
        return len(self._arrays[0])

    def __getitem__(self, rows) -> InputArrays:
        return InputArrays([np.ascontiguousarray(a[rows]) for a in self._arrays])


def _one_weight(values, name: str, n: int):
    """Sample weights: n finite numbers >= 0, as float32."""
    w = utils.as_weights(values, name)
    if w.shape != (n,):
        raise ValueError(
            f"`{name}` must have one value per sample: expected shape ({n},), received "
            f"{np.shape(values)}."
        )
    return w


class ArrayData:
    """A model's checks and conversions of inputs, targets and weights."""

    if TYPE_CHECKING:  # (the model's, set in models/model.py)
        name: str
        _layers: list
        _out: Any

        def _output_names(self) -> list[str]: ...
        def _output_shapes(self) -> list[tuple]: ...

    def _preparer(self, j: int):
        """The layer reading input j may take inputs of its own kind (an Embedding's integer
        indices): its prepare_inputs checks and converts them to the engine's float32."""
        return getattr(self._layers[0], "prepare_inputs", None) if self._layers else None

    def _inputs(self, x, name="x"):
        prepare = self._preparer(0)
        if prepare is not None:
            x = prepare(x, name)
        engine = self._engine
        if (
            engine is not None
            and type(x) is np.ndarray
            and x.dtype == np.float32
            and x.flags["CA"]  # C-contiguous and aligned
            and x.shape[1:] == self._input_shape
            and len(x)
            and _core.all_finite(x)
        ):
            self._take_layers()
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
            try:
                self.build()
            except ValueError:
                self._input_shape = None  # the data's shape was wrong, not the model
                raise
        engine = self._require_engine("fit")
        if x.ndim == 1 and tuple(self._input_shape) == (1,):
            x = x[:, None]  # one value per sample for inputs of shape (1,), as Keras reads it
        if x.shape[1:] != tuple(self._input_shape):
            first = self._layers[0]
            raise ValueError(
                f"Input of layer {first.name!r} (first layer of {self.name!r}) is incompatible: "
                f"expected shape {(None, *self._input_shape)}, received {x.shape}."
            )
        return x, engine

    def _targets(self, y, n: int, name="y"):
        """The labels as the engine takes them: one output's converted by its loss (the
        model's `_label_shapes` record their shapes); several outputs' (a list in their order
        or a dict by name) converted each and flattened side by side in one float32 array."""
        if y is None:
            raise ValueError(f"`{name}` is required to train or evaluate. Received: {name}=None")
        names = self._output_names()
        if len(names) == 1:
            if isinstance(y, dict) and list(y) == names:
                y = y[names[0]]
            y = self._output_targets(y, n, name, 0)
            self._label_shapes = [y.shape[1:]]
            return y
        if isinstance(y, dict):  # (outputs left out: None)
            ys = per_output(y, names, name, one_for_all=False, lists=True)
            where = [f"{name}[{k!r}]" for k in names]
        elif isinstance(y, (list, tuple)) and len(y) == len(names):
            ys, where = list(y), [f"{name}[{k}]" for k in range(len(names))]
        else:
            raise ValueError(
                f"Model {self.name!r} has {len(names)} outputs {names}: pass `{name}` as a list "
                f"of {len(names)} arrays or a dict by output name. Received: {type(y).__name__}"
                + (f" of {len(y)}" if isinstance(y, (list, tuple)) else "")
            )
        used = {k for _, _, k, _ in self._out.metrics}
        arrays = []
        for k, (yk, at) in enumerate(zip(ys, where)):
            if yk is None:
                if self._out.losses[k] is not None or k in used:
                    raise ValueError(
                        f"`{name}` has no labels for output {names[k]!r}, which has a loss or "
                        "metrics."
                    )
                yk = np.zeros((n, *self._output_shapes()[k]), np.float32)  # (never read)
            arrays.append(self._output_targets(yk, n, at, k))
        self._label_shapes = [a.shape[1:] for a in arrays]
        return np.ascontiguousarray(
            np.concatenate([a.reshape(n, -1) for a in arrays], axis=1), dtype=np.float32
        )

    def _output_targets(self, y, n: int, name: str, k: int):
        """Output k's labels, checked against its shape and converted by its loss."""
        y = utils.as_float_array(y, name)
        if len(y) != n:
            raise ValueError(
                f"x and {name} must have the same number of samples. "
                f"Received: x has {n}, {name} has {len(y)}."
            )
        out = self._output_shapes()[k]
        loss = self._out.losses[k]
        if loss is not None and loss.custom:  # its function takes the labels as they are
            from ..losses import _same_rank

            y, _ = _same_rank(y, np.zeros((1, *out), np.float32))
            return np.ascontiguousarray(y, np.float32)
        if loss is not None and loss.sparse:
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
                what = f"Loss {loss.name!r} expects" if loss else "Output labels must have"
                raise ValueError(
                    f"{what} {name} of shape {expected} to match the model "
                    f"output. Received: {name}.shape={y.shape}.{hint}"
                )
        if loss is not None:
            y = loss.prepare_targets(y)
        return np.ascontiguousarray(y, np.float32)

    def _weights_for(self, sample_weight, class_weight, y, n):
        names = self._output_names()
        if len(names) > 1:
            return self._output_weights(sample_weight, class_weight, names, n)
        w = None
        if isinstance(sample_weight, dict) and list(sample_weight) == names:
            sample_weight = sample_weight[names[0]]
        if sample_weight is not None:
            w = _one_weight(sample_weight, "sample_weight", n)
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(
                    "`class_weight` must be a dict {class: weight}. "
                    f"Received: class_weight={class_weight!r}"
                )
            keys = list(class_weight)  # the same check as sample weights, for every class
            table = dict(zip(keys, utils.as_weights(class_weight.values(), "class_weight", keys)))
            labels = self._class_labels(y)
            if labels is None:  # soft or float targets: Keras' argmax, or the rounded value
                flat = y.reshape(n, -1)
                labels = (flat.argmax(axis=1) if flat.shape[1] > 1 else flat[:, 0].round()).astype(
                    np.int64
                )
            classes, inverse = np.unique(labels, return_inverse=True)
            try:
                per_class = np.array([table[int(c)] for c in classes], dtype=np.float32)
            except KeyError as e:
                raise ValueError(
                    f"`class_weight` has no entry for class {e.args[0]}. "
                    f"Received keys: {sorted(class_weight)}"
                ) from None
            cw = per_class[inverse.reshape(-1)]
            w = cw if w is None else w * cw
        return w

    def _output_weights(self, sample_weight, class_weight, names, n):
        """A model of several outputs: one array of sample weights for all, or one per
        output (a list in their order or a dict by name; None: weights of 1), as an
        (n, outputs) array."""
        if class_weight is not None:
            raise ValueError(
                f"`class_weight` applies to a model of one output; model {self.name!r} has "
                f"{len(names)} {names}. Pass per-output `sample_weight` instead."
            )
        if sample_weight is None:
            return None
        if not isinstance(sample_weight, (list, tuple, dict)):
            return _one_weight(sample_weight, "sample_weight", n)
        if isinstance(sample_weight, dict):  # (outputs left out: None)
            given = per_output(sample_weight, names, "sample_weight", one_for_all=False, lists=True)
        elif len(sample_weight) == len(names) and not all(np.ndim(v) == 0 for v in sample_weight):
            given = list(sample_weight)
        else:
            return _one_weight(sample_weight, "sample_weight", n)
        columns = [
            np.ones(n, np.float32) if v is None else _one_weight(v, f"sample_weight[{k!r}]", n)
            for k, v in zip(names, given)
        ]
        return np.ascontiguousarray(np.stack(columns, axis=1), dtype=np.float32)

    def _split(self, x, y, w, fraction, mode):
        """(x, y, w) of the training part and of the validation part."""
        n = len(x)
        n_train = int(n * (1.0 - fraction))
        if n_train <= 0 or n_train >= n:
            raise ValueError(
                f"validation_split={fraction} leaves an empty training "
                f"or validation set for {n} samples."
            )
        labels = self._class_labels(y)
        if mode == "stratify" and labels is None:
            raise ValueError(
                "validation_split_mode='stratify' needs class labels: integer labels, "
                "one-hot rows or binary 0/1 labels, one per sample. Received targets of "
                f"shape {y.shape}; use validation_split_mode='shuffle' for other targets."
            )
        if mode == "last":
            train, val = slice(0, n_train), slice(n_train, n)
        elif mode == "shuffle":
            order = utils.rng().permutation(n)
            train, val = np.sort(order[:n_train]), np.sort(order[n_train:])
        else:
            classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
            inverse = inverse.reshape(-1)
            # rows per class for validation: proportional, largest remainders (ties at
            # random) so that the total is n - n_train; every class keeps a training row
            ideal = counts * ((n - n_train) / n)
            take = np.floor(ideal).astype(np.int64)
            extra = (n - n_train) - int(take.sum())
            if extra > 0:
                rank = np.lexsort((utils.rng().random(len(classes)), -(ideal - take)))
                take[rank[:extra]] += 1
            take = np.clip(take, 0, counts - 1)
            order = utils.rng().permutation(n)
            order = order[np.argsort(inverse[order], kind="stable")]  # by class, random within
            first = np.concatenate(([0], np.cumsum(counts)[:-1]))
            position = np.arange(n) - first[inverse[order]]
            is_val = np.zeros(n, dtype=bool)
            is_val[order[position < take[inverse[order]]]] = True
            train, val = np.flatnonzero(~is_val), np.flatnonzero(is_val)
        if labels is not None and (
            self._out.losses[0].kind in _CLASS_LOSSES or (y.ndim == 2 and y.shape[1] > 1)
        ):
            missing = np.setdiff1d(np.unique(labels[val]), np.unique(labels[train]))
            if missing.size:
                shown = ", ".join(str(int(c)) for c in missing[:10])
                if missing.size > 10:
                    shown += f", ... ({missing.size} classes)"
                hint = (
                    " Keras' 'last' mode takes the last rows before any shuffling, so "
                    "data sorted by label puts whole classes there."
                    if mode == "last"
                    else ""
                )
                warnings.warn(
                    f"validation_split={fraction} (validation_split_mode={mode!r}) puts "
                    f"class(es) {shown} in the validation part only: the model never "
                    f"trains on them.{hint} Use validation_split_mode='stratify', or "
                    "shuffle the rows before fit.",
                    UserWarning,
                    stacklevel=3,
                )

        def part(rows):
            return x[rows], y[rows], None if w is None else w[rows]

        return part(train), part(val)

    def _class_labels(self, y):
        """One integer class per sample, or None when the targets are not class labels (or
        are several outputs')."""
        if len(self._label_shapes) > 1:
            return None
        n = len(y)
        flat = y.reshape(n, -1)
        if flat.shape[1] == 1:
            v = flat[:, 0]
            if not np.array_equal(v, np.round(v)):
                return None
            if self._out.losses[0].kind == _core.Loss.hinge and np.isin(v, (-1.0, 1.0)).all():
                v = v > 0  # hinge's targets were mapped from {0, 1} to {-1, 1}
            return v.astype(np.int64)
        if y.ndim == 2 and np.isin(flat, (0.0, 1.0)).all() and (flat.sum(axis=1) == 1).all():
            return flat.argmax(axis=1)
        return None
