"""How much accuracy a deployed model lost against FP32, where, and whether that is within budget.

Public surface::

    from edgemv.validate import validate, sweep, choose_exclusions, make_plan

    report = validate("edgemv-out/t-int8", data="imagenet/val", max_drop=0.5)   # ValidationReport
    report.passed, report.drop, report.agreement

Importing this package does not import modelopt, onnx, onnxruntime, tensorrt or matplotlib.
"""

from ..atomic import write_json_atomic
from .distributed import DistContext, setup as setup_distributed
from .evaluate import ValidateError, evaluate_pair, resolve_models, validate
from .metrics import Accuracy, Agreement, ImageStats
from .report import Budget, DataInfo, ModelInfo, ValidationReport
from .sensitivity import (EvalCache, GroupResult, SensitivityGroup, SensitivityReport, choose_exclusions, make_plan,
                          sensitivity_for_run, sensitivity_groups, sweep)

__all__ = [
    "validate", "resolve_models", "evaluate_pair", "ValidateError",
    "ValidationReport", "ModelInfo", "DataInfo", "Budget", "Accuracy", "Agreement", "ImageStats",
    "write_json_atomic", "DistContext", "setup_distributed",
    "sweep", "choose_exclusions", "make_plan", "sensitivity_groups", "sensitivity_for_run", "EvalCache", "SensitivityGroup",
    "GroupResult", "SensitivityReport",
]
