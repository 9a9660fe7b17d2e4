"""The class gradebook: one SQLite file per course (--out/gradebook.sqlite), CSV files as exports.

Each graded submission is one transaction (its row, its exercise rows), so writing costs the same
for the thousandth submission as for the first, and a run stopped at any point keeps everything it
had finished. Grading adds to the gradebook: a student's latest submission of a lesson counts,
earlier ones stay as history. Rows are signed with an HMAC whose key (--out/.bpkit-key) no
sandbox can see; a row whose signature does not hold was not written by the grader and is ignored
(and graded again when its file is handed in again). Everything in --out is the instructor's alone
(folders rwx------, files rw-------, whatever the umask), and no CSV cell opens as a formula.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from pathlib import Path

from bpkit.files import PRIVATE_FILE, private_folder, write_atomic
from bpkit.grading.gradebook import Result, feedback_text
from bpkit.grading.overrides import apply_overrides
from bpkit.grading.records import CHOSEN, CONFLICT
from bpkit.grading.tables import Latest

KEY_FILE = ".bpkit-key"
DB_FILE = "gradebook.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL, student TEXT NOT NULL, lesson TEXT NOT NULL, sha256 TEXT NOT NULL,
    submitted_at TEXT NOT NULL, graded_at TEXT NOT NULL, status TEXT NOT NULL,
    total INTEGER NOT NULL, max_points INTEGER NOT NULL, flags TEXT NOT NULL, sandbox TEXT NOT NULL,
    notes TEXT NOT NULL, signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    submission_id INTEGER NOT NULL REFERENCES submissions(id), position INTEGER NOT NULL,
    exercise TEXT NOT NULL, points INTEGER NOT NULL, max_points INTEGER NOT NULL,
    status TEXT NOT NULL, message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS roster (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS due (lesson TEXT PRIMARY KEY, due_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS late_penalty (lesson TEXT PRIMARY KEY, per_day REAL NOT NULL, maximum REAL NOT NULL);
CREATE TABLE IF NOT EXISTS canvas_assignment (lesson TEXT PRIMARY KEY, assignment TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS overrides (
    student TEXT NOT NULL, lesson TEXT NOT NULL, exercise TEXT NOT NULL, points INTEGER NOT NULL,
    reason TEXT NOT NULL, given_at TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (student, lesson, exercise)
);
CREATE INDEX IF NOT EXISTS by_student ON submissions(student, lesson);
CREATE INDEX IF NOT EXISTS by_file ON submissions(path, sha256);
CREATE INDEX IF NOT EXISTS results_of ON results(submission_id);
"""


def submission_status(result: Result) -> str:
    """graded (every exercise ran), incomplete (some could not be checked), invalid, or conflict (another
    file of the same student and lesson was handed in: no grade stands until the instructor chooses)."""
    statuses = {row["status"] for row in result.rows}
    if "invalid" in statuses:
        return "invalid"
    if "conflict" in result.flags:
        return "conflict"
    return "incomplete" if statuses & {"error", "timeout"} else "graded"


class Store:
    """The gradebook of one --out folder. Thread-safe: one connection, one lock."""

    def __init__(self, out: Path):
        self.out = out
        _private_out(out)
        private_folder(out / "feedback")
        self.key = self._key()
        self._lock = threading.Lock()
        path = out / DB_FILE
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))  # created private: sqlite3 would use the umask
        os.chmod(path, PRIVATE_FILE)  # a gradebook written by an earlier version may be readable by all
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")  # SQLite gives -wal and -shm the database file's permissions
        for suffix in ("-wal", "-shm"):  # ... when it creates them: these may be an earlier version's
            if (companion := path.with_name(path.name + suffix)).exists():
                os.chmod(companion, PRIVATE_FILE)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        if "canvas_id" not in {row[1] for row in self.db.execute("PRAGMA table_info(roster)")}:  # an older gradebook
            self.db.execute("ALTER TABLE roster ADD COLUMN canvas_id TEXT NOT NULL DEFAULT ''")
        if "days_late" not in {row[1] for row in self.db.execute("PRAGMA table_info(submissions)")}:
            self.db.execute("ALTER TABLE submissions ADD COLUMN days_late TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _key(self) -> bytes:
        path = self.out / KEY_FILE
        if path.exists():
            return bytes.fromhex(path.read_text().strip())
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
        return key

    def _sign(self, fields: list, rows: list[tuple]) -> str:
        payload = json.dumps([fields, rows], default=str)
        return hmac.new(self.key, payload.encode("utf-8"), hashlib.sha256).hexdigest()

    # -- writing ---------------------------------------------------------------------------------

    def add(
        self, result: Result, path: str, sha256: str, submitted_at: str, graded_at: str, days_late: int | None = None
    ) -> int:
        """Record one graded submission in one transaction and write its feedback file."""
        status = submission_status(result)
        total = sum(int(r["points"]) for r in result.rows)
        possible = sum(int(r["max_points"]) for r in result.rows)
        fields = [
            path,
            result.student,
            result.lesson,
            sha256,
            submitted_at,
            graded_at,
            status,
            total,
            possible,
            ";".join(result.flags),
            result.sandbox,
            json.dumps(result.notes),
        ]
        rows = [
            (i, r["exercise"], int(r["points"]), int(r["max_points"]), r["status"], r["message"])
            for i, r in enumerate(result.rows)
        ]
        late = str(int(days_late)) if days_late is not None else ""
        signature = self._sign(_signed(fields, late), rows)
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self.db.execute(
                    "INSERT INTO submissions (path, student, lesson, sha256, submitted_at, graded_at, status, total,"
                    " max_points, flags, sandbox, notes, days_late, signature) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (*fields, late, signature),
                )
                sid = cursor.lastrowid
                self.db.executemany(
                    "INSERT INTO results (submission_id, position, exercise, points, max_points, status, message)"
                    " VALUES (?,?,?,?,?,?,?)",
                    [(sid, *row) for row in rows],
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        write_atomic(
            self.out / "feedback" / feedback_name(result.student, result.lesson), feedback_text(result), PRIVATE_FILE
        )
        return sid

    def set_roster(self, roster: list[dict]) -> None:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM roster")
            self.db.executemany(
                "INSERT INTO roster (id, name, email, canvas_id) VALUES (?,?,?,?)",
                [(r["id"], r.get("name", ""), r.get("email", ""), r.get("canvas_id", "")) for r in roster],
            )
            self.db.execute("COMMIT")

    def set_due(self, lessons, due_at: str) -> None:
        """Remember the due date of these lessons (kept for every later run and export)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR REPLACE INTO due (lesson, due_at) VALUES (?, ?)",
                [(lesson, due_at) for lesson in sorted(set(lessons)) if lesson],
            )
            self.db.execute("COMMIT")

    def set_late_penalty(self, lessons, per_day: float, maximum: float) -> None:
        """Remember the late penalty of these lessons (percentage points a day, at most `maximum`)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR REPLACE INTO late_penalty (lesson, per_day, maximum) VALUES (?, ?, ?)",
                [(lesson, float(per_day), float(maximum)) for lesson in sorted(set(lessons)) if lesson],
            )
            self.db.execute("COMMIT")

    def set_canvas_assignments(self, ids: dict[str, str]) -> None:
        """Remember the Canvas assignment id of each lesson (canvas.csv's `Name (id)` columns)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR REPLACE INTO canvas_assignment (lesson, assignment) VALUES (?, ?)", sorted(ids.items())
            )
            self.db.execute("COMMIT")

    def set_override(self, student: str, lesson: str, exercise: str, points: int, reason: str, given_at: str) -> None:
        """The instructor's points for one exercise of one student's lesson, with the reason; replaces an
        earlier override of the same exercise, and holds over every later grading of that lesson."""
        fields = [student, lesson, exercise, int(points), reason, given_at]
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO overrides (student, lesson, exercise, points, reason, given_at,"
                " signature) VALUES (?,?,?,?,?,?,?)",
                (*fields, self._sign(["override", *fields], [])),
            )
            self.db.execute("COMMIT")

    def remove_override(self, student: str, lesson: str, exercise: str) -> bool:
        """Take an override back (the checker's points stand again); False when there was none."""
        with self._lock:
            gone = self.db.execute(
                "DELETE FROM overrides WHERE student = ? AND lesson = ? AND exercise = ?", (student, lesson, exercise)
            ).rowcount
        return gone > 0

    # -- reading ---------------------------------------------------------------------------------

    def late_penalties(self) -> dict[str, tuple[float, float]]:
        """lesson -> (percentage points a day, at most)."""
        with self._lock:
            return {
                lesson: (per_day, maximum)
                for lesson, per_day, maximum in self.db.execute("SELECT lesson, per_day, maximum FROM late_penalty")
            }

    def canvas_assignments(self) -> dict[str, str]:
        with self._lock:
            return dict(self.db.execute("SELECT lesson, assignment FROM canvas_assignment").fetchall())

    def overrides(self) -> list[dict]:
        """The overrides whose signature holds (one written by hand is ignored), by student, lesson, exercise."""
        with self._lock:
            rows = self.db.execute(
                "SELECT student, lesson, exercise, points, reason, given_at, signature"
                " FROM overrides"
                " ORDER BY student, lesson, exercise"
            ).fetchall()
        return [
            dict(student=s, lesson=le, exercise=e, points=p, reason=r, given_at=g)
            for s, le, e, p, r, g, signature in rows
            if hmac.compare_digest(signature, self._sign(["override", s, le, e, p, r, g], []))
        ]

    def unverified_overrides(self) -> int:
        with self._lock:
            total = self.db.execute("SELECT COUNT(*) FROM overrides").fetchone()[0]
        return total - len(self.overrides())

    def dues(self) -> dict[str, str]:
        with self._lock:
            return dict(self.db.execute("SELECT lesson, due_at FROM due").fetchall())

    def lessons(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self.db.execute("SELECT DISTINCT lesson FROM submissions WHERE lesson != ''")]

    def _verified(self, where: str = "", params: tuple = ()) -> list[Latest]:
        """Submissions (with rows) whose signature holds, in id order."""
        with self._lock:
            subs = self.db.execute(
                "SELECT id, path, student, lesson, sha256, submitted_at, graded_at, status, total, max_points, flags,"
                f" sandbox, notes, days_late, signature FROM submissions {where} ORDER BY id",
                params,
            ).fetchall()
            found = []
            for sid, *fields, late, signature in subs:
                rows = self.db.execute(
                    "SELECT position, exercise, points, max_points, status, message FROM results"
                    " WHERE submission_id = ? ORDER BY position",
                    (sid,),
                ).fetchall()
                if not hmac.compare_digest(signature, self._sign(_signed(fields, late), [tuple(r) for r in rows])):
                    continue
                path, student, lesson, sha, submitted, graded, status, total, possible, flags, sandbox, notes = fields
                dict_rows = [
                    dict(
                        submission=path,
                        student=student,
                        lesson=lesson,
                        exercise=r[1],
                        points=r[2],
                        max_points=r[3],
                        status=r[4],
                        message=r[5],
                        flags=flags,
                    )
                    for r in rows
                ]
                found.append(
                    Latest(
                        sid,
                        path,
                        student,
                        lesson,
                        sha,
                        submitted,
                        graded,
                        status,
                        total,
                        possible,
                        flags,
                        sandbox,
                        dict_rows,
                        int(late) if late else None,
                        _notes(notes),
                    )
                )
            return found

    def unverified_count(self) -> int:
        with self._lock:
            total = self.db.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]
        return total - len(self._verified())

    def graded(self, path: str, sha256: str) -> bool:
        """Has this exact file (same path, same content) been graded already?"""
        return bool(self._verified("WHERE path = ? AND sha256 = ?", (path, sha256)))

    def all(self) -> list[Latest]:
        return self._verified()

    def latest(self) -> list[Latest]:
        """Per student and lesson, the submission that counts (see `counting`)."""
        every: dict[tuple[str, str], list[Latest]] = {}
        for sub in self._verified():
            every.setdefault((sub.student, sub.lesson), []).append(sub)
        best = [counting(subs) for _, subs in sorted(every.items())]
        return apply_overrides(best, self.overrides())

    def roster(self) -> list[dict]:
        with self._lock:
            rows = self.db.execute("SELECT id, name, email, canvas_id FROM roster ORDER BY id").fetchall()
        return [dict(id=i, name=n, email=e, canvas_id=c) for i, n, e, c in rows]


def counting(subs: list[Latest]) -> Latest:
    """Of one student's submissions of one lesson, the one that counts: the latest handed in, then the latest
    graded; but where the instructor chose a file (flag `chosen`, --student ID FILE), the last one chosen,
    over any file in conflict whenever handed in, until a file handed in later without conflict."""
    order = sorted(subs, key=lambda s: (s.submitted_at, s.id))
    chosen = [s for s in subs if CHOSEN in s.flags.split(";") and CONFLICT not in s.flags.split(";")]
    if not chosen:
        return order[-1]
    choice = max(chosen, key=lambda s: s.id)
    later = [
        s
        for s in order
        if not {CHOSEN, CONFLICT} & set(s.flags.split(";"))
        and (s.submitted_at, s.id) > (choice.submitted_at, choice.id)
    ]
    return later[-1] if later else choice


def _signed(fields: list, days_late: str) -> list:
    """The signed fields of a submission: days_late joins them where there is one, so rows an older
    grader signed (without the column) still hold, and a row whose days are changed or erased does not."""
    return list(fields) + [days_late] if days_late else list(fields)


def _notes(text: str) -> list[str]:
    try:
        notes = json.loads(text)
    except ValueError:
        return []
    return [str(n) for n in notes] if isinstance(notes, list) else []


def _private_out(out: Path) -> None:
    """--out holds every grade of the class: a new folder, an empty one or an earlier gradebook is made
    rwx------ (on a shared JupyterHub no one else may enter). A folder that already holds other things (say
    --out .) keeps its permissions: it is the instructor's to set, and every file written in it is private."""
    if not out.exists() or out.is_dir() and ((out / KEY_FILE).exists() or not any(out.iterdir())):
        try:
            private_folder(out)
        except PermissionError:
            if not out.is_dir():
                raise
            # a folder shared with us (another user's): we may write in it, not change it; the files stay private
    else:
        out.mkdir(parents=True, exist_ok=True)


def feedback_name(student: str, lesson: str) -> str:
    """feedback/<student>_<lesson>.md with letters, digits, `-`, `_`, `.` only."""
    import re

    safe = re.sub(r"[^A-Za-z0-9._-]", "_", student).strip(".") or "student"
    return f"{safe[:120]}_{lesson}.md" if lesson else f"{safe[:120]}.md"
