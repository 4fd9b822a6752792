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


def check_number(name: str, value, low=0.0, inclusive=True, high=None, owner=None) -> float:
    """`value` as a float, finite and >= low (> low when not inclusive) and < high; else a
    ValueError naming the owner (a layer, say), the argument and the received value."""
    ok = (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= low if inclusive else value > low)
        and (high is None or value < high)
    )
    if not ok:
        bound = f"{'>=' if inclusive else '>'} {low}" + (f" and < {high}" if high else "")
        raise ValueError(
            f"{_prefix(owner)}`{name}` must be a number {bound}. Received: {name}={value!r}"
        )
    return float(value)


def check_positive_int(name: str, value, owner=None, default=None) -> int:
    """`value` as an int > 0 (`default` when it is None and a default is given); else a
    ValueError naming the owner, the argument and the received value."""
    if value is None and default is not None:
        return default
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"{_prefix(owner)}`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


class Trainable:
    """The `trainable` flag of layers and models. The engine trains every weight, so only
    True is taken: freezing (trainable=False) raises instead of being silently ignored."""

    def __get__(self, obj, owner=None):
        return True

    def __set__(self, obj, value):
        if value is not True and not (isinstance(value, np.bool_) and value):
            raise ValueError(
                f"{type(obj).__name__} {getattr(obj, 'name', '')!r}: freezing weights "
                f"(trainable=False) is not supported; every weight is trained. "
                f"Received: trainable={value!r}"
            )


def serialize(obj) -> dict:
    """`{"class_name": ..., "config": ...}` of a layer, loss, optimizer, initializer, ..."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(family: str, config: dict, classes):
    """The object `serialize` described, among `classes` (by class name, any case)."""
    table = {c.__name__.lower(): c for c in classes}
    return lookup(family, config["class_name"], table).from_config(config["config"])
