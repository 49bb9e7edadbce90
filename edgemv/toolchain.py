"""Finding nvcc, and the flags every nvcc build of this package's CUDA sources shares (the scan kernel's, the TensorRT
plugin's). Imports nothing heavy: `edgemv plugin` runs without torch."""

import functools
import os
import shutil
import subprocess
from typing import Optional, Sequence

__all__ = ["find_nvcc", "split_compile_flags"]


def find_nvcc(explicit: Optional[str] = None, extra: Sequence[str] = ()) -> Optional[str]:
    """Path of nvcc: ``explicit``, ``$EDGEMV_NVCC``, ``$CUDA_HOME/bin/nvcc``, the PATH, then ``extra`` places; None
    when none is an executable file."""
    for cand in (explicit, os.environ.get("EDGEMV_NVCC"),
                 os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc") if os.environ.get("CUDA_HOME") else None,
                 shutil.which("nvcc"), *extra):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def split_compile_flags(compiler: str) -> tuple:
    """("--split-compile=0",) where this nvcc has the option (its optimizer then runs on every CPU core: the scan
    kernel's 45 instantiations built in 19 s instead of 32 s on 2 cores) and ``EDGEMV_NVCC_SPLIT`` is not 0; else
    ()."""
    if os.environ.get("EDGEMV_NVCC_SPLIT", "1") == "0":
        return ()
    return ("--split-compile=0",) if _has_split_compile(compiler) else ()


@functools.lru_cache(maxsize=None)
def _has_split_compile(compiler: str) -> bool:  # asked once per nvcc
    try:
        listed = subprocess.run([compiler, "--help"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "--split-compile" in listed
