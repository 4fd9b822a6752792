"""deepcore: Keras-style deep learning on NumPy arrays, trained by a C++ engine."""

# First: it loads the CPU kernels that _core links (the fastest set this CPU runs).
from . import _kernel_sets  # noqa: F401

# isort: split
import atexit

from . import (
    _core,
    _threadpool,
    activations,
    callbacks,
    config,
    cuda,
    datasets,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    preprocessing,
    regularizers,
    schedules,
    utils,
)
from .layers import Input
from .models import Model, Sequential
from .neuron import Neuron, Perceptron

# At exit, stop the engine calls of daemon threads before the interpreter goes away.
atexit.register(_core._exiting)

__version__ = "0.1.0"

_threadpool.register()  # (threadpoolctl sees and limits deepcore's threads, when installed)


def __getattr__(name):
    # deepcore.wrappers imports scikit-learn: loaded when first used, not with deepcore
    if name == "wrappers":
        import importlib

        return importlib.import_module(".wrappers", __name__)
    raise AttributeError(f"module 'deepcore' has no attribute {name!r}")


__all__ = [
    "Input",
    "Model",
    "Sequential",
    "Neuron",
    "Perceptron",
    "activations",
    "callbacks",
    "config",
    "cuda",
    "datasets",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "preprocessing",
    "regularizers",
    "schedules",
    "utils",
    "wrappers",
    "__version__",
]
