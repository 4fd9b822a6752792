"""Sliding windows over a time series, as `keras.utils.timeseries_dataset_from_array`."""

from __future__ import annotations

from typing import overload

import numpy as np
from numpy.typing import ArrayLike

from .._registry import check_int, check_positive_int

__all__ = ["timeseries_dataset_from_array", "timeseries_windows", "TimeseriesDataset"]


class TimeseriesDataset:
    """The batches of windows of `timeseries_dataset_from_array`: a list-like object.

    `len(ds)` is the number of batches, `ds[i]` the i-th batch (negative indices count from
    the end), and `for x, y in ds:` (or `for x in ds:` without targets) walks them in order.
    Every batch is computed when asked for, from the arrays the dataset keeps; the order of
    the windows is fixed when the dataset is made (shuffled once with `shuffle=True`).

    Attributes:
        start_positions: int64 array: the first step of each window, relative to
            `start_index`, in the order the windows come.
        batch_size: Windows per batch (the last batch may hold fewer), or None: then each
            item is one window (and its target) without a batch axis.
    """

    def __init__(
        self,
        data: np.ndarray,
        targets: np.ndarray | None,
        positions: np.ndarray,
        offsets: np.ndarray,
        start_index: int,
        batch_size: int | None,
    ) -> None:
        self._data = data
        self._targets = targets
        self._offsets = offsets
        self._start = start_index
        self.start_positions = positions
        self.batch_size = batch_size

    @property
    def num_windows(self) -> int:
        """How many windows the dataset holds (over all batches)."""
        return len(self.start_positions)

    def __len__(self) -> int:
        if self.batch_size is None:
            return self.num_windows
        return -(-self.num_windows // self.batch_size)

    def _take(self, positions: np.ndarray):
        first = self._start + positions
        x = self._data[first[..., None] + self._offsets]
        if self._targets is None:
            return x
        return x, self._targets[first]

    def __getitem__(self, index):
        n = len(self)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"A TimeseriesDataset is indexed by an int. Received: {index!r}")
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"batch index {index} out of range for {n} batches")
        if self.batch_size is None:
            return self._take(self.start_positions[i])
        return self._take(self.start_positions[i * self.batch_size : (i + 1) * self.batch_size])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def arrays(self) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """All windows at once in the dataset's order: `(x, y)`, or `x` without targets,
        with `x` of shape `(num_windows, sequence_length) + data.shape[1:]`: the arrays
        to give `fit`."""
        return self._take(self.start_positions)

    def __repr__(self) -> str:
        return (
            f"TimeseriesDataset({self.num_windows} windows, batch_size={self.batch_size}, "
            f"{len(self)} batches)"
        )


def _as_series(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        raise ValueError(
            f"`{name}` must be an array whose axis 0 is time. Received a scalar: {arr!r}"
        )
    return arr


def timeseries_dataset_from_array(
    data: ArrayLike,
    targets: ArrayLike | None,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> TimeseriesDataset:
    """Batches of sliding windows over a time series, as
    `keras.utils.timeseries_dataset_from_array`.

    The windows start at `data[start_index + p]` for `p = 0, sequence_stride,
    2 * sequence_stride, ...` and take the steps `p, p + sampling_rate, ...,
    p + (sequence_length - 1) * sampling_rate` (relative to `start_index`); only steps before
    `end_index` are used, so a window that would reach past it is left out. With targets,
    `targets[start_index + p]` goes with the window starting at `data[start_index + p]`,
    and there are at most `len(targets)` windows. To predict the step after each window of
    10: `timeseries_dataset_from_array(series[:-10], series[10:], 10)`.

    Args:
        data: Array (or list) whose axis 0 is time; any further axes are features.
        targets: Array whose axis 0 matches `data`'s steps, or None (then the dataset yields
            only windows).
        sequence_length: Steps per window, an int >= 1.
        sequence_stride: Steps between the starts of two consecutive windows.
        sampling_rate: Steps between two consecutive steps of a window.
        batch_size: Windows per batch (the last batch may hold fewer); None yields single
            windows without a batch axis.
        shuffle: Whether to shuffle the windows (once, when the dataset is made).
        seed: Seed of the shuffle; drawn from deepcore's generator (see
            `deepcore.utils.set_random_seed`) when None.
        start_index, end_index: Only steps `start_index <= t < end_index` of `data` are used.

    Returns:
        A `TimeseriesDataset`: `len(ds)` batches, `ds[i]`, `for x, y in ds:` with NumPy
        arrays `x` of shape `(batch, sequence_length) + data.shape[1:]` (and `data`'s
        dtype) and `y` of shape `(batch,) + targets.shape[1:]`; `ds.arrays()` gives all the
        windows at once (see also `timeseries_windows`).

    Raises:
        ValueError: as Keras: `start_index` < 0 or >= len(data); `end_index` <= 0, <=
            `start_index` or >= len(data); `sampling_rate` or `sequence_stride` < 1 or >=
            len(data). deepcore also checks that every argument is an int of its range
            (`sequence_length` >= 1) and that `targets` holds the target of every window
            (Keras fails inside TensorFlow).

    Differences from Keras: the batches are NumPy arrays in a list-like object instead of a
    `tf.data.Dataset`. With `shuffle=True` the windows come in the order of Keras' first
    shuffle (`np.random.RandomState(seed).shuffle` of the start positions); Keras then also
    shuffles within a buffer of `8 * batch_size` windows at every pass, which deepcore does
    not (`fit` shuffles its rows itself). `end_index=0` is an error (Keras ignores it).
    """
    data = _as_series("data", data)
    n = len(data)
    if targets is not None:
        targets = _as_series("targets", targets)
    sequence_length = check_positive_int("sequence_length", sequence_length)
    if start_index is not None:
        start_index = check_int("start_index", start_index, 0)
        if start_index and start_index >= n:
            raise ValueError(
                "`start_index` must be lower than the length of the data. Received: "
                f"start_index={start_index}, for data of length {n}"
            )
    if end_index is not None:
        if not isinstance(end_index, (int, np.integer)) or isinstance(end_index, bool):
            raise ValueError(f"`end_index` must be an integer. Received: end_index={end_index!r}")
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: end_index={end_index}")
        if start_index and end_index <= start_index:
            raise ValueError(
                "`end_index` must be higher than `start_index`. Received: "
                f"start_index={start_index}, and end_index={end_index}"
            )
        if end_index >= n:
            raise ValueError(
                "`end_index` must be lower than the length of the data. Received: "
                f"end_index={end_index}, for data of length {n}"
            )
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        value = check_positive_int(name, value)
        if value >= n:
            raise ValueError(
                f"`{name}` must be lower than the length of the data. Received: "
                f"{name}={value}, for data of length {n}"
            )
    sampling_rate, sequence_stride = int(sampling_rate), int(sequence_stride)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    if seed is not None:
        seed = check_int("seed", seed, 0, 2**32 - 1)

    start = 0 if start_index is None else int(start_index)
    end = n if end_index is None else int(end_index)
    num_windows = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        num_windows = min(num_windows, len(targets))
    positions = np.arange(0, max(num_windows, 0), sequence_stride, dtype=np.int64)
    if targets is not None and positions.size and start + positions[-1] >= len(targets):
        raise ValueError(
            f"`targets` is too short: the window starting at data[{start + positions[-1]}] "
            f"needs targets[{start + positions[-1]}], and targets has length {len(targets)} "
            "(targets[i] goes with the window that starts at data[i])"
        )
    if shuffle:
        if seed is None:
            from . import rng

            seed = int(rng().integers(1_000_000))
        np.random.RandomState(seed).shuffle(positions)
    offsets = np.arange(sequence_length, dtype=np.int64) * sampling_rate
    return TimeseriesDataset(data, targets, positions, offsets, start, batch_size)


@overload
def timeseries_windows(
    data: ArrayLike,
    targets: None,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    start_index: int | None = None,
    end_index: int | None = None,
) -> np.ndarray: ...
@overload
def timeseries_windows(
    data: ArrayLike,
    targets: ArrayLike,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    start_index: int | None = None,
    end_index: int | None = None,
) -> tuple[np.ndarray, np.ndarray]: ...
def timeseries_windows(
    data: ArrayLike,
    targets: ArrayLike | None,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    start_index: int | None = None,
    end_index: int | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """All the windows of `timeseries_dataset_from_array` (same arguments and meaning) as
    arrays for `fit`, in time order.

    Returns:
        `(x, y)`, or `x` when `targets` is None: `x` of shape
        `(num_windows, sequence_length) + data.shape[1:]`, `y` of shape
        `(num_windows,) + targets.shape[1:]`, where `y[k]` is the target of window `x[k]`.

    Example: to predict each step from the 3 before it,
    `x, y = timeseries_windows(series[:-3], series[3:], sequence_length=3)` gives
    `x[0] = series[0:3]` and `y[0] = series[3]`.
    """
    return timeseries_dataset_from_array(
        data,
        targets,
        sequence_length,
        sequence_stride,
        sampling_rate,
        batch_size=None,
        start_index=start_index,
        end_index=end_index,
    ).arrays()
