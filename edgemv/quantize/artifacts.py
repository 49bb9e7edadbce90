"""Run folders: written atomically, read back by ``load_quantized`` and ``load_fp32_reference``.

A run folder (default ``edgemv-out/<variant>-<precision>/``) holds

- ``model.pth``: the quantized model, saved with ModelOpt's ``mto.save`` (architecture state of the quantizers,
  their calibrated ranges, and the weights, FP32),
- ``quantize.json``: what was done and how well it went (``RUN_SCHEMA``).

The weights inside ``model.pth`` are the FP32 weights of the source model, so the FP32 reference is recovered
from the run alone: restore, then switch every quantizer off.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

import torch

from ..atomic import creation_mode
from ..errors import EdgemvError
from .fold import FOLD_RECORD_KEY

__all__ = ["RunFolderError", "MODEL_FILE", "INFO_FILE", "RUN_SCHEMA", "write_run", "read_run_info",
           "load_quantized", "load_fp32_reference", "rebuild_architecture", "resolve_run", "run_folder_of",
           "run_folder_holding", "default_out_dir", "check_out_dir"]

MODEL_FILE = "model.pth"
INFO_FILE = "quantize.json"
RUN_SCHEMA = "edgemv.quantize/1"


class RunFolderError(EdgemvError):
    """A run folder that cannot be written (exists) or read (missing files, not a run)."""


def default_out_dir(variant: str, precision: str) -> Path:
    return Path("edgemv-out") / f"{variant}-{precision}"


def _is_run_folder(path: Path) -> bool:
    return (path / INFO_FILE).is_file()


def check_out_dir(out_dir: Union[str, Path], force: bool = False) -> Path:
    """The resolved run folder, if it may be written: absent, empty, or an existing run with ``force``."""
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists():
        if not out_dir.is_dir():
            raise RunFolderError(f"{out_dir} exists and is not a folder")
        empty = not any(out_dir.iterdir())
        if not empty and not _is_run_folder(out_dir):
            raise RunFolderError(f"{out_dir} is not empty and is not an edgemv run folder; refusing to write there")
        if not empty and not force:
            raise RunFolderError(f"{out_dir} already holds a run; pass --force to replace it or --out another folder")
    return out_dir


def write_run(out_dir: Union[str, Path], model: torch.nn.Module, info: dict, force: bool = False) -> dict:
    """Save ``model`` (``mto.save``) and ``info`` (``quantize.json``) into ``out_dir`` atomically.

    The folder is built as a hidden temporary sibling and renamed into place, so a crash never leaves a half
    run. An existing run is replaced only with ``force``; a non-empty folder that is not a run is never deleted.
    Returns ``{file name: size in bytes}``.
    """
    import modelopt.torch.opt as mto

    out_dir = check_out_dir(out_dir, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        tmp.chmod(creation_mode(0o777))  # mkdtemp makes it 0700
        mto.save(model, str(tmp / MODEL_FILE))
        info = {**info, "schema": RUN_SCHEMA, "files": {"model": MODEL_FILE}}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, default=str) + "\n")
        sizes = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
        if out_dir.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, trash / out_dir.name)
            os.replace(tmp, out_dir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sizes


def run_folder_holding(path: Union[str, Path]) -> Optional[Path]:
    """The run folder ``path`` is or lies in (any file of it, an exported ONNX file too); None when there is none."""
    path = Path(path).expanduser()
    folder = path if path.is_dir() else path.parent
    return folder if _is_run_folder(folder) else None


def run_folder_of(path: Union[str, Path]) -> Optional[Path]:
    """The run folder ``path`` names: the folder itself, its ``model.pth`` or its ``quantize.json`` (the run's
    record stands for it); None for anything else, such as another file lying in a run folder."""
    folder = run_folder_holding(path)
    path = Path(path).expanduser()
    return folder if folder is not None and (path.is_dir() or path.name in (MODEL_FILE, INFO_FILE)) else None


def resolve_run(path: Union[str, Path]):
    """(run folder, model file, info file) for a run folder, its ``model.pth`` or its ``quantize.json``."""
    path = Path(path).expanduser()
    if path.is_file() and path.name == INFO_FILE:
        path = path.parent
    if path.is_dir():
        folder, model_file = path, path / MODEL_FILE
    elif path.is_file():
        folder, model_file = path.parent, path
    else:
        raise RunFolderError(f"no such run folder or file: {path}")
    info_file = folder / INFO_FILE
    if not info_file.is_file():
        raise RunFolderError(f"{folder} is not an edgemv quantize run: {INFO_FILE} is missing")
    if not model_file.is_file():
        raise RunFolderError(f"{folder} is an incomplete run: {model_file.name} is missing")
    return folder, model_file, info_file


def read_run_info(path: Union[str, Path]) -> dict:
    """The ``quantize.json`` of a run (folder or model file)."""
    _, _, info_file = resolve_run(path)
    try:
        return json.loads(info_file.read_text())
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"cannot read {info_file}: {exc}") from exc


def rebuild_architecture(info: dict) -> torch.nn.Module:
    """The plain (unquantized) model a run's ``quantize.json`` describes, with random weights: the variant with its
    overrides, BatchNorm folded when the run folded it. ``mto.restore`` (or a state dict) fills in the weights."""
    from ..models import create_model

    model_info = info.get("model") or {}
    variant = model_info.get("variant")
    if not variant:
        raise RunFolderError("quantize.json names no variant")
    model = create_model(variant, weights="random", **(model_info.get("overrides") or {}))
    if (info.get(FOLD_RECORD_KEY) or {}).get("enabled"):  # the saved model's structure: convs with BN folded in
        from .fold import fold_batchnorm

        fold_batchnorm(model.eval())
    return model


def load_quantized(path: Union[str, Path], device: Optional[Union[str, torch.device]] = "cpu") -> torch.nn.Module:
    """The quantized model of a run (folder or its model file), in eval mode.

    The architecture is rebuilt from ``quantize.json`` (``create_model(variant, weights='random', **overrides)``)
    and ``mto.restore`` puts the quantizers, their ranges and the weights back: outputs are identical to the
    model that was saved. The model carries ``variant``, ``pretrained_cfg``, ``run_info`` and ``weights_info``
    of the original weights.
    """
    import modelopt.torch.opt as mto

    from ..models import WeightsInfo
    from .model_quant import quiet_modelopt

    folder, model_file, _ = resolve_run(path)
    info = read_run_info(folder)
    model = rebuild_architecture(info)
    try:
        with quiet_modelopt():
            model = mto.restore(model, str(model_file), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: one line
        raise RunFolderError(f"cannot restore {model_file}: {type(exc).__name__}: {str(exc)[:200]}") from exc
    weights = info.get("weights") or {}
    model.weights_info = WeightsInfo(weights.get("source", "unknown"), weights.get("path"), weights.get("sha256"))
    input_size = (info.get("model") or {}).get("input_size")
    if input_size:
        from dataclasses import replace

        model.pretrained_cfg = replace(model.pretrained_cfg, input_size=tuple(input_size))
    model.run_info = info
    return model.to(device).eval()


def load_fp32_reference(path: Union[str, Path], device: Optional[Union[str, torch.device]] = "cpu"
                        ) -> torch.nn.Module:
    """The FP32 model a run was quantized from, without the original weights file: the restored model with all
    its quantizers switched off (``mtq.disable_quantizer(model, '*')``). Its outputs equal the source model's."""
    from .model_quant import disable_all_quantizers

    model = load_quantized(path, device=device)
    return disable_all_quantizers(model)
