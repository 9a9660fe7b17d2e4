"""Small classes collected the ways classes are collected (issue 19), for the identity and grading tests.

Each builder writes one batch under a folder and returns a `Batch`: the sources to give `bpkit grade`,
the roster, the options, and the record every handed-in notebook must become. A notebook is a real
course notebook: `finished` ones are solutions/NN_*.ipynb (they grade 100%), the others the released
lessons/NN_*.ipynb stubs (0%), so the lesson metadata is the real one and a grading test can assert
each student's percentage from `Expected.finished`.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"01": "01_neurons", "04": "04_losses"}
DUE = "2026-11-01T23:59:00+00:00"
ON_TIME = (2026, 11, 1, 12, 0, 0)  # zip entry times: half a day before DUE, whatever the local zone
TWO_DAYS_LATE = (2026, 11, 3, 12, 0, 0)


def notebook(lesson: str, finished: bool) -> bytes:
    """The bytes of lesson NN's notebook: the solution (finished) or the released stub."""
    return (ROOT / ("solutions" if finished else "lessons") / f"{NAMES[lesson]}.ipynb").read_bytes()


def edited(lesson: str, finished: bool, note: str) -> bytes:
    """The same notebook with one more markdown cell: other bytes, same grade."""
    text = notebook(lesson, finished).decode()
    cell = json.dumps({"cell_type": "markdown", "metadata": {}, "source": [note]}) + ",\n  "
    return text.replace('"cells": [\n  ', '"cells": [\n  ' + cell, 1).encode()


@dataclass
class Expected:
    """What one handed-in notebook must become: its record's where/student/lesson/status/problems/lateness."""

    where: str
    student: str
    lesson: str
    finished: bool = False
    status: str = "ok"
    problems: frozenset = frozenset()
    late: bool = False
    days_late: int | None = None


@dataclass
class Batch:
    """A batch as the instructor gives it: sources (relative to `root`, the class folder), roster and options."""

    root: Path
    sources: list[Path]
    roster: Path | None
    expected: list[Expected]
    lesson: str | None = None  # --lesson
    due: str | None = None  # --due
    missing: list[str] = field(default_factory=list)  # roster students with nothing in the batch


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _roster(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _zip(path: Path, entries: list[tuple[str, bytes, tuple]]) -> Path:
    """A zip whose entries carry their time twice: DOS time (local, no zone) and the UTC extended-timestamp
    field (0x5455) that Info-ZIP and most packers add, which is read first, so tests do not depend on TZ."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, when in entries:
            info = zipfile.ZipInfo(name, date_time=when)
            stamp = int(datetime(*when, tzinfo=timezone.utc).timestamp())
            info.extra = (
                (0x5455).to_bytes(2, "little") + (5).to_bytes(2, "little") + b"\x01" + stamp.to_bytes(4, "little")
            )
            info.external_attr = 0o100644 << 16  # a regular file, as Canvas and Moodle write them
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path


def digits_in_ids(root: Path) -> Batch:
    """Flat files whose student ids hold digits: ab12_01 is ab12's lesson 01, never lesson 12."""
    src = root / "digits"
    _write(src / "ab12_01.ipynb", notebook("01", True))
    _write(src / "ab12_04.ipynb", notebook("04", False))
    _write(src / "team03_01.ipynb", notebook("01", False))
    _write(src / "s07_04.ipynb", notebook("04", True))
    roster = _roster(
        root / "digits.csv",
        ["id,name,email", "ab12,Ann Bell,ab12@uni.example", "team03,Team Three,", "s07,Sam Seven,", "cd34,Cy Dee,"],
    )
    return Batch(
        root,
        [src.relative_to(root)],
        roster,
        [
            Expected("digits/ab12_01.ipynb", "ab12", "01", finished=True),
            Expected("digits/ab12_04.ipynb", "ab12", "04"),
            Expected("digits/team03_01.ipynb", "team03", "01"),
            Expected("digits/s07_04.ipynb", "s07", "04", finished=True),
        ],
        missing=["cd34"],
    )


def lab_homes(root: Path) -> Batch:
    """home/<user>/bpkit-lessons/NN_name.ipynb, the folder `bpkit lab` makes: one student per home."""
    src = root / "home"
    _write(src / "u1001" / "bpkit-lessons" / "01_neurons.ipynb", notebook("01", True))
    _write(src / "u1001" / "bpkit-lessons" / "04_losses.ipynb", notebook("04", False))
    _write(
        src / "u1001" / "bpkit-lessons" / ".ipynb_checkpoints" / "01_neurons-checkpoint.ipynb", notebook("01", False)
    )
    _write(src / "u1002" / "bpkit-lessons" / "01_neurons.ipynb", notebook("01", False))
    roster = _roster(root / "homes.csv", ["id,name,email", "u1001,Una One,", "u1002,Udo Two,"])
    return Batch(
        root,
        [src.relative_to(root)],
        roster,
        [
            Expected("home/u1001/bpkit-lessons/01_neurons.ipynb", "u1001", "01", finished=True),
            Expected("home/u1001/bpkit-lessons/04_losses.ipynb", "u1001", "04"),
            Expected("home/u1002/bpkit-lessons/01_neurons.ipynb", "u1002", "01"),
        ],
    )


def nbgrader_layout(root: Path) -> Batch:
    """nbgrader's submitted/<student>/<assignment>/<notebook>: the student is the folder after submitted/."""
    src = root / "course"
    _write(src / "submitted" / "alice" / "ps1" / "01_neurons.ipynb", notebook("01", True))
    _write(src / "submitted" / "bob" / "ps1" / "01_neurons.ipynb", notebook("01", False))
    _write(src / "submitted" / "bob" / "04" / "04_losses.ipynb", notebook("04", True))
    roster = _roster(root / "nbgrader.csv", ["id,name,email", "alice,Alice A,", "bob,Bob B,"])
    return Batch(
        root,
        [src.relative_to(root)],
        roster,
        [
            Expected("course/submitted/alice/ps1/01_neurons.ipynb", "alice", "01", finished=True),
            Expected("course/submitted/bob/ps1/01_neurons.ipynb", "bob", "01"),
            Expected("course/submitted/bob/04/04_losses.ipynb", "bob", "04", finished=True),
        ],
    )


def same_named_files(root: Path) -> Batch:
    """folders/<student>/my_work_01.ipynb: every file has the same name; the folder tells students apart."""
    src = root / "folders"
    for student, finished in (("alice", True), ("bob", False), ("carol", True)):
        _write(src / student / "my_work_01.ipynb", notebook("01", finished))
    roster = _roster(root / "folders.csv", ["id,name,email", "alice,,", "bob,,", "carol,,"])
    return Batch(
        root,
        [src.relative_to(root)],
        roster,
        [
            Expected("folders/alice/my_work_01.ipynb", "alice", "01", finished=True),
            Expected("folders/bob/my_work_01.ipynb", "bob", "01"),
            Expected("folders/carol/my_work_01.ipynb", "carol", "01", finished=True),
        ],
    )


def canvas_zip(root: Path) -> Batch:
    """Canvas's "Download Submissions" with one late file and one resubmission; the roster is Canvas's export."""
    src = _zip(
        root / "submissions.zip",
        [
            ("smithalice_101_9001_01_neurons.ipynb", notebook("01", True), ON_TIME),
            ("smithalice_101_9001_data.csv", b"x,y\n1,2\n", ON_TIME),
            ("jonesbob_late_102_9002_01_neurons.ipynb", notebook("01", False), TWO_DAYS_LATE),
            ("leecarol_103_9003_01_neurons-1.ipynb", edited("01", True, "resubmitted"), ON_TIME),
            ("nguyendan_104_9004_ab12_01.ipynb", notebook("01", False), ON_TIME),
        ],
    )
    roster = _roster(
        root / "canvas_gradebook.csv",
        [
            "Student,ID,SIS User ID,SIS Login ID,Section,Lesson 01 (5501)",
            "    Points Possible,,,,,100",
            '"Smith, Alice",101,S-1,asmith,BP101,',
            '"Jones, Bob",102,S-2,bjones,BP101,',
            '"Lee, Carol",103,S-3,,BP101,',
            '"Nguyen, Dan",104,S-4,dnguyen,BP101,',
            '"Student, Test",999,,,BP101,',
        ],
    )
    return Batch(
        root,
        [src.relative_to(root)],
        roster,
        [
            Expected("submissions.zip/smithalice_101_9001_01_neurons.ipynb", "asmith", "01", finished=True),
            Expected("submissions.zip/jonesbob_late_102_9002_01_neurons.ipynb", "bjones", "01", late=True, days_late=2),
            Expected("submissions.zip/leecarol_103_9003_01_neurons-1.ipynb", "S-3", "01", finished=True),
            Expected("submissions.zip/nguyendan_104_9004_ab12_01.ipynb", "dnguyen", "01"),
        ],
        due=DUE,
    )


def _moodle_entries(files: list[tuple[str, int, str, bytes, tuple]]) -> list[tuple[str, bytes, tuple]]:
    return [
        (f"{name}_{participant}_assignsubmission_file_/{file}", data, when)
        for name, participant, file, data, when in files
    ]


MOODLE_ROSTER = [
    "id,name,email",
    "m01,Alice Smith,alice@uni.example",
    'm02,"Jones, Bob",bob@uni.example',
    "m03,Chloé Durand,",
]


def moodle_zip(root: Path) -> Batch:
    """Moodle's "Download all submissions" for the lesson-01 assignment (named so): folders by full name."""
    src = _zip(
        root / "BP101-Lesson 01 neurons-5512.zip",
        _moodle_entries(
            [
                ("Alice Smith", 3301, "01_neurons.ipynb", notebook("01", True), ON_TIME),
                ("Bob Jones", 3302, "my lesson.ipynb", notebook("01", False), TWO_DAYS_LATE),
                ("Chloé Durand", 3303, "neurons_final.ipynb", notebook("01", True), ON_TIME),
            ]
        ),
    )
    roster = _roster(root / "moodle.csv", MOODLE_ROSTER)
    return Batch(
        root,
        [src.relative_to(root)],
        roster,
        [
            Expected(
                "BP101-Lesson 01 neurons-5512.zip/Alice Smith_3301_assignsubmission_file_/01_neurons.ipynb",
                "m01",
                "01",
                finished=True,
            ),
            Expected(
                "BP101-Lesson 01 neurons-5512.zip/Bob Jones_3302_assignsubmission_file_/my lesson.ipynb",
                "m02",
                "01",
                late=True,
                days_late=2,
            ),
            Expected(
                "BP101-Lesson 01 neurons-5512.zip/Chloé Durand_3303_assignsubmission_file_/neurons_final.ipynb",
                "m03",
                "01",
                finished=True,
            ),
        ],
        due=DUE,
    )


def misfiled_lesson(root: Path) -> Batch:
    """Alice hands in her lesson-01 notebook again to the lesson-04 assignment: invalid for 04, her 01 stands."""
    first = moodle_zip(root)
    src = _zip(
        root / "BP101-Lesson 04 losses-5513.zip",
        _moodle_entries(
            [
                ("Alice Smith", 4401, "01_neurons.ipynb", notebook("01", True), ON_TIME),
                ("Bob Jones", 4402, "04_losses.ipynb", notebook("04", True), ON_TIME),
            ]
        ),
    )
    prefix = "BP101-Lesson 04 losses-5513.zip"
    return Batch(
        root,
        first.sources + [src.relative_to(root)],
        first.roster,
        first.expected
        + [
            Expected(
                f"{prefix}/Alice Smith_4401_assignsubmission_file_/01_neurons.ipynb",
                "m01",
                "04",
                status="invalid",
                problems=frozenset({"invalid"}),
            ),
            Expected(f"{prefix}/Bob Jones_4402_assignsubmission_file_/04_losses.ipynb", "m02", "04", finished=True),
        ],
        due=DUE,
    )


def planted_conflict(root: Path) -> Batch:
    """Two different files for dave's lesson 01 (a finished one and a later stub): both `conflict`;
    two copies of erin's file with the same content: no conflict, graded once."""
    src = root / "inbox"
    _write(src / "dave_01_v2.ipynb", notebook("01", True))
    _write(src / "dave_01.ipynb", notebook("01", False))
    _write(src / "erin_01.ipynb", notebook("01", True))
    _write(src / "erin_01 (1).ipynb", notebook("01", True))
    roster = _roster(root / "inbox.csv", ["id,name,email", "dave,,", "erin,,"])
    both = frozenset({"conflict"})
    return Batch(
        root,
        [src.relative_to(root)],
        roster,
        [
            Expected("inbox/dave_01.ipynb", "dave", "01", status="conflict", problems=both),
            Expected("inbox/dave_01_v2.ipynb", "dave", "01", finished=True, status="conflict", problems=both),
            Expected("inbox/erin_01 (1).ipynb", "erin", "01", finished=True),
            Expected("inbox/erin_01.ipynb", "erin", "01", finished=True),
        ],
    )


def named_after_other(root: Path) -> Batch:
    """alice puts bob_01.ipynb in her own folder: it is alice's (flagged), and bob's own file stays bob's."""
    src = root / "class"
    _write(src / "alice" / "bob_01.ipynb", notebook("01", False))
    _write(src / "bob" / "01_neurons.ipynb", notebook("01", True))
    roster = _roster(root / "class.csv", ["id,name,email", "alice,,", "bob,,"])
    return Batch(
        root,
        [src.relative_to(root)],
        roster,
        [
            Expected("class/alice/bob_01.ipynb", "alice", "01", problems=frozenset({"named-after-other-student"})),
            Expected("class/bob/01_neurons.ipynb", "bob", "01", finished=True),
        ],
    )


def forty_files(root: Path) -> Batch:
    """s00_01.ipynb .. s39_01.ipynb, copies of the lesson-01 solution: 40 students, lesson 01 each."""
    src = root / "forty"
    for n in range(40):
        _write(src / f"s{n:02d}_01.ipynb", notebook("01", True))
    return Batch(
        root,
        [src.relative_to(root)],
        None,
        [Expected(f"forty/s{n:02d}_01.ipynb", f"s{n:02d}", "01", finished=True) for n in range(40)],
    )


BATCHES = [
    digits_in_ids,
    lab_homes,
    nbgrader_layout,
    same_named_files,
    canvas_zip,
    moodle_zip,
    misfiled_lesson,
    planted_conflict,
    named_after_other,
    forty_files,
]
