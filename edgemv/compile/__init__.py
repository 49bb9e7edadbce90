"""TensorRT: version shim, scan layers over a network definition, Torch-TensorRT converter.

Modules here import TensorRT inside functions, so importing the package needs no TensorRT."""
