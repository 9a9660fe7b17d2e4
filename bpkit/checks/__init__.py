"""Checks for every exercise: `checks.<id>(<your function>)`.

Each registered exercise id is an attribute of this module and a key of `EXERCISES`, the registry
that the lesson modules (`lessonNN.py`) fill when this package is imported. A check prints one line
when your function is right and raises `CheckFailure` with the input, the expected and received
values and a hint when it is not.

An instructor's own exercises live in their own files, written with the same API as the built-in
checkers (`Case`, `Mistake`, `Exercise`, `StableExercise`, `register`, `case_rng`), and are loaded with
`load_exercises(path)` (a .py file or a folder of them), `bpkit release/grade --exercises PATH`,
or the BPKIT_EXERCISES environment variable (paths separated by `:`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from importlib import import_module
from pathlib import Path

from bpkit.checks import _ipython
from bpkit.checks._core import EXERCISES, Case, CheckFailure, Exercise, Mistake, StableExercise, case_rng, register

_LESSON_MODULES = [f"lesson{n:02d}" for n in range(14)]
for _name in _LESSON_MODULES:
    import_module(f"bpkit.checks.{_name}")

_LOADED: dict[str, object] = {}  # resolved file -> its module: loading a file twice registers it once


class ExerciseLoadError(RuntimeError):
    """A course exercise file could not be loaded; the message names the file and the reason."""


def load_exercises(path) -> list[str]:
    """Load an instructor's exercise file (or every .py file of a folder); returns the new exercise ids."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ExerciseLoadError(f"{path}: no such file or folder of exercises")
    files = sorted(path.glob("*.py")) if path.is_dir() else [path]
    before = set(EXERCISES)
    for file in files:
        if str(file) in _LOADED:
            continue
        name = f"bpkit_course_exercises.{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ExerciseLoadError(f"{file}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise ExerciseLoadError(f"{file}: {type(exc).__name__}: {exc}") from exc
        _LOADED[str(file)] = module
    globals().update(EXERCISES)
    return [eid for eid in EXERCISES if eid not in before]


for _path in filter(None, os.environ.get("BPKIT_EXERCISES", "").split(os.pathsep)):
    load_exercises(_path)

globals().update(EXERCISES)

_ipython.register()  # in a notebook, a demo cell that calls an unwritten exercise says so in one line

__all__ = [
    "EXERCISES",
    "Case",
    "CheckFailure",
    "Exercise",
    "ExerciseLoadError",
    "Mistake",
    "StableExercise",
    "case_rng",
    "load_exercises",
    "register",
    *EXERCISES,
]
