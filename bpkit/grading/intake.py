"""Reading hand-ins safely: each notebook once, into a private copy, never through a symbolic link.

Files are opened below the source without following symbolic links (O_NOFOLLOW, folder by folder),
only regular files, size-capped before reading; zips are checked entry by entry (names, kinds,
declared sizes, count) before anything is written, and written only into a private folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import stat
import unicodedata
import zipfile
from datetime import datetime
from pathlib import Path

from bpkit.grading.plan import shown
from bpkit.grading.records import HandIn
from bpkit.grading.sandbox import WorkArea
from bpkit.grading.times import DAY, checked_time, zip_time
from bpkit.notebook import MAX_NOTEBOOK_BYTES, InvalidNotebook, lesson_of, parse_notebook, split_handed_in_name

MAX_ZIP_ENTRIES = 20_000  # a class of 500 with 40 files each
MAX_ZIP_BYTES = 2 * 2**30  # declared uncompressed total of one zip: more is refused as a zip bomb
MAX_ENTRY_BYTES = 256 * 2**20  # one data file in a zip (notebooks: MAX_NOTEBOOK_BYTES)
MAX_DEPTH = 24  # folders below a source: deeper is a loop or a trap, not a class
SKIPPED_FOLDERS = {".ipynb_checkpoints", "__MACOSX", ".git", "__pycache__", ".Trash"}
ZIP_LESSON = re.compile(r"lesson[\s_\-.]*(\d{1,2})(?!\d)", re.IGNORECASE)


class Intake:
    """Reads each handed-in file once into a private copy (0700 folder); what cannot be read is refused or skipped."""

    def __init__(self, due: datetime | None, lessons: list[str]):
        self.due, self.lessons = due, lessons
        # A locked run folder, 0700 (other users cannot read the copies): one that a run killed with
        # SIGKILL leaves behind is removed by the next run (sandbox.WorkArea).
        self.area = WorkArea()
        self.workdir = self.area.path
        self.skipped: list[tuple[str, str]] = []
        self.copies = self.zips = 0

    @contextlib.contextmanager
    def cleaned_on_error(self):
        """Remove the private folder when collecting fails half-way (a bad --student file, Ctrl-C)."""
        try:
            yield
        except BaseException:
            self.area.close()
            raise

    # -- reading: each file once, into a private copy ---------------------------------------------

    def take(self, record: HandIn, data: bytes, when: datetime | None, when_from: str, why_not: str) -> HandIn:
        """Fill a record from the bytes read: digest, private copy, notebook, metadata lesson, lateness."""
        self.copies += 1
        copy = self.workdir / "notebooks" / f"{self.copies:05d}.ipynb"
        copy.parent.mkdir(mode=0o700, exist_ok=True)
        copy.write_bytes(data)
        record.file, record.digest = copy, hashlib.sha256(data).hexdigest()
        self.set_time(record, when, when_from, why_not)
        try:
            notebook = parse_notebook(data)
        except InvalidNotebook as exc:
            return record.refuse(str(exc))
        # Only the lesson is kept: the grader parses the private copy when it grades it, and 1,000 parsed
        # notebooks held here took a 1,000-submission run's grader from 120 MB to 290 MB at its peak.
        record.metadata_lesson = lesson_of(notebook)
        return record

    def set_time(self, record: HandIn, when: datetime | None, when_from: str, why_not: str) -> None:
        """When the record was handed in, by what; late against --due."""
        record.submitted, record.submitted_from = when, when_from if when is not None else ""
        if self.due is None:
            return
        if when is None:
            record.notes.append(f"{why_not}: lateness unknown")
            return
        if when > self.due:
            record.late, record.late_from = True, f"{when_from} {when:%Y-%m-%d %H:%M}Z, due {self.due:%Y-%m-%d %H:%M}Z"
            record.days_late = math.ceil((when - self.due) / DAY)

    def read_files(self, files: list[Path]) -> list[HandIn]:
        """Notebooks given one by one: one source, the folder they share; folders below it opened link-free."""
        absolute = [Path(os.path.abspath(f)) for f in files]
        top = Path(os.path.commonpath([str(p.parent) for p in absolute]))
        try:
            shown = os.path.commonpath([os.path.normpath(str(Path(f).parent)) for f in files]) or "."
        except ValueError:  # relative and absolute paths mixed
            shown = str(top)
        try:
            top_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            self.skipped.append((str(top), f"cannot open the folder ({exc.strerror})"))
            return []
        records = []
        try:
            for path in absolute:
                parts = path.relative_to(top).parts
                record = HandIn(shown, "/".join(parts), "files", parts=parts, folder=path.parent)
                records.append(self.read_below(top_fd, parts, record))
        finally:
            os.close(top_fd)
        return records

    def read_folder(self, folder: Path) -> list[HandIn]:
        """Every *.ipynb below a folder, found and opened folder by folder without following symbolic links."""
        top = Path(os.path.realpath(folder))  # the instructor's own path: a link in it is the instructor's
        try:
            top_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            self.skipped.append((str(folder), f"cannot open the folder ({exc.strerror})"))
            return []
        records: list[HandIn] = []
        stack = [(top_fd, ())]
        try:
            while stack:
                dir_fd, below = stack.pop()
                try:
                    entries = sorted(os.scandir(dir_fd), key=lambda e: e.name)
                except OSError as exc:
                    self.skipped.append((f"{folder}/{'/'.join(below)}", f"cannot list the folder ({exc.strerror})"))
                    entries = []
                for entry in entries:
                    parts = (*below, entry.name)
                    where = f"{folder}/{'/'.join(parts)}"
                    if entry.name.lower().endswith(".ipynb") and not entry.is_dir(follow_symlinks=False):
                        record = HandIn(
                            str(folder), "/".join(parts), "folders", parts=parts, folder=top.joinpath(*below)
                        )
                        records.append(self.read_at(dir_fd, entry.name, record))
                    elif entry.is_symlink():
                        if _is_dir_link(dir_fd, entry.name):
                            self.skipped.append((where, "a symbolic link to a folder: not followed"))
                    elif entry.is_dir(follow_symlinks=False) and entry.name not in SKIPPED_FOLDERS:
                        if len(parts) > MAX_DEPTH:
                            self.skipped.append((where, f"more than {MAX_DEPTH} folders deep: not searched"))
                            continue
                        try:
                            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                            stack.append((os.open(entry.name, flags, dir_fd=dir_fd), parts))
                        except OSError as exc:
                            self.skipped.append((where, f"cannot open the folder ({exc.strerror})"))
                if dir_fd != top_fd:
                    os.close(dir_fd)
        finally:
            for dir_fd, _ in stack:
                if dir_fd != top_fd:
                    os.close(dir_fd)
            os.close(top_fd)
        return sorted(records, key=lambda r: r.parts)

    def read_below(self, top_fd: int, parts: tuple[str, ...], record: HandIn) -> HandIn:
        """Open parts[:-1] folder by folder below top_fd, none a symbolic link, then read the file."""
        dir_fd = top_fd
        try:
            for index, part in enumerate(parts[:-1]):
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                try:
                    next_fd = os.open(part, flags, dir_fd=dir_fd)
                except OSError as exc:
                    link = " (a symbolic link: not followed)" if _is_link(dir_fd, part) else ""
                    return record.refuse(f"cannot open the folder {'/'.join(parts[: index + 1])}{link}: {exc.strerror}")
                if dir_fd != top_fd:
                    os.close(dir_fd)
                dir_fd = next_fd
            return self.read_at(dir_fd, parts[-1], record)
        finally:
            if dir_fd != top_fd:
                os.close(dir_fd)

    def read_at(self, dir_fd: int, name: str, record: HandIn) -> HandIn:
        """Read one notebook in an open folder: no symbolic link, a regular file, at most MAX_NOTEBOOK_BYTES."""
        try:
            # O_NONBLOCK: opening a named pipe must not wait for a writer; fstat then refuses it
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=dir_fd)
        except OSError as exc:
            if _is_link(dir_fd, name):
                return record.refuse("a symbolic link, not a notebook file: not followed (hand in the notebook itself)")
            return record.refuse(f"the file cannot be opened ({exc.strerror})")
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return record.refuse("not a regular file (a folder, a named pipe or a device): not read")
            data = _read_capped(fd, MAX_NOTEBOOK_BYTES) if info.st_size <= MAX_NOTEBOOK_BYTES else None
            if data is None:
                return record.refuse(_too_big(max(info.st_size, MAX_NOTEBOOK_BYTES + 1)))
        except OSError as exc:
            return record.refuse(f"the file cannot be read ({exc.strerror})")
        finally:
            os.close(fd)
        return self.take(record, data, *checked_time(info.st_mtime, "file time"))

    def read_zip(self, path: Path) -> list[HandIn]:
        """A Canvas or Moodle download (or any zip): checked, written into the private folder, one record a notebook."""
        source = str(path)
        assignment = _lesson_of_zip(path, self.lessons)
        try:
            with open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
                entries, refused = _zip_entries(archive)
                if refused:
                    return [HandIn(source, "", "zip").refuse(refused)]
                self.zips += 1
                out = self.workdir / f"zip{self.zips:03d}"
                out.mkdir(mode=0o700)
                records = []
                for info, parts, problem in entries:
                    where = "/".join(parts)
                    is_notebook = parts[-1].lower().endswith(".ipynb")
                    problem = problem or _entry_problem(info, is_notebook)
                    data = b""
                    if problem is None:
                        try:
                            data = archive.read(info)  # at most info.file_size bytes: zipfile stops there
                            _write_private(out, parts, data)
                        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
                            problem = f"the zip entry cannot be extracted ({type(exc).__name__}: {str(exc)[:120]})"
                    if not is_notebook:
                        if problem is not None:
                            self.skipped.append((f"{source}/{where}", problem))
                        continue
                    record = HandIn(source, where, "zip", parts=parts, folder=out.joinpath(*parts[:-1]))
                    if assignment:
                        record.assignment, record.assignment_from = assignment, "the zip's name"
                    records.append(record.refuse(problem) if problem else self.take(record, data, *zip_time(info)))
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            return [
                HandIn(source, "", "zip").refuse(
                    f"not a readable zip ({type(exc).__name__}: {str(exc)[:120]}): download it again"
                )
            ]
        return records


# -- zips ---------------------------------------------------------------------------------------------


def _zip_entries(archive: zipfile.ZipFile) -> tuple[list[tuple[zipfile.ZipInfo, tuple[str, ...], str | None]], str]:
    """(entry, safe path parts, why it is refused or None) for each file entry, or a reason to refuse the whole
    zip (too many entries, or a zip bomb by the sizes it declares: zipfile never unpacks more than declared)."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        return [], f"the zip has {len(infos)} entries, over {MAX_ZIP_ENTRIES}: not extracted (is it a class download?)"
    declared = sum(info.file_size for info in infos)
    if declared > MAX_ZIP_BYTES:
        return [], (
            f"the zip would unpack to {declared / 2**30:.1f} GB, over {MAX_ZIP_BYTES / 2**30:g} GB: "
            f"refused as a zip bomb (download the submissions of one assignment at a time)"
        )
    entries, seen = [], set()
    for info in infos:
        if info.is_dir():
            continue
        parts = _entry_parts(_entry_name(info))
        if parts is None:
            entries.append(
                (
                    info,
                    (shown(info.filename, 200) or "?",),
                    "an unsafe entry name (absolute, `..`, a drive or control characters): not extracted",
                )
            )
        elif any(p in SKIPPED_FOLDERS for p in parts[:-1]):
            continue
        elif parts in seen:
            entries.append((info, parts, "a second entry of the same name: not extracted over the first"))
        else:
            seen.add(parts)
            entries.append((info, parts, None))
    return entries, ""


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name, read as UTF-8 when the zip did not say (Moodle and Windows zips often do not)."""
    name = info.filename
    if not info.flag_bits & 0x800:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):  # not UTF-8 after all: as it was
            name = name.encode("cp437").decode("utf-8")
    return unicodedata.normalize("NFC", name)


def _entry_parts(name: str) -> tuple[str, ...] | None:
    """The entry's path parts, or None when the name is unsafe (absolute, `..`, a drive, control characters,
    too deep)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return None
    parts = tuple(p for p in re.split(r"[/\\]", name) if p not in ("", "."))
    if not parts or ".." in parts or len(parts) > MAX_DEPTH:
        return None
    if any(len(p.encode()) > 255 or re.search(r"[\x00-\x1f\x7f]", p) for p in parts):
        return None
    return parts


def _entry_problem(info: zipfile.ZipInfo, is_notebook: bool) -> str | None:
    """Why an entry is not extracted, or None: a link or device, encrypted, too big."""
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode and not stat.S_ISREG(mode):  # 3: made on Unix, the high bits are st_mode
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        return f"{kind} in the zip: not extracted"
    if info.flag_bits & 0x1:
        return "encrypted in the zip: not extracted"
    cap = MAX_NOTEBOOK_BYTES if is_notebook else MAX_ENTRY_BYTES
    if info.file_size > cap:
        return _too_big(info.file_size) if is_notebook else f"{_size(info.file_size)}, over {_size(cap)}: not extracted"
    return None


def _write_private(out: Path, parts: tuple[str, ...], data: bytes) -> None:
    """Write an entry below `out` (ours, fresh): folders 0700, the file created anew, never through a link."""
    folder = out
    for part in parts[:-1]:
        folder = folder / part
        if not folder.is_dir() or folder.is_symlink():
            folder.mkdir(mode=0o700)
    fd = os.open(folder / parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _lesson_of_zip(path: Path, lessons: list[str]) -> str | None:
    """The assignment's lesson by the zip's name: `lesson04.zip`, `04_losses.zip`, `BP101-Lesson 4 losses-123.zip`."""
    own, named = split_handed_in_name(path.stem)
    if own == "" and named in lessons:
        return named
    found = {f"{int(n):02d}" for n in ZIP_LESSON.findall(path.stem)}
    return found.pop() if len(found) == 1 and next(iter(found)) in lessons else None


# -- small helpers ------------------------------------------------------------------------------------


def _read_capped(fd: int, cap: int) -> bytes | None:
    """Read a file to its end, or None when it holds more than cap bytes (it grew after fstat)."""
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, min(1 << 20, cap + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > cap:
            return None


def _size(count: int) -> str:
    return f"{count / 2**20:.0f} MB" if count >= 2**20 else f"{count} bytes"


def _too_big(size: int) -> str:
    return (
        f"the file is {_size(size)}, over the {_size(MAX_NOTEBOOK_BYTES)} a notebook may have: clear the "
        f"outputs (Edit > Clear Outputs of All Cells), save, and hand it in again"
    )


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _is_dir_link(dir_fd: int, name: str) -> bool:
    try:
        return _is_link(dir_fd, name) and stat.S_ISDIR(os.stat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False
