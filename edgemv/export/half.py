"""An FP16 copy of an exported Q/DQ graph, for strongly typed TensorRT (11.x, TensorRT-RTX).

TensorRT 11 and TensorRT-RTX have no FP16 builder flag: a tensor's dtype in the graph is its precision. An INT8 or
FP8 Q/DQ graph as ModelOpt exports it is FP32 outside its quantized layers, so there every LayerNorm, GELU, softmax
and the scan's plain ops would run in FP32 (JetPack 7.2.2 and newer ship TensorRT 11.4). The PyTorch side cannot
export a half model with Q/DQ (ModelOpt's legacy ONNX path casts to FP32 around each Q/DQ pair and the types clash),
so the FP32 graph is converted after export instead: every float32 initializer, Constant and graph input/output
becomes float16, Casts to float32 become casts to float16, and the quantize/dequantize scales become float16 (from
opset 19, ONNX's QuantizeLinear takes float16 input with a float16 scale and DequantizeLinear gives float16 out).
The quantized weights and zero points keep their INT8/FP8 types. Value infos are dropped (they would still say float).

The selective scan stays in float32, as every implementation of it accumulates in float32 (and as an FP32 model's
``--half`` export keeps it, through the casts of its plain-op form): the nodes of the scan's name scope
(:data:`FLOAT32_SCOPES`, the mixer's ``scan`` child module in edgemv.models; the exporter names the second module
at the same path ``scan_1``, as in MambaVision's level 3, whose block names repeat level 2's) are left as they are,
with a Cast to
float32 on each float16 tensor they read from outside the scope and a Cast to float16 on each tensor they give to
nodes outside it; a constant only they read stays float32.

Rounding the scales to float16 moves each quantization grid by at most 2^-11 of a step's size; a scale below float16's
smallest normal (6.1e-5) keeps fewer bits, and one that rounds to zero or overflows is refused. :func:`to_float16`
reports how many scales lost more than float16's normal rounding.
"""

import re
from typing import Dict, Tuple

import numpy as np

from ..errors import EdgemvError
from .simplify import QDQ_OPS, op_key

__all__ = ["to_float16", "in_float32_scope", "FP16_MIN_NORMAL", "FLOAT32_SCOPES"]

FP16_MIN_NORMAL = 6.103515625e-05
# node-name scopes kept in float32 (MambaVisionMixer.scan), as regular expressions: '/scan/', '/scan_1/', ...
FLOAT32_SCOPES = (r"/scan(?:_\d+)?/",)


def _half(tensor, name=None):
    """A float32 TensorProto as float16 (same name); refuses values float16 cannot hold."""
    from onnx import numpy_helper

    value = numpy_helper.to_array(tensor)
    with np.errstate(over="ignore"):  # an overflow is reported below, as one error
        half = value.astype(np.float16)
    finite = np.isfinite(value)
    if (np.isfinite(half) != finite).any():
        worst = float(np.abs(value[finite]).max())
        raise EdgemvError(f"FP16 graph: {name or tensor.name} holds {worst:.4g}, beyond float16's range (65504)")
    return numpy_helper.from_array(half, tensor.name), value, half


def _float_tensors(model) -> set:
    """Names of the float32 tensors of an FP32 graph (from its value infos, initializers, Constants and ONNX's
    shape inference), to tell which tensors crossing the float32 scopes need a Cast (shapes and indices do not)."""
    import onnx
    from onnx import TensorProto

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - custom-domain nodes or a large model: the exporter's value infos alone
        inferred = model
    floats = set()
    for value in list(inferred.graph.value_info) + list(model.graph.value_info) + list(model.graph.input) + list(
            model.graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            floats.add(value.name)
    floats |= {t.name for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
    for node in model.graph.node:
        values = [a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR]
        if node.op_type == "Constant" and any(t.data_type == TensorProto.FLOAT for t in values):
            floats.add(node.output[0])
    return floats


def in_float32_scope(name: str, scopes=FLOAT32_SCOPES) -> bool:
    """Whether a node of this name stays float32 in :func:`to_float16`."""
    return any(re.search(scope, name) for scope in scopes)


def to_float16(model, float32_scopes=FLOAT32_SCOPES) -> Tuple[object, Dict[str, float]]:
    """A float16 copy of ``model`` (see the module's docstring); nodes whose name matches one of ``float32_scopes``
    (regular expressions) stay float32. Returns (copy, info): ``scales`` converted, ``subnormal_scales`` among them
    (below float16's smallest normal), ``max_scale_change`` (largest relative change of a scale by the rounding),
    ``float32_nodes`` kept in float32 and ``casts`` added at their boundary."""
    import onnx
    from onnx import TensorProto, helper

    out = onnx.ModelProto.FromString(model.SerializeToString())
    graph = out.graph
    floats = _float_tensors(out)
    kept = [n for n in graph.node if in_float32_scope(n.name, float32_scopes)]
    kept_ids = {id(n) for n in kept}
    readers_outside = {name for n in graph.node if id(n) not in kept_ids for name in n.input}
    constants = {t.name for t in graph.initializer} | {n.output[0] for n in graph.node if n.op_type == "Constant"}
    # float32: what the kept nodes make, and constants only they read
    stay32 = ((({name for n in kept for name in n.input} & constants) - readers_outside)
              | {o for n in kept for o in n.output})
    scale_names = {n.input[1] for n in graph.node if op_key(n) in QDQ_OPS and len(n.input) > 1}
    info = {"scales": 0, "subnormal_scales": 0, "max_scale_change": 0.0, "float32_nodes": len(kept), "casts": 0}

    def convert(tensor, name):
        new, value, half = _half(tensor, name)
        if name in scale_names:
            if (half == 0).any() and (value != 0).any():
                raise EdgemvError(f"FP16 graph: quantization scale {name} ({float(np.abs(value).min()):.3g}) rounds "
                                  "to zero in float16")
            info["scales"] += 1
            info["subnormal_scales"] += int((np.abs(value) < FP16_MIN_NORMAL).any())
            change = np.abs(half.astype(np.float64) - value) / np.maximum(np.abs(value), 1e-45)
            info["max_scale_change"] = max(info["max_scale_change"], float(change.max()))
        return new

    inits = [convert(t, t.name) if t.data_type == TensorProto.FLOAT and t.name not in stay32 else t
             for t in graph.initializer]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    for node in graph.node:
        if id(node) in kept_ids or (node.op_type == "Constant" and node.output[0] in stay32):
            continue
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(convert(attr.t, node.output[0] if node.op_type == "Constant" else node.name))
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
            elif attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise EdgemvError(f"FP16 graph: subgraphs ({node.op_type}) are not converted")

    # Casts at the float32 scopes' boundary: up where a kept node reads a float16 tensor, down where a node outside
    # the scopes reads a kept node's float32 output
    casts, up, down = {}, {}, {}  # casts: the tensor a cast reads -> the casts reading it
    for node in graph.node:
        inside = id(node) in kept_ids
        for i, name in enumerate(node.input):
            if not name or name not in floats:
                continue
            if inside and name not in stay32:
                made, to, suffix = up, TensorProto.FLOAT, "float32"
            elif not inside and name in stay32:
                made, to, suffix = down, TensorProto.FLOAT16, "float16"
            else:
                continue
            if name not in made:
                made[name] = f"{name}__{suffix}"
                casts.setdefault(name, []).append(
                    helper.make_node("Cast", [name], [made[name]], to=to, name=f"{name}__cast_{suffix}"))
            node.input[i] = made[name]
    for value in graph.output:
        if value.name in stay32 and value.name in floats:
            raise EdgemvError(f"FP16 graph: the output {value.name} comes straight from a float32 scope")
    if casts:  # each cast right after the node that makes its input (first, for initializers and graph inputs)
        produced = {o for n in graph.node for o in n.output}
        nodes = [c for name, cs in casts.items() if name not in produced for c in cs]
        for node in graph.node:
            nodes.append(node)
            nodes.extend(c for o in node.output for c in casts.get(o, ()))
        del graph.node[:]
        graph.node.extend(nodes)
    info["casts"] = sum(len(cs) for cs in casts.values())
    for value in list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]
    return out, info
