"""Keras' preprocessing layers for numbers and categories: Normalization, Rescaling,
CategoryEncoding and Discretization. They run in the engine as the other layers do (so a
saved model carries its preprocessing); `adapt` computes their statistics from data on the
host, streamed over batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import _core, initializers
from .._registry import check_bool, check_number, check_positive_int, is_int, is_number
from .core import EagerArray, InputLayer, Layer
from .ops_layers import Program

__all__ = ["Normalization", "Rescaling", "CategoryEncoding", "Discretization"]

_ADAPT_ROWS = 1 << 16  # rows of an array adapted at a time (float64 copies of this many)


def _batches(data: Any, owner: str, steps: int | None = None) -> Iterator[np.ndarray]:
    """The x of each batch of `data` as a float64 array: an array (or what np.asarray takes)
    in slices of _ADAPT_ROWS rows; a PyDataset, a DataLoader, a generator or a list of
    arrays batch by batch (x of an (x, y) batch), `steps` batches at most."""
    from ..trainers.data_sources import BatchSource, is_source, standardize

    if isinstance(data, (list, tuple)) and data and all(hasattr(b, "shape") for b in data):
        source: Iterable = iter(data)
    elif is_source(data):
        source = BatchSource(data, "data").epoch(steps)
    else:
        x = np.asarray(data)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{owner}: adapt expects numbers. Received data of dtype {x.dtype}")
        if x.size == 0:
            raise ValueError(f"{owner}: adapt received no data (shape {x.shape}).")
        for start in range(0, len(x), _ADAPT_ROWS):
            yield x[start : start + _ADAPT_ROWS].astype(np.float64)
        return
    seen = 0
    for batch in source:
        if steps is not None and seen >= steps:
            break
        x = batch if isinstance(batch, np.ndarray) else standardize(batch, f"{owner}: adapt")[0]
        if isinstance(x, (list, dict)):
            raise ValueError(f"{owner}: adapt takes batches of one array, received several.")
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{owner}: adapt expects numbers. Received a batch of dtype {x.dtype}")
        seen += 1
        yield x.astype(np.float64)
    if seen == 0:
        raise ValueError(f"{owner}: adapt received an empty dataset (no batches).")


def _floats(value, name: str, owner: str, low: float | None = None) -> np.ndarray:
    """`value` as a non-empty float32 array of finite numbers (>= low when given), or a
    ValueError naming the owner and the argument."""
    try:
        v = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        v = np.zeros(0, np.float32)
    if v.size == 0 or not np.isfinite(v).all() or (low is not None and (v < low).any()):
        bound = "" if low is None else f" >= {low}"
        raise ValueError(f"{owner}: `{name}` must be finite numbers{bound}. Received: {value!r}")
    return v


def _build_alone(layer: Layer, shape: tuple) -> None:
    """Gives a layer outside a model weights of its own for samples of `shape` (as a first
    call on data does): a one-layer model's, which the layer brings into a model it joins."""
    from ..models.sequential import Sequential

    layer._call_model = Sequential([InputLayer(shape=shape), layer], name=f"{layer.name}_adapt")
    layer._call_model.build()


class _ProgramLayer(Layer):
    """A layer that is a fixed program of ops (ops_layers.Program) in the engine."""

    def _program(self) -> Program:
        raise NotImplementedError

    def add_to(self, engine: _core.Model) -> None:
        engine.add_ops(*self._program().spec())


class Rescaling(_ProgramLayer):
    """`inputs * scale + offset` (Keras' Rescaling): `Rescaling(1 / 255)` maps 8-bit pixels
    to 0..1, `Rescaling(1 / 127.5, offset=-1)` to -1..1.

    Args:
        scale: A number, or values broadcast against each sample from its last axis (one
            per channel, say).
        offset: The same, added after the product.
    """

    def __init__(self, scale: ArrayLike, offset: ArrayLike = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = _floats(scale, "scale", self._owner)
        self.offset = _floats(offset, "offset", self._owner)

    def _program(self) -> Program:
        steps = [
            {"kind": "binary", "op": "multiply", "a": 0, "b": 1},
            {"kind": "binary", "op": "add", "a": 3, "b": 2},
        ]
        return Program(1, [self.scale, self.offset], steps)

    def get_config(self) -> dict[str, Any]:
        def plain(v: np.ndarray):
            return float(v) if v.ndim == 0 else v.tolist()

        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}


class Normalization(Layer):
    """Standardizes inputs with a mean and variance (Keras' Normalization):
    `(x - mean) / max(sqrt(variance), 1e-7)`, or with `invert=True`
    `x * max(sqrt(variance), 1e-7) + mean`.

    The statistics are given, or computed by `adapt(data)` (then they are the layer's
    non-trainable weights mean, variance and count, saved with the model, as in Keras).

    Args:
        axis: The axis or axes (the batch axis is 0) with a mean and variance per position;
            the others are averaged over. -1 (default): one per feature of the last axis;
            None: one mean and variance for all values.
        mean: Fixed mean (with `variance`): a number or an array broadcast to the kept axes.
        variance: Fixed variance, the same shape as `mean`.
        invert: Whether to undo the normalization instead.
    """

    def __init__(
        self,
        axis: int | Sequence[int] | None = -1,
        mean: ArrayLike | None = None,
        variance: ArrayLike | None = None,
        invert: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        axes = () if axis is None else (axis,) if not isinstance(axis, (list, tuple)) else axis
        for a in axes:
            if not is_int(a, -64, 64) or a == 0:
                raise ValueError(
                    f"{self._owner}: `axis` must be None or axes of the inputs other than the "
                    f"batch axis 0 (-1 is the last). Received: axis={axis!r}"
                )
        self.axis = tuple(int(a) for a in axes)
        self.invert = check_bool("invert", invert, self._owner)
        if (mean is None) != (variance is None):
            raise ValueError(
                f"{self._owner}: when setting values directly, both `mean` and `variance` must "
                f"be set. Received: mean={mean!r} and variance={variance!r}"
            )
        self.input_mean = None if mean is None else _floats(mean, "mean", self._owner)
        self.input_variance = (
            None if variance is None else _floats(variance, "variance", self._owner, low=0.0)
        )
        if self.input_mean is not None:
            if self.input_mean.shape != self.input_variance.shape:  # type: ignore[union-attr]
                raise ValueError(
                    f"{self._owner}: `mean` and `variance` must have the same shape. Received "
                    f"shapes {self.input_mean.shape} and {self.input_variance.shape}"  # type: ignore[union-attr]
                )
            if self.input_mean.ndim > len(self.axis):
                raise ValueError(
                    f"{self._owner}: `mean` has {self.input_mean.ndim} axes, more than the "
                    f"{len(self.axis)} kept (axis={self.axis}). Received shape "
                    f"{self.input_mean.shape}"
                )

    def _sample_axes(self) -> list[int]:
        """The kept axes counted in a sample (without the batch axis)."""
        return [a - 1 if a > 0 else a for a in self.axis]

    def add_to(self, engine: _core.Model) -> None:
        fixed = [
            None if v is None else _core.OpConstant(list(v.shape), v.ravel().tolist())
            for v in (self.input_mean, self.input_variance)
        ]
        engine.add_normalization(self._sample_axes(), self.invert, *fixed)

    def weight_settings(self) -> list[tuple]:
        if self.input_mean is not None:
            return []
        zeros, ones = initializers.get("zeros"), initializers.get("ones")
        return [(zeros, None), (ones, None), (zeros, None)]

    def weight_names(self) -> list[str]:
        return [] if self.input_mean is not None else ["mean", "variance", "count"]

    def initialize(self) -> None:
        if getattr(self, "_adapted_shape", None) is not None:
            raise ValueError(
                f"{self._owner} was adapted to samples of shape {self._adapted_shape}, which "
                f"do not fit this model's (its mean and variance would have shape "
                f"{tuple(v.shape for v in self._views)[0]}); adapt it to data of the model's shape."
            )
        super().initialize()

    def _mask_role(self) -> str:
        return "pass"

    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Computes the mean and variance of `data` over the axes not kept, streaming its
        batches (float64 sums, merged batch by batch: memory bounded by one batch).

        Args:
            data: An array; or batches: a PyDataset (as `fit` takes it), a DataLoader, a
                generator or a list of arrays (of an (x, y) batch, x is used).
            steps: The number of batches to use at most (all by default).
        """
        if self.input_mean is not None:
            raise ValueError(
                f"{self._owner} was given its mean and variance; adapt a Normalization "
                "created without them."
            )
        moments: _Moments | None = None
        for x in _batches(data, self._owner, steps):
            if x.ndim == 1:  # one value per sample: samples of shape (1,), as fit reads them
                x = x[:, None]
            if x.ndim < 1 or (self.axis and x.ndim < 2):
                raise ValueError(
                    f"{self._owner}: adapt expects batches with a batch axis first; received "
                    f"data of shape {x.shape}."
                )
            if moments is None:
                moments = _Moments(x.shape[1:], self._kept(x.ndim))
            elif x.shape[1:] != moments.shape:
                raise ValueError(
                    f"{self._owner}: adapt received batches of samples of shapes "
                    f"{moments.shape} and {x.shape[1:]}"
                )
            moments.add(x)
        if moments is None or moments.count == 0:
            raise ValueError(f"{self._owner}: adapt received no samples.")
        weights = [*moments.mean_and_variance(), np.zeros(())]
        if not self._views or [v.shape for v in self._views] != [w.shape for w in weights]:
            self._adapted_shape = None
            _build_alone(self, moments.shape)
        self.set_weights(weights)
        self._adapted_shape = (None, *moments.shape)

    @property
    def mean(self) -> EagerArray | None:
        """The mean in Keras' broadcast shape (1 along the averaged axes), or None before
        adapt (or build) when not given."""
        return self._statistic(0)

    @property
    def variance(self) -> EagerArray | None:
        """The variance, as `mean`."""
        return self._statistic(1)

    def _statistic(self, k: int) -> EagerArray | None:
        value: np.ndarray
        if self.input_mean is not None and self.input_variance is not None:
            value = (self.input_mean, self.input_variance)[k]
        elif self._views:
            value = self._views[k].copy()
        else:
            return None
        shape = getattr(self, "_adapted_shape", None)
        if shape is not None and value.ndim:  # (1 along the axes averaged over)
            keep = self._kept(len(shape))
            value = value.reshape([shape[d] if d in keep else 1 for d in range(len(shape))])
        return np.asarray(value, np.float32).view(EagerArray)

    def _kept(self, ndim: int) -> tuple[int, ...]:
        """The kept axes of batches of `ndim` axes (batch axis 0), or a ValueError."""
        keep = []
        for a in self.axis:
            if not -ndim <= a < ndim or (a % ndim) == 0:
                raise ValueError(
                    f"{self._owner}: axis {a} is not an axis of the samples of data with "
                    f"{ndim} axes (batch axis first)"
                )
            keep.append(a % ndim)
        return tuple(sorted(set(keep)))

    def get_config(self) -> dict[str, Any]:
        def plain(v):
            return None if v is None else v.tolist()

        return {
            **super().get_config(),
            "axis": self.axis[0] if len(self.axis) == 1 else (list(self.axis) or None),
            "invert": self.invert,
            "mean": plain(self.input_mean),
            "variance": plain(self.input_variance),
        }


class _Moments:
    """The count, mean and sum of squared deviations of batches over their axes not kept,
    in float64, merged batch by batch (Chan et al.'s pairwise update: exact to rounding
    however many rows)."""

    def __init__(self, shape: tuple[int, ...], keep: tuple[int, ...]) -> None:
        self.shape, self.keep = shape, keep
        self.count = 0
        self.mean = self.m2 = np.zeros(())

    def add(self, x: np.ndarray) -> None:
        reduce = tuple(d for d in range(x.ndim) if d not in self.keep)
        n = int(np.prod([x.shape[d] for d in reduce]))
        if n == 0:
            return
        mean = x.mean(axis=reduce, keepdims=True)
        m2 = ((x - mean) ** 2).sum(axis=reduce)
        mean = mean.reshape(m2.shape)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    def mean_and_variance(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mean.astype(np.float32), (self.m2 / self.count).astype(np.float32)


_OUTPUT_MODES = ("one_hot", "multi_hot", "count")


def _output_mode(value, owner: str, allowed: tuple[str, ...]) -> _core.OutputMode:
    if value == "binary":  # (Keras' old name)
        value = "multi_hot"
    if value not in allowed:
        raise ValueError(f"{owner}: `output_mode` must be one of {allowed}. Received: {value!r}")
    return _core.OutputMode.__members__[value]


def _no_sparse(sparse, owner: str) -> bool:
    if check_bool("sparse", sparse, owner):
        raise ValueError(f"{owner}: deepcore has no sparse tensors; use sparse=False.")
    return False


class CategoryEncoding(Layer):
    """Encodes integer categories 0..num_tokens-1 (Keras' CategoryEncoding).

    "one_hot": each value becomes a vector of num_tokens along a new last axis (a last axis
    of size 1 is replaced); "multi_hot": each sample's values along the last axis mark their
    categories in one vector; "count": the vector counts them. A value outside
    0..num_tokens-1 marks nothing (as in Keras). No gradient flows back.

    Args:
        num_tokens: The number of categories.
        output_mode: "multi_hot" (default, Keras'), "one_hot" or "count".
        sparse: Must be False (deepcore has no sparse tensors).
    """

    def __init__(
        self,
        num_tokens: int | None = None,
        output_mode: str = "multi_hot",
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_tokens is None:
            raise ValueError(f"{self._owner}: `num_tokens` must be set.")
        self.num_tokens = check_positive_int("num_tokens", num_tokens, self._owner)
        self._mode = _output_mode(output_mode, self._owner, _OUTPUT_MODES)
        self.output_mode = self._mode.name
        self.sparse = _no_sparse(sparse, self._owner)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_encoding(self.num_tokens, self._mode, [])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_tokens": self.num_tokens,
            "output_mode": self.output_mode,
            "sparse": False,
        }


class Discretization(Layer):
    """Buckets continuous values (Keras' Discretization): a value's bucket is the number of
    bin boundaries at or below it (`np.digitize`), output as it is ("int", as float32) or
    encoded over the buckets ("one_hot", "multi_hot", "count", as CategoryEncoding).

    Args:
        bin_boundaries: Sorted boundaries; or None with `num_bins` and `adapt`.
        num_bins: The number of buckets `adapt` makes (from quantiles of the data).
        epsilon: The quantiles' tolerance in `adapt` (Keras' summary algorithm).
        output_mode: "int" (default), "one_hot", "multi_hot" or "count".
        sparse: Must be False.
    """

    def __init__(
        self,
        bin_boundaries: Sequence[float] | None = None,
        num_bins: int | None = None,
        epsilon: float = 0.01,
        output_mode: str = "int",
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError(
                f"{self._owner}: set `num_bins` or `bin_boundaries`, not both. Received: "
                f"num_bins={num_bins!r} and bin_boundaries={bin_boundaries!r}"
            )
        if num_bins is None and bin_boundaries is None:
            raise ValueError(f"{self._owner}: set either `num_bins` or `bin_boundaries`.")
        self.num_bins = (
            None if num_bins is None else check_positive_int("num_bins", num_bins, self._owner)
        )
        self.epsilon = check_number("epsilon", epsilon, 0.0, False, 1.0, self._owner)
        self._mode = _output_mode(output_mode, self._owner, ("int", *_OUTPUT_MODES))
        self.output_mode = self._mode.name
        self.sparse = _no_sparse(sparse, self._owner)
        self.bin_boundaries = None if bin_boundaries is None else self._boundaries(bin_boundaries)

    def _boundaries(self, values) -> list[float]:
        b = np.asarray(values, dtype=np.float64)
        if b.ndim != 1 or not all(is_number(v) for v in b) or not np.isfinite(b).all():
            raise ValueError(
                f"{self._owner}: `bin_boundaries` must be a list of finite numbers. Received: "
                f"{values!r}"
            )
        if b.size == 0:
            raise ValueError(f"{self._owner}: `bin_boundaries` must hold at least one boundary.")
        if (np.diff(b) < 0).any():
            raise ValueError(
                f"{self._owner}: `bin_boundaries` must be sorted. Received: {values!r}"
            )
        return [float(v) for v in b]

    def add_to(self, engine: _core.Model) -> None:
        if self.bin_boundaries is None:
            raise ValueError(
                f"{self._owner} has no bin boundaries yet: pass `bin_boundaries` or call "
                "adapt(data) before using it."
            )
        engine.add_encoding(len(self.bin_boundaries) + 1, self._mode, self.bin_boundaries)

    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Sets the bin boundaries to `num_bins` quantiles of `data`, with Keras' summary
        algorithm (each batch summarized to about 1 / epsilon values and merged), so that
        the boundaries are Keras' own. Adapt before building the model that uses the layer.

        Args:
            data: An array, or batches (as `Normalization.adapt` takes them).
            steps: The number of batches to use at most.
        """
        if self.num_bins is None:
            raise ValueError(
                f"{self._owner} was given `bin_boundaries`; adapt a Discretization created with "
                "`num_bins`."
            )
        summary = np.zeros((2, 0), np.float32)
        if not isinstance(data, np.ndarray) and not _is_batches(data):
            data = np.asarray(data)
        if isinstance(data, np.ndarray):  # (Keras summarizes an array in one go)
            if data.size == 0:
                raise ValueError(f"{self._owner}: adapt received no data (shape {data.shape}).")
            summary = _merge(_summarize(data, self.epsilon), summary, self.epsilon)
        else:
            for x in _batches(data, self._owner, steps):
                summary = _merge(_summarize(x, self.epsilon), summary, self.epsilon)
        self.bin_boundaries = [float(v) for v in _compress(summary, 1.0 / self.num_bins)[0, :-1]]

    def get_config(self) -> dict[str, Any]:
        base = super().get_config()
        base.pop("trainable")  # (Keras' Discretization takes no `trainable`)
        return {
            **base,
            "bin_boundaries": self.bin_boundaries,
            "num_bins": self.num_bins,
            "epsilon": self.epsilon,
            "output_mode": self.output_mode,
            "sparse": False,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Discretization:
        config = dict(config)
        boundaries = config.get("bin_boundaries")
        if boundaries is not None and config.get("num_bins") is not None:
            config.pop("bin_boundaries")  # (an adapted layer: both are saved, as in Keras)
            layer = cls(**config)
            layer.bin_boundaries = layer._boundaries(boundaries)
            return layer
        return cls(**config)


def _is_batches(data) -> bool:
    from ..trainers.data_sources import is_source

    return is_source(data) or (
        isinstance(data, (list, tuple)) and bool(data) and all(hasattr(b, "shape") for b in data)
    )


# Keras' quantile summary (Discretization.adapt): values sorted and sampled about every
# len / (1 / epsilon) positions, each with the weight of the values it stands for; merged
# summaries are compressed back to about 1 / epsilon points by interpolating the cumulative
# weights. The same dtypes as Keras' (float32 summaries), so that the boundaries agree.
def _summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    values = np.sort(np.asarray(values, np.float32).reshape(-1))
    step = max(values.size / (1.0 / epsilon), 1)
    points = values[int(step - 1) :: int(step)]
    return np.stack([points, np.ones_like(points) * step])


def _merge(summary: np.ndarray, previous: np.ndarray, epsilon: float) -> np.ndarray:
    merged = np.concatenate((summary, previous), axis=1)
    return _compress(merged[:, np.argsort(merged[0])], epsilon)


def _compress(summary: np.ndarray, epsilon: float) -> np.ndarray:
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cumulative = summary[1].cumsum()
    fractions = cumulative / cumulative[-1]
    points = np.interp(percents, fractions, summary[0])
    cumulative = np.interp(percents, fractions, cumulative)
    weights = cumulative - np.concatenate((np.array([0]), cumulative[:-1]))
    return np.stack((points, weights)).astype(np.float32)
