"""Every checkpoint format loads and gives identical outputs; mismatches say what is wrong."""

import re

import pytest
import torch
from safetensors.torch import save_file

from edgemv.errors import CheckpointMismatchError, WeightsError
from edgemv.models import create_model, remap_state_dict
from edgemv.models.checkpoint import guess_variants


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(0)
    model = create_model("test")
    with torch.no_grad():  # make BN statistics non-trivial, so a missed buffer would show
        for name, buf in model.named_buffers():
            if "running_var" in name:
                buf.uniform_(0.5, 2.0)
            elif "running_mean" in name:
                buf.normal_()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
    return model, x, logits


def _same_logits(loaded, x, logits):
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), logits, rtol=0, atol=0)


@pytest.mark.parametrize("container", ["state_dict", "model", "state_dict_ema", None])
@pytest.mark.parametrize("prefix", ["", "module.", "encoder.", "model.", "module.model."])
@pytest.mark.parametrize("suffix", [".pth.tar", ".pth", ".pt"])
def test_pickle_round_trip(tmp_path, source, container, prefix, suffix):
    model, x, logits = source
    sd = {prefix + k: v for k, v in model.state_dict().items()}
    obj = {container: sd, "epoch": 300, "arch": "mamba_vision_T"} if container else sd
    path = tmp_path / f"ckpt{suffix}"
    torch.save(obj, path)
    _same_logits(create_model("test", weights=path), x, logits)


def test_training_checkpoint_with_args_namespace(tmp_path, source):
    """timm-style training checkpoints carry their argparse.Namespace (and paths) beside the weights."""
    import argparse
    import pathlib

    model, x, logits = source
    args = argparse.Namespace(model="mamba_vision_T", lr=5e-4, output=pathlib.PosixPath("/tmp/out"))
    torch.save({"epoch": 309, "arch": "mamba_vision_T", "state_dict": model.state_dict(), "args": args,
                "version": 2, "metric": 82.3}, tmp_path / "train.pth.tar")
    _same_logits(create_model("test", weights=tmp_path / "train.pth.tar"), x, logits)


def test_state_dict_preferred_over_ema(tmp_path, source):
    model, x, logits = source
    ema = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    torch.save({"state_dict": model.state_dict(), "state_dict_ema": ema}, tmp_path / "c.pth.tar")
    _same_logits(create_model("test", weights=tmp_path / "c.pth.tar"), x, logits)


def test_safetensors_hf_port(tmp_path, source):
    model, x, logits = source
    save_file({"model." + k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "model.safetensors")
    _same_logits(create_model("test", weights=tmp_path / "model.safetensors"), x, logits)


def test_snapshot_folder_prefers_safetensors(tmp_path, source):
    model, x, logits = source
    (tmp_path / "config.json").write_text("{}")
    save_file({"model." + k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "model.safetensors")
    torch.save({"state_dict": {k: torch.zeros_like(v) for k, v in model.state_dict().items()}},
               tmp_path / "other.pth.tar")
    loaded = create_model("test", weights=tmp_path)
    assert loaded.weights_info.path.endswith("model.safetensors")
    _same_logits(loaded, x, logits)


def _fake_hub_cache(root, repo_id, filename, payload_writer):
    folder = root / ("models--" + repo_id.replace("/", "--"))
    revision = "0123456789abcdef0123456789abcdef01234567"
    snap = folder / "snapshots" / revision
    snap.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    payload_writer(snap / filename)


def test_hub_id_from_cache(tmp_path, source, monkeypatch):
    import huggingface_hub.constants as hc

    model, x, logits = source
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    _fake_hub_cache(tmp_path, "someone/tiny-mambavision", "model.safetensors",
                    lambda p: save_file({k: v.contiguous() for k, v in model.state_dict().items()}, p))
    loaded = create_model("test", weights="someone/tiny-mambavision")
    _same_logits(loaded, x, logits)
    assert loaded.weights_info.sha256 and len(loaded.weights_info.sha256) == 64


def test_official_weights_from_cache_use_official_filename(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    ref = create_model("t")
    _fake_hub_cache(tmp_path, "nvidia/MambaVision-T-1K", "mambavision_tiny_1k.pth.tar",
                    lambda p: torch.save({"state_dict": ref.state_dict()}, p))
    loaded = create_model("t", weights="official")
    assert loaded.weights_info.path.endswith("mambavision_tiny_1k.pth.tar")
    assert torch.equal(loaded.head.weight, ref.head.weight)


def test_hub_id_offline_says_what_to_pass(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsError) as err:
        create_model("t", weights="nvidia/MambaVision-T-1K")
    msg = str(err.value)
    assert "https://huggingface.co/nvidia/MambaVision-T-1K/resolve/main/mambavision_tiny_1k.pth.tar" in msg
    assert "--weights PATH" in msg and "--weights random" in msg


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="weights file not found"):
        create_model("test", weights=tmp_path / "nope.pth")


def test_truncated_file(tmp_path, source):
    model, _, _ = source
    path = tmp_path / "c.pth.tar"
    torch.save({"state_dict": model.state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        create_model("test", weights=path)


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b'{"schema": 1}\n', "not a torch.save checkpoint"),  # e.g. a run's quantize.json passed by mistake
    (None, "beyond tensors (datetime.datetime)"),
])
def test_unreadable_files_say_why_in_one_line(tmp_path, content, reason):
    import datetime

    path = tmp_path / "w.pth"
    if content is None:
        torch.save({"w": torch.zeros(2), "saved": datetime.datetime(2026, 1, 1)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=re.escape(reason)) as info:
        create_model("test", weights=path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_refuses_arbitrary_pickles(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(WeightsError, match="weights_only"):
        create_model("test", weights=path)


def test_other_variant_named(tmp_path):
    with torch.device("meta"):
        s = create_model("s")
    sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in s.state_dict().items()}
    torch.save({"state_dict": sd}, tmp_path / "s.pth.tar")
    with pytest.raises(CheckpointMismatchError) as err:
        create_model("t", weights=tmp_path / "s.pth.tar")
    msg = str(err.value)
    assert "variant 't'" in msg and "look like variant s" in msg
    assert "missing keys" in msg or "unexpected keys" in msg or "shape mismatches" in msg
    assert "\n" not in msg


def test_guess_variants_from_shapes():
    for name, expected in [("t", ["t"]), ("b", ["b", "b-21k"]), ("l2", ["l2", "l2-512-21k"])]:
        with torch.device("meta"):
            sd = create_model(name).state_dict()
        assert guess_variants(sd) == expected


def test_backbone_takes_classifier_checkpoint(tmp_path, source):
    model, x, _ = source
    torch.save({"state_dict": model.state_dict()}, tmp_path / "cls.pth.tar")
    backbone = create_model("test", weights=tmp_path / "cls.pth.tar", features_only=True)
    assert torch.equal(backbone.levels[3].blocks[0].mixer.A_log, model.levels[3].blocks[0].mixer.A_log)


def test_backbone_takes_detection_checkpoint(tmp_path, source):
    """mmdet/mmseg checkpoints hold backbone.* beside neck and head weights, and their own outnorms."""
    model, _, _ = source
    ref = create_model("test", features_only=True)
    with torch.no_grad():
        ref.outnorm2.weight.uniform_()
    sd = {"backbone." + k: v for k, v in ref.state_dict().items()}
    sd["neck.lateral_convs.0.conv.weight"] = torch.zeros(4, 4, 1, 1)
    torch.save({"state_dict": sd, "meta": {"epoch": 12}}, tmp_path / "det.pth")
    loaded = create_model("test", weights=tmp_path / "det.pth", features_only=True)
    assert torch.equal(loaded.outnorm2.weight, ref.outnorm2.weight)


def test_remap_is_pure(source):
    model, _, _ = source
    sd = {"module." + k: v for k, v in model.state_dict().items()}
    before = dict(sd)
    out = remap_state_dict({"state_dict": sd}, model)
    assert sd == before and set(out) == set(model.state_dict())
