"""The class roster: who the students are, by the ids the grade exports and the LMS downloads use.

Two formats are read, told apart by the header line:
- bpkit's own: `id,name,email` and optionally `canvas_id` (the Canvas user id, which Canvas's
  "Download Submissions" puts in every file name);
- Canvas's gradebook export (Grades > Export): `Student, ID, SIS User ID, SIS Login ID, Section, ...`.
  The student's id is `SIS Login ID`, else `SIS User ID`; `ID` is the Canvas user id. The
  "Points Possible" row that follows the header and Canvas's own "Test Student" are skipped.
Names are kept as given; `Last, First` (Canvas's Student column) is also matched as `First Last`.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

MAX_ROSTER_BYTES = 16 * 2**20  # a class of 100,000 students fits; a wrong file (a video) is refused before reading
_BAD_ID = re.compile(r"[\x00-\x1f\x7f/\\]")  # ids name feedback files: no path separators, no control characters
CANVAS_TEST_STUDENT = {"test student", "student, test"}  # Canvas's Student View user, in every export


class RosterError(ValueError):
    """The roster cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""
    email: str = ""
    canvas_id: str = ""  # Canvas user id: how Canvas's download names this student's files


def name_key(name: str) -> str:
    """A full name compared loosely: Unicode-normalised, case-folded, spaces collapsed, `Last, First` read as
    `first last`."""
    name = unicodedata.normalize("NFC", name)
    if name.count(",") == 1:
        last, first = name.split(",")
        name = f"{first} {last}"
    return " ".join(name.casefold().split())


def _token_key(name: str) -> str:
    """The name's words in sorted order, so `Smith Alice` (Moodle set to show last names first) meets `Alice Smith`."""
    return " ".join(sorted(name_key(name).split()))


@dataclass
class Roster:
    students: list[Student]
    source: str = ""  # the file it was read from, for messages
    _by_id: dict = field(default_factory=dict, repr=False)
    _by_folded_id: dict = field(default_factory=dict, repr=False)
    _by_canvas: dict = field(default_factory=dict, repr=False)
    _by_name: dict = field(default_factory=dict, repr=False)
    _by_tokens: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for student in self.students:
            self._by_id[student.id] = student
            self._by_folded_id.setdefault(student.id.casefold(), []).append(student)
            if student.canvas_id:
                self._by_canvas[student.canvas_id] = student
            if student.name:
                self._by_name.setdefault(name_key(student.name), []).append(student)
                self._by_tokens.setdefault(_token_key(student.name), []).append(student)

    @property
    def has_canvas_ids(self) -> bool:
        """Whether Canvas downloads can be matched: some student has a Canvas user id."""
        return bool(self._by_canvas)

    def by_id(self, text: str) -> Student | None:
        """The student whose id is text (exactly, else case-insensitively when that is unambiguous)."""
        if text in self._by_id:
            return self._by_id[text]
        found = self._by_folded_id.get(text.casefold(), [])
        return found[0] if len(found) == 1 else None

    def by_canvas_id(self, canvas_id: str) -> Student | None:
        """The student with this Canvas user id, or None."""
        return self._by_canvas.get(canvas_id)

    def by_name(self, name: str) -> tuple[Student | None, str]:
        """(the student with this full name, "") or (None, why not): no one, or several, have it."""
        for index in (self._by_name.get(name_key(name), []), self._by_tokens.get(_token_key(name), [])):
            if len(index) == 1:
                return index[0], ""
            if len(index) > 1:
                ids = ", ".join(s.id for s in index)
                return (
                    None,
                    f"{len(index)} roster students are named {name!r} ({ids}): grade the file with --student ID FILE",
                )
        return None, f"no roster student is named {name!r}"


def read_roster(path: Path) -> Roster:
    """Read a bpkit roster (id,name,email[,canvas_id]) or a Canvas gradebook export; RosterError says what is wrong."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_ROSTER_BYTES + 1)
    except OSError as exc:
        raise RosterError(f"cannot read the roster {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_ROSTER_BYTES:
        raise RosterError(f"{path} is over {MAX_ROSTER_BYTES // 2**20} MB: is it the roster CSV?")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RosterError(
            f'{path} is not UTF-8 text (byte {exc.start}): save it as "CSV UTF-8" and try again'
        ) from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise RosterError(f"{path} is not a readable CSV file ({exc})") from None
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows:
        raise RosterError(f"{path} is empty: give a header line `id,name,email` and one line per student")
    header = [cell.strip() for cell in rows[0]]
    if len(header) >= 2 and "Student" in header[0] and header[1] == "ID":  # how Canvas's importer tells its format
        students = _canvas_students(path, header, rows[1:])
    elif "id" in [h.lower() for h in header]:
        students = _bpkit_students(path, header, rows[1:])
    else:
        raise RosterError(
            f"{path}: the header line is {', '.join(header[:6])[:200]!r}; a roster needs either the columns "
            f"id,name,email (and optionally canvas_id) or Canvas's gradebook export (Student, ID, SIS User ID, "
            f"SIS Login ID, Section)"
        )
    if not students:
        raise RosterError(f"{path} has a header but no students")
    _check_unique(path, students)
    return Roster(students, str(path))


def _cells(header: list[str], row: list[str], number: int, path: Path) -> dict:
    if len(row) > len(header):
        extra = [c for c in row[len(header) :] if c.strip()]
        if extra:
            raise RosterError(
                f"{path}, line {number}: {len(row)} cells but the header has {len(header)} columns "
                f'(a name with a comma needs quotes: "Smith, Alice")'
            )
    return {key: (row[i].strip() if i < len(row) else "") for i, key in enumerate(header)}


def _bpkit_students(path: Path, header: list[str], rows: list[list[str]]) -> list[Student]:
    header = [h.lower() for h in header]
    students = []
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = _cells(header, row, number, path)
        students.append(
            _student(
                path,
                number,
                cells.get("id", ""),
                cells.get("name", ""),
                cells.get("email", ""),
                cells.get("canvas_id", ""),
            )
        )
    return students


def _canvas_students(path: Path, header: list[str], rows: list[list[str]]) -> list[Student]:
    columns = {name.lower(): name for name in header}
    if "sis login id" not in columns and "sis user id" not in columns:
        raise RosterError(
            f"{path} looks like a Canvas gradebook export but has neither `SIS Login ID` nor "
            f"`SIS User ID`: export the gradebook again from Canvas (Grades > Export > Entire Gradebook)"
        )
    students = []
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = _cells(header, row, number, path)
        name = cells[header[0]]
        if "Points Possible" in name or name.casefold() in CANVAS_TEST_STUDENT:
            continue
        student_id = cells.get(columns.get("sis login id", ""), "") or cells.get(columns.get("sis user id", ""), "")
        if not student_id:
            raise RosterError(
                f"{path}, line {number}: {name!r} has no SIS Login ID nor SIS User ID: give the student "
                f"one in Canvas, or write a roster id,name,email,canvas_id yourself"
            )
        students.append(_student(path, number, student_id, name, "", cells.get("ID", "")))
    return students


def _student(path: Path, number: int, student_id: str, name: str, email: str, canvas_id: str) -> Student:
    if not student_id:
        raise RosterError(f"{path}, line {number}: empty student id: every line needs one")
    if _BAD_ID.search(student_id) or student_id in {".", ".."}:
        raise RosterError(
            f"{path}, line {number}: student id {student_id[:60]!r} has a slash, backslash or control "
            f"character: ids name the feedback files; use letters, digits, `-`, `_`, `.` or `@`"
        )
    if canvas_id and not canvas_id.isdigit():
        raise RosterError(
            f"{path}, line {number}: canvas_id {canvas_id[:60]!r} is not a number (Canvas user ids "
            f"are digits; find them in Canvas's gradebook export, column `ID`)"
        )
    return Student(student_id, name, email, canvas_id)


def _check_unique(path: Path, students: list[Student]) -> None:
    seen: dict[str, str] = {}
    canvas: dict[str, str] = {}
    for student in students:
        if student.id.casefold() in seen:
            raise RosterError(
                f"{path}: student id {student.id!r} appears twice (ids are compared ignoring case, as folder names are)"
            )
        seen[student.id.casefold()] = student.id
        if student.canvas_id:
            if student.canvas_id in canvas:
                raise RosterError(
                    f"{path}: canvas_id {student.canvas_id} is given to both {canvas[student.canvas_id]!r} "
                    f"and {student.id!r}"
                )
            canvas[student.canvas_id] = student.id
