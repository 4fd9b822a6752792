"""Data that comes in batches (Keras keeps these in `trainers/data_adapters/`: generator,
py_dataset and torch_data_loader adapters): Python generators and iterators,
`deepcore.utils.PyDataset` (and Keras' `PyDataset`/`Sequence` interface), PyTorch
`DataLoader`s. Each batch is `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`, x an array or
a list or dict of arrays (a model of several inputs); torch tensors become NumPy arrays.
The batches go to the engine in chunks of consecutive batches of one size (at most
CHUNK_BATCHES and CHUNK_BYTES; one engine call each, the steps as the batches came), so that
memory holds a few batches whatever the source's length."""

from __future__ import annotations

import concurrent.futures
import warnings
from collections import deque
from typing import Iterator

import numpy as np

from .. import utils

__all__ = ["is_source", "BatchSource", "Feeder"]

CHUNK_BATCHES = 8  # batches per engine call at most,
CHUNK_BYTES = 4 << 20  # and no more bytes than this (but one batch) in a chunk


def _is_loader(x) -> bool:
    """A PyTorch DataLoader (or another torch.utils.data iterable of batches)."""
    return type(x).__module__.startswith("torch.utils.data")


def _is_py_dataset(x) -> bool:
    """Keras' PyDataset interface: batches by index, `__len__` (or `num_batches`), and
    `on_epoch_end`."""
    return hasattr(x, "__getitem__") and hasattr(x, "on_epoch_end")


def is_source(x) -> bool:
    """Whether fit, evaluate and predict take `x` as batches rather than as arrays."""
    if isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)) or x is None:
        return False
    return _is_py_dataset(x) or _is_loader(x) or hasattr(x, "__next__")


def _numpy(value):
    """A batch's element as NumPy (torch tensors through .numpy()), lists and dicts of them
    element by element."""
    if isinstance(value, dict):
        return {k: _numpy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numpy(v) for v in value]
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return value


def _rows(x) -> int:
    """The number of samples of a batch's x."""
    first = next(iter(x.values())) if isinstance(x, dict) else x[0] if isinstance(x, list) else x
    return len(first)


def standardize(batch, where: str) -> tuple:
    """(x, y, sample_weight) of one batch (y and sample_weight None when absent)."""
    if isinstance(batch, list):
        batch = tuple(batch)  # (as Keras reads a list: the parts of a batch)
    if not isinstance(batch, tuple):
        batch = (batch,)
    if not 1 <= len(batch) <= 3:
        raise ValueError(
            f"{where} must be x, (x,), (x, y) or (x, y, sample_weight); received a tuple of "
            f"{len(batch)} items"
        )
    x, y, w = (*map(_numpy, batch), None, None)[:3]
    try:
        n = _rows(x)
    except TypeError:
        raise ValueError(
            f"{where}: x must be an array (or a list or dict of them), received {type(x).__name__}"
        ) from None
    if n == 0:
        raise ValueError(f"{where} is empty (0 samples)")
    for part, name in ((y, "y"), (w, "sample_weight")):
        if part is not None and not isinstance(part, dict) and _rows(part) != n:
            raise ValueError(
                f"{where}: x has {n} samples and {name} {_rows(part)}; a batch needs one "
                f"{name} per sample"
            )
    return x, y, w


def _join(parts):
    """The batches' x (or y, or sample weights) joined along the samples."""
    first = parts[0]
    if first is None:
        return None
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, list):
        return [np.concatenate([p[j] for p in parts]) for j in range(len(first))]
    return np.concatenate(parts) if len(parts) > 1 else first


class Feeder:
    """Runs of consecutive batches of one size and kind (the same sample shapes, with or
    without y and weights) from standardized `batches`, joined: `take(k)` gives (x, y,
    sample_weight, batch size, batches) of at most min(k, CHUNK_BATCHES) batches and
    CHUNK_BYTES (but one batch), None when they are done."""

    def __init__(self, batches):
        self._batches = iter(batches)
        self._held = None  # a batch of another size or kind than the run before it

    def take(self, k: int = CHUNK_BATCHES):
        run: list = []
        size = 0
        while len(run) < min(k, CHUNK_BATCHES):
            batch, self._held = self._held or next(self._batches, None), None
            if batch is None:
                break
            bytes_ = sum(_nbytes(part) for part in batch)
            if run and (_kind(batch) != _kind(run[0]) or size + bytes_ > CHUNK_BYTES):
                self._held = batch
                break
            run.append(batch)
            size += bytes_
        if not run:
            return None
        return (*(_join([b[j] for b in run]) for j in range(3)), _rows(run[0][0]), len(run))


def _parts(value) -> list:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list) else [value]


def _nbytes(value) -> int:
    return 0 if value is None else sum(np.asarray(v).nbytes for v in _parts(value))


def _kind(batch):
    """What batches joined in one chunk share: their rows, and each part's sample shape."""
    return _rows(batch[0]), *(
        None if part is None else tuple(np.shape(v)[1:] for v in _parts(part)) for part in batch
    )


class BatchSource:
    """The batches of an epoch, as Keras' EpochIterator hands them out: a PyDataset and a
    DataLoader start a pass each epoch (a PyDataset's batches in a fresh order when
    shuffling), or with `steps_per_epoch` go on from the batch where the last epoch stopped
    and start a new pass when one ends; a generator goes on from where it stopped, and its
    epoch ends when it runs out. `what` names the argument in errors ("x",
    "validation_data")."""

    def __init__(self, x, what: str = "x", shuffle: bool = False):
        self.x, self.what, self.shuffle = x, what, shuffle
        self.length = self._length()
        self._iterator: Iterator | None = None
        self._seen = 0  # batches taken from the current pass
        self.exhausted = False  # a generator ran out

    def _length(self):
        """Batches in a pass: a PyDataset's `num_batches` (None: endless) or `len`, a
        DataLoader's `len`; None for a generator."""
        x = self.x
        if not (_is_py_dataset(x) or _is_loader(x)):
            return None
        try:
            return x.num_batches if hasattr(type(x), "num_batches") else len(x)
        except (TypeError, NotImplementedError):  # (no length: endless)
            return None

    def _pass(self):
        """The batches of one pass over the source."""
        x = self.x
        if _is_py_dataset(x):
            if self.length is None:
                return _endless(x)
            order = np.arange(self.length)
            if self.shuffle:
                order = utils.rng().permutation(self.length)
            return _ordered(x, order)
        if _is_loader(x):
            return iter(x)
        return x  # a generator or iterator: the same one on

    def epoch(self, steps: int | None):
        """The batches of the next epoch, standardized: `steps` of them (fewer if a
        generator runs out: `exhausted`), or a whole pass."""
        if self.length is None and steps is None and _is_py_dataset(self.x):
            raise ValueError(
                f"`{self.what}` is an endless PyDataset (num_batches None): pass "
                "steps_per_epoch (steps for evaluate and predict)"
            )
        hooks = _is_py_dataset(self.x)  # (Keras calls them every epoch)
        if hooks and hasattr(self.x, "on_epoch_begin"):
            self.x.on_epoch_begin()
        if steps is None or self._iterator is None or self._seen == self.length:
            self._iterator, self._seen = self._pass(), 0
        taken = 0
        while steps is None or taken < steps:
            if self.length is not None and self._seen == self.length:
                if steps is None:
                    break
                self._iterator, self._seen = self._pass(), 0  # (a new pass within the epoch)
            try:
                batch = next(self._iterator)
            except StopIteration:
                self.exhausted = self.length is None
                break
            self._seen += 1
            taken += 1
            yield standardize(batch, f"batch {taken - 1} of `{self.what}`")
        if hooks:
            self.x.on_epoch_end()

    def ran_out(self, taken: int, steps: int | None) -> bool:
        """After an epoch of `taken` batches: whether the source ran out (Keras warns and
        stops training)."""
        if not self.exhausted or (steps is None and taken > 0):
            return False
        warnings.warn(
            f"Your input ran out of data; interrupting training. Make sure that `{self.what}` "
            f"can generate at least `steps_per_epoch * epochs` batches (here {taken} batches "
            "in the last epoch).",
            stacklevel=3,
        )
        return True


def _ordered(dataset, order):
    """dataset[i] for i in order; `workers` > 1 (Keras' PyDataset argument): fetched ahead
    by a pool of threads (processes with `use_multiprocessing`), at most `max_queue_size`
    ahead, handed out in order."""
    workers = int(getattr(dataset, "workers", 1) or 1)
    if workers <= 1:
        for i in order:
            yield dataset[int(i)]
        return
    ahead = max(1, int(getattr(dataset, "max_queue_size", 10) or 10))
    pool_type = (
        concurrent.futures.ProcessPoolExecutor
        if getattr(dataset, "use_multiprocessing", False)
        else concurrent.futures.ThreadPoolExecutor
    )
    with pool_type(max_workers=workers) as pool:
        pending = deque()
        indices = iter(order)
        for i in indices:
            pending.append(pool.submit(dataset.__getitem__, int(i)))
            if len(pending) >= ahead:
                break
        while pending:
            batch = pending.popleft().result()
            for i in indices:
                pending.append(pool.submit(dataset.__getitem__, int(i)))
                break
            yield batch


def _endless(dataset):
    i = 0
    while True:
        yield dataset[i]
        i += 1
