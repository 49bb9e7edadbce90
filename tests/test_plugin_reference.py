"""The plugin form's SelectiveScan node as its specification in standard ONNX ops (edgemv.export.plugin_reference):
what ONNX Runtime runs to check a graph exported with --scan plugin. Against the float64 reference written in
test_scan.py, on fresh random inputs, through the real exporter and ONNX Runtime."""

import os
import sys

import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, os.path.dirname(__file__))

from test_scan import make, rel_err, scan_f64  # noqa: E402

import edgemv.ops as ops  # noqa: E402
from edgemv.export.plugin_reference import expand_scan_nodes, has_scan_nodes  # noqa: E402

TOL = {torch.float32: 1e-5, torch.float16: 2e-3}


class _Scan(torch.nn.Module):
    """A scan whose parameters are constants of the graph (as in the model), its activations graph inputs."""

    def __init__(self, inp):
        super().__init__()
        self.inp = inp

    def forward(self, u, delta, B, C, z):
        i = self.inp
        return ops.selective_scan(u, delta, i["A"], B, C, i["D"], z if i["z"] is not None else None,
                                  i["delta_bias"], i["delta_softplus"])


def _plugin_graph(inp, path):
    z = inp["z"] if inp["z"] is not None else torch.zeros(1)
    args = (inp["u"], inp["delta"], inp["B"], inp["C"], z)
    with ops.onnx_export_context("plugin") as extra:
        torch.onnx.export(_Scan(inp), args, str(path), dynamo=False, opset_version=17,
                          input_names=["u", "delta", "B", "C", "z"], output_names=["y"], **extra)
    return onnx.load(str(path)), args


def _run(model, args):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feed = {n: a.numpy() for n, a in zip(["u", "delta", "B", "C", "z"], args) if n in names}
    return torch.from_numpy(session.run(None, feed)[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("options", [{}, {"has_z": True, "softplus": False, "has_bias": False},  # delta > 0
                                     {"has_d": False, "has_bias": False},
                                     {"big": True}])
def test_expanded_node_matches_float64(tmp_path, dtype, options):
    inp = make(2, 24, 37, dtype, model_layout=False, **options)
    graph, args = _plugin_graph(inp, tmp_path / "s.onnx")
    assert has_scan_nodes(graph)
    expanded = expand_scan_nodes(graph)
    assert not has_scan_nodes(expanded) and has_scan_nodes(graph)  # a copy: the exported graph keeps its node
    onnx.checker.check_model(expanded)
    y = _run(expanded, args)
    assert y.dtype == dtype
    err = rel_err(y, scan_f64(**inp))
    assert err < TOL[dtype], err


def test_wrongly_wired_node_is_caught(tmp_path):
    """B and C swapped in the node: the reference reads its inputs by PLUGIN_SPEC's order, so the output is wrong."""
    inp = make(1, 16, 20, torch.float32, model_layout=False)
    graph, args = _plugin_graph(inp, tmp_path / "s.onnx")
    node = next(n for n in graph.graph.node if n.op_type == "SelectiveScan")
    node.input[3], node.input[4] = node.input[4], node.input[3]
    assert rel_err(_run(expand_scan_nodes(graph), args), scan_f64(**inp)) > 1e-2
