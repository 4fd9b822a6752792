"""Models."""

from ..saving import load_model
from .sequential import Sequential


def clone_model(model: Sequential) -> Sequential:
    """A new model with `model`'s architecture and fresh weights (Keras' `clone_model`);
    not compiled."""
    return type(model).from_config(model.get_config())


__all__ = ["Sequential", "load_model", "clone_model"]
