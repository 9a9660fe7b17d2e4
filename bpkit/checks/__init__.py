"""Checks for every exercise: `checks.<id>(<your function>)`.

Each exercise id of the catalogue (../EXERCISES.md in the course repo) is an attribute of this
module and a key of `EXERCISES`. A check prints one line when your function is right and raises
`CheckFailure` with the input, the expected and received values and a hint when it is not.
"""
from importlib import import_module

from bpkit.checks._core import EXERCISES, Case, CheckFailure, Exercise, Mistake, register

_LESSON_MODULES = [f"lesson{n:02d}" for n in range(14)]
for _name in _LESSON_MODULES:
    import_module(f"bpkit.checks.{_name}")

globals().update(EXERCISES)

__all__ = ["EXERCISES", "Case", "CheckFailure", "Exercise", "Mistake", "register", *EXERCISES]
