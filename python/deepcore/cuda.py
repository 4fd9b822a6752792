"""The CUDA backend: whether this build and this machine have it.

deepcore's CUDA backend is an optional part of the build (CMake option ``DEEPCORE_CUDA``,
with ``pip install ".[cuda]"`` for cuBLASLt). It is loaded on first use, never at import.
"""

from __future__ import annotations

from . import _core

__all__ = ["is_available", "device_name"]

_CUDA = 1  # deepcore's Device::CUDA


def is_available() -> bool:
    """Whether deepcore can run on an NVIDIA GPU here.

    False on a build without the CUDA backend, when cuBLASLt cannot be loaded, or when no
    GPU is usable. Never raises. The first call loads the backend (cuBLASLt is large).
    """
    try:
        _core.device_name(_CUDA)
    except Exception:
        return False
    return True


def device_name() -> str:
    """The name of the GPU deepcore runs on, e.g. ``"NVIDIA H200"``.

    Raises:
        ValueError: When the CUDA backend is not available, with the reason.
    """
    return _core.device_name(_CUDA)
