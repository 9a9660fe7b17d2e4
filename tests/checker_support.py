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
