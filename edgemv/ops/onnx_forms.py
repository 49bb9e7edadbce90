"""The two ONNX forms of the scan for the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``).

- 'decomposed': the plain ops of a plain-op form ('doubling' by default, or 'chunked') are traced in place of the
  custom op (no custom node).
- 'plugin': the custom op becomes one node ``edgemv::SelectiveScan`` (see :data:`PLUGIN_SPEC`), the interface a
  TensorRT plugin (IPluginV3, creator name ``SelectiveScan``, version "1") implements.

Imports torch.onnx only when used; never the onnx package.
"""

__all__ = ["DOMAIN", "OP_TYPE", "PLUGIN_SPEC", "is_scan_node", "register_plugin_symbolic"]

DOMAIN = "edgemv"
OP_TYPE = "SelectiveScan"


def is_scan_node(node) -> bool:
    """Whether an ONNX node is the plugin form's scan (``edgemv:SelectiveScan``)."""
    return node.domain == DOMAIN and node.op_type == OP_TYPE

PLUGIN_SPEC = """\
edgemv::SelectiveScan (version 1), one output y (batch, D, L) of u's type.
Inputs, in this order, the optional ones only when their has_* attribute is 1:
  u (batch, D, L), delta (batch, D, L), A (D, N) float32 negative, B (batch, N, L), C (batch, N, L),
  [D (D,) float32], [z (batch, D, L)], [delta_bias (D,) float32]
Attributes: delta_softplus (int 0/1), has_D, has_z, has_delta_bias (int 0/1), d_state (int N),
  plugin_version ("1"), plugin_namespace ("") - the two names TensorRT's ONNX parser uses to find a plugin creator.
Semantics: mamba_ssm's selective_scan_fn forward (float32 accumulation), as edgemv.ops.selective_scan.
"""

_registered = False


def _symbolic(g, u, delta, A, B, C, D, z, delta_bias, delta_softplus, impl):
    from torch.onnx import symbolic_helper as sh

    softplus = sh._maybe_get_const(delta_softplus, "b")
    inputs = [u, delta, A, B, C]
    attrs = {}
    for name, value in (("D", D), ("z", z), ("delta_bias", delta_bias)):
        present = not sh._is_none(value)
        if present:
            inputs.append(value)
        attrs[f"has_{name}_i"] = int(present)
    sizes = sh._get_tensor_sizes(A)
    if sizes and sizes[-1] is not None:
        attrs["d_state_i"] = int(sizes[-1])
    out = g.op(f"{DOMAIN}::{OP_TYPE}", *inputs, delta_softplus_i=int(bool(softplus)),
               plugin_version_s="1", plugin_namespace_s="", **attrs)
    out.setType(u.type())
    return out


def register_plugin_symbolic(opset_version: int = 9) -> None:
    """Teach the TorchScript ONNX exporter to emit ``edgemv::SelectiveScan`` for the custom op (idempotent)."""
    global _registered
    if _registered:
        return
    import torch.onnx

    torch.onnx.register_custom_op_symbolic("edgemv::selective_scan", _symbolic, opset_version)
    _registered = True
