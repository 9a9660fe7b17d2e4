"""Writing files so that an interrupted run never leaves a half-written one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _current_umask()  # read once, at import: os.umask can only be read by setting it


def write_atomic(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same folder and os.replace (atomic on POSIX)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # as open() would create it (mkstemp makes 0600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # no stray temporary file next to the gradebook
        raise
