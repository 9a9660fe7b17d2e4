"""The gradebook's tables as the exports write them: summary rows (late penalties applied), the
student x lesson table, and CSV text in which no cell is a spreadsheet formula.

Pure functions of what `store.Store` reads back; `report.py` writes them to files.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

# The columns of grades.csv, summary.csv and history.csv.
GRADE_FIELDS = ["submission", "student", "lesson", "exercise", "points", "max_points", "status", "message", "flags"]
SUMMARY_FIELDS = [
    "student",
    "name",
    "lesson",
    "status",
    "total",
    "max_points",
    "percentage",
    "flags",
    "sandbox",
    "submission",
    "submitted_at",
    "late",
    "days_late",
    "raw_total",
    "late_penalty",
    "overrides",
]
HISTORY_FIELDS = [
    "id",
    "student",
    "lesson",
    "status",
    "total",
    "max_points",
    "submission",
    "sha256",
    "submitted_at",
    "graded_at",
    "counts",
]


@dataclass
class Latest:
    """The submission that counts for one student and lesson, with its exercise rows."""

    id: int
    path: str
    student: str
    lesson: str
    sha256: str
    submitted_at: str
    graded_at: str
    status: str
    total: int
    max_points: int
    flags: str
    sandbox: str
    rows: list[dict]
    days_late: int | None = None  # from the collection (None: not late, or late by a marker only)
    notes: list[str] = field(default_factory=list)
    overrides: list[dict] = field(default_factory=list)  # the instructor's overrides applied to rows


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting so as a formula (OWASP)


def csv_cell(value):
    """The value as a CSV cell no spreadsheet runs: text starting with `=`, `+`, `-`, `@`, tab or CR gets a
    leading `'` (OWASP's rule for CSV injection), whatever column it is in. Numbers are left as numbers:
    they are the grader's own (points, totals, row ids, never negative), and the LMS importers must read them."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(fields: list[str], rows: list[dict]) -> str:
    """A CSV file (header, then one line per row, missing fields empty) in which no cell is a formula."""
    buffer = io.StringIO()
    # CRLF line ends (RFC 4180, as Excel writes them): the writer quotes a cell holding any character of
    # the line end, so a CR inside a name cannot start a new row (whose first cell could be a formula)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(field) for field in fields])
    writer.writerows([csv_cell(row.get(field, "")) for field in fields] for row in rows)
    return buffer.getvalue()


NO_GRADE = ("missing", "invalid", "conflict")  # statuses under which no grade stands: exported blank


def percentage(total: int, possible: int) -> str:
    return f"{100 * total / possible:.1f}" if possible else "0.0"


def points_text(points: float):
    """Points as the exports write them: a whole number as one, else two decimals (a late penalty's share)."""
    return int(points) if float(points).is_integer() else round(float(points), 2)


def summary_rows(
    latest: list[Latest],
    roster: list[dict],
    dues: dict[str, str],
    penalties: dict[str, tuple[float, float]] | None = None,
) -> list[dict]:
    """One row per student and lesson: the submission that counts, or `missing` for a roster student. Where
    the lesson has a late penalty and the submission is late, `total` and `percentage` are after it
    (`raw_total` before, `late_penalty` the points taken off)."""
    from bpkit.grading.identity import LatePenalty

    names = {r["id"]: r["name"] for r in roster}
    rows = []
    for sub in latest:
        late = "yes" if "late" in sub.flags.split(";") else _late(sub.submitted_at, dues.get(sub.lesson))
        off = 0.0
        rule = (penalties or {}).get(sub.lesson)
        if rule and late == "yes" and sub.status not in NO_GRADE and sub.max_points:
            share = LatePenalty(*rule).deduction(100 * sub.total / sub.max_points, sub.days_late)
            off = share * sub.max_points / 100
        total = sub.total - off
        rows.append(
            dict(
                student=sub.student,
                name=names.get(sub.student, ""),
                lesson=sub.lesson,
                status=sub.status,
                total=points_text(total),
                max_points=sub.max_points,
                percentage=percentage(total, sub.max_points),
                flags=sub.flags,
                sandbox=sub.sandbox,
                submission=sub.path,
                submitted_at=sub.submitted_at,
                late=late,
                days_late=sub.days_late if sub.days_late is not None and late == "yes" else "",
                raw_total=sub.total,
                late_penalty=points_text(off) if off else "",
                overrides="; ".join(f"{o['exercise']}={o['points']} ({o['reason']})" for o in sub.overrides),
            )
        )
    lessons = sorted({s.lesson for s in latest if s.lesson})
    handed = {(s.student, s.lesson) for s in latest}
    for student in roster:
        for lesson in lessons:
            if (student["id"], lesson) not in handed:
                rows.append(
                    dict(
                        student=student["id"],
                        name=student["name"],
                        lesson=lesson,
                        status="missing",
                        total=0,
                        max_points=_max_points(lesson),
                        percentage="0.0",
                        flags="",
                        sandbox="",
                        submission="",
                        submitted_at="",
                        late="",
                        days_late="",
                        raw_total=0,
                        late_penalty="",
                        overrides="",
                    )
                )
    return sorted(rows, key=lambda r: (r["student"], r["lesson"]))


def _max_points(lesson: str) -> int:
    from bpkit.checks import EXERCISES

    return sum(e.points for e in EXERCISES.values() if e.lesson == lesson)


def _late(submitted_at: str, due: str | None) -> str:
    if not due or not submitted_at:
        return ""
    return "yes" if submitted_at > due else "no"


def table_rows(summary: list[dict]) -> tuple[list[str], list[dict]]:
    """The student x lesson table: percentage, or the status where there is no score."""
    lessons = sorted({r["lesson"] for r in summary if r["lesson"]})
    table: dict[str, dict] = {}
    for r in summary:
        if not r["lesson"]:
            continue
        line = table.setdefault(r["student"], {"student": r["student"], "name": r["name"]})
        line[f"lesson_{r['lesson']}"] = r["status"] if r["status"] in NO_GRADE else r["percentage"]
    return ["student", "name", *[f"lesson_{lesson}" for lesson in lessons]], [table[s] for s in sorted(table)]
