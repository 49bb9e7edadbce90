"""ONNX Runtime on the CPU: FP32 vs INT8 Q/DQ latency of a MambaVision variant at batch 1, against PyTorch eager.

Exports the FP32 model and INT8 models (edgemv.quantize's default MambaVision recipe, and the same with the convs'
outputs quantized too, ``make_recipe(conv_output=True)``, so that ONNX Runtime can build QLinearConv; calibrated on a
few random images: latency does not depend on calibration quality) with edgemv.export, BatchNorm folded into the convs
first for every graph (edgemv.quantize.fold, as ``edgemv quantize`` does), then times, each after warm-up, the
median of --runs single-image runs:
  - PyTorch eager, reference (sequential) scan and chunked scan, FP32;
  - PyTorch eager, fake-quantized INT8 (what ModelOpt runs on the CPU: not a speed path, for reference);
  - ONNX Runtime FP32, INT8 Q/DQ and INT8 in the ORT-only form (Conv/Gemm weights dequantized ahead of time,
    edgemv/export/ort_form.py) at each graph optimisation level asked for, interleaved (one run of each, repeated)
    so that load from other jobs falls on both; the speed-up is also given as the median of the per-round FP32/INT8
    ratios, the figure least sensitive to load that comes and goes.

Every session gets the same options (threads, optimisation level). For the interleaved rounds the intra-op threads
do not spin (``session.intra_op.allow_spinning`` 0) unless --spinning: with ORT's default spinning, the threads of
the session that just ran keep busy-waiting while the next one runs, and on 2 cores that inflated every graph (MambaVision-T
FP32 61 ms alone, 98 ms interleaved; docs/benchmarks.md). --alone-runs N also times each graph alone afterwards, in
ORT's default (spinning) configuration, one graph after the other.

The graphs are exported with edgemv.export's defaults (opset, scan decomposition) unless --opset /
--scan-decomposition say otherwise; --fp32-chunked adds the FP32 graph with the chunked scan (the earlier default)
as a reference row.

    python bench/onnx_cpu.py --variant t --threads 2 --runs 20

Prints a Markdown table and the machine/versions block for docs/benchmarks.md.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


def timeit(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times), max(times)


def interleaved(fns, runs, warmup):
    """Times (ms) of each of ``fns``, called in turn ``runs`` times after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(runs):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1e3)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="t")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--torch-runs", type=int, default=20)
    ap.add_argument("--levels", default="all", help="ORT optimisation levels, comma-separated (none,basic,extended,all)")
    ap.add_argument("--int8-run", default=None, help="use this quantize run folder instead of quantizing here")
    ap.add_argument("--out-dir", default=None, help="keep the ONNX files here (default: a temporary folder)")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--no-conv-output", action="store_true",
                    help="skip the INT8 graph with conv output quantizers (make_recipe(conv_output=True))")
    ap.add_argument("--no-fold", action="store_true", help="do not fold BatchNorm into the convs before exporting")
    ap.add_argument("--reuse", action="store_true",
                    help="time fp32.onnx and int8.onnx (int8co.onnx where there, fp32_chunked.onnx with "
                         "--fp32-chunked) already in --out-dir, from an earlier run, without building or exporting "
                         "anything; no PyTorch rows")
    ap.add_argument("--opset", type=int, default=None, help="ONNX opset of every graph (default: edgemv.export's)")
    ap.add_argument("--scan-decomposition", default=None, choices=["doubling", "chunked"],
                    help="plain-op form of the scan in every graph (default: edgemv.export's)")
    ap.add_argument("--fp32-chunked", action="store_true",
                    help="also time the FP32 graph with the chunked scan (fp32_chunked.onnx)")
    ap.add_argument("--spinning", action="store_true",
                    help="let ORT's intra-op threads spin in the interleaved rounds (ORT's default; see above)")
    ap.add_argument("--extra-graph", action="append", default=[], metavar="ONNX",
                    help="also time this ONNX file in the same interleaved rounds (repeatable; e.g. graphs of an "
                         "earlier --out-dir exported with other options)")
    ap.add_argument("--alone-runs", type=int, default=0,
                    help="then time each graph alone for N runs, ORT's default options (spinning)")
    args = ap.parse_args()
    if args.reuse:
        if not args.out_dir:
            ap.error("--reuse times the graphs of an earlier run: give its folder with --out-dir")
        export_opts = [flag for flag, given in (("--int8-run", args.int8_run), ("--no-fold", args.no_fold),
                                                ("--opset", args.opset is not None),
                                                ("--scan-decomposition", args.scan_decomposition)) if given]
        if export_opts:
            ap.error(f"--reuse exports nothing: {', '.join(export_opts)} would have no effect")
        needed = ("fp32.onnx", "int8.onnx") + (("fp32_chunked.onnx",) if args.fp32_chunked else ())
        missing = [name for name in needed if not (Path(args.out_dir) / name).is_file()]
        if missing:
            ap.error(f"--reuse: {', '.join(missing)} not in {args.out_dir}")
        args.skip_torch = True  # PyTorch needs the models, which --reuse does not build

    import onnx
    import onnxruntime as ort
    import torch

    torch.set_num_threads(args.threads)
    from edgemv.export import ExportSource, export_model, load_source
    from edgemv.export.checks import ort_session
    from edgemv.ops import scan_impl

    torch.manual_seed(0)
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="edgemv-bench-"))
    from edgemv.quantize.fold import fold_batchnorm

    if args.reuse:  # the input size of the graphs themselves
        dims = onnx.load(str(out_dir / "fp32.onnx"), load_external_data=False).graph.input[0].type.tensor_type
        input_size = tuple(d.dim_value for d in dims.shape.dim[1:])
    else:
        src = load_source(None, args.variant, "random")
        if not args.no_fold:  # the deployment form, for FP32 as for INT8 (ORT would fold FP32's BNs itself)
            fold_batchnorm(src.model.eval())
        input_size = src.input_size
    x = torch.randn(1, *input_size)
    rows = []

    def log(s):
        print(s, file=sys.stderr, flush=True)

    if not args.skip_torch:
        with torch.no_grad():
            for impl in ("ref", "chunked", "doubling"):
                with scan_impl(impl):
                    med, lo, hi = timeit(lambda: src.model(x), args.torch_runs, args.warmup)
                rows.append((f"PyTorch eager FP32, {impl} scan", med, lo, hi))
                log(f"{rows[-1]}")

    log(f"load at start: {os.getloadavg()}")
    if args.reuse:
        from types import SimpleNamespace

        def existing(name):
            path = out_dir / name
            nodes = len(onnx.load(str(path), load_external_data=False).graph.node)
            return SimpleNamespace(path=str(path), nodes=nodes, file_bytes=path.stat().st_size, checks=[])

        fp32, int8 = existing("fp32.onnx"), existing("int8.onnx")
        use_co = not args.no_conv_output and (out_dir / "int8co.onnx").exists()
        int8co = existing("int8co.onnx") if use_co else None
        fp32c = existing("fp32_chunked.onnx") if args.fp32_chunked else None
    xopts = dict(opset=args.opset, scan_decomposition=args.scan_decomposition)
    if not args.reuse:
        t = time.perf_counter()
        fp32 = export_model(src, out=out_dir / "fp32.onnx", trt_build=False, parity_images=1, log=log, **xopts)
        fp32c = None
        if args.fp32_chunked:
            fp32c = export_model(src, out=out_dir / "fp32_chunked.onnx", trt_build=False, parity_images=1, log=log,
                                 opset=args.opset, scan_decomposition="chunked")
        log(f"fp32 export+checks {time.perf_counter() - t:.0f} s")

    if args.reuse:
        pass
    elif args.int8_run:
        qsrc = load_source(args.int8_run)
    else:
        from edgemv.quantize import make_recipe, quantize

        calib = [torch.randn(2, *src.input_size) for _ in range(2)]

        def int8_model(conv_output):
            qmodel = load_source(None, args.variant, "random").model.eval()
            if not args.no_fold:
                fold_batchnorm(qmodel)
            qmodel.load_state_dict(src.model.state_dict())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return quantize(qmodel, make_recipe("int8", conv_output=conv_output), lambda m: [m(c) for c in calib])

        qsrc = ExportSource(int8_model(False), "int8", args.variant, src.input_size,
                            f"{args.variant} INT8 (default recipe)")
    if not args.skip_torch:
        with torch.no_grad(), scan_impl("chunked"):
            med, lo, hi = timeit(lambda: qsrc.model(x), max(5, args.torch_runs // 2), 1)
        rows.append(("PyTorch eager INT8 fake-quant (ModelOpt), chunked scan", med, lo, hi))
    if not args.reuse:
        t = time.perf_counter()
        int8 = export_model(qsrc, out=out_dir / "int8.onnx", trt_build=False, parity_images=1, log=log, **xopts)
        log(f"int8 export+checks {time.perf_counter() - t:.0f} s")
        int8co = None
        if not args.int8_run and not args.no_conv_output:
            cosrc = ExportSource(int8_model(True), "int8", args.variant, src.input_size,
                                 f"{args.variant} INT8 (default recipe + conv outputs)")
            int8co = export_model(cosrc, out=out_dir / "int8co.onnx", trt_build=False, parity_images=1, log=log,
                                  **xopts)

    from edgemv.export.ort_form import dequantize_weights_for_ort

    # The ONNX Runtime-only form: Conv/Gemm weights dequantized ahead of time (edgemv/export/ort_form.py).
    ort_form, folded = dequantize_weights_for_ort(onnx.load(int8.path))
    log(f"ORT-only form: {folded} Conv/Gemm weight dequantizers folded")
    xn = x.numpy()
    graphs = [("FP32", fp32.path, fp32.nodes), ("INT8 Q/DQ", int8.path, int8.nodes),
              ("INT8 Q/DQ, Conv/Gemm weights pre-dequantized (ORT-only form)", ort_form, len(ort_form.graph.node))]
    if int8co is not None:
        graphs.append(("INT8 Q/DQ + conv output quantizers", int8co.path, int8co.nodes))
    if fp32c is not None:
        graphs.append(("FP32, chunked scan (reference)", fp32c.path, fp32c.nodes))
    for extra in args.extra_graph:
        graphs.append((f"{extra}", extra, len(onnx.load(extra, load_external_data=False).graph.node)))
    ratios, alone_ratios = [], []
    for level in args.levels.split(","):
        sessions = []
        for name, model, nodes in graphs:
            sess = ort_session(model, threads=args.threads, optimization=level, spinning=args.spinning)
            inp = sess.get_inputs()[0].name
            sessions.append((f"ONNX Runtime {name}, opt {level} ({nodes} nodes)",
                             lambda sess=sess, inp=inp: sess.run(None, {inp: xn})))
        # Interleaved: one run of each, repeated, so that load from other jobs that comes and goes
        # falls on both alike; the ratio per round (FP32 / INT8) is reported as well as the medians.
        times = interleaved([fn for _, fn in sessions], args.runs, args.warmup)
        for (name, _), ts in zip(sessions, times):
            rows.append((name, statistics.median(ts), min(ts), max(ts)))
            log(f"{rows[-1]}")
        for (name, _), ts in zip(sessions[1:], times[1:]):
            per_round = [a / b for a, b in zip(times[0], ts)]
            ratios.append((f"{name.split(', opt')[0].replace('ONNX Runtime ', '')}, ORT opt {level}",
                           statistics.median(times[0]) / statistics.median(ts), min(times[0]) / min(ts),
                           statistics.median(per_round), os.getloadavg()[0]))
        del sessions
        if args.alone_runs:
            alone = []
            for name, model, nodes in graphs:  # one session at a time, ORT's default (spinning) threads
                sess = ort_session(model, threads=args.threads, optimization=level)
                inp = sess.get_inputs()[0].name
                med, lo, hi = timeit(lambda: sess.run(None, {inp: xn}), args.alone_runs, args.warmup)
                alone.append(med)
                rows.append((f"ONNX Runtime {name}, opt {level}, alone, spinning", med, lo, hi))
                log(f"{rows[-1]}")
                del sess
            for (name, _, _), med in zip(graphs[1:], alone[1:]):
                alone_ratios.append((f"{name}, ORT opt {level}, alone", alone[0] / med, os.getloadavg()[0]))

    print(f"\n| {args.variant} batch 1, {args.threads} threads | median ms | min | max |")
    print("|---|---:|---:|---:|")
    for name, med, lo, hi in rows:
        print(f"| {name} | {med:.1f} | {lo:.1f} | {hi:.1f} |")
    print()
    for what, by_median, by_min, by_round, load in ratios:
        print(f"speed-up over FP32 of {what}: {by_median:.2f}x by median, {by_min:.2f}x by min, "
              f"{by_round:.2f}x median of per-round ratios (1-min load at the end {load:.2f})")
    for what, by_median, load in alone_ratios:
        print(f"speed-up over FP32 of {what}: {by_median:.2f}x by median (1-min load {load:.2f})")
    print(f"interleaved rounds: intra-op spinning {'on' if args.spinning else 'off'}")
    print()
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | head -1"], capture_output=True, text=True).stdout
    print(f"machine: {cpu.split(':', 1)[-1].strip()} ({os.cpu_count()} cores), {platform.platform()}")
    print(f"versions: python {platform.python_version()}, torch {torch.__version__}, onnxruntime {ort.__version__}")
    if not args.reuse:
        print(f"graphs: opset {fp32.opset}, scan {fp32.scan_form} ({fp32.scan_decomposition})")
    print(f"load: {os.getloadavg()}")
    print(f"files: fp32 {fp32.file_bytes / 1e6:.1f} MB / {fp32.nodes} nodes; int8 {int8.file_bytes / 1e6:.1f} MB / "
          f"{int8.nodes} nodes; parity fp32 {fp32.checks[2].detail if len(fp32.checks) > 2 else ''}")
    for rep in (fp32, int8) + ((int8co,) if int8co is not None else ()):
        for c in rep.checks:
            print(f"  {Path(rep.path).name}: {c.status} {c.name}: {c.detail}")


if __name__ == "__main__":
    main()
