"""A plain float32 selective scan with mamba_ssm's ``selective_scan_fn`` signature (CPU stand-in for the CUDA kernel).

Written from the recurrence (per channel d, state n, h_0 = 0):
    delta_t = softplus(delta_t + delta_bias)            (each only if requested)
    h_t     = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t     = <C_t, h_t> + D * u_t,   then y_t *= silu(z_t) if z is given
Deliberately independent of edgemv.ops: one explicit step per position, no precomputed decay tensors.
"""

import torch
import torch.nn.functional as F

__all__ = ["selective_scan_fn", "selective_scan_ref"]


def _expand_bc(M, dim):
    """(b, N, L) shared by all channels, or (b, G, N, L) in G channel groups -> (b, dim, N, L)."""
    if M.dim() == 3:
        return M.unsqueeze(1).expand(-1, dim, -1, -1)
    groups = M.shape[1]
    return M.repeat_interleave(dim // groups, dim=1)


def selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                      return_last_state=False):
    if A.is_complex():
        raise NotImplementedError("complex A is not supported by the CPU stand-in")
    dtype_in = u.dtype
    u = u.float()
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float().view(1, -1, 1)
    if delta_softplus:
        dt = F.softplus(dt)
    A = A.float()
    batch, dim, length = u.shape
    Bx = _expand_bc(B.float(), dim)  # (b, d, N, L)
    Cx = _expand_bc(C.float(), dim)
    h = torch.zeros(batch, dim, A.shape[1], dtype=torch.float32, device=u.device)
    out = torch.empty(batch, dim, length, dtype=torch.float32, device=u.device)
    for t in range(length):
        d_t = dt[:, :, t].unsqueeze(-1)                      # (b, d, 1)
        h = torch.exp(d_t * A) * h + d_t * Bx[..., t] * u[:, :, t].unsqueeze(-1)
        out[:, :, t] = (h * Cx[..., t]).sum(-1)
    if D is not None:
        out = out + D.float().view(1, -1, 1) * u
    if z is not None:
        out = out * F.silu(z.float())
    out = out.to(dtype_in)
    return (out, h) if return_last_state else out


selective_scan_ref = selective_scan_fn
