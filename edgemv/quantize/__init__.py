"""Post-training quantization of MambaVision with NVIDIA Model Optimizer (INT8, FP8).

Public surface::

    from edgemv.quantize import make_recipe, quantize, load_quantized, load_fp32_reference, run_quantize

    recipe = make_recipe("int8", calib_method="max", exclude=["*.mixer.out_proj"])
    model = quantize(model, recipe, forward_loop)        # mtq.quantize underneath
    q = load_quantized("edgemv-out/t-int8")              # rebuild + mto.restore
    fp32 = load_fp32_reference("edgemv-out/t-int8")      # same run, every quantizer off

Importing this package does not import modelopt; the functions do.
"""

from .artifacts import (INFO_FILE, MODEL_FILE, RunFolderError, load_fp32_reference, load_quantized,
                        read_run_info, rebuild_architecture, resolve_run, run_folder_holding,
                        run_folder_of)
from .config import CALIB_METHODS, GROUPS, HIGH_PRECISION, PRECISIONS, Group, Recipe, group_of, make_recipe
from .fidelity import Fidelity, collect_logits, compare_logits
from .model_quant import QuantizeError, disable_all_quantizers, quantize, quantizer_report
from .pipeline import QuantizeResult, run_quantize

__all__ = [
    "make_recipe", "Recipe", "Group", "GROUPS", "HIGH_PRECISION", "PRECISIONS", "CALIB_METHODS", "group_of",
    "quantize", "quantizer_report", "disable_all_quantizers", "QuantizeError",
    "load_quantized", "load_fp32_reference", "read_run_info", "rebuild_architecture", "resolve_run", "run_folder_of",
    "run_folder_holding", "RunFolderError",
    "MODEL_FILE", "INFO_FILE",
    "Fidelity", "collect_logits", "compare_logits",
    "run_quantize", "QuantizeResult",
]
