"""Sequential reference of the selective scan (mamba_ssm's ``selective_scan_ref`` semantics).

Accumulates in float32 whatever the input dtype; one step per position, so it is the slow, obviously-right form
that the faster implementations are checked against.
"""

import torch
import torch.nn.functional as F

__all__ = ["selective_scan_ref", "prepare_delta", "finish_output"]


def prepare_delta(delta: torch.Tensor, delta_bias=None, delta_softplus: bool = False) -> torch.Tensor:
    """delta (batch, D, L) in float32, with the bias added and softplus applied as mamba_ssm does."""
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)  # threshold 20, as the CUDA kernel
    return delta


def finish_output(y: torch.Tensor, u32: torch.Tensor, D=None, z=None, out_dtype=None) -> torch.Tensor:
    """y + D u, gated by silu(z), in ``out_dtype``: the end every plain-op form shares (y, u32 in float32)."""
    if D is not None:
        y = y + u32 * D.float().reshape(-1, 1)
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(out_dtype)


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """y (batch, D, L) from u, delta (batch, D, L); A (D, N); B, C (batch, N, L); D (D,); z (batch, D, L)."""
    out_dtype = u.dtype
    u32 = u.float()
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    A = A.float()
    B = B.float()
    C = C.float()
    batch, dim, length = u32.shape
    decay = torch.exp(delta.unsqueeze(-1) * A[None, :, None, :])  # (batch, D, L, N)
    drive = (delta * u32).unsqueeze(-1) * B.transpose(1, 2)[:, None, :, :]  # (batch, D, L, N)
    state = u32.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(length):
        state = decay[:, :, t] * state + drive[:, :, t]
        ys.append(torch.einsum("bdn,bn->bd", state, C[:, :, t]))
    y = torch.stack(ys, dim=-1) if ys else u32.new_zeros(batch, dim, 0)
    return finish_output(y, u32, D, z, out_dtype)
