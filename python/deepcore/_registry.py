"""Name lookup and argument checks shared by every family (activations, layers, ...)."""

from __future__ import annotations

import math

import numpy as np


def lookup(family: str, identifier, table: dict):
    """Returns `table[name]` for a string identifier (case-insensitive).

    Raises ValueError naming the family, the received value and the known names.
    """
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in table:
            return table[key]
    plural = family + ("es" if family.endswith("s") else "s")
    raise ValueError(
        f"Unknown {family}: {identifier!r}. Known {plural}: {', '.join(sorted(table))}"
    )


def _prefix(owner) -> str:
    return f"{owner}: " if owner else ""


# The largest layer size, window, shape entry or batch size: the BLAS library behind the
# engine takes 32-bit ints.
MAX_SIZE = 2**31 - 1


def is_number(value) -> bool:
    """Whether `value` is a real, finite number (int or float, Python or NumPy; not a bool)."""
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def is_int(value, low, high=None) -> bool:
    """Whether `value` is an int (Python or NumPy; not a bool) in [low, high]."""
    if type(value) is not int:  # (the common case first: fit checks several per call)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            return False
        value = int(value)
    return low <= value and (high is None or value <= high)


def is_size(value) -> bool:
    """Whether `value` is a layer size, window, shape entry or batch size: an int in
    [1, MAX_SIZE]."""
    return is_int(value, 1, MAX_SIZE)


def check_number(
    name: str, value, low=0.0, inclusive=True, high=None, owner=None, high_inclusive=False
) -> float:
    """`value` as a float, finite and >= low (> low when not inclusive) and < high (<= high
    when high_inclusive); else a ValueError naming the owner (a layer, say), the argument
    and the received value."""
    ok = (
        is_number(value)
        and (value >= low if inclusive else value > low)
        and (high is None or (value <= high if high_inclusive else value < high))
    )
    if not ok:
        bound = f"{'>=' if inclusive else '>'} {low}"
        if high is not None:
            bound += f" and {'<=' if high_inclusive else '<'} {high}"
        raise ValueError(
            f"{_prefix(owner)}`{name}` must be a number {bound}. Received: {name}={value!r}"
        )
    return float(value)


def check_int(name: str, value, low=0, high=None, owner=None, default=None) -> int:
    """`value` as an int in [low, high] (`default` when it is None and a default is
    given); else a ValueError naming the owner, the argument and the received value."""
    if value is None and default is not None:
        return default
    if not is_int(value, low, high):
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        if high is not None:
            what += f" <= {high}"
        raise ValueError(f"{_prefix(owner)}`{name}` must be {what}. Received: {name}={value!r}")
    return int(value)


def check_positive_int(name: str, value, owner=None, default=None) -> int:
    """`value` as a size: an int in [1, MAX_SIZE] (`default` when it is None and a default
    is given); else a ValueError naming the owner, the argument and the received value."""
    if value is None and default is not None:
        return default
    if type(value) is int and 0 < value <= MAX_SIZE:  # (the common case, kept short)
        return value
    return check_int(name, value, 1, MAX_SIZE, owner, default)


def check_bool(name: str, value, owner=None) -> bool:
    """`value` as a bool (True or False, Python's or NumPy's); else a ValueError naming the
    owner, the argument and the received value."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"{_prefix(owner)}`{name}` must be True or False. Received: {name}={value!r}"
        )
    return bool(value)


def check_verbose(verbose, auto: int) -> int:
    """`verbose` of fit, evaluate and predict: "auto" (gives `auto`), 0, 1 or 2 (True and
    False count as 1 and 0); else a ValueError."""
    if isinstance(verbose, str) and verbose == "auto":
        return auto
    if not (is_int(verbose, 0, 2) or isinstance(verbose, (bool, np.bool_))):
        raise ValueError(f"`verbose` must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}")
    return int(verbose)


class Trainable:
    """The `trainable` flag of layers and models, as Keras': setting it sets it on the layers
    inside too (a model's layers, a wrapper's), and a model takes the flags into account at
    its next `compile`. A frozen layer's weights are not updated, and BatchNormalization then
    normalizes with its moving statistics in training too."""

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj.__dict__.get("_trainable", True)

    def __set__(self, obj, value):
        if isinstance(value, str) or not isinstance(value, (bool, np.bool_, int, np.integer)):
            raise ValueError(
                f"{type(obj).__name__} {getattr(obj, 'name', '')!r}: `trainable` must be True "
                f"or False. Received: trainable={value!r}"
            )
        obj.__dict__["_trainable"] = bool(value)
        for layer in obj._inner_layers():
            layer.trainable = bool(value)


def serialize(obj) -> dict:
    """`{"class_name": ..., "config": ...}` of a layer, loss, optimizer, initializer, ..."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(family: str, config: dict, classes):
    """The object `serialize` described, among `classes` (by class name, any case)."""
    table = {c.__name__.lower(): c for c in classes}
    return lookup(family, config["class_name"], table).from_config(config["config"])
