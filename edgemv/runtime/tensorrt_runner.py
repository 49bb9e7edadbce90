"""A serialized TensorRT engine as a function: float32 images (N, 3, H, W) in, logits (N, classes) out.

Written against the TensorRT 10.x Python API (named I/O tensors: ``num_io_tensors``, ``get_tensor_name``,
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``), which TensorRT 11 keeps. Device memory and the
stream come from cuda-python (``cuda.bindings.runtime``, or the older ``cuda.cudart``) or, when that is missing,
from PyTorch's CUDA allocator.

Not exercised in this repository's CI: no machine it runs on has standard TensorRT (see docs/validate.md).
"""

import ctypes
import importlib.util
import os
from typing import List, Optional, Sequence

import numpy as np

from .onnx_runner import RuntimeBackendError

__all__ = ["TensorRTRunner", "tensorrt_available", "load_plugin_library", "ENGINE_SUFFIXES"]

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def tensorrt_available() -> bool:
    """Whether the standard ``tensorrt`` Python package can be imported (without importing it)."""
    return importlib.util.find_spec("tensorrt") is not None


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.8
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            return None
    return cudart


class _CudaPython:
    """Device buffers and a stream through cuda-python."""

    def __init__(self, cudart):
        self.rt = cudart
        self.stream = self._check(cudart.cudaStreamCreate())

    def _check(self, result):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise RuntimeBackendError(f"CUDA error {err}")
        return rest[0] if rest else None

    def alloc(self, nbytes: int) -> int:
        return int(self._check(self.rt.cudaMalloc(max(1, nbytes))))

    def free(self, ptr: int) -> None:
        self.rt.cudaFree(ptr)

    def h2d(self, dst: int, src: np.ndarray) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, self.stream))

    def d2h(self, dst: np.ndarray, src: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, self.stream))

    def stream_handle(self) -> int:
        return int(self.stream)

    def sync(self) -> None:
        self._check(self.rt.cudaStreamSynchronize(self.stream))


class _TorchCuda:
    """The same through PyTorch (when cuda-python is not installed)."""

    def __init__(self):
        import torch

        if not torch.cuda.is_available():
            raise RuntimeBackendError("TensorRT engines need a CUDA device; PyTorch sees none")
        self.torch = torch
        self.stream = torch.cuda.Stream()
        self.buffers = {}

    def alloc(self, nbytes: int) -> int:
        buf = self.torch.empty(max(1, nbytes), dtype=self.torch.uint8, device="cuda")
        self.buffers[buf.data_ptr()] = buf
        return buf.data_ptr()

    def free(self, ptr: int) -> None:
        self.buffers.pop(ptr, None)

    def _view(self, ptr: int, nbytes: int):
        return self.buffers[ptr][:nbytes]

    def h2d(self, dst: int, src: np.ndarray) -> None:
        with self.torch.cuda.stream(self.stream):
            host = self.torch.from_numpy(src.view(np.uint8).reshape(-1))
            self._view(dst, src.nbytes).copy_(host, non_blocking=False)

    def d2h(self, dst: np.ndarray, src: int) -> None:
        with self.torch.cuda.stream(self.stream):
            self.stream.synchronize()
            dst.view(np.uint8).reshape(-1)[:] = self._view(src, dst.nbytes).cpu().numpy()

    def stream_handle(self) -> int:
        return self.stream.cuda_stream

    def sync(self) -> None:
        self.stream.synchronize()


def load_plugin_library(trt, path) -> None:
    """Make a plugin library's creators known to TensorRT's registry before an engine that uses them is deserialized.

    ``trt`` is the TensorRT module (``tensorrt``, or ``tensorrt_rtx``). A library with the entry points
    ``IPluginRegistry::loadLibrary`` looks up (``getCreators``: edgemv's SelectiveScan plugin, `edgemv plugin`) goes
    through ``load_library``; one that registers its creators when it is loaded (``REGISTER_TENSORRT_PLUGIN``), or
    one loaded already, is loaded with dlopen.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise RuntimeBackendError(f"plugin library {path} not found")
    registry = trt.get_plugin_registry()
    if hasattr(registry, "load_library"):  # TensorRT 10.0+
        try:
            if registry.load_library(path) is not None:
                return
        except Exception:  # noqa: BLE001 - no getCreators, or already registered: the dlopen below
            pass
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise RuntimeBackendError(f"cannot load plugin library {path}: {exc}") from None


class TensorRTRunner:
    """Deserialize and run one engine (one input, one output), batch by batch.

    Args:
        path: the serialized engine (``.engine``/``.plan``/``.trt``), built on this GPU with this TensorRT version.
        plugins: shared libraries to load before deserializing (e.g. the selective-scan plugin).
        name: how reports name the model (default: the file name).

    An engine with a dynamic batch dimension takes up to its optimization profile's maximum per call; larger
    inputs are split, a smaller static batch is zero-padded.
    """

    def __init__(self, path, plugins: Sequence[str] = (), name: Optional[str] = None):
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise RuntimeBackendError("running a TensorRT engine needs the tensorrt Python package "
                                      "(JetPack ships it; on x86 pip install tensorrt)") from exc
        self.trt = trt
        self.path = os.fspath(path)
        self.name = name or os.path.basename(self.path)
        logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(logger, "")
        for lib in plugins:
            load_plugin_library(trt, lib)
        with open(self.path, "rb") as f:
            data = f.read()
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise RuntimeBackendError(f"TensorRT cannot deserialize {self.name}: built for another GPU or TensorRT "
                                      f"version ({trt.__version__} here), or a plugin library is missing")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) < 1:
            raise RuntimeBackendError(f"{self.name}: expected one input and an output, found {inputs} / {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        shape = list(self.engine.get_tensor_shape(self.input_name))
        self.input_shape = shape
        if shape[0] == -1:
            self.max_batch = int(self.engine.get_tensor_profile_shape(self.input_name, 0)[2][0])
            self.static_batch = None
        else:
            self.max_batch = self.static_batch = int(shape[0])
        cudart = _cudart()
        self.cuda = _CudaPython(cudart) if cudart is not None else _TorchCuda()
        self._buffers: List[int] = []
        self._capacity = 0

    @property
    def input_hw(self):
        hw = self.input_shape[2:4]
        return hw if len(hw) == 2 and all(s > 0 for s in hw) else None

    def _ensure(self, in_bytes: int, out_bytes: int) -> None:
        if self._buffers and self._capacity >= max(in_bytes, out_bytes):
            return
        for ptr in self._buffers:
            self.cuda.free(ptr)
        self._capacity = max(in_bytes, out_bytes)
        self._buffers = [self.cuda.alloc(self._capacity), self.cuda.alloc(self._capacity)]

    def _run(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if self.static_batch is not None and n < self.static_batch:
            x = np.concatenate([x, np.zeros((self.static_batch - n,) + x.shape[1:], dtype=x.dtype)])
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        if self.static_batch is None:
            self.context.set_input_shape(self.input_name, tuple(x.shape))
        out_shape = tuple(self.context.get_tensor_shape(self.output_name))
        out = np.empty(out_shape, dtype=self.output_dtype)
        self._ensure(x.nbytes, out.nbytes)
        d_in, d_out = self._buffers
        self.cuda.h2d(d_in, x)
        self.context.set_tensor_address(self.input_name, d_in)
        self.context.set_tensor_address(self.output_name, d_out)
        if not self.context.execute_async_v3(self.cuda.stream_handle()):
            raise RuntimeBackendError(f"TensorRT failed to run {self.name}")
        self.cuda.d2h(out, d_out)
        self.cuda.sync()
        return out.reshape(out.shape[0], -1)[:n].astype(np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float -> (N, classes) float32."""
        step = self.max_batch
        if images.shape[0] <= step:
            return self._run(images)
        return np.concatenate([self._run(images[i:i + step]) for i in range(0, images.shape[0], step)])

    def __del__(self):
        for ptr in getattr(self, "_buffers", []):
            try:
                self.cuda.free(ptr)
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass
