"""Functional models: `deepcore.Model(inputs, outputs)` over the graph that layer calls on
symbolic tensors recorded (Keras' functional API). The engine runs the graph: each layer
reads the values it was called on, and a value read by several layers gets the sum of their
gradients.

What is not there yet: several inputs or outputs, a layer called twice (shared weights), a
model called as a layer, sequence masks across a graph that is not a line."""

from __future__ import annotations

from ..layers.core import InputLayer
from ..layers.symbolic import SymbolicTensor
from .model import Model

__all__ = ["Functional"]


def _one(tensors, what: str, model_name: str) -> SymbolicTensor:
    """The one symbolic tensor of `inputs` or `outputs` (a tensor, or a list, tuple or dict
    of one)."""
    items = list(tensors.values()) if isinstance(tensors, dict) else tensors
    if isinstance(items, (list, tuple)):
        if len(items) != 1:
            raise ValueError(
                f"Model {model_name!r}: deepcore's functional models take one input and one "
                f"output for now; received {len(items)} {what}."
            )
        items = items[0]
    if not isinstance(items, SymbolicTensor):
        raise ValueError(
            f"Model {model_name!r}: `{what}` must be symbolic tensors (deepcore.Input, and "
            f"what layers called on it return). Received: {what}={tensors!r}"
        )
    return items


class Functional(Model):
    """A model over a graph of layer calls: `Model(inputs=x, outputs=y)` with `x` a
    `deepcore.Input` and `y` what layers called on it (and on each other's outputs) return.

    Args:
        inputs: The input (a symbolic tensor from `deepcore.Input`, or a list of one).
        outputs: The output (a symbolic tensor, or a list of one).
        name: Model name.
    """

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True):
        super().__init__(name=name or "functional", trainable=trainable)
        if inputs is None or outputs is None:
            raise ValueError(
                f"Model {self.name!r}: a functional model needs `inputs` and `outputs`; "
                "subclassed models (a `call` method) are not supported yet."
            )
        x = _one(inputs, "inputs", self.name)
        y = _one(outputs, "outputs", self.name)
        if not isinstance(x._layer, InputLayer):
            raise ValueError(
                f"Model {self.name!r}: the input must come from deepcore.Input, received {x!r}"
            )
        calls = self._calls_between(x, y)
        self._input_tensor, self._output_tensor = x, y
        index = {id(t): i for i, t in enumerate(calls)}
        index[id(x)] = -1
        wiring = [[index[id(s)] for s in t._inputs] for t in calls]
        self._set_graph([t._layer for t in calls], x._layer.shape, wiring)

    def _calls_between(self, x, y) -> list:
        """The layer calls that lead from x to y in Keras' order of a functional model's
        layers (so that weight lists match Keras'): by depth from the output, deepest first,
        ties in the order a depth-first walk from the output meets them. A ValueError names
        a call that needs an input other than x."""
        if y is x:
            raise ValueError(f"Model {self.name!r}: the output is the input; add a layer.")
        first_seen, post, done = {}, [], set()
        stack = [(y, False)]
        while stack:  # depth-first from the output: first-visit order and post-order
            t, expanded = stack.pop()
            if expanded:
                done.add(id(t))
                post.append(t)
                continue
            if id(t) in done:
                continue
            if t is not x and isinstance(t._layer, InputLayer):
                raise ValueError(
                    f"Model {self.name!r}: graph disconnected: the output needs input "
                    f"{t._layer.name!r} (shape {t.shape}), which is not the model's input "
                    f"{x._layer.name!r}."
                )
            first_seen.setdefault(id(t), len(first_seen))
            stack.append((t, True))
            if t is not x:
                stack.extend((s, False) for s in reversed(t._inputs))
        depth = {}
        for t in reversed(post):
            d = depth.setdefault(id(t), 0)
            for s in t._inputs:
                depth[id(s)] = max(depth.get(id(s), 0), d + 1)
        calls = [t for t in post if t is not x]
        return sorted(calls, key=lambda t: (-depth[id(t)], first_seen[id(t)]))

    def _set_graph(self, layers, input_shape, wiring) -> None:
        """The layers in order, the input shape and what each layer reads (-1: the input,
        j: layer j's output); builds the model."""
        masks = [la.name for la in layers if la._mask_role() == "make"]
        line = all(w == [i - 1] for i, w in enumerate(wiring))
        if masks and not line:
            raise ValueError(
                f"Model {self.name!r}: layers {masks} make sequence masks, and deepcore "
                "follows masks along a line of layers only; use a Sequential model, or no mask."
            )
        self._layers, self._input_shape, self._wiring = list(layers), tuple(input_shape), wiring
        self.build()

    @classmethod
    def _from_parts(cls, layers, input_shape, wiring, name=None, trainable=True):
        """A functional model of these layers (not called on symbolic tensors) and wiring."""
        model = Model.__new__(cls)
        Model.__init__(model, name=name or "functional", trainable=trainable)
        model._input_tensor = model._output_tensor = None
        model._set_graph(layers, input_shape, [list(w) for w in wiring])
        return model

    def _wire(self, engine) -> None:
        for i, values in enumerate(self._wiring):
            if values != [i - 1]:
                engine.set_inputs(i, values)

    @property
    def inputs(self) -> list:
        return [] if self._input_tensor is None else [self._input_tensor]

    @property
    def outputs(self) -> list:
        return [] if self._output_tensor is None else [self._output_tensor]

    def _connections(self) -> list[str]:
        """What each layer reads, for summary's "Connected to" column."""
        names = [la.name for la in self._layers]
        return [
            ", ".join("input" if v < 0 else names[v] for v in values) for values in self._wiring
        ]
