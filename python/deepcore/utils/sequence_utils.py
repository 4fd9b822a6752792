"""`pad_sequences`: ragged sequences to one rectangular array, as `keras.utils.pad_sequences`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .._registry import check_int

__all__ = ["pad_sequences"]

_SIDES = ("pre", "post")


def pad_sequences(
    sequences: Sequence[Any],
    maxlen: int | None = None,
    dtype: DTypeLike = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pads (or truncates) sequences of different lengths to one array.

    As `keras.utils.pad_sequences`: the result has shape `(len(sequences), maxlen) +
    sample_shape`, where `maxlen` defaults to the longest sequence and `sample_shape` is the
    shape of one step of the first non-empty sequence (`()` for lists of numbers).
    Shorter sequences are filled with `value` before (`padding="pre"`) or after ("post")
    their steps; longer ones lose their first (`truncating="pre"`) or last ("post") steps.
    Steps are cast to `dtype` as NumPy casts (floats to an integer dtype are truncated).

    >>> pad_sequences([[1], [2, 3], [4, 5, 6]])
    array([[0, 0, 1],
           [0, 2, 3],
           [4, 5, 6]], dtype=int32)

    Args:
        sequences: A list (or anything with a length) of sequences: lists, tuples or arrays,
            possibly empty, whose steps are numbers or arrays of one shape.
        maxlen: The number of steps kept per sequence, an int >= 0; the longest length when
            None.
        dtype: The output's dtype (`object` or a string dtype for sequences of strings).
        padding: "pre" or "post": where the fill values go.
        truncating: "pre" or "post": which end of a long sequence is cut.
        value: The fill value (a string needs `dtype=object` or a string dtype).

    Returns:
        A NumPy array of `dtype`.

    Raises:
        ValueError: `sequences` or one of its entries has no length, a step shape differs
            from the first non-empty sequence's, `padding`/`truncating` is not "pre" or
            "post", `maxlen` is not an int >= 0, or `value` does not fit `dtype`.

    Differences from Keras: `padding` and `truncating` are checked even when every sequence
    is empty (Keras checks them only on a non-empty one); `maxlen=0` gives an array of
    zero steps, and an empty `sequences` with `maxlen=None` an array of shape `(0, 0)`
    (Keras raises NumPy errors for both); a `value` NumPy cannot cast to `dtype` is a
    ValueError (Keras: a TypeError for non-string values).
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError(
            "`sequences` must be a list of sequences (an object with a length). "
            f"Received: {type(sequences).__name__}"
        )
    for name, side in (("padding", padding), ("truncating", truncating)):
        if not isinstance(side, str) or side not in _SIDES:
            raise ValueError(f'`{name}` must be "pre" or "post". Received: {name}={side!r}')
    try:
        out_dtype = np.dtype(dtype)
    except TypeError as e:
        raise ValueError(f"`dtype` is not a NumPy dtype ({e}). Received: dtype={dtype!r}") from None
    if isinstance(value, str) and out_dtype.kind not in "OSU":
        raise ValueError(
            f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}. Set "
            f"`dtype=object` for variable-length strings. Received: value={value!r}"
        )

    lengths = []
    sample_shape: tuple = ()
    found_step = False
    for i, seq in enumerate(sequences):
        try:
            lengths.append(len(seq))
        except TypeError:
            raise ValueError(
                "`sequences` must be a list of iterables (lists or arrays). "
                f"Found non-iterable at position {i}: {seq!r}"
            ) from None
        if not found_step and lengths[-1]:
            sample_shape = _steps(seq, None, i).shape[1:]
            found_step = True

    if maxlen is None:
        maxlen = max(lengths) if lengths else 0
    else:
        maxlen = check_int("maxlen", maxlen, 0)

    try:
        out = np.full((len(lengths), maxlen) + sample_shape, value, dtype=out_dtype)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(
            f"`value` cannot be stored as {out_dtype} ({e}). Received: value={value!r}"
        ) from None
    if maxlen == 0:
        return out
    for i, seq in enumerate(sequences):
        if not len(seq):
            continue
        kept = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
        kept = _steps(kept, out_dtype, i)
        if kept.shape[1:] != sample_shape:
            raise ValueError(
                f"Shape of sample {kept.shape[1:]} of sequence at position {i} is different "
                f"from expected shape {sample_shape} (the steps' shape of the first "
                "non-empty sequence)"
            )
        if padding == "post":
            out[i, : len(kept)] = kept
        else:
            out[i, -len(kept) :] = kept
    return out


def _steps(seq, dtype, i: int) -> np.ndarray:
    """The steps of sequence `i` as an array (of `dtype` unless None); a ValueError naming
    the sequence when its steps are ragged or do not convert."""
    try:
        arr = np.asarray(seq) if dtype is None else np.asarray(seq, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as e:
        to = "" if dtype is None else f" as {dtype}"
        raise ValueError(
            f"The sequence at position {i} cannot be read{to} (steps of different shapes, or "
            f"values of another type?): {e}"
        ) from None
    if arr.ndim == 0:  # a string: its characters are its steps, as in Keras
        arr = np.asarray(list(seq)) if dtype is None else np.asarray(list(seq), dtype=dtype)
    return arr
