"""Batches of transformed images, decoded lazily, and the ModelOpt-style ``forward_loop`` built on them.

Memory stays bounded whatever the set size: only about two batches are decoded ahead. A few threads decode in
parallel (PIL releases the GIL while decoding and resizing) and results are taken in submission order, so batches
are the same on every run. Files that cannot be decoded are skipped and recorded, never fatal, unless all are.
"""

import itertools
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .sources import ImageSet

__all__ = ["ImageBatches", "make_forward_loop", "Batch"]

Batch = Tuple[torch.Tensor, Optional[torch.Tensor], List[str]]


def _reason(err: BaseException) -> str:
    """A short, user-facing reason for a file that could not be used."""
    if isinstance(err, FileNotFoundError):
        return "file not found"
    if isinstance(err, IsADirectoryError):
        return "is a folder"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, UnidentifiedImageError):
        return "not an image file PIL can read"
    if isinstance(err, Image.DecompressionBombError):
        return "image too large (decompression bomb guard)"
    text = str(err).strip() or type(err).__name__
    if "truncated" in text.lower():
        return "truncated image data"
    return text.splitlines()[0][:200]


def _load_image(path: str) -> Image.Image:
    with Image.open(path) as img:
        img.load()  # decode now, inside the worker, so truncation shows up here; the pixels outlive the file
    return img


class ImageBatches:
    """Iterate over an ``ImageSet`` in batches: ``(images [B,3,H,W] float32, labels [B] int64 or None, paths)``.

    Args:
        image_set: from ``discover_images``.
        transform: PIL image -> (3, H, W) tensor, usually ``eval_transform(cfg)``. Not applied to tensor sources
            stored as normalised (N, 3, H, W) floats.
        batch_size: images per batch; the last batch may be smaller, and batches shrink by the skipped files.
        progress: show a tqdm bar on stderr.
        desc: the bar's label.
        workers: decoding threads (default: up to 4).

    After (or during) iteration: ``seen`` items looked at, ``used`` items yielded, ``skipped`` ``(path, reason)``
    pairs. Iterating again starts over and resets them. Raises ``DataError`` if no item at all could be used.
    """

    def __init__(self, image_set: ImageSet, transform: Optional[Callable[[Image.Image], torch.Tensor]],
                 batch_size: int = 32, progress: bool = False, desc: Optional[str] = None,
                 workers: Optional[int] = None):
        if int(batch_size) <= 0:
            raise DataError(f"batch size must be positive, got {batch_size}")
        if transform is None and not (image_set.kind == "tensor" and image_set.layout == "nchw_float"):
            raise DataError("a transform is needed to turn images into tensors")
        self.image_set = image_set
        self.transform = transform
        self.batch_size = int(batch_size)
        self.progress = progress
        self.desc = desc
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.seen = 0
        self.used = 0
        self.skipped: List[Tuple[str, str]] = []

    def __len__(self) -> int:
        """Batches when nothing is skipped (an upper bound)."""
        return -(-len(self.image_set) // self.batch_size)

    def summary(self) -> dict:
        """Counts for reports: seen, used, skipped, and the skipped files with reasons."""
        return {"seen": self.seen, "used": self.used, "skipped": len(self.skipped),
                "skipped_files": [{"path": p, "reason": r} for p, r in self.skipped]}

    # -- iteration -------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        self.seen, self.used, self.skipped = 0, 0, []
        bar = self._bar()
        try:
            source = self._tensor_samples() if self.image_set.kind == "tensor" else self._file_samples()
            yield from self._batch(source, bar)
        finally:
            if bar is not None:
                bar.close()
        if self.used == 0:
            first = f" (first: {self.skipped[0][0]}: {self.skipped[0][1]})" if self.skipped else ""
            raise DataError(f"none of the {self.seen} images in {self.image_set.source} could be used{first}")

    def _bar(self):
        if not self.progress:
            return None
        from tqdm.auto import tqdm  # imported here: only needed when a bar is shown

        return tqdm(total=len(self.image_set), desc=self.desc, unit="img", file=sys.stderr, dynamic_ncols=True)

    def _batch(self, samples, bar) -> Iterator[Batch]:
        labelled = self.image_set.labelled
        images, labels, paths = [], [], []
        for path, label, result in samples:
            self.seen += 1
            if bar is not None:
                bar.update(1)
            if isinstance(result, str):
                self.skipped.append((path, result))
                if bar is not None:
                    bar.set_postfix(skipped=len(self.skipped), refresh=False)
                continue
            images.append(result)
            labels.append(label)
            paths.append(path)
            if len(images) == self.batch_size:
                yield self._collate(images, labels, paths, labelled)
                images, labels, paths = [], [], []
        if images:
            yield self._collate(images, labels, paths, labelled)

    def _collate(self, images, labels, paths, labelled) -> Batch:
        self.used += len(images)
        target = torch.tensor(labels, dtype=torch.int64) if labelled else None
        return torch.stack(images), target, paths

    def _decode(self, path: str):
        """The transformed tensor, or the reason the file was skipped (a str)."""
        try:
            img = _load_image(path)
        except Exception as e:  # PIL raises many types for damaged files (OSError, SyntaxError, struct.error ...)
            return _reason(e)
        return self.transform(img)

    def _file_samples(self):
        """(path, label, tensor-or-reason) in item order, with a bounded window of decodes in flight."""
        items = self.image_set.items
        window = 2 * self.batch_size
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="edgemv-decode") as pool:
            pending = deque()
            it = iter(items)
            try:
                for path, label in itertools.islice(it, window):
                    pending.append((path, label, pool.submit(self._decode, path)))
                while pending:
                    path, label, fut = pending.popleft()
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.append((nxt[0], nxt[1], pool.submit(self._decode, nxt[0])))
                    yield path, label, fut.result()
            finally:
                for *_, fut in pending:  # stopped early: drop what has not started
                    fut.cancel()

    def _tensor_samples(self):
        s = self.image_set
        for start in range(0, len(s.items), self.batch_size):
            rows = s.indices[start:start + self.batch_size]
            block = np.asarray(s.array[rows])  # reads only these rows of a memory-mapped .npy
            for (path, label), row in zip(s.items[start:start + self.batch_size], block):
                if s.layout == "nchw_float":
                    if not np.isfinite(row).all():
                        yield path, label, "non-finite values (NaN or inf)"
                        continue
                    yield path, label, torch.from_numpy(np.array(row, dtype=np.float32))
                else:
                    yield path, label, self.transform(Image.fromarray(np.ascontiguousarray(row), "RGB"))


def make_forward_loop(batches_factory, device="cpu", max_batches: Optional[int] = None
                      ) -> Callable[[torch.nn.Module], None]:
    """A ``forward_loop(model)`` for ModelOpt's ``mtq.quantize(model, config, forward_loop)``.

    Args:
        batches_factory: a callable returning an iterable of batches, or a re-iterable such as ``ImageBatches``.
            A batch is ``(images, labels, paths)`` or just an images tensor.
        device: where the images go (the model is not moved).
        max_batches: stop after this many batches.

    Returns:
        ``forward_loop(model)``: runs the batches through ``model`` under ``torch.no_grad()``; images are cast to
        the model's floating-point dtype.
    """
    if max_batches is not None and int(max_batches) <= 0:
        raise DataError(f"max_batches must be positive, got {max_batches}")

    def forward_loop(model: torch.nn.Module) -> None:
        batches: Iterable = batches_factory() if callable(batches_factory) else batches_factory
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
        with torch.no_grad():
            for batch in itertools.islice(batches, max_batches):
                images = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(images.to(device=device, dtype=dtype or images.dtype, non_blocking=True))

    return forward_loop
