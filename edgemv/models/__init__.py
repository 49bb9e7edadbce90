"""MambaVision models: the variant table and one factory."""

from typing import Optional

from .checkpoint import load_checkpoint, remap_state_dict
from .mambavision import MambaVision
from ..errors import UnknownVariantError
from .variants import BACKBONE_WINDOWS, VARIANTS, Variant, get_variant, list_variants
from .weights import WeightsInfo, resolve_weights

__all__ = ["create_model", "list_variants", "get_variant", "Variant", "VARIANTS", "MambaVision", "WeightsInfo",
           "remap_state_dict"]


def create_model(variant: str, weights=None, features_only: bool = False, out_indices=(0, 1, 2, 3),
                 window_preset: Optional[str] = None, **overrides) -> MambaVision:
    """Build a MambaVision variant in eval mode, optionally with weights.

    Args:
        variant: 't', 's', 'l2-512-21k', 'mamba_vision_T', 'MambaVision-T-1K', ... (case-insensitive).
        weights: None or 'random' (random init), a checkpoint file (.pth/.pth.tar/.pt/.safetensors), a Hugging
            Face snapshot folder, or a hub id such as 'nvidia/MambaVision-T-1K'.
        features_only: a backbone returning the four stage maps (normalised by ``outnorm{i}``).
        out_indices: which maps ``features_only`` returns.
        window_preset: 'detection' or 'segmentation': the window sizes of the official downstream backbone
            configs (their checkpoints need them; windows cannot be read from weights).
        **overrides: architecture fields to change (e.g. ``num_classes=10``, ``drop_path_rate=0``).

    The returned model carries ``variant`` (a Variant), ``pretrained_cfg``, ``weights_info`` and
    ``create_overrides`` (the keyword arguments that rebuild the same architecture with ``create_model``).
    """
    spec: Variant = get_variant(variant)
    arch = dict(spec.arch.__dict__)
    if window_preset is not None:
        presets = BACKBONE_WINDOWS.get(window_preset, {})
        if spec.name not in presets:
            known = ", ".join(f"{task}: {'/'.join(v)}" for task, v in BACKBONE_WINDOWS.items())
            raise UnknownVariantError(f"no official {window_preset!r} windows for variant '{spec.name}' ({known})")
        arch["window_size"] = presets[spec.name]
    arch.update(overrides)
    model = MambaVision(**arch, features_only=features_only, out_indices=out_indices)
    checkpoint, info = resolve_weights(weights, spec)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, spec.name)
    model.create_overrides = dict(overrides)
    if window_preset is not None:
        model.create_overrides["window_size"] = arch["window_size"]
    if features_only:
        model.create_overrides.update(features_only=True, out_indices=tuple(out_indices))
    model.variant = spec
    model.pretrained_cfg = spec.pretrained
    model.weights_info: Optional[WeightsInfo] = info
    return model.eval()
