"""``edgemv quantize`` as one library call: model, data, FP32 reference, calibration, fidelity, run folder.

The CLI only connects options to ``run_quantize``; other stages (validate's ``--max-drop`` search) plug in through
``plan``: a callable that sees the FP32 model, the default recipe, the calibration loop and the held-out batches,
and returns the recipe to use with a record of why (see ``Plan``).
"""

import hashlib
import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..errors import DataError, EdgemvError
from .artifacts import check_out_dir, default_out_dir, write_run
from .config import Recipe, make_recipe
from .fidelity import Fidelity, collect_logits, compare_logits
from .fold import FOLD_RECORD_KEY, fold_batchnorm
from .model_quant import QuantizeError, QuantizerReport, quantize, quantizer_report

__all__ = ["run_quantize", "QuantizeResult", "Plan", "split_holdout", "fingerprint", "HOLDOUT_FRACTION",
           "DEFAULT_CALIB_SIZE", "DEFAULT_EVAL_SIZE", "check_device"]

HOLDOUT_FRACTION = 0.25  # of the calibration source, when no --eval set is given
DEFAULT_CALIB_SIZE = 512
DEFAULT_EVAL_SIZE = 256

# plan(fp32_model, recipe, forward_loop, eval_batches) -> (recipe, record dict for quantize.json)
Plan = Callable[[torch.nn.Module, Recipe, Callable, object], Tuple[Recipe, dict]]


@dataclass
class QuantizeResult:
    out_dir: Path
    info: dict
    sizes: Dict[str, int]
    report: QuantizerReport
    fidelity: Optional[Fidelity]
    model: torch.nn.Module = field(repr=False)
    seconds: float = 0.0


def check_device(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EdgemvError("--device cuda: no CUDA device is visible to PyTorch here (torch "
                          f"{torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
    if dev.type not in ("cpu", "cuda"):
        raise EdgemvError(f"unsupported device {device!r}; use cpu or cuda")
    return dev


def _rank_key(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{key}".encode("utf-8")).digest()


def _item_keys(image_set) -> List[str]:
    if image_set.kind == "tensor":
        return [str(i) for i in range(len(image_set.items))]
    base = image_set.source if os.path.isdir(image_set.source) else os.path.dirname(image_set.source)
    return [os.path.relpath(p, base).replace(os.sep, "/") for p, _ in image_set.items]


def _subset(image_set, keep: Sequence[int]):
    keep = sorted(keep)
    out = replace(image_set, items=[image_set.items[i] for i in keep])
    if image_set.indices is not None:
        out.indices = image_set.indices[keep]
    return out


def split_holdout(image_set, seed: int = 0, calib_size: Optional[int] = DEFAULT_CALIB_SIZE,
                  eval_size: int = DEFAULT_EVAL_SIZE, fraction: float = HOLDOUT_FRACTION):
    """Split one source deterministically into (calibration subset, held-out subset or None).

    Every item is ranked by sha256(seed, its path relative to the source); the first ``max(1, n * fraction)``
    (at most ``eval_size``) are held out for fidelity, the next ``calib_size`` calibrate. The split depends only
    on the seed and the file names, not on the machine. A source of one image has nothing to hold out.
    """
    n = len(image_set.items)
    keys = _item_keys(image_set)
    order = sorted(range(n), key=lambda i: _rank_key(seed, keys[i]))
    k = min(int(eval_size), max(1, int(n * fraction))) if n >= 2 else 0
    held, rest = order[:k], order[k:]
    if calib_size is not None:
        rest = rest[:int(calib_size)]
    return _subset(image_set, rest), (_subset(image_set, held) if held else None)


def _take(image_set, seed: int, limit: Optional[int]):
    if limit is None or len(image_set.items) <= int(limit):
        return image_set
    keys = _item_keys(image_set)
    return _subset(image_set, sorted(range(len(keys)), key=lambda i: _rank_key(seed, keys[i]))[:int(limit)])


def fingerprint(image_set, skipped: Sequence[str] = ()) -> str:
    """sha256 over the sorted (relative path, sha256 of the content) of the items used (skipped ones left out).
    Tensor sources: over the file's sha256 and the row indices used."""
    from ..models.weights import sha256_file

    digest = hashlib.sha256()
    skipped = set(skipped)
    if image_set.kind == "tensor":
        digest.update(sha256_file(image_set.source).encode())
        rows = [int(r) for (p, _), r in zip(image_set.items, image_set.indices) if p not in skipped]
        digest.update(",".join(map(str, rows)).encode())
        return digest.hexdigest()
    keys = _item_keys(image_set)
    for key, (path, _) in sorted(zip(keys, image_set.items)):
        if path in skipped:
            continue
        digest.update(f"{key}\0{sha256_file(path)}\n".encode("utf-8"))
    return digest.hexdigest()


def _versions() -> dict:
    from .. import __version__

    try:
        import modelopt

        mo = modelopt.__version__
    except Exception:  # noqa: BLE001
        mo = None
    return {"edgemv": __version__, "torch": torch.__version__, "modelopt": mo,
            "python": platform.python_version()}


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def _model_overrides(model) -> dict:
    overrides = dict(getattr(model, "create_overrides", None) or {})
    spec = getattr(model, "variant", None)
    if spec is not None and getattr(model, "num_classes", None) not in (None, spec.arch.num_classes):
        overrides.setdefault("num_classes", model.num_classes)
    return overrides


def _input_size(value) -> tuple:
    """N, (H, W) or (3, H, W) -> (3, H, W)."""
    if isinstance(value, int):
        return (3, value, value)
    value = tuple(int(v) for v in value)
    return value if len(value) == 3 else (3,) + value


def _log_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_quantize(variant: str = "t", weights="official", precision: str = "int8", calib=None,
                 calib_size: Optional[int] = DEFAULT_CALIB_SIZE, calib_method: str = "max", batch_size: int = 32,
                 device: str = "cpu", out=None, seed: int = 0, include: Sequence[str] = (),
                 exclude: Sequence[str] = (), force: bool = False, eval_data=None,
                 eval_size: int = DEFAULT_EVAL_SIZE, input_size=None, model: Optional[torch.nn.Module] = None,
                 recipe: Optional[Recipe] = None, plan: Optional[Plan] = None, progress: bool = True,
                 log: Callable[[str], None] = _log_default, command: Optional[str] = None,
                 fold_bn: Optional[bool] = None, conv_output: bool = False) -> QuantizeResult:
    """Quantize a MambaVision model and write a run folder.

    Args:
        variant, weights: what ``create_model`` builds (ignored when ``model`` is given).
        precision: 'int8' or 'fp8'. calib_method: 'max', 'entropy' or 'percentile'.
        calib: calibration source (folder, ImageFolder tree, .txt/.csv list, .npy/.npz); default the shipped
            ``calib/``. calib_size: at most this many calibration images (a seeded subset).
        eval_data: a separate held-out source for fidelity; without it a deterministic share of ``calib`` is
            held out and never used for calibration.
        out: the run folder (default ``edgemv-out/<variant>-<precision>``); an existing run needs ``force``.
        include / exclude: fnmatch patterns over module names that switch quantization on / off.
        input_size: the transform's resolution (default the variant's).
        model: an already built model (e.g. trained in a test) instead of ``variant``/``weights``.
        recipe: a full recipe instead of precision/calib_method/include/exclude.
        plan: hook that may change the recipe after seeing the FP32 model and data (``--max-drop``).
        fold_bn: fold the convs' BatchNorms into them first (``edgemv.quantize.fold``; recorded in quantize.json,
            the loaders fold the rebuilt model the same way). The FP32 reference is then the folded model.
            Default (None): INT8 only, where weights are quantized per channel; FP8's per-tensor weight scale
            measured worse on folded weights (docs/quantize.md, "BatchNorm folding").
        conv_output: quantize the convs' outputs too (``make_recipe(conv_output=True)``: ONNX Runtime's CPU then
            builds QLinearConv; docs/quantize.md). Ignored when ``recipe`` is given.
    """
    from ..data import ImageBatches, default_calib_dir, discover_images, eval_transform, make_forward_loop

    t_start = time.perf_counter()
    times: Dict[str, float] = {}
    dev = check_device(device)
    if calib_size is not None and int(calib_size) <= 0:
        raise DataError(f"--calib-size must be at least 1, got {calib_size}")
    try:
        recipe = recipe or make_recipe(precision, calib_method, include=include, exclude=exclude,
                                       conv_output=conv_output)
    except ValueError as exc:
        raise QuantizeError(str(exc)) from None
    torch.manual_seed(seed)

    # 1. model
    t0 = time.perf_counter()
    if model is None:
        from ..models import create_model

        model = create_model(variant, weights=weights)
    model = model.eval().to(dev)
    if fold_bn is None:
        fold_bn = recipe.precision == "int8"
    folded = fold_batchnorm(model) if fold_bn else []
    spec = model.variant
    out_dir = Path(out) if out is not None else default_out_dir(spec.name, recipe.precision)
    check_out_dir(out_dir, force)  # fail before minutes of calibration, not after
    weights_info = model.weights_info
    n_params = sum(p.numel() for p in model.parameters())
    times["model"] = time.perf_counter() - t0
    wdesc = "random weights" if weights_info.is_random else f"weights {weights_info.path}"
    log(f"quantize: model {spec.name} ({n_params / 1e6:.2f}M params, {wdesc}) on {dev}  {times['model']:.1f}s")
    if folded:
        log(f"quantize: BatchNorm folded into {len(folded)} convs (the deployment form; final norm kept)")

    # 2. data
    t0 = time.perf_counter()
    calib_path = Path(calib) if calib is not None else default_calib_dir()
    source = discover_images(calib_path)
    if eval_data is not None:
        calib_set = _take(source, seed, calib_size)
        eval_set = _take(discover_images(eval_data), seed, eval_size)
        split_note = f"separate set {eval_set.source}"
    else:
        calib_set, eval_set = split_holdout(source, seed, calib_size, eval_size)
        split_note = (f"{len(eval_set.items)} of the {len(source.items)} images of the calibration source, held out "
                      f"by a seeded hash of their names and not used for calibration" if eval_set else
                      "none: the calibration source has a single image")
    if not calib_set.items:
        raise DataError(f"no images left for calibration in {source.source}")
    size = _input_size(input_size) if input_size is not None else tuple(model.pretrained_cfg.input_size)
    transform = eval_transform(model.pretrained_cfg, input_size=input_size)
    times["data"] = time.perf_counter() - t0
    log(f"quantize: calibration {len(calib_set.items)} images from {source.source}; fidelity on "
        f"{len(eval_set.items) if eval_set else 0} held-out images; input {tuple(size)}")
    if eval_set is not None and len(eval_set.items) < 50:
        log(f"quantize: note: fidelity on {len(eval_set.items)} images is a smoke test, not a measurement; "
            "pass --eval with a few hundred images of your own domain")

    # 3. FP32 reference logits on the held-out images
    t0 = time.perf_counter()
    eval_batches = None
    ref_logits = torch.empty(0)
    if eval_set is not None:
        eval_batches = ImageBatches(eval_set, transform, batch_size=batch_size, progress=progress,
                                    desc="fp32 reference")
        ref_logits, _ = collect_logits(model, eval_batches, dev)
        eval_skipped = list(eval_batches.skipped)
    else:
        eval_skipped = []
    times["fp32_reference"] = time.perf_counter() - t0

    # 4. plan (hook), then calibrate with ModelOpt
    calib_batches = ImageBatches(calib_set, transform, batch_size=batch_size, progress=progress,
                                 desc=f"calibrating ({recipe.calib_method})")
    forward_loop = make_forward_loop(calib_batches, device=dev)
    plan_record = None
    if plan is not None:
        t0 = time.perf_counter()
        recipe, plan_record = plan(model, recipe, forward_loop, eval_batches)
        times["plan"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = quantize(model, recipe, forward_loop)
    times["calibrate"] = time.perf_counter() - t0
    report = quantizer_report(model)
    calib_summary = calib_batches.summary()
    log(f"quantize: {recipe.precision.upper()} ({recipe.calib_method}) on {len(report.quantized)} modules, "
        f"{len(report.high_precision)} kept in high precision; calibrated on {calib_summary['used']} images"
        f" ({calib_summary['skipped']} skipped)  {times['calibrate']:.1f}s")
    for path, reason in calib_batches.skipped:
        log(f"quantize: skipped {path}: {reason}")

    # 5. fidelity against FP32
    t0 = time.perf_counter()
    fidelity = None
    if eval_batches is not None and ref_logits.numel():
        eval_batches.progress, eval_batches.desc = progress, f"evaluating {recipe.precision}"
        q_logits, _ = collect_logits(model, eval_batches, dev)
        fidelity = compare_logits(ref_logits, q_logits)
    times["fidelity"] = time.perf_counter() - t0
    if fidelity is not None:
        log(f"quantize: fidelity vs FP32 on {fidelity.images} held-out images: top-1 agreement "
            f"{fidelity.top1_agreement * 100:.1f}%, logit cosine {fidelity.cosine_mean:.4f}, "
            f"KL {fidelity.kl_mean:.4g}  {times['fidelity']:.1f}s")

    # 6. write the run folder
    info = {
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {"variant": spec.name, "overrides": _model_overrides(model),
                  "input_size": list(size), "params": n_params},
        "weights": {"source": weights_info.source, "path": weights_info.path, "sha256": weights_info.sha256,
                    "random": weights_info.is_random},
        "precision": recipe.precision,
        "recipe": recipe.as_dict(),
        FOLD_RECORD_KEY: {"enabled": bool(fold_bn), "pairs": [list(p) for p in folded]},
        "calibration": {
            "source": str(source.source), "kind": source.kind, "source_images": len(source.items),
            "selected": len(calib_set.items), "used": calib_summary["used"],
            "skipped": calib_summary["skipped_files"], "method": recipe.calib_method,
            "batch_size": batch_size, "seed": seed,
            "sha256": fingerprint(calib_set, [p for p, _ in calib_batches.skipped]),
            "files": [p for p, _ in calib_set.items if p not in {s for s, _ in calib_batches.skipped}],
        },
        "fidelity": {
            "held_out": split_note,
            "source": str(eval_set.source) if eval_set is not None else None,
            "images": fidelity.images if fidelity else 0,
            "skipped": [{"path": p, "reason": r} for p, r in eval_skipped],
            "files": [p for p, _ in eval_set.items] if eval_set is not None else [],
            "metrics": fidelity.as_dict() if fidelity else None,
            "note": None if fidelity is None or fidelity.images >= 50 else
            f"only {fidelity.images} held-out images: a smoke test, not an accuracy measurement",
        },
        "quantizers": report.as_dict(),
        "plan": plan_record,
        "deployment": {"fp8": "FP8 engines need compute capability sm_89 or newer (Ada, Hopper, Blackwell): "
                              "Jetson Orin (sm_87) cannot run them; FP8 here is calibrated and evaluated by "
                              "fake quantization"} if recipe.precision == "fp8" else None,
        "device": _device_name(dev),
        "versions": _versions(),
        "seconds": {k: round(v, 3) for k, v in times.items()},
    }
    t0 = time.perf_counter()
    model_cpu = model.to("cpu")
    info["seconds"]["total"] = round(time.perf_counter() - t_start, 3)
    sizes = write_run(out_dir, model_cpu, info, force=force)
    times["save"] = time.perf_counter() - t0
    return QuantizeResult(out_dir=out_dir.resolve(), info=info, sizes=sizes, report=report, fidelity=fidelity,
                          model=model_cpu, seconds=time.perf_counter() - t_start)
