"""Graph simplification (onnxsim, falling back to onnxslim) and the Q/DQ scale bookkeeping around it."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Tuple

if TYPE_CHECKING:
    import numpy as np

__all__ = ["simplify", "SimplifyResult", "constant_values", "qdq_scales", "compare_scales", "QDQ_OPS", "op_key"]

QDQ_OPS = {("", "QuantizeLinear"), ("", "DequantizeLinear"), ("trt", "TRT_FP8QuantizeLinear"),
           ("trt", "TRT_FP8DequantizeLinear"), ("trt", "TRT_INT4QuantizeLinear"), ("trt", "TRT_INT4DequantizeLinear")}


def op_key(node) -> Tuple[str, str]:
    """(domain, op type) of a node, the standard domain spelled '' whether it is written '' or 'ai.onnx'."""
    return node.domain if node.domain != "ai.onnx" else "", node.op_type


@dataclass
class SimplifyResult:
    model: object  # onnx.ModelProto
    tool: str  # "onnxsim", "onnxslim" or "none"
    nodes_before: int
    nodes_after: int
    notes: List[str] = field(default_factory=list)  # why a tool was skipped or failed


def simplify(model, skip_onnxsim: bool = False) -> SimplifyResult:
    """Simplify with onnxsim (constant folding through ONNX Runtime, checked); where it fails or cannot run
    (custom-domain nodes ORT cannot execute, models over 2 GB), fall back to onnxslim. The input is not modified.
    """
    import onnx

    before = len(model.graph.node)
    notes = []
    custom = sorted({f"{n.domain}:{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    too_big = model.ByteSize() > 2_000_000_000 if _no_external(model) else True
    if custom:
        notes.append(f"onnxsim skipped: custom-domain ops ONNX Runtime cannot run ({', '.join(custom)})")
    elif too_big:
        notes.append("onnxsim skipped: model over 2 GB (onnxsim serialises to one protobuf)")
    elif skip_onnxsim:
        notes.append("onnxsim skipped on request")
    else:
        try:
            import onnxsim

            simplified, ok = onnxsim.simplify(onnx.ModelProto.FromString(model.SerializeToString()))
            if ok:
                return SimplifyResult(simplified, "onnxsim", before, len(simplified.graph.node), notes)
            notes.append("onnxsim: its output failed its own check")
        except Exception as exc:  # onnxsim raises plain RuntimeErrors from C++
            notes.append(f"onnxsim failed: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}")
    try:
        import onnxslim

        slimmed = onnxslim.slim(onnx.ModelProto.FromString(model.SerializeToString()) if not too_big else model)
        return SimplifyResult(slimmed, "onnxslim", before, len(slimmed.graph.node), notes)
    except Exception as exc:
        notes.append(f"onnxslim failed: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}")
    return SimplifyResult(model, "none", before, before, notes)


def _no_external(model) -> bool:
    import onnx

    return not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def constant_values(model) -> Dict[str, "np.ndarray"]:
    """Every constant tensor by name: initializers and the outputs of Constant nodes."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def qdq_scales(model) -> Tuple[Dict[str, int], List[Tuple[str, Tuple[int, ...], bytes]]]:
    """Counts of Q/DQ nodes by op type, and the scales of the dequantize nodes as (dtype, shape, raw bytes).

    Every quantize has a matching dequantize with the same scale, but simplifiers fold the quantize of a constant
    weight into an integer initializer; the dequantize scales are what reaches TensorRT, so those are compared.
    """
    consts = constant_values(model)
    counts: Dict[str, int] = {}
    scales = []
    for node in model.graph.node:
        key = op_key(node)
        if key not in QDQ_OPS:
            continue
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
        if "Dequantize" in node.op_type and len(node.input) > 1:
            scale = consts.get(node.input[1])
            if scale is None:
                scales.append(("dynamic", (), node.input[1].encode()))
            else:
                scales.append((str(scale.dtype), tuple(scale.shape), scale.tobytes()))
    return counts, sorted(scales)


def compare_scales(before, after) -> Tuple[bool, str]:
    """Whether the multiset of dequantize scales survived simplification unchanged; a one-line explanation."""
    counts_b, scales_b = qdq_scales(before)
    counts_a, scales_a = qdq_scales(after)
    if not scales_b and not scales_a:
        return True, "no Q/DQ nodes"
    missing = len([s for s in scales_b if s not in scales_a]) if scales_b != scales_a else 0
    ok = scales_b == scales_a and not any(s[0] == "dynamic" for s in scales_a)
    fmt = lambda c: ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
    detail = (f"{len(scales_a)}/{len(scales_b)} dequantize scales identical after simplification "
              f"(before: {fmt(counts_b)}; after: {fmt(counts_a)})")
    if not ok:
        detail = f"scales changed: {missing} of {len(scales_b)} missing or altered (before: {fmt(counts_b)}; after: {fmt(counts_a)})"
    return ok, detail
