"""The evaluation transform equals timm's ``transforms_imagenet_eval`` (torchvision) without needing either."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgemv.data import eval_transform
from edgemv.data.transforms import EvalTransform, resolve_sizes
from edgemv.errors import DataError
from edgemv.models.variants import IMAGENET_MEAN, IMAGENET_STD, VARIANTS, PretrainedConfig

# Provenance of the golden file: /tmp/parity/parity.py (a throwaway script, not in the repo) ran timm 1.0.31's
# ``create_transform(input_size, is_training=False, interpolation='bicubic', crop_pct, crop_mode)`` with torchvision
# 0.29.1, torch 2.14.1 and Pillow 13.0.0 on ``image`` (a 31x23 RGB image from np.random.default_rng(1234)) and saved
# each output under the tag below. The same script found edgemv's transform bit-identical to timm's on 168 cases
# (12 configurations x 14 real and synthetic images, max abs difference 0.0).
GOLDEN = Path(__file__).with_name("test_data_transforms_golden.npz")
GOLDEN_CASES = {  # tag: (input size, crop_pct, crop_mode)
    "c100": (16, 1.0, "center"),
    "c093": (12, 0.93, "center"),
    "sq093": (12, 0.93, "squash"),
    "c_8x12": ((8, 12), 1.0, "center"),
}


def _cfg(size=224, crop_pct=1.0, crop_mode="center"):
    hw = (size, size) if isinstance(size, int) else tuple(size)
    return PretrainedConfig(hf_repo="", filename="", input_size=(3,) + hw, crop_pct=crop_pct, crop_mode=crop_mode)


def _noise(h, w, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": None}[mode]
    shape = (h, w) if channels is None else (h, w, channels)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


@pytest.mark.parametrize("tag", list(GOLDEN_CASES))
def test_matches_torchvision_golden(tag):
    golden = np.load(GOLDEN)
    size, pct, mode = GOLDEN_CASES[tag]
    out = eval_transform(_cfg(size, pct, mode))(Image.fromarray(golden["image"]))
    assert out.dtype == torch.float32
    assert out.shape == golden[tag].shape
    assert np.abs(out.numpy() - golden[tag]).max() <= 1e-6


@pytest.mark.parametrize("name", [n for n in VARIANTS])
def test_every_variant_gives_its_input_size(name):
    cfg = VARIANTS[name].pretrained
    out = eval_transform(cfg)(_noise(300, 451))
    assert tuple(out.shape) == tuple(cfg.input_size)


@pytest.mark.parametrize("size, pct, expect_scale", [
    (224, 1.0, (224, 224)), (224, 0.93, (240, 240)), (224, 0.98, (228, 228)), (224, 0.875, (256, 256)),
    (512, 0.93, (550, 550)), ((256, 320), 1.0, (256, 320)), ((256, 320), 0.93, (275, 344)),
])
def test_scale_size_is_floor_of_size_over_crop_pct(size, pct, expect_scale):
    crop, scale = resolve_sizes(size, pct)
    assert scale == expect_scale
    assert crop == ((size, size) if isinstance(size, int) else size)


@pytest.mark.parametrize("size", [224, (3, 224, 224), (256, 320), (3, 320, 256), 512])
@pytest.mark.parametrize("mode", ["center", "squash"])
def test_input_size_override(size, mode):
    out = eval_transform(_cfg(224, 0.93, mode), input_size=size)(_noise(200, 333))
    hw = (size, size) if isinstance(size, int) else tuple(size)[-2:]
    assert tuple(out.shape) == (3,) + hw


def test_variant_object_accepted():
    assert eval_transform(VARIANTS["t"])(_noise(40, 50)).shape == (3, 224, 224)


def test_identity_when_image_is_already_the_crop():
    # crop_pct 1.0 on an image of exactly the input size: no resize, no crop, only ToTensor and Normalize
    img = _noise(64, 64, seed=3)
    out = eval_transform(_cfg(64))(img)
    arr = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(out, (arr - mean) / std, atol=1e-6)


def test_center_keeps_aspect_squash_does_not():
    # a 4:1 image of four vertical stripes: black, white, black, white
    arr = np.zeros((100, 400, 3), np.uint8)
    arr[:, 100:200] = 255
    arr[:, 300:] = 255
    img = Image.fromarray(arr)
    ones = (1.0, 1.0, 1.0)
    center = np.asarray(EvalTransform(32, 1.0, "center", "bicubic", (0, 0, 0), ones).pil(img))
    squash = np.asarray(EvalTransform(32, 1.0, "squash", "bicubic", (0, 0, 0), ones).pil(img))
    assert center.shape == squash.shape == (32, 32, 3)
    # center: the middle quarter of the width only (white then black); squash: all four stripes
    assert center[:, 0].min() > 225 and center[:, -1].max() < 30
    assert squash[:, 0].max() < 30 and squash[:, -1].min() > 225


def test_crop_larger_than_resized_image_pads_with_zero():
    white = Image.new("RGB", (40, 40), "white")
    out = EvalTransform(20, 1.25, "center", "bicubic", (0, 0, 0), (1, 1, 1)).pil(white)
    arr = np.asarray(out)
    assert out.size == (20, 20)
    assert arr[0, 0].max() == 0 and arr[10, 10].min() == 255  # border zeros, white inside


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK", "LA"])
def test_any_mode_becomes_three_channels(mode):
    base = _noise(50, 70)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257)
    else:
        img = base.convert(mode)
    out = eval_transform(_cfg(32))(img)
    assert out.shape == (3, 32, 32) and torch.isfinite(out).all()
    if mode in ("L", "I;16", "LA"):
        raw = out * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        assert torch.allclose(raw[0], raw[1], atol=1e-5) and torch.allclose(raw[1], raw[2], atol=1e-5)


def test_16_bit_greyscale_is_scaled_not_saturated():
    img = Image.fromarray(np.full((8, 8), 32768, np.uint16))
    assert img.mode.startswith("I;16")
    raw = eval_transform(_cfg(8))(img) * torch.tensor(IMAGENET_STD).view(3, 1, 1) + \
        torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    assert abs(raw.mean().item() - 128 / 255) < 0.01


def test_unknown_mode_or_interpolation_is_a_data_error():
    with pytest.raises(DataError, match="crop mode"):
        eval_transform(_cfg(224, 1.0, "border"))
    with pytest.raises(DataError, match="interpolation"):
        EvalTransform(224, 1.0, "center", "cubic-ish", IMAGENET_MEAN, IMAGENET_STD)
