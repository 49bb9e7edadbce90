"""edgemv against the official MambaVision: same checkpoint in, same outputs out (``pytest -m official``).

For each case the official model (pip package ``mambavision``, its scan provided by our stub in ``stub/``) is built,
every weight and buffer is set to fresh random values (nothing left at a trivial init: BN statistics, LN affine,
layer-scale gammas, A_log, D, dt_proj bias ...), it is saved the way the official code saves checkpoints and loaded
with ``edgemv.models.create_model(variant, weights=path)``. Outputs must agree to 1e-4 relative (float32).

The detection/segmentation backbone (``MM_mamba_vision`` in the official repo's object_detection/ and
semantic_segmentation/ folders, not in the pip package) is the classifier without ``norm``/``head`` that returns each
level's map before downsampling through ``outnorm{i}`` = ``LayerNorm2d`` (timm-style: nn.LayerNorm over channels,
eps 1e-5, applied channels-last). It is emulated here from the pip package's model plus that norm, and, where
$MAMBAVISION_REPO points at a checkout of the repo, also built from the repo's own file with mm* imports stubbed.

Run with .ci/official (makes its own venv in /tmp). Nothing from the official code is copied here.
"""

import argparse
import importlib.util
import math
import sys
import time
import types
import zlib

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

pytestmark = pytest.mark.official

TOL = 1e-4

# (edgemv variant, official factory, input (H, W), batch)
CLASSIFIER_CASES = [
    ("t", "mamba_vision_T", (224, 224), 2),
    ("t2", "mamba_vision_T2", (224, 224), 1),
    ("s", "mamba_vision_S", (224, 224), 1),
    ("b", "mamba_vision_B", (224, 224), 1),
    ("t", "mamba_vision_T", (256, 320), 1),
    ("t", "mamba_vision_T", (512, 512), 1),
    ("t", "mamba_vision_T", (193, 257), 1),  # not a multiple of 32
    ("b", "mamba_vision_B", (256, 320), 1),
]
# Big ones: opt in with EDGEMV_OFFICIAL_LARGE=1 (minutes each on a 2-core CPU, GBs of memory).
LARGE_CASES = [
    ("l", "mamba_vision_L", (224, 224), 1),
    ("l2-512-21k", "mamba_vision_L2_512_21k", (512, 512), 1),
    ("l3-256-21k", "mamba_vision_L3_256_21k", (256, 256), 1),
]


def rel_err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def _gen(seed):
    g = torch.Generator().manual_seed(seed)
    return g


def randomize_(model: nn.Module, seed: int = 0):
    """Give every parameter and float buffer fresh random values of a sane scale; returns the names touched."""
    g = _gen(seed)

    def normal(t, std, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=g) * std + mean)

    def uniform(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    touched = set()
    with torch.no_grad():
        for mname, m in model.named_modules():
            p = f"{mname}." if mname else ""
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                # variances from 1e-3 to 4 (log-uniform) so that the eps values matter; the weight
                # compensates so activations keep their scale
                m.running_var.copy_(torch.exp(torch.rand(m.running_var.shape, generator=g) * math.log(4e3)) * 1e-3)
                m.weight.copy_((torch.rand(m.weight.shape, generator=g) + 0.5) * m.running_var.sqrt())
                normal(m.bias, 0.2)
                normal(m.running_mean, 0.2)
                touched |= {p + "weight", p + "bias", p + "running_mean", p + "running_var"}
            elif isinstance(m, nn.LayerNorm):
                uniform(m.weight, 0.5, 1.5)
                normal(m.bias, 0.2)
                touched |= {p + "weight", p + "bias"}
            elif isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                normal(m.weight, 1.0 / math.sqrt(fan_in))
                touched.add(p + "weight")
                if m.bias is not None:
                    normal(m.bias, 0.1)
                    touched.add(p + "bias")
            if hasattr(m, "A_log") and isinstance(m.A_log, torch.Tensor):  # the Mamba mixer
                m.A_log.copy_(torch.log(torch.rand(m.A_log.shape, generator=g) * 15.5 + 0.5))  # A in -[0.5, 16]
                normal(m.D, 0.5, 1.0)
                uniform(m.dt_proj.bias, -4.0, 0.0)  # enters softplus twice: steps from ~1e-4 to ~1
                touched |= {p + "A_log", p + "D", p + "dt_proj.bias"}
            for gname in ("gamma_1", "gamma_2", "gamma"):
                gamma = getattr(m, gname, None)
                if isinstance(gamma, nn.Parameter):
                    sign = torch.randint(0, 2, gamma.shape, generator=g) * 2 - 1
                    gamma.copy_(sign * (torch.rand(gamma.shape, generator=g) * 0.7 + 0.3))
                    touched.add(p + gname)
    left = [k for k, v in model.state_dict().items()
            if k not in touched and v.is_floating_point()]
    assert not left, f"not randomised: {left[:5]}"
    return touched


def build_official(official, factory: str, seed: int):
    torch.manual_seed(seed)
    model = getattr(official, factory)(pretrained=False)
    randomize_(model, seed + 1)
    return model.eval()


def save_official(model, path, extra=None):
    """What the official training script writes: the weights under 'state_dict' of a .pth.tar."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": sd, **(extra or {})}, path)
    return sd


def _input(shape, seed):
    return torch.randn(*shape, generator=_gen(seed))


def _compare(record, check, variant, hw, out_name, ours, ref, seconds):
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert torch.isfinite(ref).all()
    r = rel_err(ours, ref)
    record(check=check, variant=variant, input=f"{hw[0]}x{hw[1]}", output=out_name, rel=r,
           maxabs=(ours - ref).abs().max().item(), seconds=seconds)
    assert r < TOL, f"{check} {variant} {hw} {out_name}: rel. error {r:.3e} >= {TOL}"
    return r


def _classifier_case(official, tmp_path, record, variant, factory, hw, batch, check="classifier .pth.tar"):
    from edgemv.models import create_model

    t0 = time.time()
    ref_model = build_official(official, factory, seed=zlib.crc32(f"{variant}-{hw}".encode()) % 10_000)
    path = tmp_path / f"{factory}.pth.tar"
    save_official(ref_model, path)
    ours = create_model(variant, weights=str(path))
    assert not ours.training
    x = _input((batch, 3, *hw), seed=1)
    with torch.inference_mode():
        ref = ref_model(x)
        out = ours(x)
    # the logits must not be dominated by a constant: a broken mixer should move them
    assert ref.std(dim=-1).min() > 1e-2 * ref.abs().mean()
    _compare(record, check, variant, hw, "logits", out, ref, time.time() - t0)


@pytest.mark.parametrize("variant,factory,hw,batch", CLASSIFIER_CASES,
                         ids=[f"{v}-{h}x{w}" for v, _, (h, w), _ in CLASSIFIER_CASES])
def test_classifier_logits(official, tmp_path, record, variant, factory, hw, batch):
    _classifier_case(official, tmp_path, record, variant, factory, hw, batch)


@pytest.mark.parametrize("variant,factory,hw,batch", LARGE_CASES,
                         ids=[f"{v}-{h}x{w}" for v, _, (h, w), _ in LARGE_CASES])
def test_classifier_logits_large(official, tmp_path, record, variant, factory, hw, batch):
    import os

    if os.environ.get("EDGEMV_OFFICIAL_LARGE") != "1":
        pytest.skip("large variant: set EDGEMV_OFFICIAL_LARGE=1")
    _classifier_case(official, tmp_path, record, variant, factory, hw, batch, check="classifier .pth.tar (large)")


def test_randomisation_reaches_the_mixer(official):
    """Guard for the check itself: changing one mixer's dt_proj bias must move the official logits."""
    model = build_official(official, "mamba_vision_B", seed=3)
    x = _input((1, 3, 224, 224), seed=2)
    with torch.inference_mode():
        a = model(x)
        mixer = model.levels[2].blocks[0].mixer
        mixer.dt_proj.bias += 0.5
        b = model(x)
    assert rel_err(b, a) > 10 * TOL


def test_hf_style_safetensors_and_folder(official, tmp_path, record):
    """A Hugging Face port: keys under 'model.', a .safetensors file, alone or in a snapshot folder."""
    from safetensors.torch import save_file

    from edgemv.models import create_model

    t0 = time.time()
    ref_model = build_official(official, "mamba_vision_T", seed=11)
    sd = {f"model.{k}": v.detach().clone().contiguous() for k, v in ref_model.state_dict().items()}
    folder = tmp_path / "MambaVision-T-1K"
    folder.mkdir()
    save_file(sd, str(folder / "model.safetensors"))
    (folder / "config.json").write_text('{"architectures": ["MambaVisionModelForImageClassification"]}')
    x = _input((1, 3, 224, 224), seed=5)
    with torch.inference_mode():
        ref = ref_model(x)
        for what, weights in (("safetensors", folder / "model.safetensors"), ("folder", folder)):
            out = create_model("t", weights=str(weights))(x)
            _compare(record, f"HF model.* {what}", "t", (224, 224), "logits", out, ref, time.time() - t0)


def test_wrapped_training_checkpoint(official, tmp_path, record):
    """A DDP-wrapped ('module.') state_dict next to state_dict_ema, as timm's training script saves."""
    from edgemv.models import create_model

    t0 = time.time()
    ref_model = build_official(official, "mamba_vision_T", seed=12)
    sd = {f"module.{k}": v.detach().clone() for k, v in ref_model.state_dict().items()}
    ema = {k: v + 1.0 if v.is_floating_point() else v for k, v in ref_model.state_dict().items()}
    path = tmp_path / "train.pth.tar"
    torch.save({"epoch": 10, "arch": "mamba_vision_T", "state_dict": sd, "state_dict_ema": ema,
                "version": 2, "metric": 82.3}, path)
    x = _input((1, 3, 224, 224), seed=6)
    with torch.inference_mode():
        ref = ref_model(x)
        out = create_model("t", weights=str(path))(x)
    _compare(record, "module.* + state_dict_ema", "t", (224, 224), "logits", out, ref, time.time() - t0)


def test_checkpoint_with_training_args(official, tmp_path):
    from edgemv.models import create_model

    ref_model = build_official(official, "mamba_vision_T", seed=13)
    path = tmp_path / "with_args.pth.tar"
    save_official(ref_model, path, extra={"args": argparse.Namespace(model="mamba_vision_T", lr=1e-3)})
    # timm's train.py keeps its argparse.Namespace beside the weights; edgemv allows that harmless class.
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(create_model("t", weights=str(path))(x), ref_model(x), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Detection / segmentation backbone


def official_backbone_features(official_model, x, norms):
    """The official MM_mamba_vision forward, emulated on the pip model: each level's map before its downsample,
    through LayerNorm2d (layer_norm over channels, channels-last, eps 1e-5)."""
    maps = []
    hooks = []
    for i, level in enumerate(official_model.levels):
        if level.downsample is not None:
            hooks.append(level.downsample.register_forward_pre_hook(lambda m, args: maps.append(args[0])))
        else:
            hooks.append(level.register_forward_hook(lambda m, args, out: maps.append(out)))
    try:
        h = official_model.patch_embed(x)
        for level in official_model.levels:
            h = level(h)
    finally:
        for hk in hooks:
            hk.remove()
    outs = []
    for i, m in enumerate(maps):
        w, b = norms[i]
        outs.append(F.layer_norm(m.permute(0, 2, 3, 1), (m.shape[1],), w, b, 1e-5).permute(0, 3, 1, 2))
    return outs


SEG_WINDOWS = (8, 8, 64, 32)  # the official ADE20K configs for T and B (S uses 8, 8, 160, 56)


@pytest.mark.parametrize("variant,factory,hw", [("t", "mamba_vision_T", (256, 320))], ids=["t-seg-256x320"])
def test_backbone_from_detector_checkpoint(official, tmp_path, record, variant, factory, hw):
    """An mmdet/mmseg checkpoint: backbone.* (no norm/head, with outnorm{i}) next to neck/head keys."""
    from edgemv.models import create_model

    t0 = time.time()
    torch.manual_seed(21)
    ref_model = getattr(official, factory)(pretrained=False, window_size=list(SEG_WINDOWS))
    randomize_(ref_model, 22)
    ref_model.eval()
    dims = [ref_model.patch_embed.conv_down[3].out_channels * 2 ** i for i in range(4)]
    g = _gen(23)
    norms = [(torch.rand(d, generator=g) + 0.5, torch.randn(d, generator=g) * 0.2) for d in dims]
    sd = {f"backbone.{k}": v.detach().clone() for k, v in ref_model.state_dict().items()
          if not k.startswith(("norm.", "head."))}
    for i, (w, b) in enumerate(norms):
        sd[f"backbone.outnorm{i}.weight"], sd[f"backbone.outnorm{i}.bias"] = w, b
    sd["neck.lateral_convs.0.conv.weight"] = torch.randn(256, dims[0], 1, 1)
    sd["decode_head.conv_seg.weight"] = torch.randn(150, 512, 1, 1)
    path = tmp_path / "upernet.pth"
    torch.save({"meta": {"mmseg_version": "1.2.2", "epoch": 1}, "state_dict": sd}, path)
    ours = create_model(variant, weights=str(path), features_only=True, window_size=SEG_WINDOWS)
    x = _input((1, 3, *hw), seed=7)
    with torch.inference_mode():
        ref = official_backbone_features(ref_model, x, norms)
        out = ours(x)
    assert len(out) == 4
    for i, (o, r) in enumerate(zip(out, ref)):
        _compare(record, "backbone mmseg ckpt (win 64/32)", variant, hw, f"map{i}", o, r, time.time() - t0)


def test_backbone_from_classifier_checkpoint(official, tmp_path, record):
    """The official backbone's starting point: an ImageNet .pth.tar loaded non-strictly (norm/head ignored,
    outnorms left at LayerNorm's init, weight 1 and bias 0)."""
    from edgemv.models import create_model

    t0 = time.time()
    ref_model = build_official(official, "mamba_vision_T", seed=31)
    path = tmp_path / "cls.pth.tar"
    save_official(ref_model, path)
    dims = [80, 160, 320, 640]
    norms = [(torch.ones(d), torch.zeros(d)) for d in dims]
    ours = create_model("t", weights=str(path), features_only=True)
    x = _input((1, 3, 224, 224), seed=8)
    with torch.inference_mode():
        ref = official_backbone_features(ref_model, x, norms)
        out = ours(x)
    assert [tuple(o.shape[1:]) for o in out] == [(80, 56, 56), (160, 28, 28), (320, 14, 14), (640, 7, 7)]
    for i, (o, r) in enumerate(zip(out, ref)):
        _compare(record, "backbone from cls ckpt", "t", (224, 224), f"map{i}", o, r, time.time() - t0)


def _import_repo_backbone(repo_root, official):
    """Import the repo's object_detection/tools/mamba_vision.py with its mm* imports replaced by minimal stand-ins."""
    class _Registry:
        def register_module(self, *a, **k):
            return lambda cls: cls

    fakes = {
        "mmengine": types.ModuleType("mmengine"),
        "mmengine.model": types.ModuleType("mmengine.model"),
        "mmengine.runner": types.ModuleType("mmengine.runner"),
        "mmdet": types.ModuleType("mmdet"),
        "mmdet.registry": types.ModuleType("mmdet.registry"),
        "mmseg": types.ModuleType("mmseg"),
        "mmseg.registry": types.ModuleType("mmseg.registry"),
        "mmcv": types.ModuleType("mmcv"),
    }
    fakes["mmengine.model"].BaseModule = nn.Module
    fakes["mmengine.runner"].load_checkpoint = lambda *a, **k: None
    fakes["mmdet.registry"].MODELS = _Registry()
    fakes["mmseg.registry"].MODELS = _Registry()
    saved = {k: sys.modules.get(k) for k in fakes}
    sys.modules.update(fakes)
    try:
        path = repo_root / "object_detection" / "tools" / "mamba_vision.py"
        spec = importlib.util.spec_from_file_location("_official_mm_mamba_vision", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module


def test_repo_backbone_file(official, official_repo, tmp_path, record):
    """The repo's own MM_mamba_vision (T, segmentation windows) against edgemv's features_only model."""
    from edgemv.models import create_model

    t0 = time.time()
    mod = _import_repo_backbone(official_repo, official)
    torch.manual_seed(41)
    ref_model = mod.MM_mamba_vision(dim=80, in_dim=32, depths=(1, 3, 8, 4), window_size=SEG_WINDOWS, mlp_ratio=4,
                                    num_heads=(2, 4, 8, 16), norm_layer="ln2d", layer_scale=None)
    assert not hasattr(ref_model, "norm") and not hasattr(ref_model, "head")
    for i in range(4):
        n = getattr(ref_model, f"outnorm{i}")
        assert type(n).__name__ == "LayerNorm2d" and isinstance(n, nn.LayerNorm) and n.eps == 1e-5
    randomize_(ref_model, 42)
    ref_model.eval()
    sd = ref_model.state_dict()
    assert not any(k.startswith(("norm.", "head.")) for k in sd)
    path = tmp_path / "mask_rcnn.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in sd.items()}}, path)
    ours = create_model("t", weights=str(path), features_only=True, window_size=SEG_WINDOWS)
    assert set(ours.state_dict()) == set(sd)
    x = _input((1, 3, 256, 320), seed=9)
    with torch.inference_mode():
        ref = ref_model(x)
        out = ours(x)
    for i, (o, r) in enumerate(zip(out, ref)):
        _compare(record, "repo MM_mamba_vision (win 64/32)", "t", (256, 320), f"map{i}", o, r, time.time() - t0)
