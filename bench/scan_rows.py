"""The CUDA C++ kernel's rows form (edgemv/ops/cuda/scan_rows.cuh) and short form (scan_short.cuh) beside its staged
form, on one GPU.

One run: correctness of the rows and short forms (2 lanes per channel; fp32, fp16, bf16; whole chunks, tails, L
shorter than a chunk, L = 1, 49 and 64, partial channel blocks, delta along L or along D, B and C contiguous or
strided as the model's, large delta) against float64 with poisoned outputs, each on the cases it takes, then device
times of the kernels named at one shape (160 x 196 by default; the rows form cannot take 320 x 49 in 16 bits, the
short form takes L up to 64), batch 64 / 128 / 256, fp16 and fp32, in three layouts, with the speed-up over
mamba_ssm's kernel and the share of the copy bandwidth measured in the same run, printed as a Markdown table
(docs/benchmarks.md, "The rows form of the CUDA kernel", "The short form").

    python bench/scan_rows.py
    python bench/scan_rows.py --batches 128 256 --dtypes float16 --kernels "rows 2" --define ROWS_MIN_BLOCKS=16
    python bench/scan_rows.py --shape 320 49 --kernels "staged 2" "staged 4" "short 2"
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import (check_output, copy_bandwidth, device_time_ms, make_inputs, poisoned, scan_bytes,  # noqa: E402
                  scan_f64, vs_mamba_ssm)

from edgemv.ops import scan_cuda  # noqa: E402

KERNELS = {  # label: options of scan_cuda.selective_scan_cuda
    "staged 2": {"lanes": 2},
    "staged 4": {"lanes": 4},
    "rows 2": {"lanes": 2, "rows": True},
    "short 2": {"lanes": 2, "short": True},
}
CHECKED = ("rows 2", "short 2")  # the forms whose correctness this script checks (the staged one: bench/scan.py)
# (batch, dim, L, big delta, D, delta_bias, layout): 'model' is MambaVision's (delta along D, B and C strided),
# 'contiguous' all along L, 'B/C strided' delta along L with the model's B and C
CASES = [
    (3, 160, 196, False, True, True, "model"),
    (3, 160, 196, False, True, True, "B/C strided"),
    (2, 320, 48, True, True, True, "contiguous"),
    (2, 320, 48, True, True, True, "model"),
    (16, 20, 64, False, False, False, "contiguous"),
    (2, 72, 8, False, True, True, "model"),
    (1, 33, 4, True, True, True, "contiguous"),
    (2, 40, 100, True, False, True, "B/C strided"),
    (3, 320, 49, False, True, True, "model"),  # MambaVision-T's level 3: the short form
    (2, 320, 49, True, True, True, "contiguous"),
    (2, 40, 64, True, False, True, "B/C strided"),
    (3, 24, 1, False, True, True, "model"),
    (2, 36, 33, True, True, False, "contiguous"),
]
LAYOUTS = ("contiguous", "model", "B/C strided")


def rows_inputs(batch, dim, length, dtype, big=False, has_d=True, has_bias=True, layout="contiguous", gen=None,
                dt_rank=None):
    """make_inputs in one of LAYOUTS (u always contiguous; dt_rank: make_inputs', by default the model's)."""
    inp = make_inputs(batch, dim, length, dtype, "cuda", big, has_d, False, has_bias,
                      model_layout=layout != "contiguous", gen=gen, dt_rank=dt_rank)
    if layout == "B/C strided":
        inp["delta"] = inp["delta"].contiguous()
    return inp


def refusal(label, inp, out):
    """Why kernel ``label`` cannot take these inputs (None when it can)."""
    return scan_cuda.form_refusal(inp["u"], inp["delta"], None, out, **KERNELS[label])


def correctness(defines):
    g = torch.Generator(device="cuda").manual_seed(0)
    failed = total = 0
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        worst = 0.0
        # B and C as the model's x_proj slices: rows at its own dt_rank, 4- but not 8-byte aligned (6), and
        # unaligned (5), which the kernels read in wide groups, in pairs, or a value per lane
        for (b, d, L, big, hd, hb, layout), dt_rank in [(c, r) for c in CASES for r in (
                (None, 6, 5) if c[-1] != "contiguous" else (None,))]:
            inp = rows_inputs(b, d, L, dtype, big, hd, hb, layout, gen=g, dt_rank=dt_rank)
            ref = scan_f64(**inp)
            for label in CHECKED:
                out = poisoned(inp["u"])
                if refusal(label, inp, out):
                    continue  # not a case this form takes
                total += 1
                y = scan_cuda.selective_scan_cuda(**inp, out=out, defines=defines, **KERNELS[label])
                err, ok = check_output(y, ref, dtype)
                worst = max(worst, err)
                if not ok:
                    failed += 1
                    print(f"FAIL {label} {dtype} b{b} d{d} L{L} big={big} {layout} dt_rank {dt_rank}: {err:.2e}",
                          flush=True)
        print(f"correctness {str(dtype)[6:]}: worst relative error {worst:.2e}", flush=True)
    print(f"correctness: {total - failed}/{total} passed", flush=True)
    return failed == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="*", default=[64, 128, 256])
    ap.add_argument("--dtypes", nargs="*", default=["float16", "float32"])
    ap.add_argument("--define", nargs="*", default=[], help="build knobs (NAME=VALUE) for both forms")
    ap.add_argument("--kernels", nargs="*", default=list(KERNELS), help=f"of {', '.join(KERNELS)}")
    ap.add_argument("--layouts", nargs="*", default=list(LAYOUTS), help=f"of {', '.join(LAYOUTS)}")
    ap.add_argument("--shape", type=int, nargs=2, default=[160, 196], metavar=("D", "L"))
    ap.add_argument("--dt-rank", type=int, default=None,
                    help="x_proj's dt_rank in the timed inputs (B and C's row offset; default the model's, "
                         "ceil(2 D / 16); 5 leaves the rows unaligned)")
    args = ap.parse_args()
    defines = tuple(args.define)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"defines {list(defines)}, dt_rank {args.dt_rank or 'the model'}", flush=True)
    ok = correctness(defines)
    copy_gbs = copy_bandwidth("cuda", mib=256, rep=100)
    print(f"copy bandwidth {copy_gbs:.0f} GB/s", flush=True)
    print("\n| dtype | layout | batch | " + " | ".join(args.kernels) + " |")
    print("|---|---|---|" + "---|" * len(args.kernels))
    g = torch.Generator(device="cuda").manual_seed(1)
    dim, L = args.shape
    for dtype in args.dtypes:
        dt = getattr(torch, dtype)
        for layout in args.layouts:
            for b in args.batches:
                cells = []
                for label in args.kernels:
                    nbytes = scan_bytes(b, dim, L, dt)

                    def make(label=label):
                        inp = rows_inputs(b, dim, L, dt, layout=layout, gen=g, dt_rank=args.dt_rank)
                        out = torch.empty_like(inp["u"])
                        return lambda: scan_cuda.selective_scan_cuda(**inp, out=out, defines=defines,
                                                                     **KERNELS[label])
                    probe = rows_inputs(1, dim, L, dt, layout=layout)
                    if refusal(label, probe, probe["u"]):
                        cells.append("-")  # a shape or layout this form does not take
                        continue
                    ms = device_time_ms(make, nbytes)
                    pct = nbytes / (ms * 1e-3) / 1e9 / copy_gbs * 100
                    x = vs_mamba_ssm(dim, L, b, dtype, ms)
                    cells.append(f"{ms * 1e3:.1f} ({pct:.1f}%{', ' + x if x else ''})")
                print(f"| {dtype} | {layout} | {b} | " + " | ".join(cells) + " |", flush=True)
    print("\ntimes in us; (share of copy bandwidth, speed-up over mamba_ssm's kernel at batch 128 fp16)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
