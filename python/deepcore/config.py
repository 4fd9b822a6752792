"""Engine configuration: threads and device."""

from __future__ import annotations

from typing import Any

from . import _core, _kernel_sets

__all__ = [
    "set_num_threads",
    "get_num_threads",
    "cpu_features",
    "set_device",
    "get_device",
    "set_float32_matmul_precision",
    "get_float32_matmul_precision",
    "set_progress_style",
    "get_progress_style",
]

# The engine's devices: the CPU, an NVIDIA GPU (a build with the CUDA backend; see
# deepcore.cuda), and "guarded", a test-only CPU backend whose memory the engine cannot
# read (it checks that every computation goes through the backend).
_DEVICES = {"cpu": 0, "cuda": 1, "guarded": 2}
_device = "cpu"
_STYLES = ("classic", "keras3")
_progress_style = "classic"


def set_device(device: str) -> None:
    """Sets the device that models built from now on train and predict on.

    Args:
        device: "cpu" (the default) or "cuda" (needs a build with the CUDA backend and an
            NVIDIA GPU: `deepcore.cuda.is_available()`). A model keeps the device it was
            built on.

    On "cuda" the data of a `fit` goes to the GPU once, each epoch's steps run there
    without waiting for the host (from the second step on, replayed as a CUDA graph), and
    the loss and metrics come back once per epoch. Layers' weights are then host copies:
    `layer.kernel`, `model.weights` and `get_weights()` are copies read back after each
    training call, not live views of the GPU's memory (on "cpu" `model.weights` and
    `trainable_weights` are live views).
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


def cpu_features() -> dict[str, Any]:
    """The CPU kernels this process runs and what the CPU supports.

    Returns:
        A dict: "kernel_set", the instruction sets the loaded CPU kernels were compiled for
        ("avx512", "avx2" or "baseline" in the default build, which carries all three and
        loads the fastest this CPU runs; "native" in a build for one machine);
        "kernel_sets", the sets built into this package that this CPU runs; "features", each
        instruction-set extension deepcore looks at and whether the CPU has it. The
        environment variable DEEPCORE_CPU_KERNELS, read at import, picks a set by hand.
    """
    loaded = _core.kernel_set()
    runs = [name for name in _kernel_sets.SETS if _kernel_sets.runnable(name)]
    return {
        "kernel_set": loaded,
        "kernel_sets": runs if _kernel_sets.dispatching() else [loaded],
        "features": {name: _kernel_sets.cpu_has(name) for name in _kernel_sets.features()},
    }


_PRECISIONS = ("highest", "high")


def set_float32_matmul_precision(precision: str) -> None:
    """Sets the precision of float32 matrix products, as `torch.set_float32_matmul_precision`.

    Args:
        precision: "highest" (the default: float32 products, results within ~1e-6 of the
            CPU's) or "high" (on "cuda", TensorFloat-32 products with float32 sums: about
            1e-3 relative error, several times the speed on large layers). The CPU always
            computes in float32.
    """
    if not isinstance(precision, str) or precision not in _PRECISIONS:
        raise ValueError(
            f"precision must be one of {_PRECISIONS}. Received: precision={precision!r}"
        )
    _core.set_allow_tf32(precision == "high")


def get_float32_matmul_precision() -> str:
    """The precision of float32 matrix products: "highest" or "high" (see
    `set_float32_matmul_precision`)."""
    return "high" if _core.allow_tf32() else "highest"


def set_progress_style(style: str) -> None:
    """The look of fit's live progress bar (on a terminal or in Jupyter): "classic" (the
    default: `8/32 [======>.......] - ETA: 0s - loss: ...`) or "keras3" (Keras 3's: a bar
    of "━" in color, the time left and the time per step, then the logs)."""
    global _progress_style
    if style not in _STYLES:
        raise ValueError(f"style must be one of {_STYLES}. Received: style={style!r}")
    _progress_style = style


def get_progress_style() -> str:
    """The progress bar's look (see `set_progress_style`)."""
    return _progress_style
