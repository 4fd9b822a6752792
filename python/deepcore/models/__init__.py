"""Models."""

from ..saving import load_model
from .model import Model
from .sequential import Sequential


def clone_model(model: Model) -> Model:
    """A new model with `model`'s architecture and fresh weights (Keras' `clone_model`),
    compiled as `model` is where it is (a new optimizer of the same configuration, the same
    losses and metrics)."""
    clone = type(model).from_config(model.get_config())
    if model.compiled:
        from ..trainers.compile_utils import wrapped_functions

        args = model._compile_args
        loss, loss_weights, metrics, weighted = (
            args if model._out is None else wrapped_functions(args, model._out)
        )
        optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
        clone.compile(optimizer, loss, loss_weights, metrics, weighted)
    return clone


__all__ = ["Model", "Sequential", "load_model", "clone_model"]
