"""The MambaVision variant table: architecture and weight metadata, as data in one place.

Every other module reads shapes, resolution and normalisation from here (a hard-coded 224 elsewhere is a bug).
Numbers are those of the official release (see ``docs/`` and the spec this project was built from).
"""

from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

from ..errors import UnknownVariantError

__all__ = [
    "ArchConfig",
    "PretrainedConfig",
    "Variant",
    "VARIANTS",
    "get_variant",
    "list_variants",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BACKBONE_WINDOWS",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HF_URL = "https://huggingface.co/{repo}/resolve/main/{file}"


@dataclass(frozen=True)
class ArchConfig:
    """Architecture hyper-parameters (what the constructor takes)."""

    depths: Tuple[int, int, int, int]
    dim: int
    num_heads: Tuple[int, int, int, int]
    window_size: Tuple[int, int, int, int]
    in_dim: int
    drop_path_rate: float = 0.2
    layer_scale: Optional[float] = None
    mlp_ratio: float = 4.0
    num_classes: int = 1000


@dataclass(frozen=True)
class PretrainedConfig:
    """What a set of published weights expects: input size, evaluation crop, normalisation, where to get it."""

    hf_repo: str
    filename: str
    input_size: Tuple[int, int, int] = (3, 224, 224)
    crop_pct: float = 1.0
    crop_mode: str = "center"  # "center": resize shorter side then crop; "squash": resize both sides then crop
    interpolation: str = "bicubic"
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    license: str = "CC-BY-NC-SA-4.0"

    @property
    def hub_id(self) -> str:
        return f"nvidia/{self.hf_repo}"

    @property
    def url(self) -> str:
        return HF_URL.format(repo=self.hub_id, file=self.filename)


@dataclass(frozen=True)
class Variant:
    name: str
    arch: ArchConfig
    pretrained: PretrainedConfig
    official_name: str  # the official factory function
    params_m: float  # published parameter count, millions (checked against the model in tests)
    aliases: Tuple[str, ...] = field(default=())


_T = ArchConfig(depths=(1, 3, 8, 4), dim=80, num_heads=(2, 4, 8, 16), window_size=(8, 8, 14, 7), in_dim=32)
_B = ArchConfig(depths=(3, 3, 10, 5), dim=128, num_heads=(2, 4, 8, 16), window_size=(8, 8, 14, 7), in_dim=64,
                drop_path_rate=0.3, layer_scale=1e-5)
_L = replace(_B, dim=196, num_heads=(4, 8, 16, 32))
_L2 = replace(_L, depths=(3, 3, 12, 5))
_L3 = replace(_L, depths=(3, 3, 20, 10), dim=256, drop_path_rate=0.5)


def _v(name, arch, repo, filename, official, params, **pre):
    return Variant(name, arch, PretrainedConfig(hf_repo=repo, filename=filename, **pre), official, params)


VARIANTS = {
    v.name: v
    for v in (
        _v("t", _T, "MambaVision-T-1K", "mambavision_tiny_1k.pth.tar", "mamba_vision_T", 31.794),
        _v("t2", replace(_T, depths=(1, 3, 11, 4)), "MambaVision-T2-1K", "mambavision_tiny2_1k.pth.tar",
           "mamba_vision_T2", 35.104, crop_pct=0.98),
        _v("s", replace(_T, depths=(3, 3, 7, 5), dim=96, in_dim=64), "MambaVision-S-1K",
           "mambavision_small_1k.pth.tar", "mamba_vision_S", 50.141, crop_pct=0.93),
        _v("b", _B, "MambaVision-B-1K", "mambavision_base_1k.pth.tar", "mamba_vision_B", 97.685),
        _v("b-21k", _B, "MambaVision-B-21K", "mambavision_base_21k.pth.tar", "mamba_vision_B_21k", 97.685),
        _v("l", _L, "MambaVision-L-1K", "mambavision_large_1k.pth.tar", "mamba_vision_L", 227.961),
        _v("l-21k", _L, "MambaVision-L-21K", "mambavision_large_21k.pth.tar", "mamba_vision_L_21k", 227.961),
        _v("l2", _L2, "MambaVision-L2-1K", "mambavision_large2_1k.pth.tar", "mamba_vision_L2", 241.555),
        _v("l2-512-21k", replace(_L2, window_size=(8, 8, 32, 16)), "MambaVision-L2-512-21K",
           "mambavision_L2_21k_240m_512.pth.tar", "mamba_vision_L2_512_21k", 241.555,
           input_size=(3, 512, 512), crop_pct=0.93, crop_mode="squash"),
        _v("l3-256-21k", replace(_L3, window_size=(8, 8, 16, 8)), "MambaVision-L3-256-21K",
           "mambavision_L3_21k_740m_256.pth.tar", "mamba_vision_L3_256_21k", 739.570,
           input_size=(3, 256, 256)),
        _v("l3-512-21k", replace(_L3, window_size=(8, 8, 32, 16)), "MambaVision-L3-512-21K",
           "mambavision_L3_21k_740m_512.pth.tar", "mamba_vision_L3_512_21k", 739.570,
           input_size=(3, 512, 512), crop_pct=0.93, crop_mode="squash"),
    )
}

# A tiny configuration with every code path (conv levels, mixer and attention blocks, padding, layer scale)
# so that tests and CI run the whole pipeline in seconds. Not a published model.
VARIANTS["test"] = Variant(
    "test",
    ArchConfig(depths=(1, 1, 3, 2), dim=16, num_heads=(1, 1, 2, 2), window_size=(4, 4, 4, 2), in_dim=8,
               drop_path_rate=0.0, layer_scale=1e-5, num_classes=10),
    PretrainedConfig(hf_repo="", filename="", input_size=(3, 64, 64), license="none (random weights only)"),
    official_name="",
    params_m=0.0,
)


# Window sizes of the official detection (Cascade Mask R-CNN, COCO) and segmentation (UperNet, ADE20K) backbone
# configs. Windows cannot be read from weights, so a backbone must be built with the windows it was trained with.
BACKBONE_WINDOWS = {
    "detection": {"t": (8, 8, 112, 56), "s": (8, 8, 112, 56), "b": (8, 8, 112, 56)},
    "segmentation": {"t": (8, 8, 64, 32), "s": (8, 8, 160, 56), "b": (8, 8, 64, 32),
                     "l3-256-21k": (8, 8, 64, 32), "l3-512-21k": (8, 8, 64, 32)},
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


_LOOKUP = {}
for _variant in VARIANTS.values():
    _LOOKUP[_variant.name] = _variant.name
    if _variant.official_name:
        official = _normalise(_variant.official_name)  # mamba-vision-t, mamba-vision-l2-512-21k ...
        _LOOKUP[official] = _variant.name
        _LOOKUP[official.replace("mamba-vision-", "mambavision-")] = _variant.name
        _LOOKUP["mambavision-" + _variant.name] = _variant.name
        _LOOKUP[_normalise(_variant.pretrained.hf_repo)] = _variant.name  # mambavision-t-1k
_LOOKUP.update({"t-1k": "t", "t2-1k": "t2", "s-1k": "s", "b-1k": "b", "l-1k": "l", "l2-1k": "l2"})


def get_variant(name: str) -> Variant:
    """Look a variant up by edgemv name ('t', 'l2-512-21k'), official factory name ('mamba_vision_T') or HF repo
    name ('MambaVision-T-1K'); case-insensitive."""
    key = _normalise(str(name))
    if key.startswith("nvidia/"):
        key = key[len("nvidia/"):]
    if key in _LOOKUP:
        return VARIANTS[_LOOKUP[key]]
    known = ", ".join(list_variants())
    raise UnknownVariantError(f"unknown variant '{name}'; choose one of: {known}")


def list_variants(include_test: bool = False):
    """Names of the published variants, smallest first."""
    return [n for n in VARIANTS if include_test or n != "test"]
