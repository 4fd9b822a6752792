"""Symbolic tensors (Keras' KerasTensor): what `deepcore.Input` returns and what a layer
called on them returns. They hold a shape and the layer call that makes them; no values.
`deepcore.Model(inputs, outputs)` reads the graph of calls they record."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..ops import TensorLike

__all__ = ["SymbolicTensor", "is_symbolic"]

_ids = itertools.count()


class SymbolicTensor:
    """The output of a layer in a graph being built: `shape` (None for the batch axis, then a
    sample's shape), the `layer` whose call made it, and that call's `inputs` (symbolic
    tensors). Ids grow with each call, so sorting by id puts every call after its inputs."""

    dtype = "float32"

    def __init__(
        self,
        shape: tuple,
        layer: Any,
        inputs: Iterable[SymbolicTensor] = (),
        batch_size: int | None = None,
    ) -> None:
        self.shape = (batch_size, *shape)
        self._layer = layer
        self._inputs = tuple(inputs)
        self._id = next(_ids)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        return self._layer.name

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape}, dtype=float32, made by {self._layer.name!r}>"

    # (typed as returning None, not NoReturn, so that type checkers take a symbolic tensor
    # for no numpy.typing.ArrayLike, which is anything whose __array__ gives an array: the
    # overloads of deepcore.ops then tell symbolic tensors from arrays)
    def __array__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            f"{self!r} has no values: it stands for the output of a layer in a model being "
            "defined. Call layers on it and pass it to deepcore.Model(inputs, outputs); give "
            "NumPy arrays to the model's fit or predict."
        )

    # Python operators: between symbolic tensors of one shape the merge layers (Add,
    # Subtract, Multiply), otherwise (numbers, arrays, broadcasting) deepcore.ops.
    def _binary(self, other: TensorLike, op: str, swap: bool = False) -> SymbolicTensor:
        from .. import ops
        from . import merging

        layer = {"add": merging.Add, "subtract": merging.Subtract, "multiply": merging.Multiply}
        if isinstance(other, SymbolicTensor) and other.shape[1:] == self.shape[1:] and op in layer:
            return layer[op]()([other, self] if swap else [self, other])
        return getattr(ops, op)(*((other, self) if swap else (self, other)))

    def __add__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "add")

    def __radd__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "add", swap=True)

    def __sub__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "subtract")

    def __rsub__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "subtract", swap=True)

    def __mul__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "multiply")

    def __rmul__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "multiply", swap=True)

    def __truediv__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "divide")

    def __rtruediv__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "divide", swap=True)

    def __pow__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "power")

    def __rpow__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "power", swap=True)

    def __gt__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "greater")

    def __ge__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "greater_equal")

    def __lt__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "less")

    def __le__(self, other: TensorLike) -> SymbolicTensor:
        return self._binary(other, "less_equal")

    def __neg__(self) -> SymbolicTensor:
        from .. import ops

        return ops.negative(self)

    def __abs__(self) -> SymbolicTensor:
        from .. import ops

        return ops.abs(self)

    def __bool__(self) -> bool:
        raise TypeError(
            f"{self!r} has no value to branch on: a functional model's graph cannot depend "
            "on the values flowing through it."
        )


def is_symbolic(x: Any) -> bool:
    """Whether x is a symbolic tensor or a non-empty list/tuple of them."""
    if isinstance(x, SymbolicTensor):
        return True
    many = isinstance(x, (list, tuple)) and bool(x)
    return many and all(isinstance(t, SymbolicTensor) for t in x)
