"""CUDA C++ selective-scan kernels for N = 8 side by side, for the benchmarks:

- ``lean``: the library's kernel (``edgemv/ops/cuda/selective_scan_n8.cu``, edgemv.ops.scan_cuda; 1, 2 or 4 lanes
  per channel), which 'auto' times beside the Triton kernels;
- ``staged`` (``bench/cuda/selective_scan_fwd.cu``, an experiment outside the library): blocks of 128 threads stage
  each chunk of 32 steps in shared memory and 1, 2 or 4 threads per channel scan it. Correct on an H200 (99/99
  cases) but 1.3-1.9x slower than the Triton kernels: Nsight Compute counted 2.2x their instructions
  (docs/benchmarks.md, "A CUDA C++ kernel").

Both are built with nvcc into the library's cache (edgemv.ops.scan_cuda.build) and launched on torch's current
stream. ``python bench/scan_variants.py --cuda`` times them beside the Triton kernels.
"""

import ctypes
import functools
import os

import torch

from edgemv.ops import scan_cuda as lib_cuda

__all__ = ["available", "selective_scan_cuda", "SPLITS", "KERNELS"]

STAGED_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda", "selective_scan_fwd.cu")
KERNELS = ("staged", "lean")
SPLITS = {"staged": (1, 2, 4), "lean": lib_cuda.LANES}  # threads per channel in the scan


@functools.lru_cache(maxsize=None)
def _staged_library(arch: str):
    nvcc = lib_cuda.nvcc()
    if nvcc is None:
        raise RuntimeError("the CUDA scan kernels need nvcc (set EDGEMV_NVCC or CUDA_HOME, or put nvcc on the PATH)")
    path = lib_cuda.build(nvcc, [f"-arch={arch}", "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC"],
                          STAGED_SOURCE, f"staged_{arch}")
    lib = ctypes.CDLL(path)
    lib_cuda.check_params(lib)
    lib.edgemv_scan_n8.restype = ctypes.c_int
    lib.edgemv_scan_n8.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    return lib


def available() -> bool:
    """True when a CUDA device and nvcc are there (the kernels themselves are built on first use)."""
    return torch.cuda.is_available() and lib_cuda.nvcc() is not None


def selective_scan_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, out=None,
                        kernel="staged", split=2, defines=()):
    """Same contract as :func:`edgemv.ops.selective_scan` for N = 8; CUDA tensors, any strides. ``defines``:
    ("NAME=VALUE", ...) for the lean kernel's build (its LEAN_* knobs; each set is its own library)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if split not in SPLITS[kernel]:
        raise ValueError(f"split must be one of {SPLITS[kernel]} for kernel {kernel!r}, got {split}")
    if kernel == "lean":
        return lib_cuda.selective_scan_cuda(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out=out,
                                            lanes=split, defines=defines)
    p, y, keep = lib_cuda.prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out)
    if y.numel() == 0:
        return y
    lib_cuda.launch(_staged_library(lib_cuda.arch(u.device)).edgemv_scan_n8, p, u, split)
    del keep
    return y
