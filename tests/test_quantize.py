"""edgemv.quantize: ModelOpt INT8/FP8 on the tiny 'test' variant, recipes, run folders, the CLI's errors."""

import copy
import fnmatch
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cli_helpers import assert_one_line_error, call
from edgemv.models import create_model
from edgemv.quantize import (GROUPS, HIGH_PRECISION, RunFolderError, group_of, load_fp32_reference, load_quantized,
                             make_recipe, quantize, quantizer_report, read_run_info, run_quantize)
from edgemv.quantize.config import Recipe
from edgemv.quantize.fold import fold_batchnorm

pytest.importorskip("modelopt.torch.quantization")

SIZE = 32  # the 'test' variant runs at any multiple of 32; small images keep each forward in milliseconds


def _model(seed=0):
    torch.manual_seed(seed)
    return create_model("test", weights="random")


def _loop(n=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    batches = [torch.randn(4, 3, SIZE, SIZE, generator=g) for _ in range(n)]

    def forward_loop(model):
        with torch.no_grad():
            for x in batches:
                model(x)

    return forward_loop


def _x(seed=2, n=3):
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _quantizers(model):
    from modelopt.torch.quantization.nn import TensorQuantizer

    return {n: q for n, q in model.named_modules() if isinstance(q, TensorQuantizer)}


def _module_states(model):
    """module name -> (weight quantizer enabled or None, input enabled, output enabled)."""
    qs = _quantizers(model)
    modules = sorted({n.rpartition(".")[0] for n in qs})
    def state(m, kind):
        q = qs.get(f"{m}.{kind}_quantizer")
        return None if q is None else q.is_enabled
    return {m: (state(m, "weight"), state(m, "input"), state(m, "output")) for m in modules}


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """12 small photos-to-be plus two damaged files."""
    root = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(0)
    for i in range(12):
        sub = root / "a" if i % 2 else root / "b" / "deeper"  # nested folders are searched too
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((40 + i, 48, 3)) * 255).astype("uint8")).save(sub / f"img{i:02d}.png")
    (root / "broken.jpg").write_bytes(b"this is not a jpeg")
    (root / "a" / "truncated.png").write_bytes((root / "a" / "img01.png").read_bytes()[:150])
    return root


@pytest.fixture(scope="module")
def int8_run(image_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "test-int8"
    result = run_quantize("test", "random", "int8", calib=image_dir, out=out, input_size=SIZE, batch_size=4,
                          seed=0, progress=False, log=lambda m: None)
    return result


# -- recipes as data ----------------------------------------------------------------------------------------------

def test_recipe_is_preset_plus_entries():
    import modelopt.torch.quantization as mtq

    recipe = make_recipe("int8")
    cfg = recipe.to_modelopt()
    preset = mtq.INT8_DEFAULT_CFG["quant_cfg"]
    assert cfg["quant_cfg"][:len(preset)] == preset  # the ModelOpt preset first, unchanged
    assert cfg["quant_cfg"][len(preset)] == {"quantizer_name": "*", "enable": False}
    assert cfg["algorithm"] == "max"
    assert make_recipe("fp8").to_modelopt()["quant_cfg"][:3] == mtq.FP8_DEFAULT_CFG["quant_cfg"][:3]
    hist = make_recipe("int8", "percentile").to_modelopt()
    assert hist["algorithm"] is None
    assert any(e.get("cfg", {}) and e["cfg"].get("calibrator") == "histogram" for e in hist["quant_cfg"])
    assert not mtq.INT8_DEFAULT_CFG["quant_cfg"][2].get("cfg", {}).get("calibrator")  # preset not mutated


def test_recipe_rejects_impossible_combinations():
    with pytest.raises(ValueError, match="entropy"):
        make_recipe("fp8", "entropy")
    with pytest.raises(ValueError, match="unknown group"):
        Recipe(quantized_groups=("nope",))
    with pytest.raises(ValueError, match="precision"):
        make_recipe("int4")


def test_groups_cover_every_quantizable_module_of_t():
    from edgemv.quantize.model_quant import quantizable_modules

    with torch.device("meta"):  # names only: no memory, no init cost
        model = create_model("t", weights="random")
    missing = [n for n in quantizable_modules(model) if group_of(n) is None]
    assert missing == []
    # the scan inputs come from x_proj / dt_proj, which are their own groups
    assert group_of("levels.2.blocks.0.mixer.x_proj") == "mixer_x_proj"
    assert group_of("levels.2.blocks.0.mixer.conv1d_x") == "mixer_conv1d"
    assert group_of("patch_embed.conv_down.1") == "norms"


# -- quantizers exactly where the recipe says ---------------------------------------------------------------------

def _expected_enabled(name, recipe):
    group = group_of(name)
    on = group in recipe.quantized_groups
    if any(fnmatch.fnmatchcase(name, p) for p in recipe.include):
        on = True
    if any(fnmatch.fnmatchcase(name, p) for p in recipe.exclude):
        on = False
    return on


@pytest.mark.parametrize("precision", ["int8", "fp8"])
def test_quantizers_where_the_recipe_says(precision):
    model = _model()
    x = _x()
    ref = model(x)
    recipe = make_recipe(precision, exclude=["levels.3.*"], include=["*.mixer.x_proj"])
    q = quantize(model, recipe, _loop())
    states = _module_states(q)
    assert states, "no quantizers inserted"
    for name, (w, i, o) in states.items():
        expected = _expected_enabled(name, recipe)
        assert i == expected, (name, group_of(name))
        if w is not None:
            assert w == expected, name
        assert o is False, name  # output quantizers always off
    # spot checks in words
    assert states["levels.2.blocks.0.mixer.x_proj"][:2] == (True, True)  # --include
    assert states["levels.3.blocks.0.mixer.in_proj"][:2] == (False, False)  # --exclude wins
    assert states["levels.2.blocks.0.mixer.dt_proj"][:2] == (False, False)  # high precision by default
    assert states["levels.2.blocks.0.mixer.conv1d_x"][:2] == (False, False)
    assert states["levels.2.blocks.0.norm1"][1] is False
    assert states["patch_embed.conv_down.1"][1] is False
    qs = _quantizers(q)
    bits = qs["levels.2.blocks.0.mixer.in_proj.weight_quantizer"].num_bits
    assert bits == (8 if precision == "int8" else (4, 3))
    out = q(x)
    assert torch.isfinite(out).all()
    assert torch.nn.functional.cosine_similarity(out, ref).min() > 0.9
    assert not torch.equal(out, ref)  # quantization did something


def test_conv_output_quantizers_only_on_quantized_convs():
    """make_recipe(conv_output=True): output quantizers on the stem / ConvBlock / downsample convs, nowhere else,
    not on the level-0 downsample (CONV_OUTPUT_SKIP); --exclude switches them off too."""
    from edgemv.quantize.config import CONV_OUTPUT_GROUPS, CONV_OUTPUT_SKIP

    recipe = make_recipe("int8", conv_output=True, exclude=["levels.1.downsample.*"])
    states = _module_states(quantize(_model(), recipe, _loop()))
    with_output = {m for m, (w, i, o) in states.items() if o}
    expected = {m for m in states if group_of(m) in CONV_OUTPUT_GROUPS and _expected_enabled(m, recipe)
                and m not in CONV_OUTPUT_SKIP}
    assert "levels.0.downsample.reduction.0" in states and "levels.0.downsample.reduction.0" not in with_output
    assert with_output == expected and "patch_embed.conv_down.0" in expected
    assert "levels.1.downsample.reduction.0" not in with_output and not any("mixer" in m for m in with_output)
    assert recipe.as_dict()["conv_output"] is True and make_recipe("int8").as_dict()["conv_output"] is False


def test_default_recipe_report():
    q = quantize(_model(), make_recipe("int8"), _loop())
    report = quantizer_report(q)
    groups = report.groups()
    for g in GROUPS:
        if g.quantize:
            assert groups[g.name]["quantized"] > 0 and groups[g.name]["high_precision"] == 0, g.name
        else:
            assert groups[g.name]["quantized"] == 0 and groups[g.name]["high_precision"] > 0, g.name
    for g in HIGH_PRECISION:
        assert groups[g.name]["quantized"] == 0
    assert "other" not in groups


def test_percentile_and_entropy_use_histograms():
    from modelopt.torch.quantization.calib import HistogramCalibrator

    for method in ("percentile", "entropy"):
        # entropy's search is slow in ModelOpt (Python loop): two groups keep the test in seconds
        recipe = make_recipe("int8", method, quantized_groups=("head", "mlp_fc2"))
        q = quantize(_model(), recipe, _loop())
        qs = _quantizers(q)
        inp = qs["head.input_quantizer"]
        assert isinstance(inp._calibrator, HistogramCalibrator) and inp.amax is not None
        assert float(inp.amax) > 0
        assert torch.isfinite(q(_x())).all()


def test_histogram_methods_calibrate_conv_outputs_too():
    """entropy / percentile with conv_output: the convs' output quantizers get the histogram calibrator as the input
    quantizers do (they were max-calibrated), in the config and after calibration."""
    from modelopt.torch.quantization.calib import HistogramCalibrator

    for method in ("percentile", "entropy"):
        cfg = make_recipe("int8", method, conv_output=True).to_modelopt()
        outputs = [e for e in cfg["quant_cfg"] if e["quantizer_name"].endswith(".output_quantizer") and "cfg" in e]
        assert outputs and all(e["cfg"].get("calibrator") == "histogram" for e in outputs), outputs
    max_outputs = [e for e in make_recipe("int8", conv_output=True).to_modelopt()["quant_cfg"]
                   if e["quantizer_name"].endswith(".output_quantizer") and "cfg" in e]
    assert max_outputs and not any("calibrator" in e["cfg"] for e in max_outputs)

    q = quantize(_model(), make_recipe("int8", "percentile", quantized_groups=("stem",), conv_output=True), _loop())
    out = _quantizers(q)["patch_embed.conv_down.0.output_quantizer"]
    assert out.is_enabled and isinstance(out._calibrator, HistogramCalibrator)
    assert out.amax is not None and float(out.amax) > 0
    assert torch.isfinite(q(_x())).all()


def test_bad_pattern_is_an_error():
    from edgemv.quantize import QuantizeError

    with pytest.raises(QuantizeError, match="matches no quantizable module"):
        quantize(_model(), make_recipe("int8", exclude=["*.mixer.x_prj"]), _loop())


# -- the pipeline, run folders, save/restore -----------------------------------------------------------------------

def test_run_folder_contents(int8_run):
    out = int8_run.out_dir
    assert (out / "model.pth").is_file() and (out / "quantize.json").is_file()
    info = read_run_info(out)
    assert info["model"]["variant"] == "test" and info["model"]["input_size"] == [3, SIZE, SIZE]
    assert info["weights"]["random"] is True and info["weights"]["sha256"] is None
    assert info["precision"] == "int8" and info["recipe"]["calib_method"] == "max"
    assert info["versions"]["modelopt"] and info["versions"]["torch"]
    calib = info["calibration"]
    assert calib["source_images"] == 14 and len(calib["sha256"]) == 64
    assert info["quantizers"]["modules_quantized"] and info["quantizers"]["modules_high_precision"]
    fid = info["fidelity"]
    # calibration and fidelity images never overlap
    assert not set(fid["files"]) & set(calib["files"])
    assert fid["metrics"]["images"] == len(fid["files"]) - len(fid["skipped"]) > 0
    assert 0 <= fid["metrics"]["top1_agreement"] <= 1 and fid["metrics"]["cosine_mean"] > 0.9
    assert "smoke test" in fid["note"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left
    # the folder gets the mode mkdir would give it, not the temporary folder's 0700
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask


def test_corrupt_images_are_skipped_and_counted(int8_run):
    info = int8_run.info
    skipped = info["calibration"]["skipped"] + info["fidelity"]["skipped"]
    names = sorted(s["path"].rsplit("/", 1)[-1] for s in skipped)
    assert names == ["broken.jpg", "truncated.png"]
    assert all(s["reason"] for s in skipped)
    assert info["calibration"]["used"] == info["calibration"]["selected"] - len(info["calibration"]["skipped"])


def test_a_run_is_named_by_its_folder_model_or_record(int8_run):
    from edgemv.quantize.artifacts import resolve_run

    out = int8_run.out_dir
    want = (out, out / "model.pth", out / "quantize.json")
    assert resolve_run(out) == resolve_run(out / "model.pth") == resolve_run(out / "quantize.json") == want
    from edgemv.quantize import run_folder_holding, run_folder_of

    assert run_folder_of(out) == run_folder_of(out / "model.pth") == run_folder_of(out / "quantize.json") == out
    (out / "other.pt").write_bytes(b"")
    assert run_folder_of(out / "other.pt") is None and run_folder_of(out.parent) is None
    assert run_folder_holding(out / "other.pt") == run_folder_holding(out) == out  # a file lying in the run
    assert run_folder_holding(out.parent) is None
    (out / "other.pt").unlink()


def test_save_restore_gives_identical_outputs(int8_run):
    x = _x()
    expected = int8_run.model(x)
    for path in (int8_run.out_dir, int8_run.out_dir / "model.pth"):
        restored = load_quantized(path)
        assert torch.equal(restored(x), expected)
        assert restored.run_info["precision"] == "int8"
        assert tuple(restored.pretrained_cfg.input_size) == (3, SIZE, SIZE)


def test_fp32_reference_equals_the_original_model(int8_run):
    x = _x()
    original = _model(seed=0).eval()  # run_quantize seeds torch with --seed before building random weights
    folded = copy.deepcopy(original)
    assert fold_batchnorm(folded) == [tuple(p) for p in int8_run.info["bn_fold"]["pairs"]]
    fp32 = load_fp32_reference(int8_run.out_dir)
    assert torch.equal(fp32(x), folded(x))  # the run quantized the BN-folded model: exactly that, restored
    ref = original(x)
    assert (fp32(x) - ref).abs().max() <= 1e-5 * ref.abs().max()  # and folding BN changed nothing (float32)
    assert not torch.equal(load_quantized(int8_run.out_dir)(x), original(x))


def test_fp8_pipeline_and_atomic_overwrite(image_dir, tmp_path):
    out = tmp_path / "run"
    kw = dict(calib=image_dir, out=out, input_size=SIZE, batch_size=8, progress=False, log=lambda m: None)
    r = run_quantize("test", "random", "fp8", calib_method="percentile", calib_size=4, **kw)
    assert r.info["calibration"]["selected"] == 4
    assert r.info["deployment"]["fp8"].startswith("FP8 engines need compute capability sm_89")
    assert r.info["bn_fold"] == {"enabled": False, "pairs": []}  # FP8 (per-tensor weights): not folded by default
    assert torch.equal(load_quantized(out)(_x()), r.model(_x()))
    before = (out / "quantize.json").read_text()
    with pytest.raises(RunFolderError, match="--force"):
        run_quantize("test", "random", "fp8", **kw)
    assert (out / "quantize.json").read_text() == before  # untouched
    r2 = run_quantize("test", "random", "fp8", force=True, seed=3, **kw)
    assert read_run_info(out)["calibration"]["seed"] == 3 and r2.out_dir == out.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_refuses_to_replace_a_folder_that_is_not_a_run(image_dir, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="not an edgemv run"):
        run_quantize("test", "random", calib=image_dir, out=tmp_path, force=True, progress=False,
                     log=lambda m: None)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_load_quantized_errors(tmp_path):
    with pytest.raises(RunFolderError, match="no such run"):
        load_quantized(tmp_path / "missing")
    with pytest.raises(RunFolderError, match="quantize.json is missing"):
        load_quantized(tmp_path)


# -- the CLI ------------------------------------------------------------------------------------------------------

def test_cli_quantize_success(image_dir, tmp_path, capsys):
    out = tmp_path / "cli-run"
    code, stdout, err = call(["quantize", "--variant", "test", "--weights", "random", "--calib", str(image_dir),
                              "--out", str(out), "--calib-size", "6", "-b", "4"], capsys)
    assert code == 0, err
    assert "top-1 agreement" in stdout and "logit cosine" in stdout
    assert f"saved {out.resolve() / 'model.pth'}" in stdout and "quantize.json" in stdout
    assert "skipped" in err  # stage lines go to stderr
    assert "Inserted" not in stdout  # ModelOpt's own print is kept off stdout
    info = json.loads((out / "quantize.json").read_text())
    assert info["calibration"]["selected"] == 6
    assert info["recipe"]["conv_output"] is False


def test_cli_quantize_conv_output(image_dir, tmp_path, capsys):
    out = tmp_path / "cli-co"
    code, _, err = call(["quantize", "--variant", "test", "--weights", "random", "--calib", str(image_dir),
                         "--out", str(out), "--calib-size", "6", "-b", "4", "--conv-output", "-q"], capsys)
    assert code == 0, err
    assert json.loads((out / "quantize.json").read_text())["recipe"]["conv_output"] is True
    with_output = {n for n, kinds in quantizer_report(load_quantized(out)).quantized.items() if "output" in kinds}
    assert "patch_embed.conv_down.0" in with_output and "levels.0.downsample.reduction.0" not in with_output


@pytest.mark.parametrize("args, fragments", [
    (["--calib", "/no/such/folder"], ["no such file or folder"]),
    (["--calib-size", "0"], ["--calib-size"]),
    (["--precision", "fp8", "--calib-method", "entropy"], ["entropy"]),
    (["--precision", "int4"], ["--precision"]),
    (["--exclude", "*.mixer.x_prj"], ["matches no quantizable module"]),
    (["--weights", "/no/such/weights.pth"], ["weights file not found"]),
    (["--variant", "zz"], ["unknown variant"]),
    (["--conv-output", "--max-drop", "1"], ["--conv-output", "--max-drop"]),
])
def test_cli_rejects_bad_input_in_one_line(args, fragments, image_dir, tmp_path, capsys):
    base = ["quantize", "--variant", "test", "--weights", "random", "--calib", str(image_dir), "--out",
            str(tmp_path / "r")]
    code, _, err = call(base + args, capsys)
    assert_one_line_error(code, err, *fragments)


def test_cli_rejects_empty_and_all_corrupt_sets(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = call(["quantize", "--variant", "test", "--weights", "random", "--calib", str(empty), "--out",
                         str(tmp_path / "r1")], capsys)
    assert_one_line_error(code, err, "no images")
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"x{i}.jpg").write_bytes(b"garbage")
    code, _, err = call(["quantize", "--variant", "test", "--weights", "random", "--calib", str(bad), "--out",
                         str(tmp_path / "r2"), "-q"], capsys)
    assert_one_line_error(code, err, "could be used")
    assert not (tmp_path / "r2").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cli_rejects_cuda_without_cuda(image_dir, tmp_path, capsys):
    code, _, err = call(["quantize", "--variant", "test", "--weights", "random", "--calib", str(image_dir),
                         "--device", "cuda", "--out", str(tmp_path / "r")], capsys)
    assert_one_line_error(code, err, "CUDA")


def test_cli_refuses_existing_run_without_force(int8_run, image_dir, capsys):
    code, _, err = call(["quantize", "--variant", "test", "--weights", "random", "--calib", str(image_dir),
                         "--out", str(int8_run.out_dir)], capsys)
    assert_one_line_error(code, err, "--force")


def test_import_and_help_do_not_import_modelopt():
    code = ("import sys, edgemv, edgemv.quantize, edgemv.cli; from edgemv.cli import cli, run_cli; "
            "run_cli(cli, ['quantize', '--help']); assert 'modelopt' not in sys.modules, 'modelopt imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--calib-method" in out.stdout
