"""Chunked parallel form of the selective scan, in plain tensor ops only.

The sequence is cut into chunks of ``c`` steps. With S the running sum of delta, the state is

    h_t = sum_{s<=t} exp(A * (S_t - S_s)) * delta_s * B_s * u_s

so inside a chunk the decays form a lower-triangular ``c x c`` matrix per (channel, state), and across chunks the
chunk-end states combine through the same kind of matrix, ``nc x nc`` with ``nc = ceil(L / c)``. Both levels are
evaluated in parallel: there is no loop over L or over chunks, so the exported graph holds a fixed, small number of
nodes per scan (MatMul, Mul, Add, Exp, Softplus, ReduceSum, Reshape, Transpose, Slice, Pad) and no CumSum, Loop,
Scan or If.

Numerics: every difference ``S_t - S_s`` is formed directly as a sum of the deltas in between (a product with a
constant 0/1 "band" matrix), never as a difference of two running sums, so it carries no cancellation error; it is
>= 0, and since A < 0 every argument of exp is <= 0 (masked entries are about -1e30, giving exactly 0).
Nothing overflows, whatever the size of delta. Everything is computed in float32 whatever the input dtype, as
the reference does.

Cost: a tensor of ``batch * D * N * L * c`` (intra-chunk decays) and one of ``batch * D * N * nc * nc``
(inter-chunk decays). See :func:`default_chunk` for how c is chosen.
"""

import math
from functools import lru_cache
from typing import Optional

import torch
import torch.nn.functional as F

from .scan_ref import finish_output, prepare_delta

__all__ = ["selective_scan_chunked", "default_chunk"]


def default_chunk(length: int) -> int:
    """Chunk length used when none is given.

    Chosen by measurement (docs/scan.md, "Chunk length"): total work is about ``L*c + (L/c)**2`` per
    (batch, channel, state), smallest near ``c = (2L)**(1/3)``; the measured optimum on CPU was c = 7 for L = 196
    and L = 49 and stays flat between 5 and 10. We take ``round((2L)**(1/3))`` clamped to [4, 32], then spread L
    evenly over the chunks so that padding is less than one step per chunk.
    """
    if length <= 4:
        return max(length, 1)
    c = min(max(round((2 * length) ** (1.0 / 3.0)), 4), 32)
    nc = math.ceil(length / c)
    return math.ceil(length / nc)


# Added to the step sums of future pairs (s > t): exp(A * (sum + _FAR)) is exactly 0 for any A < -1e-8. Finite
# rather than inf so that gradients stay finite (inf * 0 would give NaN in d/dA).
_FAR = 1e30


@lru_cache(maxsize=64)
def _band_cpu(c: int, strict: bool):
    """Constant (c, c*c) 0/1 matrix M and (c, c) additive mask.

    ``(x @ M)[t*c + s] = sum_{s < i <= t} x_i`` (or ``sum_{s < i <= t-1}`` when ``strict``: the sum up to the end of
    the previous block); the mask is 0 where the pair (t, s) is in the past (s <= t, or s < t if strict) and
    ``_FAR`` elsewhere, added to the step sums so that exp(A * sum) vanishes for future pairs.
    """
    i = torch.arange(c).view(c, 1, 1)
    t = torch.arange(c).view(1, c, 1)
    s = torch.arange(c).view(1, 1, c)
    upper = t - 1 if strict else t
    band = ((s < i) & (i <= upper)).to(torch.float32).reshape(c, c * c)
    past = (s < t) if strict else (s <= t)
    mask = torch.where(past.view(c, c), 0.0, _FAR)
    tri = (torch.arange(c).view(c, 1) <= torch.arange(c).view(1, c)).to(torch.float32)  # (x @ tri)[t] = sum_{i<=t}
    return band, mask, tri


@lru_cache(maxsize=64)
def _consts_on(c: int, strict: bool, device: str):
    band, mask, tri = _band_cpu(c, strict)
    return band.to(device), mask.to(device), tri.to(device)


def _consts(c: int, strict: bool, device, cached: bool = True):
    # Cached per device: no host-to-device copy per call (which CUDA-graph capture would refuse). Graph tracers
    # that must own their constants (ExportedProgram.run_decompositions) ask for fresh ones.
    if not cached:
        return tuple(t.to(device) for t in _band_cpu.__wrapped__(c, strict))
    if device.type == "cpu":
        return _band_cpu(c, strict)
    return _consts_on(c, strict, str(device))


def selective_scan_chunked(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus: bool = False,
                           chunk: Optional[int] = None, cache_constants: bool = True):
    """Same contract as :func:`edgemv.ops.selective_scan`; ``chunk`` is the chunk length (default by measurement).

    ``cache_constants=False`` builds the constant 0/1 matrices afresh (for graph tracers that must own them).
    """
    out_dtype = u.dtype
    # Static sizes: under tracing these are baked into the graph (the batch dimension stays free: -1 below).
    dim, length, n = int(u.shape[1]), int(u.shape[2]), int(A.shape[1])
    if dim == 0 or length == 0:  # nothing to scan (the reshapes below leave the batch free, which needs D, L > 0)
        return torch.empty(u.shape, dtype=out_dtype, device=u.device)
    c = default_chunk(length) if chunk is None else max(1, min(int(chunk), length))
    nc = -(-length // c)
    pad = nc * c - length

    u32 = u.float()
    dt = prepare_delta(delta, delta_bias, delta_softplus)  # (b, D, L), float32
    A32 = A.float()
    Bf = B.float()
    Cf = C.float()
    x = dt * u32
    if pad:
        # Padded steps have delta = 0 (decay 1, no input): the state passes through them unchanged.
        dt = F.pad(dt, (0, pad))
        x = F.pad(x, (0, pad))
        Bf = F.pad(Bf, (0, pad))
        Cf = F.pad(Cf, (0, pad))

    band, mask, tri = _consts(c, False, u.device, cache_constants)
    dtc = dt.reshape(-1, dim, nc, c)
    # Intra-chunk: diff[t, s] = sum_{s<i<=t} dt_i for s <= t, 1e30 above the diagonal.
    diff = torch.matmul(dtc, band).reshape(-1, dim, nc, 1, c, c) + mask
    a_neg = A32.reshape(1, dim, 1, n, 1, 1)
    seg = torch.exp(diff * a_neg)  # (b, D, nc, N, c, c); exponents <= 0
    Bc = Bf.reshape(-1, 1, n, nc, c).transpose(2, 3)  # (b, 1, nc, N, c)
    Cc = Cf.reshape(-1, 1, n, nc, c).transpose(2, 3)
    bx = Bc * x.reshape(-1, dim, nc, 1, c)  # (b, D, nc, N, c)
    h_local = torch.matmul(seg, bx.unsqueeze(-1)).squeeze(-1)  # state from the chunk's own inputs, (b, D, nc, N, c)

    if nc > 1:
        # Inter-chunk: the state entering chunk k is sum_{j<k} exp(A * (S_end(k-1) - S_end(j))) h_local_end(j).
        total = torch.matmul(dtc, tri)  # inclusive running sum inside each chunk, (b, D, nc, c)
        ends = total[..., c - 1]  # (b, D, nc): each chunk's sum of delta
        bandk, maskk, _ = _consts(nc, True, u.device, cache_constants)
        gap = torch.matmul(ends, bandk).reshape(-1, dim, 1, nc, nc) + maskk  # (b, D, 1, k, j)
        carry_w = torch.exp(gap * A32.reshape(1, dim, n, 1, 1))  # (b, D, N, k, j); row 0 is all zero
        h_end = h_local[..., c - 1].transpose(2, 3)  # (b, D, N, nc)
        h_in = torch.matmul(carry_w, h_end.unsqueeze(-1)).squeeze(-1).transpose(2, 3)  # (b, D, nc, N)
        decay_in = torch.exp(total.unsqueeze(3) * A32.reshape(1, dim, 1, n, 1))  # (b, D, nc, N, c)
        h_local = h_local + decay_in * h_in.unsqueeze(-1)

    y = (h_local * Cc).sum(3).reshape(-1, dim, nc * c)
    if pad:
        y = y[..., :length]
    return finish_output(y, u32, D, z, out_dtype)
