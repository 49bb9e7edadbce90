"""Where weights come from: a file, a Hugging Face snapshot folder, a hub id, 'official' or 'random'.

Pickled checkpoints load with ``weights_only=True``; safetensors files are preferred where a folder has both.
"""

import argparse
import hashlib
import os
import pathlib
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..errors import PickledObjectsError, WeightsError
from .variants import Variant

__all__ = ["WeightsInfo", "resolve_weights", "read_checkpoint", "sha256_file"]

PICKLE_SUFFIXES = (".pth", ".pth.tar", ".pt", ".bin", ".tar", ".ckpt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# In a snapshot folder, the first pattern that matches wins.
_FOLDER_PATTERNS = ("model.safetensors", "*.safetensors", "*.pth.tar", "*.pth", "pytorch_model.bin", "*.pt", "*.bin")


@dataclass
class WeightsInfo:
    """Provenance of loaded weights, written into every report."""

    source: str  # what the user passed
    path: Optional[str]  # the file actually read (None for random)
    sha256: Optional[str]

    @property
    def is_random(self) -> bool:
        return self.path is None


def sha256_file(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


# Plain attribute/value holders that training scripts put beside the weights (timm's train.py saves its
# argparse.Namespace as 'args'). Unpickling them runs no code, so weights_only loading may allow them.
_HARMLESS_GLOBALS = [argparse.Namespace, pathlib.PosixPath, pathlib.PurePosixPath, pathlib.WindowsPath,
                     pathlib.PureWindowsPath]


def read_checkpoint(path, mmap: bool = False) -> dict:
    """Read a checkpoint file into a dict (nothing executed: weights_only pickles or safetensors). ``mmap``: map the
    tensors of a zip-format torch.save file instead of reading them, for callers that only ask what the file holds
    (other files are read whole)."""
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        mmap = mmap and zipfile.is_zipfile(path)  # torch maps only its zip format
        # torch warns about pickle protocols it did not write; the error below says what matters
        with torch.serialization.safe_globals(_HARMLESS_GLOBALS), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - every reader error becomes one line for the user
        message = f"cannot read checkpoint {path}: {_unreadable_reason(exc)[:300]}"
        refused = _REFUSED_GLOBAL.search(str(exc))
        if refused:
            raise PickledObjectsError(message, refused_global=refused.group(1)) from exc
        raise WeightsError(message) from exc


_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _unreadable_reason(exc: Exception) -> str:
    """Why torch.load / safetensors could not read a file, in a few words (torch's own messages run to a page)."""
    text = str(exc)
    refused = _REFUSED_GLOBAL.search(text)
    if refused:
        return (f"it holds Python objects beyond tensors ({refused.group(1)}), which edgemv refuses to unpickle "
                "(weights_only=True)")
    if "Unsupported operand" in text or "weights_only" in text:
        return ("not a torch.save checkpoint: a file of another kind, a damaged one, or a pickle the safe loader "
                "refuses (weights_only=True)")
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    if "central directory" in text or "zip archive" in text:
        return "its zip archive is damaged or incomplete (an interrupted download?)"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _find_in_folder(folder: Path) -> Path:
    for pattern in _FOLDER_PATTERNS:
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    raise WeightsError(f"no weights file (*.safetensors, *.pth.tar, *.pth, *.bin) in folder {folder}")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the hub endpoint, so an offline machine fails in seconds instead of minutes of
    retries inside huggingface_hub."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if getattr(constants, "HF_HUB_OFFLINE", False):
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _download(hub_id: str, variant: Variant) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise WeightsError("huggingface_hub is needed to fetch weights by hub id: pip install huggingface_hub") from exc
    official = variant.pretrained.filename if hub_id.lower() == variant.pretrained.hub_id.lower() else None
    candidates = [f for f in ("model.safetensors", official) if f]
    url = variant.pretrained.url if official else f"https://huggingface.co/{hub_id}"
    advice = f"download {url} on a connected machine and pass --weights PATH, or pass --weights random for a dry run"
    last_error = None
    for local_only in (True, False):  # the cache first, then the network
        if not local_only and not _hub_reachable():
            raise WeightsError(f"cannot reach Hugging Face to fetch {hub_id} (offline?); {advice}")
        for filename in candidates:
            try:
                return Path(hf_hub_download(hub_id, filename, local_files_only=local_only))
            except Exception as exc:  # noqa: BLE001 - missing file, missing repo, network
                last_error = exc
    raise WeightsError(f"could not fetch {hub_id} from Hugging Face ({type(last_error).__name__}); {advice}")


def resolve_weights(weights, variant: Variant):
    """(checkpoint dict or None, WeightsInfo) for what the user passed as ``weights``."""
    if weights is None or str(weights).lower() == "random":
        return None, WeightsInfo("random", None, None)
    text = os.fspath(weights)
    if text.lower() == "official":
        if not variant.pretrained.hf_repo:
            raise WeightsError(f"variant '{variant.name}' has no published weights; pass --weights random")
        text = variant.pretrained.hub_id
    path = Path(text).expanduser()
    if path.is_dir():
        path = _find_in_folder(path)
    elif not path.exists():
        if _HUB_ID.match(text) and not text.lower().endswith(PICKLE_SUFFIXES + (".safetensors",)):
            path = _download(text, variant)
        else:
            raise WeightsError(f"weights file not found: {text}")
    if path.stat().st_size == 0:
        raise WeightsError(f"cannot read checkpoint {path}: the file is empty")
    return read_checkpoint(path), WeightsInfo(text, str(path), sha256_file(path))
