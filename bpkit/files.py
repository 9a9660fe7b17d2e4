"""Writing files so that an interrupted run never leaves a half-written one, and private folders."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600  # what the grader writes into --out: the instructor's alone, whatever the umask
PRIVATE_FOLDER = 0o700


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _current_umask()  # read once, at import: os.umask can only be read by setting it


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write text to path via a temporary file in the same folder and os.replace (atomic on POSIX).

    `mode` is the file's permissions; by default those open() would give it under the umask."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes 0600, so a private file is never readable by others, not even for a moment
        os.fchmod(fd, 0o666 & ~UMASK if mode is None else mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # no stray temporary file next to the gradebook
        raise


def private_folder(path: Path) -> None:
    """Create the folder `path` (rwx------), or make an existing one so; its parents are made as usual."""
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)  # no moment in which others may enter
    os.chmod(path, PRIVATE_FOLDER)  # mkdir's mode is cut by the umask, and the folder may be older
