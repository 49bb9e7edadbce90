"""Whole models saved with torch.save(model): unpickled only with --trust-pickle, since unpickling runs code stored
in the file; checkpoints of tensors load safely as before, and a hostile file runs nothing without the flag."""

import os

import pytest
import torch

from cli_helpers import assert_one_line_error, call
from edgemv.errors import PickledObjectsError
from edgemv.models import create_model
from edgemv.models.pickled import load_whole_module
from edgemv.validate import ValidateError, resolve_models


class _Hostile:
    """Unpickling it writes a file: what a malicious checkpoint could do instead."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def files(tmp_path):
    model = create_model("test")
    whole = tmp_path / "pruned.pt"
    torch.save(model, whole)
    state = tmp_path / "weights.pth"
    torch.save(model.state_dict(), state)
    marker = tmp_path / "ran.txt"
    hostile = tmp_path / "hostile.pth"
    torch.save({"state_dict": model.state_dict(), "extra": _Hostile(str(marker))}, hostile)
    return dict(model=model, whole=whole, state=state, hostile=hostile, marker=marker)


def test_checkpoints_of_tensors_are_not_whole_modules(files):
    assert load_whole_module(files["state"]) is None
    assert load_whole_module(files["state"], trust_pickle=True) is None


def test_a_whole_module_needs_trust_and_then_loads(files):
    with pytest.raises(PickledObjectsError, match="--trust-pickle") as info:
        load_whole_module(files["whole"])
    assert "MambaVision" in info.value.refused_global
    loaded = load_whole_module(files["whole"], trust_pickle=True)
    x = torch.randn(1, *files["model"].pretrained_cfg.input_size)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), files["model"](x))


def test_a_hostile_pickle_runs_nothing_without_trust(files, capsys):
    with pytest.raises(PickledObjectsError):
        load_whole_module(files["hostile"])
    code, _, err = call(["export", str(files["hostile"]), "--variant", "test", "--no-check"], capsys)
    assert_one_line_error(code, err, "--trust-pickle")
    with pytest.raises(PickledObjectsError):
        resolve_models(files["hostile"], variant="test", weights="random")
    with pytest.raises(PickledObjectsError):
        resolve_models(files["state"], reference=str(files["hostile"]))
    assert not os.path.exists(files["marker"])


def test_cli_export_of_a_whole_module(files, tmp_path, capsys):
    code, _, err = call(["export", str(files["whole"]), "--no-check"], capsys)
    assert_one_line_error(code, err, "pickled Python objects", "--trust-pickle")
    out = tmp_path / "pruned.onnx"
    code, _, err = call(["export", str(files["whole"]), "--trust-pickle", "--no-check", "--out", str(out)], capsys)
    assert code == 0, err
    assert out.is_file()


def test_an_onnx_file_is_not_a_reference(tmp_path):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"not checked")
    with pytest.raises(ValidateError, match="FP32 reference runs in PyTorch"):
        resolve_models(onnx_file, reference=str(onnx_file))
