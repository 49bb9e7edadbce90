"""The SelectiveScan TensorRT plugin library (edgemv/ops/cuda/trt_scan_plugin.cu), built with nvcc against TensorRT's
headers and driven through its IPluginV3 interfaces by tests/trt_plugin_driver.cu the way TensorRT calls them.

No standard TensorRT can be installed on the machines here, and TensorRT-RTX's engines do not run on their GPUs, so:
- without a GPU: the build against every header set found, and every build-phase call, the serialize round trip and
  onShapeChange (stopping before enqueue);
- with a GPU: the same, then enqueue on fresh random inputs against float64 with a NaN-poisoned output;
- where TensorRT-RTX is installed: its ONNX parser and builder take the plugin node, alone and in exported graphs
  (ahead of time, on the CPU; edgemv.export.rtx_plugin_build runs them in a child process, docs/scan.md).
Skipped without nvcc or TensorRT headers (CI has neither): set EDGEMV_TEST_TRT_INCLUDES to include folders separated
by ':' (TensorRT's headers at tags v10.3.0 and v11.1 of github.com/NVIDIA/TensorRT, for instance), or leave them in
.trt-headers/*/ at the repository root (git-ignored; docs/scan.md says how they were fetched).
"""

import ctypes
import glob
import math
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

from test_scan import make, rel_err, scan_f64  # noqa: E402

from edgemv.compile import plugin as trt_plugin  # noqa: E402
from edgemv.errors import PluginBuildError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trt_plugin_driver.cu")
TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}
DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def _header_dirs():
    listed = os.environ.get("EDGEMV_TEST_TRT_INCLUDES")
    dirs = listed.split(os.pathsep) if listed else sorted(glob.glob(os.path.join(ROOT, ".trt-headers", "*")))
    return [d for d in dirs if os.path.isfile(os.path.join(d, "NvInferRuntime.h"))]


def _nvcc():
    try:
        return trt_plugin._nvcc(None)
    except PluginBuildError:
        return None


HEADERS = _header_dirs()
GPU = torch.cuda.is_available()
pytestmark = pytest.mark.skipif(not HEADERS or _nvcc() is None, reason="needs nvcc and TensorRT's headers")


class Built:
    def __init__(self, build, driver):
        self.build, self.lib = build, build.path
        self.drive = driver.edgemv_plugin_drive
        self.drive.restype = ctypes.c_int
        self.drive.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int,
                               ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_int, ctypes.c_int,
                               ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int),
                               ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.tactics = []  # those the plugin advertised in the last run

    def run(self, shape, dtype_code, flags, dynamic=False, tensors=None, stream=None, tactic=0):
        """(code, message) of the driver; ``tensors`` (u, delta, A, B, C, D, z, delta_bias, y or None) enqueues
        with ``tactic`` set; :attr:`tactics` gets the tactics the plugin advertised."""
        message = ctypes.create_string_buffer(8192)
        ptrs = (ctypes.c_void_p * 9)(*[t.data_ptr() if t is not None else None for t in (tensors or [None] * 9)])
        tactics, count = (ctypes.c_int32 * 16)(), ctypes.c_int(0)
        code = self.drive(self.lib.encode(), (ctypes.c_int64 * 3)(*shape), dtype_code, (ctypes.c_int * 5)(*flags),
                          int(dynamic), int(tensors is not None), tactic, tactics, ctypes.byref(count), ptrs,
                          stream, message, len(message))
        self.tactics = list(tactics[:count.value])
        return code, message.value.decode(errors="replace")


@pytest.fixture(scope="module", params=HEADERS, ids=lambda d: os.path.basename(d))
def built(request, tmp_path_factory):
    """The plugin built against one header set (for this machine's GPU, else for Jetson Orin's sm_87), and the
    driver built against the same headers."""
    folder = tmp_path_factory.mktemp("plugin")
    build = trt_plugin.build_plugin(str(folder / "libedgemv_scan_plugin.so"), request.param,
                                    ["native"] if GPU else ["sm_87"])
    driver = str(folder / "driver.so")
    import subprocess

    res = subprocess.run([_nvcc(), "-O2", "-std=c++17", "-shared", "-Xcompiler", "-fPIC",
                          "-Xcompiler", "-Wno-deprecated-declarations", "-I", request.param, "-o", driver, DRIVER,
                          "-ldl"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return Built(build, ctypes.CDLL(driver))


def test_library_exports_what_tensorrt_loads(built):
    assert built.build.tensorrt_version >= (10, 0, 0)
    lib = ctypes.CDLL(built.lib)
    for symbol in ("getCreators", "setLoggerFinder", "edgemv_register_scan_plugin"):
        assert hasattr(lib, symbol), symbol


# (delta_softplus, has_D, has_z, has_delta_bias, d_state): MambaVision's call, z, every option
FLAG_SETS = [(1, 1, 0, 1, 8), (0, 0, 1, 0, 8), (1, 1, 1, 1, 8), (0, 0, 0, 0, 8)]


@pytest.mark.parametrize("flags", FLAG_SETS)
@pytest.mark.parametrize("dynamic", [False, True])
def test_build_phase_and_serialize_round_trip(built, flags, dynamic):
    for dtype_code in (0, 1, 2):
        code, message = built.run((2, 160, 49), dtype_code, flags, dynamic)
        assert code == 0, message


AUTO, ROWS, SHORT, STAGED2, STAGED4 = 1, 2, 3, 4, 5  # the plugin's tactics (trt_scan_plugin.cu, enum Tactic)


@pytest.mark.parametrize("shape, dtype_code, flags, tactics", [
    ((2, 160, 196), 1, FLAG_SETS[0], [AUTO, ROWS, STAGED2, STAGED4]),  # MambaVision level 3: L a multiple of 4
    ((2, 320, 49), 1, FLAG_SETS[0], [AUTO, SHORT, STAGED2, STAGED4]),  # level 4: L up to 64
    ((2, 16, 64), 2, FLAG_SETS[0], [AUTO, ROWS, SHORT, STAGED2, STAGED4]),
    ((2, 16, 50), 0, FLAG_SETS[3], [AUTO, ROWS, SHORT, STAGED2, STAGED4]),  # float32: L a multiple of 2
    ((2, 16, 50), 1, FLAG_SETS[3], [AUTO, SHORT, STAGED2, STAGED4]),
    ((2, 16, 130), 1, FLAG_SETS[3], [AUTO, STAGED2, STAGED4]),
    ((2, 160, 196), 1, FLAG_SETS[2], [AUTO, STAGED2, STAGED4]),  # z: the staged form only
])
@pytest.mark.parametrize("dynamic", [False, True])
def test_tactics_follow_the_shapes(built, shape, dtype_code, flags, tactics, dynamic):
    """TensorRT times each tactic a plugin advertises for its shapes and keeps the fastest: the forms that can read
    them, and 'auto'."""
    code, message = built.run(shape, dtype_code, flags, dynamic)
    assert code == 0, message
    assert built.tactics == tactics


@pytest.mark.parametrize("flags, says", [((1, 1, 0, 1, 16), "written for 8 states"),
                                         ((2, 1, 0, 1, 8), "delta_softplus must be 0 or 1"),
                                         ((1, 1, -1, 1, 8), "has_z must be 0 or 1")])
def test_unusable_attributes_are_refused_with_a_message(built, flags, says):
    code, message = built.run((2, 16, 12), 1, flags)
    assert code == 2 and says in message, message


def test_build_rejects_a_missing_header_folder(tmp_path):
    with pytest.raises(PluginBuildError, match="no NvInferRuntime.h"):
        trt_plugin.build_plugin(str(tmp_path / "x.so"), str(tmp_path), ["sm_87"])
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_build_rejects_a_malformed_architecture(tmp_path):
    with pytest.raises(PluginBuildError, match="sm_87"):
        trt_plugin.build_plugin(str(tmp_path / "x.so"), HEADERS[0], ["ampere"])
    assert not list(tmp_path.iterdir())


# (batch, D, L, dtype, options) and the kernel the plugin's choice lands on for contiguous tensors
GPU_CASES = [
    (3, 160, 196, torch.float16, {}),                                  # rows form (MambaVision level 3)
    (2, 320, 49, torch.float16, {"big": True}),                        # short form (level 4)
    (2, 160, 196, torch.float32, {}),                                  # rows, float32
    (2, 320, 49, torch.bfloat16, {}),                                  # short, bfloat16
    (2, 64, 50, torch.float16, {"has_d": False}),                      # L not a multiple of 4: short
    (1, 24, 130, torch.float16, {"has_bias": False}),                  # L > 64, not a multiple of 4: staged
    (2, 40, 33, torch.float32, {"has_z": True}),                       # z: staged
    (1, 8, 1, torch.float32, {"softplus": False}),                     # one step, no softplus
]


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", GPU_CASES, ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}-{str(c[3])[6:]}")
def test_enqueue_matches_float64(built, case):
    assert _enqueue_against_float64(built, case)


def _enqueue_against_float64(built, case) -> bool:
    """Enqueue ``case`` with TensorRT's default tactic and each advertised one; False (nothing run) where y leaves
    the output dtype's range (float16 ends at 65504; the kernels then rightly write inf)."""
    batch, dim, length, dtype, options = case
    inp = make(batch, dim, length, dtype, model_layout=False, **options)
    ref = scan_f64(**inp)
    if ref.abs().max() > torch.finfo(dtype).max / 2:
        return False
    cuda = {k: (v.cuda().contiguous() if isinstance(v, torch.Tensor) else v) for k, v in inp.items()}
    y = torch.full((batch, dim, length), float("nan"), device="cuda", dtype=dtype)
    flags = (int(inp["delta_softplus"]), int(inp["D"] is not None), int(inp["z"] is not None),
             int(inp["delta_bias"] is not None), 8)
    tensors = [cuda[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")] + [y]
    stream = torch.cuda.current_stream()
    code, message = built.run((batch, dim, length), DTYPE_CODE[dtype], flags)
    assert code == 0, message
    for tactic in [0] + built.tactics:  # TensorRT's default, then each tactic TensorRT could pick
        y.fill_(float("nan"))
        code, message = built.run((batch, dim, length), DTYPE_CODE[dtype], flags, tensors=tensors,
                                  stream=stream.cuda_stream, tactic=tactic)
        assert code == 0, f"tactic {tactic}: {message}"
        torch.cuda.synchronize()
        err = rel_err(y.cpu(), ref)
        assert math.isfinite(err) and err < TOL[dtype], f"tactic {tactic}: {err}"
    return True


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")
def test_enqueue_on_random_problems(built):
    """Fresh random shapes each run (the seed is printed on failure): L around the forms' limits (multiples of 4 or
    not, up to 64 or beyond), odd channel counts, batch 1 (the short form's unaligned-sequence case), every dtype and
    option."""
    seed = int.from_bytes(os.urandom(4), "little")
    rng = torch.Generator().manual_seed(seed)
    pick = lambda seq: seq[int(torch.randint(len(seq), (1,), generator=rng))]  # noqa: E731
    for i in range(24):
        batch = pick([1, 1, 2, 3, 5])
        dim = int(torch.randint(1, 400, (1,), generator=rng))
        length = pick([1, 2, 3, 4, 31, 48, 49, 63, 64, 65, 66, 96, 130, 196, 257])
        dtype = pick([torch.float32, torch.float16, torch.bfloat16])
        softplus = bool(pick([True, True, False]))
        options = dict(big=bool(pick([True, False])), has_d=bool(pick([True, False])), has_z=bool(pick([False, True])),
                       has_bias=softplus and bool(pick([True, False])), softplus=softplus)  # delta > 0 without softplus
        case = (batch, dim, length, dtype, options)
        try:
            _enqueue_against_float64(built, case)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}, case {i}: {case}: {exc}") from None


def test_cli_builds_for_jetson_orin(tmp_path, capsys):
    """`edgemv plugin` as a user runs it: sm_87 (Jetson Orin, no GPU needed), the first header set, JSON report."""
    import json

    from cli_helpers import call

    out = tmp_path / "lib" / "libedgemv_scan_plugin.so"
    code, stdout, err = call(["plugin", "--arch", "sm_87", "--trt-include", HEADERS[0], "-o", str(out), "--json"],
                             capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert report["path"] == str(out) and out.stat().st_size == report["bytes"] > 0
    assert report["archs"] == ["sm_87"] and report["tensorrt_version"].split(".")[0] in ("10", "11")
    assert "-gencode=arch=compute_87,code=sm_87" in report["command"] and str(out) in report["command"]
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary left behind


def test_runner_loads_the_library_into_a_tensorrt_registry(built):
    """edgemv.runtime's plugin loading against a real TensorRT-family registry (TensorRT-RTX's), in a child process
    (with the creator registered, a parser in this process could not be given the library name it needs)."""
    import subprocess

    pytest.importorskip("tensorrt_rtx")
    code = ("import sys, tensorrt_rtx as trt; from edgemv.runtime.tensorrt_runner import load_plugin_library; "
            "load_plugin_library(trt, sys.argv[1]); "
            "print(sorted((c.name, c.plugin_version, c.plugin_namespace) "
            "for c in trt.get_plugin_registry().all_creators if c.name == 'SelectiveScan'))")
    res = subprocess.run([sys.executable, "-c", code, built.lib], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[('SelectiveScan', '1', '')]", res.stdout


def _scan_graph(path, dtype, a_states=8, flags=(1, 1, 0, 1, 8), shape=(2, 32, 49)):
    """One SelectiveScan node as PLUGIN_SPEC gives it, u/delta/B/C/z/y of ``dtype``, A/D/delta_bias float32."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = {torch.float32: TensorProto.FLOAT, torch.float16: TensorProto.FLOAT16,
            torch.bfloat16: TensorProto.BFLOAT16}[dtype]
    batch, dim, length = shape
    softplus, has_d, has_z, has_bias, states = flags
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(-np.exp(rng.standard_normal((dim, a_states))).astype(np.float32), "A")]
    names, inputs = ["u", "delta", "A", "B", "C"], []
    for name, size in (("u", dim), ("delta", dim), ("B", 8), ("C", 8)):
        inputs.append(helper.make_tensor_value_info(name, elem, [batch, size, length]))
    if has_d:
        names.append("D")
        inits.append(numpy_helper.from_array(rng.standard_normal(dim).astype(np.float32), "D"))
    if has_z:
        names.append("z")
        inputs.append(helper.make_tensor_value_info("z", elem, [batch, dim, length]))
    if has_bias:
        names.append("delta_bias")
        inits.append(numpy_helper.from_array(rng.standard_normal(dim).astype(np.float32), "delta_bias"))
    node = helper.make_node("SelectiveScan", names, ["y"], domain="edgemv", delta_softplus=softplus, has_D=has_d,
                            has_z=has_z, has_delta_bias=has_bias, d_state=states, plugin_version="1",
                            plugin_namespace="")
    graph = helper.make_graph([node], "scan", inputs, [helper.make_tensor_value_info("y", elem, list(shape))],
                              initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgemv", 1)]),
              str(path))
    return path


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("flags", FLAG_SETS)
def test_tensorrt_rtx_builds_the_plugin_node(built, tmp_path, dtype, flags):
    """TensorRT-RTX's parser adds the node as a plugin layer and its builder builds it (ahead of time, sm_86/sm_89),
    asking the plugin for output types, shapes, formats and its configuration; the engine carries its fields."""
    pytest.importorskip("tensorrt_rtx")
    from edgemv.export import checks

    engine = tmp_path / "scan.engine"
    res = checks.trt_rtx_build(_scan_graph(tmp_path / "scan.onnx", dtype, flags=flags), "fp32", "u", (2, 32, 49),
                               False, engine_out=engine, plugins=[built.lib])
    assert res.status == "pass", res.detail
    data = engine.read_bytes()
    assert b"SelectiveScan" in data and b"delta_softplus" in data and b"has_delta_bias" in data


def test_tensorrt_rtx_build_fails_where_the_plugin_refuses(built, tmp_path):
    """A of the wrong width: the plugin's configurePlugin refuses it, and the build fails there."""
    pytest.importorskip("tensorrt_rtx")
    from edgemv.export import checks

    res = checks.trt_rtx_build(_scan_graph(tmp_path / "scan.onnx", torch.float32, a_states=4), "fp32", "u",
                               (2, 32, 49), False, plugins=[built.lib])
    assert res.status == "fail" and "configurePlugin" in res.detail, res.detail


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("half", [False, True])
def test_tensorrt_rtx_builds_the_exported_plugin_form(built, tmp_path, precision, half):
    """`edgemv export --scan plugin --plugin LIB`: the whole graph with its library, FP32 and INT8 Q/DQ, each also
    with --half (in which the scan nodes keep their float32 inputs: the plugin refuses float16 A, D, delta_bias)."""
    pytest.importorskip("tensorrt_rtx")
    pytest.importorskip("onnxruntime")
    from edgemv.export import export_model, load_source

    if precision == "int8":
        from test_export import _quantized_run

        source = load_source(str(_quantized_run(tmp_path, "int8")))
    else:
        torch.manual_seed(0)
        source = load_source(None, "test", "random")
    report = export_model(source, out=tmp_path / "p.onnx", half=half, scan_form="plugin", plugins=[built.lib])
    build = next(c for c in report.checks if c.name == "TensorRT-RTX build")
    assert build.status == "pass" and os.path.basename(built.lib) in build.detail, build.detail
    assert report.ok, [(c.name, c.detail) for c in report.checks if not c.ok]
