"""Compare a model edgemv produced with its FP32 reference on the same images: the library call behind
`edgemv validate`.

What can be validated (``resolve_models``):

- a quantize run folder (``quantize.json`` + ``model.pth``) or its ``model.pth``: the ModelOpt fake-quantized
  model against the same run with every quantizer off (the FP32 source, recovered from the run alone);
- an ONNX file, run by ONNX Runtime (FP8 graphs with TensorRT's custom Q/DQ nodes are mapped to standard opset-19
  Q/DQ first, and the plugin form's ``edgemv:SelectiveScan`` nodes replaced by their specification in standard
  ops); its reference is the run folder it sits in, or ``reference``;
- a TensorRT engine (``.engine``/``.plan``/``.trt``) when the ``tensorrt`` package is importable; reference as
  for ONNX;
- a whole pickled ``nn.Module`` (``torch.save(model)``, e.g. a pruned model) or a checkpoint file for
  ``variant``: then ``reference`` (a run folder, a module file or a checkpoint) or ``variant``/``weights`` names
  the FP32 model.

Both models see the same transformed images, batch by batch; nothing but a few numbers per image is kept.
"""

import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import DataError, EdgemvError
from .distributed import DistContext, broadcast_from_rank0, gather_to_rank0, shard_indices
from .metrics import ImageStats, accuracy_drop_points, compare_batch
from .report import Budget, DataInfo, ModelInfo, ValidationReport

__all__ = ["ValidateError", "Models", "TorchPredictor", "ArrayPredictor", "resolve_models", "evaluate_pair",
           "validate", "EvalResult", "budget_for", "RUN_INFO_FILE"]

RUN_INFO_FILE = "quantize.json"
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


class ValidateError(EdgemvError):
    """A model or reference that cannot be compared as asked."""


# ----------------------------------------------------------------------------------------------- predictors

class TorchPredictor:
    """A PyTorch module as images -> logits (float32, on the CPU)."""

    def __init__(self, model: torch.nn.Module, device="cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.to(self.device, self.dtype)).float().cpu()


class ArrayPredictor:
    """A numpy runner (ONNX Runtime, TensorRT) as images -> logits."""

    def __init__(self, runner):
        self.runner = runner

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.runner(images.cpu().numpy()), dtype=np.float32))


@dataclass
class Models:
    candidate: Callable[[torch.Tensor], torch.Tensor]
    reference: Callable[[torch.Tensor], torch.Tensor]
    candidate_info: ModelInfo
    reference_info: ModelInfo
    pretrained_cfg: object  # what the evaluation transform reads (input size, crop, mean/std)
    run_dir: Optional[Path] = None
    run_info: Optional[dict] = None
    notes: List[str] = field(default_factory=list)


def _fp32_from(spec: Optional[str], variant: Optional[str], weights: Optional[str], device,
               trust_pickle: bool = False) -> Tuple:
    """(module, ModelInfo) of an FP32 reference: a run folder (or its model.pth / quantize.json), a whole-module
    file, a checkpoint, or variant/weights."""
    from ..models import create_model
    from ..models.pickled import load_whole_module

    if spec is not None:
        path = Path(spec).expanduser()
        if not path.exists():
            raise ValidateError(f"--reference {spec}: no such file or folder")
        if path.suffix.lower() == ".onnx" or path.suffix.lower() in ENGINE_SUFFIXES:
            raise ValidateError(f"--reference {spec}: the FP32 reference runs in PyTorch; pass a run folder, a whole "
                                "pickled model or a checkpoint with --variant (an ONNX file or engine can be the "
                                "model validated, not its reference)")
        from ..quantize import run_folder_of

        run = run_folder_of(path)
        if run is not None:
            from ..quantize import load_fp32_reference

            model = load_fp32_reference(run, device="cpu")
            return model, ModelInfo(f"FP32 of run {run} (quantizers off)", "torch", str(run), "fp32",
                                    f"pytorch {device}", model.variant.name)
        module = load_whole_module(path, trust_pickle)
        if module is not None:
            name = getattr(getattr(module, "variant", None), "name", None)
            return module, ModelInfo(f"module {path.name}", "torch", str(path), "fp32", f"pytorch {device}", name)
        weights = str(path)
    if variant is None:
        raise ValidateError("the FP32 reference is unknown: pass --reference (a run folder, a model or a checkpoint) "
                            "or --variant with --weights")
    model = create_model(variant, weights=weights or "official")
    return model, ModelInfo(f"FP32 {model.variant.name}, weights {model.weights_info.source}", "torch",
                            getattr(model.weights_info, "path", None), "fp32", f"pytorch {device}", model.variant.name)


def _onnx_runner(path: Path, device: str, notes: List[str]):
    """An OnnxRunner for ``path``, on a rewritten copy where ONNX Runtime cannot run the file as it is: TensorRT's FP8
    Q/DQ nodes become standard ones, and SelectiveScan plugin nodes their specification in standard ops."""
    from ..runtime import OnnxRunner

    try:
        import onnx
    except ImportError:
        return OnnxRunner(path, device=device)
    from ..ops.onnx_forms import is_scan_node

    proto = onnx.load(str(path), load_external_data=False)
    fp8 = any(n.domain == "trt" and n.op_type.startswith("TRT_FP8") for n in proto.graph.node)
    plugin = any(is_scan_node(n) for n in proto.graph.node)
    if not (fp8 or plugin):
        return OnnxRunner(path, device=device)
    from ..export.checks import fp8_to_standard_qdq, ort_loadable

    proto = onnx.load(str(path))
    if fp8:
        proto = fp8_to_standard_qdq(proto)
        notes.append("FP8 graph: TensorRT's TRT_FP8QuantizeLinear/DequantizeLinear mapped to standard "
                     "opset-19 Q/DQ (FLOAT8E4M3FN) for ONNX Runtime")
    if plugin:
        from ..export.plugin_reference import expand_scan_nodes

        proto = expand_scan_nodes(proto)
        notes.append("plugin-form graph: each edgemv:SelectiveScan node runs as its specification in standard ONNX "
                     "ops (a float32 Scan over L; edgemv.export.plugin_reference), not as the plugin's kernels")
    with ort_loadable(proto) as source:
        return OnnxRunner(source, device=device, name=path.name)


def resolve_models(target, reference: Optional[str] = None, variant: Optional[str] = None,
                   weights: Optional[str] = None, device: str = "cpu", plugins: Sequence[str] = (),
                   trust_pickle: bool = False) -> Models:
    """Build the candidate and its FP32 reference from the CLI's RUN_OR_MODEL (see the module docstring).
    ``trust_pickle``: unpickle whole models saved with torch.save(model) (runs code stored in the file)."""
    from ..models.pickled import load_whole_module
    from ..quantize import run_folder_holding, run_folder_of

    path = Path(str(target)).expanduser()
    if not path.exists():
        raise ValidateError(f"{target}: no such run folder or model file")
    notes: List[str] = []
    run_itself = run_folder_of(path)  # the run's folder, model.pth or quantize.json: its PyTorch model
    run = run_itself or run_folder_holding(path)  # or another file lying in a run folder (an ONNX export, an engine)
    suffix = path.suffix.lower()
    if path.is_dir() and run is None:
        raise ValidateError(f"{path} is a folder without {RUN_INFO_FILE}: not a run folder from `edgemv quantize`")

    if run_itself is not None:
        from ..quantize import load_quantized, read_run_info

        info = read_run_info(run)
        cand = load_quantized(run, device="cpu")
        precision = info.get("precision")
        cinfo = ModelInfo(f"{str(precision).upper()} run {run} (ModelOpt fake quantization)", "torch-quantized",
                          str(run), precision, f"pytorch {device}", cand.variant.name)
        if reference is None and variant is None:
            from ..quantize import load_fp32_reference

            ref = load_fp32_reference(run, device="cpu")
            rinfo = ModelInfo(f"FP32 of run {run} (quantizers off)", "torch", str(run), "fp32", f"pytorch {device}",
                              ref.variant.name)
        else:
            ref, rinfo = _fp32_from(reference, variant, weights, device, trust_pickle)
        return Models(TorchPredictor(cand, device), TorchPredictor(ref, device), cinfo, rinfo, cand.pretrained_cfg,
                      run, info, notes)

    # candidates that are not a run's PyTorch model need an FP32 reference from somewhere
    if reference is None and variant is None and run is not None:
        reference = str(run)
    ref_model, rinfo = _fp32_from(reference, variant, weights, device, trust_pickle)
    cfg = getattr(ref_model, "pretrained_cfg", None)
    info = None
    if run is not None:
        from ..quantize import read_run_info

        info = read_run_info(run)
    precision = (info or {}).get("precision")
    if suffix == ".onnx":
        runner = _onnx_runner(path, device, notes)
        cand = ArrayPredictor(runner)
        cinfo = ModelInfo(f"ONNX {path.name} (ONNX Runtime {', '.join(runner.providers[:1])})", "onnx", str(path),
                          precision, "onnxruntime " + runner.providers[0])
        cfg = _match_input_size(cfg, runner.input_hw, notes)
    elif suffix in ENGINE_SUFFIXES:
        from ..runtime import TensorRTRunner

        runner = TensorRTRunner(path, plugins=plugins)
        cand = ArrayPredictor(runner)
        cinfo = ModelInfo(f"TensorRT engine {path.name}", "tensorrt", str(path), precision,
                          f"tensorrt {runner.trt.__version__}")
        cfg = _match_input_size(cfg, runner.input_hw, notes)
    else:
        module = load_whole_module(path, trust_pickle)
        if module is None:
            from ..models import create_model

            if variant is None:
                raise ValidateError(f"{path}: not a run, an ONNX file, an engine or a whole pickled module; "
                                    "for a checkpoint pass --variant")
            module = create_model(variant, weights=str(path))
        cand = TorchPredictor(module, device)
        cinfo = ModelInfo(f"PyTorch module {path.name}", "torch", str(path), precision, f"pytorch {device}",
                          getattr(getattr(module, "variant", None), "name", None))
        cfg = getattr(module, "pretrained_cfg", cfg)
    if cfg is None:
        raise ValidateError("cannot tell the input size and normalisation: the reference has no pretrained_cfg")
    return Models(cand, TorchPredictor(ref_model, device), cinfo, rinfo, cfg, run, info, notes)


def _match_input_size(cfg, hw, notes: List[str]):
    if cfg is None or hw is None:
        return cfg
    if tuple(cfg.input_size[1:]) != tuple(hw):
        notes.append(f"the graph's fixed input {tuple(hw)} differs from the model's {tuple(cfg.input_size[1:])}: "
                     "images are resized for the graph")
        return replace(cfg, input_size=(3,) + tuple(hw))
    return cfg


# ----------------------------------------------------------------------------------------------- data

def _label_space(image_set) -> Optional[str]:
    if not image_set.labelled or not image_set.classes:
        return None
    from ..data import imagenet_synsets

    classes = list(image_set.classes)
    if len(classes) == 1000 and classes == list(imagenet_synsets()):
        return "imagenet synsets"
    if all(c.isdigit() for c in classes):
        return "class indices"
    return "sorted folder names"


def _run_held_out(run_info: dict, run_dir: Path):
    """The held-out images a quantize run measured fidelity on (unlabelled)."""
    from ..data import ImageSet

    files = ((run_info or {}).get("fidelity") or {}).get("files") or []
    files = [f for f in files if os.path.exists(f)]
    if not files:
        return None
    return ImageSet([(f, None) for f in files], None, "list", f"held-out images of run {run_dir}", total=len(files))


def _subset(image_set, keep: Sequence[int]):
    out = replace(image_set, items=[image_set.items[i] for i in keep])
    if image_set.indices is not None:
        out.indices = image_set.indices[list(keep)]
    return out


# ----------------------------------------------------------------------------------------------- evaluation

@dataclass
class EvalResult:
    """Merged on rank 0 (other ranks hold None in ``stats``)."""

    stats: Optional[ImageStats]
    seen: int
    used: int
    skipped: List[Tuple[str, str]]


def evaluate_pair(candidate: Callable, reference: Callable, image_set, transform, batch_size: int = 32,
                  progress: bool = False, ctx: Optional[DistContext] = None,
                  on_batch: Optional[Callable[[torch.Tensor], None]] = None) -> EvalResult:
    """Run both models over ``image_set`` (this rank's share when distributed) and merge on rank 0."""
    from ..data import ImageBatches

    ctx = ctx or DistContext()
    mine = shard_indices(len(image_set.items), batch_size, ctx)
    stats = ImageStats()
    seen = used = 0
    skipped: List[Tuple[str, str]] = []
    error = None
    if mine:
        sub = _subset(image_set, mine)
        batches = ImageBatches(sub, transform, batch_size=batch_size, progress=progress and ctx.is_main,
                               desc="validating" + (f" (rank 0 of {ctx.world_size})" if ctx.enabled else ""))
        pointer = 0
        try:
            for images, labels, paths in batches:
                if on_batch is not None:
                    on_batch(images)
                idx = []
                for p in paths:  # walk the shard in order: the skipped files are the ones passed over
                    while sub.items[pointer][0] != p:
                        pointer += 1
                    idx.append(mine[pointer])
                    pointer += 1
                ref, cand = reference(images), candidate(images)
                if labels is not None and int(labels.max()) >= ref.shape[-1]:
                    raise DataError(f"label {int(labels.max())} is outside the model's {ref.shape[-1]} classes "
                                    f"(folder names must be ImageNet synsets or class indices the model knows)")
                stats.add(compare_batch(ref, cand, labels, idx))
        except DataError as exc:
            if not ctx.enabled:
                raise
            error = str(exc)  # raised on rank 0 after the gather, so no rank hangs waiting for another
        seen, used, skipped = batches.seen, batches.used, list(batches.skipped)
    parts = gather_to_rank0({"state": stats.state(), "seen": seen, "used": used, "skipped": skipped,
                             "error": error}, ctx)
    if not ctx.is_main:
        return EvalResult(None, seen, used, skipped)
    errors = [p["error"] for p in parts if p["error"] and p["used"] == 0 and "could be used" not in p["error"]]
    if errors:
        raise DataError(errors[0])
    merged = ImageStats.merge([p["state"] for p in parts])
    all_skipped = sorted((s for p in parts for s in p["skipped"]), key=lambda s: s[0])
    total_seen, total_used = sum(p["seen"] for p in parts), sum(p["used"] for p in parts)
    if total_used == 0:
        first = f" (first: {all_skipped[0][0]}: {all_skipped[0][1]})" if all_skipped else ""
        raise DataError(f"none of the {total_seen} images in {image_set.source} could be used{first}")
    return EvalResult(merged, total_seen, total_used, all_skipped)


def budget_for(stats: ImageStats, max_drop: Optional[float]) -> Tuple[Budget, Optional[Dict[str, float]]]:
    """The gated number: top-1 drop with labels, top-1 disagreement without (both in percentage points)."""
    ra, ca = stats.accuracy("ref"), stats.accuracy("cand")
    if ra is not None:
        drop = accuracy_drop_points(ra, ca)
        value, metric = drop["top1"], "top1_drop"
    else:
        drop = None
        value, metric = 100.0 - stats.agreement().top1, "top1_disagreement"
    passed = max_drop is None or value <= max_drop + 1e-9
    return Budget(metric, value, max_drop, passed), drop


def _versions() -> Dict[str, Optional[str]]:
    from .. import __version__

    out = {"edgemv": __version__, "torch": torch.__version__, "python": platform.python_version()}
    for name in ("modelopt", "onnxruntime", "tensorrt"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", None)
    return out


def validate(target, data=None, max_drop: Optional[float] = 0.5, batch_size: int = 32, device: str = "cpu",
             limit: Optional[int] = None, seed: int = 0, reference: Optional[str] = None,
             variant: Optional[str] = None, weights: Optional[str] = None, progress: bool = True,
             ctx: Optional[DistContext] = None, log: Callable[[str], None] = lambda s: None,
             command: Optional[str] = None, models: Optional[Models] = None,
             on_batch: Optional[Callable] = None, trust_pickle: bool = False,
             plugins: Sequence[str] = ()) -> Optional[ValidationReport]:
    """Compare ``target`` with its FP32 reference on ``data`` and judge the drop against ``max_drop``.

    ``plugins``: TensorRT plugin libraries an engine needs (the SelectiveScan one from `edgemv plugin`), loaded
    before it is deserialized.

    Returns the report on rank 0; other ranks of a data-parallel run get the same report broadcast (so every rank
    can exit with the same status).
    """
    from ..data import discover_images, eval_transform
    from ..quantize.pipeline import check_device

    ctx = ctx or DistContext()
    check_device(device)
    if ctx.enabled and device == "cuda":
        device = f"cuda:{ctx.local_rank}"
    t0 = time.perf_counter()
    if models is None:
        import warnings

        with warnings.catch_warnings():  # ModelOpt's note about tensor parallelism, once per module class
            warnings.filterwarnings("ignore", message=".*no parallel_state is set.*")
            models = resolve_models(target, reference, variant, weights, device, plugins=plugins,
                                    trust_pickle=trust_pickle)
    seconds = {"load": time.perf_counter() - t0}
    if data is not None:
        image_set = discover_images(data, seed=seed, limit=limit)
    else:
        image_set = _run_held_out(models.run_info, models.run_dir) if models.run_dir is not None else None
        if image_set is None:
            raise DataError("no images to validate on: pass --data (an ImageFolder tree, a CSV path,label, a folder)")
        if limit is not None and limit < len(image_set.items):
            image_set = _subset(image_set, range(int(limit)))
        models.notes.append("no --data: the run's own held-out images (unlabelled), so only agreement is measured")
    transform = eval_transform(models.pretrained_cfg)
    if ctx.is_main:
        log(f"validate: {models.candidate_info.description}")
        log(f"validate: against {models.reference_info.description}")
        log(f"validate: {image_set.describe()}"
            + (", labelled" if image_set.labelled else ", no labels: agreement with FP32 only")
            + (f"; {ctx.world_size} processes ({ctx.backend})" if ctx.enabled else ""))
    t0 = time.perf_counter()
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no parallel_state is set.*")
        result = evaluate_pair(models.candidate, models.reference, image_set, transform, batch_size, progress, ctx,
                               on_batch=on_batch)
    seconds["evaluate"] = time.perf_counter() - t0
    report = None
    if ctx.is_main:
        stats = result.stats
        budget, drop = budget_for(stats, max_drop)
        notes = list(models.notes)
        space = _label_space(image_set)
        if space == "sorted folder names":
            notes.append("class folders are neither ImageNet synsets nor class indices: labels are positions in the "
                         "sorted folder names, right only if the model was trained with that order")
        if stats.images < 200:
            notes.append(f"{stats.images} images: one image is {100.0 / stats.images:.2f} points; "
                         "use a few thousand for a decision")
        report = ValidationReport(
            candidate=models.candidate_info, reference=models.reference_info,
            data=DataInfo(source=str(image_set.source), kind=image_set.kind, labelled=stats.labelled,
                          selected=len(image_set.items), used=result.used,
                          skipped=[{"path": p, "reason": r} for p, r in result.skipped],
                          input_size=list(models.pretrained_cfg.input_size), limit=limit, seed=seed,
                          label_space=space),
            agreement=stats.agreement(), budget=budget, reference_accuracy=stats.accuracy("ref"),
            candidate_accuracy=stats.accuracy("cand"), drop=drop, world_size=ctx.world_size, device=str(device),
            seconds=seconds, versions=_versions(), notes=notes, command=command,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
    return broadcast_from_rank0(report, ctx)
