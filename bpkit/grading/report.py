"""Exports of the class gradebook: CSV files, LMS imports and a self-contained HTML class report.

All are written from the gradebook at the end of each grading run (and after an interrupt), so
they always agree with it; `bpkit grade --out DIR --export` writes them again without grading.
Every file is rw------- (the instructor's alone) and every CSV goes through store.csv_text, so no
cell a student chose (a file name, a student id, a message) opens as a formula in a spreadsheet.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import Counter
from pathlib import Path

from bpkit.files import PRIVATE_FILE, private_folder, write_atomic
from bpkit.grading.gradebook import Result, feedback_text
from bpkit.grading.lms import _lms, _nbgrader, _unmatched
from bpkit.grading.overrides import unapplied_overrides
from bpkit.grading.store import Store, feedback_name
from bpkit.grading.tables import GRADE_FIELDS, HISTORY_FIELDS, SUMMARY_FIELDS, csv_text, summary_rows, table_rows

NBGRADER_FIELDS = [
    "assignment",
    "duedate",
    "timestamp",
    "student_id",
    "last_name",
    "first_name",
    "email",
    "raw_score",
    "late_submission_penalty",
    "score",
    "max_score",
]
HINT_LINE = re.compile(r"^\s*hint:\s*(.+)$", re.MULTILINE)


def write_exports(store: Store) -> dict[str, Path]:
    """Write every export into store.out; returns name -> path."""
    out = store.out
    latest = store.latest()
    roster = store.roster()
    dues = store.dues()
    overrides = store.overrides()
    summary = summary_rows(latest, roster, dues, store.late_penalties())
    _adjusted_feedback(store, latest, summary)
    files = {
        "grades": (out / "grades.csv", csv_text(GRADE_FIELDS, [row for sub in latest for row in sub.rows])),
        "summary": (out / "summary.csv", csv_text(SUMMARY_FIELDS, summary)),
        "history": (out / "history.csv", csv_text(HISTORY_FIELDS, _history(store, latest))),
    }
    fields, table = table_rows(summary)
    files["table"] = (out / "table.csv", csv_text(fields, table))
    private_folder(out / "exports")
    files["nbgrader"] = (out / "exports" / "nbgrader.csv", csv_text(NBGRADER_FIELDS, _nbgrader(summary, roster, dues)))
    canvas_fields, canvas = _lms(summary, roster, "canvas", store.canvas_assignments())
    files["canvas"] = (out / "exports" / "canvas.csv", csv_text(canvas_fields, canvas))
    moodle_fields, moodle = _lms(summary, roster, "moodle")
    files["moodle"] = (out / "exports" / "moodle.csv", csv_text(moodle_fields, moodle))
    files["unmatched"] = (out / "exports" / "unmatched.csv", csv_text(SUMMARY_FIELDS, _unmatched(summary, roster)))
    conflicts = _conflict_files(store.all(), latest)
    files["report"] = (
        out / "report.html",
        report_html(latest, summary, conflicts, unapplied_overrides(latest, overrides)),
    )
    for path, text in files.values():
        write_atomic(path, text, PRIVATE_FILE)  # every grade of the class: the instructor's alone
    return {name: path for name, (path, _) in files.items()}


def _adjusted_feedback(store: Store, latest, summary: list[dict]) -> None:
    """Rewrite the feedback file of each submission the instructor adjusted (a late penalty, an override),
    from the gradebook: adjustments made later (say with --export) reach the student too."""
    by = {(r["student"], r["lesson"]): r for r in summary}
    for sub in latest:
        row = by.get((sub.student, sub.lesson), {})
        lines = adjustment_lines(row, sub.overrides)
        if not lines:
            continue
        result = Result(
            sub.path,
            sub.student,
            sub.lesson,
            sub.rows,
            list(sub.notes),
            [f for f in sub.flags.split(";") if f],
            sub.sandbox,
        )
        write_atomic(
            store.out / "feedback" / feedback_name(sub.student, sub.lesson), feedback_text(result, lines), PRIVATE_FILE
        )


def adjustment_lines(row: dict, overrides: list[dict]) -> list[str]:
    """What the instructor changed in one submission's grade, as sentences for the feedback file."""
    lines = [
        f"`{o['exercise']}`: {o['points']} / {o['max_points']} points (the grader gave {o['was']}): {o['reason']}"
        for o in overrides
    ]
    if row.get("late_penalty"):
        days = row.get("days_late")
        late = f"late by {days} day{'s' if days != 1 else ''}" if days not in ("", None) else "marked late"
        lines.append(
            f"Handed in {late}: {row['late_penalty']} points off; {row['total']} / {row['max_points']} "
            f"points ({row['percentage']}%) count."
        )
    return lines


def _conflict_files(every, latest) -> dict[tuple[str, str], list[str]]:
    """(student, lesson) -> the files in conflict, for the lessons whose counting submission is a conflict."""
    open_ = {(s.student, s.lesson) for s in latest if s.status == "conflict"}
    files: dict[tuple[str, str], list[str]] = {}
    for s in every:
        if (
            (s.student, s.lesson) in open_
            and "conflict" in s.flags.split(";")
            and s.path not in files.get((s.student, s.lesson), [])
        ):
            files.setdefault((s.student, s.lesson), []).append(s.path)
    return files


def _history(store: Store, latest) -> list[dict]:
    counting = {sub.id for sub in latest}
    return [
        dict(
            id=s.id,
            student=s.student,
            lesson=s.lesson,
            status=s.status,
            total=s.total,
            max_points=s.max_points,
            submission=s.path,
            sha256=s.sha256,
            submitted_at=s.submitted_at,
            graded_at=s.graded_at,
            counts="yes" if s.id in counting else "no",
        )
        for s in store.all()
    ]


def _figure_png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(latest, summary) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plots = {}
    lessons = sorted({r["lesson"] for r in summary if r["lesson"]})
    if lessons:
        fig, axes = plt.subplots(1, len(lessons), figsize=(3.2 * len(lessons), 2.6), squeeze=False)
        for ax, lesson in zip(axes[0], lessons):
            scores = [float(r["percentage"]) for r in summary if r["lesson"] == lesson and r["status"] != "missing"]
            ax.hist(scores, bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.01], color="#4c78a8", edgecolor="white")
            missing = sum(r["status"] == "missing" for r in summary if r["lesson"] == lesson)
            ax.set_title(
                f"lesson {lesson}: {len(scores)} handed in" + (f", {missing} missing" if missing else ""), fontsize=9
            )
            ax.set_xlabel("score (%)")
            ax.set_xlim(0, 100)
        axes[0][0].set_ylabel("students")
        plots["distribution"] = _figure_png(fig)
    rates = _pass_rates(latest)
    if rates:
        fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(rates) + 0.8))
        labels = [f"{lesson} {exercise}" for lesson, exercise, _, _ in rates]
        values = [100 * passed / total for _, _, passed, total in rates]
        ax.barh(labels[::-1], values[::-1], color="#59a14f")
        ax.set_xlim(0, 100)
        ax.set_xlabel("students passing (%)")
        plots["pass_rates"] = _figure_png(fig)
    return plots


def _pass_rates(latest) -> list[tuple[str, str, int, int]]:
    counts: dict[tuple[str, str], list[int]] = {}
    for sub in latest:
        if sub.status == "invalid":
            continue
        for row in sub.rows:
            entry = counts.setdefault((sub.lesson, row["exercise"]), [0, 0])
            entry[0] += row["status"] == "pass"
            entry[1] += 1
    return [(lesson, exercise, p, t) for (lesson, exercise), (p, t) in counts.items()]


def not_attempted(latest) -> int:
    """Exercises handed in as the released stub (`not implemented yet`)."""
    return sum(
        row["status"] == "fail" and "not implemented yet" in row["message"] for sub in latest for row in sub.rows
    )


def frequent_hints(latest, limit: int = 15) -> list[tuple[str, str, int]]:
    """(exercise, hint, how many students got it), most frequent first; stubs left unfinished are
    not mistakes and are counted apart (not_attempted)."""
    counter: Counter = Counter()
    for sub in latest:
        for row in sub.rows:
            if row["status"] == "fail" and "not implemented yet" not in row["message"]:
                match = HINT_LINE.search(row["message"])
                hint = match.group(1).strip() if match else row["message"].splitlines()[0][:200]
                counter[(row["exercise"], hint)] += 1
    return [(exercise, hint, n) for (exercise, hint), n in counter.most_common(limit)]


def report_html(latest, summary, conflicts: dict | None = None, unapplied: list[dict] | None = None) -> str:
    """The class report; `conflicts` (student, lesson) -> files in conflict, `unapplied` overrides with nothing
    to apply to."""
    esc = html.escape
    conflicts = conflicts or {}
    plots = _plots(latest, summary)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>bpkit class report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}"
        "th{background:#f3f3f3}.bad{color:#b00}</style></head><body>",
        "<h1>bpkit class report</h1>",
        f"<p id='counts'>{len({r['student'] for r in summary})} students, {len(latest)} submissions that count.</p>",
    ]
    if "distribution" in plots:
        parts.append(
            "<h2>Score distribution per lesson</h2>"
            f"<img id='distribution' alt='score distribution' src='data:image/png;base64,{plots['distribution']}'>"
        )
    rates = _pass_rates(latest)
    if rates:
        parts.append("<h2>Pass rate per exercise</h2>")
        if "pass_rates" in plots:
            parts.append(f"<img id='pass-rates' alt='pass rates' src='data:image/png;base64,{plots['pass_rates']}'>")
        parts.append("<table id='pass-rate-table'><tr><th>lesson</th><th>exercise</th><th>passed</th></tr>")
        for lesson, exercise, passed, total in rates:
            parts.append(f"<tr><td>{esc(lesson)}</td><td>{esc(exercise)}</td><td>{passed} / {total}</td></tr>")
        parts.append("</table>")
    hints = frequent_hints(latest)
    parts.append(
        "<h2>The most frequent mistakes</h2><table id='hints'><tr><th>exercise</th><th>hint</th><th>students</th></tr>"
    )
    for exercise, hint, n in hints:
        parts.append(f"<tr><td>{esc(exercise)}</td><td>{esc(hint)}</td><td>{n}</td></tr>")
    parts.append("</table>")
    parts.append(
        f"<p id='not-attempted'>Exercises handed in unfinished (the released stub): {not_attempted(latest)}.</p>"
    )
    look = [
        r for r in summary if r["flags"] or r["status"] in ("incomplete", "invalid", "conflict") or r["late"] == "yes"
    ]
    parts.append(
        "<h2>Submissions that need a look</h2><table id='attention'>"
        "<tr><th>student</th><th>lesson</th><th>status</th><th>flags</th><th>late</th><th>overrides</th>"
        "<th>file</th></tr>"
    )
    for r in look:
        mark = " class='bad'" if r["status"] in ("incomplete", "invalid", "conflict") else ""
        late = ""
        if r["late"] == "yes":
            late = "late" + (f" by {r['days_late']} d" if r["days_late"] not in ("", None) else "")
            late += f", {r['late_penalty']} points off" if r["late_penalty"] else ""
        files = conflicts.get((r["student"], r["lesson"])) or [r["submission"]]
        shown = "<br>".join(esc(f) for f in files)
        if r["status"] == "conflict":
            shown += "<br><i>settle it: bpkit grade ... --student " + esc(r["student"]) + " FILE</i>"
        parts.append(
            f"<tr><td>{esc(r['student'])}</td><td>{esc(r['lesson'])}</td><td{mark}>{esc(r['status'])}</td>"
            f"<td>{esc(r['flags'])}</td><td>{esc(late)}</td><td>{esc(r['overrides'])}</td>"
            f"<td>{shown}</td></tr>"
        )
    parts.append("</table>")
    if unapplied:
        parts.append(
            "<h2>Overrides with nothing to apply to</h2><p>No graded submission of that student and lesson "
            "(missing, invalid or in conflict): the override waits for one.</p><table id='unapplied'>"
            "<tr><th>student</th><th>lesson</th><th>exercise</th><th>points</th><th>reason</th></tr>"
        )
        for o in unapplied:
            parts.append(
                f"<tr><td>{esc(o['student'])}</td><td>{esc(o['lesson'])}</td><td>{esc(o['exercise'])}</td>"
                f"<td>{o['points']}</td><td>{esc(o['reason'])}</td></tr>"
            )
        parts.append("</table>")
    fields, table = table_rows(summary)
    parts.append("<h2>Students</h2><table id='students'><tr>" + "".join(f"<th>{esc(f)}</th>" for f in fields) + "</tr>")
    for row in table:
        parts.append("<tr>" + "".join(f"<td>{esc(str(row.get(f, '')))}</td>" for f in fields) + "</tr>")
    parts.append("</table></body></html>\n")
    return "\n".join(parts)
