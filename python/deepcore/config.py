"""Engine configuration: threads and device."""

from __future__ import annotations

from . import _core

__all__ = ["set_num_threads", "get_num_threads", "set_device", "get_device"]

# The engine's devices: the CPU, an NVIDIA GPU (a build with the CUDA backend; see
# deepcore.cuda), and "guarded", a test-only CPU backend whose memory the engine cannot
# read (it checks that every computation goes through the backend).
_DEVICES = {"cpu": 0, "cuda": 1, "guarded": 2}
_device = "cpu"


def set_device(device: str) -> None:
    """Sets the device that models built from now on train and predict on.

    Args:
        device: "cpu" (the default) or "cuda" (needs a build with the CUDA backend and an
            NVIDIA GPU: `deepcore.cuda.is_available()`). A model keeps the device it was
            built on.

    The CUDA backend does not train models yet: fit, evaluate and predict on "cuda" raise
    an error naming the first operation it lacks.
    """
    global _device
    if not isinstance(device, str) or device.lower() not in _DEVICES:
        raise ValueError(
            f"Unknown device: {device!r}. Known devices: {', '.join(sorted(_DEVICES))}"
        )
    if device.lower() == "cuda":
        from . import cuda

        cuda.device_name()  # raises ValueError with the reason when there is none
    _device = device.lower()


def get_device() -> str:
    """The device that models built from now on use ("cpu" unless `set_device` said)."""
    return _device


def device_index() -> int:
    """The engine's number of the current device."""
    return _DEVICES[_device]


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
