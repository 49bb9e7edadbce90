"""End-to-end GPU throughput of MambaVision-T (random weights) with each scan implementation.

    python bench/e2e.py                          # batch 128, fp16 (.half() + channels_last), eager and torch.compile
    python bench/e2e.py --impls triton chunked --modes eager default max-autotune --autocast

Prints images/s (median of several timed windows, CUDA events) and a table last.
"""

import argparse
import json
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import edgemv.ops as ops  # noqa: E402
from edgemv.models import create_model  # noqa: E402


def throughput(fn, x, iters=20, windows=5, warmup=5):
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        torch.cuda.synchronize()
        rates = []
        for _ in range(windows):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(iters):
                fn(x)
            b.record()
            b.synchronize()
            rates.append(x.shape[0] * iters / (a.elapsed_time(b) * 1e-3))
    return sorted(rates)[len(rates) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", default="t")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--impls", nargs="+", default=["triton", "chunked"])
    ap.add_argument("--modes", nargs="+", default=["eager", "default"],
                    help="eager and/or torch.compile modes (default, reduce-overhead, max-autotune)")
    ap.add_argument("--autocast", action="store_true", help="autocast fp16 on a float32 model instead of .half()")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()

    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name()
    print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}, python {platform.python_version()}",
          flush=True)
    model = create_model(args.variant).cuda().eval().to(memory_format=torch.channels_last)
    size = model.pretrained_cfg.input_size
    x = torch.randn(args.batch, *size, device="cuda").to(memory_format=torch.channels_last)
    precision = "autocast fp16" if args.autocast else "fp16 (.half())"
    if not args.autocast:
        model = model.half()
        x = x.half()

    def run_model(m):
        if args.autocast:
            def f(inp):
                with torch.autocast("cuda", dtype=torch.float16):
                    return m(inp)
            return f
        return m

    rows = []
    ref_out = None
    for impl in args.impls:
        for mode in args.modes:
            torch._dynamo.reset()
            with ops.scan_impl(impl):
                t0 = time.time()
                m = model if mode == "eager" else torch.compile(model, mode=None if mode == "default" else mode)
                fn = run_model(m)
                try:
                    with torch.inference_mode():
                        out = fn(x).float()
                    compile_s = time.time() - t0
                    rate = throughput(fn, x)
                except Exception as exc:  # report and go on
                    print(f"{impl} {mode}: FAILED {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                    continue
            if ref_out is None:
                ref_out = out
            diff = ((out - ref_out).norm() / ref_out.norm()).item()
            rows.append(dict(impl=impl, mode=mode, img_s=rate, first_call_s=compile_s, rel_diff=diff))
            print(f"{impl:8s} {mode:15s} {rate:9.0f} img/s  (first call {compile_s:.1f} s, logits rel diff "
                  f"{diff:.1e} vs first row)", flush=True)
    with open(os.path.join(args.out, "e2e.json"), "w") as f:
        json.dump(dict(device=name, torch=torch.__version__, batch=args.batch, precision=precision, rows=rows), f,
                  indent=1)
    print(f"\nMambaVision-{args.variant.upper()} (random weights), batch {args.batch}, {precision}, "
          f"channels_last, {name}")
    print("| scan impl | mode | img/s | first call (s) | logits rel. diff |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['mode']} | {r['img_s']:.0f} | {r['first_call_s']:.1f} | {r['rel_diff']:.1e} |")


if __name__ == "__main__":
    main()
