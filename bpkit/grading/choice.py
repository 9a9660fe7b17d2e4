"""`bpkit grade --student ID FILE...`: the instructor names the student a file belongs to.

This is how a conflict is settled: grade the file that counts as that student's. The file is read
and its lesson checked like any hand-in (identity.py); only who it belongs to is the instructor's.
"""

from __future__ import annotations

from pathlib import Path

from bpkit.grading.identity import CANVAS_NAME, MOODLE_NAME, _Run, known_lessons
from bpkit.grading.records import Collection, CollectionError
from bpkit.grading.roster import Roster
from bpkit.grading.times import parse_due


def choose(
    student: str,
    files: list[Path],
    roster: Roster | None,
    *,
    due=None,
    lesson: str | None = None,
    lessons: list[str] | None = None,
) -> Collection:
    """`--student ID FILE...`: the instructor says these files are ID's, whatever their names or folders say.

    This is how a conflict is settled: grade the file that counts as that student's. A FILE may be a
    notebook or an entry of a zip written as the plan shows it (`submissions.zip/<entry>`). Two
    different files chosen for one lesson are still a conflict.
    """
    if not student or not student.strip():
        raise CollectionError("--student needs a student id before the file")
    run = _Run(
        roster, parse_due(due) if due is not None else None, lesson, lessons if lessons is not None else known_lessons()
    )
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
            raise CollectionError(
                f"--student {student} {given}: {inside[0]} has no entry {inside[1]!r} "
                f"(copy the name from `bpkit grade --plan`)"
            )
    elif given.suffix.lower() == ".ipynb" and (given.is_file() or given.is_symlink()):
        records = run.read_files([given])
    else:
        raise CollectionError(
            f"--student {student} {given}: give a notebook (.ipynb) or a zip entry as "
            f"`bpkit grade --plan` shows it (submissions.zip/<entry>)"
        )
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
