"""Files written whole or not at all: to a temporary name in the same folder, then renamed over the target."""

import json
import os
import tempfile

__all__ = ["creation_mode", "write_bytes_atomic", "write_json_atomic"]


def creation_mode(base: int = 0o666) -> int:
    """The mode a new file (``base`` 0o666) or folder (0o777) gets under the process's umask. tempfile makes its
    files 0600 and folders 0700; what is renamed into place should look as if it had been created there."""
    mask = os.umask(0o022)  # the umask can only be read by setting it; set it straight back
    os.umask(mask)
    return base & ~mask


def write_bytes_atomic(path, data: bytes) -> str:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half a file); returns the path."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, creation_mode(0o666))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path, obj) -> str:
    """``obj`` as indented JSON (anything else as its str), written as :func:`write_bytes_atomic` does."""
    return write_bytes_atomic(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())
