"""Meta-test over the exercise catalogue: every exercise has a checker, a solution, a stub and a check cell.

The catalogue's ids are in tests/exercise_ids.txt (copied from the course's EXERCISES.md, which CI does
not have). Extra exercises a lesson registers must be just as complete.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import nbformat
import pytest

from bpkit.checks import EXERCISES
from bpkit.notebook import (
    BEGIN_MARKER,
    CHECK_TAG,
    EXERCISE_TAG,
    check_source,
    stub_line,
    tagged_ids,
)

ROOT = Path(__file__).resolve().parents[1]


def catalogue() -> list[tuple[str, str]]:
    """(lesson, exercise id) pairs from tests/exercise_ids.txt."""
    lines = (ROOT / "tests" / "exercise_ids.txt").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split()) for line in lines if line.strip() and not line.startswith("#")]


CATALOGUE = catalogue()
ALL_IDS = sorted(set(EXERCISES) | {eid for _, eid in CATALOGUE})


@cache
def notebook(folder: str, lesson: str):
    """The notebook NN_*.ipynb of a lesson in solutions/ or lessons/, or None."""
    found = sorted((ROOT / folder).glob(f"{lesson}_*.ipynb"))
    return nbformat.read(found[0], as_version=4) if found else None


def lesson_of(exercise_id: str) -> str:
    if exercise_id in EXERCISES:
        return EXERCISES[exercise_id].lesson
    return dict((eid, lesson) for lesson, eid in CATALOGUE)[exercise_id]


def test_the_catalogue_file_lists_the_exercises():
    assert len(CATALOGUE) >= 40
    assert all(re.fullmatch(r"\d{2}", lesson) and re.fullmatch(r"[a-z_0-9]+", eid) for lesson, eid in CATALOGUE)
    assert len({eid for _, eid in CATALOGUE}) == len(CATALOGUE), "an exercise id appears twice in exercise_ids.txt"


@pytest.mark.parametrize("lesson, exercise_id", CATALOGUE, ids=[eid for _, eid in CATALOGUE])
def test_catalogue_exercise_has_a_checker_for_its_lesson(lesson, exercise_id):
    assert exercise_id in EXERCISES, f"no checker registered for {exercise_id} (bpkit/checks/lesson{lesson}.py)"
    assert EXERCISES[exercise_id].lesson == lesson


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_registered_exercise_is_described(exercise_id):
    exercise = EXERCISES[exercise_id]
    assert isinstance(exercise.points, int) and exercise.points > 0
    assert re.fullmatch(r"\d{2}", exercise.lesson)
    assert exercise.description.strip()
    assert exercise.cases(), f"{exercise_id} has no cases"


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_exercise_has_a_solution_and_a_check_cell(exercise_id):
    lesson = lesson_of(exercise_id)
    nb = notebook("solutions", lesson)
    assert nb is not None, f"no solutions/{lesson}_*.ipynb for {exercise_id}"
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    definition = re.compile(rf"^def {exercise_id}\(", re.MULTILINE)
    assert any(definition.search(s) and BEGIN_MARKER in s for s in sources), f"no solution cell for {exercise_id}"
    assert check_source(exercise_id) in [s.strip() for s in sources], f"no check cell for {exercise_id}"


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_exercise_has_a_stub_and_a_tagged_check_cell_in_the_lesson(exercise_id):
    lesson = lesson_of(exercise_id)
    nb = notebook("lessons", lesson)
    assert nb is not None, f"no lessons/{lesson}_*.ipynb for {exercise_id}: run `bpkit release solutions/ lessons/`"
    stub = next((c for c in nb.cells if exercise_id in tagged_ids(c, EXERCISE_TAG)), None)
    assert stub is not None, f"no exercise cell for {exercise_id} in the lesson"
    assert stub_line(exercise_id) in stub.source
    assert any(exercise_id in tagged_ids(c, CHECK_TAG) for c in nb.cells), f"no check cell for {exercise_id} in the lesson"


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_exercise_checker_has_tests(exercise_id):
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests").glob("test_checks_*.py"))]
    mentioned = any(re.search(rf"\b{exercise_id}\b", text) for text in texts)
    assert mentioned, f"no tests/test_checks_*.py mentions {exercise_id}"
