"""edgemv: MambaVision from a PyTorch checkpoint to validated INT8/FP8 TensorRT engines."""

__version__ = "0.1.0"

__all__ = ["__version__"]
