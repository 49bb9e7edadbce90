"""The model equals the spec: keys, shapes, parameter counts, outputs at several sizes, an independent mixer."""

import math

import pytest
import torch
import torch.nn.functional as F

from edgemv.errors import UnknownVariantError
from edgemv.models import create_model, get_variant, list_variants
from edgemv.models.mambavision import is_attention_block, window_partition, window_reverse

# From the spec: key counts including BN buffers, and parameter counts in millions.
KEY_COUNTS = {"t": 252, "t2": 298, "s": 285, "b": 356, "b-21k": 356, "l": 356, "l-21k": 356, "l2": 389,
              "l2-512-21k": 389, "l3-256-21k": 601, "l3-512-21k": 601}
PARAMS_M = {"t": 31.794, "t2": 35.104, "s": 50.141, "b": 97.685, "b-21k": 97.685, "l": 227.961, "l-21k": 227.961,
            "l2": 241.555, "l2-512-21k": 241.555, "l3-256-21k": 739.570, "l3-512-21k": 739.570}


def meta_model(name, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


def test_all_eleven_variants_listed():
    assert list_variants() == list(KEY_COUNTS)


@pytest.mark.parametrize("name", list(KEY_COUNTS))
def test_key_count_and_params(name):
    model = meta_model(name)
    assert len(model.state_dict()) == KEY_COUNTS[name]
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(params, 3) == PARAMS_M[name]


def test_t_key_names_and_shapes():
    sd = meta_model("t").state_dict()
    expected = {
        "patch_embed.conv_down.0.weight": (32, 3, 3, 3),
        "patch_embed.conv_down.1.running_var": (32,),
        "patch_embed.conv_down.3.weight": (80, 32, 3, 3),
        "patch_embed.conv_down.4.num_batches_tracked": (),
        "levels.0.blocks.0.conv1.weight": (80, 80, 3, 3),
        "levels.0.blocks.0.conv1.bias": (80,),
        "levels.1.blocks.2.norm2.running_mean": (160,),
        "levels.0.downsample.reduction.0.weight": (160, 80, 3, 3),
        "levels.2.downsample.reduction.0.weight": (640, 320, 3, 3),
        "levels.2.blocks.0.mixer.A_log": (160, 8),
        "levels.2.blocks.0.mixer.D": (160,),
        "levels.2.blocks.0.mixer.in_proj.weight": (320, 320),
        "levels.2.blocks.0.mixer.x_proj.weight": (20 + 16, 160),
        "levels.2.blocks.0.mixer.dt_proj.weight": (160, 20),
        "levels.2.blocks.0.mixer.dt_proj.bias": (160,),
        "levels.2.blocks.0.mixer.out_proj.weight": (320, 320),
        "levels.2.blocks.0.mixer.conv1d_x.weight": (160, 1, 3),
        "levels.2.blocks.0.mixer.conv1d_z.weight": (160, 1, 3),
        "levels.2.blocks.4.mixer.qkv.weight": (960, 320),
        "levels.2.blocks.4.mixer.qkv.bias": (960,),
        "levels.2.blocks.4.mixer.proj.bias": (320,),
        "levels.3.blocks.1.mixer.A_log": (320, 8),
        "levels.3.blocks.2.mixer.qkv.weight": (1920, 640),
        "levels.3.blocks.3.mlp.fc1.weight": (2560, 640),
        "levels.3.blocks.3.mlp.fc2.bias": (640,),
        "levels.3.blocks.3.norm2.weight": (640,),
        "norm.running_var": (640,),
        "head.weight": (1000, 640),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert "levels.3.downsample.reduction.0.weight" not in sd
    assert not any("gamma" in k for k in sd)
    assert not any(k.endswith("conv1d_x.bias") for k in sd)


def test_layer_scale_only_where_set():
    b = meta_model("b").state_dict()
    assert tuple(b["levels.2.blocks.0.gamma_1"].shape) == (512,)
    assert "levels.1.blocks.0.gamma" not in b  # conv blocks have none


@pytest.mark.parametrize("depth,expected", [(8, [4, 5, 6, 7]), (4, [2, 3]), (5, [3, 4]), (7, [4, 5, 6]),
                                            (3, [2]), (1, []), (20, list(range(10, 20)))])
def test_attention_block_rule(depth, expected):
    assert [i for i in range(depth) if is_attention_block(i, depth)] == expected


def test_t_mixer_and_attention_placement():
    model = meta_model("t")
    kinds = [[type(b.mixer).__name__ for b in model.levels[i].blocks] for i in (2, 3)]
    assert kinds[0] == ["MambaVisionMixer"] * 4 + ["Attention"] * 4
    assert kinds[1] == ["MambaVisionMixer"] * 2 + ["Attention"] * 2


def test_variant_lookup_aliases():
    for alias in ("T", "mamba_vision_T", "MambaVision-T-1K", "nvidia/MambaVision-T-1K", "mambavision-t"):
        assert get_variant(alias).name == "t"
    assert get_variant("mamba_vision_L2_512_21k").name == "l2-512-21k"
    assert get_variant("MambaVision-L3-256-21K").name == "l3-256-21k"
    with pytest.raises(UnknownVariantError, match="unknown variant 'xl'"):
        get_variant("xl")


def test_window_partition_round_trip():
    x = torch.randn(2, 5, 12, 8)
    w = window_partition(x, 4)
    assert w.shape == (2 * 3 * 2, 16, 5)
    # Tokens are row-major inside each window: token 1 of window 0 is pixel (0, 1).
    assert torch.equal(w[0, 1], x[0, :, 0, 1])
    assert torch.equal(w[0, 4], x[0, :, 1, 0])
    assert torch.equal(window_reverse(w, 4, 12, 8), x)


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (100, 72)])
def test_test_variant_output_shapes(size):
    model = create_model("test")
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("size", [(224, 224), (256, 320), (512, 512)])
def test_t_output_shapes(size):
    model = create_model("t")
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()


def test_padding_is_unmasked_zeros():
    """At 100x72 the level-2 map (7x5) is padded to two 4x4 windows per side: padded tokens must influence the
    result exactly as zero tokens would (no masking), so results differ from running the unpadded map."""
    model = create_model("test")
    level = model.levels[2]
    x = torch.randn(1, level.blocks[0].norm1.normalized_shape[0], 7, 5)
    with torch.no_grad():
        out = level.forward_blocks(x)
        padded = F.pad(x, (0, 3, 0, 1))
        ref = window_reverse(
            torch.nn.Sequential(*level.blocks)(window_partition(padded, 4)), 4, 8, 8)[:, :, :7, :5]
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_backbone_maps_t():
    model = create_model("t", features_only=True)
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 224, 224))
    assert [tuple(m.shape[1:]) for m in maps] == [(80, 56, 56), (160, 28, 28), (320, 14, 14), (640, 7, 7)]
    keys = model.state_dict().keys()
    assert {"outnorm0.weight", "outnorm3.bias"} <= set(keys)
    assert not any(k.startswith(("head.", "norm.")) for k in keys)


def test_backbone_out_indices():
    model = create_model("test", features_only=True, out_indices=(1, 3))
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == [32, 128]
    # Each map is normalised over channels: zero mean, unit variance per pixel with the initial affine.
    assert maps[0].mean(1).abs().max() < 1e-4


# An independent float64 implementation of the mixer, written from the spec, compared with the model's mixer.

def _softplus64(x):
    return torch.where(x > 20, x, torch.log1p(torch.exp(x)))


def reference_mixer64(m, h):
    """The spec's six steps in float64, with its own sequential scan (no edgemv code)."""
    p = {k: v.double() for k, v in m.state_dict().items()}
    b, length, c = h.shape
    half = c // 2
    xz = h @ p["in_proj.weight"].T  # (B, L, C)
    x, z = xz[..., :half], xz[..., half:]

    def dwconv(t, w):  # depthwise, kernel 3, zero padding 1 on both sides, no bias; t (B, L, C')
        tp = F.pad(t.transpose(1, 2), (1, 1))
        return sum(w[:, 0, k][None, :, None] * tp[:, :, k:k + length] for k in range(3)).transpose(1, 2)

    x = F.silu(dwconv(x, p["conv1d_x.weight"]))
    z = F.silu(dwconv(z, p["conv1d_z.weight"]))
    dbl = x @ p["x_proj.weight"].T
    r = m.dt_rank
    dt = dbl[..., :r] @ p["dt_proj.weight"].T + p["dt_proj.bias"]
    Bm, Cm = dbl[..., r:r + 8], dbl[..., r + 8:]
    delta = _softplus64(dt + p["dt_proj.bias"])  # the bias a second time
    A = -torch.exp(p["A_log"])
    state = torch.zeros(b, half, 8, dtype=torch.float64)
    ys = []
    for t in range(length):
        state = torch.exp(delta[:, t, :, None] * A) * state + delta[:, t, :, None] * Bm[:, t, None, :] * x[:, t, :, None]
        ys.append((state * Cm[:, t, None, :]).sum(-1) + p["D"] * x[:, t])
    y = torch.stack(ys, 1)
    return torch.cat([y, z], -1) @ p["out_proj.weight"].T


@pytest.mark.parametrize("dim,length", [(32, 16), (160 * 2, 49), (64, 37)])
def test_mixer_equals_independent_float64(dim, length):
    from edgemv.models.mambavision import MambaVisionMixer

    torch.manual_seed(dim + length)
    m = MambaVisionMixer(dim).eval()
    with torch.no_grad():  # non-trivial values everywhere
        for name, t in m.named_parameters():
            if name == "A_log":
                t.copy_(torch.log(torch.rand_like(t) * 4 + 0.1))
            elif name == "D" or name.endswith("bias"):
                t.copy_(torch.randn_like(t))
            else:
                t.copy_(torch.randn_like(t) / math.sqrt(t.shape[-1]))
    h = torch.randn(3, length, dim)
    with torch.no_grad():
        out = m(h)
    ref = reference_mixer64(m, h.double())
    rel = (out.double() - ref).norm() / ref.norm()
    assert rel < 1e-5, rel


def test_backbone_window_presets():
    det = meta_model("s", features_only=True, window_preset="detection")
    seg = meta_model("s", features_only=True, window_preset="segmentation")
    assert [lvl.window_size for lvl in det.levels][2:] == [112, 56]
    assert [lvl.window_size for lvl in seg.levels][2:] == [160, 56]
    with pytest.raises(UnknownVariantError, match="no official 'detection' windows for variant 'l2'"):
        meta_model("l2", features_only=True, window_preset="detection")


def test_norm_eps_values():
    """The official eps values (LayerNorm 1e-5 is too small an effect for the parity check to see)."""
    model = meta_model("t")
    assert model.patch_embed.conv_down[1].eps == 1e-4 and model.patch_embed.conv_down[4].eps == 1e-4
    assert model.levels[0].blocks[0].norm1.eps == 1e-5 and model.norm.eps == 1e-5
    assert model.levels[2].blocks[0].norm1.eps == 1e-5 and model.levels[3].blocks[3].norm2.eps == 1e-5
    assert model.levels[0].blocks[0].act1.approximate == "tanh"
    assert model.levels[2].blocks[0].mlp.act.approximate == "none"


def test_create_overrides_rebuild_the_architecture():
    model = meta_model("t", num_classes=10, window_preset="segmentation", features_only=True, out_indices=(2, 3))
    again = meta_model(model.variant.name, **model.create_overrides)
    assert {k: tuple(v.shape) for k, v in again.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert [lvl.window_size for lvl in again.levels] == [8, 8, 64, 32]
