"""Image classification with a MambaVision model: files in, top-k classes out."""

from dataclasses import dataclass
from typing import List, Sequence

import torch

from .data import ImageBatches, discover_images, eval_transform, imagenet_class_names
from .errors import DataError

__all__ = ["Prediction", "classify_images"]


@dataclass
class Prediction:
    path: str
    top: List[tuple]  # (class index, class name, probability), best first


def classify_images(model, paths: Sequence[str], top_k: int = 5, batch_size: int = 8, device: str = "cpu"):
    """Top-k ImageNet classes for each readable image; returns (predictions, skipped [(path, reason)])."""
    from .data.sources import ImageSet

    items = []
    for p in paths:
        found = discover_images(p)
        items.extend(found.items)
    image_set = ImageSet(items=items, classes=None, kind="list")
    transform = eval_transform(model.pretrained_cfg)
    names = imagenet_class_names() if model.num_classes == 1000 else [str(i) for i in range(model.num_classes)]
    model = model.to(device)
    batches = ImageBatches(image_set, transform, batch_size=batch_size)
    predictions = []
    with torch.no_grad():
        for images, _, batch_paths in batches:
            probs = model(images.to(device)).float().softmax(-1)
            values, indices = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
            for path, v, i in zip(batch_paths, values.tolist(), indices.tolist()):
                predictions.append(Prediction(path, [(k, names[k], p) for k, p in zip(i, v)]))
    if not predictions:
        raise DataError("none of the images could be read")
    return predictions, batches.skipped
