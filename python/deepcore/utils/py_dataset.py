"""Keras 3's `PyDataset`: a dataset of batches by index, for data that does not fit in one
array (files read batch by batch, augmentation in Python)."""

from __future__ import annotations

__all__ = ["PyDataset"]


class PyDataset:
    """Batches by index: subclass it with `__len__` (the batches in an epoch) and
    `__getitem__(index)` returning `x`, `(x, y)` or `(x, y, sample_weight)` for batch
    `index`; `fit`, `evaluate` and `predict` take it as `x`, hold a few batches at a time,
    and call `on_epoch_begin` and `on_epoch_end` around every epoch. An endless dataset
    returns None from `num_batches` (fit then needs `steps_per_epoch`). `fit(shuffle=True)`
    visits the batches of an epoch in a fresh order.

    Args:
        workers: Threads (or processes, with `use_multiprocessing`) that fetch batches
            ahead of the training, in order; 1: the batches are fetched in the training
            loop.
        use_multiprocessing: Fetch in processes (the dataset must pickle).
        max_queue_size: Batches fetched ahead at most (with workers).
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ) -> None:
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index)")

    @property
    def num_batches(self) -> int | None:
        """The batches in an epoch (`len(self)`), or None for an endless dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(
            f"{type(self).__name__} must define __len__, or num_batches (None: endless)"
        )

    def __iter__(self):
        n = self.num_batches
        i = 0
        while n is None or i < n:
            yield self[i]
            i += 1

    def on_epoch_begin(self) -> None:
        """Called at the beginning of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch."""
