"""The official MambaVision beside edgemv's, end to end, on one GPU in one run (issue 3: "it will be compared side by
side").

The official model is the `mambavision` package (its non-commercial licence: installed on the device machine from a
carried wheel, never vendored). It imports ``selective_scan_fn`` from ``mamba_ssm``, which does not install on the
device machine, so this script builds mamba_ssm's CUDA forward kernel from a local copy of its sources
(bench/scan_vs_mamba.py's ``build``; ``--src``, a folder git ignores) and registers a module
``mamba_ssm.ops.selective_scan_interface`` whose ``selective_scan_fn`` does what mamba_ssm's Python entry point does
in inference: an autograd Function that makes u, delta, B and C contiguous along L where they are not, allocates y and
the chunk states, and launches the kernel.

One run:
  1. correctness: the official model and edgemv's, the same random weights (the official state_dict loaded by
     ``create_model(weights=...)``), float32 logits on the GPU, relative error;
  2. throughput, timed the way the official `throughput_measure.py` times it (batch 128, channels_last, no_grad,
     warm-up, then wall-clock time of many forward passes ending in a synchronize; here the median of 3 windows):
     both models in float32, under autocast fp16 (the issue's setting for the official code) and in fp16
     (``.half()``, edgemv's fastest path with ``torch.compile(mode="reduce-overhead")``), eager and compiled; the
     16-bit eager cases first and again last, to show how much eager throughput moves within one run; printed as a
     Markdown table, written to ``$OUT/e2e_official.json``. ``--profile`` adds torch.profiler's view of one eager
     autocast pass of each model.

    python bench/e2e_official.py --src .mamba_ref
"""

import argparse
import copy
import json
import os
import platform
import re
import sys
import tempfile
import time
import types

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan_vs_mamba import build, mamba_call  # noqa: E402

from edgemv.models import create_model  # noqa: E402


def mamba_ssm_module(lib):
    """A ``mamba_ssm`` package holding ``ops.selective_scan_interface.selective_scan_fn`` on mamba_ssm's kernel."""

    class SelectiveScanFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                    return_last_state=False):
            if z is not None:
                raise NotImplementedError("the launcher (bench/mamba_ref/launch.cu) takes no z; MambaVision passes none")
            # as mamba_ssm's entry point: its kernel reads u, delta, B and C contiguous along L
            u, delta, B, C = (t if t.stride(-1) == 1 else t.contiguous() for t in (u, delta, B, C))
            out = torch.empty_like(delta)
            inp = dict(u=u, delta=delta, A=A, B=B, C=C, D=D, delta_bias=delta_bias, delta_softplus=delta_softplus)
            mamba_call(lib, inp, out)()
            if return_last_state:
                raise NotImplementedError("last state: not needed by MambaVision")
            return out

    # torch.compile does not trace into mamba_ssm's compiled extension either: a graph break there
    @torch.compiler.disable
    def selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          return_last_state=False):
        return SelectiveScanFn.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)

    pkg = types.ModuleType("mamba_ssm")
    ops = types.ModuleType("mamba_ssm.ops")
    interface = types.ModuleType("mamba_ssm.ops.selective_scan_interface")
    interface.selective_scan_fn = selective_scan_fn
    pkg.ops, ops.selective_scan_interface = ops, interface
    return {"mamba_ssm": pkg, "mamba_ssm.ops": ops, "mamba_ssm.ops.selective_scan_interface": interface}


def throughput(fn, x, runs, windows=3, warmup=10):
    """Images per second: ``runs`` forward passes timed by the wall clock, ending in a synchronize (as the official
    throughput_measure.py), the median of ``windows`` such windows after ``warmup`` passes."""
    with torch.no_grad():
        for _ in range(warmup):
            fn(x)
        torch.cuda.synchronize()
        rates = []
        for _ in range(windows):
            t0 = time.perf_counter()
            for _ in range(runs):
                fn(x)
            torch.cuda.synchronize()
            rates.append(x.shape[0] * runs / (time.perf_counter() - t0))
    return sorted(rates)[len(rates) // 2]


def graph_breaks(model, x, autocast):
    """torch._dynamo.explain's graph and break counts for the model (None where explain fails)."""
    try:
        torch._dynamo.reset()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=autocast):
            info = torch._dynamo.explain(model)(x)
        return info.graph_count, info.graph_break_count
    except Exception as exc:  # report and go on
        print(f"  explain failed: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
        return None


def profile(label, fn, x, passes=5):
    """Where the time of an eager forward pass goes: torch.profiler's operators by host time and kernels by device
    time over ``passes`` passes, and whether anything synchronizes with the GPU (torch's sync debug mode warns)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch.no_grad():
        for _ in range(5):
            fn(x)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        fn(x)
        torch.cuda.set_sync_debug_mode(0)
        torch.cuda.synchronize()
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(passes):
                fn(x)
            torch.cuda.synchronize()
    events = prof.key_averages()
    host = sum(e.self_cpu_time_total for e in events) / passes / 1e3
    device = sum(e.self_device_time_total for e in events) / passes / 1e3
    print(f"\n== {label}, eager autocast fp16, per pass: host {host:.2f} ms of operators, device {device:.2f} ms "
          "of kernels", flush=True)
    print(events.table(sort_by="self_cpu_time_total", row_limit=22, max_name_column_width=60), flush=True)
    print(events.table(sort_by="self_device_time_total", row_limit=15, max_name_column_width=60), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=".mamba_ref", help="mamba_ssm's csrc/selective_scan sources")
    ap.add_argument("--build-dir", default=os.path.join(tempfile.gettempdir(), "edgemv_mamba_fwd"))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--runs", type=int, default=100, help="forward passes per timed window")
    ap.add_argument("--select", default="", help="only the cases whose 'model, precision, mode' matches this regex")
    ap.add_argument("--profile", action="store_true",
                    help="also profile one eager autocast fp16 forward pass of each model (torch.profiler)")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.src, "selective_scan_fwd_kernel.cuh")):
        sys.exit(f"error: {args.src} does not hold mamba_ssm's csrc/selective_scan sources")

    lib = build(args.src, args.build_dir)
    sys.modules.update(mamba_ssm_module(lib))
    from mambavision.models import mamba_vision

    name = torch.cuda.get_device_name()
    print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}, python {platform.python_version()}",
          flush=True)
    torch.backends.cudnn.benchmark = True

    torch.manual_seed(0)
    official = mamba_vision.mamba_vision_T().cuda().eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "official_t.pth.tar")
        torch.save({"state_dict": official.state_dict()}, path)
        ours = create_model("t", weights=path).cuda().eval()
    official = official.to(memory_format=torch.channels_last)
    ours = ours.to(memory_format=torch.channels_last)
    x = torch.randn(args.batch, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)

    # 1. the same weights give the same logits (float32; and under autocast, where both round in fp16)
    with torch.no_grad():
        checks = {}
        for label, autocast in (("float32", False), ("autocast fp16", True)):
            with torch.autocast("cuda", dtype=torch.float16, enabled=autocast):
                a, b = official(x).float(), ours(x).float()
            checks[label] = ((a - b).norm() / a.norm()).item()
            print(f"logits, official vs edgemv, {label}: relative error {checks[label]:.2e}", flush=True)

    # 2. throughput
    def with_autocast(m):
        def f(inp):
            with torch.autocast("cuda", dtype=torch.float16):
                return m(inp)
        return f

    official_half = copy.deepcopy(official).half()
    half = copy.deepcopy(ours).half()
    eager_16 = [  # measured twice, first and last, to see how much eager throughput moves within one run
        ("official", "autocast fp16", "eager", official),
        ("edgemv", "autocast fp16", "eager", ours),
        ("official", "fp16 (.half())", "eager", official_half),
        ("edgemv", "fp16 (.half())", "eager", half),
    ]
    cases = [  # (model, precision, mode, module)
        ("official", "float32", "eager", official),
        ("edgemv", "float32", "eager", ours),
        *eager_16,
        ("official", "autocast fp16", "default", official),
        ("edgemv", "autocast fp16", "default", ours),
        ("official", "autocast fp16", "reduce-overhead", official),
        ("edgemv", "autocast fp16", "reduce-overhead", ours),
        ("official", "fp16 (.half())", "reduce-overhead", official_half),
        ("edgemv", "fp16 (.half())", "reduce-overhead", half),
        *eager_16,
    ]
    if args.profile:
        for model_name, module in (("official", official), ("edgemv", ours)):
            profile(model_name, with_autocast(module), x)
    rows = []
    for model_name, precision, mode, module in cases:
        if not re.search(args.select, f"{model_name}, {precision}, {mode}"):
            continue
        torch._dynamo.reset()
        m = module if mode == "eager" else torch.compile(module, mode=None if mode == "default" else mode)
        autocast = precision.startswith("autocast")
        fn = with_autocast(m) if autocast else m
        inp = x.half() if precision.startswith("fp16") else x
        breaks = graph_breaks(module, inp, autocast) if mode == "default" else None
        t0 = time.time()
        try:
            with torch.no_grad():
                fn(inp)
            first = time.time() - t0
            rate = throughput(fn, inp, args.runs)
        except Exception as exc:  # report and go on
            print(f"{model_name} {precision} {mode}: FAILED {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            continue
        rows.append(dict(model=model_name, precision=precision, mode=mode, img_s=rate, first_call_s=first,
                         graphs_breaks=breaks))
        print(f"{model_name:8s} {precision:15s} {mode:15s} {rate:8.0f} img/s (first call {first:.1f} s"
              f"{'' if breaks is None else f', graphs/breaks {breaks[0]}/{breaks[1]}'})", flush=True)

    report = dict(device=name, torch=torch.__version__, batch=args.batch, runs=args.runs, logits_rel_err=checks,
                  rows=rows)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "e2e_official.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"\nMambaVision-T, batch {args.batch}, channels_last, {name}; images/s: {args.runs} forward passes by the "
          "wall clock, median of 3 windows")
    print("| model | precision | mode | img/s | first call (s) | graphs / breaks |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        gb = "" if r["graphs_breaks"] is None else f"{r['graphs_breaks'][0]} / {r['graphs_breaks'][1]}"
        print(f"| {r['model']} | {r['precision']} | {r['mode']} | {r['img_s']:.0f} | {r['first_call_s']:.1f} | {gb} |")


if __name__ == "__main__":
    main()
