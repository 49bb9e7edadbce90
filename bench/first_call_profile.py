"""Where MambaVision-T's first eager call on a GPU spends its time (the scan's tuning: compiles and timings).

    python bench/first_call_profile.py [--batch 128] [--prebuilt]

Run it in a fresh process with empty caches (it points EDGEMV_CACHE_DIR and TRITON_CACHE_DIR at new temporary
folders unless they are set). ``--prebuilt`` builds the CUDA scan kernel first and reports that separately, so the
first call shows Triton's compiles and the timings alone. Prints one line per timed candidate (wall time of its
timing, which includes its compile where it is the first use) and a summary of the phases.
"""

import argparse
import os
import sys
import tempfile
import time

for var in ("EDGEMV_CACHE_DIR", "TRITON_CACHE_DIR"):
    os.environ.setdefault(var, tempfile.mkdtemp(prefix=f"{var.lower()}-"))

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--prebuilt", action="store_true", help="build the CUDA scan kernel before the first call")
    ap.add_argument("--rep", type=float, default=None, help="replace the tuning's rep (ms of replays per timing)")
    args = ap.parse_args(argv)

    import triton.testing

    from edgemv.models import create_model
    from edgemv.ops import scan_cuda, scan_tune

    phases = {}
    t = time.perf_counter()
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    phases["CUDA context"] = time.perf_counter() - t
    if args.prebuilt:
        t = time.perf_counter()
        scan_cuda.library(torch.device("cuda"))
        phases["CUDA scan kernel build (nvcc)"] = time.perf_counter() - t

    timings = []  # (candidate, wall seconds)
    real_bench = triton.testing.do_bench_cudagraph
    current = {}

    def timed_bench(fn, *a, **k):
        if args.rep is not None:
            k["rep"] = args.rep
        t0 = time.perf_counter()
        try:
            return real_bench(fn, *a, **k)
        finally:
            timings.append((current.get("name", "?"), time.perf_counter() - t0))

    triton.testing.do_bench_cudagraph = timed_bench
    real_choose = scan_tune.choose
    chooses = []

    def timed_choose(run, u, *a, **k):
        def named_run(variant, opts, out):
            current["name"] = f"{tuple(u.shape)} {variant} {opts}"
            return run(variant, opts, out)

        t0 = time.perf_counter()
        try:
            return real_choose(named_run, u, *a, **k)
        finally:
            chooses.append((tuple(u.shape), time.perf_counter() - t0))

    scan_tune.choose = timed_choose

    t = time.perf_counter()
    model = create_model("t", weights="random").cuda().half().to(memory_format=torch.channels_last).eval()
    x = torch.randn(args.batch, 3, 224, 224, device="cuda", dtype=torch.half).to(memory_format=torch.channels_last)
    torch.cuda.synchronize()
    phases["model to GPU"] = time.perf_counter() - t
    with torch.inference_mode():
        t = time.perf_counter()
        model(x)
        torch.cuda.synchronize()
        phases["first call"] = time.perf_counter() - t
        t = time.perf_counter()
        model(x)
        torch.cuda.synchronize()
        phases["second call"] = time.perf_counter() - t

    print(f"{'candidate (first timing includes its compile)':<72} {'wall s':>7}")
    for name, sec in timings:
        print(f"{name:<72} {sec:7.2f}")
    for shape, sec in chooses:
        print(f"choose() for u {shape}: {sec:.2f} s")
    for problem, choice in scan_tune._memory.items():
        print(f"chosen: {choice[0]} {choice[1]}  ({str(problem)[:90]})")
    tuning = sum(sec for _, sec in chooses)
    phases["first call outside the scan's tuning"] = phases["first call"] - tuning
    for name, sec in phases.items():
        print(f"{name:<40} {sec:7.2f} s")


if __name__ == "__main__":
    main()
