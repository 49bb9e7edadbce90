"""nvcc's --split-compile=0 for the CUDA scan kernel (edgemv.toolchain.split_compile_flags): its build time and the
kernels' device times with and without it, on one GPU. One variant per process, chosen by EDGEMV_NVCC_SPLIT (0:
whole, 1: split), each with its own EDGEMV_CACHE_DIR so the first run of each builds:

    EDGEMV_NVCC_SPLIT=0 EDGEMV_CACHE_DIR=/tmp/c0 python bench/split_compile_ab.py --label whole [--correctness]
    EDGEMV_NVCC_SPLIT=1 EDGEMV_CACHE_DIR=/tmp/c1 python bench/split_compile_ab.py --label split [--correctness]

Prints the build time (0 when cached), optionally the rows and short forms' correctness against float64
(bench/scan_rows.py's cases), and the device times of the forms 'auto' picks at MambaVision-T's shapes on the
model's layout, batch 128 and 256, fp16 and fp32, as Markdown rows.
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import device_time_ms, scan_bytes  # noqa: E402
from scan_rows import correctness, rows_inputs  # noqa: E402

from edgemv.ops import scan_cuda  # noqa: E402
from edgemv.toolchain import split_compile_flags  # noqa: E402

PROBLEMS = [("rows", 160, 196, {"lanes": 2, "rows": True}), ("short", 320, 49, {"lanes": 2, "short": True})]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--correctness", action="store_true")
    args = ap.parse_args()
    flags = split_compile_flags(scan_cuda.nvcc())
    t = time.perf_counter()
    scan_cuda.library(torch.device("cuda"))
    print(f"{args.label}: flags {flags or '(none)'}; library ready in {time.perf_counter() - t:.1f} s "
          f"({os.cpu_count()} CPUs)", flush=True)
    if args.correctness and not correctness(()):
        sys.exit(1)
    g = torch.Generator(device="cuda").manual_seed(0)
    for form, dim, length, opts in PROBLEMS:
        for dtype in (torch.float16, torch.float32):
            for batch in (128, 256):
                def make():
                    inp = rows_inputs(batch, dim, length, dtype, layout="model", gen=g)
                    out = torch.empty_like(inp["u"])
                    return lambda: scan_cuda.selective_scan_cuda(**inp, out=out, **opts)
                us = 1e3 * device_time_ms(make, scan_bytes(batch, dim, length, dtype))
                print(f"| {args.label} | {form} | {dim} x {length} | {str(dtype)[6:]} | {batch} | {us:.1f} |",
                      flush=True)


if __name__ == "__main__":
    main()
