"""How close a quantized model stays to its FP32 model on the same images (no labels needed)."""

from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["Fidelity", "collect_logits", "compare_logits", "per_image_agreement"]


@dataclass
class Fidelity:
    """Agreement of a model with its FP32 reference over ``images`` held-out images.

    top1_agreement: share of images where both pick the same class. top5_agreement: share where the FP32
    top-1 class is in the model's top 5. cosine: cosine similarity of the logit vectors (mean and worst).
    kl: KL(P_fp32 || P_model) of the softmax outputs in nats (mean and worst). max_abs_diff: the largest
    logit difference.
    """

    images: int
    top1_agreement: float
    top5_agreement: float
    cosine_mean: float
    cosine_min: float
    kl_mean: float
    kl_max: float
    max_abs_diff: float

    def as_dict(self) -> dict:
        return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in asdict(self).items()}


@torch.no_grad()
def collect_logits(model: torch.nn.Module, batches: Iterable, device="cpu") -> Tuple[torch.Tensor, List[str]]:
    """Run ``batches`` (``(images, labels, paths)`` tuples or tensors) through ``model``: (logits float32 on
    the CPU, paths)."""
    outs, paths = [], []
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    for batch in batches:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        outs.append(model(images.to(device=device, dtype=dtype)).float().cpu())
        if isinstance(batch, (tuple, list)) and len(batch) > 2:
            paths.extend(batch[2])
    if not outs:
        return torch.empty(0), paths
    return torch.cat(outs), paths


def per_image_agreement(reference: torch.Tensor, other: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per-image agreement of ``other`` with ``reference`` ((N, classes) each), in float64 so batch composition
    does not change the values: agree_top1, agree_top5 (bool), cosine, kl (nats, KL(P_ref || P_other)),
    max_abs_diff. Validation builds its per-image statistics on this too."""
    if reference.shape != other.shape:
        raise ValueError(f"logit shapes differ: {tuple(reference.shape)} vs {tuple(other.shape)}")
    ref, oth = reference.detach().double().cpu(), other.detach().double().cpu()
    k = min(5, ref.shape[-1])
    first = ref.argmax(-1)
    logp, logq = ref.log_softmax(-1), oth.log_softmax(-1)
    return {
        "agree_top1": oth.argmax(-1) == first,
        "agree_top5": (oth.topk(k, dim=-1).indices == first[:, None]).any(-1),
        "cosine": F.cosine_similarity(ref, oth, dim=-1),
        "kl": (logp.exp() * (logp - logq)).sum(-1).clamp_min(0),
        "max_abs_diff": (ref - oth).abs().amax(-1),
    }


def compare_logits(reference: torch.Tensor, other: torch.Tensor) -> Optional[Fidelity]:
    """Fidelity of ``other`` against ``reference`` ((N, classes) each); None for N = 0."""
    if reference.numel() == 0:
        return None
    v = per_image_agreement(reference, other)
    return Fidelity(images=int(reference.shape[0]), top1_agreement=v["agree_top1"].double().mean().item(),
                    top5_agreement=v["agree_top5"].double().mean().item(), cosine_mean=v["cosine"].mean().item(),
                    cosine_min=v["cosine"].min().item(), kl_mean=v["kl"].mean().item(), kl_max=v["kl"].max().item(),
                    max_abs_diff=v["max_abs_diff"].max().item())
