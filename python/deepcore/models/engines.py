"""What the models share about their engine: building one for a list of layers, naming the
layer an engine message is about, the weights' views, and an engine whose memory the host
cannot read used as if it could."""

from __future__ import annotations

import re

import numpy as np

from .. import _core
from .masks import plan_masks

__all__ = ["engine_with", "layer_named"]


def _param_views(engine, trainable, states=None):
    """(layer index, view, is trainable) of each weight in the engine's order: trainable
    ones as views into `trainable` (the weights, or a gradient of them), the others
    (moving statistics) into `states`, or left out when it is None."""
    for li, offset, shape, is_trainable in engine.param_info():
        flat = trainable if is_trainable else states
        if flat is not None:
            yield li, flat[offset : offset + int(np.prod(shape))].reshape(shape), is_trainable


def engine_with(layers, device: int = 0, warn: bool = False, wiring=None, outputs=None):
    """A new engine (on `device`) holding `layers` (connected by `wiring`, by default a line,
    with `outputs`, by default the last layer's), not built, its layers pointed at the
    sequence masks they read (with Keras' warnings for the layers that drop one if `warn`),
    and its loss and metrics at the mask that reaches the output, if one does."""
    engine = _core.Model(device)
    for layer in layers:
        layer.add_to(engine)
    maker = plan_masks(layers, engine, warn=warn, wiring=wiring, outputs=outputs)
    if maker is not None:
        engine.set_output_mask_source(maker)
    return engine


def check_augmentation_first(layers, wiring, trained) -> None:
    """A ValueError when a layer that passes no gradient back (an augmentation layer) reads,
    directly or not, a layer with weights to train: they would never learn. `wiring` as
    engine_with's; `trained[i]`: whether each weight of layer i is trained."""
    wiring = wiring or [[i - 1] for i in range(len(layers))]
    learns: list[str | None] = []  # per layer: the name of a trained layer it reads, if any
    for i, (layer, values) in enumerate(zip(layers, wiring)):
        upstream = next((learns[v] for v in values if v >= 0 and learns[v]), None)
        if upstream and getattr(layer, "_passes_no_gradient", lambda: False)():
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) passes no gradient back, and it "
                f"reads layer {upstream!r}, whose weights would then never train. Put the "
                "augmentation layers first, right after the inputs (and preprocessing without "
                "weights), as Keras' examples do."
            )
        learns.append(upstream or (layer.name if any(trained[i]) else None))


def layer_named(layers, message: str):
    """(the layer, the rest) of an engine message "layer #i: rest" about one of `layers`,
    else (None, message)."""
    found = re.match(r"layer #(\d+): (.*)", message, re.S)
    if found and int(found.group(1)) < len(layers):
        return layers[int(found.group(1))], found.group(2)
    return None, message


class _HostMirror:
    """An engine whose memory the host cannot read (a GPU's), used as if it could: its
    weights and states are host arrays (what layers view and `get_weights` copies), written
    to the device before each call that computes and read back after each that trains:
    one copy each way per call, never per batch."""

    _computes = frozenset({"fit_epoch", "fit_rows", "evaluate", "predict", "gradients"})
    # (gradients: BatchNormalization's moving statistics follow the training-mode pass)
    _trains = frozenset({"fit_epoch", "fit_rows", "gradients"})

    def __init__(self, engine):
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_w", engine.read())
        object.__setattr__(self, "_s", engine.read(states=True))

    def weights(self):
        return self._w

    def states(self):
        return self._s

    def __getattr__(self, name):
        attr = getattr(self._engine, name)
        if name not in self._computes:
            return attr

        def call(*args, **kwargs):
            self._engine.write(self._w)
            self._engine.write(self._s, states=True)
            # (a predict in training mode updates BatchNormalization's moving statistics)
            trains = name in self._trains or (
                name == "predict" and bool(kwargs.get("training", args[2:3] and args[2]))
            )
            try:
                return attr(*args, **kwargs)
            finally:
                if trains:  # also after an interrupted epoch
                    self._w[...] = self._engine.read()
                    self._s[...] = self._engine.read(states=True)

        return call

    def __setattr__(self, name, value):
        setattr(self._engine, name, value)


# ------------------------------------------------------------ epoch helpers
