"""The rows of the epochs of `steps_per_epoch`: an endless sequence of passes over the
data, each in a fresh order when shuffling (Keras' `trainers/epoch_iterator.py`)."""

from __future__ import annotations

import numpy as np

__all__ = ["RowStream", "StreamRows"]


class RowStream:
    """Rows for `steps_per_epoch`: one pass over the data after the other, each in a
    fresh order (the engine's draws) when shuffling; an epoch takes the next rows."""

    def __init__(self, engine, n: int, shuffle: bool):
        self.engine, self.n, self.shuffle = engine, n, shuffle
        self.order: np.ndarray | None = None
        self.pos = n

    def take(self, count: int) -> np.ndarray:
        parts = []
        while count > 0:
            if self.pos == self.n:
                self.order = (
                    self.engine.permutation(self.n)
                    if self.shuffle
                    else np.arange(self.n, dtype=np.int64)
                )
                self.pos = 0
            k = min(count, self.n - self.pos)
            assert self.order is not None  # (drawn at the first call: pos starts at n)
            parts.append(self.order[self.pos : self.pos + k])
            self.pos += k
            count -= k
        return np.concatenate(parts)


class StreamRows:
    """The next `count` rows of a RowStream, drawn as `_fit_rows` asks for them, slice by
    slice in order: an epoch of steps_per_epoch batches may hold more rows than an array
    of their indices should."""

    chunk = 2**20  # rows per engine call at most

    def __init__(self, stream: RowStream, count: int):
        self.stream, self.count = stream, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self.stream.take(rows.stop - rows.start)
