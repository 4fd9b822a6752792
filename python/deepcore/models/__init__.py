"""Models."""

from ..saving import load_model
from .model import Model
from .sequential import Sequential


def clone_model(model: Model) -> Model:
    """A new model with `model`'s architecture and fresh weights (Keras' `clone_model`);
    not compiled."""
    return type(model).from_config(model.get_config())


__all__ = ["Model", "Sequential", "load_model", "clone_model"]
