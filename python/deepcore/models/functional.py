"""Functional models: `deepcore.Model(inputs, outputs)` over the graph that layer calls on
symbolic tensors recorded (Keras' functional API). The engine runs the graph: each layer
reads the values it was called on, and a value read by several layers gets the sum of their
gradients.

A model called on symbolic tensors adds its layers to the graph (their weights shared with
it, as Keras shares its variables); a layer called several times is one set of weights
(Model::set_weight_source). A model of several outputs gives each its loss, labels and
metrics (Model::set_outputs). deepcore.ops called on the tensors are layers of the graph
too (hidden from `layers`). Sequence masks follow the graph (models/masks.py); what is not
there yet: layers joining inputs that carry masks (Keras combines them)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import utils
from ..layers.core import InputLayer, Layer, _shape_arg, _snake
from ..layers.symbolic import SymbolicTensor
from ..trainers.data_adapters import InputArrays
from .masks import plan_masks
from .model import Model

__all__ = ["Functional"]


def _tensors(tensors, what: str, model_name: str) -> list:
    """The symbolic tensors of `inputs` or `outputs`: a tensor, or a list, tuple or dict of
    them (a dict's in its order)."""
    items = list(tensors.values()) if isinstance(tensors, dict) else tensors
    items = list(items) if isinstance(items, (list, tuple)) else [items]
    if not items or not all(isinstance(t, SymbolicTensor) for t in items):
        raise ValueError(
            f"Model {model_name!r}: `{what}` must be symbolic tensors (deepcore.Input, and "
            f"what layers called on it return). Received: {what}={tensors!r}"
        )
    return items


def _user_line(error) -> str:
    """Where the user's code raised `error`: the last frame outside deepcore."""
    import os
    import traceback

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if not os.path.abspath(frame.filename).startswith(here):
            return f"{frame.filename}:{frame.lineno} ({(frame.line or '').strip()})"
    return "its call"


class Functional(Model):
    """A model over a graph of layer calls: `Model(inputs=x, outputs=y)` with `x` one or
    several `deepcore.Input` and `y` what layers called on them (and on each other's outputs)
    return. Several inputs take their data as a list in the same order, or as a dict by the
    inputs' names.

    Several outputs (a list, or a dict whose keys name them) each take a loss, labels and
    metrics of their own (see `compile`); `predict` returns their arrays in the same form.

    Args:
        inputs: The inputs: a symbolic tensor from `deepcore.Input`, or a list or dict of them.
        outputs: The outputs: a symbolic tensor, or a list or dict of them.
        name: Model name.
    """

    # (set by __init__ and _set_graph)
    _input_tensors: list[SymbolicTensor]
    _output_tensors: list[SymbolicTensor]
    _wiring: list[list[int]]
    _input_shapes: list[tuple[int, ...]]
    _input_names: list[str]
    _source: list[int]
    _outputs: list[int]
    _out_names: list[str]

    def __init__(
        self,
        inputs: SymbolicTensor
        | Sequence[SymbolicTensor]
        | Mapping[str, SymbolicTensor]
        | None = None,
        outputs: SymbolicTensor
        | Sequence[SymbolicTensor]
        | Mapping[str, SymbolicTensor]
        | None = None,
        name: str | None = None,
        trainable: bool = True,
        **kwargs: Any,
    ) -> None:
        subclassed = hasattr(type(self), "call")
        default = _snake(type(self).__name__) if subclassed else "functional"
        super().__init__(name=name or default, trainable=trainable)
        self._input_tensors, self._output_tensors, self._traced = [], [], not subclassed
        self._wiring, self._input_shapes, self._input_names, self._source = [], [], [], []
        self._outputs, self._out_names, self._dict_outputs = [], [], False
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Model: {kwargs}")
        if subclassed and inputs is None and outputs is None:
            return  # traced on first use (build)
        if inputs is None or outputs is None:
            raise ValueError(
                f"Model {self.name!r}: a functional model needs `inputs` and `outputs`, or a "
                "subclass with a `call` method."
            )
        xs = _tensors(inputs, "inputs", self.name)
        for x in xs:
            if not isinstance(x._layer, InputLayer):
                raise ValueError(
                    f"Model {self.name!r}: the inputs must come from deepcore.Input, received {x!r}"
                )
        if len({id(x) for x in xs}) != len(xs):
            raise ValueError(f"Model {self.name!r}: an input is given twice: {xs}")
        self._connect(xs, outputs)

    def _connect(self, xs, outputs) -> None:
        """The graph of the layer calls from the inputs xs to `outputs` (a symbolic tensor,
        or a list or dict of them), built."""
        ys = _tensors(outputs, "outputs", self.name)
        calls = self._calls_between(xs, ys)
        self._input_tensors, self._output_tensors = xs, ys
        index = {id(t): i for i, t in enumerate(calls)}
        index.update({id(x): -1 - j for j, x in enumerate(xs)})
        wiring = [[index[id(s)] for s in t._inputs] for t in calls]
        names = list(outputs) if isinstance(outputs, dict) else [y._layer.name for y in ys]
        self._set_graph(
            [t._layer for t in calls],
            [x._layer.shape for x in xs],
            wiring,
            [x.name for x in xs],
            [index[id(y)] for y in ys],
            names,
            isinstance(outputs, dict),
        )

    def _calls_between(self, xs, ys) -> list:
        """The layer calls that lead from the inputs xs to the outputs ys in Keras' order of
        a functional model's layers (so that weight lists match Keras'): by depth from the
        outputs, deepest first, ties in the order depth-first walks from the outputs meet
        them. A ValueError names a call that needs an input not in xs."""
        if any(y is x for x in xs for y in ys):
            raise ValueError(f"Model {self.name!r}: an output is an input; add a layer.")
        inputs = {id(x) for x in xs}
        first_seen: dict[int, int] = {}
        post, done = [], set()
        stack = [(y, False) for y in reversed(ys)]
        while stack:  # depth-first from each output: first-visit order and post-order
            t, expanded = stack.pop()
            if expanded:
                done.add(id(t))
                post.append(t)
                continue
            if id(t) in done:
                continue
            if id(t) not in inputs and isinstance(t._layer, InputLayer):
                raise ValueError(
                    f"Model {self.name!r}: graph disconnected: the output needs input "
                    f"{t._layer.name!r} (shape {t.shape}), which is not among the model's "
                    f"inputs {[x.name for x in xs]}."
                )
            first_seen.setdefault(id(t), len(first_seen))
            stack.append((t, True))
            if id(t) not in inputs:
                stack.extend((s, False) for s in reversed(t._inputs))
        depth: dict[int, int] = {}
        for t in reversed(post):
            d = depth.setdefault(id(t), 0)
            for s in t._inputs:
                depth[id(s)] = max(depth.get(id(s), 0), d + 1)
        calls = [t for t in post if id(t) not in inputs]
        return sorted(calls, key=lambda t: (-depth[id(t)], first_seen[id(t)]))

    def _set_graph(
        self,
        layers,
        input_shapes,
        wiring,
        input_names=None,
        outputs=None,
        output_names=None,
        dict_outputs=False,
    ) -> None:
        """The layers in order, each input's shape, what each layer reads (-1 - j: input j,
        i: layer i's output), the layers whose outputs are the model's (by default the last)
        and their names (by default the layers'), and whether the model returns them as a
        dict; builds the model."""
        outputs = [len(layers) - 1] if outputs is None else list(outputs)
        try:  # the masks' paths through the graph, checked now (models/masks.py)
            plan_masks(layers, warn=False, wiring=wiring, outputs=outputs)
        except ValueError as e:
            raise ValueError(f"Model {self.name!r}: {e}") from None
        self._outputs, self._dict_outputs = outputs, bool(dict_outputs)
        self._out_names = list(output_names or [layers[i].name for i in outputs])
        if len(set(self._out_names)) != len(self._out_names):
            raise ValueError(
                f"Model {self.name!r}: its outputs need different names (they key compile's "
                f"dicts and the logs); received {self._out_names}."
            )
        self._layers, self._wiring = list(layers), wiring
        # a layer called several times (shared): its later calls use its weights
        first: dict[int, int] = {}
        self._source = [first.setdefault(id(la), i) for i, la in enumerate(self._layers)]
        self._source = [-1 if s == i else s for i, s in enumerate(self._source)]
        self._input_shapes = [tuple(s) for s in input_shapes]
        self._input_names = list(input_names or [f"input_{j}" for j in range(len(input_shapes))])
        total = sum(math.prod(s) for s in self._input_shapes)
        self._input_shape = self._input_shapes[0] if len(input_shapes) == 1 else (total,)
        self._traced = True
        Model.build(self)

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Creates the engine and the weights; a subclassed model first traces its `call` on
        a symbolic input of `input_shape` (batch axis included) or of the first data's."""
        if self._traced:
            return Model.build(self, input_shape)
        if input_shape is not None:
            self._input_shape = _shape_arg(tuple(input_shape)[1:], "input_shape", self.name)
        if self._input_shape is None:
            raise ValueError(
                f"Model {self.name!r} has no input shape yet: call build(input_shape) or fit."
            )
        self._trace(self._input_shape)

    def _trace(self, shape) -> None:
        """Runs `call` once on a symbolic input: the layer calls it makes are the graph."""
        from ..layers.core import Input

        x = Input(shape=shape)
        try:
            outputs = self.call(x)  # type: ignore[attr-defined]  # (a subclassed model's)
        except TypeError as e:
            if "symbolic" not in str(e).lower() and "no value" not in str(e):
                raise
            raise ValueError(
                f"Model {self.name!r}: its `call` cannot be traced at {_user_line(e)}: it "
                f"depends on the values flowing through the model ({e})"
            ) from None
        try:
            _tensors(outputs, "outputs", self.name)
        except ValueError:
            raise ValueError(
                f"Model {self.name!r}: `call` must return the output of layer calls on its "
                f"input (a symbolic tensor, or a list or dict of them), returned {outputs!r}"
            ) from None
        self._connect([x], outputs)

    @classmethod
    def _from_parts(
        cls, layers, input_shapes, wiring, name=None, trainable=True, names=None, outputs=None
    ):
        """A functional model of these layers (not called on symbolic tensors) and wiring;
        `outputs`: (their layers, their names, whether returned as a dict), or None for the
        last layer's."""
        model = Model.__new__(cls)
        Model.__init__(model, name=name or "functional", trainable=trainable)
        model._input_tensors, model._output_tensors = [], []
        model._set_graph(layers, input_shapes, [list(w) for w in wiring], names, *(outputs or ()))
        return model

    def _output_layers(self) -> list[int]:
        return list(self._outputs) if self._traced else super()._output_layers()

    def _output_names(self):
        return list(self._out_names) if self._traced else None  # (until `call` is traced)

    def _named_outputs(self) -> bool:
        return not hasattr(type(self), "call")

    def _split_outputs(self, flat):
        out = super()._split_outputs(flat)
        return dict(zip(self._out_names, out)) if self._dict_outputs else out

    def _wire(self, engine) -> None:
        if len(self._input_shapes) > 1:
            engine.set_input_shapes([list(s) for s in self._input_shapes])
        if self._outputs != [len(self._layers) - 1]:
            engine.set_outputs(self._outputs)
        for i, values in enumerate(self._wiring):
            if values != [i - 1]:
                engine.set_inputs(i, values)
        for i, source in enumerate(self._source):
            if source >= 0:
                engine.set_weight_source(i, source)

    def _shares(self, i: int) -> bool:
        return self._source[i] >= 0

    def __setattr__(self, name, value):
        # A subclassed model's layers in the order its __init__ sets them: the order of
        # its weight lists, as Keras tracks them.
        items = value if isinstance(value, (list, tuple)) else [value]
        if not name.startswith("_") and any(isinstance(v, Layer) for v in items):
            known = self.__dict__.setdefault("_attribute_layers", [])
            known += [v for v in items if isinstance(v, Layer) and all(v is not k for k in known)]
        super().__setattr__(name, value)

    def _weight_order(self) -> list[int]:
        rank = {id(la): i for i, la in enumerate(self.__dict__.get("_attribute_layers", []))}
        nodes = range(len(self._layers))
        return sorted(nodes, key=lambda i: (rank.get(id(self._layers[i]), len(rank)), i))

    @property
    def layers(self) -> list:
        """Each layer once (a layer called several times is shared), in the graph's order;
        not the ops of deepcore.ops called on the model's tensors (as Keras')."""
        return [
            la
            for i, la in enumerate(self._layers)
            if not self._shares(i) and not getattr(la, "_op_node", False)
        ]

    def _preparer(self, j: int):
        """The prepare_inputs of a layer reading input j (an Embedding's), if any."""
        for layer, values in zip(self._layers, self._wiring):
            if -1 - j in values and getattr(layer, "prepare_inputs", None) is not None:
                return layer.prepare_inputs  # type: ignore[attr-defined]  # (checked above)
        return None

    def _inputs(self, x, name="x"):
        """Several inputs: their arrays (a list in the inputs' order, or a dict by name),
        each checked against its input's shape and converted to float32 rows (InputArrays:
        the engine reads each where it is)."""
        if not self._traced:  # a subclassed model before its first data: one input
            return super()._inputs(x, name)
        n = len(self._input_shapes)
        if n == 1:
            if isinstance(x, dict) and len(x) == 1:
                x = next(iter(x.values()))
            elif isinstance(x, (list, tuple)) and len(x) == 1:
                x = x[0]
            return super()._inputs(x, name)
        if isinstance(x, dict):
            missing = [k for k in self._input_names if k not in x]
            if missing or len(x) != n:
                raise ValueError(
                    f"Model {self.name!r} takes its inputs {self._input_names} by name; "
                    f"received the keys {list(x)}."
                )
            x = [x[k] for k in self._input_names]
        if not isinstance(x, (list, tuple)) or len(x) != n:
            raise ValueError(
                f"Model {self.name!r} has {n} inputs {self._input_names}: pass `{name}` as a "
                f"list of {n} arrays or a dict by name. Received: {type(x).__name__}"
            )
        arrays = []
        for j, (a, shape) in enumerate(zip(x, self._input_shapes)):
            prepare = self._preparer(j)
            a = utils.as_float_array(prepare(a, name) if prepare else a, name)
            if a.shape[1:] != shape:
                raise ValueError(
                    f"Input {self._input_names[j]!r} of model {self.name!r} is incompatible: "
                    f"expected shape {(None, *shape)}, received {a.shape}."
                )
            arrays.append(np.ascontiguousarray(a.reshape(len(a), -1), dtype=np.float32))
        if len({len(a) for a in arrays}) != 1:
            raise ValueError(
                f"Model {self.name!r}: the inputs have different numbers of samples: "
                f"{[len(a) for a in arrays]}"
            )
        return InputArrays(arrays), self._require_engine("fit")

    def _replay(self, x):
        """The graph's layer calls replayed on symbolic tensors x (one per input)."""
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(xs) != len(self._input_shapes):
            raise ValueError(
                f"Model {self.name!r} takes {len(self._input_shapes)} inputs, received {len(xs)}."
            )
        for t, shape, name in zip(xs, self._input_shapes, self._input_names):
            if tuple(t.shape[1:]) != shape:
                raise ValueError(
                    f"Input {name!r} of model {self.name!r} expects shape {(None, *shape)}, "
                    f"received {t.shape}."
                )
        values = []
        for layer, wires in zip(self._layers, self._wiring):
            ins = [xs[-1 - v] if v < 0 else values[v] for v in wires]
            values.append(layer(ins if layer._takes_several_inputs() else ins[0]))
        outs = [values[i] for i in self._outputs]
        if self._dict_outputs:
            return dict(zip(self._out_names, outs))
        return outs[0] if len(outs) == 1 else outs

    @property
    def input_shape(self) -> tuple[int | None, ...] | list[tuple[int | None, ...]]:
        shapes = [(None, *s) for s in self._input_shapes]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def inputs(self) -> list:
        return list(self._input_tensors)

    @property
    def outputs(self) -> list:
        return list(self._output_tensors)

    @property
    def output_names(self) -> list[str]:
        return self._output_names()

    def _connections(self) -> list[str]:
        """What each layer reads, for summary's "Connected to" column."""
        names = [la.name for la in self._layers]
        return [
            ", ".join(self._input_names[-1 - v] if v < 0 else names[v] for v in values)
            for values in self._wiring
        ]
