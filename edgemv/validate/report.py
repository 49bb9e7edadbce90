"""What `edgemv validate` found, as dataclasses: the JSON report and the rows of the printed table."""

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from ..atomic import write_json_atomic
from .metrics import Accuracy, Agreement

__all__ = ["ModelInfo", "DataInfo", "Budget", "ValidationReport", "SCHEMA"]

SCHEMA = "edgemv.validate/1"


@dataclass
class ModelInfo:
    """One side of the comparison."""

    description: str  # one line: "INT8 run edgemv-out/t-int8 (PyTorch, ModelOpt fake quantization)"
    kind: str  # 'torch', 'torch-quantized', 'onnx', 'tensorrt'
    path: Optional[str] = None
    precision: Optional[str] = None
    backend: Optional[str] = None  # 'pytorch cpu', 'onnxruntime CPUExecutionProvider', 'tensorrt 10.3' ...
    variant: Optional[str] = None


@dataclass
class DataInfo:
    source: str
    kind: str  # folder, imagefolder, list, tensor, run-held-out
    labelled: bool
    selected: int  # images chosen (after --limit)
    used: int  # images both models saw
    skipped: List[Dict[str, str]] = field(default_factory=list)
    input_size: Optional[List[int]] = None
    limit: Optional[int] = None
    seed: int = 0
    label_space: Optional[str] = None  # 'imagenet synsets', 'class indices', 'sorted folder names'


@dataclass
class Budget:
    """The gate: ``value`` (percentage points) against ``max_drop``; ``passed`` decides the exit code."""

    metric: str  # 'top1_drop' with labels, 'top1_disagreement' without
    value: float
    max_drop: Optional[float]
    passed: bool

    def line(self) -> str:
        what = "top-1 drop" if self.metric == "top1_drop" else "top-1 disagreement with FP32 (no labels)"
        if self.max_drop is None:
            return f"{what} {self.value:.2f} points (no budget)"
        verdict = "within" if self.passed else "exceeds"
        return f"{what} {self.value:.2f} points {verdict} the budget --max-drop {self.max_drop:g}"


@dataclass
class ValidationReport:
    """The whole result; ``as_dict()`` is the JSON report (schema ``edgemv.validate/1``)."""

    candidate: ModelInfo
    reference: ModelInfo
    data: DataInfo
    agreement: Optional[Agreement]
    budget: Budget
    reference_accuracy: Optional[Accuracy] = None
    candidate_accuracy: Optional[Accuracy] = None
    drop: Optional[Dict[str, float]] = None  # {'top1': points, 'top5': points}
    world_size: int = 1
    device: str = "cpu"
    seconds: Dict[str, float] = field(default_factory=dict)
    versions: Dict[str, Optional[str]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    command: Optional[str] = None
    created: Optional[str] = None

    @property
    def passed(self) -> bool:
        return self.budget.passed

    def as_dict(self) -> dict:
        d = {"schema": SCHEMA, "passed": self.passed}
        for key, value in asdict(self).items():
            d[key] = value
        for key in ("agreement", "reference_accuracy", "candidate_accuracy"):
            obj = getattr(self, key)
            d[key] = obj.as_dict() if obj is not None else None
        if self.drop is not None:
            d["drop"] = {k: round(v, 6) for k, v in self.drop.items()}
        d["budget"]["value"] = round(self.budget.value, 6)
        return d

    def write(self, path) -> str:
        return write_json_atomic(path, self.as_dict())

    def rows(self) -> List[tuple]:
        """(metric, reference, candidate, difference) rows for the printed table."""
        rows = []
        ra, ca = self.reference_accuracy, self.candidate_accuracy

        def diff(points):  # candidate minus FP32, without a "-0.00"
            value = round(-points, 2)
            return f"{value + 0.0:+.2f} pts"

        if ra is not None and ca is not None:
            rows.append(("top-1 accuracy", f"{ra.top1:.2f}%", f"{ca.top1:.2f}%", diff(self.drop["top1"])))
            rows.append(("top-5 accuracy", f"{ra.top5:.2f}%", f"{ca.top5:.2f}%", diff(self.drop["top5"])))
        a = self.agreement
        if a is not None:
            rows.append(("top-1 agreement", "", f"{a.top1:.2f}%", ""))
            rows.append(("top-5 agreement", "", f"{a.top5:.2f}%", ""))
            rows.append(("logit cosine", "", f"{a.cosine_mean:.5f} mean", f"{a.cosine_min:.5f} min"))
            rows.append(("KL(fp32||model)", "", f"{a.kl_mean:.3g} mean", f"{a.kl_max:.3g} max"))
            rows.append(("max |logit diff|", "", f"{a.max_abs_diff:.3g}", ""))
        return rows
