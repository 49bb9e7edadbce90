"""Per-image comparison of a model with its FP32 reference, and the numbers reduced from it.

Only a few numbers per image are kept (correctness flags, agreement flags, cosine, KL, largest logit difference),
never the logits: 50,000 images cost about 3 MB whatever the number of classes. Every value carries the image's
index in the evaluation set, so per-rank results of a data-parallel run merge into exactly the arrays (and the
sums, taken in index order) a single process computes.
"""

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..quantize.fidelity import per_image_agreement

__all__ = ["Accuracy", "Agreement", "ImageStats", "compare_batch", "accuracy_drop_points"]

_FIELDS = ("index", "ref_top1", "ref_top5", "cand_top1", "cand_top5", "agree_top1", "agree_top5", "cosine", "kl",
           "max_abs_diff")


@dataclass
class Accuracy:
    """Share of images whose label is the model's first class (top-1) or among its first five (top-5)."""

    images: int
    top1: float  # percent
    top5: float  # percent
    correct_top1: int
    correct_top5: int

    def as_dict(self) -> dict:
        return _rounded(asdict(self))


@dataclass
class Agreement:
    """How closely the candidate's outputs follow the FP32 reference's on the same images (labels not needed).

    top1: percent of images where both pick the same first class. top5: percent of images where the reference's
    first class is among the candidate's first five. cosine_*: cosine similarity of the two logit vectors.
    kl_*: KL(P_ref || P_cand) of the softmax outputs, in nats. max_abs_diff: the largest logit difference seen.
    """

    images: int
    top1: float
    top5: float
    cosine_mean: float
    cosine_min: float
    kl_mean: float
    kl_max: float
    max_abs_diff: float

    def as_dict(self) -> dict:
        return _rounded(asdict(self))


def _rounded(d: dict) -> dict:
    return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in d.items()}


def accuracy_drop_points(reference: Accuracy, candidate: Accuracy) -> Dict[str, float]:
    """Reference minus candidate, in percentage points (positive: the candidate lost accuracy)."""
    return {"top1": reference.top1 - candidate.top1, "top5": reference.top5 - candidate.top5}


@torch.no_grad()
def compare_batch(ref_logits: torch.Tensor, cand_logits: torch.Tensor, labels: Optional[torch.Tensor],
                  indices: Sequence[int]) -> Dict[str, np.ndarray]:
    """Per-image values for one batch; computed in float64 so batch composition does not change them."""
    if ref_logits.shape != cand_logits.shape:
        raise ValueError(f"the models disagree on the output shape: reference {tuple(ref_logits.shape)}, "
                         f"candidate {tuple(cand_logits.shape)}")
    ref, cand = ref_logits.detach().double().cpu(), cand_logits.detach().double().cpu()
    out = {"index": np.asarray(indices, dtype=np.int64)}
    out.update({key: value.numpy() for key, value in per_image_agreement(ref, cand).items()})
    if labels is not None:
        k = min(5, ref.shape[-1])
        lab = labels.cpu().long()[:, None]
        for name, logits in (("ref", ref), ("cand", cand)):
            out[f"{name}_top1"] = (logits.argmax(-1)[:, None] == lab).any(-1).numpy()
            out[f"{name}_top5"] = (logits.topk(k, dim=-1).indices == lab).any(-1).numpy()
    return out


class ImageStats:
    """The per-image values of an evaluation, appended batch by batch and merged across processes."""

    def __init__(self):
        self._parts: List[Dict[str, np.ndarray]] = []

    def add(self, part: Dict[str, np.ndarray]) -> None:
        self._parts.append(part)

    def state(self) -> Dict[str, np.ndarray]:
        """All values so far as arrays sorted by image index (what a rank sends to rank 0)."""
        if not self._parts:
            return {"index": np.zeros(0, np.int64)}
        keys = [k for k in _FIELDS if all(k in p for p in self._parts)]
        cat = {k: np.concatenate([p[k] for p in self._parts]) for k in keys}
        order = np.argsort(cat["index"], kind="stable")
        return {k: v[order] for k, v in cat.items()}

    @classmethod
    def merge(cls, states: Sequence[Dict[str, np.ndarray]]) -> "ImageStats":
        merged = cls()
        for s in states:
            if len(s.get("index", ())):
                merged.add(s)
        return merged

    @property
    def images(self) -> int:
        return int(sum(len(p["index"]) for p in self._parts))

    @property
    def labelled(self) -> bool:
        return bool(self._parts) and all("ref_top1" in p for p in self._parts)

    def accuracy(self, which: str) -> Optional[Accuracy]:
        """'ref' or 'cand' accuracy against the labels, None without labels."""
        if not self.labelled:
            return None
        s = self.state()
        n = len(s["index"])
        c1, c5 = int(s[f"{which}_top1"].sum()), int(s[f"{which}_top5"].sum())
        return Accuracy(images=n, top1=100.0 * c1 / n, top5=100.0 * c5 / n, correct_top1=c1, correct_top5=c5)

    def agreement(self) -> Optional[Agreement]:
        s = self.state()
        n = len(s["index"])
        if n == 0:
            return None
        return Agreement(
            images=n, top1=100.0 * float(s["agree_top1"].sum()) / n, top5=100.0 * float(s["agree_top5"].sum()) / n,
            cosine_mean=float(np.sum(s["cosine"]) / n), cosine_min=float(s["cosine"].min()),
            kl_mean=float(np.sum(s["kl"]) / n), kl_max=float(s["kl"].max()),
            max_abs_diff=float(s["max_abs_diff"].max()),
        )
