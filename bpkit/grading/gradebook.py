"""Step 6 of grading: the gradebook (grades.csv, summary.csv, feedback/<student>.md) in --out.

Every text that came out of a student's kernel is cleaned before it is written (lone surrogates
escaped, control characters dropped, length capped with a note), so one notebook can neither break
the files nor bloat them. Each submission's rows are signed with an HMAC whose key lives in
--out/.bpkit-key (never visible to a sandbox): `--resume` keeps only rows whose signature holds,
so rows written by anyone but the grader are graded again.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from bpkit.files import write_atomic

GRADE_FIELDS = ["submission", "student", "lesson", "exercise", "points", "max_points", "status", "message", "flags"]
SUMMARY_FIELDS = ["submission", "student", "lesson", "total", "max_points", "percentage", "flags", "sandbox"]
PROBLEM_STATUSES = {"invalid", "error", "timeout"}  # the run did not go through normally
MAX_MESSAGE = 4000  # characters of one message in grades.csv and feedback
MAX_NOTE = 600
MAX_NOTES = 30
KEY_FILE = ".bpkit-key"
SIGNATURE_FILE = ".bpkit-signatures.json"
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

    @property
    def problem(self) -> bool:
        return any(row["status"] in PROBLEM_STATUSES for row in self.rows)


def make_row(submission, student, lesson, exercise, points, max_points, status, message, flags=()) -> dict:
    return dict(submission=clean(submission, 1000), student=clean(student, 200), lesson=lesson, exercise=exercise,
                points=int(points), max_points=int(max_points), status=status, message=clean(message),
                flags=";".join(flags))


def _csv_text(fields: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summary_rows(results: list[Result]) -> list[dict]:
    """One row per submission: points earned, points possible, percentage."""
    rows = []
    for result in results:
        total = sum(int(row["points"]) for row in result.rows)
        possible = sum(int(row["max_points"]) for row in result.rows)
        percentage = f"{100 * total / possible:.1f}" if possible else "0.0"
        rows.append(dict(submission=result.submission, student=result.student, lesson=result.lesson, total=total,
                         max_points=possible, percentage=percentage, flags=";".join(result.flags),
                         sandbox=result.sandbox))
    return rows


def feedback_text(result: Result) -> str:
    """The student's feedback file: score, one line per exercise, then each failure in full."""
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
        lines.append(f"| `{row['exercise']}` | {row['points']} / {row['max_points']} | {mark} {verdict} |")
    lines.append("")
    for row in result.rows:
        if row["status"] != "pass":
            verdict = verdicts.get(row["status"], row["status"])
            lines += [f"## `{row['exercise']}`: {verdict}", "", "```text", row["message"].replace("```", "'''"), "```", ""]
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


def feedback_name(student: str) -> str:
    """A file name for a student's feedback: letters, digits, `-`, `_`, `.` only."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", student).strip(".") or "student"
    return safe[:120] + ".md"


class Gradebook:
    """grades.csv, summary.csv and feedback/ in the --out folder, rewritten after every submission."""

    def __init__(self, out: Path, resume: bool, submissions: list[Path]):
        self.out = out
        self.results: list[Result] = []
        self.dropped: list[str] = []  # submissions whose rows on disk were not signed by the grader
        self.position = {str(p): i for i, p in enumerate(submissions)}
        out.mkdir(parents=True, exist_ok=True)
        (out / "feedback").mkdir(exist_ok=True)
        self.key = self._key()
        self.signatures: dict[str, str] = {}
        grades = out / "grades.csv"
        if resume and grades.exists():
            self._load(grades)
        self.save()  # also proves the folder is writable before any kernel starts

    def _key(self) -> bytes:
        path = self.out / KEY_FILE
        if path.exists():
            return bytes.fromhex(path.read_text().strip())
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
        return key

    def _sign(self, result: Result) -> str:
        payload = json.dumps([result.rows, result.flags, result.sandbox], sort_keys=True, default=str)
        return hmac.new(self.key, payload.encode("utf-8"), hashlib.sha256).hexdigest()

    def _load(self, grades: Path) -> None:
        try:
            signatures = json.loads((self.out / SIGNATURE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            signatures = {}
        with open(grades, encoding="utf-8", errors="replace", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != GRADE_FIELDS:
                raise ValueError(f"{grades} does not have the columns {', '.join(GRADE_FIELDS)}; use another --out")
            by_submission: dict[str, Result] = {}
            for row in reader:
                result = by_submission.setdefault(row["submission"], Result(row["submission"], row["student"], row["lesson"], []))
                try:
                    row["points"], row["max_points"] = int(row["points"]), int(row["max_points"])
                except (TypeError, ValueError):
                    row["points"] = row["max_points"] = -1  # cannot be signed: dropped below
                result.rows.append(row)
        for submission, result in by_submission.items():
            entry = signatures.get(submission, {})
            result.flags = list(entry.get("flags", [])) if isinstance(entry, dict) else []
            result.sandbox = entry.get("sandbox", "bwrap") if isinstance(entry, dict) else "bwrap"
            result.notes = []
            signature = entry.get("signature", "") if isinstance(entry, dict) else ""
            if hmac.compare_digest(str(signature), self._sign(result)):
                self.results.append(result)
                self.signatures[submission] = signature
            else:
                self.dropped.append(submission)

    def graded(self, path: Path) -> bool:
        """Is this submission already in the gradebook (as typed, or as the same file)?"""
        name = clean(path, 1000)
        try:
            resolved = clean(path.resolve(), 1000)
        except OSError:
            resolved = name
        return any(r.submission in (name, resolved) for r in self.results)

    def add(self, result: Result) -> None:
        """Record one submission: its feedback file, then the two CSV files."""
        self.results = [r for r in self.results if r.submission != result.submission]
        self.results.append(result)
        self.results.sort(key=lambda r: self.position.get(r.submission, -1))
        self.signatures[result.submission] = self._sign(result)
        write_atomic(self.out / "feedback" / feedback_name(result.student), feedback_text(result))
        self.save()

    def save(self) -> None:
        """Rewrite grades.csv, summary.csv and the signatures atomically (a reader never sees half a file)."""
        write_atomic(self.out / "grades.csv", _csv_text(GRADE_FIELDS, [row for r in self.results for row in r.rows]))
        write_atomic(self.out / "summary.csv", _csv_text(SUMMARY_FIELDS, summary_rows(self.results)))
        signatures = {
            r.submission: {"signature": self.signatures.get(r.submission, ""), "flags": r.flags, "sandbox": r.sandbox}
            for r in self.results
        }
        write_atomic(self.out / SIGNATURE_FILE, json.dumps(signatures, indent=1))
