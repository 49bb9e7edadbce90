"""Compile the Triton scan kernels for sm_90 on the CPU and summarise their SASS (no GPU needed).

Uses the ptxas/nvdisasm that ship inside the triton wheel. Prints registers, spill bytes and an instruction mix of
the whole kernel and of its main loop, for the layout MambaVision passes (u, y contiguous; delta, B, C strided
views), so kernel changes can be judged before spending device time:

    python bench/sass_scan.py                      # every kernel, fp16, default tiles
    python bench/sass_scan.py --kernel n8 --block-l 8 --dump /tmp/n8.sass
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from edgemv.ops import scan_triton as st  # noqa: E402

# The argument list shared by the kernels (pointers first, then sizes and strides); strides equal to 1 in the model
# layout are passed as the constant 1, as Triton's launcher specialises them.
_PTRS = ["u_ptr", "dt_ptr", "A_ptr", "B_ptr", "C_ptr", "D_ptr", "z_ptr", "bias_ptr", "y_ptr"]
_MODEL_LAYOUT_ONES = {"su_l", "sdt_d", "sA_n", "sB_n", "sC_n", "sz_l", "sy_l"}


def compile_kernel(kernel, dtype, constexprs, num_warps):
    sig, consts, attrs = {}, dict(constexprs), {}
    for i, name in enumerate(kernel.arg_names):
        if name in constexprs:
            sig[name] = "constexpr"
        elif name in _PTRS:
            el = "fp32" if name in ("A_ptr", "D_ptr", "bias_ptr") else dtype
            sig[name] = f"*{el}"
            if name not in ("B_ptr", "C_ptr"):  # B, C are views at an odd element offset into x_dbl
                attrs[(i,)] = [["tt.divisibility", 16]]
        elif name in _MODEL_LAYOUT_ONES:
            sig[name] = "constexpr"
            consts[name] = 1
        else:
            sig[name] = "i32"
    src = ASTSource(fn=kernel, signature=sig, constexprs=consts, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})


def _tool(name):
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


def sass_of(compiled):
    """(SASS text, resource-usage line) of the compiled kernel's cubin."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        sass = subprocess.run([_tool("nvdisasm"), "-c", "-hex", f.name], capture_output=True, text=True,
                              check=True).stdout
        res = subprocess.run([_tool("cuobjdump"), "--dump-resource-usage", f.name], capture_output=True, text=True,
                             check=True).stdout
    usage = next((ln.strip() for ln in res.splitlines() if "REG:" in ln), "")
    return sass, usage


_OP = re.compile(r"^\s*/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_]*)(\.[A-Z0-9_.]+)?")


def instruction_mix(sass, modifiers=False):
    """Counts of opcodes in the whole kernel and inside the widest loop (a BRA back to an earlier label).
    ``modifiers``: count each opcode with its modifiers (MUFU.EX2 and MUFU.LG2 apart)."""
    ops, labels, next_addr = [], {}, 0
    for ln in sass.splitlines():
        lab = re.match(r"^(\.L_x_\d+):", ln)
        if lab:
            labels[lab.group(1)] = next_addr  # a label marks the instruction that follows it
            continue
        m = _OP.match(ln)
        if m:
            a = int(re.search(r"/\*([0-9a-f]{4,})\*/", ln).group(1), 16)
            ops.append((a, m.group(1) + (m.group(2) or "") if modifiers else m.group(1), ln))
            next_addr = a + 16
    total = collections.Counter(op for _, op, _ in ops)
    best = None
    for a, op, ln in ops:
        target = re.search(r"\((\.L_x_\d+)\)", ln) if op.split(".")[0] == "BRA" else None
        if target and target.group(1) in labels:
            start = labels[target.group(1)]
            if start < a and (best is None or a - start > best[1] - best[0]):
                best = (start, a)
    loop = collections.Counter(op for a, op, _ in ops if best and best[0] <= a <= best[1])
    return total, loop


def summarise(name, compiled, steps_per_trip=None, dump=None, trip_copies=1):
    sass, usage = sass_of(compiled)
    if dump:
        with open(dump, "w") as f:
            f.write(sass)
    total, loop = instruction_mix(sass)
    md = compiled.metadata
    print(f"== {name}: {md.num_warps} warps; {usage}\n   {sum(total.values())} SASS instructions, main loop "
          f"{sum(loop.values())}"
          + (f" (about {sum(loop.values()) / steps_per_trip / trip_copies:.0f} per step: the loop holds "
             f"{trip_copies} cop{'y' if trip_copies == 1 else 'ies'} of a trip)" if steps_per_trip and loop else ""))
    groups = collections.OrderedDict(
        loads=("LDG", "LD", "LDS", "LDL", "LDC", "ULDC"), stores=("STG", "STS", "STL", "ST"),
        mufu=("MUFU",), fp32=("FFMA", "FMUL", "FADD", "FMNMX", "FSEL", "FSETP", "FCHK"),
        convert=("F2F", "HADD2", "PRMT", "F2FP", "I2F", "F2I"), shuffle=("SHFL",), barrier=("BAR",),
    )
    for label, counter in (("loop", loop), ("all", total)):
        if not counter:
            continue
        parts = [f"{g} {sum(counter[o] for o in ops)}" for g, ops in groups.items()]
        known = set(o for ops in groups.values() for o in ops)
        other = collections.Counter({k: v for k, v in counter.items() if k not in known})
        print(f"   {label:4s}: " + ", ".join(parts) + f"; other {sum(other.values())} "
              f"({', '.join(f'{k} {v}' for k, v in other.most_common(6))})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", default="all", help="n8, pipe, lanes, par or all")
    ap.add_argument("--lanes", type=int, default=2, help="lanes per channel (kernel 'lanes')")
    ap.add_argument("--dtype", default="fp16", choices=("fp16", "bf16", "fp32"))
    ap.add_argument("--block-d", type=int, default=64, help="channels per program (not 'par': BLOCK_D 16 there)")
    ap.add_argument("--block-l", type=int, default=8, help="steps per trip (n8 only)")
    ap.add_argument("--warps", type=int, default=1, help="warps per program (not 'par': 8 warps there)")
    ap.add_argument("--dump", help="write the SASS of the (last) kernel here")
    args = ap.parse_args()
    flags = dict(HAS_D=True, HAS_Z=False, HAS_BIAS=True, SOFTPLUS=True)
    kernels = ("n8", "pipe", "lanes", "par") if args.kernel == "all" else (args.kernel,)
    for k in kernels:
        if k == "n8":
            c = compile_kernel(st._scan_n8_kernel, args.dtype,
                               dict(BLOCK_D=args.block_d, BLOCK_L=args.block_l, PREFETCH=True, PF_DIST=2, FAST=True,
                                    **flags), args.warps)
            # the N = 8 kernel's loop holds two copies of a trip: full trips and the clamped last one
            summarise(f"seq n8 BLOCK_D={args.block_d} BLOCK_L={args.block_l}", c, args.block_l, args.dump,
                      trip_copies=2)
        elif k == "pipe":
            for tile in (False, True):
                c = compile_kernel(st._scan_pipe_kernel, args.dtype,
                                   dict(BLOCK_D=args.block_d, TILE=tile, PREFETCH=True, FAST=True, **flags), args.warps)
                summarise(f"pipe TILE={tile} BLOCK_D={args.block_d}", c, 8, args.dump, trip_copies=2)
        elif k == "lanes":
            c = compile_kernel(st._scan_lanes_kernel, args.dtype,
                               dict(BLOCK_D=args.block_d, LANES=args.lanes, PREFETCH=True, PF_DIST=2, FAST=True,
                                    **flags), args.warps)
            summarise(f"lanes LANES={args.lanes} BLOCK_D={args.block_d}", c, 8, args.dump, trip_copies=2)
        elif k == "par":
            c = compile_kernel(st._scan_par_kernel, args.dtype,
                               dict(N=8, BLOCK_D=16, L_P2=256, POLY=0, **flags), 8)
            summarise("par BLOCK_D=16 L_P2=256", c, None, args.dump)


if __name__ == "__main__":
    main()
