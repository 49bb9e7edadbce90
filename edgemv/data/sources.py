"""Find the images a command should read: a folder, an ImageFolder tree, a list file, a CSV, or a .npy/.npz tensor.

Nothing is decoded here (``loader.py`` does that, lazily); this module only decides *which* items, in which order,
with which labels, so the same call gives the same set on every machine.
"""

import csv
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError
from .imagenet import imagenet_synset_to_index, imagenet_synsets

__all__ = ["IMAGE_EXTENSIONS", "ImageSet", "discover_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_LIST_EXTENSIONS = (".txt", ".lst", ".list", ".csv", ".tsv")
_TENSOR_EXTENSIONS = (".npy", ".npz")
_SYNSET = re.compile(r"^n\d{8}$")
_PATH_COLUMNS = ("path", "file", "filename", "image", "img", "filepath")
_LABEL_COLUMNS = ("label", "class", "target", "class_index", "y")


@dataclass
class ImageSet:
    """What ``discover_images`` found.

    Attributes:
        items: ``(path, label)`` pairs in a stable order; label is None when the source has none. For tensors the
            path is ``file.npy[i]``.
        classes: names of the label indices (``classes[label]``), or None when unlabelled.
        kind: 'folder', 'imagefolder', 'list' or 'tensor'.
        source: the path that was given, absolute.
        total: how many items the source held before ``limit`` was applied.
        array: tensor sources only: the whole array (memory-mapped for .npy), indexed by ``indices``.
        layout: tensor sources only: 'nchw_float' (already normalised) or 'nhwc_uint8' (images to transform).
        indices: tensor sources only: the rows of ``array`` behind ``items``, in order.
    """

    items: List[Tuple[str, Optional[int]]]
    classes: Optional[List[str]]
    kind: str
    source: str = ""
    total: int = 0
    array: Optional[np.ndarray] = field(default=None, repr=False)
    layout: Optional[str] = None
    indices: Optional[np.ndarray] = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labelled(self) -> bool:
        return bool(self.items) and all(label is not None for _, label in self.items)

    def describe(self) -> str:
        """One line for logs and reports: '24 images (folder calib/)'."""
        subset = f" of {self.total}" if self.total != len(self.items) else ""
        what = "tensor rows" if self.kind == "tensor" else "images"
        return f"{len(self.items)}{subset} {what} ({self.kind} {self.source})"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _walk_images(root: str) -> List[str]:
    """Image files under root, recursive, as sorted paths relative to root; hidden folders are skipped."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(folder, root)
        for name in files:
            if _is_image(name) and not name.startswith("."):
                found.append(name if rel == "." else os.path.join(rel, name))
    return sorted(found)


def _label_space(names: Sequence[str]) -> Tuple[dict, List[str]]:
    """Map class names to indices: ImageNet synsets to their ImageNet index, integer names to themselves,
    anything else by sorted name (as torchvision's ImageFolder)."""
    names = sorted(set(names))
    if names and all(_SYNSET.match(n) for n in names):
        table = imagenet_synset_to_index()
        if all(n in table for n in names):
            return {n: table[n] for n in names}, imagenet_synsets()
    if names and all(n.isdigit() for n in names):
        top = max(int(n) for n in names)
        return {n: int(n) for n in names}, [str(i) for i in range(top + 1)]
    return {n: i for i, n in enumerate(names)}, list(names)


def _from_folder(root: str) -> ImageSet:
    rel_paths = _walk_images(root)
    if not rel_paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
    parents = [os.path.dirname(p) for p in rel_paths]
    one_level = all(p and os.sep not in p for p in parents)
    if one_level:
        class_dirs = sorted(d for d in os.listdir(root)
                            if not d.startswith(".") and os.path.isdir(os.path.join(root, d)))
        names_mean_classes = all(_SYNSET.match(d) or d.isdigit() for d in class_dirs)
        # a single subfolder of plain photos is a folder, not a one-class dataset (labels 0 would mislead)
        if len(class_dirs) >= 2 or names_mean_classes:
            index, classes = _label_space(class_dirs)
            items = [(os.path.join(root, p), index[os.path.dirname(p)]) for p in rel_paths]
            return ImageSet(items, classes, "imagefolder", root)
    return ImageSet([(os.path.join(root, p), None) for p in rel_paths], None, "folder", root)


def _split_label(line: str) -> Tuple[str, Optional[str]]:
    """'a/b.jpg,3' -> ('a/b.jpg', '3'); a path with commas and no label column stays whole."""
    if "," in line:
        head, tail = line.rsplit(",", 1)
        tail = tail.strip()
        if tail.isdigit() or _SYNSET.match(tail) or not _is_image(line):
            return head.strip(), tail
    return line.strip(), None


def _read_rows(path: str) -> List[Tuple[str, Optional[str]]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = "not a UTF-8 text file" if isinstance(e, UnicodeDecodeError) else (e.strerror or str(e))
        raise DataError(f"cannot read the image list {path}: {reason}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not path.lower().endswith((".csv", ".tsv")):
        return [_split_label(ln) for ln in lines]
    rows = list(csv.reader(lines, delimiter="\t" if path.lower().endswith(".tsv") else ","))
    rows = [r for r in rows if r and r[0].strip()]
    path_col, label_col = 0, 1
    known = _PATH_COLUMNS + _LABEL_COLUMNS
    if rows and any(c.strip().lower() in known for c in rows[0]):  # a header row
        header = [h.strip().lower() for h in rows.pop(0)]
        path_col = next((header.index(c) for c in _PATH_COLUMNS if c in header), 0)
        label_col = next((header.index(c) for c in _LABEL_COLUMNS if c in header), None)
    out = []
    for r in rows:
        label = r[label_col].strip() if label_col is not None and label_col < len(r) and r[label_col].strip() else None
        out.append((r[path_col].strip(), label))
    return out


def _from_list(path: str) -> ImageSet:
    rows = _read_rows(path)
    if not rows:
        raise DataError(f"the image list {path} names no images")
    base = os.path.dirname(path)
    paths = [os.path.normpath(p if os.path.isabs(p) else os.path.join(base, os.path.expanduser(p))) for p, _ in rows]
    raw = [label for _, label in rows]
    given = [label is not None for label in raw]
    if any(given) and not all(given):
        first = given.index(False) if given[0] else given.index(True)
        raise DataError(f"the image list {path}: some entries have a label and some do not "
                        f"(first differing entry: {rows[first][0]})")
    if not any(given):
        return ImageSet([(p, None) for p in paths], None, "list", path)
    index, classes = _label_space(raw)
    return ImageSet([(p, index[label]) for p, label in zip(paths, raw)], classes, "list", path)


def _pick(npz, names: Sequence[str], what: str, path: str, required: bool):
    for n in names:
        if n in npz.files:
            return npz[n]
    if required:
        raise DataError(f"{path} has no {what} array: expected one named {' or '.join(repr(n) for n in names)} "
                        f"(found {', '.join(npz.files) or 'none'})")
    return None


def _from_tensor(path: str) -> ImageSet:
    labels = None
    try:
        if path.lower().endswith(".npz"):
            with np.load(path, allow_pickle=False) as npz:
                array = _pick(npz, ("images", "x"), "image", path, required=True)
                labels = _pick(npz, ("labels", "y"), "label", path, required=False)
        else:
            array = np.load(path, mmap_mode="r", allow_pickle=False)  # memory-mapped: 50,000 rows stay on disk
    except DataError:
        raise
    except Exception as e:  # numpy raises ValueError, OSError, zipfile errors... for damaged files
        raise DataError(f"cannot read the tensor file {path}: {e}") from None
    if array.ndim == 4 and array.shape[1] == 3 and np.issubdtype(array.dtype, np.floating):
        layout = "nchw_float"
    elif array.ndim == 4 and array.shape[3] == 3 and array.dtype == np.uint8:
        layout = "nhwc_uint8"
    else:
        raise DataError(f"{path}: array of shape {tuple(array.shape)} and dtype {array.dtype} is neither "
                        "(N, 3, H, W) float, already normalised, nor (N, H, W, 3) uint8 images")
    n = array.shape[0]
    if n == 0:
        raise DataError(f"{path} holds no images (0 rows)")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != n or not np.issubdtype(labels.dtype, np.integer) or (n and labels.min() < 0):
            raise DataError(f"{path}: labels must be {n} non-negative integers, "
                            f"got shape {labels.shape} dtype {labels.dtype}")
    name = os.path.basename(path)
    items = [(f"{name}[{i}]", None if labels is None else int(labels[i])) for i in range(n)]
    classes = None
    if labels is not None:
        classes = [str(i) for i in range(int(labels.max()) + 1)]
    return ImageSet(items, classes, "tensor", path, array=array, layout=layout, indices=np.arange(n))


def _subset_order(keys: Sequence[str], seed: int, limit: int) -> List[int]:
    """Indices of a seeded random subset of ``limit`` keys, in their original order.

    Each key is ranked by a hash of (seed, key): the choice is the same on every machine and Python/NumPy
    version, and depends on which items exist, not on how many came before them.
    """
    def rank(i):
        return hashlib.sha256(f"{seed}\0{keys[i]}".encode("utf-8")).digest()

    return sorted(sorted(range(len(keys)), key=rank)[:limit])


def discover_images(path, seed: int = 0, limit: Optional[int] = None) -> ImageSet:
    """Resolve a calibration or evaluation source.

    Args:
        path: a folder of images (searched recursively), an ImageFolder tree (``root/<class>/<image>``), a text
            file of image paths (``.txt``; optional ``,label``), a CSV ``path,label``, a ``.npy``/``.npz`` tensor,
            or a single image file.
        seed: picks the subset when ``limit`` is smaller than the source.
        limit: at most this many items, a deterministic random subset, kept in source order.

    Raises:
        DataError: the path is missing, holds no images, or cannot be read.
    """
    if path is None or str(path).strip() == "":
        raise DataError("no image source given")
    path = os.path.abspath(os.path.expanduser(str(path)))
    if limit is not None and int(limit) <= 0:
        raise DataError(f"the number of images must be positive, got {limit}")
    if os.path.isdir(path):
        found = _from_folder(path)
    elif not os.path.exists(path):
        raise DataError(f"no such file or folder: {path}")
    elif path.lower().endswith(_TENSOR_EXTENSIONS):
        found = _from_tensor(path)
    elif _is_image(path):
        found = ImageSet([(path, None)], None, "list", path)
    elif path.lower().endswith(_LIST_EXTENSIONS) or "." not in os.path.basename(path):
        found = _from_list(path)
    else:
        raise DataError(f"{path} is not a folder, an image, an image list (.txt, .csv) or a tensor (.npy, .npz)")
    found.source, found.total = path, len(found.items)
    if limit is not None and int(limit) < len(found.items):
        if found.kind == "tensor":
            keys = [str(i) for i in range(len(found.items))]
        else:  # relative keys: the subset survives moving the data set to another folder or machine
            base = path if os.path.isdir(path) else os.path.dirname(path)
            keys = [os.path.relpath(p, base).replace(os.sep, "/") for p, _ in found.items]
        keep = _subset_order(keys, seed, int(limit))
        found.items = [found.items[i] for i in keep]
        if found.indices is not None:
            found.indices = found.indices[keep]
    return found
