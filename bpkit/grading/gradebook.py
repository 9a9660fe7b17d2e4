"""Step 6 of grading, the texts: a submission's result rows and its feedback file.

Every text that came out of a student's kernel is cleaned before it is written anywhere (lone
surrogates escaped, control characters dropped, length capped with a note), so one notebook can
neither break the gradebook's files nor bloat them. The gradebook itself is store.py; the CSV
exports and the class report are report.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

PROBLEM_STATUSES = {"invalid", "error", "timeout"}  # the run did not go through normally
MAX_MESSAGE = 4000  # characters of one message in grades.csv and feedback
MAX_NOTE = 600
MAX_NOTES = 30
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")


def clean(text, limit: int = MAX_MESSAGE) -> str:
    """Text safe to write anywhere: valid UTF-8, no control characters but newline/tab, capped."""
    text = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub("?", text.replace("\r\n", "\n"))
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit} more characters cut]"
    return text


@dataclass
class Result:
    """The gradebook rows of one submission and the notes that go into its feedback file."""

    submission: str
    student: str
    lesson: str
    rows: list[dict]
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    sandbox: str = "bwrap"
    kernel_cpu: float = 0.0  # not written anywhere but --json: for benchmarks

    @property
    def problem(self) -> bool:
        return any(row["status"] in PROBLEM_STATUSES for row in self.rows)


def make_row(submission, student, lesson, exercise, points, max_points, status, message, flags=()) -> dict:
    return dict(
        submission=clean(submission, 1000),
        student=clean(student, 200),
        lesson=lesson,
        exercise=exercise,
        points=int(points),
        max_points=int(max_points),
        status=status,
        message=clean(message),
        flags=";".join(flags),
    )


def feedback_text(result: Result, adjustments: list[str] = ()) -> str:
    """The student's feedback file: score, one line per exercise, the instructor's adjustments (late
    penalty, overridden points, with the reasons), then each failure in full."""
    total = sum(int(row["points"]) for row in result.rows)
    possible = sum(int(row["max_points"]) for row in result.rows)
    lines = [f"# Feedback for {result.student}", ""]
    if result.rows and result.rows[0]["status"] == "invalid":
        lines += [
            f"Your file `{Path(result.submission).name}` could not be graded: {result.rows[0]['message']}.",
            "",
            "Please hand in the notebook again (save it in JupyterLab first, then send the .ipynb file).",
            "",
        ]
        return "\n".join(lines)
    share = f" ({100 * total / possible:.0f}%)" if possible else ""
    lines += [f"Lesson {result.lesson}: **{total} / {possible} points**{share}", ""]
    lines += ["| exercise | points | result |", "|---|---|---|"]
    verdicts = {"pass": "passed", "fail": "failed", "error": "not checked", "timeout": "timed out"}
    for row in result.rows:
        mark = "✔" if row["status"] == "pass" else "✘"
        verdict = verdicts.get(row["status"], row["status"])
        if row.get("override") is not None:
            mark, verdict = "✎", f"{verdict}; set by the instructor"
        lines.append(f"| `{row['exercise']}` | {row['points']} / {row['max_points']} | {mark} {verdict} |")
    lines.append("")
    if adjustments:
        lines += ["## Adjustments by the instructor", ""]
        lines += [f"- {clean(line, MAX_NOTE)}" for line in adjustments] + [""]
    for row in result.rows:
        if row["status"] != "pass":
            verdict = verdicts.get(row["status"], row["status"])
            lines += [
                f"## `{row['exercise']}`: {verdict}",
                "",
                "```text",
                row["message"].replace("```", "'''"),
                "```",
                "",
            ]
    if result.notes:
        lines += ["## Notes from running your notebook", ""]
        shown = result.notes[:MAX_NOTES]
        lines += [f"- {clean(note, MAX_NOTE)}" for note in shown]
        if len(result.notes) > len(shown):
            lines.append(f"- ... and {len(result.notes) - len(shown)} more")
        lines.append("")
    if result.sandbox != "bwrap":
        lines += ["_Graded without a sandbox (--no-sandbox)._", ""]
    if all(row["status"] == "pass" for row in result.rows):
        lines += ["Every exercise passed. Well done!", ""]
    return "\n".join(lines)
