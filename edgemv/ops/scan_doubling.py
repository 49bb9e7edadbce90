"""Log-depth (Hillis-Steele doubling) form of the selective scan, in plain tensor ops only.

The recurrence ``h_t = a_t * h_{t-1} + b_t`` with ``a_t = exp(delta_t * A)`` and ``b_t = delta_t * B_t * u_t`` is a
scan over the associative operator ``(a, b) o (a', b') = (a * a', a * b' + b)`` (later step on the left). After
level k (k = 0, 1, ...) every position t holds the pair for the window of the last ``2**(k+1)`` steps ending at t::

    b_t <- a_t * b_{t-s} + b_t,    a_t <- a_t * a_{t-s},    s = 2**k,

where positions before the start read the identity pair (a = 1, b = 0). After ``ceil(log2(L))`` levels ``b_t`` is
the state h_t itself. Each level shifts a and b by s steps (a Slice, then a Concat behind an s-step head of
zeros, or ones for a, made from a slice of b times 0: no batch-dependent shape in the graph), then two Mul and one
Add over a ``(batch, D, N, L)`` tensor: no loop over L in the graph (the levels are unrolled at trace time: 8 for
L = 196), no CumSum, Loop, Scan or If. (``F.pad`` does the same shift at the same speed in ONNX Runtime, but the
TorchScript exporter spells each Pad's pads as about 13 nodes: 3,140 for MambaVision-T before simplification
against 2,256 this way.)

Numerics: the only exp is ``exp(delta * A)`` with delta >= 0 and A < 0, so every exponent is <= 0; the products
of decays are products of numbers in [0, 1] and the states are sums of the inputs weighted by such products, so
nothing grows and nothing is subtracted. Work is ``L * log2(L)`` per (batch, channel, state) against the chunked
form's ``L * c + (L / c)**2`` and the sequential ``L``; the intermediate tensors are ``batch * D * N * L`` (the
chunked form's are c times larger). Everything is computed in float32 whatever the input dtype.
"""

import torch

from .scan_ref import finish_output, prepare_delta

__all__ = ["selective_scan_doubling", "doubling_levels"]


def doubling_levels(length: int) -> int:
    """Number of doubling levels for a sequence of ``length`` steps: ceil(log2(length)) (0 for length <= 1)."""
    levels, span = 0, 1
    while span < length:
        span *= 2
        levels += 1
    return levels


def selective_scan_doubling(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus: bool = False):
    """Same contract as :func:`edgemv.ops.selective_scan`."""
    out_dtype = u.dtype
    length = int(u.shape[2])  # static under tracing: the number of levels is baked into the graph
    u32 = u.float()
    dt = prepare_delta(delta, delta_bias, delta_softplus)  # (b, D, L), float32
    a = torch.exp(dt.unsqueeze(2) * A.float().unsqueeze(-1))  # (b, D, N, L); exponents <= 0
    b = (dt * u32).unsqueeze(2) * B.float().unsqueeze(1)  # (b, D, N, L)
    for level in range(doubling_levels(length)):
        span = 1 << level
        # The window ending s steps earlier; before the start, the identity pair (a = 1, b = 0).
        zeros = b[..., :span] * 0.0  # (b, D, N, span), shaped like b whatever the batch
        b_prev = torch.cat([zeros, b[..., :length - span]], dim=-1)
        a_prev = torch.cat([zeros + 1.0, a[..., :length - span]], dim=-1) if 2 * span < length else None
        b = a * b_prev + b
        if a_prev is not None:  # the last level needs no decay product
            a = a * a_prev
    y = (b * C.float().unsqueeze(1)).sum(2)  # (b, D, L)
    return finish_output(y, u32, D, z, out_dtype)
