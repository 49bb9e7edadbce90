"""edgemv validate on real labels: a MambaVision ('test' variant, the same code) trained on scikit-learn's digits
inside the session, quantized to INT8 and FP8 with ModelOpt, validated on the held-out split.

The numbers are printed (run with -s to see them) and asserted: FP32 >= 95%, INT8 and FP8 drops < 2 points.
Set EDGEMV_DIGITS_CACHE=DIR to keep the trained weights between sessions (never committed).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("modelopt")

sys.path.insert(0, os.path.dirname(__file__))
import digits_model  # noqa: E402

from edgemv.cli import cli, run_cli  # noqa: E402

MAX_DROP = 2.0  # points: what INT8/FP8 may cost on the digits held-out split


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    cache = os.environ.get("EDGEMV_DIGITS_CACHE") or str(tmp_path_factory.mktemp("digits"))
    meta = digits_model.build(cache)
    print(f"\ndigits model: held-out top-1 {meta['accuracy'] * 100:.2f}% after {meta['train_seconds']:.1f} s of "
          f"training ({meta['n_val']} held-out images)")
    return meta


def _quantize(meta, out, precision, calib=None, plan=None):
    from edgemv.quantize import run_quantize

    return run_quantize(model=digits_model.load_model(meta), precision=precision, calib=calib or meta["calib"],
                        eval_data=meta["val"], eval_size=64, input_size=tuple(meta["input_size"]), out=str(out),
                        batch_size=64, progress=False, log=lambda s: None, plan=plan)


@pytest.fixture(scope="session")
def runs(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {p: str(_quantize(digits, root / p, p).out_dir) for p in ("int8", "fp8")}


def test_trained_model_is_accurate(digits):
    assert digits["accuracy"] >= 0.95


@pytest.mark.parametrize("precision", ["int8", "fp8"])
def test_quantized_drop_on_held_out_digits(runs, digits, precision):
    from edgemv.validate import validate

    report = validate(runs[precision], data=digits["val"], max_drop=MAX_DROP, batch_size=64, progress=False)
    ra, ca, a = report.reference_accuracy, report.candidate_accuracy, report.agreement
    print(f"\n{precision.upper()} on {ra.images} held-out digits: FP32 top-1 {ra.top1:.2f}% top-5 {ra.top5:.2f}%, "
          f"{precision.upper()} top-1 {ca.top1:.2f}% top-5 {ca.top5:.2f}%, drop {report.drop['top1']:+.2f} / "
          f"{report.drop['top5']:+.2f} points; agreement {a.top1:.2f}%, cosine {a.cosine_mean:.5f}, "
          f"KL {a.kl_mean:.3g}")
    assert ra.images == digits["n_val"] and report.data.label_space == "class indices"
    assert ra.top1 >= 95.0
    assert report.drop["top1"] < MAX_DROP and report.drop["top5"] < MAX_DROP
    assert a.top1 > 95.0 and a.cosine_mean > 0.99
    assert report.passed


def test_cli_table_report_and_csv_labels(runs, digits, tmp_path, capsys):
    report = tmp_path / "r.json"
    rc = run_cli(cli, ["validate", runs["int8"], "--data", digits["val"], "--max-drop", "2", "--report", str(report),
                       "--batch-size", "64", "-q"])
    out = capsys.readouterr()
    print(out.out)
    assert rc == 0, out.err
    assert "top-1 accuracy" in out.out and "PASS: top-1 drop" in out.err
    d = json.loads(report.read_text())
    assert d["passed"] and d["budget"]["metric"] == "top1_drop" and d["data"]["used"] == digits["n_val"]
    # the same images as a CSV path,label give the same numbers
    rc = run_cli(cli, ["validate", runs["int8"], "--data", digits["val_csv"], "--max-drop", "2", "--report",
                       str(tmp_path / "csv.json"), "-q"])
    assert rc == 0
    c = json.loads((tmp_path / "csv.json").read_text())
    assert c["candidate_accuracy"] == d["candidate_accuracy"] and c["agreement"] == d["agreement"]


def test_budget_too_tight_fails_with_exit_3(runs, digits, tmp_path, capsys):
    rc = run_cli(cli, ["validate", runs["int8"], "--data", digits["val"], "--max-drop", "-1", "-q",
                       "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 3
    assert "FAIL: top-1 drop" in err and "exceeds the budget --max-drop -1" in err
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is False


@pytest.fixture(scope="session")
def damaged_calib(tmp_path_factory):
    """A deliberately damaging calibration set: already-normalised noise than real images, so every
    activation range is far too wide (40x) and INT8 steps swallow the signal."""
    import numpy as np

    path = tmp_path_factory.mktemp("damaged") / "noise.npy"
    np.save(path, (np.random.default_rng(0).standard_normal((8, 3, 32, 32)) * 40).astype(np.float32))
    return str(path)


@pytest.fixture(scope="session")
def damaged_run(digits, damaged_calib, tmp_path_factory):
    return str(_quantize(digits, tmp_path_factory.mktemp("damaged_run") / "run", "int8", calib=damaged_calib).out_dir)


def test_damaging_config_fails_the_gate(damaged_run, digits, tmp_path, capsys):
    rc = run_cli(cli, ["validate", damaged_run, "--data", digits["val"], "--max-drop", "0.5", "-q",
                       "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    d = json.loads((tmp_path / "r.json").read_text())
    print(f"\nnoise calibration: drop {d['drop']['top1']:+.2f} points")
    assert rc == 3 and "FAIL" in err and d["drop"]["top1"] > 0.5


def test_without_labels_agreement_only(runs, digits, tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for label in sorted(os.listdir(digits["val"]))[:3]:
        for name in sorted(os.listdir(os.path.join(digits["val"], label)))[:10]:
            shutil.copy(os.path.join(digits["val"], label, name), flat / f"{label}_{name}")
    rc = run_cli(cli, ["validate", runs["fp8"], "--data", str(flat), "--max-drop", "inf", "-q", "--json",
                       "--report", str(tmp_path / "r.json")])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["reference_accuracy"] is None and d["drop"] is None
    assert d["budget"]["metric"] == "top1_disagreement" and d["agreement"]["images"] == 30
    assert d["agreement"]["cosine_mean"] > 0.99 and d["agreement"]["kl_mean"] >= 0


def test_default_data_is_the_runs_held_out_images(runs, capsys):
    rc = run_cli(cli, ["validate", runs["int8"], "--max-drop", "inf", "-q", "--json", "--report", os.devnull])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["data"]["used"] == 64 and not d["data"]["labelled"]


@pytest.mark.parametrize("scan_form", ["decomposed", "plugin", "plugin-external"])
def test_onnx_through_onnx_runtime(runs, digits, tmp_path, capsys, monkeypatch, scan_form):
    """The INT8 run's ONNX file; in the plugin form ONNX Runtime has no kernel for the SelectiveScan nodes, so
    validate runs each as its specification in standard ops (and says so). 'plugin-external': the rewritten graph
    handed over as a file with its weights beside it, as a graph beyond protobuf's 2 GB is."""
    external = scan_form == "plugin-external"
    if external:
        scan_form = "plugin"
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    export = pytest.importorskip("edgemv.export")
    run = tmp_path / "run"
    shutil.copytree(runs["int8"], run)
    src = export.load_source(str(run))
    export.export_model(src, out=run / "model.onnx", check=False, trt_build=False, scan_form=scan_form)
    nodes = sum(n.op_type == "SelectiveScan" for n in onnx.load(str(run / "model.onnx")).graph.node)
    assert (nodes > 0) == (scan_form == "plugin")
    if external:  # the rewritten graph counts as beyond 2 GB (after the export, which stays as it was)
        import edgemv.export.onnx_export as onnx_export

        monkeypatch.setattr(onnx_export, "TWO_GB", 0)
    rc = run_cli(cli, ["validate", str(run / "model.onnx"), "--data", digits["val"], "--max-drop", "2", "-q",
                       "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    d = json.loads(out.out)
    print(f"\nINT8 ONNX, {scan_form} scan (ONNX Runtime): drop {d['drop']['top1']:+.2f} points, agreement "
          f"{d['agreement']['top1']:.2f}%")
    assert d["candidate"]["kind"] == "onnx" and "onnxruntime" in d["candidate"]["backend"]
    assert d["drop"]["top1"] < MAX_DROP and (run / "validate-model.onnx.json").is_file()
    assert any("SelectiveScan" in note for note in d["notes"]) == (scan_form == "plugin")


def test_sensitivity_sweep_json_and_png(runs, digits, tmp_path, capsys):
    rc = run_cli(cli, ["validate", runs["int8"], "--data", digits["val"], "--sensitivity", "--limit", "100",
                       "--max-drop", "2", "--out", str(tmp_path), "-q"])
    out = capsys.readouterr().out
    print(out)
    assert rc == 0
    d = json.loads((tmp_path / "sensitivity.json").read_text())
    names = [g["group"] for g in d["groups"]]
    assert {"stem", "scan_inputs.L2", "attention.L3", "mlp.L2", "head"} <= set(names)
    assert d["metric"] == "top1_drop" and d["images"] == 100 and len(d["ranking"]) == len(names)
    assert all(abs(g["drop"]) < 10 for g in d["groups"])
    png = (tmp_path / "sensitivity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_quantize_max_drop_plan_keeps_groups_in_high_precision(damaged_calib, digits, tmp_path):
    """The --max-drop search on the damaging calibration: groups go to high precision until the budget holds."""
    from edgemv.validate import make_plan

    logs = []
    result = _quantize(digits, tmp_path / "planned", "int8", calib=damaged_calib, plan=make_plan(1.0, log=logs.append))
    plan = result.info["plan"]
    print("\n" + "\n".join(logs))
    assert plan["steps"][0]["excluded"] is None and plan["sensitivity"]["groups"]
    assert plan["steps"][0]["drop"] > 1.0, "the noise calibration should break the budget before the search"
    assert plan["excluded_groups"] and plan["met"] is True and plan["final_drop"] <= 1.0
    assert set(result.info["recipe"]["exclude"]) == set(plan["exclude_patterns"])


def test_torchrun_two_processes_equal_one(runs, digits, tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert run_cli(cli, ["validate", runs["int8"], "--data", digits["val"], "--report", str(one), "-q",
                         "--max-drop", "2", "--batch-size", "32"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", "-m", "edgemv", "validate", runs["int8"], "--data", digits["val"],
                           "--report", str(two), "-q", "--max-drop", "2", "--batch-size", "32"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert b["world_size"] == 2 and a["world_size"] == 1
    for key in ("reference_accuracy", "candidate_accuracy", "drop", "agreement"):
        assert a[key] == b[key], key
