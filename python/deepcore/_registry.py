"""Name lookup shared by every family (activations, losses, optimizers, ...)."""

from __future__ import annotations


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
