"""Files written whole or not at all: to a temporary name in the same folder, then renamed over the target."""

import contextlib
import json
import os
import tempfile
from typing import Iterator, Optional

__all__ = ["atomic_output", "creation_mode", "write_bytes_atomic", "write_json_atomic"]


def creation_mode(base: int = 0o666) -> int:
    """The mode a new file (``base`` 0o666) or folder (0o777) gets under the process's umask. tempfile makes its
    files 0600 and folders 0700; what is renamed into place should look as if it had been created there."""
    mask = os.umask(0o022)  # the umask can only be read by setting it; set it straight back
    os.umask(mask)
    return base & ~mask


@contextlib.contextmanager
def atomic_output(path, mode: Optional[int] = None) -> Iterator[str]:
    """A temporary path beside ``path`` for the block (or a tool it runs) to write; renamed over ``path`` when the
    block ends without an error, removed otherwise. ``mode``: the file's permissions before the rename (None keeps
    tempfile's 0600)."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path, data: bytes) -> str:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half a file); returns the path."""
    path = os.path.abspath(os.fspath(path))
    with atomic_output(path, creation_mode(0o666)) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def write_json_atomic(path, obj) -> str:
    """``obj`` as indented JSON (anything else as its str), written as :func:`write_bytes_atomic` does."""
    return write_bytes_atomic(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())
