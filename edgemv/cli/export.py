"""`edgemv export`: ONNX for TensorRT, simplified and checked."""

import json

import click

from .options import trust_pickle_option, variant_option
from .table import format_table

__all__ = ["export"]


def _shape(shape):
    return "x".join(str(d) for d in shape)


@click.command()
@click.argument("run_or_model", required=False, type=click.Path())
@variant_option
@click.option("--weights", "-w", default=None,
              help="FP32 weights when RUN_OR_MODEL is not a run folder: checkpoint file, Hugging Face folder or hub "
                   "id, 'official', or 'random' (default: 'official').")
@click.option("--opset", type=click.IntRange(14, 23), default=None,
              help="ONNX opset (default 20 for FP32/FP16/INT8, 21 for FP8; the attention needs >= 14, FP8 >= 19; "
                   "GELU is one Gelu node from 20 on).")
@click.option("--dynamic-batch/--static", default=True, show_default=True,
              help="Batch dimension symbolic ('batch') or fixed at 1.")
@click.option("--half", is_flag=True,
              help="FP16 graph: an FP32 model's weights, inputs and outputs in FP16; for a quantize run, everything "
                   "but the quantized tensors in FP16 (for strongly typed TensorRT 11.x / TensorRT-RTX, where the "
                   "graph's dtypes are the precision; TensorRT 10.x builds the FP32 graph with --fp16 instead).")
@click.option("--scan", "scan_form", type=click.Choice(["decomposed", "plugin"]), default="decomposed",
              show_default=True,
              help="Selective scan in the graph: plain ops (builds anywhere) or one edgemv::SelectiveScan node "
                   "(needs the TensorRT plugin).")
@click.option("--scan-decomposition", type=click.Choice(["doubling", "chunked"]), default="doubling",
              show_default=True,
              help="Plain-op form of the scan in a decomposed graph: log-depth doubling over L (faster in ONNX "
                   "Runtime, measured) or chunks with c x c decay matrices. Ignored with --scan plugin.")
@click.option("--quantized-weights/--float-weights", default=True, show_default=True,
              help="INT8/FP8 graphs: store each quantized weight as the INT8/FP8 tensor its quantize node computes, "
                   "feeding its dequantize node (a quarter of the file; TensorRT and ONNX Runtime read both forms), "
                   "or keep the FP32 weight behind its quantize node.")
@click.option("--simplify/--no-simplify", default=True, show_default=True,
              help="Simplify with onnxsim (falls back to onnxslim where onnxsim fails).")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Run onnx.checker, ONNX Runtime parity, the TensorRT 10.3 op list and the TensorRT-RTX build.")
@click.option("--trt-build/--no-trt-build", default=True, show_default=True,
              help="Include the TensorRT-RTX parse+build (ahead of time, sm_86/sm_89; sm_89 for FP8).")
@click.option("--plugin", "plugins", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="With --scan plugin: the SelectiveScan plugin library (`edgemv plugin`) the TensorRT-RTX build "
                   "loads (repeatable); without it that build is skipped.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Output .onnx (default: model.onnx in the run folder, model_fp16.onnx with --half; else "
                   "edgemv-out/<variant>-<precision>/model.onnx).")
@trust_pickle_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def export(run_or_model, variant, weights, opset, dynamic_batch, half, scan_form, scan_decomposition, quantized_weights,
           simplify, check, trt_build, plugins, out, trust_pickle, as_json):
    """Export a model to ONNX for TensorRT: FP32, FP16 (--half), or the INT8/FP8 Q/DQ graph of a quantize run.

    RUN_OR_MODEL is a run folder from `edgemv quantize` (exports its Q/DQ model), a .pt file holding a whole
    module (e.g. a pruned model; with --trust-pickle), or a checkpoint file; without it, --variant and --weights
    pick an FP32 model.

    The graph is simplified (onnxsim, else onnxslim: the report says which ran), its Q/DQ scales are compared
    before and after, and it is checked: onnx.checker, ONNX Runtime against PyTorch (the fake-quantized model
    for Q/DQ), every op type against TensorRT 10.3's ONNX support list (JetPack 6), and a TensorRT-RTX parse and
    ahead-of-time build on the CPU. Exit status 1 when a check fails (the file is still written).

    \b
    Examples:
      edgemv export edgemv-out/t-int8
      edgemv export --variant t --weights random --half --out t_fp16.onnx
      edgemv export edgemv-out/t-int8 --scan plugin --plugin libedgemv_scan_plugin.so
    """
    from ..export import export_model, load_source

    if weights is not None and run_or_model is not None:
        raise click.UsageError("give either RUN_OR_MODEL or --weights, not both (a run folder carries its own "
                               "weights; a checkpoint file is the same as --weights FILE)")
    if plugins and scan_form != "plugin":
        raise click.UsageError("--plugin serves the plugin form of the scan: add --scan plugin")
    source = load_source(run_or_model, variant=variant, weights=weights, trust_pickle=trust_pickle)
    log = (lambda s: None) if as_json else (lambda s: click.echo(s, err=True))
    report = export_model(source, out=out, opset=opset, dynamic_batch=dynamic_batch, half=half,
                          scan_form=scan_form, simplify=simplify, check=check, trt_build=trt_build, log=log,
                          scan_decomposition=scan_decomposition, quantized_weights=quantized_weights,
                          plugins=plugins)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        ext = f" + {report.external_data}" if report.external_data else ""
        click.echo(f"{report.path}{ext}: {report.precision}, opset {report.opset}, {report.nodes} nodes "
                   f"({report.nodes_exported} before {report.simplifier}), {report.file_bytes / 1e6:.1f} MB")
        for name, dtype, shape in report.inputs:
            click.echo(f"  input  {name}: {dtype} {_shape(shape)}")
        for name, dtype, shape in report.outputs:
            click.echo(f"  output {name}: {dtype} {_shape(shape)}")
        if report.qdq:
            click.echo("  Q/DQ: " + ", ".join(f"{k} {v}" for k, v in report.qdq.items()))
        if report.fp16:
            click.echo(f"  FP16: {report.fp16['scales']} quantization scales in float16 "
                       f"({report.fp16['subnormal_scales']} below its normal range, largest change "
                       f"{report.fp16['max_scale_change']:.1e})")
        stored = report.quantized_weights
        if stored.get("tensors"):
            kind = report.precision.split("+")[0].upper()  # int8+fp16 -> INT8
            click.echo(f"  weights: {stored['tensors']} stored as {kind} ({stored['values'] / 1e6:.1f}M values)")
        top = list(report.op_counts.items())[:8]
        click.echo("  ops: " + ", ".join(f"{k} {v}" for k, v in top) + (" ..." if len(report.op_counts) > 8 else ""))
        if report.checks:
            click.echo(format_table(["check", "result", "detail"],
                                    [(c.name, c.status, c.detail) for c in report.checks], align="lll"))
    failed = [c.name for c in report.checks if not c.ok]
    if failed:
        from ..export import ExportError

        raise ExportError(f"{len(failed)} check(s) failed: {', '.join(failed)} (the ONNX file was written)")
