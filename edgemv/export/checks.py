"""Checks of an exported ONNX file: onnx.checker, ONNX Runtime parity, TensorRT 10.3 op types, TensorRT-RTX build.

Each check returns a :class:`CheckResult` (pass / fail / skip with one line of detail) so the CLI and the tests read
the same thing.
"""

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import EdgemvError

__all__ = ["CheckResult", "check_onnx", "check_ops", "ort_session", "ort_run", "ort_parity", "fp8_to_standard_qdq",
           "trt_rtx_build", "relative_error", "FP32_TOL", "FP16_TOL", "QDQ_TOL"]

FP32_TOL = 1e-4
FP16_TOL = 2e-2
# Q/DQ graphs against the fake-quantized PyTorch model: ONNX Runtime and ModelOpt's fake quantization agree to ~1e-7
# except where a value lands within float rounding of a rounding boundary and the two pick neighbouring integers;
# that one-step difference then propagates. The median over images must meet FP32_TOL, the worst image QDQ_TOL.
QDQ_TOL = 5e-2


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


def ort_session(model_or_path, threads: int = 0, optimization: str = "all"):
    """An ONNX Runtime CPU session from a path or a ModelProto (large protos go through a temporary file)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    opts.log_severity_level = 3
    if isinstance(model_or_path, (str, os.PathLike)):
        return ort.InferenceSession(str(model_or_path), opts, providers=["CPUExecutionProvider"])
    return ort.InferenceSession(model_or_path.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def ort_run(session, x: np.ndarray) -> np.ndarray:
    inp = session.get_inputs()[0]
    want = np.float16 if "float16" in inp.type else np.float32
    return session.run(None, {inp.name: x.astype(want)})[0]


def ort_parity(session, reference: Callable[[np.ndarray], np.ndarray], inputs: Sequence[np.ndarray],
               kind: str) -> CheckResult:
    """ONNX Runtime against PyTorch on the same images; ``kind`` is 'fp32', 'fp16' or 'qdq' (sets the tolerance).

    Errors are per image (max |diff| / max |ref| over its logits); the check passes when the median image meets
    the kind's tolerance and, for Q/DQ, the worst one meets QDQ_TOL.
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
    tol = {"fp32": FP32_TOL, "fp16": FP16_TOL, "qdq": FP32_TOL}[kind]
    worst_tol = {"fp32": FP32_TOL, "fp16": FP16_TOL, "qdq": QDQ_TOL}[kind]
    ok = median < tol and worst < worst_tol
    against = {"fp32": "PyTorch FP32", "fp16": "PyTorch FP32 (FP16 graph)", "qdq": "fake-quantized PyTorch"}[kind]
    detail = (f"vs {against}: rel err median {median:.2e}, max {worst:.2e} over {len(errors)} images "
              f"(limit {tol:g}" + (f" median, {worst_tol:g} max)" if worst_tol != tol else ")"))
    return CheckResult("ONNX Runtime parity", "pass" if ok else "fail", detail, time.perf_counter() - t,
                       data={"median": median, "max": worst, "n": len(errors)})


def trt_rtx_build(path, precision: str, input_name: str, input_shape: Sequence[int], dynamic_batch: bool,
                  max_batch: int = 8, targets: Optional[Sequence[str]] = None,
                  engine_out: Optional[Path] = None) -> CheckResult:
    """Parse ``path`` with TensorRT-RTX's ONNX parser and build a serialized engine ahead of time on the CPU.

    ``targets`` defaults to sm_86 + sm_89 (FP8: sm_89 only). The engine is discarded unless ``engine_out`` is given
    (an RTX engine does not run on Jetson; the check is that the graph builds).
    """
    from ..compile import trt_compat as tc

    name = "TensorRT-RTX build"
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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
