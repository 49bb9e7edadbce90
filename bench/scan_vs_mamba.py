"""mamba_ssm's CUDA forward scan kernel beside edgemv's 'auto', on one GPU, in one run.

mamba_ssm does not install on the device machine (no network, no wheel for its torch), so this script compiles its
forward kernel from a local copy of its sources (csrc/selective_scan of state-spaces/mamba: the selective_scan_fwd_*.cu
files and their headers, in ``--src``, a folder git ignores) together with bench/mamba_ref/launch.cu, with the
nvcc flags of mamba_ssm's setup.py. Nothing it builds is committed.

One run: correctness of mamba_ssm's kernel and of 'auto' against the float64 reference of bench/scan.py (poisoned
outputs), then device times (CUDA-graph replays over rotating inputs, bench/scan.py's device_time_ms) at
MambaVision-T's shapes, batch 64 / 128 / 256, fp16 and fp32:
  - mamba_ssm on contiguous inputs (the layout it needs; the official mixer's Python wrapper copies delta into it);
  - 'auto' on the same contiguous inputs, and on the model's layout (delta along D, B and C strided views);
  - mamba_ssm on the model's layout as its Python entry point (selective_scan_fn) runs it: delta, B and C copied
    contiguous along L, then the kernel;
  - both called eagerly, call after call (host costs included: what an eager model and a do_bench timing see);
printed as a Markdown table (docs/benchmarks.md, "mamba_ssm side by side").

    python bench/scan_vs_mamba.py --src .mamba_ref

The sources, from a checkout of state-spaces/mamba in $MAMBA (on the device machine, carry the folder):

    mkdir -p .mamba_ref && echo /.mamba_ref/ >> .git/info/exclude
    cp $MAMBA/csrc/selective_scan/{selective_scan.h,selective_scan_common.h,selective_scan_fwd_kernel.cuh} .mamba_ref/
    cp $MAMBA/csrc/selective_scan/{static_switch.h,uninitialized_copy.cuh,selective_scan_fwd_f*.cu} .mamba_ref/
    cp $MAMBA/csrc/selective_scan/selective_scan_fwd_bf16.cu .mamba_ref/
"""

import argparse
import concurrent.futures
import ctypes
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import (check_output, copy_bandwidth, device_time_ms, make_inputs, poisoned, scan_bytes,  # noqa: E402
                  scan_f64)

import edgemv.ops  # noqa: E402
from edgemv.ops import scan_cuda  # noqa: E402
from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402

LAUNCHER = os.path.join(os.path.dirname(__file__), "mamba_ref", "launch.cu")
# mamba_ssm's setup.py flags for its CUDA extension (besides the architecture)
MAMBA_FLAGS = ["-O3", "-std=c++17", "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
               "-U__CUDA_NO_BFLOAT16_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
               "-U__CUDA_NO_BFLOAT162_OPERATORS__", "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
               "--expt-relaxed-constexpr", "--expt-extended-lambda", "--use_fast_math"]
DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def build(src, out_dir):
    """Compile mamba_ssm's forward kernels and the launcher (in parallel) into one shared library in ``out_dir``
    (reused when it is there: a second run on the same machine skips the minute of nvcc); the loaded library."""
    from torch.utils.cpp_extension import include_paths, library_paths

    so = os.path.join(out_dir, "mamba_fwd.so")
    if os.path.isfile(so):
        return _load(so)
    os.makedirs(out_dir, exist_ok=True)

    nvcc = scan_cuda.nvcc()
    arch = scan_cuda.arch(torch.device("cuda"))
    inc = [f"-I{src}"] + [f"-I{p}" for p in include_paths()]
    sources = [LAUNCHER] + [os.path.join(src, f"selective_scan_fwd_{t}.cu") for t in ("fp32", "fp16", "bf16")]

    def compile_one(s):
        obj = os.path.join(out_dir, os.path.basename(s) + ".o")
        subprocess.run([nvcc, f"-arch={arch}", *MAMBA_FLAGS, "-Xcompiler", "-fPIC", "-c", s, "-o", obj, *inc],
                       check=True)
        return obj

    with concurrent.futures.ThreadPoolExecutor(len(sources)) as pool:
        objs = list(pool.map(compile_one, sources))
    lib_dir = library_paths()[0]
    subprocess.run([nvcc, f"-arch={arch}", "-shared", *objs, "-o", so + ".tmp", f"-L{lib_dir}", "-lc10",
                    "-lc10_cuda", "-Xlinker", f"-rpath={lib_dir}"], check=True)
    os.replace(so + ".tmp", so)
    return _load(so)


def _load(so):
    lib = ctypes.CDLL(so)
    lib.mamba_scan_fwd.restype = ctypes.c_int
    lib.mamba_scan_fwd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                   ctypes.c_void_p]
    return lib


def mamba_call(lib, inp, out):
    """A call of mamba_ssm's forward kernel on contiguous inputs (u, delta (b, d, l); B, C (b, n, l)), writing y
    into ``out``. The arrays it is passed live in the closure, so the call can be captured in a CUDA graph."""
    u, delta, A, B, C = (inp[k] for k in ("u", "delta", "A", "B", "C"))
    for name, t in (("u", u), ("delta", delta), ("B", B), ("C", C), ("out", out)):
        if t.stride(-1) != 1:
            raise ValueError(f"mamba_ssm's kernel needs {name} contiguous along L")
    batch, dim, length = u.shape
    n = A.shape[1]
    A = A.float()
    D = inp["D"].float().contiguous() if inp["D"] is not None else None
    bias = inp["delta_bias"].float().contiguous() if inp["delta_bias"] is not None else None
    x = torch.empty(batch, dim, (length + 2047) // 2048, 2 * n, device=u.device, dtype=torch.float32)
    keep = (inp, out, A, D, bias, x)  # alive while the call (or a graph holding it) is
    dims = (ctypes.c_int64 * 4)(batch, dim, length, n)
    ptrs = (ctypes.c_void_p * 9)(u.data_ptr(), delta.data_ptr(), A.data_ptr(), B.data_ptr(), C.data_ptr(),
                                 D.data_ptr() if D is not None else None,
                                 bias.data_ptr() if bias is not None else None, out.data_ptr(), x.data_ptr())
    # B and C as (batch, group = 1, n, l): the group stride is the batch stride
    strides = (ctypes.c_int64 * 14)(A.stride(0), A.stride(1), B.stride(0), B.stride(0), B.stride(1), C.stride(0),
                                    C.stride(0), C.stride(1), u.stride(0), u.stride(1), delta.stride(0),
                                    delta.stride(1), out.stride(0), out.stride(1))
    code = DTYPE_CODE[u.dtype]
    softplus = int(bool(inp["delta_softplus"]))

    def call():
        stream = torch.cuda.current_stream().cuda_stream
        rc = lib.mamba_scan_fwd(code, dims, ptrs, strides, softplus, ctypes.c_void_p(stream))
        if rc:
            raise RuntimeError(f"mamba_ssm's kernel failed to launch (cudaError {rc})")
        return keep
    return call


def mamba_model_layout_call(lib, inp, out):
    """mamba_ssm's forward on the model's layout as its Python entry point runs it: selective_scan_fn makes u,
    delta, B and C contiguous along L where their last stride is not 1 (MambaVision's delta, B and C are not), then
    calls the kernel. The copies go into buffers made here, so the call can be captured in a CUDA graph."""
    copies = {k: torch.empty(inp[k].shape, device=inp[k].device, dtype=inp[k].dtype)
              for k in ("u", "delta", "B", "C") if inp[k].stride(-1) != 1}
    kernel = mamba_call(lib, {**inp, **copies}, out)

    def call():
        for k, buf in copies.items():
            buf.copy_(inp[k])
        return kernel()
    return call


def eager_time_ms(fn, calls=100, reps=5):
    """Time per call of ``fn`` called back to back from Python, between two events (the best of ``reps``): the
    device time where the GPU is the bottleneck, the host's time per call where the host is."""
    for _ in range(10):
        fn()
    best = float("inf")
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(calls):
            fn()
        b.record()
        b.synchronize()
        best = min(best, a.elapsed_time(b) / calls)
    return best


def correctness(lib):
    g = torch.Generator(device="cuda").manual_seed(0)
    failed = 0
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for batch, dim, length, big in ((3, 160, 196, False), (2, 320, 49, True), (4, 40, 64, False)):
            inp = make_inputs(batch, dim, length, dtype, "cuda", big, model_layout=False, gen=g)
            ref = scan_f64(**inp)
            model = {**inp, "delta": inp["delta"].transpose(1, 2).contiguous().transpose(1, 2),
                     "B": inp["B"].transpose(1, 2).contiguous().transpose(1, 2),
                     "C": inp["C"].transpose(1, 2).contiguous().transpose(1, 2)}  # the same values, strided
            for label in ("mamba_ssm", "auto", "mamba_ssm, strided"):
                out = poisoned(inp["u"])
                if label == "mamba_ssm":
                    mamba_call(lib, inp, out)()
                elif label == "auto":
                    selective_scan_triton(**inp, variant="auto", out=out)
                else:
                    mamba_model_layout_call(lib, model, out)()
                torch.cuda.synchronize()
                err, ok = check_output(out, ref, dtype)
                failed += not ok
                print(f"{label:17s} {str(dtype)[6:]:8s} {batch} x {dim} x {length} big={big!s:5s} rel err {err:.2e}"
                      f" {'ok' if ok else 'FAIL'}")
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=".mamba_ref", help="mamba_ssm's csrc/selective_scan sources")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--dtypes", nargs="+", default=["float16", "float32"])
    ap.add_argument("--build-dir", default=os.path.join(tempfile.gettempdir(), "edgemv_mamba_fwd"),
                    help="where the library is built (and found again by a later run)")
    ap.add_argument("--no-correctness", action="store_true")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.src, "selective_scan_fwd_kernel.cuh")):
        sys.exit(f"error: {args.src} does not hold mamba_ssm's csrc/selective_scan sources")
    lib = build(args.src, args.build_dir)
    failed = 0 if args.no_correctness else correctness(lib)
    copy_gbs = copy_bandwidth("cuda")
    print(f"\ncopy bandwidth {copy_gbs:.0f} GB/s; correctness: {failed} failed\n")
    print("| D x L | batch | dtype | mamba_ssm (us) | 'auto', same inputs (us) | speed-up | 'auto', model's layout "
          "(us) | speed-up | mamba_ssm, model's layout with its wrapper's copies (us) | speed-up | 'auto' % of copy "
          "(model) | eager: mamba_ssm (us) | eager: edgemv op (us) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    g = torch.Generator(device="cuda").manual_seed(1)
    for dim, length in ((160, 196), (320, 49)):
        for dt_name in args.dtypes:
            dtype = getattr(torch, dt_name)
            for batch in args.batches:
                nbytes = scan_bytes(batch, dim, length, dtype)

                def make(kind):
                    inp = make_inputs(batch, dim, length, dtype, "cuda", model_layout=kind.endswith("model"), gen=g)
                    out = torch.empty_like(inp["u"])
                    if kind == "mamba":
                        return mamba_call(lib, inp, out)
                    if kind == "mamba-model":
                        return mamba_model_layout_call(lib, inp, out)
                    return lambda: selective_scan_triton(**inp, variant="auto", out=out)
                ms_mamba = device_time_ms(lambda: make("mamba"), nbytes)
                ms_same = device_time_ms(lambda: make("contiguous"), nbytes)
                ms_model = device_time_ms(lambda: make("model"), nbytes)
                ms_mamba_model = device_time_ms(lambda: make("mamba-model"), nbytes)
                pct = 100 * nbytes / (ms_model * 1e-3) / 1e9 / copy_gbs
                # eager, call by call: mamba_ssm through the ctypes launcher (leaner than its own Python wrapper),
                # edgemv through its public op on the model's layout (what MambaVision's mixer calls)
                eager_mamba = eager_time_ms(make("mamba"))
                inp = make_inputs(batch, dim, length, dtype, "cuda", model_layout=True, gen=g)
                eager_edgemv = eager_time_ms(lambda: edgemv.ops.selective_scan(**inp, impl="triton"))
                print(f"| {dim} x {length} | {batch} | {dt_name} | {ms_mamba * 1e3:.1f} | {ms_same * 1e3:.1f} | "
                      f"{ms_mamba / ms_same:.1f}x | {ms_model * 1e3:.1f} | {ms_mamba / ms_model:.1f}x | "
                      f"{ms_mamba_model * 1e3:.1f} | {ms_mamba_model / ms_model:.1f}x | {pct:.1f}% | "
                      f"{eager_mamba * 1e3:.1f} | {eager_edgemv * 1e3:.1f} |", flush=True)


if __name__ == "__main__":
    main()
