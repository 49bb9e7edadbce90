"""The selective scan: one entry point, several implementations."""

from .scan_ref import selective_scan_ref

__all__ = ["selective_scan", "selective_scan_ref"]


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
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
    Returns:
        (batch, D, L) in u's dtype, accumulated in float32.
    """
    return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
