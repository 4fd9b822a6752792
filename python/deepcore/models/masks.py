"""Keras' sequence masks across a model's graph: which layer makes a mask (an
`Embedding(mask_zero=True)`, a `Masking`), which layers read it (recurrent layers,
`Bidirectional`, `GlobalAveragePooling1D`), which pass it on unchanged, and where it stops."""

from __future__ import annotations

import warnings

__all__ = ["plan_masks"]


def plan_masks(layers, engine=None, warn=True, wiring=None, outputs=None):
    """Follows the masks through the graph as Keras does, pointing each layer that reads one
    at the layer that makes it (`engine.set_mask_source`, when an engine is given), and
    returns the index of the layer whose mask reaches the model's output, or None.

    `wiring`: what each layer reads (-1 - j: input j; i: layer i's output), by default each
    the one before it (a line); `outputs`: the layers whose outputs are the model's (by
    default the last). Each layer's `_mask_role()` says what it does with a mask: "make" one
    (replacing any before it), "pass" it on (Dense, Dropout, activations), "read" it and
    stop it (GlobalAveragePooling1D, a recurrent layer returning its last output),
    "read_pass" (a recurrent layer returning sequences), "drop" it (a layer without masking
    support: Keras warns, and so does deepcore), or "refuse" it (a layer whose Keras maths
    uses the mask and deepcore's does not yet: a ValueError naming the layer). A layer of
    several inputs combines their masks by its `_merge_masks` (Keras' compute_mask of the
    merge layers); a mask reaching one of several outputs is refused."""
    wiring = wiring or [[i - 1] for i in range(len(layers))]
    outputs = [len(layers) - 1] if outputs is None else list(outputs)
    mask_of = {}  # value -> the layer making the mask it carries (absent: none)
    for i, (layer, values) in enumerate(zip(layers, wiring)):
        role = layer._mask_role()
        makers = {v: mask_of[v] for v in values if v in mask_of}
        if role == "make":
            mask_of[i] = i
            continue
        if not makers:
            continue
        if len(values) > 1:
            maker = layer._merge_masks([mask_of.get(v) for v in values], layers)
            if maker is not None:
                mask_of[i] = maker
            continue
        maker = makers[values[0]]
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
        if role in ("pass", "read_pass"):
            mask_of[i] = maker
    reaching = [mask_of[o] for o in outputs if o in mask_of]
    if reaching and len(outputs) > 1:
        raise ValueError(
            f"The mask made by layer {layers[reaching[0]].name!r} reaches one of the model's "
            f"{len(outputs)} outputs; deepcore applies a mask to the loss of a model of one "
            "output only. End the mask before the output."
        )
    return reaching[0] if reaching else None
