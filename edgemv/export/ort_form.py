"""An ONNX Runtime (CPU) form of a Q/DQ graph: weights of Conv/Gemm dequantized ahead of time.

The exported Q/DQ graph is made for TensorRT, which needs the DequantizeLinear on every weight to build INT8 kernels.
ONNX Runtime's CPU QDQ fusions turn DequantizeLinear -> MatMul into ``MatMulIntegerToFloat`` (integer kernel, float
output), but a Conv only becomes ``QLinearConv`` with a QuantizeLinear on its output, which these graphs do not have
(activations are quantized at the input of the next quantized layer only, as TensorRT wants). Such a Conv runs in
float anyway, and its DequantizeLinear'd weight is no constant to ORT: no Conv+BatchNorm folding, no NCHWc layout,
and the weight is dequantized on every run. Replacing that DequantizeLinear (and the QuantizeLinear of a constant
weight before it) by the float weight it computes gives the same values to ORT's Conv, quantized activations are
unchanged, and ORT's FP32 Conv optimisations apply again.

Not for TensorRT: without the weight DequantizeLinear, TensorRT would build those layers in high precision.
"""

from typing import Iterable, Tuple

import numpy as np

__all__ = ["dequantize_weights_for_ort"]


def dequantize_weights_for_ort(model, consumers: Iterable[str] = ("Conv", "Gemm")) -> Tuple[object, int]:
    """A copy of ``model`` where each weight DequantizeLinear feeding only ``consumers`` (and the QuantizeLinear of a
    constant before it, if the simplifier left one) is replaced by the float weight ONNX Runtime would compute:
    ``(clip(round(w / scale), -128, 127) - zero_point) * scale`` in float32. INT8 only. Returns (copy, count)."""
    import onnx
    from onnx import numpy_helper

    from .simplify import constant_values
    from .weights import attr_int, per_axis, quantize_constant

    out = onnx.ModelProto.FromString(model.SerializeToString())
    consts = constant_values(out)
    producer = {o: n for n in out.graph.node for o in n.output}
    users = {}
    for n in out.graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    consumers = set(consumers)

    drop, count = set(), 0
    for node in out.graph.node:
        if node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            continue
        if not users.get(node.output[0]) or any(u.op_type not in consumers for u in users[node.output[0]]):
            continue
        src = node.input[0]
        if src in consts:
            q = consts[src]
        else:
            qnode = producer.get(src)
            if qnode is None or qnode.op_type != "QuantizeLinear" or qnode.input[0] not in consts:
                continue
            if len(users.get(src, [])) != 1:
                continue
            qzp = consts.get(qnode.input[2]) if len(qnode.input) > 2 and qnode.input[2] else np.int8(0)
            if np.asarray(qzp).dtype != np.int8:
                continue
            q = quantize_constant(consts[qnode.input[0]], consts[qnode.input[1]], qzp, attr_int(qnode, "axis", 1))
            drop.add(id(qnode))
        if q.dtype != np.int8:
            continue
        axis = attr_int(node, "axis", 1)
        scale = per_axis(np.asarray(consts[node.input[1]], dtype=np.float32), q.ndim, axis)
        zp = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else np.int8(0)
        zp = per_axis(zp, q.ndim, axis)
        weight = ((q.astype(np.float32) - zp.astype(np.float32)) * scale).astype(np.float32)
        out.graph.initializer.append(numpy_helper.from_array(weight, node.output[0]))
        drop.add(id(node))
        count += 1
    kept = [n for n in out.graph.node if id(n) not in drop]
    del out.graph.node[:]
    out.graph.node.extend(kept)
    used = {i for n in kept for i in n.input} | {o.name for o in out.graph.output}
    inits = [t for t in out.graph.initializer if t.name in used]  # the float weights behind folded quantizers
    del out.graph.initializer[:]
    out.graph.initializer.extend(inits)
    return out, count
