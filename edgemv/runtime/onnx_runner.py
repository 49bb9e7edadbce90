"""An ONNX model as a function: float32 images (N, 3, H, W) in, logits (N, classes) out, through ONNX Runtime."""

import os
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import EdgemvError

__all__ = ["OnnxRunner", "RuntimeBackendError"]


class RuntimeBackendError(EdgemvError):
    """A runtime backend (ONNX Runtime, TensorRT) that is missing or refuses a model."""


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class OnnxRunner:
    """Run one ONNX model with ONNX Runtime.

    Args:
        model: a path to a ``.onnx`` file (external data beside it is found by ONNX Runtime) or serialized bytes.
        device: 'cpu' or 'cuda' (CUDAExecutionProvider when this onnxruntime has it, else an error).
        threads: intra-op threads (0: ONNX Runtime's default).
        name: how reports name the model (default: the file name).

    A model exported with a fixed batch size is run in chunks of that size (the last chunk zero-padded and the
    padding dropped), so any number of images can be passed.
    """

    def __init__(self, model: Union[str, os.PathLike, bytes], device: str = "cpu", threads: int = 0,
                 name: Optional[str] = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeBackendError("ONNX Runtime is needed to run .onnx files: pip install onnxruntime") from exc
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = int(threads)
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeBackendError("--device cuda: this onnxruntime has no CUDAExecutionProvider "
                                          "(install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        source = model if isinstance(model, bytes) else os.fspath(model)
        self.name = name or ("<bytes>" if isinstance(model, bytes) else os.path.basename(source))
        try:
            self.session = ort.InferenceSession(source, sess_options=opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph/NotImplemented types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeBackendError(f"ONNX Runtime cannot load {self.name}: {first[:300]}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise RuntimeBackendError(f"{self.name} has {len(inputs)} inputs; an image classifier has one")
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.input_dtype = _ORT_TYPES.get(inputs[0].type, np.float32)
        self.output_name = self.session.get_outputs()[0].name
        batch = self.input_shape[0] if self.input_shape else None
        self.static_batch = batch if isinstance(batch, int) and batch > 0 else None
        self.providers = self.session.get_providers()

    @property
    def input_hw(self) -> Optional[Sequence[int]]:
        """(H, W) when the graph fixes them, else None."""
        hw = self.input_shape[2:4]
        return hw if len(hw) == 2 and all(isinstance(s, int) for s in hw) else None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float -> (N, classes) float32."""
        x = np.ascontiguousarray(images, dtype=self.input_dtype)
        if self.static_batch is None or x.shape[0] == self.static_batch:
            return self._run(x)
        step = self.static_batch
        outs = []
        for start in range(0, x.shape[0], step):
            chunk = x[start:start + step]
            n = chunk.shape[0]
            if n < step:
                chunk = np.concatenate([chunk, np.zeros((step - n,) + chunk.shape[1:], dtype=chunk.dtype)])
            outs.append(self._run(chunk)[:n])
        return np.concatenate(outs)

    def _run(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: x})[0]
        return np.asarray(out, dtype=np.float32).reshape(x.shape[0], -1)
