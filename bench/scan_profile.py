"""Run the Triton scan a few times at one MambaVision-T shape, for Nsight Compute to profile one launch.

    ncu --clock-control none --kernel-name regex:_scan_n8 --launch-skip 3 --launch-count 1 \
        --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
        python bench/scan_profile.py --dim 160 --length 196 --batch 128

``--variant`` picks the kernel: ``seq`` (the default, ``_scan_n8_kernel``), ``pipe``, ``lanes``, or ``cuda`` /
``cuda-lean`` (the CUDA C++ experiments; ``cuda-lean`` is the library's staged kernel), ``cuda-rows`` / ``cuda-short``
(the library's rows and short forms); ``--kernel-name regex:scan`` matches all. Not ``auto``: its first call
times every candidate, so the launches ncu skips and counts would be tuning launches of whichever kernels it tries.
Warm-up launches first (compilation, caches), then the profiled one; nothing is timed here (ncu replays the
kernel with its own counters).
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import make_inputs  # noqa: E402

from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=160)
    ap.add_argument("--length", type=int, default=196)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--variant", default="seq",
                    help="a Triton variant: seq (default), pipe, lanes, par; or 'cuda' / 'cuda-lean' / 'cuda-rows' / "
                         "'cuda-short' "
                         "(the CUDA C++ kernels). 'auto' would put its tuning launches among the profiled ones")
    ap.add_argument("--contiguous", action="store_true", help="contiguous inputs instead of the model's views")
    ap.add_argument("--split", type=int, default=2, help="lanes per channel of the CUDA experiments (default 2)")
    ap.add_argument("--define", nargs="*", default=[], help="build knobs of the CUDA experiments (NAME=VALUE)")
    ap.add_argument("--dt-rank", type=int, default=None, help="x_proj's dt_rank in the model's layout (make_inputs' "
                    "default: the model's)")
    args = ap.parse_args()
    inp = make_inputs(args.batch, args.dim, args.length, getattr(torch, args.dtype), "cuda",
                      model_layout=not args.contiguous, dt_rank=args.dt_rank)
    for _ in range(args.calls):
        if args.variant in ("cuda-rows", "cuda-short"):
            from edgemv.ops import scan_cuda as lib_cuda

            lib_cuda.selective_scan_cuda(**inp, lanes=args.split, defines=tuple(args.define),
                                         **{args.variant[5:]: True})
        elif args.variant in ("cuda", "cuda-lean"):
            import scan_cuda

            scan_cuda.selective_scan_cuda(**inp, kernel="lean" if args.variant == "cuda-lean" else "staged",
                                          split=args.split, defines=tuple(args.define))
        else:
            selective_scan_triton(**inp, variant=args.variant)
    torch.cuda.synchronize()
    print("done", flush=True)


if __name__ == "__main__":
    main()
