"""Small file-system steps done the careful way (keys, backups, first-start secrets)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "write_private"]


def fsync_dir(path: Path) -> None:
    # A rename or unlink is durable only once the directory entry itself reaches the disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private(path: Path, content: str) -> None:
    """Write a file only its owner can read (mode 600), atomically: a reader sees the old
    content or the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    os.replace(tmp, path)
