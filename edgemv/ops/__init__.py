"""The selective scan: one entry point, one registered custom op, several implementations.

Implementations (``impl=`` or the process-wide setting):
- 'ref': sequential loop over L (the obviously-right form; slow).
- 'chunked': a parallel form in plain tensor ops (chunks of c steps; c x c decay matrices).
- 'doubling': a log-depth parallel form in plain tensor ops (Hillis-Steele doubling over L); the one ONNX export
  traces by default (faster in ONNX Runtime, by measurement: see :data:`DEFAULT_DECOMPOSITION`).
- 'triton': fused forward CUDA kernel (needs triton and a CUDA tensor).
- 'auto' (default): 'triton' on CUDA when triton is installed, else 'chunked' on CUDA; 'ref' on the CPU (faster
  there than 'chunked', by measurement: see edgemv/ops/op.py).

ONNX (TorchScript exporter): wrap the export in :func:`onnx_export_context`, see docs/scan.md. Its 'decomposed'
form traces one of the plain-op forms in :data:`DECOMPOSITIONS` ('doubling' or 'chunked').
Nothing here imports triton, onnx or tensorrt at import time.
"""

import contextlib
import os
import sys

import torch

from .inputs import check_scan_inputs
from .op import IMPLS, resolve_impl, run_impl, selective_scan_op, triton_available
from .scan_chunked import default_chunk, selective_scan_chunked
from .scan_doubling import selective_scan_doubling
from .scan_ref import selective_scan_ref
from ..errors import ScanImplError

__all__ = [
    "selective_scan",
    "selective_scan_ref",
    "selective_scan_chunked",
    "selective_scan_doubling",
    "default_chunk",
    "set_scan_impl",
    "get_scan_impl",
    "scan_impl",
    "scan_onnx_form",
    "get_scan_onnx_form",
    "scan_decomposition",
    "get_scan_decomposition",
    "set_scan_decomposition",
    "onnx_export_context",
    "decompositions",
    "resolve_impl",
    "triton_available",
    "IMPLS",
    "ONNX_FORMS",
    "DECOMPOSITIONS",
    "DEFAULT_DECOMPOSITION",
]

ONNX_FORMS = ("decomposed", "plugin")
# The plain-op forms the 'decomposed' ONNX form can trace. Default by measurement (docs/scan.md, "Which plain-op form
# ONNX gets"; 2-core CPU, onnxruntime 1.32, 2026-11-27): one scan alone in ONNX Runtime, 2 threads, median of 100
# interleaved runs, 'doubling' took 3.0 ms at 160 channels x L=196 and 1.8 ms at 320 x 49 where 'chunked' took 7.4 to
# 14 ms and 4.8 to 10.7 ms; in MambaVision-T's whole FP32 graph it saved about a quarter of the time (docs/benchmarks.md).
DECOMPOSITIONS = ("doubling", "chunked")
DEFAULT_DECOMPOSITION = "doubling"

_settings = {"impl": os.environ.get("EDGEMV_SCAN_IMPL", "auto"), "onnx_form": "decomposed",
             "decomposition": DEFAULT_DECOMPOSITION}
if _settings["impl"] not in IMPLS:
    raise ScanImplError(f"EDGEMV_SCAN_IMPL={_settings['impl']!r}: choose one of {IMPLS}")

# each setting's allowed values and what the error message calls it
_CHOICES = {"impl": (IMPLS, "scan implementation"), "onnx_form": (ONNX_FORMS, "ONNX form"),
            "decomposition": (DECOMPOSITIONS, "scan decomposition")}
# the plain-op function of each decomposition
_DECOMPOSED = {"doubling": selective_scan_doubling, "chunked": selective_scan_chunked}


def _check(key: str, value: str) -> None:
    choices, what = _CHOICES[key]
    if value not in choices:
        raise ScanImplError(f"unknown {what} {value!r}; choose one of {choices}")


def set_scan_impl(name: str) -> None:
    """Set the process-wide implementation used when ``impl`` is not given: 'ref', 'chunked', 'doubling', 'triton'
    or 'auto'."""
    _check("impl", name)
    _settings["impl"] = name


def get_scan_impl() -> str:
    """The process-wide implementation name (default 'auto', or the EDGEMV_SCAN_IMPL environment variable)."""
    return _settings["impl"]


@contextlib.contextmanager
def _override(key: str, value: str):
    # the process-wide setting ``key`` is ``value`` inside the block, and what it was before after it
    previous = _settings[key]
    _settings[key] = value
    try:
        yield value
    finally:
        _settings[key] = previous


def scan_impl(name: str):
    """Use implementation ``name`` inside the block, then restore the previous setting."""
    _check("impl", name)
    return _override("impl", name)


def get_scan_onnx_form() -> str:
    return _settings["onnx_form"]


def scan_onnx_form(form: str):
    """Choose how the scan appears in a TorchScript ONNX export inside the block: 'decomposed' or 'plugin'."""
    _check("onnx_form", form)
    if form == "plugin":
        from .onnx_forms import register_plugin_symbolic

        register_plugin_symbolic()
    return _override("onnx_form", form)


def set_scan_decomposition(name: str) -> None:
    """Set which plain-op form ('doubling' or 'chunked') the 'decomposed' ONNX form and :func:`decompositions` use."""
    _check("decomposition", name)
    _settings["decomposition"] = name


def get_scan_decomposition() -> str:
    """The plain-op form the 'decomposed' ONNX form traces (default :data:`DEFAULT_DECOMPOSITION`)."""
    return _settings["decomposition"]


def scan_decomposition(name: str):
    """Use plain-op form ``name`` ('doubling' or 'chunked') for decomposed exports inside the block."""
    _check("decomposition", name)
    return _override("decomposition", name)


@contextlib.contextmanager
def onnx_export_context(form: str = "decomposed", decomposition: str = None):
    """Everything the exporter needs for ``form``; yields extra keyword arguments for ``torch.onnx.export``.

    ``decomposition`` ('doubling' or 'chunked'; None: the current setting) picks the plain-op form that the
    'decomposed' form traces.

    Example::

        with edgemv.ops.onnx_export_context("plugin") as extra:
            torch.onnx.export(model, x, "m.onnx", dynamo=False, opset_version=17, **extra)
    """
    chosen = scan_decomposition(decomposition) if decomposition is not None else contextlib.nullcontext()
    with scan_onnx_form(form), chosen:
        if form == "plugin":
            from .onnx_forms import DOMAIN

            yield {"custom_opsets": {DOMAIN: 1}}
        else:
            yield {}


def _exporting_decomposed() -> bool:
    if _settings["onnx_form"] != "decomposed" or torch.compiler.is_compiling():
        return False
    onnx_mod = sys.modules.get("torch.onnx")  # not imported: certainly not exporting
    return onnx_mod is not None and onnx_mod.is_in_onnx_export()


_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def _plain_eager_call(tensors) -> bool:
    """True when the custom op's machinery has nothing to do for this call: nothing traces, compiles or exports it
    (no dynamo, no TorchScript tracer, no dispatch or function mode such as fake tensors, no tensor subclass or
    functorch wrapper) and no gradient is recorded. Such a call runs its implementation directly: the op's dispatch
    (its Python autograd and aliasing layers) cost 55-65 us of host time per call on the device machine, more than
    the kernel's 23 us at MambaVision-T's batch 128 (docs/benchmarks.md, "Host cost per call")."""
    if (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch._C._len_torch_dispatch_stack()
            or torch._C._is_torch_function_mode_enabled()):
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if t is not None and (type(t) not in _PLAIN_TYPES or (grad and t.requires_grad)):
            return False
    return not torch._C._functorch.is_functorch_wrapped_tensor(tensors[0])


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, impl=None):
    """Selective scan with mamba_ssm's argument order, shapes and semantics.

    Args:
        u: (batch, D, L) input.
        delta: (batch, D, L) step sizes before bias/softplus.
        A: (D, N) state matrix (negative).
        B, C: (batch, N, L) input and output projections, shared across channels.
        D: optional (D,) skip weight.
        z: optional (batch, D, L) gate, applied as ``y * silu(z)``.
        delta_bias: optional (D,) added to delta before softplus.
        delta_softplus: apply softplus to delta.
        impl: 'ref', 'chunked', 'doubling', 'triton' or 'auto'; None means the process-wide setting
            (:func:`set_scan_impl`).
    Returns:
        (batch, D, L) in u's dtype, accumulated in float32.

    Calls the custom op ``torch.ops.edgemv.selective_scan`` (one node under torch.export / torch.compile), except
    inside a TorchScript ONNX export in the 'decomposed' form, where a plain-op form (:func:`get_scan_decomposition`)
    is traced instead, and in a plain eager call with no gradient to record, which runs the implementation the op
    would run, without the op's dispatch (the same result, less host time per call).
    """
    name = get_scan_impl() if impl is None else impl
    _check("impl", name)
    if _exporting_decomposed():
        check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
        return _DECOMPOSED[_settings["decomposition"]](u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if _plain_eager_call((u, delta, A, B, C, D, z, delta_bias)):
        return run_impl(name, u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus))
    return selective_scan_op(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), name)


def decompositions(name: str = None):
    """A decomposition table mapping the custom op to a plain-op form (``name``: 'doubling' or 'chunked'; None: the
    current :func:`get_scan_decomposition`).

    For ``ExportedProgram.run_decompositions(edgemv.ops.decompositions())`` (e.g. before the dynamo ONNX exporter
    or a backend that should see plain ops instead of the custom op).
    """
    name = name or get_scan_decomposition()
    _check("decomposition", name)
    fn = _DECOMPOSED[name]
    extra = {"cache_constants": False} if name == "chunked" else {}

    def _decomposed(u, delta, A, B, C, D, z, delta_bias, delta_softplus, impl):
        return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, **extra)

    return {torch.ops.edgemv.selective_scan.default: _decomposed}
