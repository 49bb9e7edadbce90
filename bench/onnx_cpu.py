"""ONNX Runtime on the CPU: FP32 vs INT8 Q/DQ latency of a MambaVision variant at batch 1, against PyTorch eager.

Exports the FP32 model and an INT8 model (edgemv.quantize's default MambaVision recipe, calibrated on a few random
images: latency does not depend on calibration quality) with edgemv.export, then times, each after warm-up, the
median of --runs single-image runs:
  - PyTorch eager, reference (sequential) scan and chunked scan, FP32;
  - PyTorch eager, fake-quantized INT8 (what ModelOpt runs on the CPU: not a speed path, for reference);
  - ONNX Runtime FP32 and INT8 Q/DQ at each graph optimisation level asked for.

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
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch

    torch.set_num_threads(args.threads)
    from edgemv.export import ExportSource, export_model, load_source
    from edgemv.export.checks import ort_session
    from edgemv.ops import scan_impl

    torch.manual_seed(0)
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="edgemv-bench-"))
    src = load_source(None, args.variant, "random")
    x = torch.randn(1, *src.input_size)
    rows = []

    def log(s):
        print(s, file=sys.stderr, flush=True)

    if not args.skip_torch:
        with torch.no_grad():
            for impl in ("ref", "chunked"):
                with scan_impl(impl):
                    med, lo, hi = timeit(lambda: src.model(x), args.torch_runs, args.warmup)
                rows.append((f"PyTorch eager FP32, {impl} scan", med, lo, hi))
                log(f"{rows[-1]}")

    t = time.perf_counter()
    fp32 = export_model(src, out=out_dir / "fp32.onnx", trt_build=False, parity_images=1, log=log)
    log(f"fp32 export+checks {time.perf_counter() - t:.0f} s")

    if args.int8_run:
        qsrc = load_source(args.int8_run)
    else:
        from edgemv.quantize import make_recipe, quantize

        calib = [torch.randn(2, *src.input_size) for _ in range(2)]
        qmodel = load_source(None, args.variant, "random").model
        qmodel.load_state_dict(src.model.state_dict())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qmodel = quantize(qmodel, make_recipe("int8"), lambda m: [m(c) for c in calib])
        qsrc = ExportSource(qmodel, "int8", args.variant, src.input_size, f"{args.variant} INT8 (default recipe)")
    if not args.skip_torch:
        with torch.no_grad(), scan_impl("chunked"):
            med, lo, hi = timeit(lambda: qsrc.model(x), max(5, args.torch_runs // 2), 1)
        rows.append(("PyTorch eager INT8 fake-quant (ModelOpt), chunked scan", med, lo, hi))
    t = time.perf_counter()
    int8 = export_model(qsrc, out=out_dir / "int8.onnx", trt_build=False, parity_images=1, log=log)
    log(f"int8 export+checks {time.perf_counter() - t:.0f} s")

    xn = x.numpy()
    for level in args.levels.split(","):
        for name, rep in (("FP32", fp32), (f"INT8 Q/DQ", int8)):
            sess = ort_session(rep.path, threads=args.threads, optimization=level)
            inp = sess.get_inputs()[0].name
            med, lo, hi = timeit(lambda: sess.run(None, {inp: xn}), args.runs, args.warmup)
            rows.append((f"ONNX Runtime {name}, opt {level} ({rep.nodes} nodes)", med, lo, hi))
            log(f"{rows[-1]}")

    print(f"\n| {args.variant} batch 1, {args.threads} threads | median ms | min | max |")
    print("|---|---:|---:|---:|")
    for name, med, lo, hi in rows:
        print(f"| {name} | {med:.1f} | {lo:.1f} | {hi:.1f} |")
    print()
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | head -1"], capture_output=True, text=True).stdout
    print(f"machine: {cpu.split(':', 1)[-1].strip()} ({os.cpu_count()} cores), {platform.platform()}")
    print(f"versions: python {platform.python_version()}, torch {torch.__version__}, onnxruntime {ort.__version__}")
    print(f"load: {os.getloadavg()}")
    print(f"files: fp32 {fp32.file_bytes / 1e6:.1f} MB / {fp32.nodes} nodes; int8 {int8.file_bytes / 1e6:.1f} MB / "
          f"{int8.nodes} nodes; parity fp32 {fp32.checks[2].detail if len(fp32.checks) > 2 else ''}")
    for rep in (fp32, int8):
        for c in rep.checks:
            print(f"  {Path(rep.path).name}: {c.status} {c.name}: {c.detail}")


if __name__ == "__main__":
    main()
