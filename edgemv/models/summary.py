"""Numbers that describe a variant: parameters, multiply-accumulates, windows and scan lengths."""

import math
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch

from .variants import get_variant

__all__ = ["VariantSummary", "summarize_variant", "count_gmacs"]


@dataclass
class VariantSummary:
    name: str
    params_m: float
    gmacs: Optional[float]
    resolution: Tuple[int, int]
    windows: Tuple[int, int]  # window side in levels 2 and 3
    scan_lengths: Tuple[int, int]  # tokens per window (= scan length L) in levels 2 and 3
    windows_per_image: Tuple[int, int]
    crop_pct: float
    hub_id: str

    def as_dict(self):
        return asdict(self)


def count_gmacs(model, input_size) -> float:
    """Multiply-accumulates of one forward pass (convs, linears, attention), counted by torch's FlopCounterMode
    on the meta device, so nothing is allocated. The selective scan itself (~0.1% of T) is not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.empty(1, *input_size, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2e9


def summarize_variant(name: str, input_size=None, with_gmacs: bool = True) -> VariantSummary:
    from . import create_model

    spec = get_variant(name)
    size = tuple(input_size or spec.pretrained.input_size)
    with torch.device("meta"):
        model = create_model(spec.name)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    gmacs = count_gmacs(model, size) if with_gmacs else None
    h, w = size[1], size[2]
    ws = spec.arch.window_size[2:]
    # Levels 2 and 3 see the image at strides 16 and 32; windows are padded up to whole windows.
    maps = [(math.ceil(h / s), math.ceil(w / s)) for s in (16, 32)]
    counts = tuple(math.ceil(mh / k) * math.ceil(mw / k) for (mh, mw), k in zip(maps, ws))
    return VariantSummary(spec.name, round(params, 3), gmacs, (h, w), tuple(ws), tuple(k * k for k in ws), counts,
                          spec.pretrained.crop_pct, spec.pretrained.hub_id if spec.pretrained.hf_repo else "")
