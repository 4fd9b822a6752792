"""Exports of a model for other runtimes (Keras 3's `keras.export`): ONNX."""

from .onnx import export_onnx

__all__ = ["export_onnx"]
