"""Fused forward selective scan for CUDA, written in Triton.

One program owns one sequence (batch row) and ``BLOCK_D`` channels, one thread per channel with its N states in
registers for the whole sequence, and walks the sequence step by step (``BLOCK_L`` steps unrolled per trip):
read u, delta, B, C of the step once, softplus, decay ``exp(delta * A)`` (exponent <= 0), update the state, reduce
over N for y, and write y once per trip. Arithmetic is float32 whatever the input dtype; any strides are accepted
(the model passes transposed views), so no copies are made. This is variant 'seq', the default.

Variant 'par' (``_scan_par_kernel``, opt-in with ``variant='par'`` or EDGEMV_TRITON_SCAN=par) parallelises over L
instead: one program per (batch row, BLOCK_D channels) holds the whole padded sequence and solves each state's
recurrence with ``tl.associative_scan``. It is correct but was 1.2-3x slower on an H200 at MambaVision shapes.
The versions tried and their timings are in docs/scan.md ("The Triton kernel").

This module imports triton at import time: ``edgemv.ops`` imports it only on the first 'triton' call, after
checking that triton is installed.
"""

import os

import torch
import triton
import triton.language as tl

__all__ = ["selective_scan_triton", "pick_config", "pick_par_config", "PAR_MAX_L", "PAR_POLY", "VARIANTS"]

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


@triton.jit
def _exp2_fma(x):
    # 2^x for x <= 0 on the FMA/integer pipes instead of the MUFU unit (which 8 exps per element can saturate):
    # x = j + f with j = round(x) (adding and removing 1.5 * 2^23 rounds to an integer), f in [-0.5, 0.5];
    # 2^f by its Taylor series to degree 6 (relative error < 2e-7, like ex2.approx); 2^j added into the exponent
    # bits. x is clamped at -125 (2^-125: a decay that is zero for every practical purpose, still a normal float).
    x = tl.maximum(x, -125.0)
    r = x + 12582912.0
    j = r - 12582912.0
    f = (x - j) * 0.6931471805599453
    p = 1.0 / 720.0
    p = 1.0 / 120.0 + f * p
    p = 1.0 / 24.0 + f * p
    p = 1.0 / 6.0 + f * p
    p = 0.5 + f * p
    p = 1.0 + f * p
    p = 1.0 + f * p
    ji = r.to(tl.int32, bitcast=True) - 0x4B400000
    return (p.to(tl.int32, bitcast=True) + (ji << 23)).to(tl.float32, bitcast=True)


@triton.jit
def _scan_combine(a1, b1, a2, b2):
    # (a1, b1) then (a2, b2): h -> a2 (a1 h + b1) + b2 = (a1 a2) h + (a2 b1 + b2). Associative; the left operand is
    # the earlier part of the sequence.
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _scan_par_kernel(
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
    L_P2: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    POLY: tl.constexpr,
):
    # One program = one batch row x BLOCK_D channels x the WHOLE sequence (padded to L_P2, a power of two).
    # u, delta (and z) are loaded once as (BLOCK_D, L_P2) tiles, B and C one state row (L_P2,) at a time; for each
    # state n the recurrence h_t = a_t h_{t-1} + b_t with a = exp(delta A_n) <= 1, b = delta B_n u is solved by a
    # parallel prefix scan over L (tl.associative_scan), and y accumulates C_n h. Everything in float32 registers;
    # each input element is read once and y is written once. Padded steps (t >= length) and channels (>= dim)
    # get delta = 0: decay 1, no input, so they change nothing (and they are never stored).
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_l = tl.arange(0, L_P2)
    dmask = offs_d < dim
    lmask = offs_l < length
    m2 = dmask[:, None] & lmask[None, :]
    u = tl.load(u_ptr + pid_b * su_b + offs_d[:, None] * su_d + offs_l[None, :] * su_l, mask=m2,
                other=0.0).to(tl.float32)
    dt = tl.load(dt_ptr + pid_b * sdt_b + offs_d[:, None] * sdt_d + offs_l[None, :] * sdt_l, mask=m2,
                 other=0.0).to(tl.float32)
    if HAS_BIAS:
        dt = dt + tl.load(bias_ptr + offs_d, mask=dmask, other=0.0).to(tl.float32)[:, None]
    if SOFTPLUS:
        dt = _softplus(dt)
    dt = tl.where(m2, dt, 0.0)
    du = dt * u
    y = tl.zeros((BLOCK_D, L_P2), dtype=tl.float32)
    b_base = B_ptr + pid_b * sB_b + offs_l * sB_l
    c_base = C_ptr + pid_b * sC_b + offs_l * sC_l
    for n in tl.static_range(N):
        an = tl.load(A_ptr + offs_d * sA_d + n * sA_n, mask=dmask, other=0.0).to(tl.float32) * 1.4426950408889634
        bn = tl.load(b_base + n * sB_n, mask=lmask, other=0.0).to(tl.float32)
        cn = tl.load(c_base + n * sC_n, mask=lmask, other=0.0).to(tl.float32)
        if n < POLY:  # the first POLY states' decays on the FMA pipe (a tuning knob; 0 = all on MUFU)
            a = _exp2_fma(dt * an[:, None])
        else:
            a = tl.exp2(dt * an[:, None])  # exponent <= 0 (A < 0, delta >= 0): in (0, 1], no overflow
        b = du * bn[None, :]
        _, h = tl.associative_scan((a, b), 1, _scan_combine)
        y += h * cn[None, :]
    if HAS_D:
        y += u * tl.load(D_ptr + offs_d, mask=dmask, other=0.0).to(tl.float32)[:, None]
    if HAS_Z:
        zt = tl.load(z_ptr + pid_b * sz_b + offs_d[:, None] * sz_d + offs_l[None, :] * sz_l, mask=m2,
                     other=0.0).to(tl.float32)
        y = y * (zt * tl.sigmoid(zt))
    tl.store(y_ptr + pid_b * sy_b + offs_d[:, None] * sy_d + offs_l[None, :] * sy_l,
             y.to(y_ptr.dtype.element_ty), mask=m2)


# The largest padded length the parallel kernel takes (the whole sequence lives in registers).
PAR_MAX_L = 2048
VARIANTS = ("auto", "par", "seq")
PAR_POLY = 0  # decays per element computed by _exp2_fma instead of MUFU exp2 (bench/scan.py --quick sweeps it)


def pick_par_config(dim: int, length: int):
    """(BLOCK_D, num_warps) of the parallel kernel: a (BLOCK_D, L_P2) tile of about 4K elements per program."""
    lp2 = triton.next_power_of_2(max(int(length), 1))
    bd = max(1, min(64, 4096 // lp2, triton.next_power_of_2(dim)))
    nw = max(1, min(8, bd * lp2 // 512))  # about 16 tile elements per thread and tensor
    return bd, nw


def pick_config(dim: int, length: int):
    """(BLOCK_D, BLOCK_L, num_warps) for a problem; chosen by the sweep in bench/scan.py (docs/benchmarks.md)."""
    # bench/scan.py --sweep on an H200 (docs/benchmarks.md), batch 256 fp16: at 160 x 196, BLOCK_L 8 (147 us)
    # beat 16 (194 us) and 4 (152 us), BLOCK_D 64 with one warp tied (145 us); at 320 x 49, BLOCK_L 4 (47 us)
    # beat 8 (82 us). One warp per program: the grid is batch x D/32 programs.
    return 32, (4 if length <= 64 else 8), 1


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          block_d=None, block_l=None, num_warps=None, variant=None, out=None, poly=None):
    """Same contract as :func:`edgemv.ops.selective_scan`; CUDA tensors only.

    ``variant``: 'seq' (sequential over L, one thread per channel), 'par' (parallel prefix scan over L, the whole
    sequence per program, L up to ``PAR_MAX_L``; correct but slower on the H200, kept for comparison and tuning)
    or 'auto' (= 'seq', by measurement: docs/scan.md); None reads the EDGEMV_TRITON_SCAN environment variable
    (default 'auto'). ``block_d``, ``num_warps`` (and ``block_l`` for 'seq') override the tile choice. ``out``: a (batch, D, L) tensor of u's dtype to write y
    into (the tests poison it first); by default a new one. ``poly`` ('par' only): how many of the N decays per
    element are computed with a polynomial on the FMA pipe instead of the MUFU exp2 (default ``PAR_POLY``).
    """
    batch, dim, length = u.shape
    n = A.shape[1]
    if n & (n - 1):
        raise ValueError(f"the Triton scan needs a power-of-two state size, got N={n}")
    variant = variant or os.environ.get("EDGEMV_TRITON_SCAN", "auto")
    if variant not in VARIANTS:
        raise ValueError(f"unknown Triton scan variant {variant!r}; choose one of {VARIANTS}")
    if variant == "auto":  # 'seq': faster than 'par' at every shape measured (docs/scan.md, "The Triton kernel")
        variant = "seq"
    if variant == "par" and triton.next_power_of_2(max(length, 1)) > PAR_MAX_L:
        raise ValueError(f"variant 'par' holds the whole sequence in registers: L <= {PAR_MAX_L}, got {length}")
    if out is None:
        y = torch.empty((batch, dim, length), device=u.device, dtype=u.dtype)
    else:
        if out.shape != (batch, dim, length) or out.dtype != u.dtype or out.device != u.device:
            raise ValueError("out must be a (batch, D, L) tensor of u's dtype on u's device")
        y = out
    if y.numel() == 0:
        return y
    dummy = u  # never read when the matching HAS_* flag is off
    Dt = D if D is not None else dummy
    zt = z if z is not None else dummy
    bt = delta_bias if delta_bias is not None else dummy
    sz = zt.stride() if z is not None else (0, 0, 0)
    flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                 SOFTPLUS=bool(delta_softplus))
    args = (u, delta, A, B, C, Dt, zt, bt, y, dim, length,
            *u.stride(), *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *sz, *y.stride())
    if variant == "par":
        bd, nw = pick_par_config(dim, length)
        bd, nw = block_d or bd, num_warps or nw
        grid = (batch, triton.cdiv(dim, bd))
        _scan_par_kernel[grid](*args, N=n, BLOCK_D=bd, L_P2=triton.next_power_of_2(length), **flags,
                               POLY=PAR_POLY if poly is None else poly, num_warps=nw)
        return y
    bd, bl, nw = pick_config(dim, length)
    bd, bl, nw = block_d or bd, block_l or bl, num_warps or nw
    grid = (batch, triton.cdiv(dim, bd))
    if n == 8:  # MambaVision's d_state: the states written out as registers
        kernel, extra = _scan_n8_kernel, {"PREFETCH": not _INTERPRET}
    else:  # any other power of two: states as a (N, BLOCK_D) tensor (slower: layout shuffles per step)
        kernel, extra = _scan_seq_kernel, {"N": n}
    kernel[grid](*args, BLOCK_D=bd, BLOCK_L=bl, **extra, **flags, num_warps=nw)
    return y
