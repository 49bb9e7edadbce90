"""TensorRT-RTX's build of a graph with plugin nodes (``export --scan plugin --plugin LIB``), in a child process.

Why a child: to add a plugin layer, TensorRT-RTX's ONNX parser opens its own library by a name the pip wheel lacks,
and only LD_LIBRARY_PATH at a process's start can supply it (``trt_compat.unversioned_library_dir``); and a fault
inside TensorRT-RTX or a plugin library ends the process it happens in, which must not be the CLI's.

The child loads each library into TensorRT-RTX's plugin registry (``edgemv.runtime``'s loader, as ``validate`` does
for engines) and runs :func:`edgemv.export.checks.trt_rtx_build`; its result comes back as one JSON line.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

from ..errors import EdgemvError

__all__ = ["build_with_plugins"]

def build_with_plugins(path, precision: str, input_name: str, input_shape: Sequence[int], dynamic_batch: bool,
                       plugins: Sequence[str], max_batch: int = 8, targets: Optional[Sequence[str]] = None,
                       engine_out=None, timeout: float = 3600.0):
    """:func:`~edgemv.export.checks.trt_rtx_build` with ``plugins`` loaded, in a child process; a CheckResult."""
    from ..compile import trt_compat as tc
    from .checks import TRT_RTX_BUILD as NAME, CheckResult

    try:
        info = tc.import_tensorrt(prefer=("tensorrt_rtx",))
    except EdgemvError as exc:
        return CheckResult(NAME, "skip", str(exc))
    job = {"path": os.path.abspath(os.fspath(path)), "precision": precision, "input_name": input_name,
           "input_shape": [int(s) for s in input_shape], "dynamic_batch": bool(dynamic_batch),
           "max_batch": int(max_batch), "targets": list(targets) if targets else None,
           "engine_out": os.path.abspath(os.fspath(engine_out)) if engine_out is not None else None,
           "plugins": [os.path.abspath(os.fspath(p)) for p in plugins]}
    label = f"{info.module_name} {info.version}"
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgemv-rtx-") as folder:
        env = dict(os.environ)
        extra = tc.unversioned_library_dir(info, folder)
        if extra:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (extra, env.get("LD_LIBRARY_PATH")) if p)
        try:
            res = subprocess.run([sys.executable, "-m", __name__, json.dumps(job)], capture_output=True, text=True,
                                 env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return CheckResult(NAME, "fail", f"{label} did not finish the build in {timeout:.0f} s",
                               time.perf_counter() - t)
    seconds = time.perf_counter() - t
    lines = res.stdout.strip().splitlines()
    if res.returncode == 0 and lines:
        try:
            return CheckResult(**json.loads(lines[-1]))
        except (ValueError, TypeError):
            pass
    how = f"signal {-res.returncode}" if res.returncode < 0 else f"exit status {res.returncode}"
    said = [line for line in res.stderr.strip().splitlines() if line.strip()]
    why = f": {said[-1][:300]}" if said else ""
    return CheckResult(NAME, "fail", f"{label} ended the build process ({how}) with the plugin library "
                       f"{', '.join(os.path.basename(p) for p in plugins)} loaded{why}", seconds)


def _child(job) -> dict:
    from ..compile import trt_compat as tc
    from ..runtime.onnx_runner import RuntimeBackendError
    from ..runtime.tensorrt_runner import load_plugin_library
    from .checks import TRT_RTX_BUILD as NAME, CheckResult, trt_rtx_build

    info = tc.import_tensorrt(prefer=("tensorrt_rtx",))
    names = ", ".join(os.path.basename(p) for p in job["plugins"])
    for lib in job["plugins"]:
        try:
            load_plugin_library(info.module, lib)
        except RuntimeBackendError as exc:
            return dataclasses.asdict(CheckResult(NAME, "fail", str(exc)))
    res = trt_rtx_build(job["path"], job["precision"], job["input_name"], job["input_shape"], job["dynamic_batch"],
                        max_batch=job["max_batch"], targets=job["targets"], engine_out=job["engine_out"])
    res.detail += f"; plugin library {names}"
    res.data["plugins"] = job["plugins"]
    return dataclasses.asdict(res)


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1])), default=str))
