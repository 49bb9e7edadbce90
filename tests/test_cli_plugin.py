"""`edgemv plugin` on bad input: one line, non-zero exit, no traceback, nothing written. (The build itself needs nvcc
and TensorRT's headers: tests/test_trt_plugin.py.)"""

import pytest

from cli_helpers import assert_one_line_error, call
from edgemv.compile import plugin as trt_plugin


def _fake_headers(folder, major, minor=3):
    """A folder that looks like TensorRT's include/ to the version check (the build never gets to read it)."""
    folder.mkdir()
    (folder / "NvInferRuntime.h").write_text("// stand-in\n")
    (folder / "NvInferVersion.h").write_text(f"#define TRT_MAJOR_ENTERPRISE {major}\n#define TRT_MINOR_ENTERPRISE "
                                             f"{minor}\n#define TRT_PATCH_ENTERPRISE 0\n")
    return folder


def test_help_names_the_export_form_and_trtexec(capsys):
    code, out, _ = call(["plugin", "--help"], capsys)
    assert code == 0 and "--scan plugin" in out and "--dynamicPlugins" in out and "sm_87" in out


def test_folder_without_headers(tmp_path, capsys):
    code, _, err = call(["plugin", "--trt-include", str(tmp_path), "-o", str(tmp_path / "p.so")], capsys)
    assert_one_line_error(code, err, "no NvInferRuntime.h")
    assert not list(tmp_path.iterdir())


def test_no_headers_anywhere(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TENSORRT_INCLUDE", raising=False)
    monkeypatch.setattr(trt_plugin, "_SEARCHED", (str(tmp_path / "none"),))
    code, _, err = call(["plugin", "-o", str(tmp_path / "p.so")], capsys)
    assert_one_line_error(code, err, "--trt-include")


def test_tensorrt_8_is_refused(tmp_path, capsys):
    headers = _fake_headers(tmp_path / "inc", 8, 6)
    code, _, err = call(["plugin", "--trt-include", str(headers), "-o", str(tmp_path / "p.so")], capsys)
    assert_one_line_error(code, err, "TensorRT 8.6.0", "10.0 or newer")
    assert not (tmp_path / "p.so").exists()


def test_version_read_from_either_header_style(tmp_path):
    new = _fake_headers(tmp_path / "new", 11, 1)
    assert trt_plugin.tensorrt_header_version(str(new)) == (11, 1, 0)
    old = tmp_path / "old"
    old.mkdir()
    (old / "NvInferVersion.h").write_text("#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n"
                                          "#define NV_TENSORRT_PATCH 0\n")
    assert trt_plugin.tensorrt_header_version(str(old)) == (10, 3, 0)


@pytest.mark.parametrize("arch", ["ampere", "sm87x", "compute_87"])
def test_malformed_architecture(tmp_path, capsys, arch):
    headers = _fake_headers(tmp_path / "inc", 10)
    code, _, err = call(["plugin", "--trt-include", str(headers), "--arch", arch, "-o", str(tmp_path / "p.so")],
                        capsys)
    assert_one_line_error(code, err, "sm_87")
    assert not (tmp_path / "p.so").exists()


def test_no_nvcc(tmp_path, capsys, monkeypatch):
    headers = _fake_headers(tmp_path / "inc", 10)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("EDGEMV_NVCC", raising=False)
    monkeypatch.setattr(trt_plugin.os.path, "isfile",
                        lambda p, _real=trt_plugin.os.path.isfile: False if p.endswith("nvcc") else _real(p))
    code, _, err = call(["plugin", "--trt-include", str(headers), "--arch", "sm_87", "-o", str(tmp_path / "p.so")],
                        capsys)
    assert_one_line_error(code, err, "nvcc not found")


def test_arch_flags_carry_sass_for_each_and_ptx_of_the_newest():
    flags = trt_plugin._arch_flags(["sm_87", "89", "sm_90a"])
    assert "-gencode=arch=compute_87,code=sm_87" in flags
    assert "-gencode=arch=compute_90a,code=sm_90a" in flags
    assert flags[-1] == "-gencode=arch=compute_90a,code=compute_90a"


def test_plugin_command_needs_no_torch(tmp_path):
    """On a Jetson `edgemv plugin` runs from `pip install --no-deps edgemv click`: nothing on its path imports torch."""
    import subprocess
    import sys

    code = ("import sys; from edgemv.cli import cli, run_cli; "
            f"run_cli(cli, ['plugin', '--trt-include', {str(tmp_path)!r}]); print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "False", res.stdout + res.stderr
    assert "no NvInferRuntime.h" in res.stderr
