"""The learner's side of the course: `bpkit lessons`, `bpkit solutions`, `bpkit lab` and `bpkit progress`.

The released lesson notebooks and the executed solutions ship inside the package (bpkit/lessons/ and
bpkit/solutions/, mapped from the repository's lessons/ and solutions/ folders at build time).
`copy_lessons` and `copy_solutions` put them in a folder of the learner's, never over a notebook
already there; `progress` reads the learner's saved notebooks and reports, per lesson, which
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

# The course's name on the package index (pyproject's [project] name; tests/test_package.py checks they
# agree). The import package and the command are `bpkit`, but the name bpkit on PyPI is an unrelated project.
DISTRIBUTION = "backprop-kit"
DEFAULT_DIR = Path("bpkit-lessons")
DEFAULT_SOLUTIONS_DIR = Path("bpkit-solutions")
LAB_MISSING = f'JupyterLab is not installed in this environment: pip install "{DISTRIBUTION}[lab]"'


class CourseError(RuntimeError):
    """A lessons folder cannot be used; the message says why and what to do."""


def _shipped(kind: str) -> list[Path]:
    """The notebooks of one shipped folder (lessons or solutions) of this installation, in lesson order.

    A wheel holds them as bpkit/<kind>/; an editable install from a checkout reads the repository's
    <kind>/ next to the package.
    """
    # bpkit is a regular package, so files() is a real folder (bpkit.lessons, a namespace, would not be).
    candidates = [Path(str(resources.files("bpkit"))) / kind, Path(__file__).resolve().parent.parent / kind]
    for folder in candidates:
        found = lesson_notebooks(folder)
        if found:
            return found
    raise CourseError(f"this bpkit installation has no {kind} notebooks (reinstall {DISTRIBUTION} from its wheel)")


def shipped_lessons() -> list[Path]:
    """The released lesson notebooks of this installation, in lesson order."""
    return _shipped("lessons")


def shipped_solutions() -> list[Path]:
    """The executed solution notebooks of this installation, in lesson order."""
    return _shipped("solutions")


def copy_notebooks(sources: list[Path], dest: Path) -> tuple[list[Path], list[Path]]:
    """Copy each notebook into dest; a notebook already there is kept (it may hold your work).

    Returns (copied, kept).
    """
    if dest.exists() and not dest.is_dir():
        raise CourseError(f"{dest} is a file: give a folder to put the notebooks in")
    dest.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for source in sources:
        target = dest / source.name
        if target.exists():
            kept.append(target)
        else:
            shutil.copyfile(source, target)
            copied.append(target)
    return copied, kept


def copy_lessons(dest: Path) -> tuple[list[Path], list[Path]]:
    """Copy every shipped lesson into dest, never over a notebook already there; returns (copied, kept)."""
    return copy_notebooks(shipped_lessons(), dest)


def copy_solutions(dest: Path) -> tuple[list[Path], list[Path]]:
    """Copy every shipped solution into dest, never over a notebook already there; returns (copied, kept)."""
    return copy_notebooks(shipped_solutions(), dest)


def lessons_command(dest: Path) -> int:
    """`bpkit lessons DIR`: copy the lessons and say how to open them."""
    try:
        copied, kept = copy_lessons(dest)
    except (CourseError, OSError) as exc:
        print(f"bpkit lessons: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{len(copied)} lesson notebooks copied into {dest}"
        + (f", {len(kept)} already there and left as they are" if kept else "")
    )
    print(f"Open them with:  bpkit lab {dest}   (or any Jupyter: start with 00_start_here.ipynb)")
    return 0


def solutions_command(dest: Path) -> int:
    """`bpkit solutions DIR`: copy the executed solutions, never over a notebook already there."""
    try:
        sources = {p.name: p for p in shipped_solutions()}
        copied, kept = copy_solutions(dest)
    except (CourseError, OSError) as exc:
        print(f"bpkit solutions: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(copied)} solution notebooks copied into {dest}")
    # A kept notebook that is not the shipped solution is most likely the learner's own lesson: say so,
    # or a learner who gave their lessons folder would open their own work believing it the answer.
    different = [p for p in kept if p.read_bytes() != sources[p.name].read_bytes()]
    if len(kept) > len(different):
        print(f"{len(kept) - len(different)} already there (the same solutions) and left as they are")
    if different:
        names = ", ".join(p.name for p in different)
        print(
            f"Not copied, because {dest} already has a notebook of that name that is not the solution "
            f"(your own work?), and this never overwrites: {names}.\n"
            f"Put the solutions in a folder of their own:  bpkit solutions {DEFAULT_SOLUTIONS_DIR}",
            file=sys.stderr,
        )
        return 1
    print("Compare with them after you have tried an exercise: you learn backprop by writing it.")
    return 0


def _exec(argv: list[str]) -> None:  # replaced in tests
    os.execv(argv[0], argv)


LAB_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}
}  # no news pop-up over the notebook


def write_lab_settings(prefix: Path | None = None) -> Path:
    """Merge the course's JupyterLab settings into the environment's overrides.json; returns its path."""
    target = Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings = json.loads(target.read_text(encoding="utf-8")) if target.exists() else {}
    merged = {**settings, **{plugin: {**settings.get(plugin, {}), **values} for plugin, values in LAB_SETTINGS.items()}}
    if merged != settings:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return target


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
    try:
        write_lab_settings()
    except (OSError, ValueError) as exc:  # a read-only or hand-edited environment: the lab still works
        print(f"bpkit lab: note: could not write JupyterLab's settings ({exc}); its news pop-up may show")
    extra = list(jupyter_args)
    if os.geteuid() == 0 and "--allow-root" not in extra:  # Jupyter refuses to start as root without it
        extra.append("--allow-root")
    _exec([sys.executable, "-m", "jupyterlab", str(dest), *extra])
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
    for folder in [start] if start is not None else [cwd, cwd / DEFAULT_DIR, cwd / "lessons"]:
        if lesson_notebooks(folder):
            return folder
    where = start if start is not None else f"{cwd} (nor in ./{DEFAULT_DIR} or ./lessons)"
    raise CourseError(
        f"no lesson notebooks (NN_name.ipynb) in {where}: run `bpkit lessons DIR` first, "
        f"or give the folder: bpkit progress DIR"
    )


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
