"""The public functions: quantize a model with a recipe and a forward loop, and say where quantizers went.

Everything numerical is ModelOpt's: ``mtq.quantize`` inserts ``TensorQuantizer`` modules (fake quantization in
PyTorch, on the CPU too) and calibrates them; for entropy/percentile calibration ModelOpt's
``HistogramCalibrator`` collects the histograms and computes the ranges.
"""

import contextlib
import fnmatch
import io
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..errors import EdgemvError
from .config import Recipe, group_names, group_of, make_recipe

__all__ = ["QuantizeError", "quantize", "quantizer_report", "QuantizerReport", "check_patterns",
           "disable_all_quantizers", "quantizable_modules", "quiet_modelopt"]


class QuantizeError(EdgemvError):
    """A recipe or model that cannot be quantized (pattern matching nothing, missing ModelOpt...)."""


def _mtq():
    try:
        import modelopt.torch.quantization as mtq
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise QuantizeError(f"NVIDIA Model Optimizer is needed: pip install nvidia-modelopt ({exc})") from exc
    return mtq


def quantizable_modules(model: torch.nn.Module) -> List[str]:
    """Names of the modules ModelOpt would wrap with quantizers (its QuantModuleRegistry)."""
    from modelopt.torch.quantization.nn import QuantModuleRegistry

    return [name for name, m in model.named_modules() if name and type(m) in QuantModuleRegistry]


def check_patterns(model: torch.nn.Module, patterns: Sequence[str], option: str = "--exclude") -> None:
    """Fail on a pattern that matches no quantizable module name (a typo would otherwise be silent)."""
    names = quantizable_modules(model)
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            examples = ", ".join(n for n in names if "mixer" in n or "mlp" in n)[:160]
            raise QuantizeError(f"{option} {pattern!r} matches no quantizable module "
                                f"(module names look like: {examples}, ...)")


def quantize(model: torch.nn.Module, recipe: Optional[Recipe] = None,
             forward_loop: Optional[Callable[[torch.nn.Module], None]] = None) -> torch.nn.Module:
    """Quantize ``model`` in place with ModelOpt and return it.

    Args:
        model: a MambaVision model (eval mode; on the device the forward loop uses).
        recipe: what to quantize and how (default: ``make_recipe()``, INT8, max calibration).
        forward_loop: ``forward_loop(model)`` runs calibration batches through the model (see
            ``edgemv.data.make_forward_loop``). The quantization code never sees the data set.
    """
    mtq = _mtq()
    recipe = recipe or make_recipe()
    if forward_loop is None:
        raise QuantizeError("calibration needs a forward_loop (activation ranges come from data)")
    check_patterns(model, recipe.include, "--include")
    check_patterns(model, recipe.exclude, "--exclude")
    model.eval()
    cfg = recipe.to_modelopt()
    with quiet_modelopt():
        if recipe.calib_method == "max":
            return mtq.quantize(model, cfg, forward_loop)
        # Histogram methods: insert quantizers without calibrating, then run ModelOpt's calibrators: weights
        # keep MaxCalibrator (per-channel amax), activations use HistogramCalibrator (entropy / percentile).
        model = mtq.quantize(model, cfg, forward_loop=None)
        _histogram_calibrate(model, forward_loop, recipe)
    return model


@contextlib.contextmanager
def quiet_modelopt():
    """ModelOpt prints "Inserted N quantizers" on stdout and warns about packages edgemv does not use
    (transformers); our own report says more. Keep stdout for the command's results."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", message=".*transformers package.*")
        warnings.filterwarnings("ignore", message=".*Could not identify the device for TensorQuantizer.*")
        yield


def _histogram_calibrate(model, forward_loop, recipe: Recipe) -> None:
    from modelopt.torch.quantization.calib import HistogramCalibrator
    from modelopt.torch.quantization.model_calib import enable_stats_collection
    from modelopt.torch.quantization.nn import TensorQuantizer

    enable_stats_collection(model)
    with torch.no_grad():
        forward_loop(model)
    if recipe.calib_method == "percentile":
        kwargs = {"percentile": recipe.percentile}
    else:  # entropy: ModelOpt's search is a Python loop over candidate bins (~6 s per quantizer at stride 1)
        kwargs = {"stride": recipe.entropy_stride}
    for name, q in model.named_modules():
        if not isinstance(q, TensorQuantizer) or q._disabled:
            continue
        if q._calibrator is not None:
            if isinstance(q._calibrator, HistogramCalibrator):
                q.load_calib_amax(recipe.calib_method, **kwargs)
            else:
                q.load_calib_amax()
        q.enable_quant()
        q.disable_calib()


def disable_all_quantizers(model: torch.nn.Module) -> torch.nn.Module:
    """Switch every quantizer off (ModelOpt's ``disable_quantizer(model, '*')``): the FP32 model back."""
    _mtq().disable_quantizer(model, "*")
    return model


@dataclass
class QuantizerReport:
    """Where quantizers are enabled, per quantizable module."""

    quantized: Dict[str, List[str]] = field(default_factory=dict)  # module -> ["weight", "input"]
    high_precision: Dict[str, str] = field(default_factory=dict)  # module -> group (or "other")
    enabled_quantizers: int = 0
    disabled_quantizers: int = 0

    def groups(self) -> Dict[str, Dict[str, int]]:
        """Per group: how many modules quantized / kept in high precision."""
        out: Dict[str, Dict[str, int]] = {}
        for name in self.quantized:
            out.setdefault(group_of(name) or "other", {"quantized": 0, "high_precision": 0})["quantized"] += 1
        for name, group in self.high_precision.items():
            out.setdefault(group, {"quantized": 0, "high_precision": 0})["high_precision"] += 1
        order = {g: i for i, g in enumerate(group_names())}
        return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))

    def as_dict(self) -> dict:
        return {"enabled_quantizers": self.enabled_quantizers, "disabled_quantizers": self.disabled_quantizers,
                "modules_quantized": self.quantized, "modules_high_precision": self.high_precision,
                "groups": self.groups()}


def quantizer_report(model: torch.nn.Module) -> QuantizerReport:
    """Enumerate the TensorQuantizers ModelOpt inserted: which modules run quantized, which stayed FP."""
    from modelopt.torch.quantization.nn import TensorQuantizer

    report = QuantizerReport()
    per_module: Dict[str, List[str]] = {}
    for name, q in model.named_modules():
        if not isinstance(q, TensorQuantizer):
            continue
        module, _, kind = name.rpartition(".")
        per_module.setdefault(module, [])
        if q.is_enabled:
            report.enabled_quantizers += 1
            per_module[module].append(kind.replace("_quantizer", ""))
        else:
            report.disabled_quantizers += 1
    for module, kinds in per_module.items():
        if kinds:
            report.quantized[module] = sorted(kinds, reverse=True)  # weight, input, output
        else:
            report.high_precision[module] = group_of(module) or "other"
    return report
