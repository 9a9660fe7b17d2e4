"""A scripted workshop, run as an instructor would (issue 12, "Done when").

A class of 12 on a roster (two names with non-ASCII letters) plus one student who is not on it,
three lessons (01, 04, 06). Submissions are built from the real notebooks: the solution (full
marks), the released lesson (stubs: nothing passes), the solution with one function replaced by a
typical wrong version whose checker hint is known, a notebook whose kernel dies (incomplete), an
empty file and a lesson-06 notebook saved as `judy_04.ipynb` (invalid). One student uses the
folder layout (`frank/04_losses.ipynb`), one is missing everything, a mistyped path is given.

Then late fixes: four students rewrite a file (later mtime) and are re-graded one by one with
`--student ID`; after each, the new result counts, the old one is in history.csv with counts=no,
and no other student's row in any CSV changed. A `--resume` run grades nothing. Every expected
value (status, points, pass rate, hint count, late flag, export cell) is computed from the table
of submissions below, never read back from the grader. The class report is opened in Chromium.

One module fixture runs the whole workshop (about 25 graded notebooks); the tests read what it
recorded.
"""

from __future__ import annotations

import contextlib
import csv
import html.parser
import io
import json
import math
import os
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from bpkit.cli import main
from course_facts import exercise_points, lesson_exercise_ids, lesson_points

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "workshop"
LESSON_FILES = {"01": "01_neurons", "04": "04_losses", "06": "06_backprop"}
LESSONS = sorted(LESSON_FILES)
IDS = {lesson: lesson_exercise_ids(lesson) for lesson in LESSONS}  # catalogue order
POINTS = {eid: exercise_points(eid) for lesson in LESSONS for eid in IDS[lesson]}
MAX = {lesson: lesson_points(lesson) for lesson in LESSONS}

DUE = "2026-06-01T12:00:00Z"
DUE_TS = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0

ROSTER = [  # id, name, email
    ("alice", "Alice Martin", "alice@example.org"),
    ("bob", "Bob Nguyen", "bob@example.org"),
    ("carol", "Carol Díaz", "carol@example.org"),
    ("dave", "Dave Okafor", "dave@example.org"),
    ("erin", "Erin Walsh", "erin@example.org"),
    ("frank", "Frank Müller", "frank@example.org"),
    ("grace", "Grace Hopper", "grace@example.org"),
    ("heidi", "Heidi Ångström", "heidi@example.org"),
    ("ivan", "Ivan Petrov", "ivan@example.org"),
    ("judy", "Judy Chen", "judy@example.org"),
    ("kim", "Kim Lee", "kim@example.org"),
    ("mallory", "Mallory Zoë Brown", "mallory@example.org"),
]
ROSTER_IDS = [r[0] for r in ROSTER]
NAMES = {r[0]: r[1] for r in ROSTER}
EMAILS = {r[0]: r[2] for r in ROSTER}
OUTSIDER = "oscar"  # hands in lesson 01, not on the roster

# Typical wrong versions, each matching one of the checker's registered mistakes (its hint below).
WRONG = {
    "layer_forward": (
        "def layer_forward(X, W, b, activation):\n    Z = X @ W + b\n    return activation(Z), Z",
        "Z and A are swapped: return (Z, A)",
    ),
    "neuron_forward": (
        "def neuron_forward(x, w, b, activation):\n    return weighted_sum(x, w, b)",
        "the activation is missing: return activation(z)",
    ),
    "mse": (
        "def mse(y_pred, y):\n    return float(np.sum((y_pred - y) ** 2))",
        "the division by the number of elements is missing: mean, not sum",
    ),
    "mse_grad": ("def mse_grad(y_pred, y):\n    return (y_pred - y) / y.size", "missing factor 2: d/dx of x**2 is 2x"),
    "relu_backward": (
        "def relu_backward(dout, z):\n    return (z > 0).astype(float)",
        "missing dout: (z > 0) is only the local derivative; return dout * (z > 0)",
    ),
}

# kind: "full", "stub", "wrong:<exercise>", "exits" (kernel dies after the last cell), "empty",
# "lesson06" (a lesson-06 solution under another lesson's file name).
# file (relative to submissions/) -> (student, lesson, kind, mtime)
T0 = DUE_TS - 3 * 24 * HOUR
INITIAL = {
    "alice_01.ipynb": ("alice", "01", "full", T0 + 60),
    "bob_01.ipynb": ("bob", "01", "full", T0 + 120),
    "carol_01.ipynb": ("carol", "01", "stub", T0 + 180),
    "dave_01.ipynb": ("dave", "01", "wrong:layer_forward", T0 + 240),
    "erin_01.ipynb": ("erin", "01", "wrong:layer_forward", T0 + 300),
    "frank/01_neurons.ipynb": ("frank", "01", "full", T0 + 360),
    "grace_01.ipynb": ("grace", "01", "full", T0 + 420),
    "heidi_01.ipynb": ("heidi", "01", "wrong:neuron_forward", T0 + 480),
    "ivan_01.ipynb": ("ivan", "01", "empty", T0 + 540),
    "judy_01.ipynb": ("judy", "01", "full", T0 + 600),
    "kim_01.ipynb": ("kim", "01", "exits", T0 + 660),
    "oscar_01.ipynb": (OUTSIDER, "01", "stub", T0 + 720),
    "alice_04.ipynb": ("alice", "04", "full", T0 + 24 * HOUR),
    "bob_04.ipynb": ("bob", "04", "wrong:mse_grad", T0 + 24 * HOUR + 60),
    "carol_04.ipynb": ("carol", "04", "wrong:mse_grad", T0 + 24 * HOUR + 120),
    "dave_04.ipynb": ("dave", "04", "stub", T0 + 24 * HOUR + 180),
    "frank/04_losses.ipynb": ("frank", "04", "full", T0 + 24 * HOUR + 240),
    "grace_04.ipynb": ("grace", "04", "wrong:mse", T0 + 24 * HOUR + 300),
    "judy_04.ipynb": ("judy", "04", "lesson06", T0 + 24 * HOUR + 360),
    "alice_06.ipynb": ("alice", "06", "full", T0 + 48 * HOUR),
    "bob_06.ipynb": ("bob", "06", "wrong:relu_backward", T0 + 48 * HOUR + 60),
    "erin_06.ipynb": ("erin", "06", "stub", T0 + 48 * HOUR + 120),
    "heidi_06.ipynb": ("heidi", "06", "wrong:relu_backward", DUE_TS + 1 * HOUR),  # handed in late
}
MISTYPED = "mallroy_01.ipynb"  # mallory's file, mistyped: it does not exist
# Late fixes, re-graded one by one: (student, file, new kind, new mtime, with --resume). Without
# --resume, `--student` grades every file of that student again (unchanged ones too); with it, only
# the changed file.
FIXES = [
    ("carol", "carol_01.ipynb", "full", DUE_TS + 2 * 24 * HOUR, False),  # late
    ("judy", "judy_04.ipynb", "full", DUE_TS - 1 * HOUR, True),  # the right lesson this time, on time
    ("bob", "bob_06.ipynb", "full", DUE_TS + 3 * 24 * HOUR, False),  # late
    ("dave", "dave_04.ipynb", "wrong:mse_grad", DUE_TS - 2 * HOUR, True),  # on time, still one mistake
]
CSV_FILES = {  # export -> (path in --out, the column naming the student)
    "summary": ("summary.csv", "student"),
    "grades": ("grades.csv", "student"),
    "table": ("table.csv", "student"),
    "history": ("history.csv", "student"),
    "nbgrader": ("exports/nbgrader.csv", "student_id"),
    "canvas": ("exports/canvas.csv", "SIS User ID"),
    "moodle": ("exports/moodle.csv", "ID number"),
}


# -- expectations from the table above ------------------------------------------------------------


def exercise_status(kind: str, eid: str) -> str:
    if kind == "full":
        return "pass"
    if kind == "stub":
        return "fail"
    if kind == "exits":
        return "error"
    if kind.startswith("wrong:"):
        return "fail" if kind == f"wrong:{eid}" else "pass"
    raise ValueError(kind)


def expected_submission(kind: str, lesson: str) -> dict:
    """status, total, max_points and exercise statuses of one submission of `lesson`."""
    if kind in ("empty", "lesson06"):
        return dict(status="invalid", total=0, max_points=MAX[lesson], exercises={"": "invalid"})
    statuses = {eid: exercise_status(kind, eid) for eid in IDS[lesson]}
    total = sum(POINTS[eid] for eid, s in statuses.items() if s == "pass")
    status = "incomplete" if "error" in statuses.values() else "graded"
    return dict(status=status, total=total, max_points=MAX[lesson], exercises=statuses)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pct(total: int, possible: int) -> str:
    return f"{100 * total / possible:.1f}"


def counting(state: dict) -> dict[tuple[str, str], dict]:
    """(student, lesson) -> {file, kind, mtime} of the submission that counts, from a file state."""
    return {(s, lesson): dict(file=f, kind=k, mtime=m) for f, (s, lesson, k, m) in state.items()}


def expected_summary(state: dict, subs: Path) -> dict[tuple[str, str], dict]:
    """(student, lesson) -> the summary.csv row expected, for every roster student and lesson."""
    counts = counting(state)
    rows = {}
    for (student, lesson), sub in counts.items():
        exp = expected_submission(sub["kind"], lesson)
        rows[(student, lesson)] = dict(
            student=student,
            name=NAMES.get(student, ""),
            lesson=lesson,
            status=exp["status"],
            total=str(exp["total"]),
            max_points=str(exp["max_points"]),
            percentage=pct(exp["total"], exp["max_points"]),
            flags="" if student in NAMES else "not-in-roster",
            sandbox="bwrap",
            submission=str((subs / sub["file"]).resolve()),
            submitted_at=iso(sub["mtime"]),
            late="yes" if sub["mtime"] > DUE_TS else "no",
            days_late=str(math.ceil((sub["mtime"] - DUE_TS) / (24 * HOUR))) if sub["mtime"] > DUE_TS else "",
            raw_total=str(exp["total"]),
            late_penalty="",
            overrides="",
        )  # no penalty nor override in this class
    handed_lessons = sorted({lesson for _, lesson in counts})
    for student in ROSTER_IDS:
        for lesson in handed_lessons:
            rows.setdefault(
                (student, lesson),
                dict(
                    student=student,
                    name=NAMES[student],
                    lesson=lesson,
                    status="missing",
                    total="0",
                    max_points=str(MAX[lesson]),
                    percentage="0.0",
                    flags="",
                    sandbox="",
                    submission="",
                    submitted_at="",
                    late="",
                    days_late="",
                    raw_total="0",
                    late_penalty="",
                    overrides="",
                ),
            )
    return rows


def state_after(fixes_done: int) -> dict:
    state = dict(INITIAL)
    for student, name, kind, mtime, _ in FIXES[:fixes_done]:
        _, lesson, _, _ = state[name]
        state[name] = (student, lesson, kind, mtime)
    return state


FINAL = state_after(len(FIXES))


# -- building the submissions ---------------------------------------------------------------------


def read_nb(folder: str, lesson: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / f"{LESSON_FILES[lesson]}.ipynb", as_version=4)


def index_of(nb, needle: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and needle in c.source)


def write_submission(path: Path, lesson: str, kind: str, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "empty":
        path.write_bytes(b"")
    else:
        if kind == "full":
            nb = read_nb("solutions", lesson)
        elif kind == "stub":
            nb = read_nb("lessons", lesson)
        elif kind == "lesson06":
            nb = read_nb("solutions", "06")
        elif kind == "exits":
            nb = read_nb("solutions", lesson)
            nb.cells.append(new_code_cell("import os\nos._exit(1)"))
        elif kind.startswith("wrong:"):
            eid = kind.split(":", 1)[1]
            nb = read_nb("solutions", lesson)
            nb.cells[index_of(nb, f"def {eid}(")].source = WRONG[eid][0]
        else:
            raise ValueError(kind)
        nbformat.write(nb, path)
    os.utime(path, (mtime, mtime))


# -- running and reading --------------------------------------------------------------------------


def run(args: list[str]) -> tuple[int, str, str]:
    """`bpkit <args>` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as stop:  # argparse
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def snapshot(out: Path) -> dict:
    """Every CSV export (rows) and its bytes."""
    return {
        name: dict(rows=read_csv(out / rel), raw=(out / rel).read_bytes(), key=key)
        for name, (rel, key) in CSV_FILES.items()
    }


def rows_of(snap: dict, name: str, student: str | None = None, others: bool = False) -> list[dict]:
    key = snap[name]["key"]
    return [r for r in snap[name]["rows"] if (r[key] != student if others else r[key] == student)]


class Tables(html.parser.HTMLParser):
    """Rows (lists of cell texts) of every <table id=...>, and the <p id=...> texts."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.paragraphs: dict[str, str] = {}
        self._table = self._row = self._cell = self._p = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "p" and attrs.get("id"):
            self._p = attrs["id"]
            self.paragraphs[self._p] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "p":
            self._p = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        elif self._p is not None:
            self.paragraphs[self._p] += data


def parse_report(path: Path) -> Tables:
    parser = Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def hint_of(message: str) -> str:
    """The hint line of a checker's failure message (the first line when it has none)."""
    for line in message.splitlines():
        if line.strip().startswith("hint:"):
            return line.strip()[len("hint:") :].strip()
    return message.splitlines()[0][:200]


# -- the workshop ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    """Run the whole workshop once and record every step."""
    base = tmp_path_factory.mktemp("workshop")
    subs, out = base / "submissions", base / "grades"
    roster = base / "students.csv"
    with open(roster, "w", encoding="utf-8-sig", newline="") as handle:  # with a BOM, as Excel saves it
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "email"])
        writer.writerows(ROSTER)
    for name, (_, lesson, kind, mtime) in INITIAL.items():
        write_submission(subs / name, lesson, kind, mtime)
    files = [str(subs / name) for name in INITIAL]
    common = ["--out", str(out), "--jobs", "2", "--no-progress", "--due", DUE]
    record = dict(base=base, subs=subs, out=out, roster=roster, files=files)

    # 1. the whole class, with a mistyped path among the files
    record["initial_run"] = run(["grade", *files, str(subs / MISTYPED), *common, "--roster", str(roster), "--json"])
    record["initial"] = snapshot(out)
    record["initial_report"] = parse_report(out / "report.html")

    # 2. late fixes, one student at a time (the roster is in the gradebook already)
    record["fixes"] = []
    for student, name, kind, mtime, resume in FIXES:
        before = snapshot(out)
        write_submission(subs / name, INITIAL[name][1], kind, mtime)
        result = run(["grade", *files, *common, "--student", student, *(["--resume"] if resume else [])])
        record["fixes"].append(dict(student=student, file=name, before=before, after=snapshot(out), run=result))

    # 3. --resume over the unchanged files
    before = snapshot(out)
    record["resume_run"] = run(["grade", *files, *common, "--resume"])
    record["resume_before"], record["final"] = before, snapshot(out)
    return record


# -- initial run ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_mistyped_path_is_a_warning_and_exit_code_1_while_the_rest_is_graded(workshop):
    code, stdout, stderr = workshop["initial_run"]
    assert code == 1
    warnings = [line for line in stderr.splitlines() if MISTYPED in line]
    assert len(warnings) == 1 and warnings[0].startswith("bpkit grade: warning: ") and "no such file" in warnings[0]
    summary = workshop["initial"]["summary"]["rows"]
    assert not any("mallroy" in row["student"] or MISTYPED in row["submission"] for row in summary)
    assert {(r["student"], r["lesson"]) for r in summary if r["status"] != "missing"} == set(counting(INITIAL))


@pytest.mark.slow
def test_the_not_in_roster_student_is_warned_about(workshop):
    _, _, stderr = workshop["initial_run"]
    lines = [line for line in stderr.splitlines() if "not in the roster" in line]
    assert len(lines) == 1 and lines[0].endswith(f"not in the roster: {OUTSIDER}")


@pytest.mark.slow
def test_initial_json_summary_parses_and_agrees_with_the_gradebook(workshop):
    _, stdout, _ = workshop["initial_run"]
    report = json.loads(stdout)
    assert report["graded"] == len(INITIAL)
    assert report["missing_files"] == [str(workshop["subs"] / MISTYPED)]
    assert report["sandbox"] == "bwrap" and report["out"] == str(workshop["out"])
    problems = sum(
        expected_submission(k, lesson)["status"] in ("invalid", "incomplete") for _, lesson, k, _ in INITIAL.values()
    )
    assert report["with_problems"] == problems
    got = sorted(
        (r["student"], r["lesson"], r["status"], r["total"], r["max_points"], tuple(r["flags"]))
        for r in report["results"]
    )
    want = []
    for student, lesson, kind, _ in INITIAL.values():
        exp = expected_submission(kind, lesson)
        flags = () if student in NAMES else ("not-in-roster",)
        want.append((student, lesson, exp["status"], exp["total"], exp["max_points"], flags))
    assert got == sorted(want)


def check_summary(snap: dict, state: dict, subs: Path) -> None:
    want = expected_summary(state, subs)
    rows = snap["summary"]["rows"]
    assert [(r["student"], r["lesson"]) for r in rows] == sorted(want)  # one row each, sorted, no extra
    for row in rows:
        assert row == want[(row["student"], row["lesson"])], (row["student"], row["lesson"])


@pytest.mark.slow
def test_initial_summary_has_the_exact_status_of_every_student_and_lesson(workshop):
    check_summary(workshop["initial"], INITIAL, workshop["subs"])


@pytest.mark.slow
def test_final_summary_has_the_exact_status_of_every_student_and_lesson(workshop):
    check_summary(workshop["final"], FINAL, workshop["subs"])
    statuses = Counter(r["status"] for r in workshop["final"]["summary"]["rows"])
    assert set(statuses) == {"graded", "incomplete", "invalid", "missing"}  # every status is exercised


def check_grades(snap: dict, state: dict, subs: Path) -> None:
    rows = snap["grades"]["rows"]
    got = {}
    for row in rows:
        got.setdefault((row["student"], row["lesson"]), {})[row["exercise"]] = row
    counts = counting(state)
    assert set(got) == set(counts)
    for key, sub in counts.items():
        exp = expected_submission(sub["kind"], key[1])
        assert {eid: r["status"] for eid, r in got[key].items()} == exp["exercises"], key
        assert list(got[key]) == list(exp["exercises"]), key  # catalogue order
        for eid, r in got[key].items():
            assert r["submission"] == str((subs / sub["file"]).resolve())
            assert r["points"] == str(POINTS[eid] if r["status"] == "pass" else 0)
            assert r["max_points"] == str(POINTS.get(eid, MAX[key[1]]))
            if sub["kind"].startswith("wrong:") and eid == sub["kind"][6:]:
                assert hint_of(r["message"]) == WRONG[eid][1], key
            if sub["kind"] == "stub":
                assert "not implemented yet" in r["message"]
            if sub["kind"] == "exits":
                assert "kernel died" in r["message"]


@pytest.mark.slow
def test_grades_csv_has_every_exercise_of_every_counted_submission(workshop):
    check_grades(workshop["initial"], INITIAL, workshop["subs"])
    check_grades(workshop["final"], FINAL, workshop["subs"])


@pytest.mark.slow
def test_the_wrong_lesson_file_and_the_empty_file_are_invalid_with_the_reason(workshop):
    rows = {(r["student"], r["lesson"]): r for r in workshop["initial"]["grades"]["rows"]}
    judy = rows[("judy", "04")]["message"]
    assert "lesson 06" in judy and "lesson 04" in judy and "does not replace" in judy
    assert "empty file" in rows[("ivan", "01")]["message"]
    feedback = (workshop["out"] / "feedback" / "ivan_01.md").read_text(encoding="utf-8")
    assert "ivan_01.ipynb" in feedback and "empty file" in feedback


def expected_table(state: dict) -> list[dict]:
    summary = expected_summary(state, Path("/"))
    students = sorted({s for s, _ in summary})
    lessons = sorted({lesson for _, lesson in summary})
    table = []
    for student in students:
        line = {"student": student, "name": NAMES.get(student, "")}
        for lesson in lessons:
            row = summary.get((student, lesson))
            if row is None:
                line[f"lesson_{lesson}"] = ""
            else:
                line[f"lesson_{lesson}"] = (
                    row["status"] if row["status"] in ("missing", "invalid") else row["percentage"]
                )
        table.append(line)
    return table


@pytest.mark.slow
def test_table_csv_is_the_student_by_lesson_table(workshop):
    for snap, state in ((workshop["initial"], INITIAL), (workshop["final"], FINAL)):
        assert snap["table"]["rows"] == expected_table(state)
    assert header(workshop["out"] / "table.csv") == ["student", "name", "lesson_01", "lesson_04", "lesson_06"]


# -- exports --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_nbgrader_export_has_nbgraders_columns_and_values(workshop):
    out = workshop["out"]
    assert header(out / "exports" / "nbgrader.csv") == [
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
    want = []
    for (student, lesson), row in sorted(expected_summary(FINAL, workshop["subs"]).items()):
        name = NAMES.get(student, "")
        first, _, last = name.rpartition(" ")
        want.append(
            dict(
                assignment=f"lesson_{lesson}",
                duedate=DUE,
                timestamp=row["submitted_at"],
                student_id=student,
                last_name=last,
                first_name=first,
                email=EMAILS.get(student, ""),
                raw_score=row["total"],
                late_submission_penalty="0",
                score=row["total"],
                max_score=str(MAX[lesson]),
            )
        )
    assert workshop["final"]["nbgrader"]["rows"] == want


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["canvas", "moodle"])
def test_lms_exports_have_one_points_column_per_lesson(workshop, kind):
    path = workshop["out"] / "exports" / f"{kind}.csv"
    head = (
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
        if kind == "canvas"
        else ["ID number", "Email address", "Full name"]
    )
    columns = header(path)
    assert columns[: len(head)] == head
    points = columns[len(head) :]
    assert len(points) == len(LESSONS)
    for column, lesson in zip(points, LESSONS):
        assert re.search(rf"\b{lesson}\b", column) and re.search(rf"\b{MAX[lesson]} points\b", column), column
    summary = expected_summary(FINAL, workshop["subs"])
    want = []
    if kind == "canvas":  # Canvas's own exports have it, after the header: each column's points possible
        want.append(
            {
                "Student": "    Points Possible",
                "ID": "",
                "SIS User ID": "",
                "SIS Login ID": "",
                "Section": "",
                **{column: str(MAX[lesson]) for column, lesson in zip(points, LESSONS)},
            }
        )
    for student in sorted({s for s, _ in summary if s in NAMES}):  # roster students only: an LMS refuses the
        name = NAMES.get(student, student)  # whole import for one unknown user
        if kind == "canvas":
            row = {"Student": name, "ID": "", "SIS User ID": student, "SIS Login ID": student, "Section": ""}
        else:
            row = {"ID number": student, "Email address": EMAILS.get(student, ""), "Full name": name}
        for column, lesson in zip(points, LESSONS):
            entry = summary.get((student, lesson))
            row[column] = (
                "" if entry is None or entry["status"] in ("missing", "invalid", "conflict") else entry["total"]
            )
        want.append(row)
    assert workshop["final"][kind]["rows"] == want


# -- late fixes, one student at a time ------------------------------------------------------------


def regraded_files(step: int) -> list[str]:
    """The files that fix `step` grades: the changed one with --resume, else every file of the student."""
    student, name, _, _, resume = FIXES[step]
    return [name] if resume else [f for f, (s, *_) in INITIAL.items() if s == student]


@pytest.mark.slow
@pytest.mark.parametrize("step", range(len(FIXES)), ids=[f"{f[0]}{'-resume' if f[4] else ''}" for f in FIXES])
def test_regrading_one_student_counts_the_new_file_and_changes_no_one_else(workshop, step):
    fix = workshop["fixes"][step]
    student, name = fix["student"], fix["file"]
    lesson = INITIAL[name][1]
    code, stdout, stderr = fix["run"]
    assert code == 0, stderr
    regraded = regraded_files(step)
    assert f"graded {len(regraded)} submissions" in stdout
    before, after = fix["before"], fix["after"]
    subs = workshop["subs"]
    state, previous = state_after(step + 1), state_after(step)
    # (a) the new result counts: summary, grades, table are what the new file earns
    assert rows_of(after, "summary", student) == [
        row for key, row in sorted(expected_summary(state, subs).items()) if key[0] == student
    ]
    exp = expected_submission(FIXES[step][2], lesson)
    graded = {r["exercise"]: r["status"] for r in rows_of(after, "grades", student) if r["lesson"] == lesson}
    assert graded == exp["exercises"]
    assert rows_of(after, "table", student) == [r for r in expected_table(state) if r["student"] == student]
    # (b) each re-graded file: its old row stays in history with counts=no, its new row counts;
    # every other history row of the student is unchanged
    old_rows, new_rows = rows_of(before, "history", student), rows_of(after, "history", student)
    assert len(new_rows) == len(old_rows) + len(regraded)
    replaced = {}
    for file in regraded:
        path = str((subs / file).resolve())
        hits = [r for r in old_rows if r["submission"] == path and r["counts"] == "yes"]
        assert len(hits) == 1, file
        replaced[id(hits[0])] = file
    for old, new in zip(old_rows, new_rows):
        assert new == ({**old, "counts": "no"} if id(old) in replaced else old)
    added = {r["submission"]: r for r in new_rows[len(old_rows) :]}
    for old in old_rows:
        if id(old) not in replaced:
            continue
        file = replaced[id(old)]
        _, file_lesson, old_kind, _ = previous[file]
        _, _, new_kind, new_mtime = state[file]
        was, now = expected_submission(old_kind, file_lesson), expected_submission(new_kind, file_lesson)
        assert (old["status"], old["total"]) == (was["status"], str(was["total"])), file
        new = added[old["submission"]]
        assert (new["lesson"], new["counts"], new["status"], new["total"], new["submitted_at"]) == (
            file_lesson,
            "yes",
            now["status"],
            str(now["total"]),
            iso(new_mtime),
        ), file
        assert (new["sha256"] != old["sha256"]) == (file == name), file
    # (c) no other student's row changed, in any export
    for export in CSV_FILES:
        assert rows_of(after, export, student, others=True) == rows_of(before, export, student, others=True), export


@pytest.mark.slow
def test_regrading_updates_the_feedback_file(workshop):
    text = (workshop["out"] / "feedback" / "carol_01.md").read_text(encoding="utf-8")
    assert f"**{MAX['01']} / {MAX['01']} points**" in text and "Every exercise passed" in text


@pytest.mark.slow
def test_nothing_graded_earlier_is_lost(workshop):
    history = workshop["final"]["history"]["rows"]
    regrades = sum(len(regraded_files(step)) for step in range(len(FIXES)))
    assert len(history) == len(INITIAL) + regrades
    assert [r["id"] for r in history] == [str(i) for i in range(1, len(history) + 1)]
    assert Counter(r["counts"] for r in history) == {"yes": len(INITIAL), "no": regrades}
    assert {(r["student"], r["lesson"]) for r in history if r["counts"] == "yes"} == set(counting(FINAL))


@pytest.mark.slow
def test_late_is_yes_exactly_for_files_after_the_due_date(workshop):
    rows = workshop["final"]["summary"]["rows"]
    late = {(r["student"], r["lesson"]) for r in rows if r["late"] == "yes"}
    assert late == {("heidi", "06"), ("carol", "01"), ("bob", "06")}  # built so, see INITIAL and FIXES
    assert late == {key for key, sub in counting(FINAL).items() if sub["mtime"] > DUE_TS}
    assert {r["late"] for r in rows if r["status"] == "missing"} == {""}


@pytest.mark.slow
def test_resume_on_unchanged_files_grades_nothing_and_changes_nothing(workshop):
    code, stdout, stderr = workshop["resume_run"]
    assert code == 0, stderr
    assert f"resuming: {len(INITIAL)} files already graded with the same content" in stderr
    assert "graded 0 submissions" in stdout
    for export in CSV_FILES:
        assert workshop["final"][export]["raw"] == workshop["resume_before"][export]["raw"], export


# -- the class report -----------------------------------------------------------------------------


def expected_pass_rates(state: dict) -> dict[tuple[str, str], tuple[int, int]]:
    rates = {}
    for (_, lesson), sub in counting(state).items():
        exp = expected_submission(sub["kind"], lesson)
        if exp["status"] == "invalid":
            continue
        for eid, status in exp["exercises"].items():
            passed, total = rates.get((lesson, eid), (0, 0))
            rates[(lesson, eid)] = (passed + (status == "pass"), total + 1)
    return rates


@pytest.mark.slow
def test_report_pass_rates_match_the_submissions_and_grades_csv(workshop):
    report = parse_report(workshop["out"] / "report.html")
    table = report.tables["pass-rate-table"]
    assert table[0] == ["lesson", "exercise", "passed"]
    got = {}
    for lesson, eid, passed in table[1:]:
        p, t = passed.split(" / ")
        got[(lesson, eid)] = (int(p), int(t))
    assert len(got) == len(table) - 1
    assert got == expected_pass_rates(FINAL)
    from_csv: dict = {}
    for row in workshop["final"]["grades"]["rows"]:
        if row["status"] != "invalid":
            p, t = from_csv.get((row["lesson"], row["exercise"]), (0, 0))
            from_csv[(row["lesson"], row["exercise"])] = (p + (row["status"] == "pass"), t + 1)
    assert got == from_csv
    # the initial report had other rates (before the fixes)
    initial = {
        (lesson, e): tuple(map(int, p.split(" / ")))
        for lesson, e, p in workshop["initial_report"].tables["pass-rate-table"][1:]
    }
    assert initial == expected_pass_rates(INITIAL) != got


def expected_known_hints(state: dict) -> Counter:
    hints: Counter = Counter()
    for sub in counting(state).values():
        if sub["kind"].startswith("wrong:"):
            eid = sub["kind"][6:]
            hints[(eid, WRONG[eid][1])] += 1
    return hints


@pytest.mark.slow
def test_report_most_frequent_hints_match_grades_csv(workshop):
    for snap, report, state in (
        (workshop["initial"], workshop["initial_report"], INITIAL),
        (workshop["final"], parse_report(workshop["out"] / "report.html"), FINAL),
    ):
        table = report.tables["hints"]
        assert table[0] == ["exercise", "hint", "students"]
        shown = [(e, h, int(n)) for e, h, n in table[1:]]
        failed = [r for r in snap["grades"]["rows"] if r["status"] == "fail"]
        stubs = [r for r in failed if "not implemented yet" in r["message"]]  # unfinished, not a mistake
        from_csv = Counter((r["exercise"], hint_of(r["message"])) for r in failed if r not in stubs)
        assert not any("not implemented" in h for _, h, _ in shown)
        html_text = (workshop["out"] / "report.html").read_text() if report is not workshop["initial_report"] else None
        if html_text is not None:
            assert f"handed in unfinished (the released stub): {len(stubs)}." in html_text
        assert [n for _, _, n in shown] == sorted((n for _, _, n in shown), reverse=True)  # most frequent first
        # the 15 most frequent (exercise, hint) pairs, each with its count; ties at the cut either way
        assert len(shown) == min(15, len(from_csv)) and len(set(shown)) == len(shown)
        assert all(from_csv[(e, h)] == n for e, h, n in shown)
        cut = min(n for _, _, n in shown)
        assert {(e, h) for (e, h), n in from_csv.items() if n > cut} <= {(e, h) for e, h, _ in shown}
        for (eid, hint), n in expected_known_hints(state).items():  # the mistakes built in, by count
            assert from_csv[(eid, hint)] == n
            assert (eid, hint, n) in shown or n <= cut
    assert expected_known_hints(FINAL)[("mse_grad", WRONG["mse_grad"][1])] == 3  # bob, carol, and dave's fix
    assert len(workshop["initial_report"].tables["hints"]) - 1 >= 5  # the genuine mistakes built in are listed


@pytest.mark.slow
def test_report_lists_the_submissions_that_need_a_look_and_every_student(workshop):
    report = parse_report(workshop["out"] / "report.html")
    summary = expected_summary(FINAL, workshop["subs"])
    look = sorted(
        (
            r["student"],
            r["lesson"],
            r["status"],
            r["flags"],
            f"late by {r['days_late']} d" if r["late"] == "yes" else "",
            "",
            r["submission"],
        )
        for r in summary.values()
        if r["flags"] or r["status"] in ("incomplete", "invalid") or r["late"] == "yes"
    )
    assert [(s, lesson) for s, lesson, *_ in look] == [
        ("bob", "06"),
        ("carol", "01"),
        ("heidi", "06"),
        ("ivan", "01"),
        ("kim", "01"),
        (OUTSIDER, "01"),
    ]
    attention = report.tables["attention"]
    assert attention[0] == ["student", "lesson", "status", "flags", "late", "overrides", "file"]
    assert sorted(map(tuple, attention[1:])) == look
    students = report.tables["students"]
    assert students[0] == ["student", "name", "lesson_01", "lesson_04", "lesson_06"]
    assert students[1:] == [[row[f] for f in students[0]] for row in expected_table(FINAL)]
    counted = len(counting(FINAL))
    assert report.paragraphs["counts"] == f"{len(ROSTER) + 1} students, {counted} submissions that count."


# -- CLI errors of a workshop ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["no-such-roster", "latin1-roster", "roster-is-a-folder"])
def test_a_bad_roster_is_refused_with_one_line_and_the_gradebook_untouched(workshop, problem):
    base, out = workshop["base"], workshop["out"]
    roster = {
        "no-such-roster": base / "studnets.csv",
        "latin1-roster": base / "latin1.csv",
        "roster-is-a-folder": base / "submissions",
    }[problem]
    if problem == "latin1-roster":
        roster.write_bytes("id,name\nzoe,Zoë\n".encode("latin-1"))
    before = snapshot(out)
    code, stdout, stderr = run(
        ["grade", *workshop["files"], "--out", str(out), "--jobs", "2", "--no-progress", "--roster", str(roster)]
    )
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpkit grade: error: cannot read the roster"), stderr
    assert "Traceback" not in stderr and stdout == ""
    assert snapshot(out) == before


@pytest.mark.slow
def test_a_student_without_files_is_a_warning_and_nothing_changes(workshop):
    out = workshop["out"]
    before = snapshot(out)
    code, stdout, stderr = run(
        [
            "grade",
            *workshop["files"],
            "--out",
            str(out),
            "--jobs",
            "2",
            "--no-progress",
            "--due",
            DUE,
            "--student",
            "mallory",
        ]
    )
    assert code == 0
    assert "no hand-in among those given belongs to student 'mallory'" in stderr
    assert "graded 0 submissions" in stdout
    assert snapshot(out) == before


@pytest.mark.slow
def test_resume_with_json_prints_only_json(workshop):
    code, stdout, stderr = run(
        [
            "grade",
            *workshop["files"],
            "--out",
            str(workshop["out"]),
            "--jobs",
            "2",
            "--no-progress",
            "--due",
            DUE,
            "--resume",
            "--json",
        ]
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["graded"] == 0 and summary["results"] == []


@pytest.mark.slow
def test_export_without_due_keeps_the_late_marks(workshop):
    out = workshop["out"]
    before = snapshot(out)
    code, _, stderr = run(["grade", "--out", str(out), "--export", "--quiet"])
    assert code == 0, stderr
    after = snapshot(out)
    try:
        assert [r["late"] for r in after["summary"]["rows"]] == [r["late"] for r in before["summary"]["rows"]]
        assert {r["duedate"] for r in after["nbgrader"]["rows"]} == {DUE}
    finally:  # put the due date back for the tests that read the exports after this one
        assert run(["grade", "--out", str(out), "--export", "--quiet", "--due", DUE])[0] == 0
        assert snapshot(out) == before


# -- the report in Chromium -----------------------------------------------------------------------


def _browser_reason() -> str | None:
    try:
        from browser_support import browser_unavailable_reason
    except ImportError as exc:
        return f"tests/browser_support.py cannot be imported: {exc}"
    return browser_unavailable_reason()


@pytest.mark.slow
@pytest.mark.browser
def test_the_report_opens_in_chromium_with_both_plots_and_every_table(workshop):
    reason = _browser_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    from browser_support import launch_chromium

    report = workshop["out"] / "report.html"
    pass_rates = len(expected_pass_rates(FINAL))
    hints = min(
        15,
        len(
            Counter(
                (r["exercise"], hint_of(r["message"]))
                for r in workshop["final"]["grades"]["rows"]
                if r["status"] == "fail" and "not implemented yet" not in r["message"]
            )
        ),
    )
    need_a_look = sum(
        1
        for r in expected_summary(FINAL, workshop["subs"]).values()
        if r["flags"] or r["status"] in ("incomplete", "invalid") or r["late"] == "yes"
    )
    expected_rows = {
        "#pass-rate-table": 1 + pass_rates,
        "#hints": 1 + hints,
        "#attention": 1 + need_a_look,
        "#students": 1 + len(ROSTER) + 1,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as manager:
        browser = launch_chromium(manager)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(report.as_uri(), wait_until="load")
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            for selector in ("img#distribution", "img#pass-rates"):
                size = page.eval_on_selector(selector, "img => [img.complete, img.naturalWidth, img.naturalHeight]")
                assert size[0] and size[1] > 0 and size[2] > 0, (selector, size)
            for selector, n in expected_rows.items():
                assert page.locator(f"{selector} tr").count() == n, selector
            assert page.locator("h1").inner_text() == "bpkit class report"
            assert "Heidi Ångström" in page.locator("#students").inner_text()
        finally:
            browser.close()
