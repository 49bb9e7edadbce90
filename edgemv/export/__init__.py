"""ONNX export: Q/DQ graphs for TensorRT, simplified and checked (ONNX Runtime, TensorRT 10.3 op list,
TensorRT-RTX build). onnx, onnxruntime and tensorrt_rtx are imported inside the functions that use them."""

from .onnx_export import (DEFAULT_OPSET, ExportError, ExportReport, ExportSource, export_model, export_onnx,
                          load_source, save_onnx_atomic)

__all__ = ["export_model", "export_onnx", "load_source", "save_onnx_atomic", "ExportSource", "ExportReport",
           "ExportError", "DEFAULT_OPSET"]
