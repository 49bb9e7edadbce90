"""Run exported models outside PyTorch: ONNX Runtime sessions and TensorRT engines.

Light by design (this package ships to a Jetson): numpy and the backend's own Python package, imported when a
runner is built, never at import time. Nothing here imports torch, modelopt or onnx.
"""

from .onnx_runner import OnnxRunner
from .tensorrt_runner import TensorRTRunner, tensorrt_available

__all__ = ["OnnxRunner", "TensorRTRunner", "tensorrt_available", "RuntimeBackendError"]

from .onnx_runner import RuntimeBackendError  # noqa: E402
