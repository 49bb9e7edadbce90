"""Fused forward selective scan for CUDA, written in Triton.

One program owns one sequence (batch row) and ``BLOCK_D`` channels, each thread one or more channels with their N
states in registers for the whole sequence, and walks the sequence step by step (``BLOCK_L`` steps unrolled per
trip, the next trips' lines prefetched into L1): read u, delta, B, C of the step once, softplus, decay
``exp(delta * A)`` (exponent <= 0), update the state, reduce over N for y, and write y once per trip. Arithmetic is float32 whatever the input dtype; any strides are accepted
(the model passes transposed views), so no copies are made. This is variant 'seq'.

Variants 'pipe' (``_scan_pipe_kernel``: u and delta of the next trip loaded into registers a trip ahead, optionally
as tiles) and 'lanes' (``_scan_lanes_kernel``: a channel's states over 1-8 threads) are the same recurrence with
other schedules. Which schedule is fastest depends on shape, layout and GPU, so 'auto' times the settings in
``scan_tune.CANDIDATES`` (seq and pipe; lanes never won on the H200) on a problem's first call (edgemv.ops.scan_tune).

Variant 'par' (``_scan_par_kernel``, opt-in with ``variant='par'`` or EDGEMV_TRITON_SCAN=par) parallelises over L
instead: one program per (batch row, BLOCK_D channels) holds the whole padded sequence and solves each state's
recurrence with ``tl.associative_scan``. It is correct but was 1.2-3x slower on an H200 at MambaVision shapes.
The versions tried and their timings are in docs/scan.md ("The Triton kernel").

This module imports triton at import time: ``edgemv.ops`` imports it only on the first 'triton' call, after
checking that triton is installed.
"""

import contextvars
import os

import torch
import triton
import triton.language as tl

from .inputs import check_scan_inputs

__all__ = ["selective_scan_triton", "pick_config", "pick_par_config", "PAR_MAX_L", "PAR_POLY", "PREFETCH_DIST",
           "VARIANTS"]

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"  # CPU interpreter (tests of the kernel logic)
# set while precompile() runs: a kernel "launch" then only compiles (Triton's warmup), nothing runs on the GPU
_compiling_only = contextvars.ContextVar("edgemv_scan_compiling_only", default=False)


def _launch(kernel, grid, *args, **kwargs):
    if _compiling_only.get():
        kernel.warmup(*args, grid=grid, **kwargs)
    else:
        kernel[grid](*args, **kwargs)


def precompile(run, candidates, out) -> bool:
    """Compile the Triton kernels of ``candidates`` ((variant, options) pairs) at once, in a thread pool, before they
    are timed one by one: ``run(variant, options, out)`` is called for each with launches turned into Triton's
    warmup (compile only), inside Triton's async compile mode. On MambaVision-T's first call on an H200 the six
    compiles took about 25 s one after another (docs/benchmarks.md). A compile that fails here fails again, with its
    error, when the candidate is timed. False where this Triton has no async compile mode (then nothing is done)."""
    try:
        from concurrent.futures import ThreadPoolExecutor

        from triton.runtime._async_compile import AsyncCompileMode  # private in Triton 3.x: checked, not assumed
    except ImportError:
        return False
    if not candidates:
        return True
    token = _compiling_only.set(True)
    try:
        with ThreadPoolExecutor(max_workers=len(candidates), thread_name_prefix="edgemv-triton-compile") as pool, \
                AsyncCompileMode(pool, ignore_errors=True):
            for variant, opts in candidates:
                try:
                    run(variant, opts, out)
                except Exception:  # noqa: BLE001 - the candidate's own timing reports it
                    pass
    except RuntimeError:  # another async compile mode is active in this thread: compile as the timings come
        return False
    finally:
        _compiling_only.reset(token)
    return True


@triton.jit
def _ex2_ftz(x, FAST: tl.constexpr):
    # 2^x on the MUFU unit, flushing subnormal results to 0: one instruction instead of tl.exp's range fix-up
    if FAST:
        return tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)
    return tl.exp2(x)


@triton.jit
def _rcp_ftz(x, FAST: tl.constexpr):
    # 1/x to about 1 ulp on the MUFU unit, for x in a normal range (here (2, 3])
    if FAST:
        return tl.inline_asm_elementwise("rcp.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)
    return 1.0 / x


@triton.jit
def _softplus(x, FAST: tl.constexpr = False):
    # torch's softplus (threshold 20), branch-free and accurate for very negative x (where log(1 + e^x) through
    # an approximate log would lose e^x):  softplus(x) = max(x, 0) + log1p(v), v = exp(-|x|) in (0, 1], and
    # log1p(v) = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...), s = v / (2 + v) <= 1/3, 8 terms (error < 2e-9).
    # A branch would split the unrolled steps into basic blocks and stop the loads being scheduled early.
    # FAST: exp and the reciprocal as single MUFU instructions (PTX inline asm; not in Triton's interpreter).
    v = _ex2_ftz(-tl.abs(x) * 1.4426950408889634, FAST)
    s = v * _rcp_ftz(2.0 + v, FAST)
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
    N_P2: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_L: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
):
    # One thread per channel holding its N states (N_P2: N rounded up to a power of two, as Triton's tiles need;
    # a padded state has A = B = C = 0, so it stays 0 and adds nothing to y); the sequence is walked step by step,
    # BLOCK_L steps unrolled per trip. y of the trip is collected in registers and stored once at its end: a store
    # between two steps would pin the next step's loads behind it (y may alias the inputs as far as the compiler
    # knows), exposing a memory latency per step; without it the loads of the whole trip issue ahead of the arithmetic.
    # The state is laid out (N, BLOCK_D): channels across threads, states inside a thread (the reduction over N
    # for y stays in registers).
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, N_P2)
    nmask = offs_n < N
    dmask = offs_d < dim
    a2 = tl.load(A_ptr + offs_n[:, None] * sA_n + offs_d[None, :] * sA_d, mask=nmask[:, None] & dmask[None, :],
                 other=0.0)
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
    h = tl.zeros((N_P2, BLOCK_D), dtype=tl.float32)
    cols = tl.arange(0, BLOCK_L)
    for l0 in range(0, length, BLOCK_L):
        y_tile = tl.zeros((BLOCK_D, BLOCK_L), dtype=tl.float32)
        for i in tl.static_range(BLOCK_L):
            t = l0 + i
            tvalid = t < length
            m = dmask & tvalid
            u = tl.load(u_base + t * su_l, mask=m, other=0.0).to(tl.float32)
            dt = tl.load(dt_base + t * sdt_l, mask=m, other=0.0).to(tl.float32)
            Bt = tl.load(B_base + t * sB_l, mask=nmask & tvalid, other=0.0).to(tl.float32)
            Ct = tl.load(C_base + t * sC_l, mask=nmask & tvalid, other=0.0).to(tl.float32)
            if HAS_BIAS:
                dt = dt + dbias
            if SOFTPLUS:
                dt = _softplus(dt, False)
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
def _prefetch_trip(u_row, su_l, dt_row, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, l0, length,
                   BLOCK_L: tl.constexpr):
    # the lines of one trip (BLOCK_L steps from l0) of u, delta, B, C into L1 (with any strides: one prefetch per
    # element; prefetching only u's first and last step of the trip, which cover its lines when u is contiguous,
    # measured 2x slower overall, through a different instruction schedule)
    cols = tl.arange(0, BLOCK_L)
    t = tl.minimum(l0 + cols, length - 1)
    n = tl.arange(0, 8)
    _prefetch_l1(u_row[:, None] + t[None, :] * su_l, True)
    _prefetch_l1(dt_row[:, None] + t[None, :] * sdt_l, True)
    _prefetch_l1(B_base + n[:, None] * sB_n + t[None, :] * sB_l, True)
    _prefetch_l1(C_base + n[:, None] * sC_n + t[None, :] * sC_l, True)


@triton.jit
def _state_step(h, a2, dt, du, b_n, c_n, y):
    # one state of one step: h <- exp(dt * A) h + dt u B ; y += C h
    h = tl.exp2(dt * a2) * h + du * b_n
    return h, y + h * c_n


@triton.jit
def _states8(h0, h1, h2, h3, h4, h5, h6, h7, a0, a1, a2, a3, a4, a5, a6, a7, dt, du, bp, sB_n, cp, sC_n,
             K: tl.constexpr = 8):
    # the first K (1, 2, 4 or 8) states of one step, B_t and C_t loaded from bp and cp; returns them and C.h
    y = tl.zeros_like(du)
    h0, y = _state_step(h0, a0, dt, du, tl.load(bp).to(tl.float32), tl.load(cp).to(tl.float32), y)
    if K > 1:
        h1, y = _state_step(h1, a1, dt, du, tl.load(bp + sB_n).to(tl.float32), tl.load(cp + sC_n).to(tl.float32), y)
    if K > 2:
        h2, y = _state_step(h2, a2, dt, du, tl.load(bp + 2 * sB_n).to(tl.float32),
                            tl.load(cp + 2 * sC_n).to(tl.float32), y)
        h3, y = _state_step(h3, a3, dt, du, tl.load(bp + 3 * sB_n).to(tl.float32),
                            tl.load(cp + 3 * sC_n).to(tl.float32), y)
    if K > 4:
        h4, y = _state_step(h4, a4, dt, du, tl.load(bp + 4 * sB_n).to(tl.float32),
                            tl.load(cp + 4 * sC_n).to(tl.float32), y)
        h5, y = _state_step(h5, a5, dt, du, tl.load(bp + 5 * sB_n).to(tl.float32),
                            tl.load(cp + 5 * sC_n).to(tl.float32), y)
        h6, y = _state_step(h6, a6, dt, du, tl.load(bp + 6 * sB_n).to(tl.float32),
                            tl.load(cp + 6 * sC_n).to(tl.float32), y)
        h7, y = _state_step(h7, a7, dt, du, tl.load(bp + 7 * sB_n).to(tl.float32),
                            tl.load(cp + 7 * sC_n).to(tl.float32), y)
    return h0, h1, h2, h3, h4, h5, h6, h7, y


@triton.jit
def _interleave(a, b):
    # columns a0 b0 a1 b1 ... of two (BLOCK_D, k) tiles: join puts the new axis last and in-thread, so this is
    # register renaming, no data movement
    return tl.reshape(tl.join(a, b), (a.shape[0], 2 * a.shape[1]))


@triton.jit
def _tile4(y0, y1, y2, y3):
    # (BLOCK_D, 4) tile with columns y0..y3
    return _interleave(tl.join(y0, y2), tl.join(y1, y3))


@triton.jit
def _tile8(y0, y1, y2, y3, y4, y5, y6, y7):
    # (BLOCK_D, 8) tile with columns y0..y7: even columns interleaved with odd ones
    return _interleave(_interleave(tl.join(y0, y4), tl.join(y2, y6)), _interleave(tl.join(y1, y5), tl.join(y3, y7)))


@triton.jit
def _tile_step(t, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
               z_base, sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
               HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
               FAST: tl.constexpr, CLAMP: tl.constexpr):
    # one step of one channel per thread (_pipe_step), u and delta loaded here; the clamping only in the last trip
    if CLAMP:
        tc = tl.minimum(t, length - 1)
    else:
        tc = t
    # the raw u and delta of the step, then the same step as the register-pipelined kernel's
    return _pipe_step(t, length, tl.load(u_base + tc * su_l), tl.load(dt_base + tc * sdt_l), B_base, sB_n, sB_l,
                      C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                      h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)


@triton.jit
def _tile_trip(l0, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
               z_base, sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
               BLOCK_L: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
               SOFTPLUS: tl.constexpr, FAST: tl.constexpr, CLAMP: tl.constexpr):
    # BLOCK_L (4 or 8) steps from l0, unrolled; returns the states and the (BLOCK_D, BLOCK_L) tile of y
    h0, h1, h2, h3, h4, h5, h6, h7, y0 = _tile_step(
        l0, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l,
        a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y1 = _tile_step(
        l0 + 1, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base,
        sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y2 = _tile_step(
        l0 + 2, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base,
        sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y3 = _tile_step(
        l0 + 3, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base,
        sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    if BLOCK_L == 8:
        h0, h1, h2, h3, h4, h5, h6, h7, y4 = _tile_step(
            l0 + 4, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base,
            sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
            HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
        h0, h1, h2, h3, h4, h5, h6, h7, y5 = _tile_step(
            l0 + 5, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base,
            sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
            HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
        h0, h1, h2, h3, h4, h5, h6, h7, y6 = _tile_step(
            l0 + 6, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base,
            sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
            HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
        h0, h1, h2, h3, h4, h5, h6, h7, y7 = _tile_step(
            l0 + 7, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base,
            sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
            HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
        y_tile = _tile8(y0, y1, y2, y3, y4, y5, y6, y7)
    else:
        y_tile = _tile4(y0, y1, y2, y3)
    return h0, h1, h2, h3, h4, h5, h6, h7, y_tile


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
    PF_DIST: tl.constexpr,
    FAST: tl.constexpr,
):
    # N = 8 (MambaVision's d_state), written out: the eight states of a channel are eight 1-D register tensors in
    # the same layout as u and delta (one channel per thread, BLOCK_D / 32 / num_warps channels per thread), so a
    # step needs no layout conversion; B_t and C_t are broadcast scalar loads. BLOCK_L (4 or 8) steps are unrolled
    # per trip and the trip's y_t are assembled into the (BLOCK_D, BLOCK_L) output tile with tl.join (in-thread
    # register renaming) and stored once: a tl.where into a tile of another layout made the compiler go through
    # shared memory with a barrier every step, and the barriers cut the trip into per-step scheduling regions, so
    # no step's loads or softplus could overlap the previous step's arithmetic (2x slower; docs/scan.md).
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
    dskip = tl.load(D_ptr + offs_d, mask=dmask & HAS_D, other=0.0).to(tl.float32)
    dbias = tl.load(bias_ptr + offs_d, mask=dmask & HAS_BIAS, other=0.0).to(tl.float32)
    d_in = tl.minimum(offs_d, dim - 1)  # in-bounds channel for the (unmasked) loads
    u_base = u_ptr + pid_b * su_b + d_in * su_d
    dt_base = dt_ptr + pid_b * sdt_b + d_in * sdt_d
    y_base = y_ptr + pid_b * sy_b + offs_d * sy_d
    z_base = z_ptr + pid_b * sz_b + d_in * sz_d
    B_base = B_ptr + pid_b * sB_b
    C_base = C_ptr + pid_b * sC_b
    h0 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h1 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h2 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h3 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h4 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h5 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h6 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h7 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    cols = tl.arange(0, BLOCK_L)
    for l0 in range(0, length, BLOCK_L):
        # the lines of the trip PF_DIST ahead into L1 while this one computes (the loop is not software-pipelined,
        # so without this each trip would start with a memory latency; 2.5x slower)
        if PREFETCH:
            _prefetch_trip(u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                           l0 + PF_DIST * BLOCK_L, length, BLOCK_L)
        if l0 + BLOCK_L <= length:
            h0, h1, h2, h3, h4, h5, h6, h7, y_tile = _tile_trip(
                l0, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base,
                sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
                BLOCK_L, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, False)
        else:
            h0, h1, h2, h3, h4, h5, h6, h7, y_tile = _tile_trip(
                l0, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base,
                sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
                BLOCK_L, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, True)
        offs_l = l0 + cols
        tl.store(y_base[:, None] + offs_l[None, :] * sy_l, y_tile.to(y_ptr.dtype.element_ty),
                 mask=dmask[:, None] & (offs_l[None, :] < length))


@triton.jit
def _cols4(t):
    # the 4 columns of a (BLOCK_D, 4) tile as vectors (reshape + split: register renaming when the compiler keeps
    # a row in one thread; otherwise one conversion through shared memory per tile)
    bd: tl.constexpr = t.shape[0]
    ev, od = tl.split(tl.reshape(t, (bd, 2, 2)))
    c0, c2 = tl.split(ev)
    c1, c3 = tl.split(od)
    return c0, c1, c2, c3


@triton.jit
def _cols8(t):
    # the 8 columns of a (BLOCK_D, 8) tile as vectors
    bd: tl.constexpr = t.shape[0]
    ev, od = tl.split(tl.reshape(t, (bd, 4, 2)))
    c0, c2, c4, c6 = _cols4(ev)
    c1, c3, c5, c7 = _cols4(od)
    return c0, c1, c2, c3, c4, c5, c6, c7


@triton.jit
def _trip_load(base, s_l, l0, length, TILE: tl.constexpr):
    # the 8 steps from l0 of one per-channel input (raw dtype) as 8 register vectors. TILE: one (BLOCK_D, 8) tile
    # whose load instructions cover a few channels' runs of consecutive steps (a few cache lines each) instead of
    # one step of 32 channels (32 lines), split into columns afterwards; masked, not clamped, because a clamped
    # index hides the run of consecutive steps from the compiler's coalescing. Otherwise 8 loads at clamped steps.
    if TILE:
        t = l0 + tl.arange(0, 8)
        return _cols8(tl.load(base[:, None] + t[None, :] * s_l, mask=t[None, :] < length, other=0.0))
    return (tl.load(base + tl.minimum(l0, length - 1) * s_l), tl.load(base + tl.minimum(l0 + 1, length - 1) * s_l),
            tl.load(base + tl.minimum(l0 + 2, length - 1) * s_l), tl.load(base + tl.minimum(l0 + 3, length - 1) * s_l),
            tl.load(base + tl.minimum(l0 + 4, length - 1) * s_l), tl.load(base + tl.minimum(l0 + 5, length - 1) * s_l),
            tl.load(base + tl.minimum(l0 + 6, length - 1) * s_l), tl.load(base + tl.minimum(l0 + 7, length - 1) * s_l))


@triton.jit
def _pipe_step(t, length, u, dtr, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l,
               a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
               HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
               FAST: tl.constexpr, CLAMP: tl.constexpr):
    # one step of one channel per thread from the step's raw u and delta (already in registers), N = 8 states as
    # eight register tensors; returns the new states and y_t. Loads are unmasked at clamped addresses (a masked
    # load costs an extra instruction to zero its register): past the end, delta is set to 0 (decay 1, no input:
    # the state is unchanged) and y is not stored; channels past D read channel D-1's data (the caller clamps the
    # bases) and are not stored either. Only the last trip can run past the end (CLAMP).
    if CLAMP:
        tc = tl.minimum(t, length - 1)
    else:
        tc = t
    u = u.to(tl.float32)
    dt = dtr.to(tl.float32)
    if HAS_BIAS:
        dt = dt + dbias
    if SOFTPLUS:
        dt = _softplus(dt, FAST)
    if CLAMP:
        dt = tl.where(t < length, dt, 0.0)
    bp = B_base + tc * sB_l
    cp = C_base + tc * sC_l
    du = dt * u
    h0, h1, h2, h3, h4, h5, h6, h7, y = _states8(h0, h1, h2, h3, h4, h5, h6, h7, a0, a1, a2, a3, a4, a5, a6, a7,
                                                 dt, du, bp, sB_n, cp, sC_n)
    if HAS_D:
        y = y + dskip * u
    if HAS_Z:
        zt = tl.load(z_base + tc * sz_l).to(tl.float32)
        y = y * (zt * tl.sigmoid(zt))
    return h0, h1, h2, h3, h4, h5, h6, h7, y


@triton.jit
def _pipe_trip(l0, length, u0, u1, u2, u3, u4, u5, u6, u7, d0, d1, d2, d3, d4, d5, d6, d7,
               B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
               h0, h1, h2, h3, h4, h5, h6, h7, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
               SOFTPLUS: tl.constexpr, FAST: tl.constexpr, CLAMP: tl.constexpr):
    # the 8 steps of a trip from registers; returns the states and the (BLOCK_D, 8) tile of y
    h0, h1, h2, h3, h4, h5, h6, h7, y0 = _pipe_step(
        l0, length, u0, d0, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6, a7,
        dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y1 = _pipe_step(
        l0 + 1, length, u1, d1, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6,
        a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y2 = _pipe_step(
        l0 + 2, length, u2, d2, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6,
        a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y3 = _pipe_step(
        l0 + 3, length, u3, d3, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6,
        a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y4 = _pipe_step(
        l0 + 4, length, u4, d4, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6,
        a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y5 = _pipe_step(
        l0 + 5, length, u5, d5, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6,
        a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y6 = _pipe_step(
        l0 + 6, length, u6, d6, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6,
        a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y7 = _pipe_step(
        l0 + 7, length, u7, d7, B_base, sB_n, sB_l, C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6,
        a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    return h0, h1, h2, h3, h4, h5, h6, h7, _tile8(y0, y1, y2, y3, y4, y5, y6, y7)


@triton.jit
def _scan_pipe_kernel(
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
    TILE: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    PREFETCH: tl.constexpr,
    FAST: tl.constexpr,
):
    # N = 8, one thread per channel as in _scan_n8_kernel, with a register pipeline: u and delta of trip k+1 are
    # loaded at the top of trip k into registers and consumed a trip later, so their latency hides behind a whole
    # trip of arithmetic (the L1 prefetch of _scan_n8_kernel leaves them to a second load that may miss); B and C
    # stay broadcast scalar loads, prefetched into L1 two trips ahead. TILE: u and delta read as (BLOCK_D, 8) tiles.
    pid_b = tl.program_id(0).to(tl.int64)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    dmask = offs_d < dim
    d_in = tl.minimum(offs_d, dim - 1)  # in-bounds channel for the (unmasked) loads
    a_row = A_ptr + d_in * sA_d
    a0 = tl.load(a_row).to(tl.float32) * 1.4426950408889634
    a1 = tl.load(a_row + sA_n).to(tl.float32) * 1.4426950408889634
    a2 = tl.load(a_row + 2 * sA_n).to(tl.float32) * 1.4426950408889634
    a3 = tl.load(a_row + 3 * sA_n).to(tl.float32) * 1.4426950408889634
    a4 = tl.load(a_row + 4 * sA_n).to(tl.float32) * 1.4426950408889634
    a5 = tl.load(a_row + 5 * sA_n).to(tl.float32) * 1.4426950408889634
    a6 = tl.load(a_row + 6 * sA_n).to(tl.float32) * 1.4426950408889634
    a7 = tl.load(a_row + 7 * sA_n).to(tl.float32) * 1.4426950408889634
    dskip = tl.load(D_ptr + d_in, mask=dmask & HAS_D, other=0.0).to(tl.float32)
    dbias = tl.load(bias_ptr + d_in, mask=dmask & HAS_BIAS, other=0.0).to(tl.float32)
    u_base = u_ptr + pid_b * su_b + d_in * su_d
    dt_base = dt_ptr + pid_b * sdt_b + d_in * sdt_d
    z_base = z_ptr + pid_b * sz_b + d_in * sz_d
    y_base = y_ptr + pid_b * sy_b + offs_d * sy_d
    B_base = B_ptr + pid_b * sB_b
    C_base = C_ptr + pid_b * sC_b
    h0 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    h1 = h0
    h2 = h0
    h3 = h0
    h4 = h0
    h5 = h0
    h6 = h0
    h7 = h0
    cols = tl.arange(0, 8)
    nn = tl.arange(0, 8)
    u0, u1, u2, u3, u4, u5, u6, u7 = _trip_load(u_base, su_l, 0, length, TILE)
    d0, d1, d2, d3, d4, d5, d6, d7 = _trip_load(dt_base, sdt_l, 0, length, TILE)
    for l0 in range(0, length, 8):
        if PREFETCH:
            t = tl.minimum(l0 + 16 + cols, length - 1)
            _prefetch_l1(B_base + nn[:, None] * sB_n + t[None, :] * sB_l, True)
            _prefetch_l1(C_base + nn[:, None] * sC_n + t[None, :] * sC_l, True)
        v0, v1, v2, v3, v4, v5, v6, v7 = _trip_load(u_base, su_l, l0 + 8, length, TILE)
        e0, e1, e2, e3, e4, e5, e6, e7 = _trip_load(dt_base, sdt_l, l0 + 8, length, TILE)
        if l0 + 8 <= length:
            h0, h1, h2, h3, h4, h5, h6, h7, y_tile = _pipe_trip(
                l0, length, u0, u1, u2, u3, u4, u5, u6, u7, d0, d1, d2, d3, d4, d5, d6, d7, B_base, sB_n, sB_l,
                C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, False)
        else:
            h0, h1, h2, h3, h4, h5, h6, h7, y_tile = _pipe_trip(
                l0, length, u0, u1, u2, u3, u4, u5, u6, u7, d0, d1, d2, d3, d4, d5, d6, d7, B_base, sB_n, sB_l,
                C_base, sC_n, sC_l, z_base, sz_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                h0, h1, h2, h3, h4, h5, h6, h7, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, True)
        offs_l = l0 + cols
        tl.store(y_base[:, None] + offs_l[None, :] * sy_l, y_tile.to(y_ptr.dtype.element_ty),
                 mask=dmask[:, None] & (offs_l[None, :] < length))
        u0, u1, u2, u3, u4, u5, u6, u7 = v0, v1, v2, v3, v4, v5, v6, v7
        d0, d1, d2, d3, d4, d5, d6, d7 = e0, e1, e2, e3, e4, e5, e6, e7


@triton.jit
def _lanes_step(t, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
                a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
                K: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                SOFTPLUS: tl.constexpr, FAST: tl.constexpr, CLAMP: tl.constexpr):
    # one step on (BLOCK_D, LANES) tiles: lane j of a channel holds its states j*K .. j*K+K-1 (in h0 .. h{K-1});
    # every lane of a channel reads the same u, delta (one transaction) and computes the same softplus; the lanes'
    # partial C.h are summed across lanes (shuffles). D u is added on lane 0 only (dskip is 0 on the others), and
    # silu(z) scales every lane's partial (the sum is linear). Returns the states and y_t, (BLOCK_D,).
    if CLAMP:
        tc = tl.minimum(t, length - 1)
    else:
        tc = t
    u = tl.load(u_ptrs + tc * su_l).to(tl.float32)
    dt = tl.load(dt_ptrs + tc * sdt_l).to(tl.float32)
    if HAS_BIAS:
        dt = dt + dbias
    if SOFTPLUS:
        dt = _softplus(dt, FAST)
    if CLAMP:
        dt = tl.where(t < length, dt, 0.0)
    du = dt * u
    bp = b_ptrs + tc * sB_l
    cp = c_ptrs + tc * sC_l
    h0, h1, h2, h3, h4, h5, h6, h7, y = _states8(h0, h1, h2, h3, h4, h5, h6, h7, a0, a1, a2, a3, a4, a5, a6, a7,
                                                 dt, du, bp, sB_n, cp, sC_n, K)
    if HAS_D:
        y = y + dskip * u
    if HAS_Z:
        zt = tl.load(z_ptrs + tc * sz_l).to(tl.float32)
        y = y * (zt * tl.sigmoid(zt))
    return h0, h1, h2, h3, h4, h5, h6, h7, tl.sum(y, axis=1)


@triton.jit
def _scan_lanes_kernel(
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
    LANES: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    PREFETCH: tl.constexpr,
    PF_DIST: tl.constexpr,
    FAST: tl.constexpr,
):
    # N = 8 with a channel's states over LANES (1, 2, 4 or 8) lanes, K = 8 / LANES states per lane: LANES times
    # the warps of one-lane-per-channel for the same problem (the scan is latency-bound at MambaVision's sizes:
    # 128 x 160 channels fill 384 one-warp programs, fewer than the H200's 528 schedulers), at the price of the
    # softplus and the u, delta loads repeated on each lane and a log2(LANES)-step shuffle sum for y.
    # BLOCK_L = 8 steps per trip; the trip's y assembled with tl.join and stored once, as in _scan_n8_kernel.
    K: tl.constexpr = 8 // LANES
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    dmask = offs_d < dim
    d_in = tl.minimum(offs_d, dim - 1)[:, None]  # in-bounds channel for the (unmasked) loads, (BLOCK_D, 1)
    lane = tl.arange(0, LANES)[None, :]
    zero = tl.zeros((BLOCK_D, LANES), dtype=tl.int32)
    n0 = lane * K + zero  # the lane's first state, (BLOCK_D, LANES)
    a_row = A_ptr + d_in * sA_d + n0 * sA_n
    a0 = tl.load(a_row).to(tl.float32) * 1.4426950408889634
    a1 = a0
    a2 = a0
    a3 = a0
    a4 = a0
    a5 = a0
    a6 = a0
    a7 = a0
    if K > 1:
        a1 = tl.load(a_row + sA_n).to(tl.float32) * 1.4426950408889634
    if K > 2:
        a2 = tl.load(a_row + 2 * sA_n).to(tl.float32) * 1.4426950408889634
        a3 = tl.load(a_row + 3 * sA_n).to(tl.float32) * 1.4426950408889634
    if K > 4:
        a4 = tl.load(a_row + 4 * sA_n).to(tl.float32) * 1.4426950408889634
        a5 = tl.load(a_row + 5 * sA_n).to(tl.float32) * 1.4426950408889634
        a6 = tl.load(a_row + 6 * sA_n).to(tl.float32) * 1.4426950408889634
        a7 = tl.load(a_row + 7 * sA_n).to(tl.float32) * 1.4426950408889634
    dskip = tl.load(D_ptr + d_in + zero, mask=(n0 == 0) & HAS_D, other=0.0).to(tl.float32)
    dbias = tl.load(bias_ptr + d_in + zero, mask=(zero == 0) & HAS_BIAS, other=0.0).to(tl.float32)
    u_ptrs = u_ptr + pid_b * su_b + (d_in + zero) * su_d
    dt_ptrs = dt_ptr + pid_b * sdt_b + (d_in + zero) * sdt_d
    z_ptrs = z_ptr + pid_b * sz_b + (d_in + zero) * sz_d
    b_ptrs = B_ptr + pid_b * sB_b + n0 * sB_n
    c_ptrs = C_ptr + pid_b * sC_b + n0 * sC_n
    y_base = y_ptr + pid_b * sy_b + offs_d * sy_d
    u_row = u_ptr + pid_b * su_b + tl.minimum(offs_d, dim - 1) * su_d  # 1-D, for the prefetch
    dt_row = dt_ptr + pid_b * sdt_b + tl.minimum(offs_d, dim - 1) * sdt_d
    B_base = B_ptr + pid_b * sB_b
    C_base = C_ptr + pid_b * sC_b
    h0 = tl.zeros((BLOCK_D, LANES), dtype=tl.float32)
    h1 = h0
    h2 = h0
    h3 = h0
    h4 = h0
    h5 = h0
    h6 = h0
    h7 = h0
    cols = tl.arange(0, 8)
    for l0 in range(0, length, 8):
        if PREFETCH:
            _prefetch_trip(u_row, su_l, dt_row, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                           l0 + PF_DIST * 8, length, 8)
        if l0 + 8 > length:
            h0, h1, h2, h3, h4, h5, h6, h7, y_tile = _lanes_trip(
                l0, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
                a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
                K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, True)
        else:
            h0, h1, h2, h3, h4, h5, h6, h7, y_tile = _lanes_trip(
                l0, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
                a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
                K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, False)
        offs_l = l0 + cols
        tl.store(y_base[:, None] + offs_l[None, :] * sy_l, y_tile.to(y_ptr.dtype.element_ty),
                 mask=dmask[:, None] & (offs_l[None, :] < length))


@triton.jit
def _lanes_trip(l0, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
                a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
                K: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                SOFTPLUS: tl.constexpr, FAST: tl.constexpr, CLAMP: tl.constexpr):
    # 8 steps from l0, unrolled; returns the states and the (BLOCK_D, 8) tile of y
    h0, h1, h2, h3, h4, h5, h6, h7, y0 = _lanes_step(
        l0, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
        a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y1 = _lanes_step(
        l0 + 1, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
        a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y2 = _lanes_step(
        l0 + 2, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
        a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y3 = _lanes_step(
        l0 + 3, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
        a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y4 = _lanes_step(
        l0 + 4, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
        a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y5 = _lanes_step(
        l0 + 5, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
        a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y6 = _lanes_step(
        l0 + 6, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
        a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y7 = _lanes_step(
        l0 + 7, length, u_ptrs, su_l, dt_ptrs, sdt_l, b_ptrs, sB_n, sB_l, c_ptrs, sC_n, sC_l, z_ptrs, sz_l,
        a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
        K, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, FAST, CLAMP)
    return h0, h1, h2, h3, h4, h5, h6, h7, _tile8(y0, y1, y2, y3, y4, y5, y6, y7)


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
        dt = _softplus(dt, False)
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
VARIANTS = ("auto", "cuda", "lanes", "par", "pipe", "seq")
PREFETCH_DIST = 2  # N = 8 kernel: prefetch the lines of the trip this many trips ahead into L1 (0: no prefetch)
PAR_POLY = 0  # decays per element computed by _exp2_fma instead of MUFU exp2 (bench/scan.py --quick sweeps it)


def pick_par_config(dim: int, length: int):
    """(BLOCK_D, num_warps) of the parallel kernel: a (BLOCK_D, L_P2) tile of about 4K elements per program."""
    lp2 = triton.next_power_of_2(max(int(length), 1))
    bd = max(1, min(64, 4096 // lp2, triton.next_power_of_2(dim)))
    nw = max(1, min(8, bd * lp2 // 512))  # about 16 tile elements per thread and tensor
    return bd, nw


def pick_config(dim: int, length: int, n: int = 8):
    """(BLOCK_D, BLOCK_L, num_warps) for a problem; chosen by the sweeps of bench/scan.py (docs/benchmarks.md)."""
    if n == 8:
        # H200, fp16, device time (bench/scan.py --quick, docs/benchmarks.md): (64, 8, 1) 60.6 / 87.0 us at
        # 160 x 196 batch 128 / 256 and 25.7 / 50.5 us at 320 x 49, the best or within 4% of the best of 12 tiles;
        # BLOCK_L 4 was 1.5-2x slower, two or four warps per program 5-40% slower.
        return 64, 8, 1
    # the generic kernel (bench/scan.py --sweep, earlier H200 run): BLOCK_L 8 at L = 196, 4 at L = 49
    return 32, (4 if length <= 64 else 8), 1


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          block_d=None, block_l=None, num_warps=None, variant=None, out=None, poly=None,
                          prefetch=None, lanes=None, tile=None, rows=False, short=False, check=True):
    """Same contract as :func:`edgemv.ops.selective_scan`; CUDA tensors only. ``check=False`` skips
    :func:`~edgemv.ops.inputs.check_scan_inputs` (shapes, dtypes, devices), for callers that have run it.

    ``variant`` (None reads the EDGEMV_TRITON_SCAN environment variable, default 'auto'):

    - 'seq': sequential over L, one thread per channel, the next trips' lines prefetched into L1;
    - 'pipe' (N = 8): as 'seq' with u and delta of the next trip loaded into registers a trip ahead
      (``tile=True``: read as (BLOCK_D, 8) tiles);
    - 'lanes' (N = 8): a channel's states spread over ``lanes`` (1, 2, 4, 8) threads;
    - 'par': parallel prefix scan over L, the whole sequence per program (L up to ``PAR_MAX_L``; correct but slower
      on the H200, kept for comparison);
    - 'cuda' (N = 8): the CUDA C++ kernel of edgemv.ops.scan_cuda, ``lanes`` (1, 2, 4; default 4) lanes per
      channel; needs nvcc (built on first use). ``rows=True``: its rows form (u and y contiguous along L, delta
      along L or along D; lanes 2), ``short=True`` its short form (L up to 64, u contiguous; lanes 2); each raises
      ValueError for inputs it cannot take;
    - 'auto': for N = 8 the fastest of ``scan_tune.candidates()`` for this problem (the 'cuda' kernel among them
      where it is available), timed on its first call and remembered (edgemv.ops.scan_tune); 'seq' for other N, or
      when tile options are given.

    ``block_d``, ``num_warps`` (and ``block_l`` for 'seq') override the tile choice. ``out``: a (batch, D, L)
    tensor of u's dtype to write y into (the tests poison it first); by default a new one. ``poly`` ('par' only):
    how many of the N decays per element are computed with a polynomial on the FMA pipe instead of the MUFU exp2
    (default ``PAR_POLY``). ``prefetch`` ('seq', 'pipe', 'lanes'; N = 8): how many trips ahead the L1 prefetch
    reaches, 0 to switch it off (default ``PREFETCH_DIST``; 'pipe' prefetches only B and C, two trips ahead).
    """
    if check:
        check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    batch, dim, length = u.shape
    n = A.shape[1]
    variant = variant or os.environ.get("EDGEMV_TRITON_SCAN", "auto")
    if variant not in VARIANTS:
        raise ValueError(f"unknown Triton scan variant {variant!r}; choose one of {VARIANTS}")
    if variant == "auto":
        tiles_given = any(v is not None for v in (block_d, block_l, num_warps, lanes, tile))
        if n == 8 and not _INTERPRET and not tiles_given and u.numel():
            # the fastest of the N = 8 kernels for this problem, measured on its first call (edgemv.ops.scan_tune)
            from .scan_tune import choose, run_choice

            def run(v, opts, o):
                return selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus, variant=v,
                                             out=o, prefetch=prefetch, check=False, **opts)

            choice = choose(run, u, delta, B, C, D, z, delta_bias, delta_softplus,
                            precompile=lambda cands, o: precompile(run, cands, o))
            return run_choice(run, choice, out)
        variant = "seq"  # 'par' was slower at every shape measured (docs/scan.md, "The Triton kernel")
    if variant == "cuda":
        from .scan_cuda import selective_scan_cuda

        return selective_scan_cuda(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out=out, lanes=lanes or 4,
                                   rows=rows, short=short, check=False)
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
    if variant in ("pipe", "lanes") and n != 8:
        raise ValueError(f"variant {variant!r} is written for N=8, got N={n}")
    # the N = 8 kernels' inline PTX (MUFU, L1 prefetch) exists only on the GPU, not in Triton's interpreter
    dist = PREFETCH_DIST if prefetch is None else prefetch
    n8_opts = {"PREFETCH": bool(dist) and not _INTERPRET, "FAST": not _INTERPRET}
    if variant == "par":
        bd, nw = pick_par_config(dim, length)
        bd, nw = block_d or bd, num_warps or nw
        grid = (batch, triton.cdiv(dim, bd))
        _launch(_scan_par_kernel, grid, *args, N=n, BLOCK_D=bd, L_P2=triton.next_power_of_2(length), **flags,
                POLY=PAR_POLY if poly is None else poly, num_warps=nw)
        return y
    if variant == "pipe":
        bd = block_d or 64
        _launch(_scan_pipe_kernel, (batch, triton.cdiv(dim, bd)), *args, BLOCK_D=bd, TILE=bool(tile), **flags,
                **n8_opts, num_warps=num_warps or max(1, bd // 64))
        return y
    if variant == "lanes":
        lanes = lanes or 2
        if lanes not in (1, 2, 4, 8):  # K = 8 // lanes states per lane: 16 lanes would hold none, silently
            raise ValueError(f"lanes must be 1, 2, 4 or 8, got {lanes}")
        nw = num_warps or 1
        bd = block_d or 32 * nw // lanes * 2
        _launch(_scan_lanes_kernel, (batch, triton.cdiv(dim, bd)), *args, BLOCK_D=bd, LANES=lanes, **flags,
                **n8_opts, PF_DIST=max(int(dist), 1), num_warps=nw)
        return y
    bd, bl, nw = pick_config(dim, length, n)
    bd, bl, nw = block_d or bd, block_l or bl, num_warps or nw
    grid = (batch, triton.cdiv(dim, bd))
    if n == 8:  # MambaVision's d_state: the states written out as registers
        kernel, extra = _scan_n8_kernel, {**n8_opts, "PF_DIST": max(int(dist), 1)}
        bl = 8 if bl >= 8 else 4
    else:  # any other state size: states as a (N, BLOCK_D) tensor (slower: layout shuffles per step)
        kernel, extra = _scan_seq_kernel, {"N": n, "N_P2": triton.next_power_of_2(n)}
    _launch(kernel, grid, *args, BLOCK_D=bd, BLOCK_L=bl, **extra, **flags, num_warps=nw)
    return y
