"""What every selective-scan implementation assumes of its arguments, checked once per call.

The fused kernels index u, delta, B, C and z by u's shape and A, D and delta_bias by its channel count, so a tensor of
another shape would be read out of bounds on the GPU (an illegal address ends the process's CUDA context); the
plain-op forms broadcast a D or delta_bias of shape (1,) silently, and fail on other shapes with a message about some
intermediate tensor. One line names the first argument that does not fit instead.
"""

import torch

from ..errors import ScanInputError

__all__ = ["check_scan_inputs"]


_OPTIONAL = ("D", "z", "delta_bias")
_LAYOUT = {"delta": "(batch, D, L)", "z": "(batch, D, L)", "B": "(batch, N, L)", "C": "(batch, N, L)", "D": "(D,)",
           "delta_bias": "(D,)"}


def _shape(t) -> str:
    return str(tuple(t.shape))


def check_scan_inputs(u, delta, A, B, C, D=None, z=None, delta_bias=None) -> None:
    """Raise :class:`~edgemv.errors.ScanInputError` unless u, delta, z are (batch, D, L), A is (D, N), B and C are
    (batch, N, L), D and delta_bias are (D,) (D, z and delta_bias may be None), all real floating-point tensors on
    u's device."""
    for name, t in (("u", u), ("A", A)):
        if not isinstance(t, torch.Tensor):
            raise ScanInputError(f"selective scan: {name} must be a tensor, got {type(t).__name__}")
    if u.dim() != 3:
        raise ScanInputError(f"selective scan: u must be (batch, D, L), got shape {_shape(u)}")
    batch, dim, length = u.shape
    if A.dim() != 2 or A.shape[0] != dim:
        raise ScanInputError(f"selective scan: A must be (D, N) with D = {dim} (u's channels), got {_shape(A)}")
    seq, state, chan = (batch, dim, length), (batch, A.shape[1], length), (dim,)
    given = (("u", u, seq), ("delta", delta, seq), ("A", A, None), ("B", B, state), ("C", C, state), ("D", D, chan),
             ("z", z, seq), ("delta_bias", delta_bias, chan))
    device = u.device
    for name, t, want in given:
        if t is None and name in _OPTIONAL:
            continue
        if not isinstance(t, torch.Tensor):
            raise ScanInputError(f"selective scan: {name} must be a tensor, got {type(t).__name__}")
        if want is not None and t.shape != want:
            raise ScanInputError(f"selective scan: {name} must be {_LAYOUT[name]} = {want} (from u {_shape(u)} and "
                                 f"A {_shape(A)}), got {_shape(t)}")
        if not t.is_floating_point():
            raise ScanInputError(f"selective scan: {name} must be real floating point, got {t.dtype}")
        if t.device != device:
            raise ScanInputError(f"selective scan: {name} is on {t.device}, u on {device}: put every argument on "
                                 "one device")
