"""The evaluation transform of a variant: the pixels the published weights were measured on.

Matches timm's ``transforms_imagenet_eval`` (what the official MambaVision validation uses) step by step, with PIL
and numpy only, because torchvision cannot be installed beside every torch this project supports:

1. convert to RGB (grayscale, RGBA, palette, CMYK ...);
2. resize: ``scale = floor(size / crop_pct)`` per side, then
   - ``center`` with a square target: shorter side to ``scale``, longer side ``int(scale * long / short)``
     (torchvision ``Resize(int)``);
   - ``center`` with a non-square target: timm's ``ResizeKeepRatio``: both sides divided by the smaller of the two
     image/target ratios and rounded (so the image covers the target, aspect ratio kept);
   - ``squash``: both sides to ``scale``, aspect ratio not kept;
3. center crop to the target (torchvision ``CenterCrop``: offsets rounded half to even, zero padding if the
   image is smaller than the crop);
4. to float32 in [0, 1], then ``(x - mean) / std`` per channel.
"""

import math
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from ..errors import DataError

__all__ = ["eval_transform", "EvalTransform", "resolve_sizes"]

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}
_CROP_MODES = ("center", "squash")
_DEFAULT_CROP_PCT = 0.875  # timm's value when a config has none


def _target_hw(input_size) -> Tuple[int, int]:
    """(H, W) from an int, an (H, W) pair or a (C, H, W) triple."""
    if isinstance(input_size, int):
        return input_size, input_size
    size = tuple(int(s) for s in input_size)
    if len(size) == 3:
        size = size[1:]
    if len(size) != 2 or min(size) <= 0:
        raise DataError(f"input size must be N, (H, W) or (3, H, W) with positive sides, got {input_size!r}")
    return size


def resolve_sizes(input_size, crop_pct: Optional[float]) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """The crop (H, W) and the resize target (H, W) before cropping, as timm computes them."""
    crop = _target_hw(input_size)
    pct = crop_pct or _DEFAULT_CROP_PCT
    scale = tuple(math.floor(s / pct) for s in crop)
    return crop, scale


def _to_rgb(img: Image.Image) -> Image.Image:
    # timm's dataset does a plain convert('RGB'): alpha is dropped, not composited; kept that way for parity.
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        # 16-bit / 32-bit greyscale: PIL's convert would saturate everything above 255 to white; map 16-bit
        # ranges to 8 bits instead (a deliberate difference from timm, which only matters for such files).
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and arr.max() > 255:
            arr = arr / 257.0
        img = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), "L")
    return img.convert("RGB")


def _shorter_side_size(w: int, h: int, size: int) -> Tuple[int, int]:
    """torchvision ``Resize(int)``: the shorter side becomes ``size``, the longer is truncated, not rounded."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def _keep_ratio_size(w: int, h: int, target_hw: Tuple[int, int]) -> Tuple[int, int]:
    """timm ``ResizeKeepRatio(longest=0)``: divide by the smaller image/target ratio, round each side."""
    ratio = min(h / target_hw[0], w / target_hw[1])
    return round(w / ratio), round(h / ratio)


def _center_crop(img: Image.Image, crop_hw: Tuple[int, int]) -> Image.Image:
    """torchvision ``CenterCrop`` on a PIL image, padding with zeros where the image is smaller."""
    ch, cw = crop_hw
    w, h = img.size
    if cw > w or ch > h:
        left, top = (cw - w) // 2 if cw > w else 0, (ch - h) // 2 if ch > h else 0
        padded = Image.new(img.mode, (max(w, cw), max(h, ch)), 0)
        padded.paste(img, (left, top))
        img = padded
        w, h = img.size
        if (w, h) == (cw, ch):
            return img
    top = int(round((h - ch) / 2.0))  # Python round: half to even, as torchvision
    left = int(round((w - cw) / 2.0))
    return img.crop((left, top, left + cw, top + ch))


class EvalTransform:
    """PIL image -> normalised float32 tensor (3, H, W). Picklable, so it can cross process boundaries."""

    def __init__(self, input_size, crop_pct: Optional[float], crop_mode: Optional[str], interpolation: str,
                 mean: Sequence[float], std: Sequence[float]):
        mode = crop_mode or "center"
        if mode not in _CROP_MODES:
            raise DataError(f"crop mode '{crop_mode}' is not supported; use one of: {', '.join(_CROP_MODES)}")
        if interpolation not in _RESAMPLE:
            raise DataError(f"interpolation '{interpolation}' is not supported; use one of: {', '.join(_RESAMPLE)}")
        self.crop_hw, self.scale_hw = resolve_sizes(input_size, crop_pct)
        self.crop_pct = crop_pct or _DEFAULT_CROP_PCT
        self.crop_mode = mode
        self.interpolation = interpolation
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        # float32 tensors as torchvision's Normalize builds them, so the arithmetic is the same bit for bit
        self._mean_t = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        self._std_t = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)

    def resize(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        resample = _RESAMPLE[self.interpolation]
        if self.crop_mode == "squash":
            size = (self.scale_hw[1], self.scale_hw[0])
        elif self.scale_hw[0] == self.scale_hw[1]:
            size = _shorter_side_size(w, h, self.scale_hw[0])
        else:
            size = _keep_ratio_size(w, h, self.scale_hw)
        if size == (w, h):
            return img  # torchvision returns the image untouched when the size already matches
        return img.resize(size, resample)

    def pil(self, img: Image.Image) -> Image.Image:
        """The resized and cropped RGB image (before tensor conversion)."""
        return _center_crop(self.resize(_to_rgb(img)), self.crop_hw)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        arr = np.array(self.pil(img), dtype=np.uint8, copy=True)
        x = torch.from_numpy(arr).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
        return x.sub_(self._mean_t).div_(self._std_t)

    def __repr__(self) -> str:
        return (f"EvalTransform(crop={self.crop_hw}, resize={self.scale_hw}, crop_pct={self.crop_pct}, "
                f"mode={self.crop_mode}, interpolation={self.interpolation})")


def eval_transform(pretrained_cfg, input_size: Union[int, Sequence[int], None] = None
                   ) -> Callable[[Image.Image], torch.Tensor]:
    """The evaluation transform for a variant's weights.

    Args:
        pretrained_cfg: a ``PretrainedConfig`` (``input_size``, ``crop_pct``, ``crop_mode``, ``interpolation``,
            ``mean``, ``std``), or a ``Variant`` (its ``pretrained`` is used).
        input_size: overrides the config's resolution: N, (H, W) or (3, H, W). ``crop_pct`` and the mode still
            apply, as in timm.

    Returns:
        A callable taking a PIL image (any mode) and returning a float32 tensor (3, H, W).
    """
    cfg = getattr(pretrained_cfg, "pretrained", pretrained_cfg)
    return EvalTransform(
        input_size if input_size is not None else cfg.input_size,
        crop_pct=cfg.crop_pct,
        crop_mode=cfg.crop_mode,
        interpolation=cfg.interpolation,
        mean=cfg.mean,
        std=cfg.std,
    )
