"""CPU latency of a MambaVision variant, batch 1: median of N timed runs after warm-up.

    python bench/cpu_latency.py --variant t --runs 30 --scan-impl ref
Prints one line per scan implementation; copy the table into docs/benchmarks.md with the machine and date.
"""

import argparse
import os
import platform
import statistics
import time

import torch

from edgemv import __version__
from edgemv.models import create_model


def time_model(model, x, runs, warmup):
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="t")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--scan-impl", nargs="+", default=["ref"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.variant)
    x = torch.randn(1, *model.pretrained_cfg.input_size)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
          f"torch {torch.__version__}, edgemv {__version__}, load avg {os.getloadavg()[0]:.2f}")
    print(f"{'variant':8} {'scan':8} {'input':9} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8} {'runs':>5}")
    for impl in args.scan_impl:
        try:
            from edgemv.ops import scan_impl
            context = scan_impl(impl)
        except ImportError:  # before the scan op had implementations to choose from
            import contextlib
            context = contextlib.nullcontext()
        with context:
            times = sorted(time_model(model, x, args.runs, args.warmup))
        q = statistics.quantiles(times, n=10)
        size = "x".join(map(str, x.shape[2:]))
        print(f"{args.variant:8} {impl:8} {size:9} {statistics.median(times):10.1f} {q[0]:8.1f} {q[-1]:8.1f} "
              f"{len(times):5d}")


if __name__ == "__main__":
    main()
