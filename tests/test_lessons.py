"""Every released lesson runs top to bottom; the only errors are the stubs' NotImplementedError.

A learner opening a lesson must see no other error before writing any code: a cell that depends on an
exercise may raise NotImplementedError, a check cell may say "not implemented yet", nothing else.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 300  # seconds; a lesson runs in well under a minute, this only stops a hang


def test_the_course_has_solution_notebooks():
    assert SOLUTIONS, f"no solution notebooks in {ROOT / 'solutions'}: there are no lessons to run"


def allowed(output: dict) -> bool:
    """A stub's NotImplementedError, or a check saying the exercise is not implemented yet."""
    if output["ename"] == "NotImplementedError":
        return True
    return output["ename"] == "CheckFailure" and "not implemented yet" in output["evalue"]


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_lesson_runs_with_only_not_implemented_errors(solution, tmp_path):
    lesson = ROOT / "lessons" / solution.name
    assert lesson.exists(), f"{lesson} is missing: run `bpkit release solutions/ lessons/`"
    nb = nbformat.read(lesson, as_version=4)
    # A fresh kernel, started in an empty folder so a lesson cannot write into the repository.
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    problems, checked = [], set()
    for index, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        problems += [
            f"cell {index + 1} raised {o['ename']}: {o['evalue'][:200]}\n{cell.source[:200]}"
            for o in errors
            if not allowed(o)
        ]
        for tag in cell.metadata.get("tags", []):
            if tag.startswith("check:") and any(allowed(o) and o["ename"] == "CheckFailure" for o in errors):
                checked.add(tag.removeprefix("check:"))
    assert not problems, f"{lesson.name}: errors other than 'not implemented':\n" + "\n\n".join(problems)
    tags = [tag for cell in nb.cells for tag in cell.metadata.get("tags", [])]
    exercises = {tag.removeprefix("exercise:") for tag in tags if tag.startswith("exercise:")}
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
