"""Fused forward selective scan for CUDA, written in Triton.

One program owns one sequence (batch row) and ``BLOCK_D`` channels, and walks the sequence in tiles of ``BLOCK_L``
steps. Each tile is read once (u, delta as (BLOCK_D, BLOCK_L); B, C as (N, BLOCK_L)), the decays
``exp(delta * A)`` and inputs ``delta * B * u`` are formed in registers, the linear recurrence inside the tile is an
associative scan over pairs (decay, input), the state carried in from the previous tile is added, and y is
written once. The state (BLOCK_D, N) lives in registers for the whole sequence. Arithmetic is float32 whatever the
input dtype; any strides are accepted (the model passes transposed views), so no copies are made.

This module imports triton at import time: import it only through :func:`available` / :func:`selective_scan_triton`
callers that have checked for it (``edgemv.ops`` does).
"""

import torch
import triton
import triton.language as tl

try:  # precise log1p for softplus of very negative inputs (lg2.approx loses them)
    from triton.language.extra import libdevice as _libdevice
except ImportError:  # pragma: no cover - older triton layouts
    from triton.language.extra.cuda import libdevice as _libdevice

__all__ = ["selective_scan_triton", "pick_config"]

_LOG2E = 1.4426950408889634


@triton.jit
def _combine(a_prev, b_prev, a_next, b_next):
    # (a_prev, b_prev) is applied first: h -> a_next * (a_prev * h + b_prev) + b_next
    return a_prev * a_next, b_prev * a_next + b_next


@triton.jit
def _scan_fwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, y_ptr,
    dim, length,
    su_b, su_d, su_l,
    sdt_b, sdt_d, sdt_l,
    sA_d, sA_n,
    sB_b, sB_n, sB_l,
    sC_b, sC_n, sC_l,
    sz_b, sz_d, sz_l,
    sy_b, sy_d, sy_l,
    N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_L: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, N)
    dmask = offs_d < dim

    # exp(x) = exp2(x * log2 e): fold the constant into A once.
    a2 = tl.load(A_ptr + offs_d[:, None] * sA_d + offs_n[None, :] * sA_n, mask=dmask[:, None], other=0.0)
    a2 = a2.to(tl.float32) * 1.4426950408889634
    if HAS_D:
        dskip = tl.load(D_ptr + offs_d, mask=dmask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        dbias = tl.load(bias_ptr + offs_d, mask=dmask, other=0.0).to(tl.float32)

    u_base = u_ptr + pid_b * su_b + offs_d[:, None] * su_d
    dt_base = dt_ptr + pid_b * sdt_b + offs_d[:, None] * sdt_d
    y_base = y_ptr + pid_b * sy_b + offs_d[:, None] * sy_d
    B_base = B_ptr + pid_b * sB_b + offs_n[:, None] * sB_n
    C_base = C_ptr + pid_b * sC_b + offs_n[:, None] * sC_n
    if HAS_Z:
        z_base = z_ptr + pid_b * sz_b + offs_d[:, None] * sz_d

    h = tl.zeros((BLOCK_D, N), dtype=tl.float32)
    last = tl.arange(0, BLOCK_L) == BLOCK_L - 1
    for l0 in range(0, length, BLOCK_L):
        offs_l = l0 + tl.arange(0, BLOCK_L)
        lmask = offs_l < length
        m2 = dmask[:, None] & lmask[None, :]
        u = tl.load(u_base + offs_l[None, :] * su_l, mask=m2, other=0.0).to(tl.float32)
        dt = tl.load(dt_base + offs_l[None, :] * sdt_l, mask=m2, other=0.0).to(tl.float32)
        Bt = tl.load(B_base + offs_l[None, :] * sB_l, mask=lmask[None, :], other=0.0).to(tl.float32)
        Ct = tl.load(C_base + offs_l[None, :] * sC_l, mask=lmask[None, :], other=0.0).to(tl.float32)
        if HAS_BIAS:
            dt = dt + dbias[:, None]
        if SOFTPLUS:
            dt = tl.where(dt <= 20.0, _libdevice.log1p(tl.exp(dt)), dt)
        dt = tl.where(m2, dt, 0.0)  # steps past the end: decay 1, no input, so the state passes through
        decay = tl.exp2(dt[:, None, :] * a2[:, :, None])  # (BLOCK_D, N, BLOCK_L), exponent <= 0
        drive = (dt * u)[:, None, :] * Bt[None, :, :]
        acc_decay, acc_state = tl.associative_scan((decay, drive), axis=2, combine_fn=_combine)
        states = acc_state + acc_decay * h[:, :, None]
        y = tl.sum(states * Ct[None, :, :], axis=1)  # (BLOCK_D, BLOCK_L)
        if HAS_D:
            y = y + dskip[:, None] * u
        if HAS_Z:
            zt = tl.load(z_base + offs_l[None, :] * sz_l, mask=m2, other=0.0).to(tl.float32)
            y = y * (zt * tl.sigmoid(zt))
        tl.store(y_base + offs_l[None, :] * sy_l, y.to(y_ptr.dtype.element_ty), mask=m2)
        h = tl.sum(tl.where(last[None, None, :], states, 0.0), axis=2)


def pick_config(dim: int, length: int):
    """(BLOCK_D, BLOCK_L, num_warps) for a problem; chosen by the sweep in bench/scan.py (docs/benchmarks.md)."""
    block_l = min(64, max(16, triton.next_power_of_2(length)))
    block_d = 16 if block_l >= 64 else 32
    return block_d, block_l, 4


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          block_d=None, block_l=None, num_warps=None):
    """Same contract as :func:`edgemv.ops.selective_scan`; CUDA tensors only."""
    batch, dim, length = u.shape
    n = A.shape[1]
    if n & (n - 1):
        raise ValueError(f"the Triton scan needs a power-of-two state size, got N={n}")
    y = torch.empty((batch, dim, length), device=u.device, dtype=u.dtype)
    if y.numel() == 0:
        return y
    bd, bl, nw = pick_config(dim, length)
    bd, bl, nw = block_d or bd, block_l or bl, num_warps or nw
    dummy = u  # never read when the matching HAS_* flag is off
    Dt = D if D is not None else dummy
    zt = z if z is not None else dummy
    bt = delta_bias if delta_bias is not None else dummy
    sz = zt.stride() if z is not None else (0, 0, 0)
    grid = (batch, triton.cdiv(dim, bd))
    _scan_fwd_kernel[grid](
        u, delta, A, B, C, Dt, zt, bt, y,
        dim, length,
        *u.stride(), *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *sz, *y.stride(),
        N=n, BLOCK_D=bd, BLOCK_L=bl,
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(delta_softplus),
        num_warps=nw,
    )
    return y
