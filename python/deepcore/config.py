"""Engine configuration: threads and device."""

from __future__ import annotations

from . import _core

__all__ = ["set_num_threads", "get_num_threads"]


def set_num_threads(n: int) -> None:
    """Sets the number of threads the CPU engine uses, for all its kernels and GEMMs.

    Args:
        n: Threads; 0 means one per core. The default is OpenBLAS's (one per core
            unless OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"num_threads must be an integer >= 0. Received: n={n!r}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads the CPU engine uses."""
    return _core.get_num_threads()
