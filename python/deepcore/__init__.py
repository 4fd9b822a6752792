"""deepcore: Keras-style deep learning on NumPy arrays, trained by a C++ engine."""

from . import (
    activations,
    callbacks,
    config,
    datasets,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    preprocessing,
    regularizers,
    schedules,
    utils,
)
from .layers import Input
from .models import Sequential
from .neuron import Neuron, Perceptron

__version__ = "0.1.0"

__all__ = [
    "Input",
    "Sequential",
    "Neuron",
    "Perceptron",
    "activations",
    "callbacks",
    "config",
    "datasets",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "preprocessing",
    "regularizers",
    "schedules",
    "utils",
    "__version__",
]
