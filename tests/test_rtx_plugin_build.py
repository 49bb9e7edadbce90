"""The TensorRT-RTX build of a plugin-form graph with its library loaded (`edgemv export --scan plugin --plugin LIB`):
the child process, TensorRT-RTX's missing library name, and the refusals. Runs wherever tensorrt_rtx is installed
(CI installs it); the build with the real SelectiveScan library needs nvcc and TensorRT's headers and lives in
tests/test_trt_plugin.py."""

import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
trt = pytest.importorskip("tensorrt_rtx")

from cli_helpers import assert_one_line_error, call  # noqa: E402
from edgemv.compile import trt_compat as tc  # noqa: E402
from edgemv.export import ExportError, export_model, load_source  # noqa: E402
from edgemv.export.rtx_plugin_build import build_with_plugins  # noqa: E402


@pytest.fixture(scope="module")
def plugin_graph(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("plugin") / "p.onnx"
    export_model(load_source(None, "test", "random"), out=out, scan_form="plugin", check=False)
    return out


def test_the_unversioned_library_name_is_given_to_a_child(tmp_path):
    """TensorRT-RTX's parser opens libtensorrt_rtx.so by that name to add a plugin layer; the pip wheel has only
    libtensorrt_rtx.so.1. With the folder unversioned_library_dir fills on LD_LIBRARY_PATH, a new process finds it."""
    info = tc.import_tensorrt(prefer=("tensorrt_rtx",))
    folder = tc.unversioned_library_dir(info, str(tmp_path))
    probe = "import ctypes; ctypes.CDLL('libtensorrt_rtx.so')"
    if folder is None:  # a TensorRT-RTX that has the name already
        assert subprocess.run([sys.executable, "-c", probe]).returncode == 0
        return
    link = tmp_path / "libtensorrt_rtx.so"
    assert folder == str(tmp_path) and link.is_symlink() and os.path.realpath(link).endswith(".so.1")
    assert tc.unversioned_library_dir(info, str(tmp_path)) == folder  # a second call keeps the link
    env = dict(os.environ, LD_LIBRARY_PATH=folder)
    assert subprocess.run([sys.executable, "-c", probe], env=env).returncode == 0
    env.pop("LD_LIBRARY_PATH")
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode != 0


def test_a_file_that_is_no_library_fails_the_check_in_one_line(tmp_path, plugin_graph):
    bogus = tmp_path / "libnot_a_plugin.so"
    bogus.write_text("not a shared library")
    res = build_with_plugins(plugin_graph, "fp32", "images", [1, 3, 64, 64], True, [str(bogus)])
    assert res.status == "fail" and "cannot load plugin library" in res.detail and "\n" not in res.detail, res.detail


def test_a_library_without_the_creator_fails_at_the_node(plugin_graph):
    """A real shared library that registers no SelectiveScan creator: the parser's own error, in the check."""
    import ctypes.util

    libm = ctypes.util.find_library("m")
    if libm is None:
        pytest.skip("no libm to load")
    path = next((os.path.join(d, libm) for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
                                                 "/usr/lib64", "/lib/aarch64-linux-gnu")
                 if os.path.isfile(os.path.join(d, libm))), None)
    if path is None:
        pytest.skip("libm's path not found")
    res = build_with_plugins(plugin_graph, "fp32", "images", [1, 3, 64, 64], True, [path])
    assert res.status == "fail" and "Plugin not found" in res.detail and "SelectiveScan" in res.detail, res.detail


def test_without_the_library_the_build_is_skipped_with_how_to(tmp_path):
    torch.manual_seed(0)
    report = export_model(load_source(None, "test", "random"), out=tmp_path / "p.onnx", scan_form="plugin")
    build = next(c for c in report.checks if c.name == "TensorRT-RTX build")
    assert build.status == "skip" and "--plugin" in build.detail and "edgemv plugin" in build.detail


def test_a_library_with_the_decomposed_form_is_refused(tmp_path, capsys):
    lib = tmp_path / "lib.so"
    lib.write_bytes(b"")
    out = tmp_path / "m.onnx"
    code, _, err = call(["export", "--variant", "test", "--weights", "random", "--plugin", str(lib),
                         "--out", str(out)], capsys)
    assert code == 2 and "--scan plugin" in err and "Traceback" not in err
    with pytest.raises(ExportError, match="plugin form"):
        export_model(load_source(None, "test", "random"), out=out, plugins=[str(lib)])
    with pytest.raises(ExportError, match="not found"):
        export_model(load_source(None, "test", "random"), out=out, scan_form="plugin",
                     plugins=[str(tmp_path / "missing.so")])
    assert not out.exists()


def test_cli_reports_a_failed_plugin_build_in_one_line(tmp_path, capsys):
    bogus = tmp_path / "libbogus.so"
    bogus.write_text("x")
    out = tmp_path / "p.onnx"
    code, stdout, err = call(["export", "--variant", "test", "--weights", "random", "--scan", "plugin",
                              "--plugin", str(bogus), "--out", str(out)], capsys)
    assert_one_line_error(code, err, "TensorRT-RTX build")
    assert out.exists() and "cannot load plugin library" in stdout  # the file is written, the check failed
