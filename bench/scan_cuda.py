"""An experiment: a CUDA C++ selective-scan kernel (``bench/cuda/selective_scan_fwd.cu``, N = 8), built with nvcc.

It stages each chunk of 32 steps in shared memory (coalesced loads, softplus once per element, B and C read as
broadcast float2) so the scan itself reads no global memory; it was correct (99/99 cases, the issue's whole set
included) but 1.3-1.9x slower than the Triton kernels on an H200 (docs/benchmarks.md, "A CUDA C++ kernel"), so it
is not in the library. Kept to be re-timed when it changes: ``python bench/scan_variants.py`` times it beside the
Triton kernels where nvcc is found.

The source is compiled for the current GPU's architecture into a shared library in the cache directory
(``$EDGEMV_CACHE_DIR`` or ``~/.cache/edgemv``, ``cuda/``), named by a hash of the source, the nvcc version and the
architecture, written under a temporary name and renamed, so concurrent processes and interrupted builds never
leave a broken library. It is loaded with ctypes and launched on torch's current stream (so it also runs inside
CUDA graphs). It needs nvcc (``$EDGEMV_NVCC``, ``$CUDA_HOME/bin/nvcc`` or ``nvcc`` on the PATH); without it
:func:`available` is False.
"""

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile

import torch

__all__ = ["available", "selective_scan_cuda", "SPLITS"]

SOURCE = os.path.join(os.path.dirname(__file__), "cuda", "selective_scan_fwd.cu")
SPLITS = (1, 2, 4)  # threads per channel in the scan
_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


class _Params(ctypes.Structure):
    # mirrors struct Params in the .cu file (checked against edgemv_scan_params_size() at load)
    _fields_ = ([(name, ctypes.c_void_p) for name in ("u", "dt", "B", "C", "z", "A", "D", "bias", "y")]
                + [(name, ctypes.c_int64) for name in (
                    "dim", "length", "su_b", "su_d", "su_l", "sdt_b", "sdt_d", "sdt_l", "sA_d", "sA_n",
                    "sB_b", "sB_n", "sB_l", "sC_b", "sC_n", "sC_l", "sz_b", "sz_d", "sz_l", "sy_b", "sy_d", "sy_l")]
                + [(name, ctypes.c_int) for name in ("has_d", "has_z", "has_bias", "softplus")])


def _nvcc():
    for cand in (os.environ.get("EDGEMV_NVCC"),
                 os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc") if os.environ.get("CUDA_HOME") else None,
                 shutil.which("nvcc")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _cache_dir():
    root = os.environ.get("EDGEMV_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "edgemv")
    return os.path.join(root, "cuda-experiment")


@functools.lru_cache(maxsize=None)
def _library(arch: str):
    nvcc = _nvcc()
    if nvcc is None:
        raise RuntimeError("the CUDA scan kernel needs nvcc (set EDGEMV_NVCC or CUDA_HOME, or put nvcc on the PATH)")
    with open(SOURCE, "rb") as f:
        src = f.read()
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True).stdout
    tag = hashlib.sha256(src + version.encode() + arch.encode()).hexdigest()[:16]
    path = os.path.join(_cache_dir(), f"selective_scan_fwd_{arch}_{tag}.so")
    if not os.path.exists(path):
        os.makedirs(_cache_dir(), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=_cache_dir(), suffix=".so.tmp")
        os.close(fd)
        try:
            res = subprocess.run([nvcc, f"-arch={arch}", "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC",
                                  "-o", tmp, SOURCE], capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"nvcc failed to build the CUDA scan kernel: {res.stderr.strip()[-2000:]}")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    lib = ctypes.CDLL(path)
    lib.edgemv_scan_n8.restype = ctypes.c_int
    lib.edgemv_scan_n8.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_void_p]
    lib.edgemv_scan_params_size.restype = ctypes.c_int
    if lib.edgemv_scan_params_size() != ctypes.sizeof(_Params):
        raise RuntimeError("the CUDA scan kernel's parameter block does not match edgemv.ops.scan_cuda._Params")
    return lib


def _arch(device) -> str:
    major, minor = torch.cuda.get_device_capability(device)
    return f"sm_{major}{minor}"


def available() -> bool:
    """True when a CUDA device and nvcc are there (the kernel itself is built on first use)."""
    return torch.cuda.is_available() and _nvcc() is not None


def selective_scan_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, out=None,
                        split=2):
    """Same contract as :func:`edgemv.ops.selective_scan` for N = 8; CUDA tensors, any strides."""
    batch, dim, length = u.shape
    if A.shape[1] != 8:
        raise ValueError(f"the CUDA scan kernel is written for N=8, got N={A.shape[1]}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split}")
    if u.dtype not in _DTYPES or any(t.dtype != u.dtype for t in (delta, B, C) + ((z,) if z is not None else ())):
        raise ValueError("u, delta, B, C (and z) must share one dtype: float32, float16 or bfloat16")
    y = out if out is not None else torch.empty((batch, dim, length), device=u.device, dtype=u.dtype)
    if y.numel() == 0:
        return y
    lib = _library(_arch(u.device))
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
    stream = torch.cuda.current_stream(u.device).cuda_stream
    with torch.cuda.device(u.device):
        rc = lib.edgemv_scan_n8(ctypes.addressof(p), _DTYPES[u.dtype], int(split), batch, ctypes.c_void_p(stream))
    if rc != 0:
        raise RuntimeError(f"the CUDA scan kernel failed to launch (cudaError {rc})")
    return y
