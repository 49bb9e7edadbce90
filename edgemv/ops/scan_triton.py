"""Fused forward selective scan for CUDA, written in Triton.

One program owns one sequence (batch row) and ``BLOCK_D`` channels, one thread per channel with its N states in
registers for the whole sequence, and walks the sequence step by step (``BLOCK_L`` steps unrolled per trip):
read u, delta, B, C of the step once, softplus, decay ``exp(delta * A)`` (exponent <= 0), update the state, reduce
over N for y, and write y once per trip. Arithmetic is float32 whatever the input dtype; any strides are accepted
(the model passes transposed views), so no copies are made. The versions tried and their timings are in
docs/scan.md ("The Triton kernel").

This module imports triton at import time: ``edgemv.ops`` imports it only on the first 'triton' call, after
checking that triton is installed.
"""

import os

import torch
import triton
import triton.language as tl

__all__ = ["selective_scan_triton", "pick_config"]

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"  # CPU interpreter (tests of the kernel logic)


@triton.jit
def _softplus(x):
    # torch's softplus (threshold 20), branch-free and accurate for very negative x (where log(1 + e^x) through
    # an approximate log would lose e^x):  softplus(x) = max(x, 0) + log1p(v), v = exp(-|x|) in (0, 1], and
    # log1p(v) = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...), s = v / (2 + v) <= 1/3, 8 terms (error < 2e-9).
    # A branch would split the unrolled steps into basic blocks and stop the loads being scheduled early.
    v = tl.exp(-tl.abs(x))
    s = tl.fdiv(v, 2.0 + v)
    q = s * s
    p = 1.0 / 15.0 + q * (1.0 / 17.0)
    p = 1.0 / 13.0 + q * p
    p = 1.0 / 11.0 + q * p
    p = 1.0 / 9.0 + q * p
    p = 1.0 / 7.0 + q * p
    p = 1.0 / 5.0 + q * p
    p = 1.0 / 3.0 + q * p
    p = 1.0 + q * p
    return tl.where(x <= 20.0, tl.maximum(x, 0.0) + 2.0 * s * p, x)


@triton.jit
def _scan_seq_kernel(
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
    # One thread per channel holding its N states; the sequence is walked step by step, BLOCK_L steps unrolled
    # per trip. y of the trip is collected in registers and stored once at its end: a store between two steps
    # would pin the next step's loads behind it (y may alias the inputs as far as the compiler knows), exposing
    # a memory latency per step; without it the loads of the whole trip issue ahead of the arithmetic.
    # The state is laid out (N, BLOCK_D): channels across threads, states inside a thread (the reduction over N
    # for y stays in registers).
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, N)
    dmask = offs_d < dim
    a2 = tl.load(A_ptr + offs_n[:, None] * sA_n + offs_d[None, :] * sA_d, mask=dmask[None, :], other=0.0)
    a2 = a2.to(tl.float32) * 1.4426950408889634
    if HAS_D:
        dskip = tl.load(D_ptr + offs_d, mask=dmask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        dbias = tl.load(bias_ptr + offs_d, mask=dmask, other=0.0).to(tl.float32)
    u_base = u_ptr + pid_b * su_b + offs_d * su_d
    dt_base = dt_ptr + pid_b * sdt_b + offs_d * sdt_d
    y_base = y_ptr + pid_b * sy_b + offs_d * sy_d
    B_base = B_ptr + pid_b * sB_b + offs_n * sB_n
    C_base = C_ptr + pid_b * sC_b + offs_n * sC_n
    if HAS_Z:
        z_base = z_ptr + pid_b * sz_b + offs_d * sz_d
    h = tl.zeros((N, BLOCK_D), dtype=tl.float32)
    cols = tl.arange(0, BLOCK_L)
    for l0 in range(0, length, BLOCK_L):
        y_tile = tl.zeros((BLOCK_D, BLOCK_L), dtype=tl.float32)
        for i in tl.static_range(BLOCK_L):
            t = l0 + i
            tvalid = t < length
            m = dmask & tvalid
            u = tl.load(u_base + t * su_l, mask=m, other=0.0).to(tl.float32)
            dt = tl.load(dt_base + t * sdt_l, mask=m, other=0.0).to(tl.float32)
            Bt = tl.load(B_base + t * sB_l, mask=(offs_n < N) & tvalid, other=0.0).to(tl.float32)
            Ct = tl.load(C_base + t * sC_l, mask=(offs_n < N) & tvalid, other=0.0).to(tl.float32)
            if HAS_BIAS:
                dt = dt + dbias
            if SOFTPLUS:
                dt = _softplus(dt)
            dt = tl.where(m, dt, 0.0)
            h = tl.exp2(dt[None, :] * a2) * h + Bt[:, None] * (dt * u)[None, :]
            y = tl.sum(h * Ct[:, None], axis=0)
            if HAS_D:
                y = y + dskip * u
            if HAS_Z:
                zt = tl.load(z_base + t * sz_l, mask=m, other=0.0).to(tl.float32)
                y = y * (zt * tl.sigmoid(zt))
            y_tile = tl.where(cols[None, :] == i, y[:, None], y_tile)
        offs_l = l0 + cols
        tl.store(y_base[:, None] + offs_l[None, :] * sy_l, y_tile.to(y_ptr.dtype.element_ty),
                 mask=dmask[:, None] & (offs_l[None, :] < length))


@triton.jit
def _prefetch_l1(ptrs, ENABLE: tl.constexpr):
    # PTX prefetch into L1 (no result, no fault); it has a side effect, so the compiler keeps it.
    if ENABLE:
        tl.inline_asm_elementwise("prefetch.global.L1 [$1];\n\tmov.u32 $0, 0;", "=r,l", [ptrs],
                                  dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def _state_step(h, a2, dt, du, b_n, c_n, y):
    # one state of one step: h <- exp(dt * A) h + dt u B ; y += C h
    h = tl.exp2(dt * a2) * h + du * b_n
    return h, y + h * c_n


@triton.jit
def _scan_n8_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, y_ptr,
    dim, length,
    su_b, su_d, su_l,
    sdt_b, sdt_d, sdt_l,
    sA_d, sA_n,
    sB_b, sB_n, sB_l,
    sC_b, sC_n, sC_l,
    sz_b, sz_d, sz_l,
    sy_b, sy_d, sy_l,
    BLOCK_D: tl.constexpr,
    BLOCK_L: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    PREFETCH: tl.constexpr,
):
    # N = 8 (MambaVision's d_state), written out: the eight states of a channel are eight 1-D register tensors
    # in the same layout as u and delta (one channel per thread), so a step needs no layout conversion, no
    # shuffle and no shared memory; B_t and C_t are scalar (broadcast) loads.
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    dmask = offs_d < dim
    a_row = A_ptr + offs_d * sA_d
    a0 = tl.load(a_row + 0 * sA_n, mask=dmask, other=0.0).to(tl.float32) * 1.4426950408889634
    a1 = tl.load(a_row + 1 * sA_n, mask=dmask, other=0.0).to(tl.float32) * 1.4426950408889634
    a2 = tl.load(a_row + 2 * sA_n, mask=dmask, other=0.0).to(tl.float32) * 1.4426950408889634
    a3 = tl.load(a_row + 3 * sA_n, mask=dmask, other=0.0).to(tl.float32) * 1.4426950408889634
    a4 = tl.load(a_row + 4 * sA_n, mask=dmask, other=0.0).to(tl.float32) * 1.4426950408889634
    a5 = tl.load(a_row + 5 * sA_n, mask=dmask, other=0.0).to(tl.float32) * 1.4426950408889634
    a6 = tl.load(a_row + 6 * sA_n, mask=dmask, other=0.0).to(tl.float32) * 1.4426950408889634
    a7 = tl.load(a_row + 7 * sA_n, mask=dmask, other=0.0).to(tl.float32) * 1.4426950408889634
    if HAS_D:
        dskip = tl.load(D_ptr + offs_d, mask=dmask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        dbias = tl.load(bias_ptr + offs_d, mask=dmask, other=0.0).to(tl.float32)
    u_base = u_ptr + pid_b * su_b + offs_d * su_d
    dt_base = dt_ptr + pid_b * sdt_b + offs_d * sdt_d
    y_base = y_ptr + pid_b * sy_b + offs_d * sy_d
    B_base = B_ptr + pid_b * sB_b
    C_base = C_ptr + pid_b * sC_b
    if HAS_Z:
        z_base = z_ptr + pid_b * sz_b + offs_d * sz_d
    h0 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h1 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h2 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h3 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h4 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h5 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h6 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h7 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    cols = tl.arange(0, BLOCK_L)
    d_in = tl.minimum(offs_d, dim - 1)  # in-bounds addresses for the prefetches
    n_in = tl.arange(0, 8)
    for l0 in range(0, length, BLOCK_L):
        # Each step's loads touch new lines (delta, B, C advance by a row per step), and the compiler does not
        # issue a step's loads before the previous step's arithmetic: without help every step would wait a full
        # memory latency. So the next trip's lines are prefetched into L1 while this trip computes.
        nxt = tl.minimum(l0 + BLOCK_L + cols, length - 1)
        _prefetch_l1(u_ptr + pid_b * su_b + d_in[:, None] * su_d + nxt[None, :] * su_l, PREFETCH)
        _prefetch_l1(dt_ptr + pid_b * sdt_b + d_in[:, None] * sdt_d + nxt[None, :] * sdt_l, PREFETCH)
        _prefetch_l1(B_base + n_in[:, None] * sB_n + nxt[None, :] * sB_l, PREFETCH)
        _prefetch_l1(C_base + n_in[:, None] * sC_n + nxt[None, :] * sC_l, PREFETCH)
        y_tile = tl.zeros((BLOCK_D, BLOCK_L), dtype=tl.float32)
        for i in tl.static_range(BLOCK_L):
            t = l0 + i
            tvalid = t < length
            m = dmask & tvalid
            u = tl.load(u_base + t * su_l, mask=m, other=0.0).to(tl.float32)
            dt = tl.load(dt_base + t * sdt_l, mask=m, other=0.0).to(tl.float32)
            bp = B_base + t * sB_l
            cp = C_base + t * sC_l
            if HAS_BIAS:
                dt = dt + dbias
            if SOFTPLUS:
                dt = _softplus(dt)
            dt = tl.where(m, dt, 0.0)
            du = dt * u
            y = tl.zeros((BLOCK_D,), dtype=tl.float32)
            h0, y = _state_step(h0, a0, dt, du, tl.load(bp + 0 * sB_n, mask=tvalid, other=0.0).to(tl.float32),
                                tl.load(cp + 0 * sC_n, mask=tvalid, other=0.0).to(tl.float32), y)
            h1, y = _state_step(h1, a1, dt, du, tl.load(bp + 1 * sB_n, mask=tvalid, other=0.0).to(tl.float32),
                                tl.load(cp + 1 * sC_n, mask=tvalid, other=0.0).to(tl.float32), y)
            h2, y = _state_step(h2, a2, dt, du, tl.load(bp + 2 * sB_n, mask=tvalid, other=0.0).to(tl.float32),
                                tl.load(cp + 2 * sC_n, mask=tvalid, other=0.0).to(tl.float32), y)
            h3, y = _state_step(h3, a3, dt, du, tl.load(bp + 3 * sB_n, mask=tvalid, other=0.0).to(tl.float32),
                                tl.load(cp + 3 * sC_n, mask=tvalid, other=0.0).to(tl.float32), y)
            h4, y = _state_step(h4, a4, dt, du, tl.load(bp + 4 * sB_n, mask=tvalid, other=0.0).to(tl.float32),
                                tl.load(cp + 4 * sC_n, mask=tvalid, other=0.0).to(tl.float32), y)
            h5, y = _state_step(h5, a5, dt, du, tl.load(bp + 5 * sB_n, mask=tvalid, other=0.0).to(tl.float32),
                                tl.load(cp + 5 * sC_n, mask=tvalid, other=0.0).to(tl.float32), y)
            h6, y = _state_step(h6, a6, dt, du, tl.load(bp + 6 * sB_n, mask=tvalid, other=0.0).to(tl.float32),
                                tl.load(cp + 6 * sC_n, mask=tvalid, other=0.0).to(tl.float32), y)
            h7, y = _state_step(h7, a7, dt, du, tl.load(bp + 7 * sB_n, mask=tvalid, other=0.0).to(tl.float32),
                                tl.load(cp + 7 * sC_n, mask=tvalid, other=0.0).to(tl.float32), y)
            if HAS_D:
                y = y + dskip * u
            if HAS_Z:
                zt = tl.load(z_base + t * sz_l, mask=m, other=0.0).to(tl.float32)
                y = y * (zt * tl.sigmoid(zt))
            y_tile = tl.where(cols[None, :] == i, y[:, None], y_tile)
        # One store per trip: a store between steps would keep the next steps' loads behind it (the compiler
        # cannot prove y does not alias the inputs), exposing a memory latency per step.
        offs_l = l0 + cols
        tl.store(y_base[:, None] + offs_l[None, :] * sy_l, y_tile.to(y_ptr.dtype.element_ty),
                 mask=dmask[:, None] & (offs_l[None, :] < length))


def pick_config(dim: int, length: int):
    """(BLOCK_D, BLOCK_L, num_warps) for a problem; chosen by the sweep in bench/scan.py (docs/benchmarks.md)."""
    # bench/scan.py --sweep on an H200 (docs/benchmarks.md), batch 256 fp16: at 160 x 196, BLOCK_L 8 (147 us)
    # beat 16 (194 us) and 4 (152 us), BLOCK_D 64 with one warp tied (145 us); at 320 x 49, BLOCK_L 4 (47 us)
    # beat 8 (82 us). One warp per program: the grid is batch x D/32 programs.
    return 32, (4 if length <= 64 else 8), 1


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
    if n == 8:  # MambaVision's d_state: the states written out as registers
        kernel, extra = _scan_n8_kernel, {"PREFETCH": not _INTERPRET}
    else:  # any other power of two: states as a (N, BLOCK_D) tensor (slower: layout shuffles per step)
        kernel, extra = _scan_seq_kernel, {"N": n}
    kernel[grid](
        u, delta, A, B, C, Dt, zt, bt, y,
        dim, length,
        *u.stride(), *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *sz, *y.stride(),
        BLOCK_D=bd, BLOCK_L=bl, **extra,
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(delta_softplus),
        num_warps=nw,
    )
    return y
