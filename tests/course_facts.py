"""Course facts for tests, derived from the registry bpkit.checks.EXERCISES: never spelled out by hand.

Which exercises a lesson has, in which order, and what they are worth come from the registry, so an
exercise added to a lesson (ARCHITECTURE.md, "a new exercise") changes these answers and no test's
literal. Order is catalogue order: the order the lesson modules register their exercises in, which
is the order of the exercises in a lesson notebook and in the grader's rows.
"""

from __future__ import annotations

from bpkit.checks import EXERCISES


def lessons() -> list[str]:
    """Every lesson number that has an exercise, sorted: ["00", "01", ...]."""
    return sorted({exercise.lesson for exercise in EXERCISES.values()})


def lesson_exercise_ids(lesson: str) -> list[str]:
    """The exercise ids of a lesson ("01"), in catalogue order; ValueError for a lesson without exercises."""
    ids = [eid for eid, exercise in EXERCISES.items() if exercise.lesson == lesson]
    if not ids:
        raise ValueError(f"no exercise is registered for lesson {lesson!r}; lessons with exercises: {lessons()}")
    return ids


def exercise_points(exercise_id: str) -> int:
    """The points one exercise is worth."""
    return EXERCISES[exercise_id].points


def lesson_points(lesson: str) -> int:
    """The most points a submission of the lesson can get: the sum over its exercises."""
    return sum(exercise_points(eid) for eid in lesson_exercise_ids(lesson))


def lesson_of(exercise_id: str) -> str:
    """The lesson number ("01") an exercise belongs to."""
    return EXERCISES[exercise_id].lesson
