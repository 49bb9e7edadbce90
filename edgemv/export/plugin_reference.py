"""The plugin form's ``edgemv:SelectiveScan`` nodes rewritten as standard ONNX ops, so ONNX Runtime can check the graph.

ONNX Runtime has no kernel for the node, and the plugin library needs TensorRT. To still check what a graph exported
with ``--scan plugin`` computes (the node's inputs wired in PLUGIN_SPEC's order, its attributes, the graph around
it), each node is replaced by its specification written in standard ops: delta (+ delta_bias, softplus with torch's
threshold of 20), then the recurrence h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t, y_t = C_t h_t as an ONNX
``Scan`` over L in float32, then + D u and * silu(z), cast back to u's type. This is a sequential float32
reference written here from the spec, independent of edgemv's PyTorch forms; the plugin library's own kernels are
checked against float64 by tests/test_trt_plugin.py. The file on disk keeps its plugin nodes.
"""

from typing import Dict, List

import onnx
from onnx import TensorProto, helper

from ..ops.onnx_forms import DOMAIN, OP_TYPE, is_scan_node

__all__ = ["expand_scan_nodes", "has_scan_nodes"]

_SOFTPLUS_THRESHOLD = 20.0  # torch.nn.functional.softplus: x itself above 20


def has_scan_nodes(model: onnx.ModelProto) -> bool:
    return any(is_scan_node(n) for n in model.graph.node)


def _attrs(node) -> Dict[str, int]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _Builder:
    """Nodes and constants of one expansion, every name under a prefix of its own."""

    def __init__(self, prefix: str):
        self.prefix, self.nodes, self.count = prefix, [], 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def op(self, op_type: str, inputs: List[str], hint: str = None, **attrs) -> str:
        out = self.name(hint or op_type)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def const(self, values, dtype=TensorProto.INT64, dims=None) -> str:
        values = list(values)
        tensor = helper.make_tensor(self.name("const"), dtype, [len(values)] if dims is None else dims, values)
        return self.op("Constant", [], "const", value=tensor)


def _scan_body(states: int, prefix: str, outer_A: str) -> onnx.GraphProto:
    """One step: (h (b, D, N); delta_t, u_t (b, D), B_t, C_t (b, N); the outer graph's A (D, N)) -> (h', y_t (b, D)).
    Every name under ``prefix`` (names are unique across a graph and its subgraphs)."""
    b = _Builder(prefix)
    h, dt, u, B, C, h_next, y = (prefix + n for n in ("h", "delta_t", "u_t", "B_t", "C_t", "h_next", "y_t"))
    ax2, ax1 = b.const([2]), b.const([1])
    decay = b.op("Exp", [b.op("Mul", [b.op("Unsqueeze", [dt, ax2]), outer_A])])  # exp(delta_t A), (b, D, N)
    drive = b.op("Mul", [b.op("Unsqueeze", [b.op("Mul", [dt, u]), ax2]),
                         b.op("Unsqueeze", [B, ax1])])  # delta_t u_t B_t, (b, D, N)
    b.nodes.append(helper.make_node("Add", [b.op("Mul", [decay, h]), drive], [h_next], name=h_next))
    b.nodes.append(helper.make_node("ReduceSum", [b.op("Mul", [h_next, b.op("Unsqueeze", [C, ax1])]), ax2], [y],
                                    name=y, keepdims=0))
    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info(h, f, ["b", "d", states])] + [
        helper.make_tensor_value_info(n, f, ["b", "d" if n in (dt, u) else states]) for n in (dt, u, B, C)]
    outputs = [helper.make_tensor_value_info(h_next, f, ["b", "d", states]),
               helper.make_tensor_value_info(y, f, ["b", "d"])]
    return helper.make_graph(b.nodes, prefix + "step", inputs, outputs)


def _expand(node, index: int, elem_type: int) -> List[onnx.NodeProto]:
    a = _attrs(node)
    states = int(a.get("d_state", 8))
    names = iter(node.input)
    u, delta, A, B, C = (next(names) for _ in range(5))
    D = next(names) if a.get("has_D") else None
    z = next(names) if a.get("has_z") else None
    bias = next(names) if a.get("has_delta_bias") else None
    b = _Builder(f"{node.name or OP_TYPE}/reference{index}/")
    f32 = TensorProto.FLOAT
    cast = lambda t: b.op("Cast", [t], "f32", to=f32)  # noqa: E731
    u32, dt = cast(u), cast(delta)
    ax1 = b.const([1])
    if bias is not None:
        dt = b.op("Add", [dt, b.op("Unsqueeze", [cast(bias), ax1])])
    if a.get("delta_softplus"):
        dt = b.op("Where", [b.op("Greater", [dt, b.const([_SOFTPLUS_THRESHOLD], f32, [])]), dt,
                            b.op("Softplus", [dt])])
    to_steps = lambda t: b.op("Transpose", [t], "steps_first", perm=[2, 0, 1])  # noqa: E731  (L, batch, D or N)
    batch_dim = b.op("Slice", [b.op("Shape", [u32]), b.const([0]), b.const([2])])
    h0 = b.op("ConstantOfShape", [b.op("Concat", [batch_dim, b.const([states])], axis=0)], "h0",
              value=helper.make_tensor("zero", f32, [1], [0.0]))
    body = _scan_body(states, b.prefix + "step/", cast(A))  # the body reads A from this graph
    h_last, y_steps = b.name("h_last"), b.name("y_steps")
    b.nodes.append(helper.make_node("Scan", [h0, to_steps(dt), to_steps(u32), to_steps(cast(B)), to_steps(cast(C))],
                                    [h_last, y_steps], name=b.name("Scan"), num_scan_inputs=4, body=body))
    y = b.op("Transpose", [y_steps], "y", perm=[1, 2, 0])
    if D is not None:
        y = b.op("Add", [y, b.op("Mul", [u32, b.op("Unsqueeze", [cast(D), ax1])])])
    if z is not None:
        z32 = cast(z)
        y = b.op("Mul", [y, b.op("Mul", [z32, b.op("Sigmoid", [z32])])])
    b.nodes.append(helper.make_node("Cast", [y], [node.output[0]], name=b.name("out"), to=elem_type))
    return b.nodes


def expand_scan_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every ``edgemv:SelectiveScan`` node replaced by its reference in standard ops (the
    model itself is not changed). Needs opset 13 or newer (Unsqueeze/ReduceSum with axes as inputs)."""
    if not has_scan_nodes(model):
        return model
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in list(inferred.graph.value_info) + list(inferred.graph.input)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    out = onnx.ModelProto()
    out.CopyFrom(model)
    nodes = []
    for index, node in enumerate(out.graph.node):
        if is_scan_node(node):
            nodes.extend(_expand(node, index, types.get(node.input[0]) or TensorProto.FLOAT))
        else:
            nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    keep = [o for o in out.opset_import if o.domain != DOMAIN]
    del out.opset_import[:]
    out.opset_import.extend(keep)
    return out
