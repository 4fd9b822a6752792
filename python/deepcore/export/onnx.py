"""ONNX export (Keras 3's `model.export(path, format="onnx")`): the model's inference graph
as ONNX operators (opset 17), its weights as initializers, a free batch dimension. Layers
that export: Dense, Conv1D, Conv2D, pooling (max, average, global), Flatten, Reshape,
UpSampling1D, BatchNormalization (folded into a scale and a shift), Dropout (nothing at
inference), the activation layers and every activation, Embedding, SimpleRNN, LSTM, GRU,
Bidirectional, TimeDistributed, and the merge layers (Add, Subtract, Multiply, Average,
Maximum, Minimum, Concatenate, Dot). Not exported (a clear error names the layer): masks
(Embedding(mask_zero=True), Masking), Lambda layers and deepcore.ops on tensors,
TextVectorization. Needs the onnx package (pip install onnx).

Keras' tensors are channels-last; ONNX's convolutions and pools are channels-first: a
tensor is moved between the two only where an operator needs the other (a chain of
convolutions and pools stays channels-first)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import activations

__all__ = ["export_onnx"]

OPSET = 17
_SELU_ALPHA, _SELU_GAMMA = 1.6732632423543772, 1.0507009873554805


class _T:
    """A tensor of the graph: its name, rank (with the batch axis), and whether it is held
    channels-first (N, C, ...) rather than Keras' channels-last."""

    def __init__(self, name: str, rank: int, first: bool = False):
        self.name, self.rank, self.first = name, rank, first


class _Graph:
    def __init__(self, onnx):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array, hint="const", dtype=np.float32) -> str:
        name = self.name(hint)
        self.initializers.append(
            self.onnx.numpy_helper.from_array(np.ascontiguousarray(array, dtype), name)
        )
        return name

    def op(self, op_type: str, inputs, outputs: int = 1, **attrs):
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    # --- layouts
    def last(self, t: _T) -> _T:
        """t channels-last."""
        if not t.first:
            return t
        perm = [0, *range(2, t.rank), 1]
        return _T(self.op("Transpose", [t.name], perm=perm), t.rank)

    def firsts(self, t: _T) -> _T:
        """t channels-first."""
        if t.first:
            return t
        perm = [0, t.rank - 1, *range(1, t.rank - 1)]
        return _T(self.op("Transpose", [t.name], perm=perm), t.rank, True)

    # --- activations
    def activation(self, t: _T, fn, alpha=None) -> _T:
        kind = activations.serialize(fn)
        if kind == "linear":
            return t
        x = t.name
        if kind == "softmax":
            t = self.last(t)
            return _T(self.op("Softmax", [t.name], axis=-1), t.rank)
        if alpha is None:
            alpha = {"leaky_relu": 0.2, "elu": 1.0}.get(kind)
        simple: dict[str, tuple[str, dict[str, Any]]] = {
            "relu": ("Relu", {}),
            "sigmoid": ("Sigmoid", {}),
            "tanh": ("Tanh", {}),
            "softplus": ("Softplus", {}),
            "softsign": ("Softsign", {}),
            "exponential": ("Exp", {}),
            "leaky_relu": ("LeakyRelu", {"alpha": float(alpha or 0.0)}),
            "elu": ("Elu", {"alpha": float(alpha or 0.0)}),
            "selu": ("Selu", {"alpha": _SELU_ALPHA, "gamma": _SELU_GAMMA}),
            "hard_sigmoid": ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),
        }
        if kind in simple:
            op, attrs = simple[kind]
            return _T(self.op(op, [x], **attrs), t.rank, t.first)
        if kind == "swish":
            y = self.op("Mul", [x, self.op("Sigmoid", [x])])
        elif kind == "gelu":  # 0.5 x (1 + erf(x / sqrt 2))
            erf = self.op("Erf", [self.op("Mul", [x, self.const(np.float32(1 / np.sqrt(2)))])])
            half = self.op("Mul", [x, self.const(np.float32(0.5))])
            y = self.op("Mul", [half, self.op("Add", [erf, self.const(np.float32(1.0))])])
        elif kind == "step":
            y = self.op("Cast", [self.op("GreaterOrEqual", [x, self.const(np.float32(0))])], to=1)
        else:
            raise ValueError(f"the activation {kind!r} has no ONNX export")
        return _T(y, t.rank, t.first)


def _refuse(layer, why: str):
    raise ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) does not export to ONNX: {why}"
    )


def _dense(g, layer, x: _T, w) -> _T:
    x = g.last(x)
    y = g.op("MatMul", [x.name, g.const(w[0], "kernel")])
    if layer.use_bias:
        y = g.op("Add", [y, g.const(w[1], "bias")])
    return g.activation(_T(y, x.rank), layer.activation)


def _conv(g, layer, x: _T, w) -> _T:
    x = g.firsts(x)
    spatial = x.rank - 2
    kernel = np.transpose(w[0], (spatial + 1, spatial, *range(spatial)))  # (out, in, k...)
    ins = [x.name, g.const(kernel, "kernel")] + ([g.const(w[1], "bias")] if layer.use_bias else [])
    k = list(layer.kernel_size)
    dilations = list(getattr(layer, "dilation_rate", (1,) * spatial))
    attrs: dict[str, Any] = {
        "kernel_shape": k,
        "strides": list(layer.strides),
        "dilations": dilations,
    }
    if layer.padding == "causal":  # all (k - 1) * dilation positions on the left
        attrs["pads"] = [(k[0] - 1) * dilations[0], 0]
    else:
        attrs["auto_pad"] = "SAME_UPPER" if layer.padding == "same" else "VALID"
    return g.activation(_T(g.op("Conv", ins, **attrs), x.rank, True), layer.activation)


def _pool(g, layer, x: _T, w) -> _T:
    x = g.firsts(x)
    attrs = {
        "kernel_shape": list(layer.pool_size),
        "strides": list(layer.strides),
        "auto_pad": "SAME_UPPER" if layer.padding == "same" else "VALID",
    }
    if layer.is_max:
        return _T(g.op("MaxPool", [x.name], **attrs), x.rank, True)
    return _T(g.op("AveragePool", [x.name], count_include_pad=0, **attrs), x.rank, True)


def _global_pool(g, layer, x: _T, w) -> _T:
    x = g.last(x)
    op = "ReduceMax" if "Max" in type(layer).__name__ else "ReduceMean"
    keep = int(bool(getattr(layer, "keepdims", False)))
    y = g.op(op, [x.name], axes=list(range(1, x.rank - 1)), keepdims=keep)
    return _T(y, x.rank if keep else 2)


def _batch_norm(g, layer, x: _T, w) -> _T:
    w = list(w)
    gamma = w.pop(0) if layer.scale else None
    beta = w.pop(0) if layer.center else None
    mean, var = w
    scale = (gamma if gamma is not None else 1.0) / np.sqrt(var.astype(np.float64) + layer.epsilon)
    shift = (beta if beta is not None else 0.0) - mean * scale
    shape = (-1, *[1] * (x.rank - 2)) if x.first else (-1,)
    y = g.op("Mul", [x.name, g.const(scale.reshape(shape), "scale")])
    return _T(g.op("Add", [y, g.const(shift.reshape(shape), "shift")]), x.rank, x.first)


def _flatten(g, layer, x: _T, w) -> _T:
    x = g.last(x)
    return _T(g.op("Flatten", [x.name], axis=1), 2)


def _reshape(g, layer, x: _T, w) -> _T:
    x = g.last(x)
    shape = g.const(np.array([0, *layer.target_shape], np.int64), "shape", np.int64)
    return _T(g.op("Reshape", [x.name, shape]), len(layer.target_shape) + 1)


def _upsampling(g, layer, x: _T, w) -> _T:
    """Each step `size` times: a nearest Resize by an integer scale along the steps."""
    x = g.last(x)
    scales = g.const(np.array([1.0, layer.size, 1.0], np.float32), "scales")
    y = g.op(
        "Resize",
        [x.name, "", scales],
        mode="nearest",
        nearest_mode="floor",
        coordinate_transformation_mode="asymmetric",
    )
    return _T(y, 3)


def _activation_layer(g, layer, x: _T, w) -> _T:
    params = list(layer._param().values()) if hasattr(layer, "_param") else []
    return g.activation(x, layer.activation, params[0] if params else None)


def _embedding(g, layer, x: _T, w) -> _T:
    ids = g.op("Cast", [x.name], to=7)  # INT64
    return _T(g.op("Gather", [g.const(w[0], "embeddings"), ids]), x.rank + 1)


def _recurrent_weights(layer, w):
    """ONNX's W, R, B (one direction) of a Keras SimpleRNN, LSTM or GRU's weights."""
    kind = type(layer).__name__
    kernel, recurrent = w[0], w[1]
    bias = w[2] if layer.use_bias else None
    units = recurrent.shape[0]
    if kind == "LSTM":  # Keras' gates i, f, c, o; ONNX's i, o, f, c

        def order(a):
            i, f, c, o = np.split(a, 4, axis=-1)
            return np.concatenate([i, o, f, c], axis=-1)

        kernel, recurrent = order(kernel), order(recurrent)
        b = (
            np.zeros(8 * units)
            if bias is None
            else np.concatenate([order(bias), np.zeros(4 * units)])
        )
    elif kind == "GRU":  # z, r, h in both; Keras' bias (input, recurrent) with reset_after
        if bias is None:
            b = np.zeros(6 * units)
        else:
            b = (
                np.concatenate([bias[0], bias[1]])
                if bias.ndim == 2
                else np.concatenate([bias, np.zeros(3 * units)])
            )
    else:
        b = np.zeros(2 * units) if bias is None else np.concatenate([bias, np.zeros(units)])
    return kernel.T, recurrent.T, b, units


def _rnn_attrs(layer) -> tuple[str, dict]:
    kind = type(layer).__name__
    act = activations.serialize(layer.activation)
    names = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu"}
    if act not in names:
        _refuse(layer, f"activation {act!r}")
    if kind == "SimpleRNN":
        return "RNN", {"activations": [names[act]]}
    rec = activations.serialize(layer.recurrent_activation)
    if rec not in names:
        _refuse(layer, f"recurrent_activation {rec!r}")
    if kind == "LSTM":
        return "LSTM", {"activations": [names[rec], names[act], names[act]]}
    if not getattr(layer, "reset_after", True):
        _refuse(layer, "reset_after=False")
    return "GRU", {"activations": [names[rec], names[act]], "linear_before_reset": 1}


def _run_rnn(g, layers, weights, x: _T, direction: str):
    """Y (seq, directions, batch, units) and Y_h (directions, batch, units) of ONNX's
    recurrent op over one or two layers (forward, backward)."""
    op, attrs = _rnn_attrs(layers[0])
    attrs["activations"] = attrs["activations"] * len(layers)  # (each direction's)
    parts = [_recurrent_weights(la, w) for la, w in zip(layers, weights)]
    units = parts[0][3]
    W = g.const(np.stack([p[0] for p in parts]), "W")
    R = g.const(np.stack([p[1] for p in parts]), "R")
    B = g.const(np.stack([p[2] for p in parts]), "B")
    seq = g.op("Transpose", [g.last(x).name], perm=[1, 0, 2])
    outs = 3 if op == "LSTM" else 2
    y = g.op(op, [seq, W, R, B], outputs=outs, hidden_size=units, direction=direction, **attrs)
    return y[0], y[1]


def _sequence_out(g, y: str, y_h: str, return_sequences: bool, backwards: bool) -> str:
    """One direction's output as Keras gives it: (batch, seq, units) or (batch, units)."""
    if not return_sequences:
        return g.op("Squeeze", [y_h, g.const(np.array([0], np.int64), "axes", np.int64)])
    y = g.op("Squeeze", [y, g.const(np.array([1], np.int64), "axes", np.int64)])
    if backwards:  # (Keras returns a backward layer's steps in the order it ran them)
        y = g.op(
            "Slice",
            [
                y,
                g.const(np.array([-1], np.int64), "starts", np.int64),
                g.const(np.array([np.iinfo(np.int64).min], np.int64), "ends", np.int64),
                g.const(np.array([0], np.int64), "axes", np.int64),
                g.const(np.array([-1], np.int64), "steps", np.int64),
            ],
        )
    return g.op("Transpose", [y], perm=[1, 0, 2])


def _recurrent(g, layer, x: _T, w) -> _T:
    backwards = bool(layer.go_backwards)
    y, y_h = _run_rnn(g, [layer], [w], x, "reverse" if backwards else "forward")
    out = _sequence_out(g, y, y_h, layer.return_sequences, backwards)
    return _T(out, 3 if layer.return_sequences else 2)


def _bidirectional(g, layer, x: _T, w) -> _T:
    fwd, bwd = layer.forward_layer, layer.backward_layer
    n = len(w) // 2
    y, y_h = _run_rnn(g, [fwd, bwd], [w[:n], w[n:]], x, "bidirectional")
    seqs = fwd.return_sequences
    # (seq, 2, batch, units) -> (batch, seq, 2, units); (2, batch, units) -> (batch, 2, units)
    y = (
        g.op("Transpose", [y], perm=[2, 0, 1, 3])
        if seqs
        else g.op("Transpose", [y_h], perm=[1, 0, 2])
    )
    axis = 2 if seqs else 1
    mode = layer.merge_mode
    if mode == "concat":
        shape = [0, 0, -1] if seqs else [0, -1]
        out = g.op("Reshape", [y, g.const(np.array(shape, np.int64), "shape", np.int64)])
    else:
        op = {"sum": "ReduceSum", "ave": "ReduceMean", "mul": "ReduceProd"}[mode]
        if op == "ReduceSum":
            axes = g.const(np.array([axis], np.int64), "axes", np.int64)
            out = g.op(op, [y, axes], keepdims=0)
        else:
            out = g.op(op, [y], axes=[axis], keepdims=0)
    return _T(out, 3 if seqs else 2)


def _time_distributed(g, layer, x: _T, w) -> _T:
    return _HANDLERS[type(layer.layer).__name__](g, layer.layer, x, w)


def _merge(g, layer, xs, w) -> _T:
    xs = [g.last(x) for x in xs]
    names = [x.name for x in xs]
    kind = type(layer).__name__
    if kind in ("Add", "Average", "Maximum", "Minimum"):
        op = {"Add": "Sum", "Average": "Mean", "Maximum": "Max", "Minimum": "Min"}[kind]
        return _T(g.op(op, names), xs[0].rank)
    if kind == "Subtract":
        return _T(g.op("Sub", names), xs[0].rank)
    if kind == "Multiply":
        y = names[0]
        for n in names[1:]:
            y = g.op("Mul", [y, n])
        return _T(y, xs[0].rank)
    if kind == "Concatenate":
        return _T(g.op("Concat", names, axis=int(layer.axis)), xs[0].rank)
    return _dot(g, layer, xs)


def _dot(g, layer, xs) -> _T:
    a, b = (x.name for x in xs)
    rank = xs[0].rank
    ax, ay = (p if p > 0 else p + rank for p in layer._pair)
    if layer.normalize:
        a, b = (_l2_normalize(g, v, axis) for v, axis in ((a, ax), (b, ay)))
    if rank == 2:
        axes = g.const(np.array([1], np.int64), "axes", np.int64)
        return _T(g.op("ReduceSum", [g.op("Mul", [a, b]), axes], keepdims=1), 2)
    a = a if ax == 2 else g.op("Transpose", [a], perm=[0, 2, 1])
    b = b if ay == 1 else g.op("Transpose", [b], perm=[0, 2, 1])
    return _T(g.op("MatMul", [a, b]), 3)


def _l2_normalize(g, x: str, axis: int) -> str:
    """Keras' x * min(1 / sqrt(sum x^2), 1e7) along axis."""
    axes = g.const(np.array([axis], np.int64), "axes", np.int64)
    total = g.op("ReduceSum", [g.op("Mul", [x, x]), axes], keepdims=1)
    inverse = g.op("Reciprocal", [g.op("Sqrt", [total])])
    return g.op("Mul", [x, g.op("Min", [inverse, g.const(np.float32(1e7))])])


_HANDLERS = {
    "Dense": _dense,
    "Conv2D": _conv,
    "Conv1D": _conv,
    "MaxPooling2D": _pool,
    "AveragePooling2D": _pool,
    "MaxPooling1D": _pool,
    "AveragePooling1D": _pool,
    "GlobalAveragePooling2D": _global_pool,
    "GlobalAveragePooling1D": _global_pool,
    "GlobalMaxPooling1D": _global_pool,
    "BatchNormalization": _batch_norm,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "UpSampling1D": _upsampling,
    "Dropout": lambda g, layer, x, w: x,
    "Activation": _activation_layer,
    "ReLU": _activation_layer,
    "LeakyReLU": _activation_layer,
    "ELU": _activation_layer,
    "Softmax": _activation_layer,
    "Embedding": _embedding,
    "SimpleRNN": _recurrent,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "Bidirectional": _bidirectional,
    "TimeDistributed": _time_distributed,
}
_MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"}


def _graph_of(model):
    """(input names and shapes, each layer's input values, output layers, output names) of
    a Sequential or functional model (values: -1 - j input j, i layer i's output)."""
    wiring = getattr(model, "_wiring", None)
    if wiring is None:
        n = len(model._layers)
        return (
            ["input"],
            [tuple(model._input_shape)],
            [[i - 1] for i in range(n)],
            [n - 1],
            ["output"],
        )
    return (
        list(model._input_names),
        [tuple(s) for s in model._input_shapes],
        wiring,
        list(model._outputs),
        list(model._out_names),
    )


def export_onnx(model, path, opset: int = OPSET) -> None:
    """Writes the model's inference graph to `path` as an ONNX file (atomically)."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install onnx") from None
    from ..saving.file_format import _atomic_write, _fspath

    model._require_engine("export")
    names, shapes, wiring, outputs, out_names = _graph_of(model)
    for layer in model._layers:
        if layer._mask_role() == "make":
            _refuse(layer, "sequence masks have no ONNX export yet")
    g = _Graph(onnx)
    values = {-1 - j: _T(n, len(s) + 1) for j, (n, s) in enumerate(zip(names, shapes))}
    own = model._weights_by_layer("export")
    for i, (layer, wires) in enumerate(zip(model._layers, wiring)):
        kind = type(layer).__name__
        w = [np.asarray(a, np.float32) for a in own[id(layer)]]
        ins = [values[v] for v in wires]
        if kind in _MERGES:
            values[i] = _merge(g, layer, ins, w)
        elif kind in _HANDLERS:
            values[i] = _HANDLERS[kind](g, layer, ins[0], w)
        else:
            _refuse(layer, "deepcore has no ONNX form of it (see deepcore.export.onnx)")
    helper, proto = onnx.helper, onnx.TensorProto
    graph_outputs = []
    for o, name in zip(outputs, out_names):
        t = g.last(values[o])
        g.nodes.append(helper.make_node("Identity", [t.name], [name]))
        shape = ["N", *model._engine.output_shape(o)]
        graph_outputs.append(helper.make_tensor_value_info(name, proto.FLOAT, shape))
    graph_inputs = [
        helper.make_tensor_value_info(n, proto.FLOAT, ["N", *s]) for n, s in zip(names, shapes)
    ]
    graph = helper.make_graph(g.nodes, model.name, graph_inputs, graph_outputs, g.initializers)
    onnx_model = helper.make_model(
        graph, producer_name="deepcore", opset_imports=[helper.make_opsetid("", opset)]
    )
    onnx.checker.check_model(onnx_model)
    _atomic_write(_fspath(path), onnx_model.SerializeToString(), True)
