"""Every released lesson runs top to bottom; the only errors are the stubs' NotImplementedError.

A learner opening a lesson must see no other error and no traceback before writing any code: a cell
that depends on an exercise says in one line which exercise it waits for, a check cell says in one line
"not implemented yet", nothing else.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bpkit.checks._ipython import waiting_line
from bpkit.course import check_status
from bpkit.notebook import (
    CHECK_TAG,
    EXERCISE_TAG,
    RUN_ON_TAG,
    lesson_notebooks,
    stub_exercise,
    tagged_ids,
)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = lesson_notebooks(ROOT / "solutions")
CELL_TIMEOUT = 300  # seconds; a lesson runs in well under a minute, this only stops a hang


def test_the_course_has_solution_notebooks():
    assert SOLUTIONS, f"no solution notebooks in {ROOT / 'solutions'}: there are no lessons to run"


def not_implemented(output: dict) -> bool:
    """A stub's NotImplementedError, or a check saying the exercise is not implemented yet."""
    if output["ename"] == "NotImplementedError":
        return True
    return output["ename"] == "CheckFailure" and "not implemented yet" in output["evalue"]


def run_all(lesson: Path, folder: Path) -> tuple[nbformat.NotebookNode, str | None]:
    """Execute a lesson as JupyterLab's "Run All Cells" does: stop at the first error in a cell without
    the RUN_ON_TAG (`raises-exception`). Returns the executed notebook and, if it stopped early, why."""
    nb = nbformat.read(lesson, as_version=4)
    # A fresh kernel, started in an empty folder so a lesson cannot write into the repository.
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(folder)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        return nb, str(exc)[:1500]
    return nb, None


def stub_problems(nb: nbformat.NotebookNode) -> tuple[list[str], set[str]]:
    """Errors a stub does not explain, and the exercises whose check cell said "not implemented yet".

    Allowed: a stub's NotImplementedError shown as the one line naming its exercise, and a check's
    one-line "not implemented yet". Any other error, any traceback, any stderr text is a problem.
    """
    problems, checked = [], set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"cell {index + 1}"
        errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        for o in errors:
            shown = "\n".join(o.get("traceback", []))
            if not not_implemented(o):
                problems.append(f"{where} raised {o['ename']}: {o['evalue'][:200]}\n{cell.source[:200]}")
            elif o["ename"] == "NotImplementedError" and shown != waiting_line(stub_exercise(o["evalue"]) or "?"):
                problems.append(f"{where}: a stub's error is shown as more than its one line:\n{shown[:500]}")
            elif o["ename"] == "CheckFailure" and len(o.get("traceback", [])) != 1:
                problems.append(f"{where}: the check shows a traceback, not its one line:\n{shown[:500]}")
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream" and o["name"] == "stderr":
                problems.append(f"{where} wrote to stderr:\n{o['text'][:500]}")
        # What `bpkit progress` reads from the saved outputs: an unwritten exercise is "not started".
        checked.update(eid for eid in tagged_ids(cell, CHECK_TAG) if check_status(eid, cell.outputs) == "not started")
    return problems, checked


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_run_all_on_a_lesson_with_stubs_reaches_every_check(solution, tmp_path):
    """Run All in JupyterLab on an untouched lesson goes to the end, and every check cell runs and says
    "not implemented yet"; no cell shows an error a stub does not explain, nor any traceback."""
    lesson = ROOT / "lessons" / solution.name
    assert lesson.exists(), f"{lesson} is missing: run `bpkit release solutions/ lessons/`"
    nb, stopped = run_all(lesson, tmp_path)
    assert stopped is None, f"{lesson.name}: Run All stops early (a cell needs the {RUN_ON_TAG} tag):\n{stopped}"
    problems, checked = stub_problems(nb)
    assert not problems, f"{lesson.name}: more than one-line 'not implemented' errors:\n" + "\n\n".join(problems)
    exercises = {eid for cell in nb.cells for eid in tagged_ids(cell, EXERCISE_TAG)}
    assert exercises, f"{lesson.name} has no exercise cell"
    silent = sorted(exercises - checked)
    assert not silent, f"{lesson.name}: these check cells did not report 'not implemented yet': {silent}"


@pytest.mark.slow
def test_the_grader_gives_every_solution_full_marks(tmp_path):
    """End to end: each checker survives the trip through a kernel (pickled cases, JSON results)."""
    import csv

    from bpkit.cli import main

    assert main(["grade", *map(str, SOLUTIONS), "--out", str(tmp_path), "--jobs", "2", "--timeout", "300"]) == 0
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["submission"] for row in rows} == {str(p) for p in SOLUTIONS}
    wrong = [f"{r['submission']} {r['exercise']}: {r['status']}: {r['message']}" for r in rows if r["status"] != "pass"]
    assert not wrong, "\n".join(wrong)
