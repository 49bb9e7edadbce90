"""TensorRT 10.3's ONNX operator support (JetPack 6), kept as data in ``trt103_ops.json`` with its source.

The list was read from onnx-tensorrt's ``docs/operators.md`` (the support matrix) and the ``trt``-domain importers
of ``onnxOpImporters.cpp`` at the commit recorded in the file; the file also says why that release's list is
10.3's. :func:`check_op_types` compares a graph's op types with it.
"""

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Dict, Iterable, List, Tuple

__all__ = ["TRT103", "load_trt103", "check_op_types", "OpCheck"]


@dataclass(frozen=True)
class OpSupport:
    tensorrt: str
    opset_range: Tuple[int, int]
    supported: frozenset
    unsupported: frozenset
    trt_domain: frozenset
    restrictions: Dict[str, str]
    source: Dict[str, str]


@lru_cache(maxsize=1)
def load_trt103() -> OpSupport:
    data = json.loads(resources.files(__package__).joinpath("trt103_ops.json").read_text())
    return OpSupport(
        tensorrt=data["tensorrt"], opset_range=tuple(data["opset_range"]), supported=frozenset(data["supported"]),
        unsupported=frozenset(data["unsupported"]), trt_domain=frozenset(data["trt_domain"]),
        restrictions=dict(data["restrictions"]), source=dict(data["source"]),
    )


TRT103 = "TensorRT 10.3"


@dataclass
class OpCheck:
    """Result of comparing a graph's op types with the support list."""

    ok: bool
    opset: int
    opset_ok: bool
    unsupported: List[str] = field(default_factory=list)  # "domain:Op" or "Op"
    plugins: List[str] = field(default_factory=list)  # custom-domain ops that need a plugin library
    notes: List[str] = field(default_factory=list)  # restrictions of ops the graph uses that matter here

    def summary(self) -> str:
        lo, hi = load_trt103().opset_range
        parts = []
        if self.unsupported:
            parts.append("not in the list: " + ", ".join(self.unsupported))
        if self.plugins:
            parts.append("need a TensorRT plugin: " + ", ".join(self.plugins))
        if not self.opset_ok:
            parts.append(f"opset {self.opset} is outside 10.3's {lo}..{hi}")
        return "; ".join(parts) if parts else f"all op types supported (opset {self.opset})"


# Restrictions worth repeating when the graph uses the op (the others are about attributes we never emit).
_NOTE_OPS = ("QuantizeLinear", "DequantizeLinear", "Pad", "Slice", "Einsum", "CumSum", "Loop")


def check_op_types(op_types: Iterable[Tuple[str, str]], opset: int) -> OpCheck:
    """op_types: (domain, op_type) pairs; domain '' or 'ai.onnx' is the standard one."""
    table = load_trt103()
    lo, hi = table.opset_range
    check = OpCheck(ok=True, opset=opset, opset_ok=lo <= opset <= hi)
    for domain, op in sorted(set(op_types)):
        if domain in ("", "ai.onnx"):
            if op not in table.supported:
                check.unsupported.append(op)
            elif op in _NOTE_OPS and op in table.restrictions:
                check.notes.append(f"{op}: {table.restrictions[op]}")
        elif domain == "trt" and op in table.trt_domain:
            continue
        else:
            check.plugins.append(f"{domain}:{op}")
    check.ok = not check.unsupported and not check.plugins and check.opset_ok
    return check
