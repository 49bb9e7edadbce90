"""Static instruction counts of the CUDA C++ scan kernels' main loop (no GPU needed).

Compiles edgemv/ops/cuda/selective_scan_n8.cu for sm_90 with nvcc (-cubin), disassembles it with the nvdisasm that
ships inside the triton wheel, picks one instantiation of the rows form (dtype, softplus, delta along L or D, B and C
in pairs) and prints the instruction mix of its main loop: the code between the loop's head and its backward
branch, one whole chunk (32 steps for 16-bit inputs, 16 for float32), per chunk and per step. The counts are
static: the loop holds both ways of loading the next chunk (whole, or the tail's checked loads), of which a chunk runs
one, so a lane issues somewhat fewer per chunk; and they count instructions, not their cost. docs/scan.md uses them
to split a chunk into the scan's own work and the rest (loads, staging, stores).

    python bench/sass_cuda.py                      # fp16, softplus, delta along D (the model's layout), pairs
    python bench/sass_cuda.py --dtype float --delta-along L --no-pairs
"""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import sass_scan  # noqa: E402  (the disassembler from the triton wheel, and the instruction mix)

from edgemv.ops import scan_cuda  # noqa: E402

DTYPES = {"half": ("6__half", 32), "bfloat16": ("13__nv_bfloat16", 32), "float": ("f", 16)}


def kernel_section(sass: str, mangled_prefix: str) -> str:
    """The SASS of the kernel whose mangled name starts with ``mangled_prefix`` (nvdisasm lists every kernel of the
    cubin, each under a .text header)."""
    start = sass.index("//--------------------- .text." + mangled_prefix)
    end = sass.find("//---------------------", start + 10)
    return sass[start:end if end > 0 else None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", choices=list(DTYPES), default="half")
    ap.add_argument("--delta-along", choices=["L", "D"], default="D")
    ap.add_argument("--no-softplus", action="store_true")
    ap.add_argument("--no-pairs", action="store_true", help="B and C a value per lane (16-bit: unaligned rows)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    if scan_cuda.nvcc() is None:
        sys.exit("needs nvcc")
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "scan.cubin")
        subprocess.run([scan_cuda.nvcc(), "-arch=sm_90", "-O3", "-std=c++17", "-cubin", "-I", scan_cuda.SOURCE_DIR,
                        "-o", cubin, scan_cuda.SOURCE], check=True)
        sass = subprocess.run([sass_scan._tool("nvdisasm"), "-c", cubin], capture_output=True, text=True,
                              check=True).stdout
    name, steps = DTYPES[args.dtype]
    pairs = args.dtype != "float" and not args.no_pairs
    flags = "".join(f"Lb{int(v)}E" for v in (not args.no_softplus, args.delta_along == "L", False, pairs))
    kernel, mix = sass_scan.instruction_mix(kernel_section(sass, f"_ZN4rows16scan_rows_kernelI{name}{flags}"),
                                            modifiers=True)
    total = sum(mix.values())
    print(f"rows form, {args.dtype}, softplus {not args.no_softplus}, delta along {args.delta_along}, pairs {pairs}: "
          f"{sum(kernel.values())} instructions in the kernel, {total} in its main loop (one chunk of {steps} steps, "
          f"{total / steps:.1f} per step)")
    for op, n in mix.most_common(args.top):
        print(f"{n:6d}  {n / steps:5.2f}/step  {op}")


if __name__ == "__main__":
    main()
