"""What collecting hand-ins produces: one HandIn record per notebook, the Collection of a run, and
the statuses a record can have (identity.py fills them; grade.py and plan.py read them)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bpkit.grading.roster import Roster

INVALID, CONFLICT, NOT_IN_ROSTER, OTHER_NAME = "invalid", "conflict", "not-in-roster", "named-after-other-student"
CHOSEN = "chosen"  # the gradebook flag of a file the instructor chose for its student (--student ID FILE)


class CollectionError(ValueError):
    """An option of the collection is wrong (a due date, a late penalty, a --student file); the message says
    what to do."""


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
    area: object = field(default=None, repr=False)  # the locked run folder holding workdir (sandbox.WorkArea)

    def missing(self) -> list[str]:
        """Roster ids with no record in this collection."""
        present = {r.student for r in self.records}
        return [s.id for s in self.roster.students if s.id not in present] if self.roster else []

    def close(self) -> None:
        """Remove the private copies (the records' `file` and extracted zips)."""
        if self.area is not None:
            self.area.close()  # removes workdir, releases the lock
            self.area = None
        elif self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mark_conflicts(records: list[HandIn]) -> None:
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
                record.problems[CONFLICT] = (
                    f"{len(first)} different files for {student}, lesson {lesson} (also "
                    f"{others}): grade the one that counts with --student {student} FILE"
                )
