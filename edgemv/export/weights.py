"""Quantized weights stored quantized: the QuantizeLinear of each constant weight computed ahead of time.

ModelOpt's ONNX export puts a quantize -> dequantize pair on every quantized weight and keeps the weight itself in
FP32, so an INT8 or FP8 graph is as large as the FP32 one (MambaVision-T: 127 MB). TensorRT (10.x, 11.x, RTX) and
ONNX Runtime also take the weight already quantized, a low-precision initializer feeding the dequantize node:
TensorRT's documentation ("Explicit Quantization", quantized weights) asks only that a dequantize sit between the
low-precision weight and the layer that uses it. The values are the ones the quantize node would compute at build
time, so the graph computes the same function in a quarter of the space:

- INT8, standard ``QuantizeLinear`` with an int8 zero point (:func:`quantize_constant`: ONNX's formula in float32,
  round half to even, saturate to [-128, 127]) -> an INT8 initializer;
- FP8, ModelOpt's ``trt::TRT_FP8QuantizeLinear`` (:func:`quantize_constant_fp8`: w / scale saturated to +-448,
  rounded to the nearest E4M3 value, ties to even) -> a FLOAT8E4M3FN initializer feeding its
  ``trt::TRT_FP8DequantizeLinear``.
"""

from typing import Dict, Tuple

import numpy as np

from .simplify import op_key

__all__ = ["quantize_constant", "quantize_constant_fp8", "store_quantized_weights", "per_axis"]

E4M3_MAX = 448.0
QUANTIZE_OPS = {("", "QuantizeLinear"), ("trt", "TRT_FP8QuantizeLinear")}  # (domain, op type) of what is folded


def attr_int(node, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def per_axis(value, ndim: int, axis: int) -> np.ndarray:
    """A scale or zero point shaped to broadcast against an ``ndim``-d tensor: a 1-D per-channel vector along
    ``axis``, a scalar as is."""
    value = np.asarray(value)
    if value.ndim == 1 and value.size > 1:
        shape = [1] * ndim
        shape[axis] = -1
        return value.reshape(shape)
    return value


def quantize_constant(weight, scale, zero_point, axis: int = 1) -> np.ndarray:
    """ONNX QuantizeLinear of a constant into int8: ``saturate(round(w / scale) + zero_point)`` in float32, rounding
    half to even (what ONNX Runtime computes at run time and TensorRT at build time)."""
    w = np.asarray(weight, dtype=np.float32)
    axis = axis % max(w.ndim, 1)
    s = per_axis(np.asarray(scale, dtype=np.float32), w.ndim, axis)
    zp = per_axis(np.asarray(zero_point, dtype=np.float32), w.ndim, axis)
    return np.clip(np.rint(w / s) + zp, -128, 127).astype(np.int8)


def _names_read(nodes) -> set:
    """Every tensor name the nodes read, their subgraphs' (If/Loop bodies) included."""
    names = set()
    for node in nodes:
        names.update(node.input)
        for a in node.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                names |= _names_read(g.node)
    return names


def quantize_constant_fp8(weight, scale, axis: int = 1) -> bytes:
    """The E4M3 (float8e4m3fn) bytes of ``saturate(w / scale)``, as ONNX's QuantizeLinear to FLOAT8E4M3FN with
    saturate=1 computes it (and TensorRT for ModelOpt's TRT_FP8QuantizeLinear): float32 division, then the nearest
    E4M3 value, ties to even, clamped to +-448."""
    import torch

    w = np.asarray(weight, dtype=np.float32)
    s = per_axis(np.asarray(scale, dtype=np.float32), w.ndim, axis % max(w.ndim, 1))
    x = torch.from_numpy(np.ascontiguousarray(w / s))
    q = torch.clamp(x, -E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q.view(torch.uint8).numpy().tobytes()


def _fold_one(node, consts):
    """(the quantized values, their ONNX dtype) of a quantize node of a constant weight that can be folded, else
    None."""
    from onnx import TensorProto

    weight = np.asarray(consts[node.input[0]])
    if weight.dtype not in (np.float32, np.float16) or attr_int(node, "block_size", 0):
        return None
    scale = consts.get(node.input[1]) if len(node.input) > 1 else None
    if scale is None:
        return None
    axis = attr_int(node, "axis", 1)
    if op_key(node) == ("", "QuantizeLinear"):
        zero_point = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero_point is None or np.asarray(zero_point).dtype != np.int8:
            return None  # no zero point means uint8 (or output_dtype from opset 21): not what ModelOpt writes
        return quantize_constant(weight, scale, zero_point, axis), TensorProto.INT8
    if op_key(node) == ("trt", "TRT_FP8QuantizeLinear") and len(node.input) == 2:
        return quantize_constant_fp8(weight, scale, axis), TensorProto.FLOAT8E4M3FN
    return None



def store_quantized_weights(model) -> Tuple[object, Dict[str, int]]:
    """A copy of ``model`` in which each quantize node of a constant weight (INT8 QuantizeLinear, ModelOpt's FP8
    TRT_FP8QuantizeLinear) whose every user is the matching dequantize node is replaced by an initializer holding
    its output. Returns (copy, counts): ``tensors`` folded, ``values`` they hold, ``float_bytes`` of the float
    weights no longer stored."""
    import onnx
    from onnx import numpy_helper

    from .simplify import constant_values

    out = onnx.ModelProto.FromString(model.SerializeToString())
    graph = out.graph
    consts = constant_values(out)
    users: Dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    taken = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}

    folded, values = [], 0
    for node in graph.node:
        src, q_out = node.input[0] if node.input else "", node.output[0]
        if op_key(node) not in QUANTIZE_OPS or src not in consts or q_out in graph_outputs:
            continue
        dequantize = (op_key(node)[0], node.op_type.replace("Quantize", "Dequantize"))
        users_q = users.get(q_out, [])
        if not users_q or any(op_key(u) != dequantize for u in users_q):
            continue
        fold = _fold_one(node, consts)
        if fold is None:
            continue
        values_or_bytes, dtype = fold
        shape = list(np.asarray(consts[src]).shape)
        name = f"{src}_{'int8' if dtype == onnx.TensorProto.INT8 else 'fp8'}"
        while name in taken:
            name += "_"
        taken.add(name)
        if isinstance(values_or_bytes, bytes):
            tensor = onnx.helper.make_tensor(name, dtype, shape, values_or_bytes, raw=True)
        else:
            tensor = numpy_helper.from_array(values_or_bytes, name)
        graph.initializer.append(tensor)
        for user in users_q:
            for i, inp in enumerate(user.input):
                if inp == q_out:
                    user.input[i] = name
        folded.append(node)
        values += int(np.prod(shape))

    if not folded:
        return out, {"tensors": 0, "values": 0, "float_bytes": 0}
    gone = {id(n) for n in folded}
    kept = [n for n in graph.node if id(n) not in gone]
    # what no node reads any more of what the folded nodes read: their float weights, and Constant nodes that only
    # fed them (ModelOpt's export gives a quantize node its own scale and zero-point Constants)
    freed = {name for n in folded for name in n.input}
    used = _names_read(kept) | graph_outputs
    kept = [n for n in kept if not (n.op_type == "Constant" and n.output[0] in freed and n.output[0] not in used)]
    del graph.node[:]
    graph.node.extend(kept)
    dropped = [t for t in graph.initializer if t.name in freed and t.name not in used]
    float_bytes = sum(int(np.prod(t.dims)) * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
                      for t in dropped)
    inits = [t for t in graph.initializer if not (t.name in freed and t.name not in used)]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    return out, {"tensors": len(folded), "values": values, "float_bytes": float_bytes}
