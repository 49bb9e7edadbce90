"""Build the SelectiveScan TensorRT plugin library (``edgemv/ops/cuda/trt_scan_plugin.cu``) with nvcc.

The library implements IPluginV3 for TensorRT 10.x and 11.x and runs this package's CUDA scan kernels; it is what a
graph exported with ``edgemv export --scan plugin`` needs. It is compiled against TensorRT's headers
(``NvInferRuntime.h`` and its neighbours; a Jetson has them in ``/usr/include/aarch64-linux-gnu``, a desktop
TensorRT tarball in its ``include/``) and links no TensorRT library: TensorRT loads it
(``IPluginRegistry::loadLibrary``, trtexec ``--dynamicPlugins``) and finds the creator through its ``getCreators``
entry point.

Nothing here imports torch or TensorRT.
"""

import os
import re
import subprocess
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ..atomic import atomic_output, creation_mode
from ..errors import PluginBuildError
from ..toolchain import find_nvcc, split_compile_flags

__all__ = ["PLUGIN_SOURCE", "PluginBuild", "build_plugin", "find_tensorrt_include", "tensorrt_header_version",
           "nvcc_command"]

SOURCE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ops", "cuda")
PLUGIN_SOURCE = os.path.join(SOURCE_DIR, "trt_scan_plugin.cu")
DEFAULT_NAME = "libedgemv_scan_plugin.so"
# where TensorRT's headers usually are: Debian/JetPack packages (per architecture), a tarball unpacked to /usr/local
_SEARCHED = ("/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu", "/usr/include",
             "/usr/local/tensorrt/include", "/opt/tensorrt/include")
_HEADER = "NvInferRuntime.h"


@dataclass(frozen=True)
class PluginBuild:
    path: str  # the library written
    tensorrt_include: str
    tensorrt_version: Tuple[int, int, int]  # from the headers' NvInferVersion.h
    archs: Tuple[str, ...]
    command: Tuple[str, ...]  # the nvcc command line (writing to a temporary name)


def find_tensorrt_include(explicit: Optional[str] = None) -> str:
    """The folder holding TensorRT's ``NvInferRuntime.h``: ``explicit``, else ``$TENSORRT_INCLUDE``, else the usual
    system places. Raises PluginBuildError naming what was searched."""
    candidates = [explicit] if explicit else [os.environ.get("TENSORRT_INCLUDE")] + list(_SEARCHED)
    for folder in candidates:
        if folder and os.path.isfile(os.path.join(folder, _HEADER)):
            return os.path.abspath(folder)
    if explicit:
        raise PluginBuildError(f"{explicit}: no {_HEADER} there; pass the include folder of a TensorRT 10.x or 11.x "
                               "installation")
    raise PluginBuildError(f"TensorRT's headers ({_HEADER}) were not found in $TENSORRT_INCLUDE or "
                           f"{', '.join(_SEARCHED)}; pass --trt-include DIR (a TensorRT tarball's include/, or "
                           "/usr/include/aarch64-linux-gnu on a Jetson)")


def tensorrt_header_version(include_dir: str) -> Tuple[int, int, int]:
    """(major, minor, patch) from ``NvInferVersion.h`` in ``include_dir``. The plugin needs IPluginV3: 10.0 or
    newer."""
    path = os.path.join(include_dir, "NvInferVersion.h")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        raise PluginBuildError(f"cannot read {path}: {exc.strerror or exc}") from None
    numbers = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        # 10.x names them NV_TENSORRT_<PART> or TRT_<PART>_ENTERPRISE (the former then defined as the latter)
        match = (re.search(rf"#define\s+TRT_{part}_ENTERPRISE\s+(\d+)", text)
                 or re.search(rf"#define\s+NV_TENSORRT_{part}\s+(\d+)", text))
        if not match:
            raise PluginBuildError(f"{path}: no TensorRT {part.lower()} version found")
        numbers.append(int(match.group(1)))
    return tuple(numbers)


def _nvcc(explicit: Optional[str]) -> str:
    found = find_nvcc(explicit, extra=("/usr/local/cuda/bin/nvcc",))  # JetPack's, often not on the PATH
    if found is None:
        raise PluginBuildError("nvcc not found: install the CUDA toolkit (JetPack has it in /usr/local/cuda/bin) or "
                               "set EDGEMV_NVCC / CUDA_HOME")
    return found


def _arch_flags(archs: Sequence[str]) -> list:
    """nvcc flags for each GPU architecture ('sm_87', '87', 'native'): SASS for each, and PTX of the newest so a
    newer GPU can still run it."""
    flags, numbers = [], []
    for arch in archs:
        arch = arch.strip().lower()
        if arch == "native":
            flags.append("-arch=native")
            continue
        digits = arch[3:] if arch.startswith("sm_") else arch
        if not re.fullmatch(r"\d{2,3}[a-z]?", digits):
            raise PluginBuildError(f"GPU architecture {arch!r}: write it as sm_87, sm_89, ... or native")
        numbers.append(digits)
        flags.append(f"-gencode=arch=compute_{digits},code=sm_{digits}")
    if numbers:
        newest = max(numbers, key=lambda d: int(re.match(r"\d+", d).group()))
        flags.append(f"-gencode=arch=compute_{newest},code=compute_{newest}")
    return flags


def _check_native(compiler: str) -> None:
    """nvcc's -arch=native on a machine without a GPU falls back to its default arch with only a warning; a dry run
    (no compiling) shows the warning at once."""
    res = subprocess.run([compiler, "-arch=native", "--dryrun", "-c", PLUGIN_SOURCE, "-o", os.devnull],
                         capture_output=True, text=True)
    if "Cannot find valid GPU" in res.stderr:
        raise PluginBuildError("no GPU found for arch 'native': name the target GPU instead (sm_87 for Jetson Orin, "
                               "sm_86, sm_89, sm_90, ...)")


def nvcc_command(out: str, include_dir: str, archs: Sequence[str], nvcc: str) -> list:
    """The nvcc command line that builds the plugin into ``out`` (raises PluginBuildError for a malformed arch)."""
    return [nvcc, *_arch_flags(archs), *split_compile_flags(nvcc), "-O3", "-std=c++17", "-shared",
            "-Xcompiler", "-fPIC",
            "-Xcompiler", "-Wno-deprecated-declarations", "-Xptxas", "-w",  # TensorRT's own deprecations; see docs
            "-I", include_dir, "-I", SOURCE_DIR, "-o", out, PLUGIN_SOURCE]


def build_plugin(out: str = DEFAULT_NAME, trt_include: Optional[str] = None, archs: Sequence[str] = ("native",),
                 nvcc: Optional[str] = None) -> PluginBuild:
    """Compile the plugin library to ``out`` (written under a temporary name, then renamed) for ``archs``.

    ``archs``: GPU architectures ('sm_87' for Jetson Orin, 'sm_86', 'sm_89', 'sm_90', ...; 'native' for the GPUs of
    this machine, which needs one). Raises PluginBuildError with nvcc's last lines when the build fails.
    """
    include_dir = find_tensorrt_include(trt_include)
    version = tensorrt_header_version(include_dir)
    if version < (10, 0, 0):
        raise PluginBuildError(f"TensorRT {'.'.join(map(str, version))} in {include_dir}: the plugin is an IPluginV3, "
                               "which needs TensorRT 10.0 or newer")
    if not archs:
        raise PluginBuildError("no GPU architecture given")
    _arch_flags(archs)  # a malformed arch fails here, before any file exists
    compiler = _nvcc(nvcc)
    out = os.path.abspath(os.fspath(out))
    if "native" in [a.strip().lower() for a in archs]:
        _check_native(compiler)
    with atomic_output(out, creation_mode(0o777)) as tmp:
        command = nvcc_command(tmp, include_dir, archs, compiler)
        res = subprocess.run(command, capture_output=True, text=True)
        if res.returncode != 0:
            lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()][-12:]
            raise PluginBuildError("nvcc failed building the SelectiveScan plugin:\n" + "\n".join(lines))
    shown = tuple(a if a != tmp else out for a in command)
    return PluginBuild(out, include_dir, version, tuple(archs), shown)
