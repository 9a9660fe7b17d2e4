"""Step 0 of grading: what was handed in, by whom, for which lesson, on time or not.

`collect(sources, roster)` turns what the instructor gives `bpkit grade` into one `HandIn` record per
handed-in notebook; every later stage takes the record (it holds a private copy of the file, its
digest, its metadata's lesson and the folder whose data files go with it) and never goes back to the file
it came from.

A SOURCE is a notebook, a folder (searched for *.ipynb, skipping .ipynb_checkpoints), or a .zip
as Canvas ("Download Submissions") or Moodle ("Download all submissions") gives it. The student is
found from how the class was collected, never from a name a student chose inside another student's
folder or archive entry:

    layout     recognised by                                   the student is
    canvas     `lastfirst[_late]_<user id>_<subm. id>_<file>`  the roster's `canvas_id` = user id
    moodle     folders `<Full Name>_<id>_assignsubmission_..`  the roster student of that full name
    nbgrader   `submitted/<student>/<assignment>/<file>`       <student>
    folders    one folder per student, at any depth            with a roster: the path part that is a
                                                               roster id; without: the first path part
                                                               that differs between the files
    files      notebooks side by side                          the file name minus its trailing lesson
                                                               part (`ab12_01` -> ab12)

The lesson is the notebook's metadata; the file name can contradict it only through its trailing
lesson part. The assignment's lesson, where known (`--lesson NN`; a zip named `lessonNN.zip`,
`NN_name.zip` or `...Lesson NN...zip`, as Moodle names its download after the assignment; an
nbgrader assignment folder named `NN` or `lessonNN`), must agree with the notebook's: a lesson-01
notebook handed in to lesson 04 is `invalid` for 04 and does not replace the real 01.

Lateness comes from the collection: Canvas's `_late_` marker, zip entry times against `--due`, and
for plain files their modification time against `--due` (the weakest: `cp`, zip and rsync rewrite
it, a student can set it).

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
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bpkit.course import DEFAULT_DIR
from bpkit.grading.roster import Roster
from bpkit.notebook import MAX_NOTEBOOK_BYTES, InvalidNotebook, lesson_of, parse_notebook, split_handed_in_name

MAX_ZIP_ENTRIES = 20_000  # a class of 500 with 40 files each
MAX_ZIP_BYTES = 2 * 2**30  # declared uncompressed total of one zip: more is refused as a zip bomb
MAX_ENTRY_BYTES = 256 * 2**20  # one data file in a zip (notebooks: MAX_NOTEBOOK_BYTES)
MAX_DEPTH = 24  # folders below a source: deeper is a loop or a trap, not a class
SKIPPED_FOLDERS = {".ipynb_checkpoints", "__MACOSX", ".git", "__pycache__", ".Trash"}
NOT_STUDENT_FOLDERS = {DEFAULT_DIR.name, "lessons"}  # the folders `bpkit lessons`/`bpkit lab` make: never a student
EARLIEST = datetime(1980, 1, 1, tzinfo=timezone.utc)  # no zip nor LMS time is older
DAY = timedelta(days=1)

CANVAS_NAME = re.compile(r"^(?P<lastfirst>[^_]*?)(?P<late>_late)?_(?P<user>\d+)_(?P<submission>\d+)_(?P<original>.+)$",
                         re.IGNORECASE)
CANVAS_RESUBMISSION = re.compile(r"-\d+$")  # Canvas adds `-1`, `-2` to a resubmitted file's name
MOODLE_NAME = re.compile(r"^(?P<name>.+?)_(?P<participant>\d+)_assign(?:submission|feedback)_[a-z]+_?(?P<original>.*)$")
ZIP_LESSON = re.compile(r"lesson[\s_\-.]*(\d{1,2})(?!\d)", re.IGNORECASE)
# Characters that would change how the plan reads in a terminal: controls and bidirectional overrides.
_UNSHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

INVALID, CONFLICT, NOT_IN_ROSTER, OTHER_NAME = "invalid", "conflict", "not-in-roster", "named-after-other-student"


class CollectionError(ValueError):
    """An option of the collection is wrong (a due date, a late penalty, a --student file); the message says what to do."""


@dataclass
class HandIn:
    """One handed-in notebook: who, which lesson, where it came from, the file to grade, lateness, notes."""

    source: str  # the SOURCE as given (a folder, a zip, or the folder the given files share)
    path: str  # where in the source: a path relative to it, or a zip entry name ("" for the zip itself)
    layout: str  # canvas, moodle, nbgrader, folders, files, chosen
    student: str = ""  # the roster id where matched; else the id the collection gives ("" unknown)
    name: str = ""  # the student's name, from the roster or the LMS
    matched: str = ""  # how the student was found, in words, for the plan
    lesson: str = ""  # "NN"; "" when no lesson could be told
    lesson_from: str = ""
    file: Path | None = None  # a private copy of exactly the bytes read (None: refused)
    folder: Path | None = None  # the folder whose data files go with the notebook
    digest: str = ""  # sha256 of the bytes
    submitted: datetime | None = None  # when it was handed in (UTC), where the collection says
    submitted_from: str = ""
    late: bool = False
    days_late: int | None = None  # whole days, a started day counts; None: late by a marker that says not how much
    late_from: str = ""
    chosen: bool = False  # the instructor named the student (--student ID FILE): settles a conflict
    same_as: str = ""  # where the same content was already collected: graded once
    notes: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # kind -> why: invalid, conflict, not-in-roster, ...
    parts: tuple[str, ...] = field(default=(), repr=False)  # path parts below the source, for identity
    metadata_lesson: object = field(default=None, repr=False)  # what the notebook's metadata says, as it says it
    named_as: str = field(default="", repr=False)  # the stem whose trailing lesson part counts ("" : the file's)
    assignment: str = field(default="", repr=False)  # the lesson it was handed in to, where the collection says
    assignment_from: str = field(default="", repr=False)

    @property
    def status(self) -> str:
        """`invalid` (not graded), `conflict` (graded, exported blank until settled) or `ok`."""
        return INVALID if INVALID in self.problems else CONFLICT if CONFLICT in self.problems else "ok"

    @property
    def where(self) -> str:
        """The source and the path in it, as the report shows it."""
        return f"{self.source.rstrip('/')}/{self.path}" if self.path else self.source

    def refuse(self, why: str) -> HandIn:
        self.problems[INVALID] = why
        return self


@dataclass
class Collection:
    """The records of one run, what was left aside and why, and the private folder holding the copies."""

    records: list[HandIn]
    skipped: list[tuple[str, str]]  # (where, why): given paths and zip entries that are no hand-in
    sources: list[tuple[str, str]]  # (source, how it was read): layout and the assignment's lesson
    roster: Roster | None
    workdir: Path | None

    def missing(self) -> list[str]:
        """Roster ids with no record in this collection."""
        present = {r.student for r in self.records}
        return [s.id for s in self.roster.students if s.id not in present] if self.roster else []

    def close(self) -> None:
        """Remove the private copies (the records' `file` and extracted zips) and release their lock."""
        area = getattr(self, "area", None)
        if area is not None:
            area.close()
            self.area = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- options: due date, late penalty ------------------------------------------------------------------

def parse_due(text: str | datetime) -> datetime:
    """--due as an aware UTC time (a time without a zone is local time); CollectionError when it is not one."""
    if isinstance(text, datetime):
        moment = text
    else:
        try:
            moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError:
            raise CollectionError(f"--due {str(text)[:40]!r} is not a date and time like 2026-12-01T23:59 "
                                  f"(local time) or 2026-12-01T23:59Z (UTC)") from None
    try:
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError, OSError):
        raise CollectionError(f"--due {str(text)[:40]!r} is out of range") from None


@dataclass(frozen=True)
class LatePenalty:
    """Percentage points off per started day late, at most `maximum` points in all."""

    per_day: float
    maximum: float = 100.0

    def deduction(self, percent: float, days: int | None) -> float:
        """Points taken off `percent` for `days` late (None: late by a marker only, counted as one day)."""
        days = 1 if days is None else max(days, 0)
        return min(self.per_day * days, self.maximum, max(percent, 0.0))

    def apply(self, percent: float, days: int | None) -> float:
        """The percentage after the penalty (never below 0)."""
        return percent - self.deduction(percent, days)


def parse_late_penalty(text: str) -> LatePenalty:
    """--late-penalty PERCENT_PER_DAY[:MAX_PERCENT], e.g. `10` or `10:50`; CollectionError when malformed."""
    parts = str(text).strip().split(":")
    try:
        if len(parts) > 2:
            raise ValueError
        numbers = [float(p) for p in parts]
    except ValueError:
        raise CollectionError(f"--late-penalty {str(text)[:40]!r}: write PERCENT_PER_DAY or PERCENT_PER_DAY:MAX_PERCENT, "
                              f"e.g. 10 (10 points a day) or 10:50 (at most 50 in all)") from None
    if not all(math.isfinite(n) and 0 <= n <= 100 for n in numbers):
        raise CollectionError(f"--late-penalty {str(text)[:40]!r}: both numbers are percentages from 0 to 100")
    return LatePenalty(numbers[0], numbers[1] if len(numbers) == 2 else 100.0)


def known_lessons() -> list[str]:
    """Lessons with at least one graded exercise."""
    from bpkit.checks import EXERCISES

    return sorted({exercise.lesson for exercise in EXERCISES.values()})


# -- collecting ---------------------------------------------------------------------------------------

def collect(sources: list[Path], roster: Roster | None, *, due=None, lesson: str | None = None,
            lessons: list[str] | None = None) -> Collection:
    """One record per handed-in notebook of the sources, each with its student, lesson, lateness and problems."""
    run = _Run(roster, parse_due(due) if due is not None else None, lesson,
               lessons if lessons is not None else known_lessons())
    with run.cleaned_on_error():
        _collect(run, [Path(s) for s in sources])
    return run.finish()


def _collect(run: _Run, sources: list[Path]) -> None:
    files: list[Path] = []
    for given in dict.fromkeys(sources):
        if given.is_dir():
            run.identify(run.read_folder(given), str(given), Path(os.path.realpath(given)).parts)
        elif given.is_file() and given.suffix.lower() == ".zip":
            run.identify(run.read_zip(given), str(given), (given.stem,))
        elif given.suffix.lower() == ".ipynb" and (given.exists() or given.is_symlink()):
            files.append(given)
        elif not given.exists() and not given.is_symlink():
            run.skipped.append((str(given), "no such file or folder (a mistyped name, or a pattern that matched nothing?)"))
        else:
            run.skipped.append((str(given), "not a notebook (.ipynb), a folder or a .zip"))
    if files:
        shared = Path(os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files]))
        records = run.read_files(files)
        if records:
            run.identify(records, records[0].source, shared.parts)


def choose(student: str, files: list[Path], roster: Roster | None, *, due=None, lesson: str | None = None,
           lessons: list[str] | None = None) -> Collection:
    """`--student ID FILE...`: the instructor says these files are ID's, whatever their names or folders say.

    This is how a conflict is settled: grade the file that counts as that student's. A FILE may be a
    notebook or an entry of a zip written as the plan shows it (`submissions.zip/<entry>`). Two
    different files chosen for one lesson are still a conflict.
    """
    if not student or not student.strip():
        raise CollectionError("--student needs a student id before the file")
    run = _Run(roster, parse_due(due) if due is not None else None, lesson,
               lessons if lessons is not None else known_lessons())
    with run.cleaned_on_error():
        for given in files:
            _choose(run, student, Path(given))
    return run.finish()


def _choose(run: _Run, student: str, given: Path) -> None:
    """Read one --student FILE (a notebook, or `x.zip/<entry>`) as the named student's."""
    inside = _zip_and_entry(given)
    if inside is not None:
        records = [r for r in run.read_zip(inside[0]) if r.path == inside[1]]
        if not records:
            raise CollectionError(f"--student {student} {given}: {inside[0]} has no entry {inside[1]!r} "
                                  f"(copy the name from `bpkit grade --plan`)")
    elif given.suffix.lower() == ".ipynb" and (given.is_file() or given.is_symlink()):
        records = run.read_files([given])
    else:
        raise CollectionError(f"--student {student} {given}: give a notebook (.ipynb) or a zip entry as "
                              f"`bpkit grade --plan` shows it (submissions.zip/<entry>)")
    for record in records:
        if inside is not None and len(record.parts) == 1 and CANVAS_NAME.match(record.parts[0]):
            run.canvas_student(record)  # Canvas's late marker and original name still count
        elif inside is not None and MOODLE_NAME.match(record.parts[0]):
            run.moodle_student(record)
        record.layout, record.chosen = "chosen", True
        run.set_student(record, student, "chosen by the instructor (--student)")
        run.set_lesson(record)
    run.records += records
    run.sources.append((str(given), f"chosen for {student} (--student)"))


def _zip_and_entry(given: Path) -> tuple[Path, str] | None:
    """(zip, entry name) for `some.zip/inner/path`, when no such file exists but the zip does."""
    if given.exists():
        return None
    for parent in given.parents:
        if parent.suffix.lower() == ".zip" and parent.is_file():
            return parent, given.relative_to(parent).as_posix()
    return None


class _Run:
    """The state of one collect(): the records so far, the private folder, the options."""

    def __init__(self, roster: Roster | None, due: datetime | None, lesson: str | None, lessons: list[str]):
        if lesson is not None and lesson not in lessons:
            raise CollectionError(f"--lesson {lesson}: no such lesson; known lessons: {', '.join(lessons)}")
        self.roster, self.due, self.lesson, self.lessons = roster, due, lesson, lessons
        # A locked run folder under $TMPDIR/bpkit-grade-<uid>/ (0700: other users cannot read the copies), so
        # the next run removes it should this one be killed before it cleans up.
        from bpkit.grading.sandbox import WorkArea

        self.area = WorkArea()
        self.workdir = self.area.path
        self.records: list[HandIn] = []
        self.skipped: list[tuple[str, str]] = []
        self.sources: list[tuple[str, str]] = []
        self.copies = self.zips = 0

    @contextlib.contextmanager
    def cleaned_on_error(self):
        """Remove the private folder when collecting fails half-way (a bad --student file, Ctrl-C)."""
        try:
            yield
        except BaseException:
            self.area.close()
            raise

    def finish(self) -> Collection:
        _mark_conflicts(self.records)
        collection = Collection(self.records, self.skipped, self.sources, self.roster, self.workdir)
        collection.area = self.area
        return collection

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
                        record = HandIn(str(folder), "/".join(parts), "folders", parts=parts,
                                        folder=top.joinpath(*below))
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
                    return record.refuse(f"cannot open the folder {'/'.join(parts[:index + 1])}{link}: {exc.strerror}")
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
        return self.take(record, data, *_checked_time(info.st_mtime, "file time"))

    def read_zip(self, path: Path) -> list[HandIn]:
        """A Canvas or Moodle download (or any zip): checked, written into the private folder, each notebook a record."""
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
                    records.append(record.refuse(problem) if problem else self.take(record, data, *_zip_time(info)))
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            return [HandIn(source, "", "zip").refuse(f"not a readable zip ({type(exc).__name__}: {str(exc)[:120]}): "
                                                     f"download it again")]
        return records

    # -- identity -----------------------------------------------------------------------------------

    def identify(self, records: list[HandIn], source: str, above: tuple[str, ...]) -> None:
        """Give each record of one source its student by the source's layout, then its lesson; keep them.
        `above`: the names of the folders holding the source (a zip: its stem), the last one its own."""
        found = [r for r in records if r.parts]  # a refused zip has no entries to tell anyone by
        tops = [r for r in found if len(r.parts) == 1]
        canvas = [r for r in tops if CANVAS_NAME.match(r.parts[0])]
        moodle = [r for r in found if MOODLE_NAME.match(r.parts[0])]
        if canvas and len(canvas) * 2 > len(tops):
            layout, done = "canvas", canvas
            for record in canvas:
                self.canvas_student(record)
        elif moodle and len(moodle) * 2 > len(found):
            layout, done = "moodle", moodle
            for record in moodle:
                self.moodle_student(record)
        elif found and (above[-1:] == ("submitted",) or all(r.parts[0] == "submitted" for r in found)):
            layout, depth = "nbgrader", 0 if above[-1:] == ("submitted",) else 1
            done = [r for r in found if len(r.parts) > depth + 2]
            for record in done:
                self.nbgrader_student(record, depth)
        else:
            layout, done = "", []
        rest = [r for r in found if r not in done]
        for record in rest if layout else []:
            record.notes.append(f"not laid out as {layout} lays out its files: identified by its path")
        generic = self.generic_students(rest, above)
        layout = layout or generic
        for record in records:
            record.layout = layout
            self.set_lesson(record)
        self.records += records
        self.sources.append((source, layout + (f", lesson {records[0].assignment} ({records[0].assignment_from})"
                                               if records and records[0].assignment else "")))

    def canvas_student(self, record: HandIn) -> None:
        """Canvas: the user id in the file name, matched to the roster's canvas_id; `_late` is Canvas's verdict."""
        found = CANVAS_NAME.match(record.parts[0])
        user = found.group("user")
        record.name = found.group("lastfirst")
        record.named_as = CANVAS_RESUBMISSION.sub("", Path(found.group("original")).stem)
        if found.group("late"):
            record.late, record.days_late, record.late_from = True, None, "Canvas's _late_ marker"
            if self.due is not None and record.submitted is not None and record.submitted > self.due:
                record.days_late = math.ceil((record.submitted - self.due) / DAY)
                record.late_from += " and the zip entry time"
        elif record.late:  # Canvas knows the extensions it gave; --due does not
            record.notes.append("on time by Canvas (no _late_ marker), though its zip entry time is after --due")
            record.late, record.days_late, record.late_from = False, None, ""
        student = self.roster.by_canvas_id(user) if self.roster else None
        if student is not None:
            self.set_student(record, student.id, f"Canvas user id {user}")
            return
        record.student, record.matched = f"canvas-{user}", f"Canvas user id {user}"
        if self.roster is not None:
            record.problems[NOT_IN_ROSTER] = (
                f"no roster student has canvas_id {user}" if self.roster.has_canvas_ids else
                "the roster has no canvas_id: use Canvas's gradebook export as the roster, or add a canvas_id column")

    def moodle_student(self, record: HandIn) -> None:
        """Moodle: the full name of the folder (participant ids change from one assignment to the next)."""
        found = MOODLE_NAME.match(record.parts[0])
        full_name = found.group("name")
        if len(record.parts) == 1:  # downloaded without "submissions in folders": the name leads the file name
            record.named_as = Path(found.group("original")).stem
        how = f"Moodle full name {full_name!r}"
        student, why = self.roster.by_name(full_name) if self.roster else (None, "")
        if student is not None:
            self.set_student(record, student.id, how)
            return
        record.student, record.name, record.matched = full_name, full_name, how
        if self.roster is not None:
            record.problems[NOT_IN_ROSTER] = why

    def nbgrader_student(self, record: HandIn, depth: int) -> None:
        """nbgrader: submitted/<student>/<assignment>/...; an assignment named `NN` or `lessonNN` is that lesson."""
        self.set_student(record, record.parts[depth], "nbgrader's submitted/<student>")
        self.flag_other_name(record, set())
        assignment = record.parts[depth + 1]
        own, named = split_handed_in_name(assignment)
        if own == "" and named in self.lessons:
            record.assignment, record.assignment_from = named, f"nbgrader assignment {assignment!r}"

    def generic_students(self, records: list[HandIn], above: tuple[str, ...]) -> str:
        """Per-student folders by the path part that tells students apart; files side by side by their names."""
        depth = None
        if self.roster is not None:  # the shallowest path part that is a roster id: a student's own folders are deeper
            depths = [i for r in records for i, part in enumerate(r.parts[:-1]) if self.roster.by_id(part)]
            depth = min(depths, default=None)
        if depth is None:  # the first path part that differs between the files
            for i in range(max((len(r.parts) for r in records), default=0) - 1):
                if len({r.parts[i] for r in records if len(r.parts) - 1 > i}) > 1:
                    depth = i
                    break
        owners = {r.parts[depth].casefold() for r in records if depth is not None and len(r.parts) - 1 > depth}
        for record in records:
            if depth is not None and len(record.parts) - 1 > depth:
                self.set_student(record, record.parts[depth], f"folder {'/'.join(record.parts[:depth + 1])}")
                self.flag_other_name(record, owners)
            else:
                if depth is not None:
                    record.notes.append("outside the student folders: identified by its file name")
                self.file_name_student(record, above)
        return "folders" if depth is not None else "files"

    def file_name_student(self, record: HandIn, above: tuple[str, ...]) -> None:
        """A file side by side with others: its stem minus the trailing lesson part (`ab12_01` -> ab12)."""
        own, _ = split_handed_in_name(Path(record.parts[-1]).stem)
        if own:
            self.set_student(record, own, "file name")
            return
        # `01_neurons.ipynb`: the lesson's own name, so the nearest folder that is not bpkit's own names the student
        folders = [p for p in (*above, *record.parts[:-1]) if p not in NOT_STUDENT_FOLDERS and p != os.sep]
        if folders:
            self.set_student(record, folders[-1], "the folder it is in (the file keeps the lesson's name)")
        else:
            record.refuse("no student: the file keeps the lesson's own name and no folder names a student; "
                          "grade it with --student ID FILE")

    def flag_other_name(self, record: HandIn, owners: set[str]) -> None:
        """bob_01.ipynb in alice's folder stays alice's, flagged: bob may be missing a hand-in."""
        own, _ = split_handed_in_name(Path(record.parts[-1]).stem)
        if not own or own.casefold() == record.student.casefold():
            return
        other = self.roster.by_id(own) if self.roster else None
        if (other is not None and other.id != record.student) or own.casefold() in owners:
            record.problems[OTHER_NAME] = (f"named after student {own!r} but in {record.student}'s folder: "
                                           f"counted as {record.student}'s")

    def set_student(self, record: HandIn, text: str, how: str) -> None:
        """Name the record's student by text, matched against the roster where there is one."""
        record.matched = how
        student = self.roster.by_id(text) if self.roster else None
        if student is None:
            record.student = text
            if self.roster is not None:
                record.problems[NOT_IN_ROSTER] = f"{text!r} is no roster id"
        else:
            record.student, record.name = student.id, student.name or record.name
            record.problems.pop(NOT_IN_ROSTER, None)

    # -- lesson -------------------------------------------------------------------------------------

    def set_lesson(self, record: HandIn) -> None:
        """The lesson from the metadata, checked against the name's trailing lesson part and the assignment's."""
        assignment, assignment_from = record.assignment, record.assignment_from
        if self.lesson:
            assignment, assignment_from = self.lesson, "--lesson"
        stem = record.named_as or (Path(record.parts[-1]).stem if record.parts else "")
        named = split_handed_in_name(stem)[1]
        named = named if named in self.lessons else None
        declared = record.metadata_lesson
        if record.status == INVALID:  # refused unread: say which lesson it was meant for, where known
            record.lesson = assignment or named or ""
        elif declared is not None and declared not in self.lessons:
            record.lesson = assignment or named or ""
            record.refuse(f"the notebook's metadata says lesson {str(declared)[:10]!r}, which has no graded "
                          f"exercises; known lessons: {', '.join(self.lessons)}")
        elif assignment:
            record.lesson, record.lesson_from = assignment, f"assignment ({assignment_from})"
            if declared is not None and declared != assignment:
                record.refuse(f"this is the lesson-{declared} notebook (its metadata), handed in to lesson "
                              f"{assignment} ({assignment_from}): not graded as {assignment}, and it does not "
                              f"replace a lesson-{declared} hand-in")
            elif named is not None and named != assignment:
                record.refuse(f"the file name says lesson {named}, the assignment is lesson {assignment} "
                              f"({assignment_from})")
        elif declared is not None and named is not None and named != declared:
            # Handed in as lesson `named` (its name is how the class filed it): invalid there, and it does
            # not stand for the lesson its metadata names.
            record.lesson, record.lesson_from = named, "file name"
            record.refuse(f"the notebook's metadata says lesson {declared} but the file name says lesson {named}: "
                          f"not graded as {named}, and it does not replace a lesson-{declared} hand-in; hand in "
                          f"the notebook of lesson {named}")
        elif declared is not None:
            record.lesson, record.lesson_from = declared, "metadata"
        elif named is not None:
            record.lesson, record.lesson_from = named, "file name"
            record.notes.append("no lesson metadata: the lesson is the file name's")
        else:
            record.refuse("unknown lesson: the notebook has no bpkit lesson metadata and its file name no trailing "
                          "lesson number; grade it with --lesson NN")


def _mark_conflicts(records: list[HandIn]) -> None:
    """Two different files for one student and lesson: both `conflict`; the same content twice: graded once."""
    groups: dict[tuple[str, str], list[HandIn]] = {}
    for record in records:
        if record.status != INVALID and record.student and record.lesson:
            groups.setdefault((record.student, record.lesson), []).append(record)
    for (student, lesson), group in groups.items():
        first: dict[str, HandIn] = {}
        for record in group:
            if record.digest in first:
                record.same_as = first[record.digest].where
                record.notes.append(f"the same content as {first[record.digest].where}: graded once")
            else:
                first[record.digest] = record
        if len(first) > 1:
            wheres = [r.where for r in first.values()]
            for record in first.values():
                others = ", ".join(w for w in wheres if w != record.where)
                record.problems[CONFLICT] = (f"{len(first)} different files for {student}, lesson {lesson} (also "
                                             f"{others}): grade the one that counts with --student {student} FILE")


# -- zips ---------------------------------------------------------------------------------------------

def _zip_entries(archive: zipfile.ZipFile) -> tuple[list[tuple[zipfile.ZipInfo, tuple[str, ...], str | None]], str]:
    """(entry, safe path parts, why it is refused or None) for each file entry, or a reason to refuse the whole
    zip (too many entries, or a zip bomb by the sizes it declares: zipfile never unpacks more than declared)."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        return [], f"the zip has {len(infos)} entries, over {MAX_ZIP_ENTRIES}: not extracted (is it a class download?)"
    declared = sum(info.file_size for info in infos)
    if declared > MAX_ZIP_BYTES:
        return [], (f"the zip would unpack to {declared / 2**30:.1f} GB, over {MAX_ZIP_BYTES / 2**30:g} GB: "
                    f"refused as a zip bomb (download the submissions of one assignment at a time)")
    entries, seen = [], set()
    for info in infos:
        if info.is_dir():
            continue
        parts = _entry_parts(_entry_name(info))
        if parts is None:
            entries.append((info, (_shown(info.filename, 200) or "?",),
                            "an unsafe entry name (absolute, `..`, a drive or control characters): not extracted"))
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
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return unicodedata.normalize("NFC", name)


def _entry_parts(name: str) -> tuple[str, ...] | None:
    """The entry's path parts, or None when the name is unsafe (absolute, `..`, a drive, control characters, too deep)."""
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


def _zip_time(info: zipfile.ZipInfo) -> tuple[datetime | None, str, str]:
    """When the entry was written: the UTC time of its extended-timestamp field, else its DOS time read as local time."""
    extra = info.extra
    while len(extra) >= 4:
        tag, size = int.from_bytes(extra[:2], "little"), int.from_bytes(extra[2:4], "little")
        body = extra[4:4 + size]
        if tag == 0x5455 and len(body) >= 5 and body[0] & 1:
            return _checked_time(int.from_bytes(body[1:5], "little", signed=True), "zip entry time")
        extra = extra[4 + size:]
    try:
        return _checked_time(datetime(*info.date_time).timestamp(), "zip entry time")
    except (ValueError, OverflowError, OSError):
        return None, "zip entry time", f"zip entry time {info.date_time!r} is no date"


def _lesson_of_zip(path: Path, lessons: list[str]) -> str | None:
    """The assignment's lesson by the zip's name: `lesson04.zip`, `04_losses.zip`, `BP101-Lesson 4 losses-123.zip`."""
    own, named = split_handed_in_name(path.stem)
    if own == "" and named in lessons:
        return named
    found = {f"{int(n):02d}" for n in ZIP_LESSON.findall(path.stem)}
    return found.pop() if len(found) == 1 and next(iter(found)) in lessons else None


# -- small helpers ------------------------------------------------------------------------------------

def _checked_time(seconds: float, what: str) -> tuple[datetime | None, str, str]:
    """(the UTC time, what, "") or (None, what, why not): NaN, before 1980, after tomorrow, beyond what a date holds."""
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc)
    except (ValueError, OverflowError, OSError, TypeError):
        return None, what, f"{what} {str(seconds)[:24]} is no date"
    if moment < EARLIEST or moment > datetime.now(timezone.utc) + DAY:
        return None, what, f"{what} {moment:%Y-%m-%d} is not a real hand-in time"
    return moment, what, ""


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
    return (f"the file is {_size(size)}, over the {_size(MAX_NOTEBOOK_BYTES)} a notebook may have: clear the "
            f"outputs (Edit > Clear Outputs of All Cells), save, and hand it in again")


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


def _shown(text: str, limit: int) -> str:
    """Text as the plan prints it: no control or bidirectional-override characters, capped."""
    text = _UNSHOWN.sub("?", str(text).replace("\n", " ").replace("\t", " "))
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- the plan -----------------------------------------------------------------------------------------

def format_plan(collection: Collection) -> str:
    """The table file -> student -> lesson -> notes that `bpkit grade --plan` prints; grades nothing."""
    rows = [("FILE", "STUDENT", "LESSON", "NOTES")]
    for record in sorted(collection.records, key=lambda r: (r.student, r.lesson, r.where)):
        notes = []
        if record.late:
            days = "days unknown" if record.days_late is None else f"{record.days_late} day{'s' * (record.days_late != 1)}"
            notes.append(f"late, {days} ({record.late_from})")
        for kind, why in record.problems.items():
            notes.append(f"{kind}: {why}")
        notes += record.notes
        who = record.student or "?"
        if record.name and record.name != record.student:
            who += f" ({record.name})"
        rows.append((_shown(record.where, 300), _shown(f"{who} by {record.matched}" if record.matched else who, 80),
                     record.lesson or "?", _shown("; ".join(notes) or "ok", 400)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3] for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  -----")
    statuses = [r.status for r in collection.records if not r.same_as]
    counts = {kind: sum(kind in r.problems for r in collection.records) for kind in (NOT_IN_ROSTER, OTHER_NAME)}
    lines.append("")
    lines.append(f"{len(collection.records)} notebooks, {len({r.student for r in collection.records if r.student})} "
                 f"students, lessons {', '.join(sorted({r.lesson for r in collection.records if r.lesson})) or 'none'}: "
                 f"{statuses.count('ok')} to grade, {statuses.count(CONFLICT)} in conflict, {statuses.count(INVALID)} "
                 f"invalid, {sum(bool(r.same_as) for r in collection.records)} the same as another, "
                 f"{counts[NOT_IN_ROSTER]} not in the roster, {sum(r.late for r in collection.records)} late")
    for source, layout in collection.sources:
        lines.append(f"source {_shown(source, 100)}: read as {layout}")
    missing = collection.missing()
    if missing:
        lines.append(f"roster students with nothing here: {', '.join(_shown(m, 40) for m in missing[:40])}"
                     + (f" and {len(missing) - 40} more" if len(missing) > 40 else ""))
    for where, why in collection.skipped:
        lines.append(f"left aside: {_shown(where, 100)}: {why}")
    return "\n".join(lines) + "\n"
