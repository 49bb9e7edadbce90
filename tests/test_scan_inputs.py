"""Arguments that do not fit together get one clear error (ScanInputError) from every entry point of the scan, before
any implementation runs: a mis-shaped tensor would otherwise be read out of bounds by the GPU kernels, broadcast
silently by the plain-op forms (a D or delta_bias of shape (1,) used to run and return a wrong y), or fail deep inside
them with a message about some intermediate tensor."""

import pytest
import torch

import edgemv.ops as ops
from edgemv.errors import EdgemvError, ScanInputError
from edgemv.ops import scan_cuda
from edgemv.ops.inputs import check_scan_inputs

BATCH, DIM, LENGTH, N = 2, 6, 5, 8


def good():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return dict(u=r(BATCH, DIM, LENGTH), delta=r(BATCH, DIM, LENGTH), A=-torch.rand(DIM, N, generator=g),
                B=r(BATCH, N, LENGTH), C=r(BATCH, N, LENGTH), D=r(DIM), z=r(BATCH, DIM, LENGTH), delta_bias=r(DIM))


# (argument replaced, its bad value, words the message must hold)
BAD = [
    ("u", torch.randn(BATCH, DIM), "u must be (batch, D, L)"),
    ("delta", torch.randn(BATCH, DIM, 1), "delta must be (batch, D, L) = (2, 6, 5)"),
    ("delta", torch.randn(BATCH, DIM + 1, LENGTH), "got (2, 7, 5)"),
    ("A", -torch.rand(DIM + 1, N), "A must be (D, N) with D = 6"),
    ("A", -torch.rand(N), "A must be (D, N)"),
    ("B", torch.randn(BATCH, N, LENGTH + 1), "B must be (batch, N, L) = (2, 8, 5)"),
    ("C", torch.randn(BATCH, N // 2, LENGTH), "C must be (batch, N, L) = (2, 8, 5)"),
    ("B", torch.randn(BATCH, 1, N, LENGTH), "B must be (batch, N, L)"),  # mamba_ssm's grouped B: not taken
    ("D", torch.randn(DIM + 1), "D must be (D,) = (6,)"),
    ("D", torch.randn(1), "D must be (D,) = (6,)"),  # broadcast silently before
    ("delta_bias", torch.randn(1), "delta_bias must be (D,) = (6,)"),
    ("z", torch.randn(BATCH, DIM, LENGTH - 1), "z must be (batch, D, L)"),
    ("delta", torch.ones(BATCH, DIM, LENGTH, dtype=torch.int64), "delta must be real floating point"),
    ("A", torch.complex(-torch.rand(DIM, N), torch.rand(DIM, N)), "A must be real floating point"),
    ("A", torch.empty(DIM, N, device="meta"), "A is on meta, u on cpu"),
    ("D", 1.0, "D must be a tensor, got float"),
    ("B", None, "B must be a tensor, got NoneType"),
]


@pytest.mark.parametrize("name,value,words", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_check_names_the_argument(name, value, words):
    args = {**good(), name: value}
    with pytest.raises(ScanInputError) as exc:
        check_scan_inputs(**args)
    assert words in str(exc.value)
    assert isinstance(exc.value, EdgemvError) and isinstance(exc.value, ValueError)  # the CLI prints one line


@pytest.mark.parametrize("impl", ["ref", "chunked", "doubling", "auto"])
@pytest.mark.parametrize("name,value,words", BAD[:4] + BAD[9:10], ids=[b[0] for b in BAD[:4] + BAD[9:10]])
def test_every_implementation_refuses(impl, name, value, words):
    args = {**good(), name: value}
    with pytest.raises(ScanInputError, match="selective scan: "):
        ops.selective_scan(**args, delta_softplus=True, impl=impl)


def test_the_registered_op_refuses_too():
    # torch.ops.edgemv.selective_scan called directly, and a call that goes through the op (gradients recorded)
    args = {**good(), "delta": torch.randn(BATCH, DIM, 1)}
    with pytest.raises(ScanInputError):
        torch.ops.edgemv.selective_scan(*args.values(), True, "ref")
    args["u"].requires_grad_(True)
    with pytest.raises(ScanInputError):
        ops.selective_scan(**args, impl="chunked")


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_the_decomposed_onnx_export_refuses(tmp_path):
    pytest.importorskip("onnx")
    bad = {**good(), "B": torch.randn(BATCH, N, LENGTH + 1)}

    class Scan(torch.nn.Module):
        def forward(self, u):
            return ops.selective_scan(u, bad["delta"], bad["A"], bad["B"], bad["C"], bad["D"])

    with ops.onnx_export_context("decomposed") as extra, pytest.raises(ScanInputError, match="B must be"):
        torch.onnx.export(Scan(), (bad["u"],), str(tmp_path / "scan.onnx"), dynamo=False, opset_version=17, **extra)
    assert not (tmp_path / "scan.onnx").exists()


def test_the_cuda_kernels_entry_refuses_on_the_cpu_emulation():
    # the CUDA C++ kernel's host code indexes by u's shape: its CPU build (g++) shows the check runs before it
    if scan_cuda.cxx() is None:
        pytest.skip("no C++ compiler")
    args = {**good(), "C": torch.randn(BATCH, N, LENGTH - 1)}
    with pytest.raises(ScanInputError, match="C must be"):
        scan_cuda.selective_scan_cpu_emulation(**args)


def test_good_inputs_pass_and_mixed_float_dtypes_are_allowed():
    check_scan_inputs(**good())
    args = good()
    args.update(u=args["u"].half(), delta=args["delta"].bfloat16(), D=None, z=None, delta_bias=None)
    check_scan_inputs(**args)
    y = ops.selective_scan(**args, impl="ref")
    assert y.dtype == torch.float16 and y.shape == (BATCH, DIM, LENGTH)
