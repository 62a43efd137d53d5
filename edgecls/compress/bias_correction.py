"""Bias correction for ONNX Runtime's Q/DQ INT8 graphs: the mean output shift each convolution's weight rounding
causes, per channel, taken back out of its int32 bias.

Rounding a convolution's weights to int8 (7-bit on CPUs whose U8S8 kernels saturate) shifts its output by a
per-channel amount that does not average out: a depthwise 3x3 channel has nine weights, and their rounding errors
times the mean of its input move that channel's mean, layer after layer. Bias correction (Nagel et al., "Data-Free
Quantization", 2019; NNCF's fast bias correction does the same for OpenVINO) removes it: for each quantized
convolution, E[(W_int8 - W) * x] per output channel, with x the convolution's real inputs in the quantized graph
(its Q/DQ evaluated as written, on the calibration images). The expectation is exact, zero padding and strides
included: each kernel tap's mean input is taken over the very positions that tap reads. One pass over the images
measures every layer at once, and each layer's correction removes its own weights' error only, so the layers do not
overcorrect one another. ONNX Runtime's quantizer has no such step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import require


def _values(graph) -> dict[str, np.ndarray]:
    """Initializers and Constant nodes' tensors, by name (torch's exporter writes weights either way)."""
    from onnx import numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = numpy_helper.to_array(a.t)
    return out


def _attr(node, name: str, default):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _input_means(path: Path, names: list[str], inputs: np.ndarray, input_name: str) -> dict[str, np.ndarray]:
    """Mean over the images of each named tensor, (C, H, W), with the graph's Q/DQ evaluated as written."""
    onnx = require("onnx", "onnx")
    ort = require("onnxruntime", "onnx")
    m = onnx.load(str(path))
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no int8 kernel: the graph's meaning
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    sums: dict[str, np.ndarray] = {}
    for i in range(len(inputs)):
        for n, v in zip(names, sess.run(names, {input_name: inputs[i : i + 1]})):
            sums[n] = sums.get(n, 0) + v.astype(np.float64).sum(axis=0)
    return {n: v / len(inputs) for n, v in sums.items()}


def tap_means(x: np.ndarray, kernel: tuple[int, int], strides, pads, dilations) -> np.ndarray:
    """(C, kh, kw): for each kernel tap, the mean of the input values it reads over all output positions (zero
    padding included), from the mean input map x (C, H, W)."""
    top, left, bottom, right = pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    kh, kw = kernel
    oh = (xp.shape[1] - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (xp.shape[2] - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    out = np.empty((x.shape[0], kh, kw))
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilations[0], j * dilations[1]
            out[:, i, j] = xp[:, r0 : r0 + strides[0] * (oh - 1) + 1 : strides[0], c0 : c0 + strides[1] * (ow - 1) + 1 : strides[1]].mean(axis=(1, 2))
    return out


def correct_biases(float_path: str | Path, qdq_path: str | Path, inputs: np.ndarray) -> dict:
    """Rewrite, in place, the int32 biases of `qdq_path`'s quantized convolutions so that the weight rounding of each
    no longer moves its mean output on `inputs` (the graphs' own input format). Weights come from `float_path` (the
    graph it was quantized from; convolutions matched by node name, which quantize_static keeps). Returns what it
    did: convolutions corrected, images, the largest shift removed relative to the layer's largest bias."""
    onnx = require("onnx", "onnx")
    from onnx import numpy_helper

    fg = onnx.load(str(float_path)).graph
    fvals = _values(fg)
    fweights = {n.name: fvals.get(n.input[1]) for n in fg.node if n.op_type == "Conv"}
    m = onnx.load(str(qdq_path))
    g = m.graph
    producers = {o: n for n in g.node for o in n.output}
    inits = {t.name: t for t in g.initializer}
    qvals = _values(g)
    convs = []  # (node, its input tensor, float weights, dequantized int8 weights, int32 bias name, bias scale)
    for n in g.node:
        w_dq, b_dq = (producers.get(n.input[i]) if len(n.input) > i else None for i in (1, 2))
        if n.op_type != "Conv" or fweights.get(n.name) is None or w_dq is None or b_dq is None:
            continue
        if w_dq.op_type != "DequantizeLinear" or b_dq.op_type != "DequantizeLinear" or b_dq.input[0] not in inits:
            continue  # kept in float by the ladder: nothing rounded
        wq, ws = qvals[w_dq.input[0]].astype(np.float64), qvals[w_dq.input[1]].astype(np.float64)
        wz = qvals[w_dq.input[2]].astype(np.float64) if len(w_dq.input) > 2 and w_dq.input[2] else 0.0
        shape = (-1,) + (1,) * (wq.ndim - 1) if np.ndim(ws) == 1 else ()
        deq = (wq - np.reshape(wz, shape) if np.ndim(wz) else wq - wz) * (np.reshape(ws, shape) if shape else ws)
        convs.append((n, n.input[0], fweights[n.name].astype(np.float64), deq, b_dq.input[0],
                      qvals[b_dq.input[1]].astype(np.float64)))
    means = _input_means(Path(qdq_path), sorted({c[1] for c in convs}), inputs, g.input[0].name)
    largest = 0.0
    for n, x_name, w, wq, bias_name, bscale in convs:
        kh, kw = w.shape[2:]
        group = int(_attr(n, "group", 1))
        taps = tap_means(means[x_name], (kh, kw), _attr(n, "strides", [1, 1]), _attr(n, "pads", [0, 0, 0, 0]),
                         _attr(n, "dilations", [1, 1]))
        dw = wq - w  # (out, in/group, kh, kw)
        out, cin = dw.shape[:2]  # each group's outputs read that group's inputs
        shift = np.einsum("gckij,gkij->gc", dw.reshape(group, out // group, cin, kh, kw),
                          taps.reshape(group, cin, kh, kw)).reshape(out)
        b = numpy_helper.to_array(inits[bias_name]).astype(np.float64)
        largest = max(largest, float(np.abs(shift).max() / (np.abs(b * bscale).max() + 1e-12)))
        fixed = np.clip(np.round(b - shift / bscale), -(2**31), 2**31 - 1).astype(np.int32)
        inits[bias_name].CopyFrom(numpy_helper.from_array(fixed, bias_name))
    onnx.save(m, str(qdq_path))
    return {"convolutions": len(convs), "images": int(len(inputs)), "largest_shift_vs_bias": round(largest, 4)}


__all__ = ["correct_biases", "tap_means"]
