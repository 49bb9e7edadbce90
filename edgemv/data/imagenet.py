"""ImageNet-1K class metadata: WordNet synset ids and human-readable names, in class-index order.

The table ``imagenet_classes.txt`` (one ``synset<TAB>names`` line per class, line i = class i) is data taken from
timm's wheel; its provenance is in ``edgemv/data/README.md`` and ``docs/data.md``.
"""

from functools import lru_cache
from importlib import resources
from typing import Dict, List, Tuple

__all__ = ["imagenet_class_names", "imagenet_synsets", "imagenet_synset_to_index"]

_TABLE = "imagenet_classes.txt"


@lru_cache(maxsize=1)
def _table() -> Tuple[Tuple[str, str], ...]:
    text = resources.files(__package__).joinpath(_TABLE).read_text(encoding="utf-8")
    rows = tuple(tuple(line.split("\t", 1)) for line in text.splitlines() if line.strip())
    if len(rows) != 1000 or any(len(r) != 2 for r in rows):
        raise RuntimeError(f"{_TABLE} is damaged: expected 1000 'synset<TAB>name' lines")  # a packaging bug
    return rows


def imagenet_synsets() -> List[str]:
    """The 1000 WordNet ids ('n01440764', ...) in class-index order (the sorted ImageNet folder names)."""
    return [s for s, _ in _table()]


def imagenet_class_names(short: bool = False) -> List[str]:
    """The 1000 class names in index order: 'tench, Tinca tinca', ... With ``short=True`` only the first name
    ('tench'); note that short names are not unique (two 'crane's, two 'maillot's)."""
    return [n.split(",", 1)[0].strip() if short else n for _, n in _table()]


@lru_cache(maxsize=1)
def imagenet_synset_to_index() -> Dict[str, int]:
    """{'n01440764': 0, ...}"""
    return {s: i for i, (s, _) in enumerate(_table())}
