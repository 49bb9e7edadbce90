"""Quantized weights stored as INT8/FP8 initializers (edgemv.export.weights): the values ONNX Runtime's
QuantizeLinear computes, the same graph function, the file a quarter of the size; and the CLI's --float-weights."""

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from cli_helpers import call  # noqa: E402
from edgemv.export import checks  # noqa: E402
from edgemv.export.simplify import qdq_scales  # noqa: E402
from edgemv.export.weights import quantize_constant, quantize_constant_fp8, store_quantized_weights  # noqa: E402


def _session(model, outputs=None):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    m = onnx.ModelProto.FromString(model.SerializeToString())
    for name in outputs or ():
        m.graph.output.append(onnx.ValueInfoProto(name=name))
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _toy_graph(rng):
    """x (4, 6) -> Q/DQ (activation) -> MatMul with W1 (6, 4; per-channel along axis 1, ties and saturation) ->
    MatMul with W3, whose QuantizeLinear also feeds a non-DequantizeLinear user (must stay) -> Conv with W2 (per-tensor
    scale; its Q and DQ read their scale and zero point from separate Constant nodes, as ModelOpt's export does)."""
    s1 = np.array([0.02, 0.05, 0.1, 0.003], np.float32)
    w1 = rng.standard_normal((6, 4)).astype(np.float32) * 0.2
    w1[0] = (np.array([2.5, -3.5, 0.5, -0.5], np.float32) * s1)  # exact ties: half to even gives 2, -4, 0, -0
    w1[1] = np.array([10.0, -10.0, 20.0, -1.0], np.float32)  # beyond +-127 steps: saturates at 127 / -128
    w2 = rng.standard_normal((3, 1, 1, 1)).astype(np.float32)
    w3 = rng.standard_normal((4, 4)).astype(np.float32)
    zp4 = np.zeros(4, np.int8)
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (w1, "w1"), (w2, "w2"), (s1, "s1"), (zp4, "zp4"), (w3, "w3"), (np.float32(0.05), "sx"), (np.int8(0), "zx"))]
    nodes = [
        helper.make_node("Constant", [], ["s2"], value=numpy_helper.from_array(np.float32(0.01))),
        helper.make_node("Constant", [], ["z2"], value=numpy_helper.from_array(np.int8(0))),
        helper.make_node("Constant", [], ["s2a"], value=numpy_helper.from_array(np.float32(0.01))),
        helper.make_node("Constant", [], ["z2a"], value=numpy_helper.from_array(np.int8(0))),
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
        helper.make_node("QuantizeLinear", ["w1", "s1", "zp4"], ["w1q"], axis=1),
        helper.make_node("DequantizeLinear", ["w1q", "s1", "zp4"], ["w1d"], axis=1),
        helper.make_node("MatMul", ["xd", "w1d"], ["h"]),  # (2, 4)
        helper.make_node("QuantizeLinear", ["w3", "s1", "zp4"], ["w3q"], axis=0),
        helper.make_node("DequantizeLinear", ["w3q", "s1", "zp4"], ["w3d"], axis=0),
        helper.make_node("Cast", ["w3q"], ["w3c"], to=TensorProto.FLOAT),  # a non-DQ user: this Q stays
        helper.make_node("MatMul", ["h", "w3d"], ["h3"]),
        helper.make_node("Add", ["h3", "w3c"], ["h4"]),  # (4, 4)
        helper.make_node("Reshape", ["h4", "shape"], ["img"]),
        helper.make_node("QuantizeLinear", ["w2", "s2a", "z2a"], ["w2q"]),
        helper.make_node("DequantizeLinear", ["w2q", "s2", "z2"], ["w2d"]),
        helper.make_node("Conv", ["img", "w2d"], ["y"]),
    ]
    inits.append(numpy_helper.from_array(np.array([1, 1, 4, 4], np.int64), "shape"))
    inits.append(numpy_helper.from_array(np.ones(3, np.float32), "unrelated"))  # unused before: left as it was
    # Conv: (1, 1, 4, 4) * (3, 1, 1, 1) -> (1, 3, 4, 4)
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_weights_folded_to_ort_values_and_same_function():
    rng = np.random.default_rng(0)
    model = _toy_graph(rng)
    onnx.checker.check_model(model)
    folded, stored = store_quantized_weights(model)
    onnx.checker.check_model(folded)
    assert stored["tensors"] == 2 and stored["values"] == 24 + 3
    ops = [n.op_type for n in folded.graph.node]
    assert ops.count("QuantizeLinear") == 2  # the activation's, and w3's (it has a Cast user)
    assert ops.count("DequantizeLinear") == 4
    inits = {t.name: numpy_helper.to_array(t) for t in folded.graph.initializer}
    assert "w1" not in inits and "w2" not in inits and "w3" in inits  # float weights gone where folded
    assert "unrelated" in inits and stored["float_bytes"] == (24 + 3) * 4
    constants = {n.output[0] for n in folded.graph.node if n.op_type == "Constant"}
    assert constants == {"s2", "z2"}  # the DequantizeLinear's stay; those only the folded Q read are gone
    # the INT8 values are exactly those ONNX Runtime's QuantizeLinear computes
    x = rng.standard_normal((4, 6)).astype(np.float32)
    ref = dict(zip(["y", "w1q", "w2q"], _session(model, ["w1q", "w2q"]).run(["y", "w1q", "w2q"], {"x": x})))
    q1 = inits["w1_int8"]
    q2 = inits["w2_int8"]
    assert q1.dtype == np.int8 and q2.dtype == np.int8
    np.testing.assert_array_equal(q1, ref["w1q"])
    np.testing.assert_array_equal(q2, ref["w2q"])
    np.testing.assert_array_equal(q1[0], [2, -4, 0, 0])  # ties to even
    np.testing.assert_array_equal(q1[1], [127, -128, 127, -128])  # 500, -200, 200, -333 steps: saturated
    y = _session(folded).run(["y"], {"x": x})[0]
    np.testing.assert_array_equal(y, ref["y"])  # bit for bit


def test_quantize_constant_matches_onnx_formula_on_random_weights():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    scale = (np.abs(w).reshape(16, -1).max(1) / 127).astype(np.float32)
    zp = np.zeros(16, np.int8)
    q = quantize_constant(w, scale, zp, axis=0)
    node = helper.make_node("QuantizeLinear", ["w", "s", "z"], ["q"], axis=0)
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape))],
                              [helper.make_tensor_value_info("q", TensorProto.INT8, None)],
                              [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z")])
    ref = _session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])).run(None, {"w": w})[0]
    np.testing.assert_array_equal(q, ref)
    assert q.min() >= -127 and q.max() == 127  # amax / 127 scales: the extremes map to +-127


def test_nothing_to_fold_leaves_the_graph_alone():
    fp32 = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((2, 2), np.float32), "w")]))
    out, stored = store_quantized_weights(fp32)
    assert stored == {"tensors": 0, "values": 0, "float_bytes": 0}
    assert out.SerializeToString() == fp32.SerializeToString()


def test_quantize_constant_fp8_matches_onnx_runtime():
    """E4M3 bytes as ONNX Runtime's QuantizeLinear to FLOAT8E4M3FN (saturate) gives them: ties between neighbours,
    values beyond 448 steps, subnormals, a per-channel scale."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((4, 64)).astype(np.float32) * np.array([[1.0], [30.0], [1e-3], [0.2]], np.float32)
    scale = np.array([0.01, 0.05, 1e-4, 0.002], np.float32)
    w[0, :4] = np.array([1.0625, 1.1875, -1.0625, 500.0], np.float32) * scale[0]  # two ties (to even) and a saturation
    got = np.frombuffer(quantize_constant_fp8(w, scale, axis=0), np.uint8).reshape(w.shape)
    zp = helper.make_tensor("z", TensorProto.FLOAT8E4M3FN, [4], [0.0] * 4)
    node = helper.make_node("QuantizeLinear", ["w", "s", "z"], ["q"], axis=0)
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape))],
                              [helper.make_tensor_value_info("q", TensorProto.FLOAT8E4M3FN, None)],
                              [numpy_helper.from_array(scale, "s"), zp])
    sess = _session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    ref = np.asarray(sess.run(None, {"w": w})[0])
    ref_bytes = ref.view(np.uint8) if ref.dtype.itemsize == 1 else None
    assert ref_bytes is not None, ref.dtype
    np.testing.assert_array_equal(got, ref_bytes)
    as_float = torch.from_numpy(got.copy()).view(torch.float8_e4m3fn).float().numpy()
    np.testing.assert_array_equal(as_float[0, :4], [1.0, 1.25, -1.0, 448.0])  # ties to even; saturated


@pytest.mark.parametrize("precision", ["int8", "fp8"])
def test_quantized_export_stores_quantized_weights_and_computes_the_same(tmp_path, capsys, precision):
    """The test variant's INT8/FP8 run exported both ways: the same dequantize scales, fewer quantize nodes (the
    activations' only), INT8/FP8 weight initializers, a file under a third of the size, and ONNX Runtime outputs
    bit for bit equal."""
    from test_export import HAVE_RTX, _quantized_run

    folder = _quantized_run(tmp_path, precision)
    base = ["export", str(folder), "--json"] + ([] if HAVE_RTX and precision == "fp8" else ["--no-trt-build"])
    capsys.readouterr()  # ModelOpt's prints while quantizing
    code, out, err = call(base + ["--out", str(tmp_path / "q.onnx")], capsys)
    assert code == 0, err
    small = json.loads(out[out.index("{"):])
    code, out, err = call(base + ["--float-weights", "--out", str(tmp_path / "f.onnx")], capsys)
    assert code == 0, err
    large = json.loads(out[out.index("{"):])
    assert all(c["status"] == "pass" for c in small["checks"]), small["checks"]
    assert small["quantized_weights"]["tensors"] > 0 and not large["quantized_weights"]
    g_small, g_large = onnx.load(small["path"]), onnx.load(large["path"])
    counts_s, scales_s = qdq_scales(g_small)
    counts_l, scales_l = qdq_scales(g_large)
    q, dq = ("QuantizeLinear", "DequantizeLinear") if precision == "int8" else ("TRT_FP8QuantizeLinear",
                                                                                  "TRT_FP8DequantizeLinear")
    assert scales_s == scales_l and counts_s[dq] == counts_l[dq]
    assert counts_l[q] - counts_s[q] == small["quantized_weights"]["tensors"]
    dtype = TensorProto.INT8 if precision == "int8" else TensorProto.FLOAT8E4M3FN
    stored = [t for t in g_small.graph.initializer if t.data_type == dtype and t.name.endswith(f"_{precision}")]
    assert len(stored) == small["quantized_weights"]["tensors"]
    assert small["file_bytes"] < large["file_bytes"] / 3
    x = np.random.default_rng(3).standard_normal((2, *small["inputs"][0][2][1:])).astype(np.float32)
    if precision == "int8":
        assert len(checks.activation_dequantize_outputs(g_small)) == counts_s[q]
        forms, levels = (g_small, g_large), ("none", "all")
    else:  # ONNX Runtime runs FP8 through the standard-Q/DQ copy, at basic (checks.fp8_to_standard_qdq)
        forms, levels = (checks.fp8_to_standard_qdq(g_small), checks.fp8_to_standard_qdq(g_large)), ("basic",)
    for level in levels:
        a = checks.ort_run(checks.ort_session(forms[0], optimization=level), x)
        b = checks.ort_run(checks.ort_session(forms[1], optimization=level), x)
        np.testing.assert_array_equal(a, b)
    if HAVE_RTX and precision == "fp8":
        build = next(c for c in small["checks"] if c["name"] == "TensorRT-RTX build")
        assert build["status"] == "pass"  # TensorRT-RTX's parser takes FP8 initializers behind its trt nodes


def test_fp32_exports_keep_float_weights(tmp_path):
    from edgemv.export import export_model, load_source

    torch.manual_seed(0)
    report = export_model(load_source(None, "test", "random"), out=tmp_path / "f.onnx", check=False)
    assert report.quantized_weights == {}
