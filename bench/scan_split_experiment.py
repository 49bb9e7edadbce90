"""Experiments on the N = 8 Triton scan: segments (more warps), coalesced u tiles, a register pipeline.

Nsight Compute on the library kernel (docs/benchmarks.md) showed one warp per scheduler issuing every 2.85 cycles,
255 registers per thread (at most 8 warps per SM) and loads using 3.3 of 32 bytes per sector (u read one 2-byte step
per channel). This kernel tests the three fixes together before any of them goes into edgemv.ops.scan_triton:

- PASS 1 / PASS 2: the sequence cut into segments of ``seg_len`` steps, one program per segment; pass 1 writes each
  segment's end state (from a zero start) and its sum of deltas, pass 2 combines the earlier segments' summaries
  into its start state (decay exp(A * sum) <= 1) and scans its segment writing y. PASS 0: one segment.
- U_TILE: u read as one (BLOCK_D, 8) tile per trip (coalesced; the compiler transposes through shared memory) and
  split into columns in registers, instead of one strided 2-byte load per step.
- PF_U: whether u's lines are prefetched into L1 too (delta, B, C always are, when PF).

A second kernel, ``_pkernel`` (``scan_p``), tests a register pipeline instead: u and delta of the next trip are
loaded into registers at the top of each trip and consumed a trip later (B, C stay prefetched scalar loads).

MambaVision's case only (D, delta_bias, softplus; no z), BLOCK_L = 8; the table's first row is the library's
sequential kernel at its (64, 8, 1) tile. Results: docs/benchmarks.md.

    python bench/scan_split_experiment.py              # CUDA: correctness vs float64, then a timing table
    python bench/scan_split_experiment.py --segments   # also the segment kernel's rows (the first experiment)
    TRITON_INTERPRET=1 python bench/scan_split_experiment.py --check   # CPU: correctness only (~1 min; 5 with
                                                                       # --segments)
"""

import argparse
import itertools
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import TOL, check_output, make_inputs, poisoned, scan_bytes, scan_f64  # noqa: E402

from edgemv.ops.scan_triton import (_cols8, _prefetch_l1, _softplus, _states8, _tile8,  # noqa: E402
                                    _trip_load)

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


@triton.jit
def _xstep(t, length, u, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l, a0, a1, a2, a3, a4, a5, a6, a7,
           dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, FAST: tl.constexpr, CLAMP: tl.constexpr):
    if CLAMP:
        tc = tl.minimum(t, length - 1)
    else:
        tc = t
    dt = _softplus(tl.load(dt_base + tc * sdt_l).to(tl.float32) + dbias, FAST)
    if CLAMP:
        dt = tl.where(t < length, dt, 0.0)
    bp = B_base + tc * sB_l
    cp = C_base + tc * sC_l
    du = dt * u
    h0, h1, h2, h3, h4, h5, h6, h7, y = _states8(h0, h1, h2, h3, h4, h5, h6, h7, a0, a1, a2, a3, a4, a5, a6, a7,
                                                 dt, du, bp, sB_n, cp, sC_n)
    return h0, h1, h2, h3, h4, h5, h6, h7, y + dskip * u, dt


@triton.jit
def _xtrip(l0, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
           a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7,
           U_TILE: tl.constexpr, FAST: tl.constexpr, CLAMP: tl.constexpr):
    offs_l = l0 + tl.arange(0, 8)
    if CLAMP:
        offs_l = tl.minimum(offs_l, length - 1)
    if U_TILE:
        u0, u1, u2, u3, u4, u5, u6, u7 = _cols8(tl.load(u_base[:, None] + offs_l[None, :] * su_l).to(tl.float32))
    else:
        tc = tl.minimum(l0, length - 1) if CLAMP else l0
        u0 = tl.load(u_base + tc * su_l).to(tl.float32)
        u1 = tl.load(u_base + (tl.minimum(l0 + 1, length - 1) if CLAMP else l0 + 1) * su_l).to(tl.float32)
        u2 = tl.load(u_base + (tl.minimum(l0 + 2, length - 1) if CLAMP else l0 + 2) * su_l).to(tl.float32)
        u3 = tl.load(u_base + (tl.minimum(l0 + 3, length - 1) if CLAMP else l0 + 3) * su_l).to(tl.float32)
        u4 = tl.load(u_base + (tl.minimum(l0 + 4, length - 1) if CLAMP else l0 + 4) * su_l).to(tl.float32)
        u5 = tl.load(u_base + (tl.minimum(l0 + 5, length - 1) if CLAMP else l0 + 5) * su_l).to(tl.float32)
        u6 = tl.load(u_base + (tl.minimum(l0 + 6, length - 1) if CLAMP else l0 + 6) * su_l).to(tl.float32)
        u7 = tl.load(u_base + (tl.minimum(l0 + 7, length - 1) if CLAMP else l0 + 7) * su_l).to(tl.float32)
    h0, h1, h2, h3, h4, h5, h6, h7, y0, d0 = _xstep(l0, length, u0, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n,
                                                    sC_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y1, d1 = _xstep(l0 + 1, length, u1, dt_base, sdt_l, B_base, sB_n, sB_l, C_base,
                                                    sC_n, sC_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y2, d2 = _xstep(l0 + 2, length, u2, dt_base, sdt_l, B_base, sB_n, sB_l, C_base,
                                                    sC_n, sC_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y3, d3 = _xstep(l0 + 3, length, u3, dt_base, sdt_l, B_base, sB_n, sB_l, C_base,
                                                    sC_n, sC_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y4, d4 = _xstep(l0 + 4, length, u4, dt_base, sdt_l, B_base, sB_n, sB_l, C_base,
                                                    sC_n, sC_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y5, d5 = _xstep(l0 + 5, length, u5, dt_base, sdt_l, B_base, sB_n, sB_l, C_base,
                                                    sC_n, sC_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y6, d6 = _xstep(l0 + 6, length, u6, dt_base, sdt_l, B_base, sB_n, sB_l, C_base,
                                                    sC_n, sC_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST, CLAMP)
    h0, h1, h2, h3, h4, h5, h6, h7, y7, d7 = _xstep(l0 + 7, length, u7, dt_base, sdt_l, B_base, sB_n, sB_l, C_base,
                                                    sC_n, sC_l, a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST, CLAMP)
    dsum = ((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7))
    return h0, h1, h2, h3, h4, h5, h6, h7, _tile8(y0, y1, y2, y3, y4, y5, y6, y7), dsum


@triton.jit
def _xkernel(u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, y_ptr, sum_ptr, dim, length, seg_len, n_seg,
             su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n, sB_b, sB_n, sB_l, sC_b, sC_n, sC_l, sy_b, sy_d, sy_l,
             BLOCK_D: tl.constexpr, PASS: tl.constexpr, U_TILE: tl.constexpr, PF: tl.constexpr,
             PF_U: tl.constexpr, FAST: tl.constexpr):
    pid_b = tl.program_id(0).to(tl.int64)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    pid_s = tl.program_id(2)
    dmask = offs_d < dim
    d_in = tl.minimum(offs_d, dim - 1)
    a_row = A_ptr + d_in * sA_d
    a0 = tl.load(a_row).to(tl.float32) * 1.4426950408889634
    a1 = tl.load(a_row + sA_n).to(tl.float32) * 1.4426950408889634
    a2 = tl.load(a_row + 2 * sA_n).to(tl.float32) * 1.4426950408889634
    a3 = tl.load(a_row + 3 * sA_n).to(tl.float32) * 1.4426950408889634
    a4 = tl.load(a_row + 4 * sA_n).to(tl.float32) * 1.4426950408889634
    a5 = tl.load(a_row + 5 * sA_n).to(tl.float32) * 1.4426950408889634
    a6 = tl.load(a_row + 6 * sA_n).to(tl.float32) * 1.4426950408889634
    a7 = tl.load(a_row + 7 * sA_n).to(tl.float32) * 1.4426950408889634
    dskip = tl.load(D_ptr + d_in).to(tl.float32)
    dbias = tl.load(bias_ptr + d_in).to(tl.float32)
    u_base = u_ptr + pid_b * su_b + d_in * su_d
    dt_base = dt_ptr + pid_b * sdt_b + d_in * sdt_d
    y_base = y_ptr + pid_b * sy_b + offs_d * sy_d
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
    sum_row = sum_ptr + pid_b * n_seg * 9 * dim + d_in
    if PASS == 2:
        for j in range(0, pid_s):
            row = sum_row + j * 9 * dim
            s = tl.load(row + 8 * dim)
            h0 = tl.exp2(a0 * s) * h0 + tl.load(row)
            h1 = tl.exp2(a1 * s) * h1 + tl.load(row + dim)
            h2 = tl.exp2(a2 * s) * h2 + tl.load(row + 2 * dim)
            h3 = tl.exp2(a3 * s) * h3 + tl.load(row + 3 * dim)
            h4 = tl.exp2(a4 * s) * h4 + tl.load(row + 4 * dim)
            h5 = tl.exp2(a5 * s) * h5 + tl.load(row + 5 * dim)
            h6 = tl.exp2(a6 * s) * h6 + tl.load(row + 6 * dim)
            h7 = tl.exp2(a7 * s) * h7 + tl.load(row + 7 * dim)
    l_start = pid_s * seg_len
    l_stop = tl.minimum(l_start + seg_len, length)
    cols = tl.arange(0, 8)
    nn = tl.arange(0, 8)
    dtot = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for l0 in range(l_start, l_stop, 8):
        if PF:
            t = tl.minimum(l0 + 16 + cols, length - 1)
            if PF_U:
                _prefetch_l1(u_base[:, None] + t[None, :] * su_l, True)
            _prefetch_l1(dt_base[:, None] + t[None, :] * sdt_l, True)
            _prefetch_l1(B_base + nn[:, None] * sB_n + t[None, :] * sB_l, True)
            _prefetch_l1(C_base + nn[:, None] * sC_n + t[None, :] * sC_l, True)
        if l0 + 8 <= length:
            h0, h1, h2, h3, h4, h5, h6, h7, y_tile, dsum = _xtrip(
                l0, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, U_TILE, FAST, False)
        else:
            h0, h1, h2, h3, h4, h5, h6, h7, y_tile, dsum = _xtrip(
                l0, length, u_base, su_l, dt_base, sdt_l, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, U_TILE, FAST, True)
        if PASS == 1:
            dtot += dsum
        else:
            offs_l = l0 + cols
            tl.store(y_base[:, None] + offs_l[None, :] * sy_l, y_tile.to(y_ptr.dtype.element_ty),
                     mask=dmask[:, None] & (offs_l[None, :] < length))
    if PASS == 1:
        row = sum_row + pid_s * 9 * dim
        tl.store(row, h0, mask=dmask)
        tl.store(row + dim, h1, mask=dmask)
        tl.store(row + 2 * dim, h2, mask=dmask)
        tl.store(row + 3 * dim, h3, mask=dmask)
        tl.store(row + 4 * dim, h4, mask=dmask)
        tl.store(row + 5 * dim, h5, mask=dmask)
        tl.store(row + 6 * dim, h6, mask=dmask)
        tl.store(row + 7 * dim, h7, mask=dmask)
        tl.store(row + 8 * dim, dtot, mask=dmask)


@triton.jit
def _pstep(t, length, u, dtr, B_base, sB_n, sB_l, C_base, sC_n, sC_l, a0, a1, a2, a3, a4, a5, a6, a7,
           dskip, dbias, h0, h1, h2, h3, h4, h5, h6, h7, FAST: tl.constexpr):
    # as _xstep, with u and the raw delta of the step already in registers (loaded a trip earlier). The library's
    # _pipe_step (CLAMP=True, no z) computes the same, but it converts u before delta, and with that order the
    # TILE kernel compiles to another instruction schedule (same counts and registers on sm_90); this copy keeps
    # the code whose timings docs/benchmarks.md records.
    tc = tl.minimum(t, length - 1)
    dt = tl.where(t < length, _softplus(dtr.to(tl.float32) + dbias, FAST), 0.0)
    u = u.to(tl.float32)
    bp = B_base + tc * sB_l
    cp = C_base + tc * sC_l
    du = dt * u
    h0, h1, h2, h3, h4, h5, h6, h7, y = _states8(h0, h1, h2, h3, h4, h5, h6, h7, a0, a1, a2, a3, a4, a5, a6, a7,
                                                 dt, du, bp, sB_n, cp, sC_n)
    return h0, h1, h2, h3, h4, h5, h6, h7, y + dskip * u


@triton.jit
def _pkernel(u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, y_ptr, dim, length,
             su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n, sB_b, sB_n, sB_l, sC_b, sC_n, sC_l, sy_b, sy_d, sy_l,
             BLOCK_D: tl.constexpr, PF: tl.constexpr, FAST: tl.constexpr, TILE: tl.constexpr = False):
    # Register pipeline: u and delta of trip k+1 are loaded at the top of trip k (into registers, consumed a trip
    # later), so their latency hides behind a whole trip of arithmetic; B and C stay scalar loads, prefetched.
    # The loads are the library's (_trip_load; TILE: u and delta as (BLOCK_D, 8) tiles); unlike the library's 'pipe'
    # kernel, every trip takes the clamped path (one copy of the trip in the loop).
    pid_b = tl.program_id(0).to(tl.int64)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    dmask = offs_d < dim
    d_in = tl.minimum(offs_d, dim - 1)
    a_row = A_ptr + d_in * sA_d
    a0 = tl.load(a_row).to(tl.float32) * 1.4426950408889634
    a1 = tl.load(a_row + sA_n).to(tl.float32) * 1.4426950408889634
    a2 = tl.load(a_row + 2 * sA_n).to(tl.float32) * 1.4426950408889634
    a3 = tl.load(a_row + 3 * sA_n).to(tl.float32) * 1.4426950408889634
    a4 = tl.load(a_row + 4 * sA_n).to(tl.float32) * 1.4426950408889634
    a5 = tl.load(a_row + 5 * sA_n).to(tl.float32) * 1.4426950408889634
    a6 = tl.load(a_row + 6 * sA_n).to(tl.float32) * 1.4426950408889634
    a7 = tl.load(a_row + 7 * sA_n).to(tl.float32) * 1.4426950408889634
    dskip = tl.load(D_ptr + d_in).to(tl.float32)
    dbias = tl.load(bias_ptr + d_in).to(tl.float32)
    u_base = u_ptr + pid_b * su_b + d_in * su_d
    dt_base = dt_ptr + pid_b * sdt_b + d_in * sdt_d
    y_base = y_ptr + pid_b * sy_b + offs_d * sy_d
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
    cols = tl.arange(0, 8)
    nn = tl.arange(0, 8)
    u0, u1, u2, u3, u4, u5, u6, u7 = _trip_load(u_base, su_l, 0, length, TILE)
    d0, d1, d2, d3, d4, d5, d6, d7 = _trip_load(dt_base, sdt_l, 0, length, TILE)
    for l0 in range(0, length, 8):
        if PF:
            t = tl.minimum(l0 + 16 + cols, length - 1)
            _prefetch_l1(B_base + nn[:, None] * sB_n + t[None, :] * sB_l, True)
            _prefetch_l1(C_base + nn[:, None] * sC_n + t[None, :] * sC_l, True)
        v0, v1, v2, v3, v4, v5, v6, v7 = _trip_load(u_base, su_l, l0 + 8, length, TILE)
        e0, e1, e2, e3, e4, e5, e6, e7 = _trip_load(dt_base, sdt_l, l0 + 8, length, TILE)
        h0, h1, h2, h3, h4, h5, h6, h7, y0 = _pstep(l0, length, u0, d0, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                                                    a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST)
        h0, h1, h2, h3, h4, h5, h6, h7, y1 = _pstep(l0 + 1, length, u1, d1, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                                                    a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST)
        h0, h1, h2, h3, h4, h5, h6, h7, y2 = _pstep(l0 + 2, length, u2, d2, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                                                    a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST)
        h0, h1, h2, h3, h4, h5, h6, h7, y3 = _pstep(l0 + 3, length, u3, d3, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                                                    a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST)
        h0, h1, h2, h3, h4, h5, h6, h7, y4 = _pstep(l0 + 4, length, u4, d4, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                                                    a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST)
        h0, h1, h2, h3, h4, h5, h6, h7, y5 = _pstep(l0 + 5, length, u5, d5, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                                                    a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST)
        h0, h1, h2, h3, h4, h5, h6, h7, y6 = _pstep(l0 + 6, length, u6, d6, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                                                    a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST)
        h0, h1, h2, h3, h4, h5, h6, h7, y7 = _pstep(l0 + 7, length, u7, d7, B_base, sB_n, sB_l, C_base, sC_n, sC_l,
                                                    a0, a1, a2, a3, a4, a5, a6, a7, dskip, dbias,
                                                    h0, h1, h2, h3, h4, h5, h6, h7, FAST)
        y_tile = _tile8(y0, y1, y2, y3, y4, y5, y6, y7)
        offs_l = l0 + cols
        tl.store(y_base[:, None] + offs_l[None, :] * sy_l, y_tile.to(y_ptr.dtype.element_ty),
                 mask=dmask[:, None] & (offs_l[None, :] < length))
        u0, u1, u2, u3, u4, u5, u6, u7 = v0, v1, v2, v3, v4, v5, v6, v7
        d0, d1, d2, d3, d4, d5, d6, d7 = e0, e1, e2, e3, e4, e5, e6, e7


def scan_p(u, delta, A, B, C, D, delta_bias, block_d=64, pf=True, num_warps=1, tile=False, out=None):
    batch, dim, length = u.shape
    y = torch.empty_like(u) if out is None else out
    _pkernel[(batch, triton.cdiv(dim, block_d))](
        u, delta, A, B, C, D, delta_bias, y, dim, length, *u.stride(), *delta.stride(), *A.stride(), *B.stride(),
        *C.stride(), *y.stride(), BLOCK_D=block_d, PF=pf and not _INTERPRET, FAST=not _INTERPRET,
        num_warps=num_warps, TILE=tile)
    return y


def scan_x(u, delta, A, B, C, D, delta_bias, block_d=32, segments=1, u_tile=True, pf=True, pf_u=False,
           num_warps=1, out=None):
    batch, dim, length = u.shape
    y = torch.empty_like(u) if out is None else out
    seg = max(8, triton.cdiv(triton.cdiv(length, segments), 8) * 8)
    nseg = triton.cdiv(length, seg)
    summ = torch.empty((batch, nseg, 9, dim), device=u.device, dtype=torch.float32)
    args = (u, delta, A, B, C, D, delta_bias, y, summ, dim, length, seg, nseg, *u.stride(), *delta.stride(),
            *A.stride(), *B.stride(), *C.stride(), *y.stride())
    flags = dict(BLOCK_D=block_d, U_TILE=u_tile, PF=pf and not _INTERPRET, PF_U=pf_u, FAST=not _INTERPRET,
                 num_warps=num_warps)
    grid = (batch, triton.cdiv(dim, block_d))
    if nseg == 1:
        _xkernel[grid + (1,)](*args, PASS=0, **flags)
        return y
    _xkernel[grid + (nseg - 1,)](*args, PASS=1, **flags)
    _xkernel[grid + (nseg,)](*args, PASS=2, **flags)
    return y


# (label, function, kwargs): library default first
CONFIGS = [("library seq (64, 8, 1)", None, None),
           ("register pipeline, 64 channels", scan_p, dict(block_d=64)),
           ("register pipeline, u/delta as tiles, 64 channels", scan_p, dict(block_d=64, tile=True)),
           ("register pipeline, u/delta as tiles, 32 channels", scan_p, dict(block_d=32, tile=True)),
           ("register pipeline, u/delta as tiles, 128 channels, 2 warps", scan_p, dict(block_d=128, tile=True,
                                                                                      num_warps=2)),
           ("register pipeline, u/delta as tiles, 64 channels, no B/C prefetch", scan_p, dict(block_d=64, tile=True,
                                                                                             pf=False))]
# --segments: the first experiment (docs/benchmarks.md, "The profile's three suspects tested together")
SEGMENT_CONFIGS = [
    ("one segment, u per step, all prefetched (the library's structure)", scan_x,
     dict(block_d=64, segments=1, u_tile=False, pf=True, pf_u=True)),
    ("one segment, u as coalesced tile, u not prefetched", scan_x,
     dict(block_d=64, segments=1, u_tile=True, pf=True, pf_u=False)),
    ("one segment, u tile, 32 channels per program", scan_x,
     dict(block_d=32, segments=1, u_tile=True, pf=True, pf_u=False)),
    ("2 segments, u tile, 32 channels", scan_x, dict(block_d=32, segments=2, u_tile=True, pf=True, pf_u=False)),
    ("4 segments, u tile, 32 channels", scan_x, dict(block_d=32, segments=4, u_tile=True, pf=True, pf_u=False)),
    ("8 segments, u tile, 32 channels", scan_x, dict(block_d=32, segments=8, u_tile=True, pf=True, pf_u=False)),
    ("4 segments, u tile, 32 channels, no prefetch", scan_x,
     dict(block_d=32, segments=4, u_tile=True, pf=False, pf_u=False)),
    ("4 segments, u per step, 32 channels, all prefetched", scan_x,
     dict(block_d=32, segments=4, u_tile=False, pf=True, pf_u=True)),
    ("4 segments, u tile, 64 channels", scan_x, dict(block_d=64, segments=4, u_tile=True, pf=True, pf_u=False)),
]


def _experiment_inputs(inp):
    # the experiment kernels' arguments: MambaVision's options (softplus always on, no z)
    return {k: v for k, v in inp.items() if k not in ("z", "delta_softplus")}


def check(device, configs):
    worst = 0.0
    for (b, d, L, dt, lay) in [(2, 40, 7, torch.float32, True), (1, 70, 49, torch.float16, False),
                               (2, 8, 196, torch.float32, False), (1, 160, 196, torch.float16, True),
                               (1, 8, 1, torch.float32, True)]:
        inp = _experiment_inputs(make_inputs(b, d, L, dt, device, big=(L == 49), model_layout=lay))
        ref = scan_f64(**inp, delta_softplus=True)
        for label, fn, kw in configs[1:]:
            err, ok = check_output(fn(**inp, **kw, out=poisoned(inp["u"])), ref, dt)
            worst = max(worst, err / TOL[dt])
            if not ok:
                print(f"FAIL {label} {b}x{d}x{L} {dt}: {err:.2e}", flush=True)
                return False
    print(f"correctness: all passed (worst error / tolerance {worst:.2f})", flush=True)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="only the correctness checks against float64")
    ap.add_argument("--segments", action="store_true",
                    help="also the segment kernel's configurations (the first experiment, _xkernel)")
    args = ap.parse_args()
    configs = CONFIGS + (SEGMENT_CONFIGS if args.segments else [])
    device = "cpu" if _INTERPRET else "cuda"
    if _INTERPRET:  # the interpreter's scalar loop bounds under numpy >= 2.3 (tests/_triton_interp.py)
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
        import _triton_interp

        _triton_interp.fix_scalar_index()
    ok = check(device, configs)
    if args.check or not ok:
        sys.exit(0 if ok else 1)
    from scan import device_time_ms

    from edgemv.ops.scan_triton import selective_scan_triton

    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}")
    print("| config | layout | 160x196 b128 | 160x196 b256 | 320x49 b128 | 320x49 b256 |  (fp16 device time, us)")
    for (label, fn, kw), layout in itertools.product(configs, ("model", "contiguous")):
        cells = []
        for (dim, L) in ((160, 196), (320, 49)):
            for b in (128, 256):
                def make():
                    inp = make_inputs(b, dim, L, torch.float16, device, model_layout=layout == "model")
                    if fn is None:  # the library's sequential kernel at its (64, 8, 1) tile, not 'auto'
                        return lambda: selective_scan_triton(**inp, variant="seq", block_d=64, block_l=8,
                                                             num_warps=1)
                    inp = _experiment_inputs(inp)
                    return lambda: fn(**inp, **kw)
                ms = device_time_ms(make, scan_bytes(b, dim, L, torch.float16), reps=10)
                cells.append(f"{ms * 1e3:.1f}")
        print(f"| {label} | {layout} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
