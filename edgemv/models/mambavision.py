"""MambaVision in plain PyTorch: blocks, levels, the model.

Parameter names and shapes equal the official checkpoints so they load strictly. The computation in eval mode is
the official one, including the quirks pretrained weights depend on (see docs/model.md): dt_proj's bias applied
twice, a non-causal depthwise conv1d without bias, z concatenated (not gating), zero-padded unmasked windows,
tanh-GELU in ConvBlocks and exact GELU in MLPs.
"""

import math
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops import selective_scan

__all__ = [
    "MambaVision",
    "MambaVisionMixer",
    "Attention",
    "ConvBlock",
    "Block",
    "MambaVisionLevel",
    "window_partition",
    "window_reverse",
    "is_attention_block",
]


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval mode)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self):
        return f"p={self.p}"


class ConvBlock(nn.Module):
    """Residual 3x3 conv pair of levels 0 and 1: conv-BN-GELU(tanh)-conv-BN, no activation after the sum."""

    def __init__(self, dim: int, drop_path: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, 1, 1, bias=True)
        self.norm1 = nn.BatchNorm2d(dim, eps=1e-5)
        self.act1 = nn.GELU(approximate="tanh")
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 1, bias=True)
        self.norm2 = nn.BatchNorm2d(dim, eps=1e-5)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        return x + self.drop_path(self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x))))))


class SelectiveScan(nn.Module):
    """The mixer's selective scan as a child module without parameters, so that its ops get their own name scope in
    an ONNX export (``.../mixer/scan/...``): edgemv.export.half keeps that scope in float32 in an FP16 Q/DQ graph, as
    every implementation of the scan accumulates in float32."""

    def forward(self, x, dt, A_log, B, C, D, delta_bias):
        A = -torch.exp(A_log.float())
        return selective_scan(x, dt, A, B, C, D.float(), z=None, delta_bias=delta_bias.float(), delta_softplus=True)


class MambaVisionMixer(nn.Module):
    """The MambaVision token mixer: a selective-scan branch and a plain conv branch, concatenated.

    Args:
        d_model: channels C of the tokens.
        d_state: SSM state size N.
        d_conv: depthwise conv1d kernel size.
        expand: inner width multiplier.
    """

    def __init__(self, d_model: int, d_state: int = 8, d_conv: int = 3, expand: int = 1):
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_inner = int(expand * d_model)
        half = self.d_inner // 2
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, self.d_inner, bias=False)
        self.x_proj = nn.Linear(half, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, half, bias=True)
        self.dt_proj.keep_init = True  # Mamba's step-size init below, not the generic Linear init
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        # Non-causal: padding on both sides, and no bias (the official model builds them that way).
        self.conv1d_x = nn.Conv1d(half, half, d_conv, padding=d_conv // 2, groups=half, bias=False)
        self.conv1d_z = nn.Conv1d(half, half, d_conv, padding=d_conv // 2, groups=half, bias=False)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(half, 1))
        self.D = nn.Parameter(torch.ones(half))
        self.scan = SelectiveScan()
        self._init_dt(half)

    def _init_dt(self, half: int, dt_min: float = 1e-3, dt_max: float = 0.1):
        # Mamba's initialisation: step sizes log-uniform in [dt_min, dt_max] through the softplus inverse.
        bound = self.dt_rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -bound, bound)
        dt = torch.exp(torch.rand(half, device=self.A_log.device) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=1e-4)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, L, C) -> (B, L, C)."""
        xz = self.in_proj(hidden).transpose(1, 2)  # (B, C, L)
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d_x(x))
        z = F.silu(self.conv1d_z(z))
        x_dbl = self.x_proj(x.transpose(1, 2))  # (B, L, dt_rank + 2N)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = self.dt_proj(dt).transpose(1, 2)  # the Linear adds its bias once ...
        # ... and the scan adds it again (delta_bias)
        y = self.scan(x, dt, self.A_log, B.transpose(1, 2), C.transpose(1, 2), self.D, self.dt_proj.bias)
        return self.out_proj(torch.cat([y, z], dim=1).transpose(1, 2))


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection; no positional bias, no mask."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf) GELU, unlike the ConvBlocks
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm block of levels 2 and 3 with a mixer (MambaVisionMixer or Attention) and an MLP."""

    def __init__(self, dim: int, num_heads: int, attention: bool, mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 layer_scale: Optional[float] = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.mixer = Attention(dim, num_heads) if attention else MambaVisionMixer(dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.use_layer_scale = layer_scale is not None
        if self.use_layer_scale:
            self.gamma_1 = nn.Parameter(layer_scale * torch.ones(dim))
            self.gamma_2 = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x):
        if self.use_layer_scale:
            x = x + self.drop_path(self.gamma_1 * self.mixer(self.norm1(x)))
            return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))
        x = x + self.drop_path(self.mixer(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def is_attention_block(index: int, depth: int) -> bool:
    """The official rule: the second half of a level is attention (for odd depth, the larger half is Mamba)."""
    first = depth // 2 + 1 if depth % 2 else depth // 2
    return index >= first


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, C, H, W) with H, W multiples of ws -> (B * nW, ws * ws, C), tokens row-major inside each window."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // ws, ws, w // ws, ws)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """Inverse of window_partition: (B * nW, ws * ws, C) -> (B, C, h, w)."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // ws) * (w // ws))
    x = windows.reshape(b, h // ws, w // ws, ws, ws, c)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


class Downsample(nn.Module):
    """Stride-2 3x3 conv doubling the channels, no norm (key ``reduction.0``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Sequential(nn.Conv2d(dim, 2 * dim, 3, 2, 1, bias=False))

    def forward(self, x):
        return self.reduction(x)


class MambaVisionLevel(nn.Module):
    """One level: ConvBlocks (levels 0-1) or windowed mixer/attention blocks (levels 2-3), then downsampling."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, conv: bool, downsample: bool,
                 mlp_ratio: float = 4.0, drop_path: Sequence[float] = (), layer_scale: Optional[float] = None):
        super().__init__()
        self.conv = conv
        self.window_size = window_size
        drop_path = list(drop_path) or [0.0] * depth
        if conv:
            self.blocks = nn.ModuleList(ConvBlock(dim, drop_path[i]) for i in range(depth))
        else:
            self.blocks = nn.ModuleList(
                Block(dim, num_heads, is_attention_block(i, depth), mlp_ratio, drop_path[i], layer_scale)
                for i in range(depth)
            )
        self.downsample = Downsample(dim) if downsample else None

    def forward_blocks(self, x):
        """The level's blocks, without downsampling: (B, C, H, W) -> (B, C, H, W)."""
        if self.conv:
            for blk in self.blocks:
                x = blk(x)
            return x
        _, _, h, w = x.shape
        ws = self.window_size
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, pad_r, 0, pad_b))  # zero tokens, not masked: they take part in scan and attention
        hp, wp = h + pad_b, w + pad_r
        x = window_partition(x, ws)
        for blk in self.blocks:
            x = blk(x)
        x = window_reverse(x, ws, hp, wp)
        if pad_b or pad_r:
            x = x[:, :, :h, :w].contiguous()
        return x

    def forward(self, x):
        x = self.forward_blocks(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    """Stride-4 stem: two stride-2 3x3 convs with BN (eps 1e-4) and ReLU."""

    def __init__(self, in_chans: int, in_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Identity()
        self.conv_down = nn.Sequential(
            nn.Conv2d(in_chans, in_dim, 3, 2, 1, bias=False),
            nn.BatchNorm2d(in_dim, eps=1e-4),
            nn.ReLU(),
            nn.Conv2d(in_dim, dim, 3, 2, 1, bias=False),
            nn.BatchNorm2d(dim, eps=1e-4),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.conv_down(self.proj(x))


class MambaVision(nn.Module):
    """MambaVision classifier, or a four-map backbone with ``features_only=True``.

    Args:
        depths: blocks per level.
        dim: channels of level 0 (doubling per level).
        num_heads: attention heads per level (used in levels 2 and 3).
        window_size: window side per level (used in levels 2 and 3).
        in_dim: channels after the first stem conv.
        mlp_ratio: MLP hidden width over channels.
        drop_path_rate: stochastic depth, linearly increasing over all blocks.
        layer_scale: initial value of gamma_1/gamma_2 in levels 2-3, or None for no layer scale.
        num_classes: classifier outputs.
        in_chans: input image channels.
        features_only: return the four pre-downsample maps (each normalised by ``outnorm{i}``) instead of logits.
        out_indices: which of the four maps to return with ``features_only``.
    """

    def __init__(self, depths=(1, 3, 8, 4), dim: int = 80, num_heads=(2, 4, 8, 16), window_size=(8, 8, 14, 7),
                 in_dim: int = 32, mlp_ratio: float = 4.0, drop_path_rate: float = 0.2,
                 layer_scale: Optional[float] = None, num_classes: int = 1000, in_chans: int = 3,
                 features_only: bool = False, out_indices: Sequence[int] = (0, 1, 2, 3)):
        super().__init__()
        self.num_features = int(dim * 2 ** (len(depths) - 1))
        self.num_classes = num_classes
        self.features_only = features_only
        self.out_indices = tuple(out_indices)
        self.feature_channels = [dim * 2 ** i for i in range(len(depths))]
        self.patch_embed = PatchEmbed(in_chans, in_dim, dim)
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linear, as torch.linspace
        self.levels = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.levels.append(MambaVisionLevel(
                dim * 2 ** i, depth, num_heads[i], window_size[i], conv=i < 2, downsample=i < len(depths) - 1,
                mlp_ratio=mlp_ratio, drop_path=rates[start:start + depth], layer_scale=layer_scale,
            ))
        if features_only:
            # The official detection/segmentation backbones normalise each returned map over channels.
            for i in self.out_indices:
                self.add_module(f"outnorm{i}", nn.LayerNorm(self.feature_channels[i]))
        else:
            self.norm = nn.BatchNorm2d(self.num_features)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear) and not getattr(m, "keep_init", False):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward_features(self, x):
        """Image (B, 3, H, W) -> final map (B, num_features, H/32, W/32), or the list of maps if features_only."""
        x = self.patch_embed(x)
        outs = []
        for i, level in enumerate(self.levels):
            x = level.forward_blocks(x)
            if self.features_only and i in self.out_indices:
                norm = getattr(self, f"outnorm{i}")
                outs.append(norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous())
            if level.downsample is not None:
                x = level.downsample(x)
        return outs if self.features_only else x

    def forward_head(self, x, pre_logits: bool = False):
        x = torch.flatten(self.avgpool(self.norm(x)), 1)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        x = self.forward_features(x)
        return x if self.features_only else self.forward_head(x)

