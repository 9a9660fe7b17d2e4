"""bpkit grade, called in-process on submissions built from the real lesson 01 and its solution.

Two grading runs serve most tests (module fixtures): a normal batch and a batch of hanging notebooks
with a short timeout. Expected statuses follow from what each submission does to the solution.
"""

from __future__ import annotations

import copy
import csv
import hashlib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

import bpkit.grade
import bpkit.grading.store
from bpkit.cli import main
from bpkit.notebook import (
    CHECK_TAG,
    METADATA_KEY,
    is_check_cell,
    lesson_metadata,
    tagged_ids,
)
from course_facts import lesson_exercise_ids, lesson_points

pytestmark = pytest.mark.slow  # real kernels: about a minute in all (make test runs it, make test-fast not)

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "01_neurons.ipynb"
LESSON = ROOT / "lessons" / "01_neurons.ipynb"
IDS = lesson_exercise_ids("01")  # catalogue order = notebook order
STUDENT = {"named_01": "named"}  # file stem -> student id, where the stem ends in a lesson number
EDITED = "layer_forward"  # the exercise these submissions get wrong or hang in; every other one is right


def all_pass_but(status: str, *, from_edited_on: bool = False) -> dict[str, str]:
    """Every lesson-01 exercise passes except EDITED (and, with from_edited_on, every one after it)."""
    at = IDS.index(EDITED)
    return {eid: status if i == at or (from_edited_on and i > at) else "pass" for i, eid in enumerate(IDS)}


WRONG_LAYER = '''def layer_forward(X, W, b, activation):
    """Z and A swapped."""
    Z = X @ W + b
    return activation(Z), Z'''
PATCH_CHECKS = """import builtins
import numpy as np
import bpkit.checks
import bpkit.checks._core as core
import bpkit.checks._harness as harness
core.Exercise.verdict = lambda *args, **kwargs: None
core.Exercise.__call__ = lambda *args, **kwargs: print("passed")
core.compare = lambda *args, **kwargs: None
np.allclose = np.isclose = np.array_equal = lambda *args, **kwargs: True
builtins.AssertionError = Exception
bpkit.checks.CheckFailure = Exception"""
PATCH_HARNESS = """import bpkit.checks._harness as harness
harness.observe = lambda *args, **kwargs: {"output": None, "mutated": []}"""


def solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION, as_version=4)


def index_of(nb, needle: str) -> int:
    """Index of the first code cell whose source contains needle."""
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and needle in c.source)


def with_wrong_layer(nb):
    nb.cells[index_of(nb, "def layer_forward(")].source = WRONG_LAYER
    return nb


def build_submissions(folder: Path) -> dict[str, Path]:
    """The normal batch: every way a notebook can be handed in that needs no short timeout."""
    folder.mkdir()
    notebooks = {}
    notebooks["full"] = solution()
    notebooks["untouched"] = nbformat.read(LESSON, as_version=4)
    notebooks["wrong"] = with_wrong_layer(solution())
    nb = solution()
    nb.cells = [c for c in nb.cells if not is_check_cell(c)]
    notebooks["deleted_checks"] = nb
    nb = with_wrong_layer(nbformat.read(LESSON, as_version=4))  # the released lesson: check cells are tagged
    for name in (eid for eid in IDS if eid != EDITED):  # every other exercise solved
        nb.cells[index_of(nb, f"def {name}(")] = solution().cells[index_of(solution(), f"def {name}(")]
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if is_check_cell(cell):
            twin = copy.deepcopy(cell)  # duplicated
            twin.id = f"{cell.id}-twin"
            cells.append(twin)
    edited = next(c for c in cells if tagged_ids(c, CHECK_TAG) == ["layer_forward"])
    edited.source = "checks.layer_forward = lambda fn: print('passed')"  # edited (still tagged)
    nb.cells = cells
    notebooks["duplicated_checks"] = nb
    nb = with_wrong_layer(solution())
    nb.cells.insert(index_of(nb, "import numpy") + 1, new_code_cell(PATCH_CHECKS))
    notebooks["monkeypatch"] = nb
    nb = with_wrong_layer(solution())
    nb.cells.insert(index_of(nb, "import numpy") + 1, new_code_cell(PATCH_HARNESS))
    notebooks["patch_harness"] = nb
    nb = solution()
    nb.cells.append(new_code_cell("import os\nos._exit(1)"))
    notebooks["exits"] = nb
    nb = solution()
    nb.cells.append(new_code_cell("big = np.ones(400_000_000)  # 3.2 GB, over the memory cap"))
    notebooks["memory"] = nb
    nb = solution()
    del nb.metadata[METADATA_KEY]
    notebooks["named_01"] = nb  # the lesson comes from the file name
    nb = solution()
    nb.metadata.update(lesson_metadata("99"))
    notebooks["mystery"] = nb
    paths = {}
    for name, nb in notebooks.items():
        paths[name] = folder / f"{name}.ipynb"
        nbformat.write(nb, paths[name])
    raw = {
        "malformed": b'{"cells": [{"cell_type": "code",',
        "empty": b"",
        "version3": b'{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}',
        "picture": bytes.fromhex("89504e470d0a1a0a0000000d49484452") + bytes(range(256)),
        "plain_json": b'{"answer": 42}',
    }
    for name, data in raw.items():
        paths[name] = folder / f"{name}.ipynb"
        paths[name].write_bytes(data)
    return paths


def digests(paths) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def by_student(rows: list[dict]) -> dict[str, dict[str, dict]]:
    table: dict[str, dict[str, dict]] = {}
    for row in rows:
        table.setdefault(row["student"], {})[row["exercise"]] = row
    return table


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the normal batch once: (exit code, submissions, digests before, out folder)."""
    folder = tmp_path_factory.mktemp("grade")
    paths = build_submissions(folder / "submissions")
    before = digests(paths.values())
    out = folder / "out"
    code = main(
        ["grade", *map(str, paths.values()), "--out", str(out), "--jobs", "2", "--timeout", "60", "--memory-mb", "1024"]
    )
    return code, paths, before, out


@pytest.fixture(scope="module")
def grades(batch):
    return by_student(read_csv(batch[3] / "grades.csv"))


def statuses(grades, student) -> dict[str, str]:
    return {eid: grades[student][eid]["status"] for eid in IDS}


def test_grading_completes_with_exit_code_zero_and_one_summary_row_each(batch):
    code, paths, _, out = batch
    assert code == 0
    summary = read_csv(out / "summary.csv")
    assert sorted(row["student"] for row in summary) == sorted(STUDENT.get(name, name) for name in paths)
    assert len({p.name for p in (out / "feedback").iterdir()}) == len(paths)


def test_submission_files_are_never_modified(batch):
    _, paths, before, _ = batch
    assert digests(paths.values()) == before


def test_full_solution_passes_everything(batch, grades):
    assert statuses(grades, "full") == {eid: "pass" for eid in IDS}
    summary = {row["student"]: row for row in read_csv(batch[3] / "summary.csv")}
    total = lesson_points("01")
    assert summary["full"]["total"] == summary["full"]["max_points"] == str(total)
    assert summary["full"]["percentage"] == "100.0"
    assert "Every exercise passed" in (batch[3] / "feedback" / "full_01.md").read_text()


def test_untouched_lesson_fails_everything_as_not_implemented(grades):
    assert statuses(grades, "untouched") == {eid: "fail" for eid in IDS}
    assert all("not implemented yet" in grades["untouched"][eid]["message"] for eid in IDS)
    assert all(grades["untouched"][eid]["points"] == "0" for eid in IDS)


def test_one_wrong_exercise_fails_with_the_checkers_hint(batch, grades):
    assert statuses(grades, "wrong") == all_pass_but("fail")
    message = grades["wrong"]["layer_forward"]["message"]
    assert "Z and A are swapped" in message
    feedback = (batch[3] / "feedback" / "wrong_01.md").read_text()
    assert "Z and A are swapped" in feedback and "✘ failed" in feedback and "✔ passed" in feedback


def test_deleted_duplicated_and_edited_check_cells_change_nothing(grades):
    assert statuses(grades, "deleted_checks") == statuses(grades, "full")
    assert statuses(grades, "duplicated_checks") == statuses(grades, "wrong")
    assert grades["duplicated_checks"]["layer_forward"]["message"] == grades["wrong"]["layer_forward"]["message"]


def test_monkeypatching_the_checks_in_the_kernel_cannot_turn_a_failure_into_a_pass(grades):
    assert statuses(grades, "monkeypatch") == statuses(grades, "wrong")
    assert "Z and A are swapped" in grades["monkeypatch"]["layer_forward"]["message"]


def test_replacing_the_harness_in_the_kernel_fails_every_exercise_and_flags_it(batch, grades):
    """The kernel checks with a copy of the harness sealed before the first cell, and reports the swap."""
    assert statuses(grades, "patch_harness") == {eid: "fail" for eid in IDS}
    for eid in IDS:
        row = grades["patch_harness"][eid]
        assert row["points"] == "0" and "harness-tampered" in row["flags"].split(";"), row
        assert "bpkit.checks._harness.observe was replaced" in row["message"], row["message"]
    summary = {row["student"]: row for row in read_csv(batch[3] / "summary.csv")}
    assert "harness-tampered" in summary["patch_harness"]["flags"].split(";")
    for student in ("full", "wrong", "monkeypatch"):  # verdict-side patches are not the harness: no such flag
        assert "harness-tampered" not in summary[student]["flags"].split(";"), summary[student]


def test_a_kernel_that_exits_is_recorded_and_grading_moves_on(grades):
    for eid in IDS:
        assert grades["exits"][eid]["status"] == "error"
        assert "kernel died" in grades["exits"][eid]["message"]


def test_memory_cap_turns_a_huge_allocation_into_a_memory_error(batch, grades):
    # Without the 1024 MB cap this 3.2 GB allocation would succeed on the test machine.
    assert statuses(grades, "memory") == {eid: "pass" for eid in IDS}
    feedback = (batch[3] / "feedback" / "memory_01.md").read_text()
    assert "MemoryError" in feedback and "at most 1024 MB" in feedback


def test_lesson_falls_back_to_the_file_name(grades):
    assert statuses(grades, "named") == {eid: "pass" for eid in IDS}


@pytest.mark.parametrize(
    "student, reason",
    [
        ("malformed", "malformed JSON at line 1"),
        ("empty", "empty file"),
        ("version3", "notebook format version 3, expected 4"),
        ("picture", "not text"),
        ("plain_json", "without the `nbformat` and `cells` fields"),
        ("mystery", "metadata says lesson '99', which has no graded exercises"),
    ],
)
def test_unreadable_submissions_get_one_invalid_row_with_the_reason(batch, grades, student, reason):
    assert list(grades[student]) == [""]
    row = grades[student][""]
    assert row["status"] == "invalid" and reason in row["message"]
    assert row["points"] == "0"
    assert reason in (batch[3] / "feedback" / f"{student}.md").read_text()


# -- hangs -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hangs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hangs")
    nb = solution()
    nb.cells.insert(index_of(nb, "def layer_forward("), new_code_cell("while True:\n    pass"))
    nbformat.write(nb, folder / "loop_cell.ipynb")
    nb = solution()
    endless = "def layer_forward(X, W, b, activation):\n    while True:\n        pass"
    nb.cells[index_of(nb, "def layer_forward(")].source = endless
    nbformat.write(nb, folder / "loop_function.ipynb")
    out = folder / "out"
    code = main(
        [
            "grade",
            str(folder / "loop_cell.ipynb"),
            str(folder / "loop_function.ipynb"),
            "--out",
            str(out),
            "--jobs",
            "2",
            "--timeout",
            "12",
        ]
    )
    return code, by_student(read_csv(out / "grades.csv"))


def test_an_endless_cell_times_out_and_the_exercises_before_it_still_count(hangs):
    code, grades = hangs
    assert code == 0
    # the cell before EDITED's never ends: exercises defined from there on are not reached
    assert statuses(grades, "loop_cell") == all_pass_but("timeout", from_edited_on=True)
    assert "ran out of time" in grades["loop_cell"]["layer_forward"]["message"]


def test_an_endless_function_times_out_only_its_own_exercise(hangs):
    _, grades = hangs
    assert statuses(grades, "loop_function") == all_pass_but("timeout")


# -- resume and failures of the grader itself -----------------------------------------------------


def test_resume_after_an_interrupted_run_grades_only_the_rest(tmp_path, monkeypatch):
    files = []
    for name, data in (("a", b""), ("b", b"{"), ("c", b"[]")):  # invalid ones: no kernel needed
        files.append(tmp_path / f"{name}_01.ipynb")
        files[-1].write_bytes(data)
    out = tmp_path / "out"
    original_add = bpkit.grading.store.Store.add
    added = []

    def interrupted_add(book, result, *args):
        if added:
            raise KeyboardInterrupt  # Ctrl-C while the second result is being recorded
        added.append(Path(result.submission).stem)
        return original_add(book, result, *args)

    monkeypatch.setattr(bpkit.grading.store.Store, "add", interrupted_add)
    args = ["grade", *map(str, files), "--out", str(out), "--jobs", "1"]
    assert main(args) == 130
    first = read_csv(out / "grades.csv")
    assert len(added) == 1 and [Path(row["submission"]).stem for row in first] == added  # what finished
    assert [row["student"] + "_01" for row in read_csv(out / "summary.csv")] == added
    assert not list(out.glob(".*.tmp"))

    monkeypatch.setattr(bpkit.grading.store.Store, "add", original_add)
    graded = []
    original_grade = bpkit.grade._grade_record

    def spy(grader, record):
        graded.append(Path(record.where).stem)
        return original_grade(grader, record)

    monkeypatch.setattr(bpkit.grade, "_grade_record", spy)
    assert main([*args, "--resume"]) == 0
    assert sorted(graded + added) == ["a_01", "b_01", "c_01"]
    assert [row["student"] for row in read_csv(out / "grades.csv")] == ["a", "b", "c"]


def test_an_unwritable_out_folder_is_the_graders_failure(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    submission = tmp_path / "a.ipynb"
    submission.write_bytes(b"")
    assert main(["grade", str(submission), "--out", str(tmp_path / "file" / "out")]) == 2
    assert "cannot write the gradebook" in capsys.readouterr().err


def test_bad_options_are_refused(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "a.ipynb"), "--out", str(tmp_path / "out"), "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_no_solution_notebook_is_flagged_and_reference_imports_are():
    from bpkit.grading.submission import reference_flags, student_cells

    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        assert reference_flags(student_cells(nbformat.read(path, as_version=4))) == [], path.name
    for source in (
        "from bpkit.checks.lesson01 import _weighted_sum as weighted_sum",
        "import bpkit.checks.lesson13 as l\npredict = l._reference_predict",
        "src = open(checks.__file__).read()",
        "from bpkit.checks import lesson06",
    ):
        assert reference_flags([(0, source)]) == ["reference-answers"], source


@pytest.mark.parametrize("fork_server", [True, False], ids=["fork-server", "one-sandbox-each"])
def test_grading_works_when_python_and_bpkit_live_under_tmp(tmp_path, fork_server):
    """The sandbox mounts a fresh /tmp: a venv and a bpkit under /tmp (a CI clone there) are put back."""
    import shutil
    import site
    import subprocess
    import sys

    assert str(tmp_path).startswith("/tmp/")
    venv, source = tmp_path / "venv", tmp_path / "src"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    shutil.copytree(Path(bpkit.grade.__file__).parent, source / "bpkit", ignore=shutil.ignore_patterns("__pycache__"))
    (source / "pyproject.toml").write_text("")  # a checkout, as a clone would be
    packages = next((venv / "lib").glob("python*/site-packages"))
    (packages / "parent.pth").write_text("\n".join([*site.getsitepackages(), str(source)]) + "\n")
    submission = tmp_path / "subs" / "tia_01.ipynb"
    submission.parent.mkdir()
    shutil.copyfile(SOLUTION, submission)
    out = tmp_path / "out"
    command = [str(venv / "bin" / "python"), "-m", "bpkit", "grade", str(submission), "--out", str(out), "--quiet"]
    done = subprocess.run(
        command + ([] if fork_server else ["--no-fork-server"]), capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    summary = read_csv(out / "summary.csv")
    assert [(r["student"], r["status"], r["percentage"]) for r in summary] == [("tia", "graded", "100.0")], read_csv(
        out / "grades.csv"
    )
