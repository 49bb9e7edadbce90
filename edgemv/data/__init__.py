"""Data for calibration and evaluation: the variant's evaluation transform, image sources, batches, forward loops.

Light to import: PIL, numpy and torch only (no modelopt, onnx or tensorrt).
"""

from .calib import default_calib_dir
from .imagenet import imagenet_class_names, imagenet_synsets
from .loader import ImageBatches, make_forward_loop
from .sources import ImageSet, discover_images
from .transforms import eval_transform

__all__ = [
    "eval_transform",
    "discover_images",
    "ImageSet",
    "ImageBatches",
    "make_forward_loop",
    "imagenet_class_names",
    "imagenet_synsets",
    "default_calib_dir",
]
