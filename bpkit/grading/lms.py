"""The exports other tools import: nbgrader's CSV columns, a Canvas gradebook CSV (`Name (id)`
assignment columns where the instructor gives their ids, the Points Possible row, Canvas's own user
ids from the roster) and a Moodle grade CSV; with a roster, only its students (an LMS refuses a whole
import for one unknown user), the others listed in exports/unmatched.csv. No grade (missing, invalid,
conflict) is a blank cell, never 0.
"""

from __future__ import annotations

import re

from bpkit.grading.tables import NO_GRADE


def _split_name(name: str) -> tuple[str, str]:
    parts = name.strip().rsplit(" ", 1)
    return (parts[1], parts[0]) if len(parts) == 2 else (name.strip(), "")


def _nbgrader(summary: list[dict], roster: list[dict], dues: dict[str, str]) -> list[dict]:
    emails = {r["id"]: r["email"] for r in roster}
    rows = []
    for r in summary:
        if not r["lesson"]:
            continue
        last, first = _split_name(r["name"])
        rows.append(
            dict(
                assignment=f"lesson_{r['lesson']}",
                duedate=dues.get(r["lesson"], ""),
                timestamp=r["submitted_at"],
                student_id=r["student"],
                last_name=last,
                first_name=first,
                email=emails.get(r["student"], ""),
                raw_score=r["raw_total"],
                late_submission_penalty=r["late_penalty"] or 0,
                score=r["total"],
                max_score=r["max_points"],
            )
        )
    return rows


CANVAS_COLUMN = re.compile(r"\A(.*)\s\((\d+)\)\Z")  # Canvas importer: `Name (id)`, Ruby \z


def _lms(
    summary: list[dict], roster: list[dict], kind: str, assignments: dict[str, str] | None = None
) -> tuple[list[str], list[dict]]:
    """Canvas: Student, ID, SIS User ID, SIS Login ID, Section, one points column per lesson, after a
    Points Possible row; a lesson with a Canvas assignment id (--canvas-assignment) is the column
    `bpkit lesson NN (id)`, which Canvas's importer matches to that assignment by its id.
    Moodle: ID number, Email address, Full name, one points column per lesson.
    With a roster, only roster students (an LMS refuses a whole import for one unknown user); no grade
    (missing, invalid, conflict) is a blank cell, never 0."""

    lessons = sorted({r["lesson"] for r in summary if r["lesson"]})
    maxima = {r["lesson"]: r["max_points"] for r in summary if r["lesson"]}
    known = {r["id"]: r for r in roster}
    assignments = assignments or {}
    columns = [
        f"bpkit lesson {lesson} ({assignments[lesson]})"
        if kind == "canvas" and lesson in assignments
        else f"bpkit lesson {lesson} ({maxima[lesson]} points)"
        for lesson in lessons
    ]
    students = sorted({r["student"] for r in summary if r["lesson"]})
    if known:
        students = [s for s in students if s in known]
    by = {(r["student"], r["lesson"]): r for r in summary}
    rows = []
    if kind == "canvas":
        rows.append(
            {
                "Student": "    Points Possible",
                "ID": "",
                "SIS User ID": "",
                "SIS Login ID": "",
                "Section": "",
                **{column: maxima[lesson] for lesson, column in zip(lessons, columns)},
            }
        )
    for student in students:
        entry_of = known.get(student, {})
        if kind == "canvas":
            row = {
                "Student": entry_of.get("name") or student,
                "ID": entry_of.get("canvas_id", ""),
                "SIS User ID": student,
                "SIS Login ID": student,
                "Section": "",
            }
        else:
            row = {
                "ID number": student,
                "Email address": entry_of.get("email", ""),
                "Full name": entry_of.get("name") or student,
            }
        for lesson, column in zip(lessons, columns):
            entry = by.get((student, lesson))
            row[column] = entry["total"] if entry and entry["status"] not in NO_GRADE else ""
        rows.append(row)
    head = (
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
        if kind == "canvas"
        else ["ID number", "Email address", "Full name"]
    )
    return head + columns, rows


def _unmatched(summary: list[dict], roster: list[dict]) -> list[dict]:
    """Rows of students who are not in the roster: left out of the LMS exports, listed here."""
    known = {r["id"] for r in roster}
    return [r for r in summary if known and r["student"] not in known and r["lesson"]]


# -- the HTML report -------------------------------------------------------------------------------
