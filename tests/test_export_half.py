"""FP16 Q/DQ graphs (`edgemv export RUN --half`, edgemv.export.half): everything but the quantized tensors in
float16, checked against the FP32 graph they come from (teacher-forced) and built by TensorRT-RTX."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgemv.errors import EdgemvError  # noqa: E402
from edgemv.export import checks, export_model, load_source  # noqa: E402
from edgemv.export.half import in_float32_scope, to_float16  # noqa: E402


def _graph(w_scale=0.01, bias=0.5):
    """x -> Q/DQ -> MatMul (INT8 weight behind a DequantizeLinear) + bias -> Cast to float -> LayerNormalization."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (8, 8)).astype(np.int8)
    inits = [numpy_helper.from_array(w, "w_int8"), numpy_helper.from_array(np.float32(w_scale), "ws"),
             numpy_helper.from_array(np.int8(0), "z"), numpy_helper.from_array(np.float32(0.02), "xs"),
             numpy_helper.from_array(np.full(8, bias, np.float32), "b"),
             numpy_helper.from_array(np.ones(8, np.float32), "g")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_int8", "ws", "z"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["h"]),
             helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.float32(2.0))),
             helper.make_node("Mul", ["h", "c"], ["h2"]),
             helper.make_node("Add", ["h2", "b"], ["h3"]),
             helper.make_node("Cast", ["h3"], ["h4"], to=TensorProto.FLOAT),
             helper.make_node("LayerNormalization", ["h4", "g", "b"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_to_float16_converts_floats_and_keeps_quantized_types():
    model = _graph()
    half, info = to_float16(model)
    onnx.checker.check_model(half)
    types = {t.name: t.data_type for t in half.graph.initializer}
    assert types["w_int8"] == TensorProto.INT8 and types["z"] == TensorProto.INT8  # quantized data untouched
    assert all(types[n] == TensorProto.FLOAT16 for n in ("ws", "xs", "b", "g"))
    const = next(n for n in half.graph.node if n.op_type == "Constant").attribute[0].t
    cast = next(n for n in half.graph.node if n.op_type == "Cast").attribute[0].i
    assert const.data_type == TensorProto.FLOAT16 and cast == TensorProto.FLOAT16
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert info == {"scales": 2, "subnormal_scales": 0, "max_scale_change": pytest.approx(
        max(abs(float(np.float16(v)) - v) / v for v in (np.float32(0.01), np.float32(0.02))), rel=1e-3),
        "float32_nodes": 0, "casts": 0}
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    y32 = checks.ort_run(checks.ort_session(model, optimization="none"), x)
    y16 = checks.ort_run(checks.ort_session(half, optimization="none"), x).astype(np.float32)
    assert y16.dtype == np.float32 and checks.relative_error(y16, y32) < 5e-3


def test_to_float16_refuses_what_float16_cannot_hold():
    with pytest.raises(EdgemvError, match="beyond float16's range"):
        to_float16(_graph(bias=1e5))
    with pytest.raises(EdgemvError, match="rounds to zero"):
        to_float16(_graph(w_scale=1e-9))
    _, info = to_float16(_graph(w_scale=1e-5))  # subnormal in float16: kept, and counted
    assert info["subnormal_scales"] == 1 and info["max_scale_change"] > 1e-3


def _types(model):
    inferred = onnx.shape_inference.infer_shapes(model)
    return {v.name: v.type.tensor_type.elem_type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}


def test_the_scan_scope_stays_float32():
    """Nodes named into the scan's scope keep float32: a Cast up on what they read from outside, a Cast down on
    what they give outside, a constant only they read left in float32, one shared with the outside converted."""
    rng = np.random.default_rng(2)
    a_log = rng.standard_normal(8).astype(np.float32)
    inits = [numpy_helper.from_array(a_log, "A_log"), numpy_helper.from_array(np.float32(0.5), "shared")]
    nodes = [helper.make_node("Mul", ["x", "shared"], ["u"], name="/mixer/Mul"),
             helper.make_node("Exp", ["A_log"], ["a"], name="/mixer/scan/Exp"),
             helper.make_node("Mul", ["u", "a"], ["ua"], name="/mixer/scan/Mul"),
             helper.make_node("Add", ["ua", "shared"], ["y0"], name="/mixer/scan/Add"),
             helper.make_node("Mul", ["y0", "u"], ["y"], name="/mixer/out/Mul")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    half, info = to_float16(model)
    onnx.checker.check_model(half)
    assert info["float32_nodes"] == 3 and info["casts"] == 3  # u and shared up, y0 down
    types = _types(half)
    assert types["a"] == types["ua"] == types["y0"] == TensorProto.FLOAT
    assert types["u"] == types["y"] == TensorProto.FLOAT16
    inits = {t.name: t.data_type for t in half.graph.initializer}
    assert inits == {"A_log": TensorProto.FLOAT, "shared": TensorProto.FLOAT16}
    x = rng.standard_normal((2, 8)).astype(np.float32)
    y32 = checks.ort_run(checks.ort_session(model, optimization="none"), x)
    y16 = checks.ort_run(checks.ort_session(half, optimization="none"), x).astype(np.float32)
    assert checks.relative_error(y16, y32) < 2e-3


@pytest.mark.parametrize("precision", ["int8", "fp8"])
def test_quantized_run_exports_an_fp16_graph(tmp_path, precision):
    from test_export import HAVE_RTX, _quantized_run

    folder = _quantized_run(tmp_path, precision)
    report = export_model(load_source(str(folder)), half=True, trt_build=HAVE_RTX)
    assert report.ok, [(c.name, c.detail) for c in report.checks]
    assert report.path.endswith("model_fp16.onnx") and report.precision == f"{precision}+fp16"
    assert report.inputs[0][1] == "float16" and report.outputs[0][1] == "float16"
    assert report.fp16["scales"] > 0 and report.quantized_weights["tensors"] > 0
    status = {c.name: c for c in report.checks}
    half = status["FP16 vs FP32 Q/DQ graph (teacher-forced)"]
    assert half.data["max"] < checks.HALF_FORCED_TOL and half.data["quantizers"] > 0
    assert status["ONNX Runtime Q/DQ parity (teacher-forced, the FP32 graph)"].status == "pass"
    graph = onnx.load(report.path)
    floats = {t.name for t in graph.graph.initializer if t.data_type == TensorProto.FLOAT}
    readers = [n for n in graph.graph.node if floats & set(n.input)]
    assert all(in_float32_scope(n.name) for n in readers), [n.name for n in readers
                                                             if not in_float32_scope(n.name)][:5]
    assert report.fp16["float32_nodes"] > 0 and report.fp16["casts"] > 0
    # both levels' scans: the exporter names the second level's scope /scan_1/ (its block names repeat the first's)
    assert any("/scan/" in n.name for n in graph.graph.node) and any("/scan_1/" in n.name for n in graph.graph.node)
    if precision == "int8":  # (ONNX's shape inference does not know the FP8 graph's trt nodes)
        types = _types(graph)
        for scope in ("/scan/", "/scan_1/"):  # each level's scan in float32
            scan = [n for n in graph.graph.node if scope in n.name and n.op_type not in ("Cast", "Constant")]
            assert scan and all(types[n.output[0]] == TensorProto.FLOAT for n in scan), scope
        rest = [n for n in graph.graph.node
                if "mixer" in n.name and not in_float32_scope(n.name) and n.op_type == "MatMul"]
        assert rest and all(types[n.output[0]] == TensorProto.FLOAT16 for n in rest)
    if HAVE_RTX:
        assert status["TensorRT-RTX build"].status == "pass"
