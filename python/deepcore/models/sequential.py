"""The Sequential model: the graph of layers that is a line, built layer by layer."""

from __future__ import annotations

from collections.abc import Iterable

from ..layers.core import InputLayer, Layer
from ..layers.symbolic import SymbolicTensor
from ..layers.text_vectorization import TextVectorization
from .model import Model

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers, with Keras' `compile` / `fit` / `evaluate` / `predict`.

    Args:
        layers: Optional list of layers (may start with `deepcore.Input(shape=...)`).
        name: Model name.
    """

    def __init__(
        self,
        layers: Iterable[Layer | SymbolicTensor] | None = None,
        name: str | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name or "sequential", trainable=trainable)
        for layer in layers or []:
            self._append(layer)
        if self._layers and self._input_shape is not None:
            self.build()  # as Keras: the weights exist once the input shape is known

    # ------------------------------------------------------------- structure
    def add(self, layer: Layer | SymbolicTensor) -> None:
        """Appends a layer (or sets the input shape with `deepcore.Input`). Once the input
        shape is known the model is built: the new layer's weights are drawn, the
        earlier layers keep theirs."""
        before = (list(self._layers), self._input_shape, self._engine)
        self._append(layer)
        if self._layers and self._input_shape is not None:
            try:
                self._rebuild(len(before[0]))
            except Exception:  # a layer that does not fit leaves the model as it was
                self._layers, self._input_shape, self._engine = before
                raise

    def _append(self, layer) -> None:
        if isinstance(layer, SymbolicTensor):  # deepcore.Input(...)
            if not isinstance(layer._layer, InputLayer):
                raise TypeError(
                    f"Sequential takes layers and deepcore.Input; {layer!r} is the output of "
                    "a layer call (the functional API): use deepcore.Model(inputs, outputs)."
                )
            layer = layer._layer
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("deepcore.Input must come before every other layer.")
            self._input_shape = layer.shape
            return
        if isinstance(layer, Sequential):  # a model in the line: its layers, shared with it
            if not self._layers and self._input_shape is None:
                self._input_shape = layer._input_shape
            for inner in layer._layers:
                self._append(inner)
            return
        if isinstance(layer, TextVectorization):
            layer.add_to(None)  # the error saying to apply it to the data first
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a deepcore layer. Received: {layer!r}")
        if any(layer is other for other in self._layers):
            raise ValueError(f"Layer {layer.name!r} is already in the model.")
        if not self._layers and self._input_shape is None and layer.input_shape_arg:
            self._input_shape = layer.input_shape_arg
        self._layers.append(layer)

    def pop(self) -> Layer:
        if not self._layers:
            raise ValueError("There are no layers in the model.")
        layer = self._layers.pop()
        if self._engine is not None and self._layers:
            self._rebuild(len(self._layers))
        else:
            self._engine = None
        return layer

    def _rebuild(self, keep: int) -> None:
        """Builds again after a change of layers: when the model was built, its first
        `keep` layers keep their weights and the engine its random seed, so that a
        model grown with `add` equals the one given the same layers at once."""
        old = self._engine
        kept = [[v.copy() for v in vs] for vs in self._layer_views[:keep]] if old else []
        self._engine = None
        self._build(kept, old.seed if old else None)
