"""What gets quantized in a MambaVision model, kept as data.

A *recipe* is a ModelOpt preset (``INT8_DEFAULT_CFG`` or ``FP8_DEFAULT_CFG``: the number format of weight and
input quantizers) plus MambaVision entries appended to its ``quant_cfg`` list. ModelOpt applies the list in order,
later entries overriding earlier ones, so the recipe reads top to bottom:

1. the preset (formats, ModelOpt's own exclusions),
2. deny all (``{"quantizer_name": "*", "enable": False}``: formats stay, every quantizer is switched off),
3. switch on the weight and input quantizers of each *quantized group* below,
4. switch off the *high-precision groups* again (a no-op unless a pattern overlaps; kept so the record says it),
5. the user's ``--include`` patterns (switch on), then ``--exclude`` patterns (switch off: exclude wins).

Patterns are fnmatch wildcards over module names (``levels.2.blocks.0.mixer.x_proj``), as ``mtq`` matches
quantizer names; a module pattern ``P`` becomes the quantizer patterns ``P.weight_quantizer`` and
``P.input_quantizer``. Output quantizers stay off (TensorRT fuses the next layer's input Q/DQ), except the convs'
with ``conv_output=True`` (for ONNX Runtime's QLinearConv; off by default, docs/quantize.md).

The defaults were chosen by measuring each group alone (docs/quantize.md, "How the defaults were chosen").
"""

import copy
import fnmatch
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["Group", "GROUPS", "CONV_OUTPUT_GROUPS", "HIGH_PRECISION", "NOT_MODULES", "PRECISIONS", "CALIB_METHODS",
           "Recipe", "make_recipe", "group_of", "group_names", "modelopt_preset", "DEFAULT_PERCENTILE",
           "CONV_OUTPUT_SKIP"]


@dataclass(frozen=True)
class Group:
    """A named set of modules (fnmatch patterns over module names)."""

    name: str
    patterns: Tuple[str, ...]
    what: str
    quantize: bool = True  # in the default recipe
    why: str = ""
    classes: Tuple[str, ...] = ()  # ModelOpt parent_class names that also belong to the group


# Groups that ModelOpt can quantize (modules it wraps: Conv1d/Conv2d/Linear/AdaptiveAvgPool2d). Order is the
# order of the network. ``quantize`` is the default chosen by measurement (docs/quantize.md).
GROUPS: Tuple[Group, ...] = (
    Group("stem", ("patch_embed.conv_down.0", "patch_embed.conv_down.3"), "stem convs (3x3 stride 2, x2)"),
    Group("conv_blocks", ("levels.[01].blocks.*.conv[12]",), "level 0-1 ConvBlock 3x3 convs"),
    Group("downsample", ("levels.*.downsample.reduction.0",), "downsample convs between levels"),
    Group("mixer_in_proj", ("levels.*.blocks.*.mixer.in_proj",), "mixer in_proj (C -> C)"),
    Group("mixer_x_proj", ("levels.*.blocks.*.mixer.x_proj",), "mixer x_proj: produces dt, B, C (scan inputs)",
          quantize=False,
          why="its output is the scan's B and C and, through dt_proj, delta: the inputs that published Mamba PTQ "
              "work finds most sensitive; under 1% of a block's MACs, so high precision costs ~nothing. Our "
              "random-weight measurement cannot see it (the SSM term is 5e-5 of D*u there): see docs/quantize.md"),
    Group("mixer_dt_proj", ("levels.*.blocks.*.mixer.dt_proj",), "mixer dt_proj: produces delta (scan input)",
          quantize=False,
          why="its output is delta before softplus, which sets the decay exp(delta*A) of every state; "
              "inner dimension dt_rank = C/16, negligible MACs"),
    Group("mixer_out_proj", ("levels.*.blocks.*.mixer.out_proj",), "mixer out_proj (its input is the SSM output y)"),
    Group("attn_qkv", ("levels.*.blocks.*.mixer.qkv",), "attention qkv"),
    Group("attn_proj", ("levels.*.blocks.*.mixer.proj",), "attention output proj"),
    Group("mlp_fc1", ("levels.*.blocks.*.mlp.fc1",), "MLP fc1 (C -> 4C)"),
    Group("mlp_fc2", ("levels.*.blocks.*.mlp.fc2",), "MLP fc2 (4C -> C)"),
    Group("head", ("avgpool", "head"), "global pool input and classifier"),
)

# Groups of convolutions whose outputs ``Recipe.conv_output`` quantizes as well.
CONV_OUTPUT_GROUPS: Tuple[str, ...] = ("stem", "conv_blocks", "downsample")
# ... except these convs: the level-0 downsample feeds a ConvBlock, whose residual and conv1 both read its output, so
# an output quantizer there gives ONNX Runtime a QuantizeLinear with two consumers. ORT (1.32, measured) builds
# QLinearConv only when the conv's QuantizeLinear has one consumer, and the shared one also kept the next conv1
# float: 2 float convs with it, 1 without (docs/export.md, "Which convs ONNX Runtime runs in INT8").
CONV_OUTPUT_SKIP: Tuple[str, ...] = ("levels.0.downsample.reduction.0",)

# Modules ModelOpt wraps that always stay in high precision (unless --include names them).
HIGH_PRECISION: Tuple[Group, ...] = (
    Group("mixer_conv1d", ("levels.*.blocks.*.mixer.conv1d_x", "levels.*.blocks.*.mixer.conv1d_z"),
          "depthwise conv1d of the mixer (k=3, C/2 groups)", quantize=False,
          why="depthwise: 3 MACs per output, no INT8 speed-up, and conv1d_x feeds the scan's u"),
    Group("norms", ("*norm*", "patch_embed.conv_down.1", "patch_embed.conv_down.4"), "LayerNorm / BatchNorm", quantize=False,
          why="BatchNorm folds into the convs at build time; LayerNorm statistics need high precision",
          classes=("nn.LayerNorm", "nn.BatchNorm1d", "nn.BatchNorm2d")),
)

# What stays in high precision because it is not a module ModelOpt wraps (recorded in quantize.json).
NOT_MODULES: Tuple[Tuple[str, str], ...] = (
    ("selective scan (edgemv::selective_scan)", "a custom op, not a module: computed in float32"),
    ("A_log, D, dt_proj.bias as delta_bias", "parameters read functionally by the scan"),
    ("softmax / scaled_dot_product_attention", "functional op inside Attention: not quantized"),
    ("SiLU / GELU / residual adds / window partition", "elementwise or layout ops"),
)

PRECISIONS = ("int8", "fp8")
# max: ModelOpt's "max" algorithm. entropy / percentile: ModelOpt's HistogramCalibrator on the activation
# quantizers ("calibrator": "histogram"); the amax is computed from the histogram with that method.
CALIB_METHODS = ("max", "entropy", "percentile")
DEFAULT_PERCENTILE = 99.99
# ModelOpt's entropy method searches an integer grid (num_bits levels); it has no FP8 (E4M3) form.
UNSUPPORTED = {("fp8", "entropy"): "entropy calibration is defined on ModelOpt's integer grid only; "
                                  "use --calib-method max or percentile with fp8"}


def modelopt_preset(precision: str) -> dict:
    """A deep copy of ModelOpt's preset for ``precision`` (INT8_DEFAULT_CFG or FP8_DEFAULT_CFG)."""
    import modelopt.torch.quantization as mtq

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return copy.deepcopy(mtq.INT8_DEFAULT_CFG if precision == "int8" else mtq.FP8_DEFAULT_CFG)


def group_of(module_name: str) -> Optional[str]:
    """The group (quantized or high precision) a module name belongs to, or None."""
    for group in GROUPS + HIGH_PRECISION:
        if any(fnmatch.fnmatchcase(module_name, p) for p in group.patterns):
            return group.name
    return None


def group_names() -> Tuple[str, ...]:
    """Every group name in network order, quantizable groups first."""
    return tuple(g.name for g in GROUPS + HIGH_PRECISION)


def _quantizer_patterns(module_pattern: str, output: bool = False) -> List[str]:
    return [f"{module_pattern}.weight_quantizer", f"{module_pattern}.input_quantizer"] + \
        ([f"{module_pattern}.output_quantizer"] if output else [])


@dataclass
class Recipe:
    """A MambaVision quantization recipe: a preset, the groups to quantize, overrides, a calibration method.

    ``to_modelopt()`` gives the dict ``mtq.quantize`` takes. ``quantized_groups`` defaults to the groups marked
    ``quantize=True``; a sensitivity search (``edgemv quantize --max-drop``) narrows it by name.
    """

    precision: str = "int8"
    calib_method: str = "max"
    quantized_groups: Tuple[str, ...] = field(default_factory=lambda: tuple(g.name for g in GROUPS if g.quantize))
    include: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    percentile: float = DEFAULT_PERCENTILE
    # Entropy: candidate thresholds every ``entropy_stride`` of the 2048 histogram bins (ModelOpt's ``stride``);
    # 16 keeps the threshold within 0.8% of the range and the search ~16x faster than stride 1.
    entropy_stride: int = 16
    # Output quantizers on the quantized convs too (CONV_OUTPUT_GROUPS): a Q after the conv lets ONNX Runtime's CPU
    # build QLinearConv (it needs DQ -> Conv -> Q); TensorRT does not need them. Off by default: docs/quantize.md.
    conv_output: bool = False

    def __post_init__(self):
        self.precision = str(self.precision).lower()
        self.calib_method = str(self.calib_method).lower()
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.calib_method not in CALIB_METHODS:
            raise ValueError(f"unknown calibration method {self.calib_method!r}; "
                             f"choose one of {', '.join(CALIB_METHODS)}")
        if (self.precision, self.calib_method) in UNSUPPORTED:
            raise ValueError(UNSUPPORTED[(self.precision, self.calib_method)])
        known = {g.name for g in GROUPS}
        unknown = [g for g in self.quantized_groups if g not in known]
        if unknown:
            raise ValueError(f"unknown group(s) {', '.join(unknown)}; groups: {', '.join(sorted(known))}")
        self.quantized_groups = tuple(self.quantized_groups)
        self.include, self.exclude = tuple(self.include), tuple(self.exclude)

    @property
    def high_precision_groups(self) -> Tuple[str, ...]:
        return tuple(g.name for g in GROUPS if g.name not in self.quantized_groups) + \
            tuple(g.name for g in HIGH_PRECISION)

    def entries(self) -> List[dict]:
        """The MambaVision entries appended to the preset's ``quant_cfg`` (see the module docstring)."""
        entries: List[dict] = [{"quantizer_name": "*", "enable": False}]
        for group in GROUPS:
            if group.name in self.quantized_groups:
                entries += [{"quantizer_name": q, "enable": True}
                            for p in group.patterns for q in _quantizer_patterns(p)]
        for group in GROUPS + HIGH_PRECISION:
            if group.name not in self.quantized_groups:
                entries += [{"quantizer_name": q, "enable": False}
                            for p in group.patterns for q in _quantizer_patterns(p)]
                entries += [{"quantizer_name": "*", "parent_class": c, "enable": False} for c in group.classes]
        if self.conv_output:
            fmt = self._activation_cfg(modelopt_preset(self.precision))
            entries += [{"quantizer_name": f"{p}.output_quantizer", "cfg": dict(fmt), "enable": True}
                        for group in GROUPS if group.name in CONV_OUTPUT_GROUPS and group.name in self.quantized_groups
                        for p in group.patterns]
            entries += [{"quantizer_name": f"{p}.output_quantizer", "enable": False} for p in CONV_OUTPUT_SKIP]
        entries += [{"quantizer_name": q, "enable": True} for p in self.include for q in _quantizer_patterns(p)]
        entries += [{"quantizer_name": q, "enable": False}
                    for p in self.exclude for q in _quantizer_patterns(p, output=self.conv_output)]
        return entries

    def _activation_cfg(self, preset: dict) -> dict:
        """The settings of every activation quantizer (inputs, and the convs' outputs with ``conv_output``): the
        preset's ``*input_quantizer`` format; for entropy / percentile with ModelOpt's histogram calibrator.
        Weights keep max (per-channel INT8 / per-tensor FP8)."""
        fmt = next(e["cfg"] for e in preset["quant_cfg"] if e.get("quantizer_name") == "*input_quantizer")
        return {**fmt, "calibrator": "histogram"} if self.calib_method != "max" else dict(fmt)

    def to_modelopt(self) -> dict:
        """The config for ``mtq.quantize``: the preset's ``quant_cfg`` + ``entries()``; ``algorithm`` is "max"
        for max calibration, None for histogram methods (edgemv then runs ModelOpt's histogram calibrators)."""
        cfg = modelopt_preset(self.precision)
        activation = self._activation_cfg(cfg)
        for entry in cfg["quant_cfg"]:
            if entry.get("quantizer_name") == "*input_quantizer" and entry.get("cfg") is not None:
                entry["cfg"] = dict(activation)
        cfg["quant_cfg"] = list(cfg["quant_cfg"]) + self.entries()
        cfg["algorithm"] = "max" if self.calib_method == "max" else None
        return cfg

    def as_dict(self) -> dict:
        return {
            "precision": self.precision,
            "calib_method": self.calib_method,
            "percentile": self.percentile if self.calib_method == "percentile" else None,
            "entropy_stride": self.entropy_stride if self.calib_method == "entropy" else None,
            "modelopt_preset": "INT8_DEFAULT_CFG" if self.precision == "int8" else "FP8_DEFAULT_CFG",
            "quantized_groups": list(self.quantized_groups),
            "high_precision_groups": list(self.high_precision_groups),
            "include": list(self.include),
            "exclude": list(self.exclude),
            "conv_output": self.conv_output,
            "entries": self.entries(),
        }


def make_recipe(precision: str = "int8", calib_method: str = "max", include: Sequence[str] = (),
                exclude: Sequence[str] = (), quantized_groups: Optional[Sequence[str]] = None,
                percentile: float = DEFAULT_PERCENTILE, conv_output: bool = False) -> Recipe:
    """The default MambaVision recipe for a precision, with overrides."""
    kwargs: Dict = dict(precision=precision, calib_method=calib_method, include=tuple(include),
                        exclude=tuple(exclude), percentile=percentile, conv_output=conv_output)
    if quantized_groups is not None:
        kwargs["quantized_groups"] = tuple(quantized_groups)
    return Recipe(**kwargs)
