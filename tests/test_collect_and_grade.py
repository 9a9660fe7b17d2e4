"""Issue 19 end to end: every collection layout of tests/collections_fixtures.py graded by `bpkit grade`
with its roster, each student's row asserted; the late penalty, the instructor's overrides and Canvas
assignment ids through the gradebook into every export. The fast tests below need no kernel; the
grading ones are marked slow (finished notebooks are the solutions, 100%; the others the released
stubs, 0%, so every expected percentage follows from the fixture).
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

import collections_fixtures as fx
import course_facts
from bpkit.cli import main
from bpkit.grade import parse_override
from bpkit.grading.gradebook import Result, make_row
from bpkit.grading.lms import CANVAS_COLUMN
from bpkit.grading.report import write_exports
from bpkit.grading.roster import read_roster
from bpkit.grading.store import Store, counting
from bpkit.grading.tables import Latest

FIRST = course_facts.lesson_exercise_ids("01")[0]  # an exercise of lesson 01, its points from the registry
FIRST_POINTS = course_facts.exercise_points(FIRST)
POINTS_01 = course_facts.lesson_points("01")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def in_class(tmp_path: Path) -> Path:
    """The class folder the fixtures build in (the gradebook goes next to it)."""
    (tmp_path / "class").mkdir()
    return tmp_path / "class"


def grade(batch: fx.Batch, out: Path, monkeypatch, *extra: str, export: bool = False) -> int:
    """`bpkit grade` on the batch as an instructor types it in the class folder (sources relative to it)."""
    monkeypatch.chdir(batch.root)
    argv = ["grade", "--out", str(out), "--quiet", "--jobs", "2"]
    if not export:
        argv += [str(s) for s in batch.sources]
    if batch.roster is not None:
        argv += ["--roster", str(batch.roster)]
    if batch.due:
        argv += ["--due", batch.due]
    return main(argv + list(extra) + (["--export"] if export else []))


def expected_rows(batch: fx.Batch) -> dict[tuple[str, str], dict]:
    """(student, lesson) -> status, percentage and lateness the summary must hold, from the fixture."""
    wanted: dict[tuple[str, str], dict] = {}
    for e in batch.expected:
        key = (e.student, e.lesson)
        if e.status == "conflict":
            wanted[key] = dict(status="conflict", late="")
        elif e.status == "invalid":
            wanted[key] = dict(status="invalid")
        elif key not in wanted:  # the same content twice (erin) is one row
            wanted[key] = dict(
                status="graded",
                percentage="100.0" if e.finished else "0.0",
                late="yes" if e.late else ("no" if batch.due else ""),
                days_late=str(e.days_late) if e.late and e.days_late is not None else "",
            )
    return wanted


LAYOUTS = [b for b in fx.BATCHES if b is not fx.forty_files]


@pytest.mark.slow
@pytest.mark.parametrize("build", LAYOUTS, ids=lambda b: b.__name__)
def test_every_student_of_each_layout_gets_exactly_their_own_grades(build, tmp_path, monkeypatch):
    batch = build(in_class(tmp_path))
    out = tmp_path / "grades"
    assert grade(batch, out, monkeypatch) == 0
    summary = read_csv(out / "summary.csv")
    wanted = expected_rows(batch)
    roster = [s.id for s in read_roster(batch.roster).students]
    lessons = sorted({lesson for _, lesson in wanted})
    missing = {(s, lesson) for s in roster for lesson in lessons} - set(wanted)
    seen = {(r["student"], r["lesson"]): r for r in summary}
    assert len(seen) == len(summary), "two summary rows for one student and lesson"
    assert set(seen) == set(wanted) | missing, "a student or lesson was invented or lost"
    assert {r["lesson"] for r in summary} == set(lessons), "no invented lesson"
    for key, want in wanted.items():
        row = seen[key]
        assert {k: row[k] for k in want} == want, (key, row)
    for key in missing:
        assert seen[key]["status"] == "missing", key
    history = read_csv(out / "history.csv")  # each file under its path in the class folder (one of two copies)
    assert {r["submission"] for r in history} <= {e.where for e in batch.expected}
    assert {(r["student"], r["lesson"]) for r in history} == set(wanted)

    graded = {key: row for key, row in seen.items() if row["status"] == "graded"}
    canvas = read_csv(out / "exports" / "canvas.csv")
    assert canvas[0]["Student"].strip() == "Points Possible"
    moodle = read_csv(out / "exports" / "moodle.csv")
    for lms, id_column in ((canvas[1:], "SIS Login ID"), (moodle, "ID number")):
        assert {r[id_column] for r in lms} <= set(roster), "only roster students in an LMS export"
        for r in lms:
            for lesson in lessons:
                cell = r[f"bpkit lesson {lesson} ({course_facts.lesson_points(lesson)} points)"]
                row = graded.get((r[id_column], lesson))
                assert cell == (row["total"] if row else ""), (r[id_column], lesson, cell)
    report = (out / "report.html").read_text(encoding="utf-8")
    for key, want in wanted.items():
        if want["status"] == "conflict":
            for e in batch.expected:
                if (e.student, e.lesson) == key:
                    assert e.where in report, "both files of a conflict are named in the report"


@pytest.mark.slow
def test_forty_numbered_files_are_forty_students_at_full_marks(tmp_path, monkeypatch):
    batch = fx.forty_files(in_class(tmp_path))
    out = tmp_path / "grades"
    assert grade(batch, out, monkeypatch) == 0
    summary = read_csv(out / "summary.csv")
    assert sorted((r["student"], r["lesson"], r["status"], r["percentage"]) for r in summary) == [
        (f"s{n:02d}", "01", "graded", "100.0") for n in range(40)
    ]


@pytest.mark.slow
def test_late_penalty_overrides_and_canvas_ids_reach_every_export(tmp_path, monkeypatch):
    """bjones's Canvas file is two days late (a stub, 0 points); the instructor gives him FIRST_POINTS for
    one exercise, with a reason; 10 points a day, at most 15, takes 15 of his percentage."""
    batch = fx.canvas_zip(in_class(tmp_path))
    out = tmp_path / "grades"
    assert grade(batch, out, monkeypatch, "--late-penalty", "10:15", "--canvas-assignment", "01=5501") == 0
    assert (
        grade(
            batch,
            out,
            monkeypatch,
            "--override",
            f"bjones:01:{FIRST}={FIRST_POINTS}",
            "--reason",
            "checked by hand: right idea",
            export=True,
        )
        == 0
    )
    raw = FIRST_POINTS
    off = min(15.0, 100 * raw / POINTS_01) * POINTS_01 / 100
    after = raw - off

    def check() -> None:
        row = {r["student"]: r for r in read_csv(out / "summary.csv")}["bjones"]
        assert (row["late"], row["days_late"], float(row["raw_total"])) == ("yes", "2", raw)
        assert float(row["late_penalty"]) == pytest.approx(off, abs=0.01)
        assert float(row["total"]) == pytest.approx(after, abs=0.01)
        assert float(row["percentage"]) == pytest.approx(100 * after / POINTS_01, abs=0.05)
        assert "override" in row["flags"].split(";") and "right idea" in row["overrides"]
        assert {r["student"]: r for r in read_csv(out / "summary.csv")}["asmith"]["late_penalty"] == ""
        nb = {r["student_id"]: r for r in read_csv(out / "exports" / "nbgrader.csv")}["bjones"]
        assert float(nb["raw_score"]) == raw and float(nb["late_submission_penalty"]) == pytest.approx(off, abs=0.01)
        assert float(nb["score"]) == pytest.approx(after, abs=0.01)
        canvas = read_csv(out / "exports" / "canvas.csv")
        column = "bpkit lesson 01 (5501)"
        assert CANVAS_COLUMN.match(column) and column in canvas[0]
        assert canvas[0][column] == str(POINTS_01)
        bob = next(r for r in canvas if r["SIS Login ID"] == "bjones")
        assert (bob["ID"], float(bob[column])) == ("102", pytest.approx(after, abs=0.01))
        grades = [r for r in read_csv(out / "grades.csv") if r["student"] == "bjones" and r["exercise"] == FIRST]
        assert int(grades[0]["points"]) == FIRST_POINTS and "right idea" in grades[0]["message"]
        feedback = (out / "feedback" / "bjones_01.md").read_text(encoding="utf-8")
        assert "Adjustments by the instructor" in feedback and "right idea" in feedback
        assert "late by 2 days" in feedback
        report = (out / "report.html").read_text(encoding="utf-8")
        assert "right idea" in report and "late by 2 d" in report
        assert "submissions.zip/jonesbob_late_102_9002_01_neurons.ipynb" in report

    check()
    # re-grading bob's file keeps the override, the penalty and the Canvas id (all in the gradebook)
    assert grade(batch, out, monkeypatch, "--student", "bjones") == 0
    check()
    assert len([r for r in read_csv(out / "history.csv") if r["student"] == "bjones"]) == 2


# -- fast: no kernel ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, reason, message",
    [
        (f"ann:01:{FIRST}=1", None, "no --reason"),
        (f"ann:99:{FIRST}=1", "r", "no lesson '99'"),
        ("ann:01:no_such=1", "r", "has no exercise 'no_such'"),
        (f"ann:01:{FIRST}={FIRST_POINTS + 1}", "r", f"worth 0 to {FIRST_POINTS} points"),
        (f"ann:01:{FIRST}=-1", "r", f"worth 0 to {FIRST_POINTS} points"),
        (f"ann:01:{FIRST}=1.5", "r", "whole number from 0 to .*, or checker to take an override back"),
        ("ann:01:no_such=checker", None, "has no exercise 'no_such'"),
        (f"ann:{FIRST}=1", "r", "STUDENT:LESSON:EXERCISE=POINTS"),
    ],
)
def test_a_wrong_override_says_what_is_wrong(spec, reason, message):
    with pytest.raises(ValueError, match=message):
        parse_override(spec, reason)


def test_override_options_on_the_command_line(tmp_path, capsys):
    out = str(tmp_path / "grades")
    assert main(["grade", "--out", out, "--export", "--override", f"ann:01:{FIRST}=1"]) == 2
    assert "no --reason after it" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["grade", "--out", out, "--export", "--reason", "why"])
    assert "--reason must follow" in capsys.readouterr().err
    assert main(["grade", "--out", out, "--export", "--canvas-assignment", "01=abc"]) == 2
    assert "numeric assignment id" in capsys.readouterr().err
    assert main(["grade", "--out", out, "--export", "--late-penalty", "ten"]) == 2
    assert "PERCENT_PER_DAY" in capsys.readouterr().err


def test_an_override_is_taken_back_with_checker(tmp_path, capsys):
    out = tmp_path / "grades"
    store = Store(out)
    _stored(store, "ann", 0)
    store.close()
    spec = f"ann:01:{FIRST}"
    assert main(["grade", "--out", str(out), "--export", "--override", f"{spec}={FIRST_POINTS}", "--reason", "r"]) == 0
    [ann] = read_csv(out / "summary.csv")
    assert ann["total"] == str(FIRST_POINTS) and "override" in ann["flags"]
    assert main(["grade", "--out", str(out), "--export", "--override", f"{spec}=checker"]) == 0
    [ann] = read_csv(out / "summary.csv")
    assert ann["total"] == "0" and "override" not in ann["flags"], "the checker's points stand again"
    capsys.readouterr()
    assert main(["grade", "--out", str(out), "--export", "--override", f"{spec}=checker"]) == 0
    assert "there was no override to take back" in capsys.readouterr().err


def _stored(store: Store, student: str, points: int, flags=(), days_late=None) -> None:
    rows = [
        make_row(
            "x.ipynb",
            student,
            "01",
            eid,
            points if eid == FIRST else 0,
            course_facts.exercise_points(eid),
            "pass" if eid == FIRST and points else "fail",
            "m",
        )
        for eid in course_facts.lesson_exercise_ids("01")
    ]
    store.add(
        Result(f"{student}_01.ipynb", student, "01", rows, flags=list(flags)),
        f"{student}_01.ipynb",
        "0" * 64,
        "2026-11-01T00:00:00Z",
        "2026-11-02T00:00:00Z",
        days_late,
    )


def test_days_late_and_overrides_are_signed(tmp_path):
    store = Store(tmp_path)
    _stored(store, "ann", 0, ["late"], days_late=3)
    store.set_override("ann", "01", FIRST, FIRST_POINTS, "reason", "2026-11-05T00:00:00Z")
    [sub] = store.latest()
    assert (sub.days_late, sub.total, [o["reason"] for o in sub.overrides]) == (3, FIRST_POINTS, ["reason"])
    db = sqlite3.connect(tmp_path / "gradebook.sqlite")
    db.execute("UPDATE overrides SET points = 0")
    db.commit()
    assert store.overrides() == [] and store.latest()[0].total == 0, "a hand-edited override is ignored"
    db.execute("UPDATE submissions SET days_late = ''")
    db.commit()
    assert store.latest() == [], "a row whose days late were erased is not the grader's"
    db.close()
    store.close()


def test_the_instructors_choice_counts_over_conflicts_until_a_later_clean_hand_in():
    def sub(id_, submitted, flags):
        return Latest(id_, f"f{id_}", "dave", "01", "", submitted, "", "graded", 0, 4, flags, "", [])

    finished, stub = sub(1, "2026-11-01", "conflict"), sub(2, "2026-11-02", "conflict")
    assert counting([finished, stub]) is stub, "without a choice: the latest handed in"
    chosen = sub(3, "2026-11-01", "chosen")
    again = [sub(4, "2026-11-01", "conflict"), sub(5, "2026-11-02", "conflict")]  # the class graded again
    assert counting([finished, stub, chosen, *again]) is chosen
    assert counting([finished, stub, chosen, sub(6, "2026-11-02", "chosen;conflict")]) is chosen
    rechosen = sub(7, "2026-11-02", "chosen")
    assert counting([finished, stub, chosen, rechosen]) is rechosen, "the last choice counts"
    earlier_clean, later_clean = sub(8, "2026-10-30", ""), sub(9, "2026-11-05", "")
    assert counting([earlier_clean, chosen, *again]) is chosen
    assert counting([chosen, *again, later_clean]) is later_clean, "a new hand-in after the choice counts"


def test_rows_of_a_gradebook_without_days_late_still_hold(tmp_path):
    store = Store(tmp_path)
    _stored(store, "ann", FIRST_POINTS)
    store.db.execute("ALTER TABLE submissions DROP COLUMN days_late")  # as an earlier grader wrote it
    store.close()
    store = Store(tmp_path)  # migrates: adds the column, empty
    assert [s.total for s in store.latest()] == [FIRST_POINTS]
    store.close()


def test_an_override_of_an_invalid_or_missing_lesson_is_listed_not_applied(tmp_path):
    store = Store(tmp_path)
    store.set_roster([dict(id="ann"), dict(id="bo")])
    invalid = Result("ann_01.ipynb", "ann", "01", [make_row("ann_01.ipynb", "ann", "01", "", 0, 0, "invalid", "bad")])
    store.add(invalid, "ann_01.ipynb", "1" * 64, "", "2026-11-02T00:00:00Z")
    _stored(store, "cy", 0)
    store.set_override("ann", "01", FIRST, 1, "emailed a fixed file", "2026-11-05T00:00:00Z")
    store.set_override("bo", "01", FIRST, 1, "absent with a note", "2026-11-05T00:00:00Z")
    write_exports(store)
    summary = {r["student"]: r for r in read_csv(tmp_path / "summary.csv")}
    assert (summary["ann"]["status"], summary["bo"]["status"]) == ("invalid", "missing")
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Overrides with nothing to apply to" in report
    assert "emailed a fixed file" in report and "absent with a note" in report
    store.close()


@pytest.mark.slow
def test_grading_the_chosen_file_settles_a_conflict(tmp_path, monkeypatch):
    batch = fx.planted_conflict(in_class(tmp_path))
    out = tmp_path / "grades"
    assert grade(batch, out, monkeypatch) == 0
    dave = {r["student"]: r for r in read_csv(out / "summary.csv")}["dave"]
    assert dave["status"] == "conflict"
    assert (
        next(r for r in read_csv(out / "exports" / "canvas.csv") if r["SIS Login ID"] == "dave")[
            f"bpkit lesson 01 ({POINTS_01} points)"
        ]
        == ""
    )
    assert grade(batch, out, monkeypatch, "--student", "dave", "inbox/dave_01_v2.ipynb") == 0
    dave = {r["student"]: r for r in read_csv(out / "summary.csv")}["dave"]
    assert (dave["status"], dave["percentage"], dave["submission"]) == ("graded", "100.0", "inbox/dave_01_v2.ipynb")


@pytest.mark.slow
def test_the_chosen_file_counts_even_when_the_other_was_handed_in_later(tmp_path, monkeypatch):
    """Which file counts is the instructor's choice, not the later file time of the one not chosen."""
    import os

    batch = fx.planted_conflict(in_class(tmp_path))
    finished, stub = batch.root / "inbox" / "dave_01_v2.ipynb", batch.root / "inbox" / "dave_01.ipynb"
    os.utime(finished, (1_700_000_000, 1_700_000_000))
    os.utime(stub, (1_700_086_400, 1_700_086_400))  # the stub a day later
    out = tmp_path / "grades"
    assert grade(batch, out, monkeypatch) == 0
    assert grade(batch, out, monkeypatch, "--student", "dave", "inbox/dave_01_v2.ipynb") == 0
    dave = {r["student"]: r for r in read_csv(out / "summary.csv")}["dave"]
    assert (dave["status"], dave["percentage"], dave["submission"]) == ("graded", "100.0", "inbox/dave_01_v2.ipynb")
    assert grade(batch, out, monkeypatch) == 0  # the whole class again, later: the choice stands
    dave = {r["student"]: r for r in read_csv(out / "summary.csv")}["dave"]
    assert (dave["status"], dave["percentage"], dave["submission"]) == ("graded", "100.0", "inbox/dave_01_v2.ipynb")
