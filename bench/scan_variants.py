"""The N = 8 scan kernels side by side: 'auto''s candidates (scan_tune.candidates(): the Triton kernels, and the CUDA
C++ kernel where nvcc is found) and what it picks; with --extra
also the kernels dropped from the candidates (pipe 64 tile, lanes 2 x 16, lanes 4 x 8), with --cuda the CUDA C++
experiments (bench/scan_cuda.py: 'staged' and 'lean', or those named after --cuda; needs nvcc).

One CUDA run: correctness of every candidate against float64 (poisoned outputs; fp32/fp16/bf16, with and without
D, z, delta_bias, large delta, both layouts, ragged D and L, L = 1), then device times at MambaVision-T's scan
shapes, batch 128 and 256, fp16, on the model's strided layout and on contiguous tensors, each candidate and 'auto'
(tuned on its first call), printed as a Markdown table (docs/benchmarks.md, "Kernel variants and 'auto'").

    python bench/scan_variants.py
    python bench/scan_variants.py --batches 128 --layouts contiguous
    python bench/scan_variants.py --kernels 0 1 2 --no-auto --cuda   # with the CUDA C++ experiments
    python bench/scan_variants.py --kernels 0 1 2 --no-auto --cuda staged   # with the staged one only
"""

import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import (check_output, copy_bandwidth, correctness_cases, device_time_ms, make_inputs,  # noqa: E402
                  poisoned, scan_bytes, scan_f64, vs_mamba_ssm)

import scan_cuda  # noqa: E402  (the CUDA C++ experiments, timed beside the Triton kernels with --cuda)

from edgemv.ops import scan_tune  # noqa: E402
from edgemv.ops.scan_cuda import FormRefusal  # noqa: E402
from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402

CASES = [  # (batch, dim, L, dtype, big, has_z, has_d, has_bias, model_layout)
    (3, 160, 196, torch.float16, False, False, True, True, True),
    (2, 320, 49, torch.float32, True, True, True, True, False),
    (16, 20, 64, torch.bfloat16, False, True, False, False, False),
    (2, 70, 1, torch.float16, False, False, True, True, False),
]  # (each case compiles every kernel once, ~5 s each on the device; the CPU interpreter tests cover more)


EXTRA = (("pipe", {"block_d": 64, "tile": True}), ("lanes", {"lanes": 2, "block_d": 16}),
         ("lanes", {"lanes": 4, "block_d": 8}))  # never the fastest in the first run (docs/benchmarks.md)


def _run(variant, opts, inp, out=None):
    if variant == "cuda-exp":
        return scan_cuda.selective_scan_cuda(**inp, out=out, **opts)
    return selective_scan_triton(**inp, variant=variant, out=out, **opts)


def _label(variant, opts):
    return variant + "(" + ", ".join(f"{k}={v}" for k, v in opts.items()) + ")"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="*", default=[128, 256])
    ap.add_argument("--layouts", nargs="*", default=["model", "contiguous"])
    ap.add_argument("--kernels", nargs="*", type=int, help="indices into scan_tune.candidates() (default: all)")
    ap.add_argument("--no-auto", action="store_true")
    ap.add_argument("--extra", action="store_true", help="also the kernels dropped from 'auto''s candidates")
    ap.add_argument("--cuda", nargs="*", metavar="KERNEL",
                    help=f"also the CUDA C++ experiments (bench/scan_cuda.py; needs nvcc): those named, of "
                         f"{', '.join(scan_cuda.KERNELS)}, each with every split (default: all)")
    args = ap.parse_args()
    if args.cuda is not None:
        unknown = [k for k in args.cuda if k not in scan_cuda.KERNELS]
        if unknown:
            ap.error(f"--cuda: unknown kernel(s) {', '.join(unknown)}; choose from {', '.join(scan_cuda.KERNELS)}")
        if not scan_cuda.available():
            ap.error("--cuda needs a CUDA device and nvcc (EDGEMV_NVCC, CUDA_HOME or the PATH)")
    import triton

    os.environ.setdefault("EDGEMV_CACHE_DIR", tempfile.mkdtemp())  # 'auto' tunes afresh in this run
    t0 = time.time()
    name = torch.cuda.get_device_name()
    print(f"{name}, torch {torch.__version__}, triton {triton.__version__}, CUDA {torch.version.cuda}", flush=True)
    cands = scan_tune.candidates()
    kernels = [cands[i] for i in (range(len(cands)) if args.kernels is None else args.kernels)]
    cuda_kernels = [("cuda-exp", {"kernel": k, "split": s}) for k, splits in scan_cuda.SPLITS.items()
                    if args.cuda is not None and (not args.cuda or k in args.cuda) for s in splits]
    if args.extra:
        kernels += list(EXTRA)
    kernels += cuda_kernels + ([] if args.no_auto else [("auto", {})])
    g = torch.Generator(device="cuda")
    g.manual_seed(int(time.time()))
    # every kernel on the quick cases; the CUDA kernels (built once, no per-shape compiles) on the whole set
    runs = [(case, k) for case in CASES for k in kernels] + [(case, k) for case in correctness_cases()
                                                             for k in cuda_kernels]
    fails, worst, inputs, not_taken = 0, {}, {}, 0
    for case, (variant, opts) in runs:
        b, dim, L, dt, big, hz, hd, hb, lay = case
        if case not in inputs:
            inputs.clear()  # one case's inputs and reference at a time
            inp = make_inputs(b, dim, L, dt, "cuda", big, hd, hz, hb, lay, gen=g)
            inputs[case] = (inp, scan_f64(**inp))
        inp, ref = inputs[case]
        out = poisoned(inp["u"])
        try:
            _run(variant, opts, inp, out)
        except FormRefusal:  # the CUDA kernel's rows and short forms take only some inputs: not a failure
            not_taken += 1
            continue
        err, ok = check_output(out, ref, dt)
        fails += not ok
        worst[dt] = max(worst.get(dt, 0.0), err)
        if not ok:
            print(f"FAIL {_label(variant, opts)} b={b} {dim}x{L} {dt} err {err:.2e}", flush=True)
    n_runs = len(runs) - not_taken
    print(f"correctness: {n_runs - fails}/{n_runs} passed ({not_taken} not taken by the kernel); worst "
          + ", ".join(f"{str(k)[6:]} {v:.1e}" for k, v in worst.items()) + f" [{time.time() - t0:.0f}s]", flush=True)
    copy_gbs = copy_bandwidth("cuda", mib=256, rep=100)
    print(f"copy bandwidth {copy_gbs:.0f} GB/s", flush=True)
    rows = []
    dt = torch.float16
    for layout in args.layouts:
        for (dim, L) in ((160, 196), (320, 49)):
            for b in args.batches:
                nbytes = scan_bytes(b, dim, L, dt)
                for variant, opts in kernels:
                    def make():
                        inp = make_inputs(b, dim, L, dt, "cuda", model_layout=layout == "model")
                        return lambda: _run(variant, opts, inp)
                    try:
                        ms = device_time_ms(make, nbytes, reps=10)
                    except Exception as exc:
                        print(f"  {_label(variant, opts)}: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
                        continue
                    pick = ""
                    if variant == "auto":
                        inp = make_inputs(b, dim, L, dt, "cuda", model_layout=layout == "model")
                        v, o = scan_tune.choose(None, **{name: t for name, t in inp.items() if name != "A"})
                        pick = _label(v, o)
                    gbs = nbytes / (ms * 1e-3) / 1e9
                    rows.append((layout, dim, L, b, _label(variant, opts) + (f" -> {pick}" if pick else ""), ms,
                                 gbs))
                    print(f"  {layout:10s} {dim}x{L} b={b} {rows[-1][4]:40s} {ms * 1e3:7.1f} us "
                          f"{100 * gbs / copy_gbs:5.1f}% of copy  [{time.time() - t0:.0f}s]", flush=True)
    print("\n| layout | D x L | batch | kernel | device time (us) | % of copy | vs mamba_ssm b128 |")
    print("|---|---|---|---|---|---|---|")
    for layout, dim, L, b, label, ms, gbs in rows:
        sp = vs_mamba_ssm(dim, L, b, "float16", ms)
        print(f"| {layout} | {dim} x {L} | {b} | {label} | {ms * 1e3:.1f} | {100 * gbs / copy_gbs:.1f}% | {sp} |")
    print(f"\n{name}; copy {copy_gbs:.0f} GB/s; {time.time() - t0:.0f}s")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
