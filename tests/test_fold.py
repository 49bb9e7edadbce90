"""edgemv.quantize.fold: BatchNorm folded into the convs before quantization (outputs equal, BNs gone, quantizers
where they were)."""

import copy

import pytest
import torch
from torch import nn

from edgemv.models import create_model
from edgemv.quantize.fold import bn_fold_pairs, fold_batchnorm

SIZE = 32


def _model(variant="test", seed=0):
    torch.manual_seed(seed)
    model = create_model(variant, weights="random").eval()
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():  # trained-looking statistics, so that the fold has something to do
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(1 + 0.2 * torch.randn(n, generator=g))
            m.bias.data.copy_(0.2 * torch.randn(n, generator=g))
    return model


def _x(n=3, size=SIZE):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("variant,size", [("test", SIZE), ("t", 224)])
def test_fold_keeps_outputs_and_removes_the_conv_batchnorms(variant, size):
    model = _model(variant)
    folded = copy.deepcopy(model)
    x = _x(n=1 if variant == "t" else 3, size=size)
    with torch.no_grad():
        ref = model(x)
        pairs = fold_batchnorm(folded)
        out = folded(x)
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()
    names = [c for c, _ in pairs]
    assert names[:2] == ["patch_embed.conv_down.0", "patch_embed.conv_down.3"]
    assert all(c.endswith((".conv1", ".conv2")) for c in names[2:]) and len(names) > 2
    for conv, bn in pairs:
        assert isinstance(folded.get_submodule(bn), nn.Identity)
        assert folded.get_submodule(conv).bias is not None
    remaining = [n for n, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert remaining == ["norm"]  # the final BN has no conv before it: kept
    assert bn_fold_pairs(folded) == [] and fold_batchnorm(folded) == []  # idempotent
    # weights of everything else untouched
    sd, sd0 = folded.state_dict(), model.state_dict()
    touched = {k for c, b in pairs for k in sd0 if k.startswith((c + ".", b + "."))}
    assert all(torch.equal(sd[k], v) for k, v in sd0.items() if k not in touched)


def test_fold_refuses_a_quantized_model():
    pytest.importorskip("modelopt.torch.quantization")
    from edgemv.quantize import make_recipe, quantize

    model = _model()
    q = quantize(model, make_recipe("int8"), lambda m: m(_x()))
    with pytest.raises(TypeError, match="before quantizing"):
        fold_batchnorm(q)


def test_quantizers_after_the_fold_are_where_they_were():
    """Folding changes where quantizers sit only by removing the (always disabled) BatchNorm quantizers."""
    pytest.importorskip("modelopt.torch.quantization")
    from modelopt.torch.quantization.nn import TensorQuantizer

    from edgemv.quantize import make_recipe, quantize

    def states(model):
        return {n: q.is_enabled for n, q in model.named_modules() if isinstance(q, TensorQuantizer)}

    recipe = make_recipe("int8")
    plain = states(quantize(_model(), recipe, lambda m: m(_x())))
    m = _model()
    pairs = fold_batchnorm(m)
    folded = states(quantize(m, recipe, lambda m: m(_x())))
    bns = tuple(b + "." for _, b in pairs)
    assert {n: s for n, s in plain.items() if not n.startswith(bns)} == folded
    assert not any(s for n, s in plain.items() if n.startswith(bns))  # BN quantizers were off anyway
    for conv, _ in pairs:  # the folded convs are quantized as before: weight and input, not output
        assert folded[f"{conv}.weight_quantizer"] and folded[f"{conv}.input_quantizer"]
        assert not folded.get(f"{conv}.output_quantizer", False)
