"""Step 0 of grading: what was handed in, by whom, for which lesson, on time or not.

`collect(sources, roster)` turns what the instructor gives `bpkit grade` into one `HandIn` record per
handed-in notebook; every later stage takes the record (it holds its metadata's lesson, a private copy
of the file, its digest and the folder whose data files go with it) and never goes back to the file
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

What a record is: records.py. Reading files and zips safely into private copies: intake.py. Times,
--due and the late penalty: times.py. The --plan table: plan.py. The names below are importable
from here as well (grade.py takes them from this module).
"""

from __future__ import annotations

import math
import os
import re
from datetime import datetime
from pathlib import Path

from bpkit.course import DEFAULT_DIR
from bpkit.grading.intake import Intake
from bpkit.grading.plan import format_plan
from bpkit.grading.records import (
    CONFLICT,
    INVALID,
    NOT_IN_ROSTER,
    OTHER_NAME,
    Collection,
    CollectionError,
    HandIn,
    mark_conflicts,
)
from bpkit.grading.roster import Roster
from bpkit.grading.times import DAY, LatePenalty, parse_due, parse_late_penalty
from bpkit.notebook import split_handed_in_name

__all__ = [
    "CONFLICT",
    "INVALID",
    "NOT_IN_ROSTER",
    "OTHER_NAME",
    "Collection",
    "CollectionError",
    "HandIn",
    "LatePenalty",
    "collect",
    "format_plan",
    "known_lessons",
    "parse_due",
    "parse_late_penalty",
]

NOT_STUDENT_FOLDERS = {DEFAULT_DIR.name, "lessons"}  # the folders `bpkit lessons`/`bpkit lab` make: never a student
CANVAS_NAME = re.compile(
    r"^(?P<lastfirst>[^_]*?)(?P<late>_late)?_(?P<user>\d+)_(?P<submission>\d+)_(?P<original>.+)$", re.IGNORECASE
)
CANVAS_RESUBMISSION = re.compile(r"-\d+$")  # Canvas adds `-1`, `-2` to a resubmitted file's name
MOODLE_NAME = re.compile(r"^(?P<name>.+?)_(?P<participant>\d+)_assign(?:submission|feedback)_[a-z]+_?(?P<original>.*)$")


def known_lessons() -> list[str]:
    """Lessons with at least one graded exercise."""
    from bpkit.checks import EXERCISES

    return sorted({exercise.lesson for exercise in EXERCISES.values()})


# -- collecting ---------------------------------------------------------------------------------------


def collect(
    sources: list[Path], roster: Roster | None, *, due=None, lesson: str | None = None, lessons: list[str] | None = None
) -> Collection:
    """One record per handed-in notebook of the sources, each with its student, lesson, lateness and problems."""
    run = _Run(
        roster, parse_due(due) if due is not None else None, lesson, lessons if lessons is not None else known_lessons()
    )
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
            run.skipped.append(
                (str(given), "no such file or folder (a mistyped name, or a pattern that matched nothing?)")
            )
        else:
            run.skipped.append((str(given), "not a notebook (.ipynb), a folder or a .zip"))
    if files:
        shared = Path(os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files]))
        records = run.read_files(files)
        if records:
            run.identify(records, records[0].source, shared.parts)


class _Run(Intake):
    """The state of one collect(): the records so far, the private folder, the options."""

    def __init__(self, roster: Roster | None, due: datetime | None, lesson: str | None, lessons: list[str]):
        if lesson is not None and lesson not in lessons:
            raise CollectionError(f"--lesson {lesson}: no such lesson; known lessons: {', '.join(lessons)}")
        super().__init__(due, lessons)
        self.roster, self.lesson = roster, lesson
        self.records: list[HandIn] = []
        self.sources: list[tuple[str, str]] = []

    def finish(self) -> Collection:
        mark_conflicts(self.records)
        return Collection(self.records, self.skipped, self.sources, self.roster, self.workdir, self.area)

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
        self.sources.append(
            (
                source,
                layout
                + (
                    f", lesson {records[0].assignment} ({records[0].assignment_from})"
                    if records and records[0].assignment
                    else ""
                ),
            )
        )

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
                f"no roster student has canvas_id {user}"
                if self.roster.has_canvas_ids
                else "the roster has no canvas_id: use Canvas's gradebook export as the roster, or add a canvas_id "
                "column"
            )

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
                self.set_student(record, record.parts[depth], f"folder {'/'.join(record.parts[: depth + 1])}")
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
            record.refuse(
                "no student: the file keeps the lesson's own name and no folder names a student; "
                "grade it with --student ID FILE"
            )

    def flag_other_name(self, record: HandIn, owners: set[str]) -> None:
        """bob_01.ipynb in alice's folder stays alice's, flagged: bob may be missing a hand-in."""
        own, _ = split_handed_in_name(Path(record.parts[-1]).stem)
        if not own or own.casefold() == record.student.casefold():
            return
        other = self.roster.by_id(own) if self.roster else None
        if (other is not None and other.id != record.student) or own.casefold() in owners:
            record.problems[OTHER_NAME] = (
                f"named after student {own!r} but in {record.student}'s folder: counted as {record.student}'s"
            )

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
            record.refuse(
                f"the notebook's metadata says lesson {str(declared)[:10]!r}, which has no graded "
                f"exercises; known lessons: {', '.join(self.lessons)}"
            )
        elif assignment:
            record.lesson, record.lesson_from = assignment, f"assignment ({assignment_from})"
            if declared is not None and declared != assignment:
                record.refuse(
                    f"this is the lesson-{declared} notebook (its metadata), handed in to lesson "
                    f"{assignment} ({assignment_from}): not graded as {assignment}, and it does not "
                    f"replace a lesson-{declared} hand-in"
                )
            elif named is not None and named != assignment:
                record.refuse(
                    f"the file name says lesson {named}, the assignment is lesson {assignment} ({assignment_from})"
                )
        elif declared is not None and named is not None and named != declared:
            # Handed in as lesson `named` (its name is how the class filed it): invalid there, and it does
            # not stand for the lesson its metadata names.
            record.lesson, record.lesson_from = named, "file name"
            record.refuse(
                f"the notebook's metadata says lesson {declared} but the file name says lesson {named}: "
                f"not graded as {named}, and it does not replace a lesson-{declared} hand-in; hand in "
                f"the notebook of lesson {named}"
            )
        elif declared is not None:
            record.lesson, record.lesson_from = declared, "metadata"
        elif named is not None:
            record.lesson, record.lesson_from = named, "file name"
            record.notes.append("no lesson metadata: the lesson is the file name's")
        else:
            record.refuse(
                "unknown lesson: the notebook has no bpkit lesson metadata and its file name no trailing "
                "lesson number; grade it with --lesson NN"
            )
