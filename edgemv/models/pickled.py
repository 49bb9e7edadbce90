"""Whole models saved with ``torch.save(model)`` (e.g. a pruned model): unpickling one runs code stored in the file,
so edgemv does it only when asked (``trust_pickle``); a plain checkpoint never gets that far."""

from pathlib import Path
from typing import Optional

import torch

from ..errors import PickledObjectsError, WeightsError
from .weights import read_checkpoint

__all__ = ["PICKLE_SUFFIXES", "load_whole_module"]

PICKLE_SUFFIXES = (".pt", ".pth")


def load_whole_module(path, trust_pickle: bool = False) -> Optional[torch.nn.Module]:
    """The ``nn.Module`` pickled in ``path``, or None where the file is not one: another suffix, a checkpoint of
    tensors (read safely, with ``weights_only=True``), or a file that cannot be read (the checkpoint reader that
    comes next says why).

    A file holding other Python objects is unpickled only with ``trust_pickle``; without it, one line says why not.
    """
    path = Path(path)
    if path.suffix.lower() not in PICKLE_SUFFIXES or not path.is_file():
        return None
    try:
        read_checkpoint(path, mmap=True)  # what the file holds; its tensors are read once, by the caller's loader
        return None  # tensors only: a checkpoint
    except PickledObjectsError as exc:
        if not trust_pickle:
            raise PickledObjectsError(
                f"{path} holds pickled Python objects ({exc.refused_global}; a whole model saved with "
                "torch.save(model)?), and loading it would run code stored in the file: if you made it yourself, "
                "pass --trust-pickle", exc.refused_global) from None
    except WeightsError:
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign pickle: one line
        raise WeightsError(f"cannot unpickle {path}: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(obj, torch.nn.Module):
        raise WeightsError(f"{path} holds a {type(obj).__name__}, not a model (torch.nn.Module)")
    return obj
