"""The learner's side of the course: `bpkit lessons`, `bpkit lab` and `bpkit progress`.

The released lesson notebooks ship inside the package (bpkit/lessons/, mapped from the repository's
lessons/ folder at build time). `copy_lessons` puts them in a folder of the learner's, never over a
notebook already there; `progress` reads the learner's saved notebooks and reports, per lesson, which
exercises' check cells last said "passed". Standard library only: this runs in the core install.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from bpkit.notebook import (
    EXERCISE_TAG,
    checked_ids,
    lesson_in_filename,
    lesson_notebooks,
    lesson_of,
    tagged_ids,
)

DEFAULT_DIR = Path("bpkit-lessons")
LAB_MISSING = 'JupyterLab is not installed in this environment: pip install "bpkit[lab]"'


class CourseError(RuntimeError):
    """A lessons folder cannot be used; the message says why and what to do."""


def shipped_lessons() -> list[Path]:
    """The released lesson notebooks of this installation, in lesson order.

    A wheel holds them as bpkit/lessons/; an editable install from a checkout reads the
    repository's lessons/ next to the package.
    """
    # bpkit is a regular package, so files() is a real folder (bpkit.lessons, a namespace, would not be).
    candidates = [Path(str(resources.files("bpkit"))) / "lessons", Path(__file__).resolve().parent.parent / "lessons"]
    for folder in candidates:
        found = lesson_notebooks(folder)
        if found:
            return found
    raise CourseError("this bpkit installation has no lesson notebooks (reinstall bpkit from its wheel)")


def copy_lessons(dest: Path) -> tuple[list[Path], list[Path]]:
    """Copy every shipped lesson into dest; a notebook already there is kept (it may hold your work).

    Returns (copied, kept).
    """
    if dest.exists() and not dest.is_dir():
        raise CourseError(f"{dest} is a file: give a folder to put the lessons in")
    dest.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for source in shipped_lessons():
        target = dest / source.name
        if target.exists():
            kept.append(target)
        else:
            shutil.copyfile(source, target)
            copied.append(target)
    return copied, kept


def lessons_command(dest: Path) -> int:
    """`bpkit lessons DIR`: copy the lessons and say how to open them."""
    try:
        copied, kept = copy_lessons(dest)
    except (CourseError, OSError) as exc:
        print(f"bpkit lessons: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(copied)} lesson notebooks copied into {dest}"
          + (f", {len(kept)} already there and left as they are" if kept else ""))
    print(f"Open them with:  bpkit lab {dest}   (or any Jupyter: start with 00_start_here.ipynb)")
    return 0


def _exec(argv: list[str]) -> None:  # replaced in tests
    os.execv(argv[0], argv)


def lab_command(dest: Path, jupyter_args: list[str]) -> int:
    """`bpkit lab DIR`: copy the lessons if they are not there yet, then run JupyterLab on them."""
    import importlib.util

    if importlib.util.find_spec("jupyterlab") is None:
        print(f"bpkit lab: {LAB_MISSING}", file=sys.stderr)
        return 1
    try:
        copied, _ = copy_lessons(dest)
    except (CourseError, OSError) as exc:
        print(f"bpkit lab: error: {exc}", file=sys.stderr)
        return 2
    if copied:
        print(f"{len(copied)} lesson notebooks copied into {dest}")
    _exec([sys.executable, "-m", "jupyterlab", str(dest), *jupyter_args])
    return 0


# -- progress -------------------------------------------------------------------------------------


@dataclass
class LessonProgress:
    """What one saved notebook says about its exercises."""

    lesson: str
    name: str
    status: dict[str, str] = field(default_factory=dict)  # exercise id -> passed / failed / not started / not run

    @property
    def passed(self) -> int:
        return sum(s == "passed" for s in self.status.values())


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    elif output.get("output_type") == "error":
        text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def check_status(exercise: str, outputs: list[dict]) -> str:
    """The verdict a check cell's saved outputs show: passed, failed, not started or not run."""
    text = "\n".join(_text(o) for o in outputs)
    if any(o.get("output_type") == "error" for o in outputs):
        return "not started" if "not implemented yet" in text else "failed"
    if re.search(rf"✔ {re.escape(exercise)} passed\b", text):
        return "passed"
    return "not run"


def notebook_progress(path: Path) -> LessonProgress | None:
    """The exercises of one lesson notebook and what its check cells last showed; None if it has none."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    lesson = str(lesson_of(nb) or lesson_in_filename(path.name) or "??")
    result = LessonProgress(lesson, path.name)
    for cell in nb.get("cells", []):
        for exercise in tagged_ids(cell, EXERCISE_TAG):
            result.status.setdefault(exercise, "not run")
        for exercise in checked_ids(cell):
            result.status[exercise] = check_status(exercise, cell.get("outputs", []))
    return result if result.status else None


def find_lessons_dir(start: Path | None = None) -> Path:
    """Where the learner's notebooks are: the folder given, else the current folder, ./bpkit-lessons or ./lessons."""
    cwd = Path.cwd()
    for folder in ([start] if start is not None else [cwd, cwd / DEFAULT_DIR, cwd / "lessons"]):
        if lesson_notebooks(folder):
            return folder
    where = start if start is not None else f"{cwd} (nor in ./{DEFAULT_DIR} or ./lessons)"
    raise CourseError(f"no lesson notebooks (NN_name.ipynb) in {where}: run `bpkit lessons DIR` first, "
                      f"or give the folder: bpkit progress DIR")


def progress(folder: Path | str | None = None) -> list[LessonProgress]:
    """Print the learner's own table of exercises passed per lesson, from the saved notebooks in folder.

    Where there are no lesson notebooks it says so (and how to get them) instead of raising.
    """
    try:
        folder = find_lessons_dir(Path(folder) if folder is not None else None)
    except CourseError as exc:
        print(exc)
        return []
    lessons = [p for p in map(notebook_progress, lesson_notebooks(folder)) if p is not None]
    print(format_progress(lessons, folder))
    return lessons


SYMBOL = {"passed": "✔", "failed": "✘", "not started": "·", "not run": "·"}


def format_progress(lessons: list[LessonProgress], folder: Path) -> str:
    """One line per lesson: passed/total, then each exercise with its mark."""
    lines = [f"lesson  passed  exercises   ({folder.name or folder}/)"]
    for p in lessons:
        marks = "  ".join(f"{SYMBOL[s]} {eid}" for eid, s in p.status.items())
        lines.append(f"{p.lesson:<6}  {f'{p.passed}/{len(p.status)}':<6}  {marks}")
    total = sum(p.passed for p in lessons)
    count = sum(len(p.status) for p in lessons)
    lines += [
        f"{total} of {count} exercises passed.  ✔ passed  ✘ failed  · not run or not implemented yet",
        "This reads the check cells' SAVED outputs: run a check, then save its notebook (Ctrl+S).",
    ]
    return "\n".join(lines)


def progress_command(folder: Path | None) -> int:
    try:
        find_lessons_dir(folder)
    except CourseError as exc:
        print(f"bpkit progress: {exc}", file=sys.stderr)
        return 2
    progress(folder)
    return 0
