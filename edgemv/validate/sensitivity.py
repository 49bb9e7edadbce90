"""Which layers lose accuracy when quantized: quantize one group at a time and measure the drop it causes.

Groups are per level and per kind, built from the model's own module names:

==============  ==========================================================  ========
kind            modules                                                     levels
==============  ==========================================================  ========
stem            patch_embed.conv_down.0 / .3                                 -
convs           ConvBlock conv1/conv2 and the level's downsample conv       0-3
mixer           mixer in_proj, out_proj (MambaVisionMixer blocks)            2-3
scan_inputs     mixer x_proj (-> B, C, dt) and dt_proj (-> delta)            2-3
attention       attention qkv, proj                                          2-3
mlp             MLP fc1, fc2                                                 2-3
head            global pool input and classifier                             -
==============  ==========================================================  ========

For each group the FP32 model is copied, the group alone is quantized with ModelOpt (the run's precision and
calibration method, the same calibration batches: ``make_recipe(quantized_groups=(), include=patterns)``) and
evaluated on the held-out images. The drop is the top-1 accuracy drop in points with labels, the top-1
disagreement with FP32 in points without; KL(FP32 || group) breaks ties (it resolves differences that a few
hundred images cannot).

``choose_exclusions`` turns that into a recipe for a budget: starting from the default recipe, it keeps the
most sensitive groups in high precision, one at a time, until the measured drop of the whole model holds the
budget. ``make_plan`` wraps it for ``run_quantize(plan=...)`` (``edgemv quantize --max-drop``).
"""

import copy
import fnmatch
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from .metrics import ImageStats, compare_batch
from ..atomic import write_json_atomic

__all__ = ["SensitivityGroup", "GroupResult", "SensitivityReport", "sensitivity_groups", "EvalCache", "sweep",
           "choose_exclusions", "make_plan", "sensitivity_for_run", "plain_fp32_model", "KINDS"]

KINDS = ("stem", "convs", "mixer", "scan_inputs", "attention", "mlp", "head")
_KIND_PATTERNS = {  # kind -> module-name patterns with {i} for the level
    "convs": ("levels.{i}.blocks.*.conv1", "levels.{i}.blocks.*.conv2", "levels.{i}.downsample.reduction.0"),
    "mixer": ("levels.{i}.blocks.*.mixer.in_proj", "levels.{i}.blocks.*.mixer.out_proj"),
    "scan_inputs": ("levels.{i}.blocks.*.mixer.x_proj", "levels.{i}.blocks.*.mixer.dt_proj"),
    "attention": ("levels.{i}.blocks.*.mixer.qkv", "levels.{i}.blocks.*.mixer.proj"),
    "mlp": ("levels.{i}.blocks.*.mlp.fc1", "levels.{i}.blocks.*.mlp.fc2"),
}
_GLOBAL = {"stem": ("patch_embed.conv_down.0", "patch_embed.conv_down.3"), "head": ("avgpool", "head")}
_SCHEMA = "edgemv.sensitivity/1"


@dataclass
class SensitivityGroup:
    name: str  # 'mlp.L2'
    kind: str
    level: Optional[int]
    patterns: Tuple[str, ...]  # module-name patterns (what --exclude takes)
    modules: Tuple[str, ...]  # the quantizable modules they match in this model


def _quantizable(model: torch.nn.Module) -> List[str]:
    from ..quantize.model_quant import quantizable_modules

    return quantizable_modules(model)


def sensitivity_groups(model: torch.nn.Module, kinds: Sequence[str] = KINDS) -> List[SensitivityGroup]:
    """The groups of ``model`` in network order, each with the quantizable modules it holds (empty ones dropped).
    Works on an FP32 model (before ModelOpt wraps it)."""
    names = _quantizable(model)
    levels = len(getattr(model, "levels", ()))
    out: List[SensitivityGroup] = []

    def add(name, kind, level, patterns):
        mods = tuple(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns))
        if mods and kind in kinds:
            # keep only the patterns that match something: quantize's check_patterns refuses the others
            used = tuple(p for p in patterns if any(fnmatch.fnmatchcase(n, p) for n in mods))
            out.append(SensitivityGroup(name, kind, level, used, mods))

    add("stem", "stem", None, _GLOBAL["stem"])
    for i in range(levels):
        for kind in ("convs", "mixer", "scan_inputs", "attention", "mlp"):
            add(f"{kind}.L{i}", kind, i, tuple(p.format(i=i) for p in _KIND_PATTERNS[kind]))
    add("head", "head", None, _GLOBAL["head"])
    return out


@dataclass
class GroupResult:
    group: str
    kind: str
    level: Optional[int]
    modules: int
    drop: float  # points: top-1 accuracy drop (labelled) or top-1 disagreement (unlabelled)
    drop_top5: Optional[float]
    top1_agreement: float
    kl_mean: float
    cosine_mean: float
    seconds: float
    in_recipe: Optional[bool] = None  # quantized by the default recipe


@dataclass
class SensitivityReport:
    precision: str
    calib_method: str
    metric: str  # 'top1_drop' or 'top1_disagreement'
    images: int
    reference_top1: Optional[float]
    groups: List[GroupResult]
    full: Optional[GroupResult] = None  # the whole default recipe, for scale
    data: Optional[str] = None
    seconds: float = 0.0
    notes: List[str] = field(default_factory=list)

    def ranking(self) -> List[GroupResult]:
        """Most damaging first (drop, then KL)."""
        return sorted(self.groups, key=lambda g: (g.drop, g.kl_mean), reverse=True)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["schema"] = _SCHEMA
        d["ranking"] = [g.group for g in self.ranking()]
        return d

    def write(self, path) -> str:
        return write_json_atomic(path, self.as_dict())

    def rows(self) -> List[tuple]:
        return [(g.group, g.modules, f"{g.drop:+.2f}", "-" if g.drop_top5 is None else f"{g.drop_top5:+.2f}",
                 f"{g.top1_agreement:.1f}%", f"{g.kl_mean:.3g}", f"{g.cosine_mean:.4f}",
                 {True: "yes", False: "no", None: ""}[g.in_recipe]) for g in self.groups]


class EvalCache:
    """Held-out images (and labels) and the FP32 logits on them, computed once for many measurements.

    Images are kept in memory when they fit ``max_bytes`` (a sweep evaluates them once per group); otherwise
    the batches are decoded again each time.
    """

    def __init__(self, fp32_model: torch.nn.Module, batches: Iterable, device="cpu", max_bytes: int = 256 << 20):
        self.device = torch.device(device)
        self.source = batches
        self.cached: Optional[List[Tuple[torch.Tensor, Optional[torch.Tensor]]]] = []
        self.ref_logits: List[torch.Tensor] = []
        nbytes = 0
        with torch.no_grad():
            for batch in batches:
                images, labels = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)
                self.ref_logits.append(fp32_model(images.to(self.device)).float().cpu())
                nbytes += images.numel() * images.element_size()
                if self.cached is not None:
                    self.cached.append((images, labels))
                    if nbytes > max_bytes:
                        self.cached = None
                self._labels_seen = labels is not None
        self.images = sum(t.shape[0] for t in self.ref_logits)
        self.labelled = bool(self.ref_logits) and self._labels_seen

    def _batches(self):
        if self.cached is not None:
            return iter(self.cached)
        return ((b[0], b[1]) if isinstance(b, (tuple, list)) else (b, None) for b in self.source)

    @torch.no_grad()
    def measure(self, model: torch.nn.Module) -> ImageStats:
        stats = ImageStats()
        start = 0
        for (images, labels), ref in zip(self._batches(), self.ref_logits):
            cand = model(images.to(self.device)).float().cpu()
            stats.add(compare_batch(ref, cand, labels, range(start, start + ref.shape[0])))
            start += ref.shape[0]
        return stats


def _result(name, kind, level, modules, stats: ImageStats, seconds: float) -> GroupResult:
    agree = stats.agreement()
    ra, ca = stats.accuracy("ref"), stats.accuracy("cand")
    if ra is not None:
        drop, drop5 = ra.top1 - ca.top1, ra.top5 - ca.top5
    else:
        drop, drop5 = 100.0 - agree.top1, None
    return GroupResult(name, kind, level, modules, drop, drop5, agree.top1, agree.kl_mean, agree.cosine_mean, seconds)


def _quantize_copy(fp32_model, recipe, forward_loop):
    from ..quantize import quantize

    return quantize(copy.deepcopy(fp32_model), recipe, forward_loop)


def _recipe_modules(model, recipe) -> set:
    """Module names the recipe quantizes (same rules as Recipe.entries: groups, then include, then exclude)."""
    from ..quantize.config import GROUPS

    names = _quantizable(model)
    quantized = set()
    for g in GROUPS:
        if g.name in recipe.quantized_groups:
            quantized |= {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in g.patterns)}
    quantized |= {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in recipe.include)}
    quantized -= {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in recipe.exclude)}
    return quantized


def sweep(fp32_model: torch.nn.Module, forward_loop: Callable, eval_cache: EvalCache, precision: str = "int8",
          calib_method: str = "max", groups: Optional[Sequence[SensitivityGroup]] = None, with_full: bool = True,
          log: Callable[[str], None] = lambda s: None, progress: bool = False) -> SensitivityReport:
    """Quantize each group alone and measure it against FP32 on ``eval_cache``'s images."""
    from ..quantize import make_recipe

    t_all = time.perf_counter()
    groups = list(groups) if groups is not None else sensitivity_groups(fp32_model)
    default = make_recipe(precision, calib_method)
    in_default = _recipe_modules(fp32_model, default)
    results: List[GroupResult] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(groups) + int(with_full), desc=f"sensitivity ({precision})", unit="group")
    full = None
    try:
        if with_full:
            t0 = time.perf_counter()
            stats = eval_cache.measure(_quantize_copy(fp32_model, default, forward_loop))
            full = _result("all (default recipe)", "all", None, len(in_default), stats, time.perf_counter() - t0)
            log(f"sensitivity: default recipe, {len(in_default)} modules: drop {full.drop:+.2f} points, "
                f"KL {full.kl_mean:.3g}")
            if bar is not None:
                bar.update(1)
        for g in groups:
            t0 = time.perf_counter()
            recipe = make_recipe(precision, calib_method, quantized_groups=(), include=g.patterns)
            stats = eval_cache.measure(_quantize_copy(fp32_model, recipe, forward_loop))
            r = _result(g.name, g.kind, g.level, len(g.modules), stats, time.perf_counter() - t0)
            r.in_recipe = bool(set(g.modules) & in_default)
            results.append(r)
            log(f"sensitivity: {g.name:<16} {len(g.modules):3d} modules: drop {r.drop:+.2f} points, "
                f"KL {r.kl_mean:.3g}")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    ref_top1 = None
    if eval_cache.labelled:
        ref_top1 = None if not results else _ref_top1(eval_cache)
    notes = []
    if eval_cache.images < 200:
        notes.append(f"{eval_cache.images} images: one image is {100.0 / eval_cache.images:.2f} points; rank by KL "
                     "where drops tie")
    return SensitivityReport(precision, calib_method, "top1_drop" if eval_cache.labelled else "top1_disagreement",
                             eval_cache.images, ref_top1, results, full, None, time.perf_counter() - t_all, notes)


def _ref_top1(cache: EvalCache) -> Optional[float]:
    correct = total = 0
    for (images, labels), ref in zip(cache._batches(), cache.ref_logits):
        if labels is None:
            return None
        correct += int((ref.argmax(-1) == labels).sum())
        total += ref.shape[0]
    return 100.0 * correct / max(total, 1)


def choose_exclusions(fp32_model: torch.nn.Module, recipe, forward_loop: Callable, eval_cache: EvalCache,
                      max_drop: float, sensitivity: Optional[SensitivityReport] = None,
                      log: Callable[[str], None] = lambda s: None) -> Tuple[object, dict]:
    """Keep the most sensitive groups of ``recipe`` in high precision until the measured drop is within
    ``max_drop`` points. Returns (recipe, record); ``record['met']`` says whether the budget holds."""
    from dataclasses import replace as dc_replace

    t0 = time.perf_counter()
    groups = sensitivity_groups(fp32_model)
    if sensitivity is None:
        sensitivity = sweep(fp32_model, forward_loop, eval_cache, recipe.precision, recipe.calib_method, groups,
                            with_full=False, log=log)
    by_name = {g.name: g for g in groups}
    steps = []

    def measure(r):
        res = _result("trial", "all", None, 0, eval_cache.measure(_quantize_copy(fp32_model, r, forward_loop)), 0.0)
        return res.drop, res.kl_mean

    drop, kl = measure(recipe)
    steps.append({"excluded": None, "drop": round(drop, 4), "kl_mean": float(f"{kl:.4g}")})
    log(f"max-drop: default recipe: drop {drop:+.2f} points (budget {max_drop:g})")
    excluded: List[str] = []
    quantized_now = _recipe_modules(fp32_model, recipe)
    for res in sensitivity.ranking():
        if drop <= max_drop + 1e-9:
            break
        g = by_name.get(res.group)
        if g is None or not set(g.modules) & quantized_now:
            continue  # already in high precision
        recipe = dc_replace(recipe, exclude=tuple(recipe.exclude) + tuple(g.patterns))
        quantized_now -= set(g.modules)
        excluded.append(g.name)
        drop, kl = measure(recipe)
        steps.append({"excluded": g.name, "patterns": list(g.patterns), "group_drop": round(res.drop, 4),
                      "group_kl": float(f"{res.kl_mean:.4g}"), "drop": round(drop, 4), "kl_mean": float(f"{kl:.4g}")})
        log(f"max-drop: keep {g.name} in high precision (alone it costs {res.drop:+.2f} points): "
            f"drop now {drop:+.2f}")
    met = drop <= max_drop + 1e-9
    record = {
        "by": "edgemv.validate.sensitivity.choose_exclusions",
        "max_drop": max_drop, "metric": sensitivity.metric, "images": eval_cache.images, "met": met,
        "final_drop": round(drop, 4), "excluded_groups": excluded, "exclude_patterns": list(recipe.exclude),
        "steps": steps, "sensitivity": sensitivity.as_dict(), "seconds": round(time.perf_counter() - t0, 2),
        "why": ("the groups whose quantization alone cost the most (drop, then KL) were kept in high precision, "
                "most sensitive first, until the whole model's measured drop held the budget"),
    }
    if not met:
        log(f"max-drop: budget {max_drop:g} not reached: {drop:+.2f} points with every quantized group tried")
    return recipe, record


def make_plan(max_drop: float, log: Callable[[str], None] = lambda s: None, device="cpu"):
    """A ``plan`` for ``edgemv.quantize.run_quantize``: the --max-drop search on the run's held-out images."""

    def plan(fp32_model, recipe, forward_loop, eval_batches):
        if eval_batches is None:
            log("max-drop: no held-out images to measure on; the default recipe is kept")
            return recipe, {"max_drop": max_drop, "met": None, "why": "no held-out images"}
        cache = EvalCache(fp32_model, eval_batches, device=device)
        return choose_exclusions(fp32_model, recipe, forward_loop, cache, max_drop, log=log)

    return plan


def sensitivity_for_run(run, data, limit: Optional[int] = None, seed: int = 0, batch_size: int = 32,
                        device="cpu", calib=None, precision: Optional[str] = None, calib_method: Optional[str] = None,
                        out_dir=None, max_drop: Optional[float] = None, progress: bool = True,
                        log: Callable[[str], None] = lambda s: None) -> Tuple[SensitivityReport, Dict[str, str]]:
    """The sweep for a quantize run: its FP32 model, its calibration images (or ``calib``), its precision and
    method (or the ones given), measured on ``data``. Writes sensitivity.json and sensitivity.png to ``out_dir``
    (default: the run folder). Returns (report, {'json': path, 'png': path})."""
    import os
    from pathlib import Path

    from ..data import ImageBatches, ImageSet, discover_images, eval_transform, make_forward_loop
    from ..errors import DataError
    from ..quantize import read_run_info, resolve_run
    from .plots import plot_sensitivity

    folder, _, _ = resolve_run(run)
    info = read_run_info(folder)
    fp32 = plain_fp32_model(folder, device=device)
    cfg = fp32.pretrained_cfg
    transform = eval_transform(cfg)
    precision = precision or info.get("precision", "int8")
    calib_method = calib_method or (info.get("recipe") or {}).get("calib_method", "max")
    if calib is not None:
        calib_set = discover_images(calib, seed=seed, limit=(info.get("calibration") or {}).get("selected"))
    else:
        files = [f for f in (info.get("calibration") or {}).get("files", []) if os.path.exists(f)]
        if not files:
            raise DataError(f"the calibration images of {folder} are gone; pass --calib")
        calib_set = ImageSet([(f, None) for f in files], None, "list", f"calibration images of {folder}")
    calib_batches = ImageBatches(calib_set, transform, batch_size=batch_size)
    forward_loop = make_forward_loop(calib_batches, device=device)
    if data is None:
        raise DataError("the sensitivity sweep needs held-out images: pass --data")
    eval_set = discover_images(data, seed=seed, limit=limit)
    log(f"sensitivity: {precision.upper()} ({calib_method}), calibration {len(calib_set.items)} images, "
        f"measured on {eval_set.describe()}")
    cache = EvalCache(fp32, ImageBatches(eval_set, transform, batch_size=batch_size), device=device)
    report = sweep(fp32, forward_loop, cache, precision, calib_method, log=log, progress=progress)
    report.data = str(eval_set.source)
    out_dir = Path(out_dir) if out_dir is not None else folder
    paths = {"json": report.write(out_dir / "sensitivity.json"),
             "png": plot_sensitivity(report, out_dir / "sensitivity.png", max_drop=max_drop)}
    return report, paths


def plain_fp32_model(run, device="cpu") -> torch.nn.Module:
    """The FP32 model of a run as a plain (never quantized) module, which ModelOpt can quantize afresh: the
    architecture rebuilt from quantize.json, the weights taken from the restored run."""
    from ..errors import EdgemvError
    from ..quantize import load_fp32_reference, rebuild_architecture

    restored = load_fp32_reference(run, device="cpu")
    model = rebuild_architecture(restored.run_info)  # BN folded when the run quantized the folded model
    source = restored.state_dict()
    target = model.state_dict()
    missing = [k for k in target if k not in source or source[k].shape != target[k].shape]
    if missing:
        raise EdgemvError(f"cannot rebuild the FP32 model of {run}: {len(missing)} weights differ "
                          f"(first: {missing[0]})")
    model.load_state_dict({k: source[k] for k in target})
    model.pretrained_cfg = restored.pretrained_cfg
    model.weights_info = restored.weights_info
    return model.to(device).eval()
