"""edgemv.validate without a trained model: metrics, reports, sharding, the ONNX runner, streaming memory, CLI
errors. (The trained-digits tests live in test_validate_digits.py.)"""

import gc
import json
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch
from PIL import Image

from edgemv.validate.distributed import DistContext, shard_indices
from edgemv.validate.metrics import ImageStats, compare_batch
from edgemv.atomic import write_json_atomic
from edgemv.validate.report import Budget, DataInfo, ModelInfo, ValidationReport


def test_compare_batch_values():
    ref = torch.tensor([[5.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 2.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 9.0]])
    cand = torch.tensor([[5.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 3.0, 0.0, 0.0, 0.0], [9.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 2, 5])
    part = compare_batch(ref, cand, labels, [0, 1, 2])
    assert part["agree_top1"].tolist() == [True, False, False]
    assert part["agree_top5"].tolist() == [True, True, True]  # 6 classes: top-5 holds all but one
    assert part["ref_top1"].tolist() == [True, False, True]
    assert part["cand_top1"].tolist() == [True, True, False]
    assert part["kl"][0] == 0 and part["kl"][1] > 0
    assert part["cosine"][0] == pytest.approx(1.0)
    stats = ImageStats()
    stats.add(part)
    ra, ca = stats.accuracy("ref"), stats.accuracy("cand")
    assert ra.correct_top1 == 2 and ca.correct_top1 == 2 and ra.top1 == pytest.approx(200 / 3)
    assert stats.agreement().top1 == pytest.approx(100 / 3)


def test_merge_in_index_order_equals_one_pass():
    g = torch.Generator().manual_seed(0)
    ref, cand = torch.randn(40, 10, generator=g), torch.randn(40, 10, generator=g)
    labels = torch.randint(0, 10, (40,), generator=g)
    whole = ImageStats()
    whole.add(compare_batch(ref, cand, labels, range(40)))
    parts = []
    for rank in range(3):  # blocks of 8 dealt round-robin, as torchrun ranks get them
        s = ImageStats()
        for i in shard_indices(40, 8, DistContext(rank=rank, world_size=3)):
            s.add(compare_batch(ref[i:i + 1], cand[i:i + 1], labels[i:i + 1], [i]))
        parts.append(s.state())
    merged = ImageStats.merge(parts)
    assert merged.agreement() == whole.agreement()
    assert merged.accuracy("cand") == whole.accuracy("cand")


def test_shard_indices_cover_everything_once():
    n, block, world = 103, 8, 3
    shards = [shard_indices(n, block, DistContext(rank=r, world_size=world)) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(n))
    assert shards[1][:8] == list(range(8, 16))
    assert shard_indices(5, 8, DistContext()) == list(range(5))


def _report(passed=True):
    return ValidationReport(
        candidate=ModelInfo("INT8 run", "torch-quantized", "/r", "int8"), reference=ModelInfo("FP32", "torch"),
        data=DataInfo("/d", "imagefolder", True, 10, 10), agreement=None,
        budget=Budget("top1_drop", 0.7, 0.5, passed))


def test_report_json_atomic(tmp_path):
    path = tmp_path / "sub" / "r.json"
    _report().write(path)
    d = json.loads(path.read_text())
    assert d["schema"] == "edgemv.validate/1" and d["budget"]["max_drop"] == 0.5
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary left behind
    with pytest.raises(TypeError):
        write_json_atomic(path, {(1, 2): 3})  # unserialisable (tuple key): the old file stays
    assert json.loads(path.read_text())["schema"] == "edgemv.validate/1"
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_budget_line():
    assert "exceeds the budget --max-drop 0.5" in Budget("top1_drop", 0.7, 0.5, False).line()
    assert "disagreement" in Budget("top1_disagreement", 0.2, 0.5, True).line()


def _tiny_onnx(path, batch):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(3 * 4 * 4 * 10, dtype=np.float32).reshape(48, 10) / 1000
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])],
                              [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return w


@pytest.mark.parametrize("batch", [2, "N"])
def test_onnx_runner_static_and_dynamic_batch(tmp_path, batch):
    pytest.importorskip("onnxruntime")
    from edgemv.runtime import OnnxRunner

    w = _tiny_onnx(tmp_path / "m.onnx", batch)
    runner = OnnxRunner(tmp_path / "m.onnx")
    assert runner.static_batch == (2 if batch == 2 else None) and runner.input_hw == [4, 4]
    x = np.random.default_rng(0).standard_normal((5, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(runner(x), x.reshape(5, -1) @ w, rtol=1e-5, atol=1e-6)


def test_onnx_runner_bad_file_is_one_line(tmp_path):
    pytest.importorskip("onnxruntime")
    from edgemv.runtime import OnnxRunner, RuntimeBackendError

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeBackendError, match="ONNX Runtime cannot load bad.onnx"):
        OnnxRunner(bad)


def test_tensorrt_runner_says_what_is_missing(tmp_path):
    from edgemv.runtime import RuntimeBackendError, TensorRTRunner, tensorrt_available

    if tensorrt_available():
        pytest.skip("tensorrt is installed here")
    with pytest.raises(RuntimeBackendError, match="tensorrt Python package"):
        TensorRTRunner(tmp_path / "m.engine")


def test_engine_plugin_option_is_checked_and_reaches_the_runner(tmp_path, capsys, monkeypatch):
    from cli_helpers import assert_one_line_error, call
    from edgemv.runtime import tensorrt_runner

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"engine")
    code, _, err = call(["validate", str(engine), "--plugin", str(tmp_path / "missing.so")], capsys)
    assert code == 2 and "missing.so" in err and "Traceback" not in err  # Click refuses a missing file
    seen = []

    class Runner:  # stands in for TensorRT, which cannot be installed here: records what validate passes on
        def __init__(self, path, plugins=(), name=None):
            seen.append((str(path), tuple(plugins)))
            raise tensorrt_runner.RuntimeBackendError("no TensorRT here")

    monkeypatch.setattr(tensorrt_runner, "TensorRTRunner", Runner)
    monkeypatch.setattr("edgemv.runtime.TensorRTRunner", Runner)
    lib = tmp_path / "libedgemv_scan_plugin.so"
    lib.write_bytes(b"")
    code, _, err = call(["validate", str(engine), "--plugin", str(lib), "--variant", "test", "--weights", "random"],
                        capsys)
    assert_one_line_error(code, err, "no TensorRT here")
    assert seen == [(str(engine), (str(lib),))]


def test_import_stays_light():
    code = ("import sys, edgemv, edgemv.validate, edgemv.runtime, edgemv.cli; "
            "print([m for m in ('modelopt', 'onnx', 'onnxruntime', 'matplotlib', 'tensorrt') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sensitivity_groups_of_the_test_variant():
    pytest.importorskip("modelopt")
    from edgemv.models import create_model
    from edgemv.validate import sensitivity_groups

    groups = {g.name: g for g in sensitivity_groups(create_model("test"))}
    assert list(groups) == ["stem", "convs.L0", "convs.L1", "convs.L2", "mixer.L2", "scan_inputs.L2",
                            "attention.L2", "mlp.L2", "mixer.L3", "scan_inputs.L3", "attention.L3", "mlp.L3", "head"]
    # test variant: level 2 has 3 blocks (2 mixer, 1 attention), level 3 has 2 (1 and 1)
    assert groups["scan_inputs.L2"].modules == ("levels.2.blocks.0.mixer.x_proj", "levels.2.blocks.0.mixer.dt_proj",
                                                "levels.2.blocks.1.mixer.x_proj", "levels.2.blocks.1.mixer.dt_proj")
    assert len(groups["attention.L3"].modules) == 2 and groups["head"].modules == ("avgpool", "head")
    assert groups["convs.L2"].modules == ("levels.2.downsample.reduction.0",)


class _Counting:
    """A stand-in model that records how many decoded images and batches are alive when it runs."""

    def __init__(self):
        self.live = set()
        self.peak_batches = 0
        self.calls = 0

    def track(self, images):
        ref = weakref.ref(images, lambda r: self.live.discard(r))
        self.live.add(ref)
        gc.collect()
        self.peak_batches = max(self.peak_batches, len(self.live))

    def __call__(self, images):
        self.calls += 1
        return images.mean(dim=(2, 3)).repeat(1, 4)[:, :10] * 10


def test_streaming_200_images_keeps_few_batches_alive(tmp_path):
    from edgemv.data import discover_images, eval_transform
    from edgemv.models import get_variant
    from edgemv.validate.evaluate import evaluate_pair

    rng = np.random.default_rng(0)
    for i in range(200):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(tmp_path / f"{i:03d}.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    image_set = discover_images(tmp_path)
    cfg = get_variant("test").pretrained
    from dataclasses import replace

    transform = eval_transform(replace(cfg, input_size=(3, 32, 32)))
    model = _Counting()
    result = evaluate_pair(model, model, image_set, transform, batch_size=8, on_batch=model.track)
    assert result.used == 200 and result.seen == 201 and len(result.skipped) == 1
    assert result.stats.images == 200 and result.stats.agreement().top1 == 100.0
    assert model.calls == 2 * 25
    # batches are consumed and dropped: never more than two alive at once (the current one and the next)
    assert model.peak_batches <= 2, model.peak_batches


def test_cli_errors_are_one_line(tmp_path):
    from edgemv.cli import cli, run_cli

    assert run_cli(cli, ["validate", str(tmp_path / "nope")]) == 1
    assert run_cli(cli, ["validate", str(tmp_path), "--reference", "x", "--variant", "t"]) == 2
    assert run_cli(cli, ["validate", str(tmp_path)]) == 1  # a folder that is not a run


def test_plain_fp32_model_of_a_folded_run(tmp_path):
    """sensitivity's plain FP32 model: rebuilt from quantize.json (BN folded, as the run was), the run's weights, no
    quantizers; the same outputs as the run's FP32 reference."""
    pytest.importorskip("modelopt.torch.quantization")
    from edgemv.quantize import load_fp32_reference, run_quantize
    from edgemv.validate.sensitivity import plain_fp32_model

    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype("uint8")).save(calib / f"{i}.png")
    run = tmp_path / "run"
    result = run_quantize("test", "random", "int8", calib=calib, out=run, input_size=32, batch_size=4, seed=0,
                          progress=False, log=lambda m: None)
    assert result.info["bn_fold"]["enabled"] and result.info["bn_fold"]["pairs"]
    model = plain_fp32_model(run)
    names = [n for n, _ in model.named_modules()]
    assert not any("quantizer" in n for n in names)
    assert all(isinstance(model.get_submodule(bn), torch.nn.Identity) for _, bn in result.info["bn_fold"]["pairs"])
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), load_fp32_reference(run)(x), rtol=0, atol=1e-6)
