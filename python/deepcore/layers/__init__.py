"""Layers with Keras' names and arguments."""

from .core import Activation, Dense, Dropout, Input, InputLayer, Layer

__all__ = ["Layer", "InputLayer", "Input", "Dense", "Activation", "Dropout"]
