"""Why an eager call can take far longer than the kernel: host time per call and the kernels one call launches.

The issue's table (bench/scan.py) showed 320 x 49 fp16 batch 256 at 24.7 us device time but 87.7 us per eager call
on an H100 (fourteenth session; 85-150 us in the thirteenth), while batch 128 was 13.2 / 17.2 us. This times, per
problem: the host time of a call (wall clock with the GPU kept busy), do_bench's eager time (as the table), a plain
CUDA-event loop of back-to-back calls, and lists the CUDA kernels the profiler sees in one call.

    python bench/scan_eager_check.py
"""

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import make_inputs  # noqa: E402
from scan_vs_mamba import eager_time_ms  # noqa: E402

from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402


def main():
    from triton.testing import do_bench

    print(torch.cuda.get_device_name(), flush=True)
    print("| D x L | batch | dtype | host us/call | do_bench eager us | back-to-back us/call (best of 5 x 100) | "
          "kernels in one call |")
    print("|---|---|---|---|---|---|---|")
    for dim, length in ((320, 49), (160, 196)):
        for b in (128, 256):
            for dt in (torch.float16, torch.float32):
                inp = make_inputs(b, dim, length, dt, "cuda")
                fn = lambda: selective_scan_triton(**inp)  # noqa: E731
                for _ in range(5):
                    fn()
                torch.cuda.synchronize()
                n = 200
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                host = (time.perf_counter() - t0) / n * 1e6
                torch.cuda.synchronize()
                b2b = eager_time_ms(fn) * 1e3
                eager = do_bench(fn, warmup=25, rep=100, return_mode="median") * 1e3
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                    fn()
                    torch.cuda.synchronize()
                kernels = sorted({ev.name[:40] for ev in prof.events() if ev.device_type.name == "CUDA"})
                print(f"| {dim} x {length} | {b} | {str(dt)[6:]} | {host:.1f} | {eager:.1f} | {b2b:.1f} | "
                      f"{'; '.join(kernels)} |", flush=True)


if __name__ == "__main__":
    main()
