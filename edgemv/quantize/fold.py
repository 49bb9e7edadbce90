"""BatchNorm folded into the convolution before it: the deployment form that quantization should see.

TensorRT (and ONNX Runtime in FP32) fold an inference BatchNorm into the preceding convolution. Quantizing the
unfolded model puts the weight quantizer on the *unfolded* weight, and the exported ``DequantizeLinear -> Conv ->
BatchNormalization`` no longer folds: ONNX Runtime runs the Conv and the BN separately in float, TensorRT folds the
BN scale into dequantized weights whose per-channel scales were calibrated without it. Folding first makes the
quantized weight the one that runs.

For each (Conv2d, BatchNorm2d) pair of a MambaVision model, with ``s = gamma / sqrt(running_var + eps)``::

    conv.weight <- conv.weight * s[:, None, None, None]
    conv.bias   <- (conv.bias or 0 - running_mean) * s + beta
    bn          -> nn.Identity()

computed in float64, stored in the convolution's dtype. The pairs are named by structure, not searched for:

- the stem, ``patch_embed.conv_down.0/.1`` and ``.3/.4``;
- every ``ConvBlock`` (levels 0-1), ``conv1/norm1`` and ``conv2/norm2``.

The final ``norm`` (BatchNorm2d before the pool) has no convolution before it and stays; LayerNorms stay.
Module names do not change (the BN's slot holds an Identity), so quantizer patterns and checkpoint keys of the convs
are the same; the stem convs gain a ``bias``.
"""

from typing import List, Tuple

import torch
from torch import nn

__all__ = ["fold_batchnorm", "bn_fold_pairs", "FOLD_RECORD_KEY"]

FOLD_RECORD_KEY = "bn_fold"  # key in quantize.json


def bn_fold_pairs(model: nn.Module) -> List[Tuple[str, str]]:
    """(conv name, BatchNorm name) of every pair ``fold_batchnorm`` folds in ``model`` (still unfolded ones only)."""
    from ..models.mambavision import ConvBlock, PatchEmbed

    pairs = []
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, PatchEmbed):
            candidates = [("conv_down.0", "conv_down.1"), ("conv_down.3", "conv_down.4")]
        elif isinstance(module, ConvBlock):
            candidates = [("conv1", "norm1"), ("conv2", "norm2")]
        else:
            continue
        for conv_name, bn_name in candidates:
            conv, bn = module.get_submodule(conv_name), module.get_submodule(bn_name)
            if isinstance(bn, nn.BatchNorm2d):
                if type(conv) is not nn.Conv2d:
                    raise TypeError(f"cannot fold {prefix}{bn_name} into {prefix}{conv_name} "
                                    f"({type(conv).__name__}): fold BatchNorm before quantizing")
                pairs.append((prefix + conv_name, prefix + bn_name))
    return pairs


@torch.no_grad()
def _fold_one(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    dtype = conv.weight.dtype
    mean = bn.running_mean.double()
    var = bn.running_var.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    weight = conv.weight.double() * scale.reshape(-1, 1, 1, 1)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(mean)
    bias = (bias - mean) * scale + beta
    conv.weight.copy_(weight.to(dtype))
    if conv.bias is None:
        conv.bias = nn.Parameter(bias.to(dtype=dtype, device=conv.weight.device),
                                 requires_grad=conv.weight.requires_grad)
    else:
        conv.bias.copy_(bias.to(dtype))


def fold_batchnorm(model: nn.Module) -> List[Tuple[str, str]]:
    """Fold every conv-BatchNorm pair of a MambaVision model in place (see the module docstring).

    Uses the BNs' running statistics (inference semantics): call it on a model to be evaluated or deployed, after
    loading its weights and before quantizing. Returns the (conv, BN) names folded; a second call folds nothing.
    """
    pairs = bn_fold_pairs(model)
    for conv_name, bn_name in pairs:
        _fold_one(model.get_submodule(conv_name), model.get_submodule(bn_name))
        model.set_submodule(bn_name, nn.Identity())
    return pairs
