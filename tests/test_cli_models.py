"""The CLI's model commands, and bad input: one line, non-zero exit, no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_helpers import assert_one_line_error, call
from edgemv import __version__
from edgemv.cli import run_cli
from edgemv.models import create_model


def test_console_script_version():
    exe = Path(sys.executable).with_name("edgemv")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout


def test_version(capsys):
    code, out, _ = call(["--version"], capsys)
    assert code == 0 and __version__ in out


def test_help_explains_flow(capsys):
    code, out, _ = call(["--help"], capsys)
    assert code == 0
    for word in ("variants", "predict", "--weights", "random"):
        assert word in out


def test_variants_table(capsys):
    code, out, _ = call(["variants", "--no-gmacs"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 + 11
    t_row = next(line for line in lines if line.startswith("t "))
    assert "31.794" in t_row and "224x224" in t_row and "196/49" in t_row and "nvidia/MambaVision-T-1K" in t_row
    l2_512 = next(line for line in lines if line.startswith("l2-512-21k"))
    assert "512x512" in l2_512 and "1024/256" in l2_512


def test_variants_json_with_gmacs(capsys):
    code, out, _ = call(["variants", "--json"], capsys)
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    # MACs counted on the meta device; the paper gives 4.4 G for T (its counter skips some ops).
    assert 4.3 < rows["t"]["gmacs"] < 4.8
    assert rows["s"]["gmacs"] > rows["t"]["gmacs"]


def test_unknown_variant(capsys):
    code, _, err = call(["predict", "x.jpg", "--variant", "xl", "--weights", "random"], capsys)
    assert_one_line_error(code, err, "unknown variant 'xl'")


def test_missing_weights_file(tmp_path, capsys):
    img = tmp_path / "a.png"
    _write_image(img)
    code, _, err = call(["predict", str(img), "--variant", "test", "--weights", str(tmp_path / "none.pth")], capsys)
    assert_one_line_error(code, err, "weights file not found")


def test_truncated_checkpoint(tmp_path, capsys):
    img = tmp_path / "a.png"
    _write_image(img)
    path = tmp_path / "t.pth.tar"
    torch.save({"state_dict": create_model("test").state_dict()}, path)
    path.write_bytes(path.read_bytes()[:1000])
    code, _, err = call(["predict", str(img), "--variant", "test", "--weights", str(path)], capsys)
    assert_one_line_error(code, err, "cannot read checkpoint")


def test_other_variants_checkpoint(tmp_path, capsys):
    img = tmp_path / "a.png"
    _write_image(img)
    with torch.device("meta"):
        s = create_model("s")
    torch.save({"state_dict": {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in s.state_dict().items()}},
               tmp_path / "s.pth.tar")
    code, _, err = call(["predict", str(img), "--variant", "t", "--weights", str(tmp_path / "s.pth.tar")], capsys)
    assert_one_line_error(code, err, "does not fit variant 't'", "look like variant s")


def test_missing_image(tmp_path, capsys):
    code, _, err = call(["predict", str(tmp_path / "nope.jpg"), "--variant", "test", "--weights", "random"], capsys)
    assert_one_line_error(code, err)


def _write_image(path, size=(40, 30), seed=0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def test_predict_top5_with_names(tmp_path, capsys):
    for i in range(2):
        _write_image(tmp_path / f"img{i}.png", seed=i)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    torch.manual_seed(0)
    model = create_model("t")
    torch.save({"state_dict": model.state_dict()}, tmp_path / "t.pth.tar")
    code, out, err = call(["predict", str(tmp_path), "--weights", str(tmp_path / "t.pth.tar"), "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert len(report["predictions"]) == 2 and len(report["skipped"]) == 1
    top = report["predictions"][0]["top"]
    assert len(top) == 5 and all(isinstance(t["name"], str) and t["name"] for t in top)
    probs = [t["prob"] for t in top]
    assert probs == sorted(probs, reverse=True)


@pytest.mark.parametrize("args", [["variants", "--bogus"], ["predict"], ["nosuchcommand"]])
def test_usage_errors(args, capsys):
    code, _, err = call(args, capsys)
    assert code == 2 and "Traceback" not in err


def test_exit_codes_from_commands_pass_through():
    import click

    @click.group()
    def group():
        pass

    @group.command()
    def fails():
        click.get_current_context().exit(3)

    assert run_cli(group, ["fails"]) == 3
