"""The selective scan implementations against an independent float64 sequential reference (CPU)."""

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import edgemv.ops as ops
from edgemv.ops.op import run_impl

TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def scan_f64(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Written here, independent of edgemv: h_t = exp(dt A) h_{t-1} + dt B_t u_t, y_t = C_t h_t + D u_t."""
    u, d = u.double(), delta.double()
    if delta_bias is not None:
        d = d + delta_bias.double()[:, None]
    if delta_softplus:
        d = F.softplus(d)
    A, B, C = A.double(), B.double(), C.double()
    h = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(u.shape[2]):
        h = torch.exp(d[:, :, t, None] * A) * h + (d[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, -1)
    if D is not None:
        y = y + u * D.double()[:, None]
    if z is not None:
        y = y * F.silu(z.double())
    return y


def make(batch, dim, length, dtype=torch.float32, big=False, has_d=True, has_z=False, has_bias=True,
         model_layout=True, n=8, softplus=True, seed=None, dt_rank=3):
    """Fresh random inputs; ``big``: |delta * A| up to ~50; ``model_layout``: strided views, as the mixer passes
    (B and C slices of one (batch, L, dt_rank + 2 n) tensor: dt_rank 3 leaves their rows unaligned, 4 and the
    model's own, ceil(2 dim / 16), 8-byte aligned in 16 and 32 bits)."""
    g = torch.Generator().manual_seed(seed if seed is not None else int.from_bytes(os.urandom(4), "little"))
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    u = r(batch, dim, length).to(dtype)
    A = -torch.exp(r(dim, n) * 0.5 + (1.0 if big else 0.0))
    if big:
        delta = torch.rand(batch, length, dim, generator=g) * 12
        if not softplus:
            delta = delta.clamp_min(1e-3)
    else:  # tiny steps: softplus of about -8 .. -1, or tiny positive values without softplus
        delta = (r(batch, length, dim) - 4.0) if softplus else torch.rand(batch, length, dim, generator=g) * 1e-3
    delta = delta.to(dtype).transpose(1, 2)
    xdbl = r(batch, length, dt_rank + 2 * n).to(dtype)
    B, C = xdbl[..., dt_rank:dt_rank + n].transpose(1, 2), xdbl[..., dt_rank + n:].transpose(1, 2)
    if not model_layout:
        delta, B, C = delta.contiguous(), B.contiguous(), C.contiguous()
    return dict(u=u, delta=delta, A=A, B=B, C=C,
                D=r(dim) if has_d else None,
                z=r(batch, dim, length).to(dtype) if has_z else None,
                delta_bias=(r(dim) * 0.5) if has_bias else None,
                delta_softplus=softplus)


def rel_err(y, ref):
    return ((y.double() - ref).norm() / ref.norm()).item()


# (batch*windows, channels, L, dtype, big delta, D, z, delta_bias, softplus, model layout): every L, channel
# count, batch and option appears; the heavy shapes are in SLOW_CASES.
FAST_CASES = [
    (1, 8, 1, torch.float32, False, True, False, True, True, True),
    (3, 8, 2, torch.float16, True, False, True, False, True, False),
    (16, 8, 7, torch.bfloat16, False, True, True, True, False, True),
    (1, 160, 49, torch.float32, True, True, False, True, True, True),
    (3, 160, 49, torch.float16, False, False, False, True, True, True),
    (3, 8, 64, torch.float32, False, False, True, False, False, False),
    (1, 160, 196, torch.float32, False, True, False, True, True, True),
    (1, 8, 196, torch.bfloat16, True, True, False, True, True, True),
    (1, 320, 49, torch.float16, True, True, False, True, True, True),
    (1, 8, 256, torch.float32, True, False, False, False, False, True),
    (1, 16, 1024, torch.float32, False, True, True, True, True, False),
]
SLOW_CASES = [
    (16, 160, 196, torch.float16, True, True, False, True, True, True),
    (16, 320, 49, torch.float32, False, True, True, True, True, True),
    (3, 784, 256, torch.bfloat16, True, True, True, True, True, False),
    (3, 320, 1024, torch.float32, True, True, False, True, True, True),
    (1, 784, 1024, torch.float16, False, True, False, True, True, True),
    (16, 784, 64, torch.float32, True, False, True, False, False, True),
]


def _check(impl, case):
    b, dim, L, dtype, big, has_d, has_z, has_bias, softplus, layout = case
    inp = make(b, dim, L, dtype, big, has_d, has_z, has_bias, layout, softplus=softplus)
    y = run_impl(impl, **inp)
    assert y.shape == (b, dim, L) and y.dtype == dtype
    err = rel_err(y, scan_f64(**inp))  # the reference sees the same (rounded) inputs
    assert math.isfinite(err) and err < TOL[dtype], f"{impl} {case}: rel err {err:.3e}"


@pytest.mark.parametrize("impl", ["ref", "chunked", "doubling"])
@pytest.mark.parametrize("case", FAST_CASES, ids=lambda c: f"b{c[0]}-D{c[1]}-L{c[2]}-{str(c[3])[6:]}")
def test_scan_matches_float64(impl, case):
    _check(impl, case)


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["ref", "chunked", "doubling"])
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda c: f"b{c[0]}-D{c[1]}-L{c[2]}-{str(c[3])[6:]}")
def test_scan_matches_float64_heavy(impl, case):
    _check(impl, case)


@pytest.mark.parametrize("chunk", [1, 3, 5, 7, 16, 49, 64])
def test_chunked_any_chunk_length(chunk):
    inp = make(2, 16, 49, big=True)
    ref = scan_f64(**inp)
    assert rel_err(ops.selective_scan_chunked(**inp, chunk=chunk), ref) < 1e-5


@pytest.mark.parametrize("impl", ["ref", "chunked", "doubling", "auto"])
@pytest.mark.parametrize("shape", [(0, 8, 5), (2, 0, 5), (2, 8, 0)])
def test_empty_inputs_give_an_empty_output(impl, shape):
    """A zero batch, channel count or length is a valid (empty) problem, not an error ('chunked' used to raise)."""
    b, d, length = shape
    inp = dict(u=torch.randn(b, d, length, dtype=torch.float16), delta=torch.rand(b, d, length, dtype=torch.float16),
               A=-torch.rand(d, 8), B=torch.randn(b, 8, length, dtype=torch.float16),
               C=torch.randn(b, 8, length, dtype=torch.float16), D=torch.randn(d), delta_bias=torch.randn(d),
               delta_softplus=True)
    y = ops.selective_scan(**inp, impl=impl)
    assert y.shape == shape and y.dtype == torch.float16


@pytest.mark.parametrize("form", ["chunked", "doubling"])
def test_plain_op_forms_exponents_never_positive(monkeypatch, form):
    seen = []
    real_exp = torch.exp

    def spy(x, *a, **k):
        seen.append(x.detach().max().item() if x.numel() else -math.inf)
        return real_exp(x, *a, **k)

    fn = ops.selective_scan_chunked if form == "chunked" else ops.selective_scan_doubling
    for length in (196, 49, 1024):  # 8, 6 and 10 doubling levels
        inp = make(2, 32, length, big=True)
        monkeypatch.setattr(torch, "exp", spy)
        y = fn(**inp)
        monkeypatch.undo()
        assert torch.isfinite(y).all()
    assert seen and max(seen) <= 0.0


def test_doubling_levels():
    from edgemv.ops.scan_doubling import doubling_levels

    assert [doubling_levels(L) for L in (1, 2, 3, 4, 5, 49, 64, 196, 1024)] == [0, 1, 2, 2, 3, 6, 6, 8, 10]


def test_doubling_huge_decay_and_long_sequence():
    """|delta * A| far beyond 50 and L = 4096: decays underflow to exactly 0, nothing overflows."""
    inp = make(1, 8, 4096, big=True, seed=3)
    inp["delta"] = inp["delta"] * 100
    ref = scan_f64(**inp)
    y = ops.selective_scan_doubling(**inp)
    assert torch.isfinite(y).all() and rel_err(y, ref) < 1e-5


def test_default_chunk_covers_lengths():
    for L in (1, 2, 7, 49, 64, 196, 256, 1024, 4096):
        c = ops.default_chunk(L)
        nc = -(-L // c)
        assert 1 <= c <= L and nc * c - L < nc  # padding under one step per chunk


def test_custom_op_and_settings():
    inp = make(2, 8, 20)
    ref = scan_f64(**inp)
    for impl in ("ref", "chunked", "doubling", "auto"):
        assert rel_err(ops.selective_scan(**inp, impl=impl), ref) < 1e-5
    assert ops.get_scan_impl() == "auto"
    with ops.scan_impl("chunked"):
        assert ops.get_scan_impl() == "chunked"
        assert rel_err(ops.selective_scan(**inp), ref) < 1e-5
    assert ops.get_scan_impl() == "auto"
    ops.set_scan_impl("ref")
    try:
        assert ops.get_scan_impl() == "ref"
    finally:
        ops.set_scan_impl("auto")
    with pytest.raises(ValueError):
        ops.set_scan_impl("cuda")
    with pytest.raises(ValueError):
        ops.selective_scan(**inp, impl="nope")
    with pytest.raises(ValueError):
        with ops.scan_onnx_form("tensorrt"):
            pass
    assert ops.get_scan_decomposition() == ops.DEFAULT_DECOMPOSITION == "doubling"
    with ops.scan_decomposition("chunked"):
        assert ops.get_scan_decomposition() == "chunked"
    assert ops.get_scan_decomposition() == "doubling"
    with pytest.raises(ValueError):
        ops.set_scan_decomposition("loop")
    assert ops.resolve_impl("auto", torch.device("cpu")) in ("ref", "chunked")
    for impl in ("chunked", "doubling"):
        y = torch.ops.edgemv.selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], inp["D"], None,
                                             inp["delta_bias"], True, impl)
        assert rel_err(y, ref) < 1e-5


def test_opcheck_fake_and_schema():
    inp = make(2, 8, 9, seed=0)
    args = (inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], inp["D"], None, inp["delta_bias"], True, "chunked")
    torch.library.opcheck(torch.ops.edgemv.selective_scan.default, args,
                          test_utils=("test_schema", "test_faketensor"))


def test_gradients_match_reference():
    inp = make(2, 4, 11, seed=1)
    leaves = {k: (v.detach().double().requires_grad_(True) if torch.is_tensor(v) else v) for k, v in inp.items()}
    y = ops.selective_scan(**leaves, impl="ref")
    grads = torch.autograd.grad(y.sum(), [leaves[k] for k in ("u", "delta", "A", "B", "D")])
    leaves2 = {k: (v.detach().double().requires_grad_(True) if torch.is_tensor(v) else v) for k, v in inp.items()}
    y2 = scan_f64(**leaves2)
    grads2 = torch.autograd.grad(y2.sum(), [leaves2[k] for k in ("u", "delta", "A", "B", "D")])
    for a, b in zip(grads, grads2):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)  # the backward recomputes in float32


def test_plain_eager_calls_skip_the_ops_dispatch_and_nothing_else_does(monkeypatch):
    # a plain eager call runs the implementation directly (the op's dispatch costs more host time than the GPU
    # kernel); a call that records gradients, runs under fake tensors or is traced goes through the op
    from torch._subclasses.fake_tensor import FakeTensorMode

    inp = make(2, 8, 9, seed=2)
    through_op = []
    real_op = ops.selective_scan_op
    monkeypatch.setattr(ops, "selective_scan_op", lambda *a: through_op.append(1) or real_op(*a))
    ref = ops.run_impl("ref", *inp.values())
    y = ops.selective_scan(**inp, impl="ref")
    assert not through_op and torch.equal(y, ref)
    with torch.no_grad():
        ops.selective_scan(**dict(inp, D=torch.nn.Parameter(inp["D"])), impl="ref")  # a module's weight
    assert not through_op
    leaf = inp["u"].clone().requires_grad_(True)
    ops.selective_scan(**dict(inp, u=leaf), impl="ref").sum().backward()
    assert through_op == [1] and leaf.grad is not None
    with FakeTensorMode() as mode:
        fake = {k: mode.from_tensor(v) if torch.is_tensor(v) else v for k, v in inp.items()}
        assert ops.selective_scan(**fake, impl="ref").shape == inp["u"].shape
    assert through_op == [1, 1]
    rest = list(inp.values())[1:]
    torch.jit.trace(lambda u: ops.selective_scan(u, *rest, impl="ref"), (inp["u"],), check_trace=False)
    assert len(through_op) == 3


def test_import_edgemv_stays_light():
    code = ("import sys, edgemv, edgemv.ops, edgemv.models; "
            "bad = [m for m in ('triton', 'onnx', 'onnxruntime', 'tensorrt', 'tensorrt_rtx') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# The sequential Triton kernel (variant 'seq') in Triton's interpreter: (batch, channels, L, dtype, big delta, D, z,
# delta_bias, softplus, model layout, BLOCK_D, BLOCK_L); channels not a multiple of BLOCK_D and L not a multiple of
# BLOCK_L exercise the clamped last trip and the masked store.
SEQ_CASES = [
    (2, 8, 1, torch.float32, True, False, True, False, True, False, None, None),
    (3, 8, 2, torch.float16, False, True, False, True, True, True, None, 4),
    (1, 40, 7, torch.bfloat16, True, True, True, True, True, True, None, None),
    (2, 70, 49, torch.float32, True, True, False, True, True, True, None, 8),
    (1, 320, 49, torch.float16, False, True, False, True, True, True, 32, 4),
    (1, 8, 64, torch.float32, False, False, True, False, False, False, None, None),
    (1, 8, 196, torch.float32, True, True, True, True, True, True, 16, 8),
]


def test_triton_kernel_logic_in_interpreter():
    """The sequential Triton kernels' logic (N = 8 and the generic N) on the CPU through Triton's interpreter."""
    pytest.importorskip("triton")
    code = r"""
import math, sys, torch
sys.path.insert(0, %r)
from _triton_interp import fix_scalar_index
fix_scalar_index()
from test_scan import make, scan_f64, rel_err, TOL
from edgemv.ops.scan_triton import selective_scan_triton
for case in %s:
    b, d, L, dt, big, has_d, has_z, has_bias, softplus, layout, bd, bl = case
    inp = make(b, d, L, dt, big, has_d, has_z, has_bias, layout, softplus=softplus)
    out = torch.full((b, d, L), float("nan"), dtype=dt)  # poisoned: every element must be written
    y = selective_scan_triton(**inp, variant="seq", block_d=bd, block_l=bl, out=out)
    err = rel_err(y, scan_f64(**inp))
    assert y is out and math.isfinite(err) and err < TOL[dt], (case, err)
for n in (4, 3, 12, 1):  # other state sizes: the generic kernel (N padded to a power of two inside)
    inp = make(2, 8, 9, n=n)
    out = torch.full((2, 8, 9), float("nan"))
    y = selective_scan_triton(**inp, block_d=16, block_l=8, num_warps=1, out=out)
    assert rel_err(y, scan_f64(**inp)) < 1e-5, n
""" % (os.path.dirname(__file__), repr(SEQ_CASES))
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


# The register-pipelined and lanes kernels ('auto' may pick either on CUDA): (case as in SEQ_CASES without the
# tile sizes, variant, options). Channels not a multiple of BLOCK_D and L not a multiple of 8 included.
PIPE_LANES_CASES = [
    ((2, 8, 1, torch.float32, True, True, False, False, True, True), "pipe", {"block_d": 32}),
    ((3, 8, 2, torch.float16, False, True, True, True, True, False), "pipe", {"block_d": 32, "tile": True}),
    ((1, 40, 7, torch.bfloat16, True, True, True, True, True, True), "pipe", {"block_d": 32, "tile": True}),
    ((2, 70, 49, torch.float32, True, False, False, True, True, False), "pipe", {"block_d": 64}),
    ((1, 8, 196, torch.float32, True, True, True, True, True, True), "lanes", {"lanes": 2, "block_d": 16}),
    ((1, 40, 9, torch.float16, False, True, True, False, True, False), "lanes", {"lanes": 4, "block_d": 8}),
    ((2, 20, 13, torch.float32, False, True, False, True, False, True), "lanes", {"lanes": 8, "block_d": 4}),
    ((1, 8, 16, torch.bfloat16, True, True, False, True, True, False), "lanes", {"lanes": 1, "block_d": 32}),
]


def test_triton_lanes_must_divide_the_states():
    """lanes=16 would give each lane 8 // 16 = 0 states and a wrong y without an error: refused up front."""
    pytest.importorskip("triton")
    from edgemv.ops.scan_triton import selective_scan_triton

    with pytest.raises(ValueError, match="lanes must be 1, 2, 4 or 8"):
        selective_scan_triton(**make(1, 8, 4), variant="lanes", lanes=16)


def test_triton_pipe_and_lanes_kernels_in_interpreter():
    """Variants 'pipe' (u/delta a trip ahead in registers, per-step or tile loads) and 'lanes' (a channel's states
    over 1-8 lanes, shuffle sum) against float64 on the CPU through Triton's interpreter, outputs poisoned."""
    pytest.importorskip("triton")
    code = r"""
import math, sys, torch
sys.path.insert(0, %r)
from _triton_interp import fix_scalar_index
fix_scalar_index()
from test_scan import make, scan_f64, rel_err, TOL
from edgemv.ops.scan_triton import selective_scan_triton
for case, variant, opts in %s:
    b, d, L, dt, big, has_d, has_z, has_bias, softplus, layout = case
    inp = make(b, d, L, dt, big, has_d, has_z, has_bias, layout, softplus=softplus)
    out = torch.full((b, d, L), float("nan"), dtype=dt)  # poisoned: every element must be written
    y = selective_scan_triton(**inp, variant=variant, out=out, **opts)
    err = rel_err(y, scan_f64(**inp))
    assert y is out and math.isfinite(err) and err < TOL[dt], (case, variant, opts, err)
""" % (os.path.dirname(__file__), repr(PIPE_LANES_CASES))
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


# The parallel Triton kernel (variant 'par') in Triton's interpreter: (batch, channels, L, dtype, big delta, D, z,
# delta_bias, softplus, model layout, poly). The interpreter's scan is vectorised by tests/_triton_interp.py.
PAR_FAST = [
    (2, 8, 1, torch.float32, True, False, True, False, True, False, 0),
    (3, 8, 2, torch.float16, False, True, False, True, True, True, 0),
    (1, 160, 7, torch.bfloat16, True, True, True, True, True, True, 0),
    (2, 8, 49, torch.float32, True, True, False, True, True, True, 8),
    (1, 320, 49, torch.float16, False, True, False, True, True, True, 0),
    (1, 8, 64, torch.float32, False, False, True, False, False, False, 0),
    (1, 8, 196, torch.float32, True, True, True, True, True, True, 3),
    (1, 8, 256, torch.bfloat16, False, True, False, True, True, False, 0),
    (1, 8, 1024, torch.float32, True, True, False, True, True, True, 0),
]
PAR_SLOW = [
    (2, 160, 196, torch.float16, True, True, False, True, True, True, 0),
    (1, 320, 64, torch.float32, False, True, True, True, True, True, 8),
    (1, 8, 2048, torch.float16, True, True, False, True, True, False, 0),
    (1, 160, 256, torch.bfloat16, False, False, True, False, True, True, 0),
]


def _run_par_in_interpreter(cases):
    code = r"""
import math, sys, torch
sys.path.insert(0, %r)
from _triton_interp import fast_interpreter_scan
fast_interpreter_scan()
from test_scan import make, scan_f64, rel_err, TOL
from edgemv.ops.scan_triton import selective_scan_triton
for case in %s:
    b, d, L, dt, big, has_d, has_z, has_bias, softplus, layout, poly = case
    inp = make(b, d, L, dt, big, has_d, has_z, has_bias, layout, softplus=softplus)
    out = torch.full((b, d, L), float("nan"), dtype=dt)  # poisoned: every element must be written
    y = selective_scan_triton(**inp, variant="par", poly=poly, out=out)
    assert y is out and y.dtype == dt
    err = rel_err(y, scan_f64(**inp))
    assert math.isfinite(err) and err < TOL[dt], (case, err)
    print(case, "%%.2e" %% err)
""" % (os.path.dirname(__file__), repr(cases))
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]


def test_triton_par_kernel_in_interpreter():
    """Variant 'par' against float64 on the CPU (Triton interpreter; skipped where triton is absent)."""
    pytest.importorskip("triton")
    _run_par_in_interpreter(PAR_FAST)


@pytest.mark.slow
def test_triton_par_kernel_in_interpreter_heavy():
    pytest.importorskip("triton")
    _run_par_in_interpreter(PAR_SLOW)
