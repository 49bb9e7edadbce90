"""An FP16 copy of an exported Q/DQ graph, for strongly typed TensorRT (11.x, TensorRT-RTX).

TensorRT 11 and TensorRT-RTX have no FP16 builder flag: a tensor's dtype in the graph is its precision. An INT8 or
FP8 Q/DQ graph as ModelOpt exports it is FP32 outside its quantized layers, so there every LayerNorm, GELU, softmax
and the scan's plain ops would run in FP32 (JetPack 7.2.2 and newer ship TensorRT 11.4). The PyTorch side cannot
export a half model with Q/DQ (ModelOpt's legacy ONNX path casts to FP32 around each Q/DQ pair and the types clash),
so the FP32 graph is converted after export instead: every float32 initializer, Constant and graph input/output
becomes float16, Casts to float32 become casts to float16, and the quantize/dequantize scales become float16 (from
opset 19, ONNX's QuantizeLinear takes float16 input with a float16 scale and DequantizeLinear gives float16 out).
The quantized weights and zero points keep their INT8/FP8 types. Value infos are dropped (they would still say float).

Rounding the scales to float16 moves each quantization grid by at most 2^-11 of a step's size; a scale below float16's
smallest normal (6.1e-5) keeps fewer bits, and one that rounds to zero or overflows is refused. :func:`to_float16`
reports how many scales lost more than float16's normal rounding.
"""

from typing import Dict, Tuple

import numpy as np

from ..errors import EdgemvError

__all__ = ["to_float16", "FP16_MIN_NORMAL"]

FP16_MIN_NORMAL = 6.103515625e-05
_QDQ = {("", "QuantizeLinear"), ("", "DequantizeLinear"), ("trt", "TRT_FP8QuantizeLinear"),
        ("trt", "TRT_FP8DequantizeLinear")}


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


def to_float16(model) -> Tuple[object, Dict[str, float]]:
    """A float16 copy of ``model`` (see the module's docstring). Returns (copy, info): ``scales`` converted,
    ``subnormal_scales`` among them (below float16's smallest normal), ``max_scale_change`` (largest relative change
    of a scale by the rounding)."""
    import onnx
    from onnx import TensorProto

    out = onnx.ModelProto.FromString(model.SerializeToString())
    graph = out.graph
    scale_names = {n.input[1] for n in graph.node
                   if (n.domain if n.domain != "ai.onnx" else "", n.op_type) in _QDQ and len(n.input) > 1}
    info = {"scales": 0, "subnormal_scales": 0, "max_scale_change": 0.0}

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

    inits = [convert(t, t.name) if t.data_type == TensorProto.FLOAT else t for t in graph.initializer]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(convert(attr.t, node.output[0] if node.op_type == "Constant" else node.name))
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
            elif attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise EdgemvError(f"FP16 graph: subgraphs ({node.op_type}) are not converted")
    for value in list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]
    return out, info
