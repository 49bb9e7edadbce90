"""Checkpoint remapping and strict loading with messages that say what went wrong.

``remap_state_dict`` is a pure function of (checkpoint, model): it unwraps the container, removes wrapper prefixes
and keeps what the model can take. ``load_checkpoint`` loads strictly and, on a mismatch, names the first
missing/unexpected keys and which variant the checkpoint's shapes look like.
"""

import re
from typing import Dict, List, Mapping

import torch
import torch.nn as nn

from ..errors import CheckpointMismatchError
from .variants import VARIANTS

__all__ = ["unwrap_checkpoint", "remap_state_dict", "load_checkpoint", "guess_variants", "describe_arch"]

_CONTAINER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
_PREFIXES = ("module.", "encoder.", "model.", "backbone.")
_BLOCK_KEY = re.compile(r"^levels\.(\d+)\.blocks\.(\d+)\.")


def unwrap_checkpoint(obj) -> Dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint: under state_dict, else model, else state_dict_ema, else the top."""
    if not isinstance(obj, Mapping):
        raise CheckpointMismatchError(f"checkpoint holds a {type(obj).__name__}, not a dict of tensors")
    for key in _CONTAINER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointMismatchError("checkpoint holds no tensors")
    return tensors


def _strip_prefixes(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    # A detection/segmentation checkpoint holds backbone.* next to neck/head keys: keep the backbone only.
    if any(k.startswith("backbone.") for k in state_dict):
        state_dict = {k: v for k, v in state_dict.items() if k.startswith("backbone.")}
    changed = True
    while changed:  # wrappers can nest: module.model.*
        changed = False
        for prefix in _PREFIXES:
            if state_dict and all(k.startswith(prefix) for k in state_dict):
                state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
                changed = True
    return state_dict


def remap_state_dict(checkpoint, model: nn.Module) -> Dict[str, torch.Tensor]:
    """Official / Hugging Face / wrapped checkpoint -> a state dict with this model's key names."""
    state_dict = _strip_prefixes(unwrap_checkpoint(checkpoint))
    own = model.state_dict()
    if all(k in own for k in state_dict) and len(state_dict) == len(own):
        return dict(state_dict)  # native keys: nothing to do
    if getattr(model, "features_only", False):
        # A backbone takes a classifier checkpoint without its BatchNorm and head.
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(("norm.", "head."))}
    return dict(state_dict)


def describe_arch(state_dict: Mapping[str, torch.Tensor]):
    """(in_dim, dim, depths, num_classes, layer_scale) read off a state dict's keys and shapes."""
    try:
        in_dim = state_dict["patch_embed.conv_down.0.weight"].shape[0]
        dim = state_dict["patch_embed.conv_down.3.weight"].shape[0]
    except KeyError:
        return None
    depths = [0, 0, 0, 0]
    for key in state_dict:
        m = _BLOCK_KEY.match(key)
        if m and int(m.group(1)) < 4:
            level, block = int(m.group(1)), int(m.group(2))
            depths[level] = max(depths[level], block + 1)
    head = state_dict.get("head.weight")
    num_classes = head.shape[0] if head is not None else None
    layer_scale = any(k.endswith("gamma_1") for k in state_dict)
    return in_dim, dim, tuple(depths), num_classes, layer_scale


def guess_variants(state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    """Variants whose architecture matches the checkpoint's shapes (windows cannot be told from weights)."""
    found = describe_arch(state_dict)
    if found is None:
        return []
    in_dim, dim, depths, _, layer_scale = found
    return [
        v.name for v in VARIANTS.values()
        if (v.arch.in_dim, v.arch.dim, tuple(v.arch.depths), v.arch.layer_scale is not None)
        == (in_dim, dim, depths, layer_scale)
    ]


def _first(keys, n=3) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys)} in all)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_checkpoint(model: nn.Module, checkpoint, variant_name: str = "") -> List[str]:
    """Load strictly into ``model``; returns the keys left at their initial values (a backbone's outnorms only).

    Raises CheckpointMismatchError naming the first differences and the variant the checkpoint looks like.
    """
    state_dict = remap_state_dict(checkpoint, model)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    allowed_missing = [k for k in missing if k.startswith("outnorm")] if getattr(model, "features_only", False) else []
    missing = [k for k in missing if k not in allowed_missing]
    mismatched = [k for k in state_dict if k in own and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_first(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_first(unexpected)})")
        if mismatched:
            k = sorted(mismatched)[0]
            parts.append(f"{len(mismatched)} shape mismatches (first {k}: checkpoint {tuple(state_dict[k].shape)}, "
                         f"model {tuple(own[k].shape)})")
        guesses = [g for g in guess_variants(state_dict) if g != "test"]
        if guesses and variant_name not in guesses:
            hint = f"; its shapes look like variant {' or '.join(guesses)}"
        elif not guesses:
            hint = "; its shapes match no MambaVision variant"
        else:
            hint = ""
        target = f"variant '{variant_name}'" if variant_name else "the model"
        raise CheckpointMismatchError(f"checkpoint does not fit {target}: " + "; ".join(parts) + hint)
    model.load_state_dict(state_dict, strict=not allowed_missing)
    return allowed_missing
