"""Checks of an exported ONNX file: onnx.checker, ONNX Runtime parity, TensorRT 10.3 op types, TensorRT-RTX build.

Each check returns a :class:`CheckResult` (pass / fail / skip with one line of detail) so the CLI and the tests read
the same thing.
"""

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..atomic import write_bytes_atomic
from ..errors import EdgemvError

__all__ = ["CheckResult", "check_onnx", "check_ops", "ort_session", "ort_run", "ort_parity", "fp8_to_standard_qdq",
           "trt_rtx_build", "relative_error", "activation_dequantize_outputs", "qdq_forced_parity", "FP32_TOL",
           "FP16_TOL", "QDQ_TOL", "QDQ_TOL_FP8", "QDQ_FLIP_FRACTION", "qdq_tol", "half_forced_parity",
           "HALF_FORCED_TOL", "QDQ_FORCED", "HALF_FORCED", "TRT_RTX_BUILD", "ort_loadable"]

TRT_RTX_BUILD = "TensorRT-RTX build"  # the name of trt_rtx_build's check, however it ends (run, skipped, in a child)
FP32_TOL = 1e-4
FP16_TOL = 2e-2
# Q/DQ graphs against the fake-quantized PyTorch model: ONNX Runtime and ModelOpt's fake quantization agree to ~1e-7
# except where a value lands within float rounding of a rounding boundary and the two pick neighbouring integers;
# that one-step difference then propagates. The median over images must meet FP32_TOL, the worst image QDQ_TOL
# (FP8: QDQ_TOL_FP8); in deep graphs (MambaVision-T at 224: median 2e-2) the median criterion is replaced by
# qdq_forced_parity, which is stricter (logits to FP32_TOL once the quantizers' choices are forced equal), not by a
# larger tolerance.
QDQ_TOL = 5e-2
# An FP16 Q/DQ graph against the FP32 graph it came from, with the quantizers' outputs forced equal
# (half_forced_parity): what is left is float16 arithmetic between quantizers, 8.0e-4 on MambaVision-T at 224 (INT8,
# random weights, 2026-11-28); the bound leaves 6x of that for other variants and weights.
HALF_FORCED_TOL = 5e-3
# The same worst-image bound for FP8 (E4M3) graphs. A tie flip there moves a value by one E4M3 step, 1/16 to 1/8 of
# the value itself, and ties are 4x as frequent (T: 1.2-1.3e-5 of the activation values against INT8's 3-5e-6; every
# one a single step, by the teacher-forced check), so the drift is about twice INT8's: 4.3e-2 to 6.0e-2 on T with
# random weights in four quantize runs (seeds 0-2 and percentile calibration; INT8: 2.1e-2 to 2.5e-2), which failed
# 5e-2 in two of them. 0.12 keeps INT8's margin (2x the worst drift seen) and is 5x below the gross error this
# check exists for (0.6: ONNX Runtime's optimised FP8 kernels, docs/export.md).
QDQ_TOL_FP8 = 0.12
# Teacher-forced Q/DQ parity (qdq_forced_parity): at most this fraction of the activation values of the whole network
# may land on a different integer in ONNX Runtime than in ModelOpt (and never more than one step away). Measured on
# MambaVision-T at 224: 64 of 16.2M values (4e-6) in the forced run, every one exactly one step apart (ties).
QDQ_FLIP_FRACTION = 1e-4


@dataclass
class CheckResult:
    name: str
    status: str  # "pass", "fail", "skip"
    detail: str
    seconds: float = 0.0
    data: Dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def relative_error(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a - ref| / max |ref| (0 if both are zero)."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    diff = float(np.abs(a - ref).max()) if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def check_onnx(path) -> CheckResult:
    """onnx.checker on the file (by path, so external data and models over 2 GB work), with full shape checks."""
    import onnx

    t = time.perf_counter()
    try:
        onnx.checker.check_model(str(path), full_check=False)
    except Exception as exc:
        return CheckResult("onnx.checker", "fail", str(exc).splitlines()[0][:300], time.perf_counter() - t)
    return CheckResult("onnx.checker", "pass", "valid", time.perf_counter() - t)


def check_ops(model, precision: str = "fp32") -> CheckResult:
    """Every (domain, op type) of the graph against TensorRT 10.3's ONNX support list and opset range.

    Fails on op types 10.3's parser lacks. Custom-domain ops (the scan's plugin form) pass with a note: they need
    their plugin library on the target. The opset range is enforced except for FP8, which JetPack 6 (sm_87) cannot
    run at all, so its opset-21 graph is meant for TensorRT >= 10.x on sm_89+.
    """
    from .trt103_ops import TRT103, check_op_types

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    check = check_op_types(((n.domain, n.op_type) for n in model.graph.node), opset)
    known_plugins = all(p.startswith("edgemv:") for p in check.plugins)
    ok = not check.unsupported and known_plugins and (check.opset_ok or precision == "fp8")
    detail = check.summary()
    if precision == "fp8" and not check.opset_ok:
        detail += " (FP8 needs sm_89+, so this graph is not for JetPack 6 anyway)"
    return CheckResult(f"{TRT103} op types", "pass" if ok else "fail", detail,
                       data={"unsupported": check.unsupported, "plugins": check.plugins, "opset": opset,
                             "notes": check.notes})


def fp8_to_standard_qdq(model):
    """A copy of ``model`` where ModelOpt's ``trt::TRT_FP8QuantizeLinear`` / ``TRT_FP8DequantizeLinear`` become
    standard QuantizeLinear / DequantizeLinear with a FLOAT8E4M3FN zero point (opset 19+), which ONNX Runtime runs
    on the CPU. The file handed to TensorRT keeps the trt nodes; this copy is only for parity checks.
    """
    import onnx
    from onnx import TensorProto, helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 19:
        raise EdgemvError(f"FP8 Q/DQ for ONNX Runtime needs opset 19 or newer; the graph has opset {opset}")
    out = onnx.ModelProto.FromString(model.SerializeToString())
    zp_name = "edgemv_fp8_zero_point"
    out.graph.initializer.append(helper.make_tensor(zp_name, TensorProto.FLOAT8E4M3FN, [], [0.0]))
    fp8_outputs = set()
    for node in out.graph.node:
        if node.domain == "trt" and node.op_type in ("TRT_FP8QuantizeLinear", "TRT_FP8DequantizeLinear"):
            if node.op_type == "TRT_FP8QuantizeLinear":
                fp8_outputs.update(node.output)
            node.domain = ""
            node.op_type = node.op_type.replace("TRT_FP8", "")
            if len(node.input) == 2:
                node.input.append(zp_name)
            kept = [a for a in node.attribute if a.name in ("axis",)]
            del node.attribute[:]
            node.attribute.extend(kept)
    # The exporter types the trt quantize outputs as uint8; the standard op produces float8e4m3fn.
    for vi in out.graph.value_info:
        if vi.name in fp8_outputs:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT8E4M3FN
    others = [o for o in out.opset_import if o.domain != "trt"]
    del out.opset_import[:]
    out.opset_import.extend(others)
    return out


def ort_session(model_or_path, threads: int = 0, optimization: str = "all", spinning: bool = True):
    """An ONNX Runtime CPU session from a path or a ModelProto (large protos go through a temporary file).

    ``spinning=False`` stops the intra-op threads from busy-waiting after a run (``session.intra_op.allow_spinning``
    0): for timing several sessions in turn, where one session's spinning threads would take the cores from the
    next one's run.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    opts.log_severity_level = 3
    if isinstance(model_or_path, (str, os.PathLike)):
        return ort.InferenceSession(str(model_or_path), opts, providers=["CPUExecutionProvider"])
    with ort_loadable(model_or_path) as source:
        return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def ort_loadable(model):
    """What ONNX Runtime can open for the ModelProto ``model``: its serialized bytes or, beyond protobuf's 2 GB, the
    path of a copy with its weights in a file beside it, in a temporary folder removed when the block ends (the
    session holds the weights by then)."""
    from .onnx_export import TWO_GB

    if model.ByteSize() <= TWO_GB:
        yield model.SerializeToString()
        return
    import onnx

    folder = tempfile.mkdtemp(prefix="edgemv-ort-")
    try:
        path = os.path.join(folder, "model.onnx")
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx.data", size_threshold=1024)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ort_run(session, x: np.ndarray) -> np.ndarray:
    inp = session.get_inputs()[0]
    want = np.float16 if "float16" in inp.type else np.float32
    return session.run(None, {inp.name: x.astype(want)})[0]


def qdq_tol(precision: str) -> float:
    """The free-running worst-image bound of a Q/DQ graph of ``precision`` ('int8' or 'fp8')."""
    return QDQ_TOL_FP8 if precision == "fp8" else QDQ_TOL


def ort_parity(session, reference: Callable[[np.ndarray], np.ndarray], inputs: Sequence[np.ndarray],
               kind: str, qdq_worst: float = QDQ_TOL) -> CheckResult:
    """ONNX Runtime against PyTorch on the same images; ``kind`` is 'fp32', 'fp16', 'qdq' or 'qdq16' (an FP16 Q/DQ
    graph; sets the tolerance).

    Errors are per image (max |diff| / max |ref| over its logits); the check passes when the median image meets
    the kind's tolerance and, for Q/DQ, the worst one meets ``qdq_worst`` (:func:`qdq_tol` of the precision). An FP16
    Q/DQ graph is held to ``qdq_worst`` for the median too: float16 rounding moves many more values across the
    quantizers' rounding ties than float32 does, so its free-running drift is of that size; what shows it computes
    the FP32 graph's function is :func:`half_forced_parity`.
    """
    t = time.perf_counter()
    errors = []
    for x in inputs:
        got = ort_run(session, x).astype(np.float32)
        ref = np.asarray(reference(x), dtype=np.float32)
        if got.shape != ref.shape:
            return CheckResult("ONNX Runtime parity", "fail", f"output shape {got.shape} != PyTorch {ref.shape}")
        errors.extend(relative_error(g, r) for g, r in zip(got, ref))
    median, worst = float(np.median(errors)), float(np.max(errors))
    tol = {"fp32": FP32_TOL, "fp16": FP16_TOL, "qdq": FP32_TOL, "qdq16": qdq_worst}[kind]
    worst_tol = {"fp32": FP32_TOL, "fp16": FP16_TOL, "qdq": qdq_worst, "qdq16": qdq_worst}[kind]
    ok = median < tol and worst < worst_tol
    against = {"fp32": "PyTorch FP32", "fp16": "PyTorch FP32 (FP16 graph)", "qdq": "fake-quantized PyTorch",
               "qdq16": "fake-quantized PyTorch (FP16 graph)"}[kind]
    detail = (f"vs {against}: rel err median {median:.2e}, max {worst:.2e} over {len(errors)} images "
              f"(limit {tol:g}" + (f" median, {worst_tol:g} max)" if worst_tol != tol else ")"))
    return CheckResult("ONNX Runtime parity", "pass" if ok else "fail", detail, time.perf_counter() - t,
                       data={"median": median, "max": worst, "n": len(errors)})


def activation_dequantize_outputs(model) -> List[str]:
    """Output names of the DequantizeLinear nodes of activations, in graph order: those fed by a QuantizeLinear of a
    computed tensor (weights are constants: initializers, Constant nodes, or folded to integer initializers)."""
    from .simplify import constant_values

    consts = set(constant_values(model))
    producer = {o: n for n in model.graph.node for o in n.output}
    names = []
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            continue
        q = producer.get(node.input[0])
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] in consts:
            continue
        names.append(node.output[0])
    return names


def _with_outputs(graph, names):
    """A copy of ``graph`` that also outputs the tensors ``names`` (those it does not output already)."""
    import onnx

    exposed = onnx.ModelProto.FromString(graph.SerializeToString())
    have = {o.name for o in exposed.graph.output}
    exposed.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in have)
    return exposed


QDQ_FORCED = "ONNX Runtime Q/DQ parity (teacher-forced)"


def qdq_forced_parity(graph, torch_model, inputs: Sequence[np.ndarray], optimization: str = "all",
                      max_flip_fraction: float = None, name: str = QDQ_FORCED) -> CheckResult:
    """Teacher-forced parity of a Q/DQ graph against the fake-quantized PyTorch model.

    Two implementations of the same quantized network cannot agree bit for bit: where a value lands within float
    rounding of a rounding tie (x / scale = k + 0.5), ONNX Runtime and ModelOpt may pick neighbouring integers.
    One such flip changes the next layer's outputs by ~scale * weight, which moves other values across ties in the
    next quantizer, and so on: in a deep network with many activation quantizers (MambaVision-T at 224: 330
    quantizers, 16M quantized activations per image) the logits of the two then differ by ~1e-2 relative although
    both are right. Comparing logits alone cannot tell that apart from a wrong graph.

    So every activation DequantizeLinear output of the graph is exposed, matched (in execution order, checked by
    shape and scale) to the enabled input/output quantizers ModelOpt calls, and the PyTorch model is run with each
    quantizer's output *replaced by ONNX Runtime's*. Then:
    - every quantizer must agree with ONNX Runtime on its own input except at rounding ties: at most one step apart,
      on at most ``max_flip_fraction`` of all quantized values;
    - the logits must match to FP32_TOL: the float computation between quantizers is the same function.
    """
    import torch
    from modelopt.torch.quantization.nn import TensorQuantizer

    max_flip_fraction = QDQ_FLIP_FRACTION if max_flip_fraction is None else max_flip_fraction
    t = time.perf_counter()
    dq_names = activation_dequantize_outputs(graph)
    scales = _dq_scales(graph, dq_names)
    session = ort_session(_with_outputs(graph, dq_names), optimization=optimization)
    out_names = [o.name for o in session.get_outputs()]

    quantizers = [(n, m) for n, m in torch_model.named_modules()
                  if isinstance(m, TensorQuantizer) and not n.endswith("weight_quantizer")]
    state = {}

    def hook(module, args, output, qname=None):
        if not module.is_enabled or not getattr(module, "_if_quant", True):
            return None  # a disabled quantizer passes its input through and has no node in the graph
        k = state["k"]
        state["k"] += 1
        if k >= len(dq_names):
            state["error"] = state.get("error") or f"PyTorch calls more activation quantizers ({qname}, #{k + 1})"
            return None
        ref = state["ort"][dq_names[k]]
        own = output.detach().float().cpu().numpy()
        if ref.shape != own.shape:
            if ref.size != own.size:
                state["error"] = state.get("error") or (
                    f"quantizer #{k + 1} {qname} {list(own.shape)} does not match {dq_names[k]} {list(ref.shape)}")
                return None
            ref = ref.reshape(own.shape)
        scale = scales.get(dq_names[k])
        amax = getattr(module, "amax", None)
        if scale is not None and amax is not None and amax.numel() == 1 and scale.size == 1:
            ours = float(amax) / float(getattr(module, "maxbound", 127))
            if not np.isclose(ours, float(scale), rtol=1e-6, atol=0):
                state["error"] = state.get("error") or (
                    f"quantizer #{k + 1} {qname} scale {ours:.6g} != {dq_names[k]} scale {float(scale):.6g}")
        diff = np.abs(own - ref)
        step = float(np.max(scale)) if scale is not None else float(np.abs(ref).max() or 1.0)
        flips = int((diff > 1e-3 * step).sum())
        state["values"] += own.size
        state["flips"] += flips
        if flips:
            state["flipped"][qname] = state["flipped"].get(qname, 0) + flips
        if isinstance(getattr(module, "num_bits", 8), int):
            state["max_steps"] = max(state["max_steps"], float(diff.max()) / step if diff.size else 0.0)
        elif flips:  # FP8: its steps grow with the value, so each flip is measured in the step where it lies
            state["max_steps"] = max(state["max_steps"], _e4m3_steps(own, ref, diff > 1e-3 * step, step))
        return torch.from_numpy(np.ascontiguousarray(ref)).to(output.dtype).to(output.device)

    def weight_hook(module, args, output, qname=None):
        # ONNX Runtime's QuantizeLinear of the constant weight (see _ort_quantize); the graph holds that, not
        # ModelOpt's rounding, so the forced model uses it too. Flips are counted, not judged: they are ties.
        if not module.is_enabled or not getattr(module, "_if_quant", True):
            return None
        ort_w = _ort_quantize(module, args[0])
        if ort_w is None:
            return None
        state["weight_values"] += output.numel()
        state["weight_flips"] += int((ort_w - output).abs().gt(_step(module, output) * 0.5).sum())
        return ort_w

    weight_quantizers = [(n, m) for n, m in torch_model.named_modules()
                         if isinstance(m, TensorQuantizer) and n.endswith("weight_quantizer")]
    handles = [m.register_forward_hook(lambda mod, a, o, qn=n: hook(mod, a, o, qn)) for n, m in quantizers]
    handles += [m.register_forward_hook(lambda mod, a, o, qn=n: weight_hook(mod, a, o, qn))
                for n, m in weight_quantizers]
    errors = []
    state.update(values=0, flips=0, flipped={}, max_steps=0.0, weight_values=0, weight_flips=0)
    try:
        for x in inputs:
            want = np.float16 if "float16" in session.get_inputs()[0].type else np.float32
            outs = dict(zip(out_names, session.run(None, {session.get_inputs()[0].name: x.astype(want)})))
            logits = outs[out_names[0]].astype(np.float32)
            state.update(ort=outs, k=0)
            with torch.no_grad():
                forced = torch_model(torch.from_numpy(x)).float().numpy()
            if state.get("error"):
                break
            if state["k"] != len(dq_names):
                state["error"] = f"PyTorch called {state['k']} activation quantizers, the graph has {len(dq_names)}"
                break
            errors.extend(relative_error(g, r) for g, r in zip(logits, forced))
    finally:
        for h in handles:
            h.remove()
    seconds = time.perf_counter() - t
    if state.get("error"):
        return CheckResult(name, "fail", f"cannot match the graph to the model: {state['error']}", seconds)
    worst = float(max(errors)) if errors else 0.0
    fraction = state["flips"] / max(state["values"], 1)
    ok = worst < FP32_TOL and fraction <= max_flip_fraction and state["max_steps"] < 1.01
    top = sorted(state["flipped"].items(), key=lambda kv: -kv[1])[:3]
    detail = (f"{len(dq_names)} activation quantizers forced to ONNX Runtime's values: logits rel err max "
              f"{worst:.2e} (limit {FP32_TOL:g}); rounding-tie flips {state['flips']} of {state['values']} values "
              f"({fraction:.1e}, limit {max_flip_fraction:g}), largest {state['max_steps']:.2f} step; "
              f"weights rounded by ONNX Runtime's formula ({state['weight_flips']} of {state['weight_values']} "
              "differ from ModelOpt's by a tie)")
    return CheckResult(name, "pass" if ok else "fail", detail, seconds,
                       data={"max": worst, "flips": state["flips"], "values": state["values"],
                             "flip_fraction": fraction, "max_steps": state["max_steps"], "quantizers": len(dq_names),
                             "most_flips": top, "weight_flips": state["weight_flips"]})


HALF_FORCED = "FP16 vs FP32 Q/DQ graph (teacher-forced)"


def half_forced_parity(graph16, graph32, inputs: Sequence[np.ndarray], optimization: str = "all") -> CheckResult:
    """Teacher-forced parity of an FP16 Q/DQ graph (edgemv.export.half) against the FP32 graph it was made from.

    Free-running, the two differ by ~1e-2 on a deep network: float16 rounding puts values on the other side of a
    quantizer's rounding tie, and each such one-step difference propagates (:func:`qdq_forced_parity` explains the
    mechanism for FP32). So every activation dequantize output of the FP16 graph is replaced by a graph input fed
    with the FP32 graph's value (rounded to float16), and the logits must then agree to :data:`HALF_FORCED_TOL`:
    between quantizers the FP16 graph computes the FP32 graph's function, to float16 rounding.
    """
    import onnx
    from onnx import TensorProto, helper

    t = time.perf_counter()
    dq_names = activation_dequantize_outputs(graph32)
    s32 = ort_session(_with_outputs(graph32, dq_names), optimization=optimization)
    forced = onnx.ModelProto.FromString(graph16.SerializeToString())
    wanted, replaced = set(dq_names), set()
    for node in forced.graph.node:  # each activation dequantize's output becomes a graph input of that name
        if node.output and node.output[0] in wanted:
            replaced.add(node.output[0])
            node.output[0] += "__edgemv_replaced"
    missing = wanted - replaced
    if missing:
        return CheckResult(HALF_FORCED, "fail", f"the FP16 graph lacks {len(missing)} of the FP32 graph's activation "
                           f"dequantize outputs (e.g. {sorted(missing)[0]})", time.perf_counter() - t)
    forced.graph.input.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT16, None) for n in dq_names)
    s16 = ort_session(forced, optimization=optimization)
    image = s32.get_inputs()[0].name
    out_names = [o.name for o in s32.get_outputs()]
    errors = []
    for x in inputs:
        outs = dict(zip(out_names, s32.run(None, {image: x.astype(np.float32)})))
        feed = {image: x.astype(np.float16), **{n: outs[n].astype(np.float16) for n in dq_names}}
        got = s16.run(None, feed)[0].astype(np.float32)
        errors.extend(relative_error(g, r) for g, r in zip(got, outs[out_names[0]].astype(np.float32)))
    worst = float(max(errors))
    detail = (f"{len(dq_names)} activation quantizers forced to the FP32 graph's values: logits rel err max "
              f"{worst:.2e} (limit {HALF_FORCED_TOL:g})")
    return CheckResult(HALF_FORCED, "pass" if worst < HALF_FORCED_TOL else "fail", detail, time.perf_counter() - t,
                       data={"max": worst, "quantizers": len(dq_names)})


def _e4m3_steps(own, ref, flipped, scale: float) -> float:
    """The largest of |own - ref| at ``flipped``, counted in E4M3 steps (per-tensor ``scale``). Between neighbours
    a < b the step is that of a's binade: 2^(e - 3) for |a| / scale in [2^e, 2^(e+1)), and 2^-9 below the smallest
    normal 2^-6 (subnormals)."""
    a, b = np.abs(own[flipped]), np.abs(ref[flipped])
    # nudged up by 0.1% (grid values are 1/16 apart or more, relatively): 0.25 dequantized as 0.24999997 is in 0.25's
    # binade
    low = np.minimum(a, b) / scale * 1.001
    exponent = np.floor(np.log2(np.maximum(low, 2.0 ** -6)))
    spacing = np.exp2(exponent - 3) * scale
    return float((np.abs(own[flipped] - ref[flipped]) / spacing).max())


def _step(module, x):
    import torch

    amax = module.amax.detach().to(x.device, torch.float32)
    return amax / float(getattr(module, "maxbound", 127))


def _ort_quantize(module, w):
    """``w`` quantized as ONNX Runtime's QuantizeLinear/DequantizeLinear do it: round(w / scale) * scale with
    scale = amax / maxbound in float32 (ModelOpt computes round(w * (maxbound / amax)) / (maxbound / amax), which
    rounds the other way where w / scale is within float rounding of a .5 tie). None for formats not handled."""
    import torch

    amax = getattr(module, "amax", None)
    if amax is None:
        return None
    bits = getattr(module, "num_bits", 8)
    w32 = w.detach().float()
    scale = _step(module, w32)
    if bits == 8 and not getattr(module, "unsigned", False):
        low = -127 if getattr(module, "narrow_range", False) else -128
        q = torch.clamp(torch.round(w32 / scale), low, 127)  # torch.round: half to even, as ONNX
    elif isinstance(bits, (tuple, list)) and tuple(bits) == (4, 3):
        q = torch.clamp(w32 / scale, -448, 448).to(torch.float8_e4m3fn).float()
    else:
        return None
    return (q * scale).to(w.dtype)


def _dq_scales(model, dq_outputs) -> Dict[str, np.ndarray]:
    from .simplify import constant_values

    consts = constant_values(model)
    by_out = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    out = {}
    for name in dq_outputs:
        value = consts.get(by_out[name].input[1])
        if value is not None:
            out[name] = np.asarray(value, dtype=np.float32)
    return out


def trt_rtx_build(path, precision: str, input_name: str, input_shape: Sequence[int], dynamic_batch: bool,
                  max_batch: int = 8, targets: Optional[Sequence[str]] = None,
                  engine_out: Optional[Path] = None, plugins: Sequence[str] = ()) -> CheckResult:
    """Parse ``path`` with TensorRT-RTX's ONNX parser and build a serialized engine ahead of time on the CPU.

    ``targets`` defaults to sm_86 + sm_89 (FP8: sm_89 only). The engine is discarded unless ``engine_out`` is given
    (an RTX engine does not run on Jetson; the check is that the graph builds). ``plugins``: plugin libraries the
    graph's custom nodes need (the SelectiveScan one from `edgemv plugin`); with any, the build runs in a child
    process (edgemv.export.rtx_plugin_build says why).
    """
    from ..compile import trt_compat as tc

    if plugins:
        from .rtx_plugin_build import build_with_plugins

        return build_with_plugins(path, precision, input_name, input_shape, dynamic_batch, plugins,
                                  max_batch=max_batch, targets=targets, engine_out=engine_out)

    name = TRT_RTX_BUILD
    t = time.perf_counter()
    try:
        info = tc.import_tensorrt(prefer=("tensorrt_rtx",))
    except EdgemvError as exc:
        return CheckResult(name, "skip", str(exc))
    trt = info.module
    targets = list(targets or (tc.FP8_TARGETS if precision == "fp8" else tc.DEFAULT_TARGETS))
    logger = tc.quiet_logger(info)
    builder = trt.Builder(logger)
    network = tc.create_network(builder, info, strongly_typed=True)
    parser, errors = tc.parse_onnx(network, info, logger, path)
    label = f"{info.module_name} {info.version}"
    if errors:
        return CheckResult(name, "fail", f"{label} parser: {errors[0][:300]}", time.perf_counter() - t,
                           data={"errors": errors})
    config = builder.create_builder_config()
    set_targets = tc.set_targets(config, info, targets)
    tc.configure_precision(config, info, precision, strongly_typed=True)
    tc.set_workspace(config, info, 1 << 30)
    shape = tuple(int(s) for s in input_shape[1:])
    if dynamic_batch:
        profile = builder.create_optimization_profile()
        profile.set_shape(input_name, (1, *shape), (1, *shape), (max_batch, *shape))
        config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t
    where = "/".join(set_targets) or "local GPU"
    if engine is None:
        errs = [m for sev, m in logger.messages if "cuda" not in m.lower()] or [m for _, m in logger.messages]
        why = f": {errs[-1][:300]}" if errs else ""
        return CheckResult(name, "fail", f"{label} builder failed for {where} ({precision}){why}", seconds)
    size = engine.nbytes
    if engine_out is not None:
        write_bytes_atomic(Path(engine_out), bytes(engine))
    batch = f"batch 1..{max_batch}" if dynamic_batch else "static batch"
    return CheckResult(name, "pass", f"{label}: parsed and built for {where}, {precision}, {batch}, "
                       f"engine {size / 1e6:.1f} MB in {seconds:.1f} s", seconds,
                       data={"targets": set_targets, "engine_bytes": size, "version": info.version})


