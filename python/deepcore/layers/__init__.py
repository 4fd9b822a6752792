"""Layers with Keras' names and arguments."""

from .convolutional import (
    AveragePooling1D,
    AveragePooling2D,
    Conv1D,
    Conv2D,
    Flatten,
    GlobalAveragePooling2D,
    MaxPooling1D,
    MaxPooling2D,
    Reshape,
    UpSampling1D,
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
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN
from .sequence import (
    Embedding,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    TimeDistributed,
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
    "Conv1D",
    "MaxPooling1D",
    "AveragePooling1D",
    "UpSampling1D",
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Reshape",
    "BatchNormalization",
    "Embedding",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "TimeDistributed",
    "TextVectorization",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Bidirectional",
]
