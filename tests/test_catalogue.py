"""Meta-test over the exercise registry: every exercise has a checker, a solution, a stub and a check cell.

Exercise ids live in one place, the registry bpkit.checks.EXERCISES. The solution notebooks pin it
here: each registered exercise needs its solution and check cell in its lesson (below), and `bpkit
release` refuses a solution or check cell whose id is not registered. The course's binding catalogue,
EXERCISES.md, is not in this repository; where it is at hand (BPKIT_CATALOGUE, or ../shared/ next to
the checkout) every exercise it lists must be registered for its lesson.
"""

from __future__ import annotations

import os
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
CATALOGUE = Path(os.environ.get("BPKIT_CATALOGUE", ROOT.parent / "shared" / "EXERCISES.md"))
IDS = sorted(EXERCISES)


def catalogue_entries(text: str) -> list[tuple[str, str]]:
    """(lesson, exercise id) for every "- `<id>(...)`" item under a "## NN" heading of EXERCISES.md."""
    entries, lesson = [], None
    for line in text.splitlines():
        heading = re.match(r"## (\d{2})\b", line)
        item = re.match(r"- `(\w+)\(", line)
        if heading:
            lesson = heading.group(1)
        elif item and lesson:
            entries.append((lesson, item.group(1)))
    return entries


def test_catalogue_entries_are_read_from_the_headings_and_items():
    text = (
        "# Catalogue\n- `not_an_exercise(x)`\n## 01 neurons\n- `weighted_sum(x, w, b)`: ...\n  `x, w` (D,)\n## "
        "02\n- `relu(z)`"
    )
    assert catalogue_entries(text) == [("01", "weighted_sum"), ("02", "relu")]


def test_every_catalogue_exercise_is_registered_for_its_lesson():
    if not CATALOGUE.is_file():
        pytest.skip(f"the course catalogue is not at hand ({CATALOGUE}; set BPKIT_CATALOGUE)")
    entries = catalogue_entries(CATALOGUE.read_text(encoding="utf-8"))
    assert len(entries) >= 40, f"{CATALOGUE} lists only {len(entries)} exercises: not the catalogue?"
    missing = [f"{lesson} {eid}" for lesson, eid in entries if eid not in EXERCISES]
    assert not missing, f"in {CATALOGUE.name} but not registered in bpkit.checks: {missing}"
    moved = [
        f"{eid}: {lesson} in the catalogue, {EXERCISES[eid].lesson} registered"
        for lesson, eid in entries
        if EXERCISES[eid].lesson != lesson
    ]
    assert not moved, moved


@cache
def notebook(folder: str, lesson: str):
    """The notebook NN_*.ipynb of a lesson in solutions/ or lessons/, or None."""
    found = sorted((ROOT / folder).glob(f"{lesson}_*.ipynb"))
    return nbformat.read(found[0], as_version=4) if found else None


@pytest.mark.parametrize("exercise_id", IDS)
def test_registered_exercise_is_described(exercise_id):
    exercise = EXERCISES[exercise_id]
    assert isinstance(exercise.points, int) and exercise.points > 0
    assert re.fullmatch(r"\d{2}", exercise.lesson)
    assert exercise.description.strip()
    assert exercise.cases(), f"{exercise_id} has no cases"


@pytest.mark.parametrize("exercise_id", IDS)
def test_exercise_has_a_solution_and_a_check_cell(exercise_id):
    lesson = EXERCISES[exercise_id].lesson
    nb = notebook("solutions", lesson)
    assert nb is not None, f"no solutions/{lesson}_*.ipynb for {exercise_id}"
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    definition = re.compile(rf"^def {exercise_id}\(", re.MULTILINE)
    assert any(definition.search(s) and BEGIN_MARKER in s for s in sources), f"no solution cell for {exercise_id}"
    assert check_source(exercise_id) in [s.strip() for s in sources], f"no check cell for {exercise_id}"


@pytest.mark.parametrize("exercise_id", IDS)
def test_exercise_has_a_stub_and_a_tagged_check_cell_in_the_lesson(exercise_id):
    lesson = EXERCISES[exercise_id].lesson
    nb = notebook("lessons", lesson)
    assert nb is not None, f"no lessons/{lesson}_*.ipynb for {exercise_id}: run `bpkit release solutions/ lessons/`"
    stub = next((c for c in nb.cells if exercise_id in tagged_ids(c, EXERCISE_TAG)), None)
    assert stub is not None, f"no exercise cell for {exercise_id} in the lesson"
    assert stub_line(exercise_id) in stub.source
    assert any(exercise_id in tagged_ids(c, CHECK_TAG) for c in nb.cells), (
        f"no check cell for {exercise_id} in the lesson"
    )
