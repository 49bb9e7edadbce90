"""The CUDA C++ scan kernel on a GPU (skipped without one and nvcc; CI has neither, the device machine runs it:
``python -m pytest -q tests/test_scan_cuda_gpu.py``): against float64 with poisoned outputs, through 'auto', and the
fallback of a remembered 'cuda' choice on inputs the kernel cannot index."""

import math
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

from test_scan import make, rel_err, scan_f64  # noqa: E402

from edgemv.ops import scan_cuda, scan_tune  # noqa: E402

pytestmark = pytest.mark.skipif(not scan_cuda.available(), reason="needs a CUDA GPU and nvcc")
TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def _cuda(inp):
    return {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in inp.items()}


def _ref(inp):
    """The float64 reference of (CUDA) inputs, on the CPU."""
    return scan_f64(**{k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in inp.items()})


def _poisoned_run_error(inp, dtype, **opts):
    """The CUDA kernel's relative error against float64, writing into a NaN-poisoned out (every element must be
    written, and y must be out)."""
    out = torch.full(inp["u"].shape, float("nan"), device="cuda", dtype=dtype)
    y = scan_cuda.selective_scan_cuda(**inp, out=out, **opts)
    assert y is out
    return rel_err(y.cpu(), _ref(inp))


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(3, 160, 196, True), (2, 320, 49, False), (1, 40, 7, True), (2, 24, 33, False)])
def test_cuda_kernel_matches_float64(lanes, dtype, shape):
    b, d, L, layout = shape
    inp = _cuda(make(b, d, L, dtype, big=L == 49, has_z=d == 24, model_layout=layout))
    err = _poisoned_run_error(inp, dtype, lanes=lanes)
    assert math.isfinite(err) and err < TOL[dtype], err


def test_auto_falls_back_from_a_cuda_choice_the_inputs_do_not_allow(tmp_path, monkeypatch):
    from edgemv.ops.scan_triton import selective_scan_triton

    monkeypatch.setenv("EDGEMV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(scan_tune, "_memory", {})
    inp = _cuda(make(1, 4, 40, torch.float16, model_layout=False))
    key = scan_tune._problem(**{k: v for k, v in inp.items() if k != "A"})
    scan_tune._memory[key] = ("cuda", {"lanes": 2})  # as if tuned on an indexable input of the same key
    wide = torch.empty(1, 4, 2**25, device="cuda", dtype=torch.float16)[:, :, :40]  # channel stride 2**25
    wide.copy_(inp["u"])
    inp_wide = dict(inp, u=wide)
    assert scan_tune._problem(**{k: v for k, v in inp_wide.items() if k != "A"}) == key
    with pytest.raises(ValueError, match="strides"):
        scan_cuda.selective_scan_cuda(**inp_wide)
    y = selective_scan_triton(**inp_wide)  # 'auto': the remembered 'cuda' refuses, 'seq' runs
    ref = _ref(inp)
    assert rel_err(y.cpu(), ref) < 2e-3


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_kernel_reads_parameters_in_their_own_dtype(dtype):
    # a model after .half(): A, D and delta_bias stored in 16 bits, read as stored (no float32 copies per call)
    inp = _cuda(make(2, 160, 196, dtype))
    for name in ("A", "D", "delta_bias"):
        inp[name] = inp[name].to(dtype)
    params_before = {name: inp[name].clone() for name in ("A", "D", "delta_bias")}
    err = _poisoned_run_error(inp, dtype, lanes=2)
    assert math.isfinite(err) and err < TOL[dtype], err
    assert all(torch.equal(inp[k], v) for k, v in params_before.items())


# the rows form: whole chunks with a tail, L shorter than a chunk, partial channel blocks; the short form:
# MambaVision's level 3 (L = 49: rows of 16-bit u not 8-byte aligned), the longest L, L = 1, partial channel blocks
FORM_SHAPES = ([("rows", s) for s in [(3, 160, 196, True), (2, 320, 48, False), (1, 40, 4, True), (2, 24, 100, False)]]
               + [("short", s) for s in [(3, 320, 49, True), (2, 40, 64, False), (1, 24, 1, True), (2, 36, 33, False)]])


@pytest.mark.parametrize("bc_rows", ["unaligned", "aligned"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("delta_along", ["L", "D"])
@pytest.mark.parametrize("form,shape", FORM_SHAPES, ids=lambda v: v if isinstance(v, str) else "x".join(map(str, v)))
def test_rows_and_short_kernels_match_float64(form, dtype, shape, delta_along, bc_rows):
    # u contiguous (both forms' condition), delta along L or along D (the model's layout); B and C strided as the
    # model's (rows 8-byte aligned or not: the short form reads them in 8-byte groups or a value per lane) or
    # contiguous; large delta on one shape of each form
    b, d, L, strided_bc = shape
    if bc_rows == "aligned" and not strided_bc:
        pytest.skip("contiguous B and C lie along L, not in rows along N")
    inp = _cuda(make(b, d, L, dtype, big=L in (48, 64), model_layout=strided_bc,
                     dt_rank=4 if bc_rows == "aligned" else 3))
    inp["delta"] = (inp["delta"].contiguous() if delta_along == "L"
                    else inp["delta"].transpose(1, 2).contiguous().transpose(1, 2))
    err = _poisoned_run_error(inp, dtype, lanes=2, **{form: True})
    assert math.isfinite(err) and err < TOL[dtype], err


@pytest.mark.parametrize("model_layout,dt_rank", [(True, 3), (True, 4), (False, 3)])
def test_rows_kernel_wide_build_for_grids_beyond_one_wave(model_layout, dt_rank):
    # float32 grids that the wide build (96 registers, 20 blocks per SM) runs in one wave and the default (128, 16
    # per SM) does not run on it: 17 blocks per SM. It must match float64 as the default does; one wave of both,
    # 16-bit inputs and more than one wave of the wide build keep the default
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    inp = _cuda(make(17 * sms, 16, 40, torch.float32, big=True, model_layout=model_layout,  # a block per sequence
                     dt_rank=dt_rank))
    inp["u"] = inp["u"].contiguous()
    assert scan_cuda.rows_wide_build(inp["u"])
    assert not scan_cuda.rows_wide_build(inp["u"][:sms])
    assert not scan_cuda.rows_wide_build(torch.empty(30 * sms, 16, 40, device="cuda"))
    assert not scan_cuda.rows_wide_build(inp["u"].half())
    err = _poisoned_run_error(inp, torch.float32, lanes=2, rows=True)
    assert math.isfinite(err) and err < TOL[torch.float32], err


def test_rows_kernel_refuses_unaligned_rows_and_auto_runs_the_staged_form(tmp_path, monkeypatch):
    from edgemv.ops.scan_triton import selective_scan_triton

    monkeypatch.setenv("EDGEMV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(scan_tune, "_memory", {})
    inp = _cuda(make(2, 40, 64, torch.float16, model_layout=False))
    shifted = torch.empty(2, 40, 65, device="cuda", dtype=torch.float16)[..., 1:]  # rows start 2 bytes in
    shifted.copy_(inp["u"])
    with pytest.raises(ValueError, match="aligned"):
        scan_cuda.selective_scan_cuda(**dict(inp, u=shifted), lanes=2, rows=True)
    key = scan_tune._problem(**{k: v for k, v in inp.items() if k != "A"})
    scan_tune._memory[key] = ("cuda", {"lanes": 2, "rows": True})
    y = selective_scan_triton(**dict(inp, u=shifted))
    ref = _ref(inp)
    assert rel_err(y.cpu(), ref) < 2e-3


@pytest.mark.parametrize("entry", ["auto", "triton seq", "cuda rows", "cuda staged", "op"])
@pytest.mark.parametrize("bad", ["B longer", "delta short", "A on the CPU", "D of 1"])
def test_arguments_that_do_not_fit_are_refused_before_a_launch(entry, bad):
    # read by u's shape, a longer B or a CPU pointer would be an illegal address (the context lost for good); each
    # entry point checks first (edgemv.ops.inputs), and the GPU stays usable after each refusal
    import edgemv.ops as ops
    from edgemv.errors import ScanInputError
    from edgemv.ops.scan_triton import selective_scan_triton

    inp = _cuda(make(2, 32, 64, torch.float16, model_layout=False))
    if bad == "B longer":
        inp["B"] = torch.randn(2, 8, 65, device="cuda", dtype=torch.float16)
    elif bad == "delta short":
        inp["delta"] = inp["delta"][:, :, :63]
    elif bad == "A on the CPU":
        inp["A"] = inp["A"].cpu()
    else:
        inp["D"] = torch.ones(1, device="cuda")
    calls = {
        "auto": lambda: ops.selective_scan(**inp, impl="auto"),
        "triton seq": lambda: selective_scan_triton(**inp, variant="seq"),
        "cuda rows": lambda: scan_cuda.selective_scan_cuda(**inp, lanes=2, rows=True),
        "cuda staged": lambda: scan_cuda.selective_scan_cuda(**inp),
        "op": lambda: torch.ops.edgemv.selective_scan(*inp.values(), "auto"),
    }
    with pytest.raises(ScanInputError):
        calls[entry]()
    torch.cuda.synchronize()  # nothing was launched out of bounds


@pytest.mark.parametrize("after_uniform", [False, True])
def test_mixed_float_dtypes_match_float64(tmp_path, monkeypatch, after_uniform):
    # the inputs' float dtypes may differ (edgemv.ops.inputs): the CUDA C++ kernel refuses them, and 'auto' runs a
    # Triton kernel, which reads each tensor in its own dtype; also when the problem's key (u's dtype) was tuned on
    # uniform inputs first and remembers a CUDA choice
    import edgemv.ops as ops

    monkeypatch.setenv("EDGEMV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(scan_tune, "_memory", {})
    inp = _cuda(make(2, 160, 64, torch.float16, model_layout=False))
    if after_uniform:
        ops.selective_scan(**inp, impl="auto")
    mixed = dict(inp, delta=inp["delta"].float(), B=inp["B"].bfloat16(), C=inp["C"].float(),
                 D=inp["D"].half(), delta_bias=inp["delta_bias"].bfloat16())
    y = ops.selective_scan(**mixed, impl="auto")
    assert y.dtype == torch.float16
    err = rel_err(y.cpu(), _ref(mixed))
    assert math.isfinite(err) and err < TOL[torch.float16], err  # y is fp16; the reference reads the same values
