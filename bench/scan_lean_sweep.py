"""The library's CUDA C++ kernel (edgemv/ops/cuda/selective_scan_n8.cu, 'lean' in the benchmarks) built with several settings of its knobs (blocks per
SM its registers must allow, scan unrolling), each checked and timed at MambaVision-T's scan shapes beside the
Triton kernel 'auto' picks most often, in one run:

    python bench/scan_lean_sweep.py                       # the default knob sets
    python bench/scan_lean_sweep.py --sets "LEAN_MIN_BLOCKS_2=16" "LEAN_MIN_BLOCKS_2=8"

Each set: correctness of every split on 4 cases against float64 (poisoned outputs), then device time (CUDA-graph
replays over rotating inputs, as bench/scan.py) at 160 x 196 and 320 x 49, batch 128 and 256, fp16, on the model's
strided layout and on contiguous tensors. Prints a Markdown table (docs/benchmarks.md).
"""

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import (check_output, copy_bandwidth, device_time_ms, make_inputs, poisoned, scan_bytes,  # noqa: E402
                  scan_f64, vs_mamba_ssm)

import scan_cuda  # noqa: E402

from edgemv.ops import scan_cuda as lib_cuda  # noqa: E402
from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402

DEFAULT_SETS = ["", "LEAN_MIN_BLOCKS_1=16 LEAN_MIN_BLOCKS_2=16 LEAN_MIN_BLOCKS_4=32",
                "LEAN_MIN_BLOCKS_1=1 LEAN_MIN_BLOCKS_2=1 LEAN_MIN_BLOCKS_4=1"]
CASES = [  # (batch, dim, L, dtype, big, has_z, has_d, has_bias, model_layout)
    (3, 160, 196, torch.float16, False, False, True, True, True),
    (2, 320, 49, torch.float32, True, True, True, True, False),
    (16, 20, 64, torch.bfloat16, False, True, False, False, False),
    (2, 70, 1, torch.float16, False, False, True, True, False),
]
SHAPES = [("model", 160, 196), ("model", 320, 49), ("contiguous", 160, 196), ("contiguous", 320, 49)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", nargs="*", default=DEFAULT_SETS, help="knob sets, each 'NAME=VALUE NAME=VALUE'")
    ap.add_argument("--splits", nargs="*", type=int, default=list(scan_cuda.SPLITS["lean"]))
    ap.add_argument("--batches", nargs="*", type=int, default=[128, 256])
    args = ap.parse_args()
    if not scan_cuda.available():
        ap.error("needs a CUDA device and nvcc")
    t0 = time.time()
    name = torch.cuda.get_device_name()
    print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    with ThreadPoolExecutor(len(args.sets)) as pool:  # the builds in parallel (~10 s each)
        list(pool.map(lambda k: lib_cuda.library(torch.device("cuda"), tuple(k.split())), args.sets))
    print(f"built {len(args.sets)} knob sets [{time.time() - t0:.0f}s]", flush=True)
    g = torch.Generator(device="cuda")
    g.manual_seed(int(time.time()))
    kernels = [("triton seq 64", lambda inp: selective_scan_triton(**inp, variant="seq", block_d=64)),
               ("triton pipe 64", lambda inp: selective_scan_triton(**inp, variant="pipe", block_d=64))]
    fails = total = 0
    for knobs in args.sets:
        defines = tuple(knobs.split())
        for split in args.splits:
            label = f"lean split {split}" + (f" [{knobs}]" if knobs else " [defaults]")

            def run(inp, out=None, split=split, defines=defines):
                return scan_cuda.selective_scan_cuda(**inp, out=out, kernel="lean", split=split, defines=defines)
            for case in CASES:
                b, dim, L, dt, big, hz, hd, hb, lay = case
                inp = make_inputs(b, dim, L, dt, "cuda", big, hd, hz, hb, lay, gen=g)
                out = poisoned(inp["u"])
                run(inp, out)
                err, ok = check_output(out, scan_f64(**inp), dt)
                total += 1
                fails += not ok
                if not ok:
                    print(f"FAIL {label} b={b} {dim}x{L} {dt} err {err:.2e}", flush=True)
            kernels.append((label, run))
    print(f"correctness: {total - fails}/{total} passed [{time.time() - t0:.0f}s]", flush=True)
    copy_gbs = copy_bandwidth("cuda", mib=256, rep=100)
    print(f"copy bandwidth {copy_gbs:.0f} GB/s", flush=True)
    times = {}
    for layout, dim, L in SHAPES:
        for b in args.batches:
            nbytes = scan_bytes(b, dim, L, torch.float16)
            for label, fn in kernels:
                def make(fn=fn):
                    inp = make_inputs(b, dim, L, torch.float16, "cuda", model_layout=layout == "model")
                    return lambda: fn(inp)
                times[(label, layout, dim, L, b)] = device_time_ms(make, nbytes, reps=10)
            print(f"  {layout} {dim}x{L} b={b} done [{time.time() - t0:.0f}s]", flush=True)
    cols = [(layout, dim, L, b) for layout, dim, L in SHAPES for b in args.batches]
    print("\n| kernel | " + " | ".join(f"{lay} {d}x{L} b{b}" for lay, d, L, b in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for label, _ in kernels:
        cells = []
        for lay, d, L, b in cols:
            ms = times[(label, lay, d, L, b)]
            extra = (f" ({vs_mamba_ssm(d, L, b, 'float16', ms)})" if b == 128
                     else f" ({100 * scan_bytes(b, d, L, torch.float16) / (ms * 1e-3) / 1e9 / copy_gbs:.0f}%)")
            cells.append(f"{ms * 1e3:.1f}{extra}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\n{name}; copy {copy_gbs:.0f} GB/s; us (b128: vs mamba_ssm; b256: % of copy); {time.time() - t0:.0f}s")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
