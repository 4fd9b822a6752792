"""Layers with Keras' names and arguments."""

from .convolutional import (
    AveragePooling2D,
    Conv2D,
    Flatten,
    GlobalAveragePooling2D,
    MaxPooling2D,
    Reshape,
)
from .core import (
    ELU,
    Activation,
    BatchNormalization,
    Dense,
    Dropout,
    Input,
    InputLayer,
    Layer,
    LeakyReLU,
    ReLU,
    Softmax,
)
from .text_vectorization import TextVectorization

__all__ = [
    "Layer",
    "InputLayer",
    "Input",
    "Dense",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softmax",
    "Dropout",
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Reshape",
    "BatchNormalization",
    "TextVectorization",
]
