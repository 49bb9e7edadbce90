"""PyTorch -> ONNX for MambaVision: FP32, FP16, INT8 and FP8 Q/DQ, simplified and checked.

The path (see docs/export.md):
1. :func:`load_source` finds the model: a quantize run folder (``edgemv-out/<variant>-<precision>/``, quantize.json
   plus ModelOpt's saved model), a whole pickled module (e.g. from pruning), or a variant with weights (FP32).
2. :func:`export_onnx` traces it with the legacy TorchScript exporter (``dynamo=False``): that is the path ModelOpt
   supports for Q/DQ. INT8 quantizers become standard QuantizeLinear/DequantizeLinear (opset 13+); FP8 quantizers
   become ``trt::TRT_FP8QuantizeLinear`` / ``TRT_FP8DequantizeLinear`` (TensorRT's parser imports them; ONNX
   Runtime does not, so parity runs on a copy mapped to standard opset-19+ Q/DQ with FLOAT8E4M3FN zero points).
   The selective scan is exported in the form ``scan_form`` names ('decomposed': plain ops, 'plugin': one
   ``SelectiveScan`` node for a TensorRT plugin) through edgemv.ops; ``scan_decomposition`` picks which plain-op
   form the decomposed graph holds ('doubling', the default by measurement, or 'chunked').
3. The graph is simplified (onnxsim, else onnxslim), the Q/DQ scales compared before/after, and it is written
   atomically (temporary name, then rename), with external data when over 2 GB.
4. Checks: onnx.checker, ONNX Runtime against PyTorch, TensorRT 10.3 op types, TensorRT-RTX parse+build.
"""

import contextlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import EdgemvError

__all__ = ["ExportError", "ExportSource", "ExportReport", "load_source", "export_onnx", "export_model",
           "save_onnx_atomic", "describe_io", "DEFAULT_OPSET", "MIN_OPSET", "TWO_GB"]

TWO_GB = 2_000_000_000  # protobuf's hard limit is 2 GiB; stay below it
# 20: the newest TensorRT 10.3 parses, and the first with ONNX's Gelu (one node instead of ~8; see _gelu_as_one_node).
# Measured in ONNX Runtime (docs/benchmarks.md): FP32 and default INT8 as fast as at 17, INT8 with conv output
# quantizers 1.2x faster (every ConvBlock conv1 becomes QLinearConv).
DEFAULT_OPSET = {"fp32": 20, "fp16": 20, "int8": 20, "fp8": 21}
# every variant's attention exports through scaled_dot_product_attention, which torch's exporter writes from opset 14
# (at 13 it failed after printing the whole traced graph); fp8 types: 19
MIN_OPSET = {"fp32": 14, "fp16": 14, "int8": 14, "fp8": 19}


class ExportError(EdgemvError):
    """The model cannot be exported as asked (bad source, impossible option combination, exporter failure)."""


@dataclass
class ExportSource:
    """What to export and what to compare it with."""

    model: torch.nn.Module  # the module that is traced (fake-quantized for Q/DQ runs)
    precision: str  # "fp32", "int8", "fp8" (of the source; --half adds fp16 on top)
    variant: str
    input_size: Tuple[int, int, int]
    description: str  # one line for the report
    run_dir: Optional[Path] = None
    record: Dict = field(default_factory=dict)  # quantize.json when from a run


@dataclass
class ExportReport:
    path: str
    precision: str  # fp32, fp16, int8, fp8, int8+fp16 ...
    opset: int
    dynamic_batch: bool
    scan_form: str
    scan_decomposition: Optional[str]  # the plain-op form of a decomposed scan ('doubling', 'chunked'); None: plugin
    simplifier: str
    simplifier_notes: List[str]
    nodes_exported: int
    nodes: int
    file_bytes: int  # the .onnx plus its external data
    external_data: Optional[str]
    inputs: List[Tuple[str, str, List]]
    outputs: List[Tuple[str, str, List]]
    op_counts: Dict[str, int]
    qdq: Dict[str, int]
    scales: str
    seconds: Dict[str, float]
    checks: List = field(default_factory=list)  # CheckResult
    # INT8/FP8 weights stored as INT8/FP8 initializers (edgemv.export.weights): tensors, values, float_bytes
    # dropped; empty where the weights stay float (FP32/FP16 graphs, or --float-weights)
    quantized_weights: Dict[str, int] = field(default_factory=dict)
    # an FP16 Q/DQ graph (--half on a quantize run, edgemv.export.half): scales converted, subnormal_scales,
    # max_scale_change; empty otherwise
    fp16: Dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> Dict:
        d = asdict(self)
        d["checks"] = [asdict(c) for c in self.checks]
        return d


# ---------------------------------------------------------------------------------------------------- sources

def load_source(run_or_model: Optional[str], variant: str = "t", weights: Optional[str] = None,
                trust_pickle: bool = False) -> ExportSource:
    """Resolve the CLI's RUN_OR_MODEL argument.

    - a folder with ``quantize.json`` (or its ``model.pth`` or ``quantize.json``): a quantize run; the
      ModelOpt-restored model is exported with its Q/DQ;
    - a ``.pt``/``.pth`` file holding a whole ``nn.Module`` (``torch.save(model)``, e.g. a pruned model): unpickled
      only with ``trust_pickle`` (it runs code stored in the file; :func:`edgemv.models.pickled.load_whole_module`);
    - any other file, or nothing: FP32 ``variant`` with ``weights`` (a checkpoint path, hub id, 'official',
      'random'); RUN_OR_MODEL given as a checkpoint file is the same as ``--weights FILE``.
    """
    from ..models import create_model, get_variant
    from ..models.pickled import load_whole_module

    if run_or_model is not None:
        from ..quantize import run_folder_of

        path = Path(run_or_model)
        run = run_folder_of(path)
        if run is not None:
            return _load_run(run)
        if path.is_dir():
            raise ExportError(f"{path} is a folder without quantize.json: not a run folder from `edgemv quantize`")
        if not path.exists():
            raise ExportError(f"{path} does not exist (expected a run folder, a model file or a checkpoint)")
        module = load_whole_module(path, trust_pickle)
        if module is not None:
            spec = getattr(module, "variant", None)
            name = getattr(spec, "name", variant)
            size = tuple(getattr(module, "pretrained_cfg", get_variant(name).pretrained).input_size)
            return ExportSource(module.eval(), "fp32", name, size, f"module {path.name} ({name})")
        weights = str(path)
    model = create_model(variant, weights=weights if weights is not None else "official")
    info = model.weights_info
    desc = f"{model.variant.name} FP32, weights {getattr(info, 'source', weights)}"
    return ExportSource(model, "fp32", model.variant.name, tuple(model.pretrained_cfg.input_size), desc)


def _load_run(path: Path) -> ExportSource:
    from ..models import get_variant

    try:
        record = json.loads((path / "quantize.json").read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {path / 'quantize.json'}: {exc}") from None
    try:
        from ..quantize import load_quantized
    except ImportError as exc:
        raise ExportError(f"cannot load the run in {path}: edgemv.quantize is unavailable ({exc})") from None
    model = load_quantized(path)
    precision = str(record.get("precision", "int8")).lower()
    if precision not in ("int8", "fp8"):
        raise ExportError(f"{path}: unknown precision {precision!r} in quantize.json")
    name = getattr(getattr(model, "variant", None), "name", None) or (record.get("model") or {}).get("variant")
    if not name:
        raise ExportError(f"{path}: quantize.json names no variant")
    spec = get_variant(name)
    size = tuple(getattr(model, "pretrained_cfg", spec.pretrained).input_size)
    return ExportSource(model.eval(), precision, spec.name, size,
                        f"run {path} ({spec.name} {precision.upper()})", run_dir=path, record=record)


# ---------------------------------------------------------------------------------------------------- export

GELU_OPSET = 20  # ONNX Gelu (with approximate="tanh") exists from opset 20


@contextlib.contextmanager
def _gelu_as_one_node(opset: int):
    """From opset 20 on, export ``aten::gelu`` (exact and tanh) as ONNX's one ``Gelu`` node instead of the legacy
    exporter's ~8 elementwise nodes (TensorRT 10.3 parses Gelu; ONNX Runtime has a kernel for it).

    Why it matters beyond size: ONNX Runtime's CPU builds a ``QLinearConv`` from DequantizeLinear -> Conv ->
    QuantizeLinear only when that QuantizeLinear has a single consumer. A conv output quantizer followed by a
    decomposed GELU feeds five nodes (the tanh form uses x five times), so the ConvBlocks' ``conv1`` stayed float
    Conv; with one Gelu node they become QLinearConv (docs/export.md, "Which convs ONNX Runtime runs in INT8").

    The exporter of torch 2.5 and newer does this by itself (pytorch/pytorch#128773, merged June 2024; checked with
    2.13: one Gelu node, exact and tanh, at opsets 20 and 21 without this), so registering the same symbolic changes
    nothing there. torch 2.4, which pyproject.toml still allows, predates it: drop this with torch>=2.5.
    """
    if opset < GELU_OPSET:
        yield
        return
    from torch.onnx import symbolic_helper

    @symbolic_helper.parse_args("v", "s")
    def gelu(g, x, approximate="none"):
        return g.op("Gelu", x, approximate_s=approximate)

    torch.onnx.register_custom_op_symbolic("aten::gelu", gelu, GELU_OPSET)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::gelu", GELU_OPSET)


def export_onnx(model: torch.nn.Module, input_size: Sequence[int], opset: int, dynamic_batch: bool = True,
                half: bool = False, scan_form: str = "decomposed", input_name: str = "images",
                output_name: str = "logits", scan_decomposition: Optional[str] = None):
    """Trace ``model`` to an in-memory onnx.ModelProto (external data loaded) with the legacy exporter."""
    import onnx

    from ..ops import onnx_export_context

    batch = 2 if dynamic_batch else 1  # trace with 2 so that no size-1 broadcast is baked into the graph
    dtype = torch.float16 if half else torch.float32
    x = torch.randn(batch, *input_size, dtype=dtype)
    dynamic_axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    tmpdir = tempfile.mkdtemp(prefix="edgemv-export-")
    try:
        path = os.path.join(tmpdir, "model.onnx")
        with onnx_export_context(scan_form, scan_decomposition) as extra, _gelu_as_one_node(opset), \
                warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            kwargs = dict(opset_version=opset, input_names=[input_name], output_names=[output_name],
                          dynamic_axes=dynamic_axes, do_constant_folding=True, dynamo=False, **(extra or {}))
            try:
                torch.onnx.export(model, (x,), path, **kwargs)
            except EdgemvError:
                raise
            except Exception as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ExportError(f"torch.onnx.export failed at opset {opset}: {msg[:300]}") from exc
        return onnx.load(path, load_external_data=True)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def save_onnx_atomic(model, out: Path, external: Optional[bool] = None) -> Tuple[int, Optional[str]]:
    """Write ``model`` to ``out`` atomically: into a temporary folder beside it, then renamed into place (external
    data first, the .onnx last). External data (``<name>.data``) when ``external`` or when the model is over 2 GB.
    Returns (total bytes, external data file name or None).
    """
    import onnx

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if external is None:
        external = model.ByteSize() > TWO_GB
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    data_name = out.name + ".data" if external else None
    try:
        tmp_model = tmpdir / out.name
        if external:
            onnx.save_model(model, str(tmp_model), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data_name, size_threshold=1024)
            os.replace(tmpdir / data_name, out.parent / data_name)
        else:
            onnx.save_model(model, str(tmp_model))
        os.replace(tmp_model, out)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    total = out.stat().st_size + ((out.parent / data_name).stat().st_size if data_name else 0)
    if not external and (out.parent / (out.name + ".data")).exists():
        (out.parent / (out.name + ".data")).unlink()  # stale data of an earlier, larger export
    return total, data_name


def describe_io(model) -> Tuple[List, List]:
    """[(name, dtype, shape)] of graph inputs and outputs; symbolic dimensions by name."""
    import onnx

    init = {t.name for t in model.graph.initializer}

    def one(v):
        tt = v.type.tensor_type
        shape = [d.dim_param if d.dim_param else d.dim_value for d in tt.shape.dim]
        return (v.name, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name, shape)

    return [one(v) for v in model.graph.input if v.name not in init], [one(v) for v in model.graph.output]


def _op_counts(model) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for n in model.graph.node:
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}:{n.op_type}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def default_out(source: ExportSource, half: bool) -> Path:
    """model.onnx inside the run folder, else edgemv-out/<variant>-<precision>/model.onnx."""
    if source.run_dir is not None:
        return source.run_dir / ("model_fp16.onnx" if half else "model.onnx")
    tag = "fp16" if half else source.precision
    return Path("edgemv-out") / f"{source.variant}-{tag}" / "model.onnx"


def export_model(source: ExportSource, out: Optional[Path] = None, opset: Optional[int] = None,
                 dynamic_batch: bool = True, half: bool = False, scan_form: str = "decomposed",
                 simplify: bool = True, check: bool = True, trt_build: bool = True, parity_images: int = 4,
                 seed: int = 0, log: Callable[[str], None] = lambda s: None,
                 scan_decomposition: Optional[str] = None, quantized_weights: bool = True,
                 plugins: Sequence[str] = ()) -> ExportReport:
    """Export, simplify, save and check; the one library call behind `edgemv export`.

    ``scan_decomposition``: the plain-op form of the scan in a decomposed graph, 'doubling' or 'chunked' (None:
    edgemv.ops' setting, 'doubling' by default). ``quantized_weights``: in an INT8 or FP8 graph, store each quantized
    weight as the INT8/FP8 tensor its quantize node computes (edgemv.export.weights; a quarter of the size) instead
    of FP32 behind its quantize node. ``plugins``: with ``scan_form='plugin'``, the SelectiveScan plugin library
    (`edgemv plugin`) the TensorRT-RTX build loads; without it that build is skipped.
    """
    import onnx

    from . import checks
    from .simplify import compare_scales, simplify as run_simplify
    from ..ops import get_scan_decomposition

    if scan_form not in ("decomposed", "plugin"):
        raise ExportError(f"unknown scan form {scan_form!r}: choose decomposed or plugin")
    if plugins and scan_form != "plugin":
        raise ExportError("a plugin library serves the plugin form of the scan only (--scan plugin)")
    for lib in plugins:
        if not os.path.isfile(lib):
            raise ExportError(f"plugin library {lib} not found")
    # an unknown scan_decomposition: edgemv.ops' ScanImplError (an EdgemvError) when the export starts
    decomposition = (scan_decomposition or get_scan_decomposition()) if scan_form == "decomposed" else None
    precision = source.precision
    opset = opset or DEFAULT_OPSET[precision]
    if opset < MIN_OPSET[precision]:
        why = "float8 types" if precision == "fp8" else "the attention's scaled_dot_product_attention"
        raise ExportError(f"{precision.upper()} needs opset {MIN_OPSET[precision]} or newer ({why}; asked for {opset})")
    if opset > onnx.defs.onnx_opset_version():
        raise ExportError(f"opset {opset} is newer than this onnx ({onnx.defs.onnx_opset_version()})")
    if half and precision != "fp32" and opset < 19:
        raise ExportError(f"an FP16 {precision.upper()} graph needs opset 19 or newer (float16 Q/DQ scales); "
                          f"asked for {opset}")
    out = Path(out) if out else default_out(source, half)
    label = precision if not half else ("fp16" if precision == "fp32" else f"{precision}+fp16")
    seconds = {}

    # an FP32 model is halved in PyTorch; a Q/DQ model is exported in FP32 and its graph converted to FP16
    # afterwards (edgemv.export.half: ModelOpt's ONNX path cannot export a half model with Q/DQ)
    model_half = half and precision == "fp32"
    qdq_half = half and not model_half
    model = source.model
    if model_half:
        import copy
        model = copy.deepcopy(model).half()
    t = time.perf_counter()
    scan_label = f"{scan_form} ({decomposition})" if decomposition else scan_form
    log(f"exporting {source.description} to ONNX (opset {opset}, {label}, scan {scan_label}, "
        f"{'dynamic' if dynamic_batch else 'static'} batch)")
    graph = export_onnx(model, source.input_size, opset, dynamic_batch, model_half, scan_form,
                        scan_decomposition=decomposition)
    seconds["export"] = time.perf_counter() - t
    nodes_exported = len(graph.graph.node)

    notes: List[str] = []
    tool = "none"
    if simplify:
        t = time.perf_counter()
        result = run_simplify(graph)
        seconds["simplify"] = time.perf_counter() - t
        tool, notes = result.tool, result.notes
        scales_ok, scales_detail = compare_scales(graph, result.model)
        if not scales_ok:
            notes.append(f"{tool} changed Q/DQ scales; kept the unsimplified graph ({scales_detail})")
            tool = "none"
        else:
            graph = result.model
        log(f"simplified with {tool}: {nodes_exported} -> {len(graph.graph.node)} nodes"
            + "".join(f"\n  note: {n}" for n in notes))
    else:
        scales_ok, scales_detail = compare_scales(graph, graph)

    stored = {}
    if precision in ("int8", "fp8") and quantized_weights:
        from .weights import store_quantized_weights

        t = time.perf_counter()
        graph, stored = store_quantized_weights(graph)
        seconds["quantized_weights"] = time.perf_counter() - t
        log(f"weights: {stored['tensors']} stored as {precision.upper()} ({stored['values'] / 1e6:.1f}M values, "
            f"{stored['float_bytes'] / 1e6:.1f} MB of FP32 no longer stored)")

    graph32, fp16_info = None, {}
    if qdq_half:
        from .half import to_float16

        graph32 = graph
        graph, fp16_info = to_float16(graph32)
        log(f"FP16 graph: {fp16_info['scales']} quantization scales in float16 ({fp16_info['subnormal_scales']} below "
            f"its normal range; largest change {fp16_info['max_scale_change']:.1e})")

    t = time.perf_counter()
    size, data_name = save_onnx_atomic(graph, out)
    seconds["save"] = time.perf_counter() - t
    from .simplify import qdq_scales
    qdq_counts, _ = qdq_scales(graph)
    inputs, outputs = describe_io(graph)
    report = ExportReport(
        path=str(out), precision=label, opset=opset, dynamic_batch=dynamic_batch, scan_form=scan_form,
        scan_decomposition=decomposition, simplifier=tool, simplifier_notes=notes, nodes_exported=nodes_exported,
        nodes=len(graph.graph.node),
        file_bytes=size, external_data=data_name, inputs=inputs, outputs=outputs, op_counts=_op_counts(graph),
        qdq=qdq_counts, scales=scales_detail, seconds=seconds, quantized_weights=stored, fp16=fp16_info,
    )
    log(f"saved {out} ({size / 1e6:.1f} MB, {report.nodes} nodes)")
    if simplify and qdq_counts:
        report.checks.append(checks.CheckResult("Q/DQ scales", "pass" if scales_ok else "fail", scales_detail))
    if not check:
        return report

    report.checks.append(checks.check_onnx(out))
    log(f"onnx.checker: {report.checks[-1].status}")
    report.checks.append(checks.check_ops(graph, precision))
    log(f"op types: {report.checks[-1].detail}")
    t = time.perf_counter()
    ort_graph, ort_out, ort_graph32, note = graph, out, graph32, ""
    if scan_form == "plugin":
        # ONNX Runtime has no kernel for the plugin node: its specification in standard ops stands in for it, so the
        # graph around it and the node's inputs and attributes are still checked (plugin_reference; the file on
        # disk keeps the node)
        from .plugin_reference import expand_scan_nodes

        ort_graph, ort_out = expand_scan_nodes(graph), None
        ort_graph32 = expand_scan_nodes(graph32) if graph32 is not None else None
        note = "; SelectiveScan nodes run as their specification in standard ONNX ops"
    try:  # one session for the parity and the batch checks
        session = _ort_session(ort_graph, ort_out)
    except Exception as exc:
        results = [checks.CheckResult("ONNX Runtime parity", "fail",
                                      f"ONNX Runtime cannot load the graph: {str(exc).splitlines()[0][:300]}")]
    else:
        results = (_parity(session, source, ort_graph, half, dynamic_batch, parity_images, seed, ort_graph32)
                   + _batch_check(session, source, dynamic_batch, half, seed))
    for res in results:
        res.detail += note
        report.checks.append(res)
        log(f"ONNX Runtime: {res.detail}")
    if trt_build:
        build_precision = "fp16" if half and precision == "fp32" else precision
        log("TensorRT-RTX: parsing and building ahead of time on the CPU ...")
        if scan_form == "plugin" and not plugins:
            res = checks.CheckResult(checks.TRT_RTX_BUILD, "skip", "the plugin form's nodes need the SelectiveScan "
                                     "plugin library: build it with `edgemv plugin` and pass --plugin LIB")
        else:
            res = checks.trt_rtx_build(out, build_precision, inputs[0][0], [1, *source.input_size], dynamic_batch,
                                       plugins=plugins)
        report.checks.append(res)
        log(f"TensorRT-RTX: {res.detail}")
    seconds["checks"] = time.perf_counter() - t
    return report


def _ort_session(graph, out: Path):
    """An ONNX Runtime session on the file itself, or on an FP8-mapped copy when the graph has trt FP8 nodes.

    The FP8 copy runs with basic graph optimisations only: with onnxruntime 1.32's extended/all levels the CPU
    results of float8 Q/DQ graphs are wrong (0.6 relative error on the test variant; exact with basic).
    """
    from .checks import fp8_to_standard_qdq, ort_session

    if any(n.domain == "trt" for n in graph.graph.node):
        return ort_session(fp8_to_standard_qdq(graph), optimization="basic")
    return ort_session(out if out is not None else graph)


def _ort_graph(graph):
    """(graph ONNX Runtime runs, optimisation level): the FP8-mapped copy at basic (see _ort_session), else as is."""
    from .checks import fp8_to_standard_qdq

    if any(n.domain == "trt" for n in graph.graph.node):
        return fp8_to_standard_qdq(graph), "basic"
    return graph, "all"


def _parity(session, source, graph, half, dynamic_batch, n_images, seed, graph32=None):
    """The parity checks (a list) of ONNX Runtime (``session``, on ``graph``) against PyTorch; for an FP16 Q/DQ graph
    also ``graph32``, the FP32 graph it came from."""
    from . import checks

    gen = torch.Generator().manual_seed(seed)
    batch = 2 if dynamic_batch else 1
    inputs = [torch.randn(batch, *source.input_size, generator=gen).numpy() for _ in range(max(1, n_images // batch))]
    ref_model = source.model  # FP32 (or fake-quantized FP32) reference, also for --half

    def reference(x):
        with torch.no_grad():
            return ref_model(torch.from_numpy(x)).float().numpy()

    kind = "qdq" if source.precision in ("int8", "fp8") else ("fp16" if half else "fp32")
    if half and kind == "qdq":
        kind = "qdq16"
    worst_tol = checks.qdq_tol(source.precision)
    try:
        free = checks.ort_parity(session, reference, inputs, kind, qdq_worst=worst_tol)
    except Exception as exc:
        return [checks.CheckResult("ONNX Runtime parity", "fail",
                                   f"ONNX Runtime failed: {str(exc).splitlines()[0][:300]}")]
    if kind not in ("qdq", "qdq16"):
        return [free]
    # Q/DQ: the free-running comparison above cannot tell a wrong graph from rounding-tie flips amplified through
    # a deep network (MambaVision-T at 224: ~2e-2 with a correct graph); the teacher-forced check can. See
    # checks.qdq_forced_parity and docs/export.md, "Q/DQ parity". An FP16 graph: the FP32 graph it came from against
    # ModelOpt, then the FP16 graph against that one.
    ort_graph, level = _ort_graph(graph32 if kind == "qdq16" else graph)
    name = checks.QDQ_FORCED.replace("(teacher-forced)", "(teacher-forced, the FP32 graph)") if kind == "qdq16" \
        else checks.QDQ_FORCED
    forced = _guarded(name, lambda: checks.qdq_forced_parity(ort_graph, ref_model, inputs, optimization=level,
                                                             name=name))
    if free.status == "fail" and forced.status == "pass" and free.data.get("max", 1.0) < worst_tol:
        # Only the median-image criterion failed, and forcing shows the graph computes the same function.
        d = free.data
        free = checks.CheckResult(
            free.name, "pass", f"vs fake-quantized PyTorch, free-running: rel err median {d['median']:.2e}, max "
            f"{d['max']:.2e} over {d['n']} images (limit {worst_tol:g}; median above {checks.FP32_TOL:g}: "
            "rounding-tie flips amplified through the network, see the teacher-forced check)", free.seconds,
            data={**d, "median_explained_by_forced": True})
    if kind == "qdq16":
        g16, _ = _ort_graph(graph)
        return [free, forced, _guarded(checks.HALF_FORCED, lambda: checks.half_forced_parity(
            g16, ort_graph, inputs, optimization=level))]
    return [free, forced]


def _guarded(name, check):
    """``check()``'s result, or a failed CheckResult ``name`` with the first line of what it raised."""
    from . import checks

    try:
        return check()
    except Exception as exc:
        return checks.CheckResult(name, "fail", f"failed: {str(exc).splitlines()[0][:300]}")


def _batch_check(session, source, dynamic_batch, half, seed):
    from . import checks

    if not dynamic_batch:
        return []
    try:
        shapes = []
        for b in (1, 8):
            x = np.random.default_rng(seed).standard_normal((b, *source.input_size)).astype(np.float32)
            y = checks.ort_run(session, x)
            if y.shape[0] != b:
                return [checks.CheckResult("dynamic batch", "fail", f"batch {b} gave output {y.shape}")]
            shapes.append(f"{b} -> {list(y.shape)}")
        # batch-8 row 0 must equal batch-1 (no cross-batch mixing)
        x8 = np.random.default_rng(seed + 1).standard_normal((8, *source.input_size)).astype(np.float32)
        y8, y1 = checks.ort_run(session, x8), checks.ort_run(session, x8[:1])
        err = checks.relative_error(y8[:1], y1)
        tol = checks.FP16_TOL if half else 1e-4 if source.precision == "fp32" else checks.qdq_tol(source.precision)
        status = "pass" if err < tol else "fail"
        return [checks.CheckResult("dynamic batch", status, f"ONNX Runtime batch {', '.join(shapes)}; "
                                   f"image 0 of batch 8 vs alone: rel err {err:.1e}")]
    except Exception as exc:
        return [checks.CheckResult("dynamic batch", "fail", str(exc).splitlines()[0][:300])]
