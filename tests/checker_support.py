"""Helpers shared by the checker tests (tests/test_checker_contract.py and tests/test_checks_lesson*.py).

A module of its own rather than conftest.py: pytest discourages importing conftest.
"""

from __future__ import annotations

import pytest

from bpkit.checks import EXERCISES, CheckFailure


def failure_message(exercise_id: str, fn) -> str:
    """Run the check of exercise_id on fn, which must fail; return the failure message."""
    with pytest.raises(CheckFailure) as info:
        EXERCISES[exercise_id](fn)
    return str(info.value)


def fails_when_graded(exercise, fn, cases: list) -> bool:
    """Does fn fail these graded cases (exercise.graded_cases() under a grading secret), judged as the grader
    does: every case observed, then a verdict on each?

    Pass or fail only (Exercise._passes): naming a hint would try every registered mistake on every case,
    the 100,000-node chain of topological_order among them, for nothing these tests assert.
    """
    observations = [exercise._observe(fn, case, exercise.time_limit) for case in cases]
    return not all(exercise._passes(index, observation, cases) for index, observation in enumerate(observations))
