"""Imports Keras 3 for the tests that compare with it (skipped where it is not installed).

Keras' TextVectorization and timeseries_dataset_from_array need TensorFlow; its
pad_sequences runs on any backend. The backend is TensorFlow when it is installed, else JAX.
"""

import importlib.util
import os

import pytest


def has_tensorflow() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def import_keras(need_tensorflow: bool = False):
    """The `keras` module, or a skip of the calling test."""
    if need_tensorflow and not has_tensorflow():
        pytest.skip("this comparison needs Keras with TensorFlow")
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow" if has_tensorflow() else "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import keras
    except Exception as e:  # no usable backend
        pytest.skip(f"keras does not import here: {e}")
    return keras
