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


class NotARegularFile(OSError):
    """A symbolic link, a device, a FIFO or a folder where a regular file was expected."""


class FileTooLarge(OSError):
    """A file over the size the reader allows."""


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, opened without following a symbolic link
    (O_NOFOLLOW) and without waiting on a FIFO (O_NONBLOCK): a hand-in that is a link to another file,
    or to /dev/zero, is refused before anything is read."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symbolic link
            raise NotARegularFile(exc.errno, "a symbolic link, not a file: hand in the notebook itself") from None
        raise
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(0, "not a regular file (a device, a FIFO or a folder)")
        if info.st_size > limit:
            raise FileTooLarge(0, f"{info.st_size} bytes, over the {limit} allowed")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while we read
            raise FileTooLarge(0, f"over the {limit} bytes allowed")
        return b"".join(chunks)
    finally:
        os.close(fd)


def utc_stamp(seconds: float) -> str:
    """A file time as UTC ISO text; a time no calendar holds (year 11476, NaN) gives ""."""
    from datetime import datetime, timezone

    try:
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return ""


def private_folder(path: Path) -> None:
    """Create the folder `path` (rwx------), or make an existing one so; its parents are made as usual."""
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)  # no moment in which others may enter
    os.chmod(path, PRIVATE_FOLDER)  # mkdir's mode is cut by the umask, and the folder may be older
