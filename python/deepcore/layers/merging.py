"""Merge layers (Keras 3's `keras.layers.Add`, ... and their functions `add`, ...): they
take a list of tensors in a functional model and run in the engine (merge_maths.h)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import _core
from .._registry import check_bool, is_int
from .core import Layer
from .symbolic import SymbolicTensor

__all__ = [
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Dot",
    "add",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "concatenate",
    "dot",
]


def _one_mask(layer, makers, layers, why="") -> int | None:
    """Keras' mask of a merge: the OR of its inputs' masks, none if an input has none (an
    unmasked input counts as all steps kept). deepcore carries one mask through the graph:
    the inputs' masks must be one mask (made by one layer), or the layer says why not."""
    present = sorted({m for m in makers if m is not None})
    if not present or (None in makers and not why):
        return None
    if len(present) > 1 or why:
        names = [layers[m].name for m in present]
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) joins inputs carrying the masks "
            f"made by {names}; "
            + (why or "deepcore does not combine different masks yet (Keras ORs them)")
            + ". End the masks before it (an LSTM returning its last output, "
            "GlobalAveragePooling1D)."
        )
    return present[0]


_VALUES_AT_MASKED_STEPS = (
    "Keras replaces the values at masked steps there (by 1 for Multiply, by another "
    "input's for Maximum and Minimum) and deepcore does not yet"
)


class _Merge(Layer):
    """Element by element over inputs of one shape (Keras also broadcasts axes of size 1;
    deepcore needs the shapes equal)."""

    _op = ""
    _inputs = "2 or more"
    # Why deepcore refuses a mask here (Keras changes the values at masked steps)
    _masked = ""

    def _merge_masks(self, makers, layers):
        return _one_mask(self, makers, layers, self._masked)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_merge(getattr(_core.MergeOp, self._op))

    def _takes_several_inputs(self) -> bool:
        return True

    def _check_count(self, shapes):
        n = len(shapes)
        if (n != 2) if self._inputs == "exactly 2" else not 2 <= n <= 16:
            want = "exactly 2" if self._inputs == "exactly 2" else "2 to 16"
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) takes {want} inputs, received "
                f"{n}: {list(shapes)}"
            )

    def compute_output_shape(self, input_shape: Sequence[Any]) -> tuple[int | None, ...]:
        shapes = [tuple(s) for s in input_shape]
        self._check_count(shapes)
        if any(s != shapes[0] for s in shapes):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) needs inputs of one shape; "
                f"received shapes {shapes}"
            )
        return shapes[0]


class Add(_Merge):
    """The sum of its inputs."""

    _op = "add"


class Subtract(_Merge):
    """inputs[0] - inputs[1]."""

    _op = "subtract"
    _inputs = "exactly 2"


class Multiply(_Merge):
    """The product of its inputs."""

    _op = "multiply"
    _masked = _VALUES_AT_MASKED_STEPS


class Average(_Merge):
    """The mean of its inputs."""

    _op = "average"


class Maximum(_Merge):
    """The largest of its inputs, element by element (its gradient goes to the first input
    holding the maximum)."""

    _op = "maximum"
    _masked = _VALUES_AT_MASKED_STEPS


class Minimum(_Merge):
    """The smallest of its inputs, element by element."""

    _op = "minimum"
    _masked = _VALUES_AT_MASKED_STEPS


class Concatenate(Layer):
    """Joins its inputs along `axis` (Keras' axis: 0 is the batch, -1 the last axis); the
    other axes must be equal.

    Args:
        axis: The axis to join along (not the batch axis).
    """

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not is_int(axis, -32, 32) or axis == 0:
            raise ValueError(
                f"{self._owner}: `axis` must be a non-zero integer (0 is the batch axis). "
                f"Received: axis={axis!r}"
            )
        self.axis = int(axis)

    def _engine_axis(self) -> int:
        return self.axis - 1 if self.axis > 0 else self.axis

    def _merge_masks(self, makers, layers):
        along_steps = not getattr(self, "_along_last", True)
        why = "Keras joins the masks along the steps there, and deepcore does not yet"
        return _one_mask(self, makers, layers, why if along_steps else "")

    def add_to(self, engine: _core.Model) -> None:
        engine.add_concatenate(self._engine_axis())

    def _takes_several_inputs(self) -> bool:
        return True

    def compute_output_shape(self, input_shape: Sequence[Any]) -> tuple[int | None, ...]:
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2:
            raise ValueError(
                f"Layer {self.name!r} (Concatenate) takes at least 2 inputs, received "
                f"{len(shapes)}: {shapes}"
            )
        rank = len(shapes[0])
        axis = self.axis if self.axis > 0 else self.axis + rank
        if not 1 <= axis < rank or any(len(s) != rank for s in shapes):
            raise ValueError(
                f"Layer {self.name!r} (Concatenate): axis={self.axis} does not fit inputs of "
                f"shapes {shapes}"
            )
        for s in shapes:
            if any(a != b for d, (a, b) in enumerate(zip(s, shapes[0])) if d not in (0, axis)):
                raise ValueError(
                    f"Layer {self.name!r} (Concatenate) needs inputs of one shape except along "
                    f"the concatenation axis {self.axis}; received shapes {shapes}"
                )
        self._along_last = axis == rank - 1
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class Dot(Layer):
    """The dot product of two samples along `axes` (Keras' Dot, its batch_dot): two vectors
    give one number per sample, shape (batch, 1); two matrices contracted along axes
    (i, j) give (batch, free axis of the first, free axis of the second).

    Args:
        axes: An axis (both inputs) or a pair (Keras' axes: 0 is the batch).
        normalize: L2-normalize the inputs along `axes` first (cosine proximity), as
            Keras does: x * min(1 / sqrt(sum x^2), 1e7).
    """

    def __init__(self, axes: int | tuple[int, int], normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pair = tuple(axes) if isinstance(axes, (list, tuple)) else (axes, axes)
        if len(pair) != 2 or not all(is_int(a, -3, 2) and a != 0 for a in pair):
            raise ValueError(
                f"{self._owner}: `axes` must be an axis or a pair of axes of the samples "
                f"(1, 2, -1 or -2; 0 is the batch). Received: axes={axes!r}"
            )
        self.axes, self.normalize = axes, check_bool("normalize", normalize, self._owner)
        self._pair = tuple(int(a) for a in pair)

    def _merge_masks(self, makers, layers):
        return None  # Keras' Dot ends masks (without a warning)

    def add_to(self, engine: _core.Model) -> None:
        engine.add_dot(*(a - 1 if a > 0 else a for a in self._pair), normalize=self.normalize)  # type: ignore[arg-type, misc]

    def _takes_several_inputs(self) -> bool:
        return True

    def compute_output_shape(self, input_shape: Sequence[Any]) -> tuple[int | None, ...]:
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) != 2 or len(shapes[0]) != len(shapes[1]) or len(shapes[0]) not in (2, 3):
            raise ValueError(
                f"Layer {self.name!r} (Dot) takes two inputs of one rank, 2 or 3 with the "
                f"batch axis; received shapes {shapes}"
            )
        rank = len(shapes[0])
        ax, ay = (a if a > 0 else a + rank for a in self._pair)
        if not (1 <= ax < rank and 1 <= ay < rank) or shapes[0][ax] != shapes[1][ay]:
            raise ValueError(
                f"Layer {self.name!r} (Dot): axes {self.axes} pair sizes "
                f"{shapes[0][ax] if 1 <= ax < rank else '?'} and "
                f"{shapes[1][ay] if 1 <= ay < rank else '?'} of inputs {shapes}; they must be equal"
            )
        if rank == 2:
            return (None, 1)
        return (None, shapes[0][3 - ax], shapes[1][3 - ay])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def add(inputs: Sequence[SymbolicTensor], **kwargs: Any) -> SymbolicTensor:
    """Add()(inputs)."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Sequence[SymbolicTensor], **kwargs: Any) -> SymbolicTensor:
    """Subtract()(inputs)."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Sequence[SymbolicTensor], **kwargs: Any) -> SymbolicTensor:
    """Multiply()(inputs)."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Sequence[SymbolicTensor], **kwargs: Any) -> SymbolicTensor:
    """Average()(inputs)."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Sequence[SymbolicTensor], **kwargs: Any) -> SymbolicTensor:
    """Maximum()(inputs)."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Sequence[SymbolicTensor], **kwargs: Any) -> SymbolicTensor:
    """Minimum()(inputs)."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Sequence[SymbolicTensor], axis: int = -1, **kwargs: Any) -> SymbolicTensor:
    """Concatenate(axis)(inputs)."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(
    inputs: Sequence[SymbolicTensor],
    axes: int | tuple[int, int] = -1,
    normalize: bool = False,
    **kwargs: Any,
) -> SymbolicTensor:
    """Dot(axes, normalize)(inputs)."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
