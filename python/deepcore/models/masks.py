"""Keras' sequence masks across a Sequential model: which layer makes a mask (an
`Embedding(mask_zero=True)`, a `Masking`), which layers read it (recurrent layers,
`Bidirectional`, `GlobalAveragePooling1D`), which pass it on unchanged, and where it stops."""

from __future__ import annotations

import warnings

__all__ = ["plan_masks"]


def plan_masks(layers, engine=None, warn=True):
    """Follows the mask along `layers` as Keras does, pointing each layer that reads it at the
    layer that makes it (`engine.set_mask_source`, when an engine is given), and returns the
    index of the layer whose mask reaches the model's output, or None.

    Each layer's `_mask_role()` says what it does with a mask: "make" one (replacing any
    before it), "pass" it on (Dense, Dropout, activations), "read" it and stop it
    (GlobalAveragePooling1D, a recurrent layer returning its last output), "read_pass" (a
    recurrent layer returning sequences), "drop" it (a layer without masking support: Keras
    warns, and so does deepcore), or "refuse" it (a layer whose Keras maths uses the mask and
    deepcore's does not yet: a ValueError naming the layer)."""
    maker = None
    for i, layer in enumerate(layers):
        role = layer._mask_role()
        if maker is not None and role != "make":
            if role in ("read", "read_pass") and engine is not None:
                engine.set_mask_source(i, maker)
            elif role == "refuse":
                raise ValueError(
                    f"Layer {layer.name!r} ({type(layer).__name__}) received the mask made by "
                    f"layer {layers[maker].name!r}, and deepcore's {type(layer).__name__} cannot "
                    "use a mask yet (Keras' does). Put it before the layer making the mask, "
                    "or after a layer that ends it (an LSTM returning its last output, "
                    "GlobalAveragePooling1D)."
                )
            elif role == "drop" and warn:
                warnings.warn(
                    f"Layer {layer.name!r} (of type {type(layer).__name__}) was passed an "
                    "input with a mask attached to it. However, this layer does not support "
                    "masking and will therefore destroy the mask information. Downstream "
                    "layers will not see the mask.",
                    stacklevel=4,
                )
            if role in ("read", "drop", "refuse"):
                maker = None
        if role == "make":
            maker = i
    return maker
