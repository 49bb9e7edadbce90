"""The CUDA C++ scan kernel (edgemv/ops/cuda/selective_scan_n8.cu; 1, 2 and 4 lanes per channel) compiled with g++
and run on the CPU through edgemv/ops/cuda/cpu_emulation.h (one std::thread per lane, __syncwarp through a barrier),
against the float64 reference: its chunking, lane mappings for each layout, masked tails, staging, paired shared
layouts, partial sums and store are what is checked here, for float32 and for fp16/bfloat16 inputs (the 16-bit types
emulated: their storage, and conversions that round to nearest even); the GPU-only parts (MUFU exp2, the CUDA
intrinsics themselves, the volatile PTX shared accesses) are not. Skips without a C++20 compiler ($CXX or g++)."""

import math
import os
import random
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

from test_scan import make, rel_err, scan_f64  # noqa: E402

from edgemv.ops import scan_cuda as _scan_cuda  # noqa: E402

pytestmark = pytest.mark.skipif(_scan_cuda.cxx() is None, reason="needs a C++ compiler ($CXX or g++)")

# (batch, channels, L, big delta, D, z, delta_bias, softplus, model layout, y transposed): one chunk or several,
# full and ragged channel blocks, L = 1, both input layouts, y stored along L or along D; the kernel's fast path
# (full channel blocks, L >= 32, no z) and its general path
CASES = [
    (1, 8, 1, False, True, False, True, True, True, False),
    (2, 40, 7, True, True, True, True, True, False, False),
    (1, 32, 64, False, True, False, True, True, True, False),
    (2, 70, 65, False, False, False, False, False, False, True),
    (3, 20, 33, True, True, True, False, True, True, True),
    (1, 64, 96, False, True, False, True, True, False, False),
    (1, 32, 196, False, True, False, True, True, True, False),  # MambaVision's lengths: full chunks, then the last
    (2, 48, 49, True, True, False, True, True, False, True),    # one shifted back to end at L
]


@pytest.fixture(scope="module")
def scan_cuda(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # the build goes to a temporary cache unless one is set
        if not os.environ.get("EDGEMV_CACHE_DIR"):
            mp.setenv("EDGEMV_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        try:
            _scan_cuda._cpu_library()
        except RuntimeError as exc:  # e.g. a g++ without C++20's <barrier>
            pytest.skip(str(exc))
    return _scan_cuda


def _expect_refusals(scan_cuda, cases, **opts):
    """Each (inputs, message) of ``cases`` raises ValueError matching its message before the kernel runs."""
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            scan_cuda.selective_scan_cpu_emulation(**bad, **opts)


def _poisoned_run_error(scan_cuda, inp, out=None, ref=None, **opts):
    """The emulated kernel's relative error against float64 (``ref``, else computed), writing into ``out`` (by default
    a new (batch, D, L) tensor) poisoned with NaN first: every element must be written, and y must be out."""
    out = torch.empty(inp["u"].shape, dtype=inp["u"].dtype) if out is None else out
    out.fill_(float("nan"))
    y = scan_cuda.selective_scan_cpu_emulation(**inp, out=out, **opts)
    assert y is out
    return rel_err(y, scan_f64(**inp) if ref is None else ref)


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"b{c[0]}-d{c[1]}-L{c[2]}")
def test_cuda_kernel_logic_on_cpu(scan_cuda, case, lanes):
    b, d, L, big, has_d, has_z, has_bias, softplus, layout, y_t = case
    inp = make(b, d, L, torch.float32, big, has_d, has_z, has_bias, layout, softplus=softplus)
    out = torch.empty(b, L, d).transpose(1, 2) if y_t else None
    err = _poisoned_run_error(scan_cuda, inp, out, lanes=lanes)
    assert math.isfinite(err) and err < 1e-5, err


@pytest.mark.parametrize("big", [False, True])
def test_fast_softplus_of_16_bit_inputs_on_cpu(scan_cuda, big):
    # the softplus fp16/bf16 inputs get (log2(1 + v), an absolute error of ~6e-8 in delta), built here for float32:
    # far inside the fp16 tolerance (2e-3), and still near float32's
    inp = make(2, 40, 70, torch.float32, big, True, False, True, True, softplus=True)
    err = _poisoned_run_error(scan_cuda, inp, lanes=2, defines=("LEAN_FAST_SOFTPLUS=1",))
    assert math.isfinite(err) and err < 2e-5, err


# 16-bit inputs (cpu_emulation.h emulates the types): 8 bytes hold 4 values, so the element mappings differ from
# float32's: the rows form's chunks are 32 steps and it reads B and C in pairs where they are 4-byte aligned, the
# short form's runs and its 8-byte groups of B and C, the staged form's tiles. (form, lanes, batch, channels, L, big
# delta, z): whole chunks with tails, L shorter than a chunk, partial blocks of channels
CASES_16 = [
    ("staged", 2, 2, 40, 49, False, True),
    ("staged", 4, 1, 20, 100, True, False),
    ("rows", 2, 2, 40, 100, False, False),  # 3 chunks and a tail of 4
    ("rows", 2, 1, 20, 8, True, False),
    ("rows", 2, 1, 16, 64, False, False),
    ("short", 2, 2, 40, 49, False, False),
    ("short", 2, 1, 18, 7, True, False),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("case", CASES_16, ids=lambda c: f"{c[0]}{c[1]}-b{c[2]}-d{c[3]}-L{c[4]}")
def test_16_bit_kernel_logic_on_cpu(scan_cuda, case, dtype):
    # delta along L and along D; B and C as the model's x_proj slices at dt_rank 3 (rows unaligned), 4 (8-byte
    # aligned) and 6 (4-byte aligned only), the last with A, D and delta_bias stored in the same 16-bit type
    form, lanes, b, d, L, big, has_z = case
    tol = 2e-3 if dtype == torch.float16 else 1e-2
    taken = 0
    for delta_along in "LD":
        for dt_rank in (3, 4, 6):
            inp = make(b, d, L, dtype, big, True, has_z, True, True, softplus=True, dt_rank=dt_rank)
            if delta_along == "L":
                inp["delta"] = inp["delta"].contiguous()
            if dt_rank == 6:
                inp.update({k: inp[k].to(dtype) for k in ("A", "D", "delta_bias")})
            try:
                err = _poisoned_run_error(scan_cuda, inp, lanes=lanes, rows=form == "rows", short=form == "short")
            except ValueError as exc:  # a layout this form does not take: the others must be taken
                assert "kernel needs" in str(exc), exc
                continue
            taken += 1
            assert math.isfinite(err) and err < tol, (delta_along, dt_rank, err)
    assert taken >= 3, taken


# the rows form (cuda/scan_rows.cuh): u and y contiguous along L, delta along L or along D (the model's layout).
# (batch, channels, L, big delta, D, delta_bias, softplus, B/C strided as the model's): float32 chunks are 16
# steps, so L < 16, whole chunks, and whole chunks plus tails of 2 .. 14 steps; full and partial blocks of 16
# channels (delta along D needs an even channel count for float32)
ROWS_CASES = [
    (1, 8, 2, False, True, True, True, False),
    (2, 40, 14, True, True, True, True, True),
    (1, 32, 64, False, False, False, False, False),
    (3, 70, 18, True, True, False, True, True),
    (1, 16, 196, False, True, True, True, True),  # 12 chunks and a tail of 4
    (2, 34, 50, True, False, True, True, False),
    (1, 48, 46, False, True, False, False, True),  # no softplus: no bias (a negative delta would grow)
]


def test_rows_kernel_refuses_layouts_it_cannot_read(scan_cuda):
    inp = make(1, 8, 32, torch.float32, model_layout=False)
    odd_d = make(1, 7, 32, torch.float32, model_layout=True)  # delta along D, 7 channels: not whole 8-byte groups
    odd = make(1, 8, 31, torch.float32, model_layout=False)
    _expect_refusals(scan_cuda, ((dict(odd_d, u=odd_d["u"].contiguous()), "delta contiguous along L or along D"),
                                 (dict(inp, delta=torch.randn(1, 32, 8, 2)[..., 0].transpose(1, 2)), "delta"),
                                 (dict(inp, u=make(1, 8, 33, torch.float32)["u"][..., 1:]), "u contiguous"),
                                 (dict(inp, z=torch.randn(1, 8, 32)), "z"),
                                 (odd, "multiple of 2")), rows=True, lanes=2)
    _expect_refusals(scan_cuda, ((inp, "lanes"),), rows=True, lanes=1)


# the short form (cuda/scan_short.cuh): L up to 64, a block's whole sequences at once, u and y as one run of 8-byte
# words. (batch, channels, L, big delta, D, delta_bias, softplus, B/C strided as the model's): L = 1, odd and even L
# (float32 runs of odd length end in a single element), 49 (MambaVision's last level) and 64; full and partial
# blocks of 16 channels (delta along D needs an even channel count for float32)
SHORT_CASES = [
    (1, 8, 1, False, True, True, True, True),
    (2, 40, 49, True, True, True, True, True),
    (1, 16, 64, False, False, False, False, False),
    (3, 34, 7, True, True, False, True, True),
    (1, 32, 33, False, True, True, True, False),
    (2, 18, 63, True, False, True, True, True),
    (1, 48, 2, False, True, False, False, False),
    (1, 35, 9, True, True, True, True, False),  # 3 rows of 9 in the last block: a run that ends in one element
]


@pytest.mark.parametrize("bc_rows", ["unaligned", "aligned"])
@pytest.mark.parametrize("delta_along", ["L", "D"])
@pytest.mark.parametrize("form,case", [("rows", c) for c in ROWS_CASES] + [("short", c) for c in SHORT_CASES],
                         ids=lambda v: v if isinstance(v, str) else f"b{v[0]}-d{v[1]}-L{v[2]}")
def test_rows_and_short_kernel_logic_on_cpu(scan_cuda, form, case, delta_along, bc_rows):
    # bc_rows: B and C strided as the model's with rows 8-byte aligned or not (x_proj's dt_rank 4 or 3): the short
    # form reads aligned ones in 8-byte groups, the others a value per lane (the rows form both a value per lane)
    b, d, L, big, has_d, has_bias, softplus, strided_bc = case
    if delta_along == "D" and d % 2:
        pytest.skip("delta along D takes whole 8-byte groups of channels")
    if bc_rows == "aligned" and not strided_bc:
        pytest.skip("contiguous B and C lie along L, not in rows along N")
    inp = make(b, d, L, torch.float32, big, has_d, False, has_bias, strided_bc, softplus=softplus,
               dt_rank=4 if bc_rows == "aligned" else 3)  # u contiguous
    inp["delta"] = (inp["delta"].contiguous() if delta_along == "L"
                    else inp["delta"].transpose(1, 2).contiguous().transpose(1, 2))
    err = _poisoned_run_error(scan_cuda, inp, lanes=2, **{form: True})
    assert math.isfinite(err) and err < 1e-5, err


@pytest.mark.parametrize("layout", ["contiguous", "model"])
def test_short_kernel_takes_every_length_up_to_64_on_cpu(scan_cuda, layout):
    # each L maps a run's elements to (channel, step) by its own reciprocal: every L, a full and a partial block;
    # with the model's layout (delta along D, B and C in 8-byte aligned rows) every L's last access of B and C
    for L in range(1, 65):
        if layout == "model":
            inp = make(1, 18, L, torch.float32, True, True, False, True, True, softplus=True, dt_rank=4)
        else:
            inp = make(1, 19, L, torch.float32, True, True, False, True, False, softplus=True)
        err = _poisoned_run_error(scan_cuda, inp, lanes=2, short=True)
        assert math.isfinite(err) and err < 1e-5, (L, err)


def test_rows_and_short_forms_on_random_shapes_and_layouts_on_cpu(scan_cuda):
    # fresh shapes, dtypes and layouts each run (the seed is in the message): float32, fp16 or bf16; u contiguous,
    # strided or a view one element in; delta along L or D; B and C strided as x_proj's slices (rows unaligned, 8-byte
    # or 4-byte aligned), contiguous, or broadcast over the batch (stride 0) either way; A transposed. Each form either
    # refuses (ValueError) or matches float64 within the dtype's bound; the cases without softplus whose reference
    # overflows are skipped
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    taken = {"rows": 0, "short": 0}
    bound = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}
    for _ in range(48):
        dtype = rng.choice(list(bound))
        b, d = rng.choice([1, 2, 3]), rng.choice([1, 2, 5, 8, 16, 17, 33, 48])
        L = rng.choice([1, 2, 3, 4, 5, 16, 31, 32, 33, 49, 63, 64, 65, 100])
        inp = make(b, d, L, dtype, rng.random() < 0.3, rng.random() < 0.5, False, rng.random() < 0.5,
                   rng.random() < 0.5, softplus=rng.random() < 0.7, seed=rng.getrandbits(32),
                   dt_rank=rng.choice([3, 4, 6]))
        pick = rng.random()
        if pick < 0.4:
            inp["u"] = inp["u"].contiguous()
        elif pick < 0.5:
            inp["u"] = torch.randn(b, d, L + 2).to(dtype)[..., 1:L + 1]
        pick = rng.random()
        if pick < 0.15:
            inp["B"], inp["C"] = (torch.randn(1, 8, L).to(dtype).expand(b, 8, L) for _ in range(2))
        elif pick < 0.3:
            inp["B"], inp["C"] = (inp[k][:1].expand(b, 8, L) for k in ("B", "C"))
        if rng.random() < 0.3:
            inp["delta"] = inp["delta"].contiguous()
        if rng.random() < 0.1:
            inp["A"] = inp["A"].t().contiguous().t()
        ref = scan_f64(**inp)
        # skipped: a reference that overflows, or that the output dtype cannot hold (float16 ends at 65504: seed
        # 4203618579 drew an fp16 case whose y reaches 1.5e5, and the kernels rightly wrote inf)
        if not torch.isfinite(ref).all() or ref.abs().max() > min(1e6, torch.finfo(dtype).max / 2):
            continue
        for form in taken:
            try:
                err = _poisoned_run_error(scan_cuda, inp, ref=ref, lanes=2, **{form: True})
            except ValueError:
                continue
            taken[form] += 1
            assert math.isfinite(err) and err < bound[dtype], (seed, form, dtype, b, d, L, err)
    assert min(taken.values()) > 0, (seed, taken)


def test_short_kernel_refuses_layouts_it_cannot_read(scan_cuda):
    inp = make(1, 8, 30, torch.float32, model_layout=False)
    odd_d = make(1, 7, 30, torch.float32, model_layout=True)  # delta along D, 7 channels: not whole 8-byte groups
    padded = torch.randn(1, 8, 32)[..., :30]  # contiguous along L, channel stride 32: not one run
    long = make(1, 8, 65, torch.float32, model_layout=False)
    _expect_refusals(scan_cuda, ((dict(odd_d, u=odd_d["u"].contiguous()), "delta contiguous along L and D, or along D"),
                                 (dict(inp, delta=padded), "delta"),
                                 (dict(inp, u=padded), "u contiguous along L and D"),
                                 (dict(inp, u=inp["u"].transpose(1, 2).contiguous().transpose(1, 2)), "u contiguous"),
                                 (dict(inp, z=torch.randn(1, 8, 30)), "z"),
                                 (long, "L from 1 to 64")), short=True, lanes=2)
    _expect_refusals(scan_cuda, ((inp, "lanes"),), short=True, lanes=4)
    _expect_refusals(scan_cuda, ((inp, "one of rows and short"),), short=True, rows=True, lanes=2)
    with pytest.raises(scan_cuda.FormRefusal):  # a layout a form cannot take: its own type, which callers catch
        scan_cuda.selective_scan_cpu_emulation(**long, short=True, lanes=2)
    shifted = torch.randn(8 * 30 + 1)[1:].view(1, 8, 30)  # 4 bytes off an 8-byte boundary
    if shifted.data_ptr() % 8:
        with pytest.raises(ValueError, match="8-byte aligned"):
            scan_cuda.selective_scan_cpu_emulation(**dict(inp, u=shifted), short=True, lanes=2)


def test_a_remembered_layout_takes_each_calls_tensors_and_still_refuses_what_it_cannot_read(scan_cuda):
    # a layout that passed the checks once is remembered (the second call only fills in addresses): each call must
    # still read its own inputs and weights and write its own out, and an unaligned u of that layout is refused
    scan_cuda._layouts.clear()
    for rows in (False, True):
        for seed in range(3):
            torch.manual_seed(seed)
            inp = make(2, 40, 14, torch.float32, True, True, False, True, True, softplus=True)
            err = _poisoned_run_error(scan_cuda, inp, lanes=2, rows=rows)
            assert math.isfinite(err) and err < 1e-5, (rows, seed, err)
    assert len(scan_cuda._layouts) == 2  # one per form: the later calls took the remembered layouts
    shifted = torch.randn(2 * 40 * 14 + 1)[1:].view(2, 40, 14)  # u's rows 4 bytes off an 8-byte boundary
    if shifted.data_ptr() % 8:
        with pytest.raises(ValueError, match="u contiguous"):
            scan_cuda.selective_scan_cpu_emulation(**dict(inp, u=shifted), lanes=2, rows=True)
    # the staged form takes the same unaligned u, and the other dtype of a weight is another layout
    y = scan_cuda.selective_scan_cpu_emulation(**dict(inp, u=shifted), lanes=2)
    assert rel_err(y, scan_f64(**dict(inp, u=shifted))) < 1e-5
    y = scan_cuda.selective_scan_cpu_emulation(**dict(inp, D=inp["D"].double()), lanes=2)
    assert rel_err(y, scan_f64(**inp)) < 1e-5


def test_cuda_kernel_rejects_what_it_cannot_index(scan_cuda):
    inp = make(1, 1, 4, torch.float32)
    inp["u"] = inp["u"].contiguous().as_strided((1, 1, 4), (4, 2**26, 1))  # a channel stride past 32-bit offsets
    with pytest.raises(ValueError, match="strides"):
        scan_cuda.selective_scan_cpu_emulation(**inp)


def test_cuda_kernel_refuses_what_it_was_not_written_for():
    inp = make(1, 4, 8, torch.float32)
    with pytest.raises(ValueError, match="lanes"):
        _scan_cuda.selective_scan_cuda(**inp, lanes=3)
    bad_n = dict(inp, A=torch.randn(4, 16))
    with pytest.raises(ValueError, match="N=8"):
        _scan_cuda.prepare(**bad_n, out=None)
    mixed = dict(inp, B=inp["B"].half())
    with pytest.raises(ValueError, match="dtype"):
        _scan_cuda.prepare(**mixed, out=None)
    with pytest.raises(ValueError, match="out"):
        _scan_cuda.prepare(**inp, out=torch.empty(1, 4, 7))
    with pytest.raises(_scan_cuda.FormRefusal, match="batch up to 65535"):  # not a failed launch
        _scan_cuda.selective_scan_cuda(**make(65536, 1, 1, torch.float32), lanes=2)


def test_nvcc_is_found_where_the_environment_says_and_can_be_switched_off(tmp_path, monkeypatch):
    fake = tmp_path / "nvcc"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("EDGEMV_NVCC", str(fake))
    assert _scan_cuda.nvcc() == str(fake)
    monkeypatch.setenv("EDGEMV_NVCC", str(tmp_path / "missing"))
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert _scan_cuda.nvcc() is None and not _scan_cuda.available()
    monkeypatch.setenv("EDGEMV_NVCC", str(fake))
    monkeypatch.setenv("EDGEMV_SCAN_CUDA", "0")
    assert not _scan_cuda.available()


def test_softplus_of_the_kernels_matches_float64_on_cpu(tmp_path, monkeypatch):
    # the kernels' two softplus functions (scan_common.cuh) compiled with g++ and evaluated on a grid against torch's
    # softplus in float64: the fp32 inputs' one (a degree-8 polynomial for log1p) to fp32 rounding, relative, plus
    # what rounding -|x| log2(e) to fp32 costs exp(-|x|) (|x| 6e-8 relative; the atanh series it replaced had the
    # same), and x itself above 20 as torch's threshold; the 16-bit inputs' one to ~1e-7 absolute beyond its fp32
    # rounding. (The emulation's 2^x is std::exp2; the MUFU's is checked on the GPU through the kernels.)
    import ctypes

    src = tmp_path / "softplus_test.cc"
    src.write_text('#include "scan_common.cuh"\n'
                   'extern "C" void softplus_many(const float* x, float* y, int n, int fast) {\n'
                   '  for (int i = 0; i < n; ++i) y[i] = fast ? softplus_fast(x[i]) : softplus(x[i]);\n}\n')
    monkeypatch.setenv("EDGEMV_CACHE_DIR", str(tmp_path / "cache"))
    lib = ctypes.CDLL(_scan_cuda.cpu_build(str(src), "softplus_test"))
    x = torch.cat([torch.linspace(-80, 80, 200001), torch.linspace(-30, 30, 200001), torch.randn(100000) * 10])
    ref = torch.nn.functional.softplus(x.double())
    for fast in (0, 1):
        y = torch.empty_like(x)
        lib.softplus_many(ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(y.data_ptr()), x.numel(), fast)
        if fast:  # ~1e-7 absolute, beyond the rounding of the fp32 result (an ulp of it)
            assert ((y.double() - ref).abs() <= 2e-7 + 1.2e-7 * ref).all()
        else:
            rel = (y.double() - ref).abs() / ref
            bound = 3e-7 + 7e-8 * x.double().abs()
            assert (rel <= bound).all(), (rel / bound).max().item()
            assert torch.equal(y[x > 20], x[x > 20])
