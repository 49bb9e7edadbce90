"""The registered custom op ``edgemv::selective_scan`` and the implementations behind it.

torch.export and torch.compile see one opaque node per scan (its fake implementation gives the output's shape,
dtype and strides); eager calls dispatch on ``impl``. Gradients, where asked for, come from the chunked form.
"""

import functools
from typing import Optional

import torch
from torch import Tensor

from .inputs import check_scan_inputs
from .scan_chunked import selective_scan_chunked
from .scan_doubling import selective_scan_doubling
from .scan_ref import selective_scan_ref
from ..errors import ScanImplError

__all__ = ["IMPLS", "triton_available", "resolve_impl", "run_impl", "selective_scan_op"]

IMPLS = ("ref", "chunked", "doubling", "triton", "auto")


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    """True when triton imports and CUDA is usable (never raises)."""
    try:
        import triton  # noqa: F401
    except Exception:
        return False
    return torch.cuda.is_available()


# CPU choice for 'auto', hard-wired from a measurement (docs/scan.md, "Which implementation 'auto' takes";
# `python bench/scan.py --cpu`, 2-core CPU, torch 2.13, 2026-11-27 12:30 UTC, quiet machine, min of 9 runs): 'ref'
# was fastest at MambaVision shapes at every batch but a tie at 320x49 batch 1 (160x196: ref 5.3 ms, doubling 7.7,
# best chunked 14.8 at batch 1; 46 / 293 ms at batch 32), and 3-10x ahead of 'doubling' from batch 8 on; the
# plain-op forms do log2(L) or c times the arithmetic of the recurrence, which the CPU pays in full. They exist for
# export. So 'auto' on the CPU is 'ref'.
_CPU_AUTO = "ref"


def resolve_impl(impl: str, device: torch.device) -> str:
    """The concrete implementation ('ref', 'chunked', 'doubling', 'triton') that ``impl`` means on ``device``."""
    if impl not in IMPLS:
        raise ScanImplError(f"unknown scan implementation {impl!r}; choose one of {IMPLS}")
    if impl != "auto":
        return impl
    if device.type == "cuda":
        return "triton" if triton_available() else "chunked"
    return _CPU_AUTO


def run_impl(impl: str, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Run one concrete implementation (no custom op around it), after :func:`check_scan_inputs`."""
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    name = resolve_impl(impl, u.device)
    if name == "ref":
        y = selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    elif name == "chunked":
        y = selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    elif name == "doubling":
        y = selective_scan_doubling(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    else:
        if u.device.type != "cuda":
            raise ScanImplError("scan implementation 'triton' needs a CUDA device; "
                                "on the CPU use auto, ref, chunked or doubling")
        if not triton_available():
            raise ScanImplError("scan implementation 'triton' needs the triton package (pip install triton)")
        from .scan_triton import selective_scan_triton

        y = selective_scan_triton(
            u, delta, A, B, C,
            None if D is None else D.contiguous(), z,
            None if delta_bias is None else delta_bias.contiguous(), delta_softplus, check=False,
        )
    return y.contiguous()


@torch.library.custom_op("edgemv::selective_scan", mutates_args=())
def selective_scan_op(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                      z: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool, impl: str) -> Tensor:
    """y (batch, D, L) in u's dtype; see :func:`edgemv.ops.selective_scan`."""
    return run_impl(impl, u, delta, A, B, C, D, z, delta_bias, delta_softplus)


@selective_scan_op.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus, impl):
    torch._check(u.dim() == 3, lambda: "u must be (batch, D, L)")
    return u.new_empty(u.shape)


def _setup_context(ctx, inputs, output):
    u, delta, A, B, C, D, z, delta_bias, delta_softplus, impl = inputs
    ctx.delta_softplus = delta_softplus
    ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias)


def _backward(ctx, grad):
    saved = ctx.saved_tensors
    needs = ctx.needs_input_grad[:8]
    with torch.enable_grad():
        leaves = [None if t is None else t.detach().requires_grad_(bool(n)) for t, n in zip(saved, needs)]
        y = selective_scan_chunked(*leaves, delta_softplus=ctx.delta_softplus)
        wanted = [t for t, n in zip(leaves, needs) if t is not None and n]
        grads = iter(torch.autograd.grad(y, wanted, grad) if wanted else ())
    out = [next(grads) if (t is not None and n) else None for t, n in zip(leaves, needs)]
    return (*out, None, None)


selective_scan_op.register_autograd(_backward, setup_context=_setup_context)
