"""Experiments: CUDA C++ selective-scan kernels for N = 8 (``bench/cuda/``), built with nvcc and loaded with ctypes.

- ``staged`` (``selective_scan_fwd.cu``): blocks of 128 threads stage each chunk of 32 steps in shared memory
  (coalesced loads, softplus once per element) and 1, 2 or 4 threads per channel scan it. Correct on an H200
  (99/99 cases, the issue's whole set included) but 1.3-1.9x slower than the Triton kernels: Nsight Compute
  counted 2.2x their instructions (docs/benchmarks.md, "A CUDA C++ kernel").
- ``lean`` (``selective_scan_lean.cu``): the same idea with one-warp blocks (1 or 2 lanes per channel), 32-bit
  running offsets, bounds checks only in the last chunk/block and the next chunk's loads in flight during the scan.
  Its sm_90 SASS (nvcc 13.0, no spills) executes about 103 instructions per channel-step in a full chunk with one
  lane per channel (640 one-warp blocks at 160 x 196 batch 128) and about 142 with two (1280), against the Triton
  kernels' ~120 measured on 384 warps. Written after the last GPU run of its session: tested on the CPU only
  (``cpu_emulation.h``, tests/test_scan_cuda_emulation.py), **not yet run or timed on a GPU**.

Neither is in the library. Each source is compiled for the current GPU into ``$EDGEMV_CACHE_DIR`` (default
``~/.cache/edgemv``, as the library's tuning file) ``/cuda-experiment/``, named by a hash of the source, the
headers of ``bench/cuda/`` (``scan_common.cuh``: what both kernels share), the compiler version and the flags (the
architecture among them), written under a temporary name and renamed. Launches go on torch's current stream. nvcc
comes from ``$EDGEMV_NVCC``, ``$CUDA_HOME/bin/nvcc`` or the PATH. ``python bench/scan_variants.py --cuda`` times
both beside the Triton kernels.
"""

import ctypes
import functools
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile

import torch

from edgemv.ops import scan_tune

__all__ = ["available", "cxx", "selective_scan_cuda", "selective_scan_lean_cpu", "SPLITS", "KERNELS"]

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda")
KERNELS = {"staged": "selective_scan_fwd.cu", "lean": "selective_scan_lean.cu"}
SPLITS = {"staged": (1, 2, 4), "lean": (1, 2, 4)}  # threads per channel in the scan
_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


class _Params(ctypes.Structure):
    # mirrors struct Params in the .cu files (checked against edgemv_scan_params_size() at load)
    _fields_ = ([(name, ctypes.c_void_p) for name in ("u", "dt", "B", "C", "z", "A", "D", "bias", "y")]
                + [(name, ctypes.c_int64) for name in (
                    "dim", "length", "su_b", "su_d", "su_l", "sdt_b", "sdt_d", "sdt_l", "sA_d", "sA_n",
                    "sB_b", "sB_n", "sB_l", "sC_b", "sC_n", "sC_l", "sz_b", "sz_d", "sz_l", "sy_b", "sy_d", "sy_l")]
                + [(name, ctypes.c_int) for name in ("has_d", "has_z", "has_bias", "softplus")])


def _cache_dir():
    # next to the library's tuning file ($EDGEMV_CACHE_DIR or ~/.cache/edgemv)
    return os.path.join(os.path.dirname(scan_tune.tuning_file()), "cuda-experiment")


def _nvcc():
    for cand in (os.environ.get("EDGEMV_NVCC"),
                 os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc") if os.environ.get("CUDA_HOME") else None,
                 shutil.which("nvcc")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _build(compiler, flags, source, name):
    """Compile ``source`` into a shared library in the cache (once per source, headers, compiler and flags); its
    path. Every header of bench/cuda goes into the hash, whichever the source includes."""
    with open(source, "rb") as f:
        src = f.read()
    for header in sorted(glob.glob(os.path.join(HERE, "*.h")) + glob.glob(os.path.join(HERE, "*.cuh"))):
        with open(header, "rb") as f:
            src += os.path.basename(header).encode() + f.read()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    tag = hashlib.sha256(src + version.encode() + " ".join(flags).encode()).hexdigest()[:16]
    path = os.path.join(_cache_dir(), f"{name}_{tag}.so")
    if not os.path.exists(path):
        os.makedirs(_cache_dir(), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=_cache_dir(), suffix=".so.tmp")
        os.close(fd)
        try:
            res = subprocess.run([compiler, *flags, "-o", tmp, source], capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"{os.path.basename(compiler)} failed on {os.path.basename(source)}: "
                                   f"{res.stderr.strip()[-2000:]}")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def _check_params(lib):
    lib.edgemv_scan_params_size.restype = ctypes.c_int
    if lib.edgemv_scan_params_size() != ctypes.sizeof(_Params):
        raise RuntimeError("the CUDA scan kernel's parameter block does not match bench/scan_cuda._Params")


@functools.lru_cache(maxsize=None)
def _library(arch: str, kernel: str, defines: tuple = ()):
    nvcc = _nvcc()
    if nvcc is None:
        raise RuntimeError("the CUDA scan kernels need nvcc (set EDGEMV_NVCC or CUDA_HOME, or put nvcc on the PATH)")
    path = _build(nvcc, [f"-arch={arch}", "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC"]
                  + [f"-D{d}" for d in defines], os.path.join(HERE, KERNELS[kernel]), f"{kernel}_{arch}")
    lib = ctypes.CDLL(path)
    _check_params(lib)
    if kernel == "staged":
        lib.edgemv_scan_n8.restype = ctypes.c_int
        lib.edgemv_scan_n8.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    else:
        lib.edgemv_scan_n8_lean.restype = ctypes.c_int
        lib.edgemv_scan_n8_lean.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                            ctypes.c_void_p]
    return lib


def cxx():
    """The C++ compiler of the CPU emulation: ``$CXX`` or g++ on the PATH (None when neither)."""
    return os.environ.get("CXX") or shutil.which("g++")


@functools.lru_cache(maxsize=None)
def _cpu_library():
    cxx_ = cxx()
    if cxx_ is None:
        raise RuntimeError("the CPU emulation of the lean kernel needs g++ (C++20)")
    path = _build(cxx_, ["-std=c++20", "-O1", "-pthread", "-fPIC", "-shared", "-DEDGEMV_CPU_EMULATION", "-x", "c++",
                         "-I", HERE], os.path.join(HERE, KERNELS["lean"]), "lean_cpu")
    lib = ctypes.CDLL(path)
    _check_params(lib)
    lib.edgemv_scan_n8_lean_cpu.restype = ctypes.c_int
    lib.edgemv_scan_n8_lean_cpu.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    return lib


def available() -> bool:
    """True when a CUDA device and nvcc are there (the kernels themselves are built on first use)."""
    return torch.cuda.is_available() and _nvcc() is not None


def _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out, int32_offsets):
    """(params, y, tensors to keep alive) for one call; checks what the kernels assume."""
    batch, dim, length = u.shape
    if A.shape[1] != 8:
        raise ValueError(f"the CUDA scan kernels are written for N=8, got N={A.shape[1]}")
    if u.dtype not in _DTYPES or any(t.dtype != u.dtype for t in (delta, B, C) + ((z,) if z is not None else ())):
        raise ValueError("u, delta, B, C (and z) must share one dtype: float32, float16 or bfloat16")
    y = out if out is not None else torch.empty((batch, dim, length), device=u.device, dtype=u.dtype)
    if int32_offsets:  # the lean kernel's per-lane offsets within one (32, 32) chunk are 32-bit (batch: 64-bit)
        for t in (u, delta, B, C, y) + ((z,) if z is not None else ()):
            if min(t.stride()) < 0 or max(t.stride()[1:]) * 64 >= 2**31:
                raise ValueError("the lean kernel needs non-negative channel/state/step strides below 2**25")
    A32 = A.float()
    D32 = D.float().contiguous() if D is not None else None
    bias32 = delta_bias.float().contiguous() if delta_bias is not None else None
    sz = z.stride() if z is not None else (0, 0, 0)
    p = _Params(u.data_ptr(), delta.data_ptr(), B.data_ptr(), C.data_ptr(), z.data_ptr() if z is not None else 0,
                A32.data_ptr(), D32.data_ptr() if D32 is not None else 0,
                bias32.data_ptr() if bias32 is not None else 0, y.data_ptr(),
                dim, length, *u.stride(), *delta.stride(), *A32.stride(), *B.stride(), *C.stride(), *sz,
                *y.stride(), int(D is not None), int(z is not None), int(delta_bias is not None),
                int(bool(delta_softplus)))
    return p, y, (A32, D32, bias32)


def selective_scan_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, out=None,
                        kernel="staged", split=2, defines=()):
    """Same contract as :func:`edgemv.ops.selective_scan` for N = 8; CUDA tensors, any strides. ``defines``:
    ("NAME=VALUE", ...) for the build (the lean kernel's LEAN_* knobs; each set is its own library)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {tuple(KERNELS)}, got {kernel!r}")
    if split not in SPLITS[kernel]:
        raise ValueError(f"split must be one of {SPLITS[kernel]} for kernel {kernel!r}, got {split}")
    p, y, keep = _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out, kernel == "lean")
    if y.numel() == 0:
        return y
    major, minor = torch.cuda.get_device_capability(u.device)
    lib = _library(f"sm_{major}{minor}", kernel, tuple(defines))
    stream = ctypes.c_void_p(torch.cuda.current_stream(u.device).cuda_stream)
    with torch.cuda.device(u.device):
        if kernel == "staged":
            rc = lib.edgemv_scan_n8(ctypes.addressof(p), _DTYPES[u.dtype], int(split), u.shape[0], stream)
        else:
            rc = lib.edgemv_scan_n8_lean(ctypes.addressof(p), _DTYPES[u.dtype], int(split), u.shape[0], stream)
    if rc != 0:
        raise RuntimeError(f"the CUDA scan kernel failed to launch (cudaError {rc})")
    del keep
    return y


def selective_scan_lean_cpu(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, out=None,
                            split=1):
    """The lean kernel's source compiled with g++ and run on the CPU (float32 CPU tensors): a test of its logic."""
    if u.dtype != torch.float32 or u.device.type != "cpu":
        raise ValueError("the CPU emulation takes float32 CPU tensors")
    if split not in SPLITS["lean"]:
        raise ValueError(f"split must be one of {SPLITS['lean']}, got {split}")
    p, y, keep = _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out, True)
    if y.numel():
        _cpu_library().edgemv_scan_n8_lean_cpu(ctypes.addressof(p), int(split), u.shape[0])
    del keep
    return y
