"""The scan as one graph node (torch.export), and its two ONNX forms through the TorchScript exporter."""

import collections

import pytest
import torch

import edgemv.ops as ops
from edgemv.models import create_model
from edgemv.models.mambavision import MambaVisionMixer

FORBIDDEN = {"CumSum", "Loop", "Scan", "If"}


def n_mixers(model):
    return sum(isinstance(m, MambaVisionMixer) for m in model.modules())


def export_onnx(model, x, path, form, dynamic_batch=True, decomposition=None):
    with ops.onnx_export_context(form, decomposition) as extra:
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "b"}} if dynamic_batch else None,
                          **extra)
    onnx = pytest.importorskip("onnx")
    return onnx.load(str(path))


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = create_model("test")
    size = model.pretrained_cfg.input_size
    return model, torch.randn(2, *size)


@pytest.mark.parametrize("impl", ["chunked", "doubling"])
def test_model_logits_plain_forms_equal_ref(small, impl):
    model, x = small
    with torch.no_grad():
        with ops.scan_impl("ref"):
            a = model(x)
        with ops.scan_impl(impl):
            b = model(x)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * a.abs().max().item())


def test_model_t_logits_plain_forms_equal_ref():
    torch.manual_seed(0)
    model = create_model("t")
    x = torch.randn(1, *model.pretrained_cfg.input_size)
    with torch.no_grad():
        with ops.scan_impl("ref"):
            a = model(x)
        for impl in ("chunked", "doubling"):
            with ops.scan_impl(impl):
                b = model(x)
            assert ((a - b).norm() / a.norm()).item() < 1e-5, impl


def test_torch_export_one_node_per_mixer(small):
    model, x = small
    ep = torch.export.export(model, (x,))
    target = torch.ops.edgemv.selective_scan.default
    nodes = [n for n in ep.graph.nodes if n.op == "call_function" and n.target is target]
    assert len(nodes) == n_mixers(model) > 0
    # and the decomposition table turns them back into plain ops (either form), with the same outputs
    for name in ops.DECOMPOSITIONS:
        ep2 = ep.run_decompositions(ops.decompositions(name))
        assert not any("selective_scan" in str(n.target) for n in ep2.graph.nodes)
        with torch.no_grad():
            assert torch.allclose(ep2.module()(x), model(x), rtol=1e-4, atol=1e-5)


def test_torch_compile_no_graph_break(small):
    model, x = small
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad(), ops.scan_impl("chunked"):
        assert torch.allclose(compiled(x), model(x))


@pytest.mark.parametrize("decomposition", ["doubling", "chunked"])
def test_onnx_decomposed_plain_ops_and_ort_parity(small, tmp_path, decomposition):
    model, x = small
    proto = export_onnx(model, x, tmp_path / "m.onnx", "decomposed", decomposition=decomposition)
    ops_used = collections.Counter(n.op_type for n in proto.graph.node)
    assert not FORBIDDEN & set(ops_used), ops_used
    assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node)
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x3 = torch.randn(3, *x.shape[1:])  # another batch size: the batch dimension stays dynamic
    got = torch.from_numpy(sess.run(None, {"x": x3.numpy()})[0])
    with torch.no_grad(), ops.scan_impl("ref"):
        want = model(x3)
    assert ((got - want).norm() / want.norm()).item() < 1e-5


def test_onnx_plugin_one_node_per_mixer(small, tmp_path):
    model, x = small
    proto = export_onnx(model, x, tmp_path / "p.onnx", "plugin")
    scans = [n for n in proto.graph.node if n.op_type == "SelectiveScan"]
    assert len(scans) == n_mixers(model)
    assert {"edgemv"} == {n.domain for n in scans}
    assert any(o.domain == "edgemv" for o in proto.opset_import)
    attrs = {a.name: a for a in scans[0].attribute}
    assert attrs["delta_softplus"].i == 1 and attrs["has_D"].i == 1 and attrs["has_delta_bias"].i == 1
    assert attrs["has_z"].i == 0 and attrs["d_state"].i == 8
    assert len(scans[0].input) == 7  # u, delta, A, B, C, D, delta_bias
    assert ops.get_scan_onnx_form() == "decomposed"  # the context restored the default


@pytest.mark.parametrize("decomposition", ["doubling", "chunked"])
def test_onnx_decomposed_t_node_count(tmp_path, decomposition):
    """MambaVision-T at its resolution, before any simplification: no forbidden op, every op in TensorRT 10.3's
    list, and the node count the docs quote (goal < 3000)."""
    from edgemv.export.trt103_ops import check_op_types

    torch.manual_seed(0)
    model = create_model("t")
    x = torch.randn(1, *model.pretrained_cfg.input_size)
    proto = export_onnx(model, x, tmp_path / "t.onnx", "decomposed", decomposition=decomposition)
    ops_used = collections.Counter(n.op_type for n in proto.graph.node)
    assert not FORBIDDEN & set(ops_used), ops_used
    assert check_op_types(((n.domain, n.op_type) for n in proto.graph.node), 17).ok
    n = len(proto.graph.node)
    print(f"MambaVision-T decomposed ONNX ({decomposition}): {n} nodes")
    assert n < 3000


@pytest.mark.parametrize("decomposition", ["doubling", "chunked"])
def test_tensorrt_rtx_builds_decomposed(small, tmp_path, decomposition):
    """TensorRT-RTX's ONNX parser and builder accept the decomposed graph (ahead-of-time, no GPU needed)."""
    trt = pytest.importorskip("tensorrt_rtx")
    model, x = small
    export_onnx(model, x, tmp_path / "m.onnx", "decomposed", dynamic_batch=False, decomposition=decomposition)
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse_from_file(str(tmp_path / "m.onnx"))
    assert ok, [str(parser.get_error(i)) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    config.num_compute_capabilities = 1
    config.set_compute_capability(trt.ComputeCapability.SM86, 0)  # Ampere; 1.7 has no SM87 (Orin) target
    engine = builder.build_serialized_network(network, config)
    assert engine is not None and engine.nbytes > 0
