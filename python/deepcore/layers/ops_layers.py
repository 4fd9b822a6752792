"""`Lambda` (Keras' Lambda layer): a function of `deepcore.ops` traced once on symbolic
tensors into a program the engine runs, forward and backward (csrc/engine/ops_layer.cpp).
An op of `deepcore.ops` called on a model's symbolic tensors is such a layer too, of one
step, hidden from `model.layers` as Keras' operations are.

A program: `inputs` (the layer's tensors, registers 0..k-1), `constants` (arrays the same
for every sample, the next registers) and `steps`, each reading earlier registers and making
the next one; the layer's output is the last step's. Saved with the model: a Lambda needs no
code to be loaded."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .core import Layer
from .symbolic import SymbolicTensor, is_symbolic

if TYPE_CHECKING:
    from ..ops import Tensor

__all__ = ["Lambda", "Program"]

_KINDS = {k.name: k for k in _core.OpKind.__members__.values()}
_CODES: dict[str, Any] = {
    "unary": _core.UnaryOp.__members__,
    "binary": _core.BinaryOp.__members__,
    "reduce": _core.ReduceOp.__members__,
}
_MAX_STEPS = 4096
_MAX_CONSTANT = 1 << 24  # values of one constant


class Program:
    """A program of ops: its inputs' count, constants (float32 arrays) and steps (dicts:
    kind, op, a, b, p0, p1, activation, alpha, axes, keepdims)."""

    def __init__(
        self,
        inputs: int,
        constants: Iterable[ArrayLike] = (),
        steps: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.inputs = int(inputs)
        self.constants = [np.asarray(c, np.float32) for c in constants]
        self.steps = [dict(s) for s in steps]

    def spec(self) -> tuple[list[_core.OpStep], list[_core.OpConstant]]:
        """The engine's (steps, constants)."""
        steps = []
        for s in self.steps:
            kind = _KINDS[s["kind"]]
            code = int(_CODES[s["kind"]][s["op"]]) if s["kind"] in _CODES else 0
            act = _core.ActSpec(
                _core.Act.__members__[s.get("activation", "linear")], s.get("alpha", 0.0)
            )
            steps.append(
                _core.OpStep(
                    kind,
                    code,
                    s["a"],
                    s.get("b", -1),
                    s.get("p0", 0.0),
                    s.get("p1", 0.0),
                    act,
                    list(s.get("axes", [])),
                    s.get("keepdims", False),
                )
            )
        constants = [_core.OpConstant(list(c.shape), c.ravel().tolist()) for c in self.constants]
        return steps, constants

    def averaged(self) -> Program:
        """The program of a loss's or metric's values, which the engine averages per sample:
        without a final mean of the step before it (the average of its values is the
        average of their means, each mean over as many values), one step less to run."""
        first_step = self.inputs + len(self.constants)
        last = self.steps[-1] if self.steps else {}
        if (
            len(self.steps) > 1
            and last.get("kind") == "reduce"
            and last.get("op") == "mean"
            and last["a"] == first_step + len(self.steps) - 2
        ):
            return Program(self.inputs, self.constants, self.steps[:-1])
        return self

    def get_config(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "constants": [
                {"shape": list(c.shape), "values": c.ravel().tolist()} for c in self.constants
            ],
            "steps": [dict(s) for s in self.steps],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Program:
        """A program from `get_config()`, every field checked (a file may be hostile)."""
        if not isinstance(config, dict) or set(config) != {"inputs", "constants", "steps"}:
            raise ValueError(f"a program holds inputs, constants and steps, not {config!r:.200}")
        inputs, constants, steps = config["inputs"], config["constants"], config["steps"]
        if type(inputs) is not int or not 1 <= inputs <= 16:
            raise ValueError(f"a program takes 1 to 16 inputs, not {inputs!r:.50}")
        if not isinstance(constants, list) or not isinstance(steps, list):
            raise ValueError("a program's constants and steps are lists")
        if not 1 <= len(steps) <= _MAX_STEPS or len(constants) > _MAX_STEPS:
            raise ValueError(f"a program has 1 to {_MAX_STEPS} steps and constants")
        arrays, total = [], 0
        for c in constants:
            shape = c.get("shape") if isinstance(c, dict) else None
            values = c.get("values") if isinstance(c, dict) else None
            if not (
                isinstance(shape, list)
                and len(shape) <= 8
                and all(type(d) is int and 1 <= d <= _MAX_CONSTANT for d in shape)
                and math.prod(shape) <= _MAX_CONSTANT
                and isinstance(values, list)
                and len(values) == math.prod(shape)
                and all(type(v) in (int, float) for v in values)
            ):
                raise ValueError(f"a program's constant must be {{shape, values}}, not {c!r:.200}")
            total += len(values)
            if total > _MAX_CONSTANT:
                raise ValueError(f"a program's constants hold more than {_MAX_CONSTANT} values")
            a = np.asarray(values, np.float32).reshape(shape)
            if not np.isfinite(a).all():
                raise ValueError("a program's constants must be finite")
            arrays.append(a)
        keys = {"kind", "op", "a", "b", "p0", "p1", "activation", "alpha", "axes", "keepdims"}
        for s in steps:
            ok = (
                isinstance(s, dict)
                and set(s) <= keys
                and s.get("kind") in _KINDS
                and (s["kind"] not in _CODES or s.get("op") in _CODES[s["kind"]])
                and s.get("activation", "linear") in _core.Act.__members__
                and all(type(s.get(k, 0)) is int for k in ("a", "b"))
                and all(type(s.get(k, 0.0)) in (int, float) for k in ("p0", "p1", "alpha"))
                and isinstance(s.get("axes", []), list)
                and all(type(v) is int and 0 <= v <= 1 << 31 for v in s.get("axes", []))
                and type(s.get("keepdims", False)) is bool
            )
            if not ok:
                raise ValueError(f"a program's step is not one deepcore knows: {s!r:.200}")
        return cls(inputs, arrays, steps)


def _op_call(kind: str, op: str | None, operands: list, name: str, **attrs) -> SymbolicTensor:
    """A one-step program over `operands` (symbolic tensors, or constants: numbers and
    arrays), called on the symbolic ones: its symbolic output."""
    tensors: list = []
    constants: list[np.ndarray] = []
    regs: list[int | None] = []
    for x in operands:
        if is_symbolic(x):
            if not any(x is t for t in tensors):
                tensors.append(x)
            regs.append(next(i for i, t in enumerate(tensors) if t is x))
        else:
            constants.append(np.asarray(x, np.float32))
            regs.append(None)
    k = len(tensors)
    c = iter(range(k, k + len(constants)))
    regs = [next(c) if r is None else r for r in regs]
    step = {"kind": kind, "a": regs[0], **attrs}
    if op:
        step["op"] = op
    if len(regs) > 1:
        step["b"] = regs[1]
    layer = Lambda(program=Program(k, constants, [step]), op_node=True, name=_auto_op_name(name))
    return layer(tensors if k > 1 else tensors[0])


def _auto_op_name(op: str) -> str:
    from .core import _auto_name

    return _auto_name(op)


class Lambda(Layer):
    """Keras' Lambda: `Lambda(function)` wraps a function of `deepcore.ops` (and Python
    operators on tensors) as a layer. The function is traced once on symbolic tensors into
    a program of ops that the engine runs with its gradients; Python control flow on tensor
    values cannot be traced (a clear error names the line).

    Args:
        function: Called as `function(inputs, **arguments)` on the layer's input (a list of
            them for several).
        output_shape: Accepted for Keras compatibility; the shape comes from the trace.
        mask: Not supported (None).
        arguments: Keyword arguments passed to `function`.
        program: A traced program (what `get_config` saves; no function then).
        op_node: Internal: the layer stands for one op called on a model's tensors.
    """

    def __init__(
        self,
        function: Callable[..., Any] | None = None,
        output_shape: Any = None,
        mask: Any = None,
        arguments: dict[str, Any] | None = None,
        program: Program | dict[str, Any] | None = None,
        op_node: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if function is None and program is None:
            raise ValueError(f"{self._owner}: `function` is required.")
        if function is not None and not callable(function):
            raise ValueError(f"{self._owner}: `function` must be callable, received {function!r}")
        if mask is not None:
            raise ValueError(f"{self._owner}: `mask` is not supported by deepcore's Lambda yet.")
        self.function, self.arguments = function, dict(arguments or {})
        if isinstance(program, dict):
            program = Program.from_config(program)
        self._program = program
        self._op_node = bool(op_node)  # an op called on a model's tensors (not in `layers`)

    def __getstate__(self) -> dict:
        """pickle and deepcopy: a traced Lambda travels as its program (as a file keeps it),
        and with its function where pickle can carry one (`by_name`)."""
        if self._program is None:
            return self.__dict__
        return dict(self.__dict__, function=by_name(self.function))

    def _takes_several_inputs(self) -> bool:
        return self._several

    @property
    def _several(self) -> bool:
        return self._program is not None and self._program.inputs > 1

    def add_to(self, engine: _core.Model) -> None:
        if self._program is None:
            raise ValueError(
                f"{self._owner} has not been traced yet: call it on deepcore.Input tensors, "
                "or use it in a model with an input shape."
            )
        engine.add_ops(*self._program.spec())

    def _call_symbolic(self, inputs):
        if self.function is not None:
            program = self._trace(inputs)
            if self._program is not None and program.get_config() != self._program.get_config():
                raise ValueError(
                    f"{self._owner} traces to another program for inputs {inputs!r}: a Lambda "
                    "is one program; use a new Lambda for these inputs."
                )
            self._program = program
        return super()._call_symbolic(inputs)

    def _trace(self, inputs) -> Program:
        """The program of `function` on placeholders shaped as `inputs`."""
        many = isinstance(inputs, (list, tuple))
        shapes = [t.shape[1:] for t in (inputs if many else [inputs])]
        return trace(
            lambda hs: self.function(hs if many else hs[0], **self.arguments),  # type: ignore[misc]
            shapes,
            self._owner,
        )

    def compute_output_shape(self, input_shape: Sequence[Any]) -> tuple[int | None, ...]:
        """The program's output shape for its inputs' (batch axes first), from the engine's
        plan: a ValueError naming the layer when the ops cannot take them."""
        shapes = [tuple(s)[1:] for s in (input_shape if self._several else [input_shape])]
        engine = _core.Model(0)
        if len(shapes) > 1:
            engine.set_input_shapes([list(s) for s in shapes])
        self.add_to(engine)
        if len(shapes) > 1:
            engine.set_inputs(0, [-1 - j for j in range(len(shapes))])
        try:
            engine.plan(
                [int(sum(math.prod(s) for s in shapes))] if len(shapes) > 1 else list(shapes[0])
            )
        except ValueError as e:
            message = str(e).removeprefix("layer #0: ").removeprefix("ops: ")
            raise ValueError(
                f"{self._owner} cannot take inputs of shapes {[(None, *s) for s in shapes]}: "
                f"{message}"
            ) from None
        return (None, *engine.output_shape(-1))

    def get_config(self) -> dict[str, Any]:
        if self._program is None:
            raise ValueError(f"{self._owner} cannot be saved before it is traced.")
        config = {**super().get_config(), "program": self._program.get_config()}
        return {**config, "op_node": True} if self._op_node else config

    def _mask_role(self):
        return "drop"


def by_name(function: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """`function` where pickle can carry it (by its module and name), else None: a lambda or
    a function defined in a function, whose traced programs travel instead."""
    name = getattr(function, "__qualname__", None)
    return None if isinstance(name, str) and "<" in name else function


def traced(owner_obj, function, labels, pred, owner: str) -> Program:
    """The program of a custom loss's or metric's `function(y_true, y_pred)` for labels and
    predictions of these sample shapes, traced once per label shape and kept on the object
    (`_traced`: what saving stores; a loaded one has its program and no function)."""
    cache = owner_obj.__dict__.setdefault("_traced", {})
    key = (tuple(labels), tuple(pred))
    if key not in cache:
        if getattr(owner_obj, "fn", True) is None:
            raise ValueError(
                f"{owner} was loaded with its program for labels of shape {list(cache)[0][0]} "
                f"and predictions of shape {list(cache)[0][1]}; received {key[0]} and {key[1]}"
            )
        cache[key] = trace(lambda hs: function(hs[0], hs[1]), key, owner)
    cache[key] = cache.pop(key)  # (the last used last)
    return cache[key]


def loaded_trace(entry, owner: str) -> dict:
    """The `_traced` of a custom loss or metric from its saved [labels, pred, program]."""
    ok = isinstance(entry, list) and len(entry) == 3
    shapes = entry[:2] if ok else []
    for s in shapes:
        ok = (
            ok
            and isinstance(s, list)
            and len(s) <= 7
            and all(type(d) is int and 0 < d < 1 << 31 for d in s)
        )
    if not ok:
        raise ValueError(
            f"{owner}: a saved program is [labels, predictions, program], not {entry!r:.100}"
        )
    return {(tuple(entry[0]), tuple(entry[1])): Program.from_config(entry[2])}


def saved_trace(owner_obj, owner: str) -> list:
    """[label shape, prediction shape, program] of the custom loss's or metric's last trace
    (what a file keeps of it; `loaded_trace` reads it back)."""
    cache = owner_obj.__dict__.get("_traced", {})
    if not cache:
        raise ValueError(f"{owner} cannot be saved before its model traces it (fit or build).")
    (labels, pred), program = list(cache.items())[-1]
    return [list(labels), list(pred), program.get_config()]


class TracedFunction:
    """What a custom loss and a custom metric given as a function share: the function
    `fn(y_true, y_pred, **kwargs)` of deepcore.ops, traced per label shape (`traced`);
    saved as its last program, and loaded as that program alone (fn None)."""

    _family = "Function"
    name: Any  # (the loss's or metric's)

    def _take_function(self, fn, kwargs: dict, program) -> None:
        if fn is None and program is None:
            raise ValueError(f"{type(self).__name__} needs a function")
        self.fn, self.fn_kwargs = fn, kwargs
        if program is not None:  # (loaded: the program its model traced)
            self._traced = loaded_trace(program, self._owner_text())

    def _owner_text(self) -> str:
        return f"{self._family} {self.name!r}"

    def __getstate__(self) -> dict:
        """pickle and deepcopy: its traced programs, and its function where pickle can carry
        one (`by_name`)."""
        if not self.__dict__.get("_traced"):
            return self.__dict__
        return dict(self.__dict__, fn=by_name(self.fn))

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        if self.fn is None:
            raise ValueError(
                f"{self._owner_text()} was loaded without its function: its program runs in "
                "the model only"
            )
        return self.fn(y_true, y_pred, **self.fn_kwargs)


class _Placeholder:
    """What a traced function's placeholder tensors are made by."""

    def __init__(self, name):
        self.name = name


def trace(function, shapes, owner: str) -> Program:
    """The program of `function(placeholders)`, placeholders being symbolic tensors of the
    sample `shapes` (a shape may be (): one value per sample); `owner` names the layer, loss
    or metric in errors."""
    from ..models.functional import _user_line

    holders = [SymbolicTensor(tuple(s), _Placeholder(f"input_{j}")) for j, s in enumerate(shapes)]
    try:
        out = function(holders)
    except TypeError as e:
        if "no value" not in str(e) and "symbolic" not in str(e).lower():
            raise
        raise ValueError(
            f"{owner}: its function cannot be traced at {_user_line(e)}: it depends on the "
            f"values flowing through the model ({e})"
        ) from None
    except ValueError as e:  # an op refused its arguments: say whose function
        raise ValueError(f"{owner}: {e}" if not str(e).startswith(owner) else str(e)) from None
    if not isinstance(out, SymbolicTensor):
        raise ValueError(
            f"{owner}: its function must return a tensor computed with deepcore.ops from its "
            f"inputs; returned {out!r:.100}"
        )
    return _merge(holders, out, owner)


_MERGES = {
    "Add": "add",
    "Subtract": "subtract",
    "Multiply": "multiply",
    "Maximum": "maximum",
    "Minimum": "minimum",
    "Average": "add",
}


def _program_of(layer, n: int):
    """The program of a layer a traced function called: a Lambda's, or a merge layer's (the
    operators between tensors of one shape) over its n inputs; None for any other layer."""
    if isinstance(layer, Lambda):
        return layer._program
    op = _MERGES.get(type(layer).__name__)
    if op is None:
        return None
    average = type(layer).__name__ == "Average"
    steps = [{"kind": "binary", "op": op, "a": 0, "b": 1}]
    first = n + average  # registers: the inputs, the constant 1/n of an average, the steps
    for j in range(2, n):
        steps.append({"kind": "binary", "op": op, "a": first + len(steps) - 1, "b": j})
    if average:
        steps.append({"kind": "binary", "op": "multiply", "a": first + len(steps) - 1, "b": n})
    return Program(n, [np.float32(1 / n)] if average else [], steps)


def _merge(holders, out, owner) -> Program:
    """The one-program equivalent of the op nodes between the placeholders and `out`."""
    if any(out is h for h in holders):  # the identity
        index = next(i for i, h in enumerate(holders) if h is out)
        return Program(len(holders), [], [{"kind": "unary", "op": "copy", "a": index}])
    order, seen, stack = [], set(), [(out, False)]
    while stack:  # post-order from the output
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen or any(t is h for h in holders):
            continue
        seen.add(id(t))
        layer = t._layer
        if _program_of(layer, len(t._inputs)) is None:
            kind = type(layer).__name__
            raise ValueError(
                f"{owner}: its function may use deepcore.ops and operators only; it calls "
                f"{kind} {layer.name!r}"
                + (" on a tensor from outside it" if kind == "InputLayer" else "")
            )
        stack.append((t, True))
        stack.extend((s, False) for s in reversed(t._inputs))
    regs = {id(h): i for i, h in enumerate(holders)}
    constants: list = []
    steps: list[dict] = []
    for t in order:
        program = _program_of(t._layer, len(t._inputs))
        inner = [regs[id(s)] for s in t._inputs]  # its inputs' registers
        base = len(holders)
        consts = []
        for c in program.constants:
            consts.append(base + _CONST_OFFSET + len(constants))
            constants.append(c)
        local = inner + consts
        first = len(steps)
        for s in program.steps:
            s = dict(s)
            for key in ("a", "b"):
                if key in s and s[key] >= 0:
                    r = s[key]
                    s[key] = local[r] if r < len(local) else _STEP_OFFSET + first + (r - len(local))
            steps.append(s)
        regs[id(t)] = _STEP_OFFSET + len(steps) - 1
    # registers: holders, then constants, then steps
    k, nc = len(holders), len(constants)

    def final(r):
        if r >= _STEP_OFFSET:
            return k + nc + (r - _STEP_OFFSET)
        if r >= k + _CONST_OFFSET:
            return k + (r - k - _CONST_OFFSET)
        return r

    for s in steps:
        for key in ("a", "b"):
            if key in s and s[key] >= 0:
                s[key] = final(s[key])
    return Program(k, constants, steps)


_CONST_OFFSET = 1 << 20  # provisional register numbers while merging
_STEP_OFFSET = 1 << 40
