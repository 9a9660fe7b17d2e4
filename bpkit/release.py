"""`bpkit release SRC DEST`: turn solution notebooks into learner notebooks (stubs, no outputs).

For every SRC/NN_name.ipynb this writes DEST/NN_name.ipynb: each cell passes through
CELL_TRANSFORMS, in order, each with one job (the markers, tags and metadata are the course contract
of bpkit/notebook.py):
1. assign_cell_id: the solution's cell id, or a deterministic one where it has none or repeats one;
2. keep_teaching_metadata: run-time metadata (timings, widget state) and the course's own tags go;
3. clear_outputs: no outputs or execution counts;
4. stub_solution: each BEGIN/END SOLUTION region becomes, at the marker's indentation, the stub
   `raise NotImplementedError("<exercise id>: your code here")` (the def line and docstring stay),
   and the cell is tagged with its exercise;
5. tag_check_cell: the one-line check cell `checks.<id>(<id>)` is tagged with its exercise, which
   is how `bpkit grade` and `bpkit progress` recognise it;
6. tag_run_on: check cells, and every cell that depends on an exercise, get `raises-exception`, so
   JupyterLab's "Run All Cells" goes on past a stub's NotImplementedError and a learner who runs
   everything still sees every explanation, plot and explorer, and reaches every check. "Depends"
   follows names through the notebook: a cell that uses an exercise, or a name bound by a cell that
   depends on one (a helper function calling it, a result computed with it), depends on it too.
Then the notebook records its lesson, and every check cell must have its exercise's solution cell.
The output depends only on the solution files, so releasing twice is byte-identical and
`--check` can tell whether DEST is stale.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from bpkit.files import write_atomic
from bpkit.notebook import (
    BEGIN_MARKER,
    CHECK_LINE,
    CHECK_TAG,
    END_MARKER,
    EXERCISE_TAG,
    METADATA_KEY,
    NOTEBOOK_NAME,
    OWN_TAG_PREFIXES,
    RUN_ON_TAG,
    lesson_in_filename,
    lesson_metadata,
    lesson_notebooks,
    lesson_of,
    stub_line,
)

# Cell metadata worth handing out; the rest (execution timings, widget ids) is run-time noise.
KEPT_CELL_METADATA = ("tags", "jupyter", "editable", "deletable", "slideshow", "collapsed", "scrolled")


def calls_exercise(source: str, exercise_ids: list[str]) -> bool:
    """Whether a cell mentions one of the exercise functions (so it raises while they are stubs)."""
    return any(re.search(rf"\b{re.escape(eid)}\b", source) for eid in exercise_ids)


def cell_names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds at top level, every name it reads anywhere, in functions too)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics and the like: read the words, bind nothing
        return set(), set(re.findall(r"[A-Za-z_]\w*", source))
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        else:
            bound.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return bound, read


class Dependence:
    """Which names depend on an exercise, followed cell by cell (a stub makes each of them fail)."""

    def __init__(self) -> None:
        self.tainted: set[str] = set()

    def add_exercise(self, exercise_id: str) -> None:
        self.tainted.add(exercise_id)

    def depends(self, source: str) -> bool:
        """Whether this cell reads a tainted name; its own names become tainted (or clean) accordingly."""
        bound, read = cell_names(source)
        depends = bool(read & self.tainted)
        if depends:
            self.tainted |= bound
        else:
            self.tainted -= bound  # rebound by a cell that runs: usable again
        return depends


class ReleaseError(ValueError):
    """A solution notebook cannot be released; the message names the notebook, the cell and the fix."""


@dataclass
class Released:
    """One released lesson: where it goes, its text, and the exercise ids it contains."""

    source: Path
    target: Path
    text: str
    exercises: list[str]


def solution_regions(source: str, where: str) -> list[tuple[int, int]]:
    """Return (begin, end) line indexes of every marker pair in a cell; raise on unbalanced markers."""
    regions = []
    begin = None
    for number, line in enumerate(source.splitlines()):
        marker = line.strip()
        if marker == BEGIN_MARKER:
            if begin is not None:
                raise ReleaseError(
                    f"{where}: `{BEGIN_MARKER}` on line {number + 1} but the one on line {begin + 1} "
                    f"was never closed: add `{END_MARKER}` after the solution"
                )
            begin = number
        elif marker == END_MARKER:
            if begin is None:
                raise ReleaseError(f"{where}: `{END_MARKER}` on line {number + 1} without a `{BEGIN_MARKER}` above it")
            regions.append((begin, number))
            begin = None
    if begin is not None:
        raise ReleaseError(f"{where}: `{BEGIN_MARKER}` on line {begin + 1} is never closed: add `{END_MARKER}`")
    return regions


def exercise_id_of(source: str, regions: list[tuple[int, int]], known: set[str], where: str) -> str:
    """Name of the exercise function that holds the solution regions of a cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ReleaseError(f"{where}: the solution cell is not valid Python ({exc.msg}, line {exc.lineno})") from None
    functions = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not functions:
        raise ReleaseError(
            f"{where}: a solution cell must define the exercise function (`def <exercise id>(...)`), found no function"
        )
    lines = source.splitlines()
    names = set()
    for begin, end in regions:
        # A region belongs to the function whose lines hold its first statement (ast counts from 1;
        # a trailing marker comment lies past end_lineno, so the markers themselves cannot decide).
        code = [i for i in range(begin + 1, end) if lines[i].strip() and not lines[i].lstrip().startswith("#")]
        first = (code[0] if code else begin) + 1
        owner = [f for f in functions if f.lineno <= first <= (f.end_lineno or f.lineno)]
        if not owner:
            raise ReleaseError(f"{where}: the solution region on lines {begin + 1}-{end + 1} is not inside a function")
        names.add(owner[0].name)
    if len(names) > 1:
        several = ", ".join(sorted(names))
        raise ReleaseError(f"{where}: solution regions in several functions ({several}): one exercise per cell")
    name = names.pop()
    if name not in known:
        raise ReleaseError(
            f"{where}: `{name}` is not an exercise id registered in bpkit.checks.EXERCISES; "
            f"rename the function to its exercise id or register a checker for it"
        )
    return name


def strip_solutions(source: str, regions: list[tuple[int, int]], exercise_id: str) -> str:
    """Replace every marked region by the NotImplementedError stub, keeping the marker's indentation."""
    lines = source.splitlines()
    out: list[str] = []
    cursor = 0
    for begin, end in regions:
        out.extend(lines[cursor:begin])
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        out.append(stub_line(exercise_id, indent))
        cursor = end + 1
    out.extend(lines[cursor:])
    return "\n".join(out)


# -- the release, as an ordered list of cell transforms (nbgrader's generate_assignment is the model) --


@dataclass
class LessonState:
    """What one notebook's release has learnt so far; the transforms read and extend it, cell by cell."""

    name: str  # the file name, for messages
    lesson: str
    known: set[str]  # registered exercise ids
    lessons_of: dict[str, str] | None  # exercise id -> its registered lesson
    raw_ids: list  # cell ids as written in the file (nbformat replaces a duplicate by a random one)
    used_ids: set[str] = field(default_factory=set)
    exercises: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    dependence: Dependence = field(default_factory=Dependence)


@dataclass
class CellWork:
    """One cell on its way: the solution's cell, the learner's cell being built, and what it turned out to be."""

    index: int
    solution: nbformat.NotebookNode
    out: nbformat.NotebookNode
    where: str
    exercise: str | None = None  # set by stub_solution: the exercise this cell holds
    checked: str | None = None  # set by tag_check_cell: the exercise this cell checks


def assign_cell_id(cell: CellWork, state: LessonState) -> None:
    """Keep the solution's cell id; a deterministic one where it has none or repeats one."""
    cell_id = state.raw_ids[cell.index] if cell.index < len(state.raw_ids) else None
    if not isinstance(cell_id, str) or cell_id in state.used_ids:
        cell_id = hashlib.sha1(f"{state.name}:{cell.index}".encode()).hexdigest()[:12]
    state.used_ids.add(cell_id)
    cell.out.id = cell_id


def keep_teaching_metadata(cell: CellWork, state: LessonState) -> None:
    """Keep the metadata worth handing out, minus the course's own tags (they are recomputed below)."""
    kept = {key: cell.solution.metadata[key] for key in KEPT_CELL_METADATA if key in cell.solution.metadata}
    tags = [t for t in kept.get("tags", []) if not t.startswith(OWN_TAG_PREFIXES)]
    kept.pop("tags", None)
    if tags:
        kept["tags"] = tags
    cell.out.metadata = nbformat.from_dict(kept)


def clear_outputs(cell: CellWork, state: LessonState) -> None:
    """No outputs or execution counts in a learner's notebook; markdown keeps its attachments."""
    if cell.solution.cell_type == "code":
        cell.out.outputs = []
        cell.out.execution_count = None
    elif "attachments" in cell.solution:
        cell.out.attachments = cell.solution.attachments


def stub_solution(cell: CellWork, state: LessonState) -> None:
    """Replace the solution regions of an exercise cell by the stub and tag the cell with its exercise."""
    if cell.solution.cell_type != "code":
        return
    source = cell.solution.source
    regions = solution_regions(source, cell.where)
    if not regions:
        return
    exercise_id = exercise_id_of(source, regions, state.known, cell.where)
    if exercise_id in state.exercises:
        raise ReleaseError(f"{cell.where}: exercise `{exercise_id}` has a second solution cell; keep one")
    registered = state.lessons_of.get(exercise_id) if state.lessons_of else None
    if registered not in (None, state.lesson):
        raise ReleaseError(f"{cell.where}: `{exercise_id}` is registered for lesson {registered}, not {state.lesson}")
    cell.out.source = strip_solutions(source, regions, exercise_id)
    cell.out.metadata.setdefault("tags", []).append(f"{EXERCISE_TAG}{exercise_id}")
    cell.out.metadata[METADATA_KEY] = {"exercise": exercise_id}
    cell.exercise = exercise_id
    state.exercises.append(exercise_id)
    state.dependence.add_exercise(exercise_id)


def tag_check_cell(cell: CellWork, state: LessonState) -> None:
    """Tag the one-line check cell `checks.<id>(<id>)` with the exercise it checks."""
    check = CHECK_LINE.match(cell.solution.source.strip()) if cell.solution.cell_type == "code" else None
    if not check:
        return
    checked, argument = check.groups()
    if checked not in state.known:
        raise ReleaseError(f"{cell.where}: `checks.{checked}` is not an exercise id in bpkit.checks.EXERCISES")
    if argument != checked:
        found = cell.solution.source.strip()
        raise ReleaseError(f"{cell.where}: a check cell is `checks.{checked}({checked})`, found `{found}`")
    cell.out.metadata.setdefault("tags", []).append(f"{CHECK_TAG}{checked}")
    cell.out.metadata[METADATA_KEY] = {"check": checked}
    cell.checked = checked
    state.checks.append(checked)


def tag_run_on(cell: CellWork, state: LessonState) -> None:
    """Let Run All go past a cell that raises while the exercises are stubs: a check, or a cell that depends on one."""
    if cell.solution.cell_type != "code" or cell.exercise is not None:
        return
    source = cell.solution.source
    depends = state.dependence.depends(source)  # called on every such cell: it follows names from cell to cell
    if (cell.checked or depends or calls_exercise(source, state.exercises)) and RUN_ON_TAG not in cell.out.metadata.get(
        "tags", []
    ):
        cell.out.metadata.setdefault("tags", []).append(RUN_ON_TAG)


# In this order: each transform may read what the ones before it found (the exercise, the check).
CELL_TRANSFORMS = (assign_cell_id, keep_teaching_metadata, clear_outputs, stub_solution, tag_check_cell, tag_run_on)


def read_solution(text: str, name: str) -> tuple[nbformat.NotebookNode, dict, str]:
    """The solution notebook, its raw JSON and its lesson number; raise ReleaseError when it cannot be released."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReleaseError(f"{name}: not a readable notebook ({exc})") from None
    lesson = lesson_in_filename(name)
    if lesson is None:
        raise ReleaseError(f"{name}: solution notebooks are named NN_name.ipynb (two-digit lesson number first)")
    if raw.get("nbformat") != 4:
        raise ReleaseError(f"{name}: notebook format {raw.get('nbformat')}, expected 4")
    declared = lesson_of(raw)
    if declared is not None and declared != lesson:
        raise ReleaseError(f"{name}: metadata says lesson {declared!r} but the file name says {lesson!r}")
    return nbformat.reads(text, as_version=nbformat.NO_CONVERT), raw, lesson


def release_notebook(
    text: str, name: str, known: set[str], lessons_of: dict[str, str] | None = None
) -> tuple[nbformat.NotebookNode, list[str]]:
    """Build the learner notebook from a solution notebook's file text; returns it and its exercise ids."""
    nb, raw, lesson = read_solution(text, name)
    raw_ids = [cell.get("id") if isinstance(cell, dict) else None for cell in raw.get("cells", [])]
    state = LessonState(name, lesson, known, lessons_of, raw_ids)
    cells = []
    for index, solution in enumerate(nb.cells):
        out = nbformat.from_dict({"cell_type": solution.cell_type, "metadata": {}, "source": solution.source})
        cell = CellWork(index, solution, out, f"{name}, cell {index + 1}")
        for transform in CELL_TRANSFORMS:
            transform(cell, state)
        cells.append(cell.out)
    for checked in state.checks:
        if checked not in state.exercises:
            raise ReleaseError(
                f"{name}: a check cell calls checks.{checked} but no cell holds the solution of `{checked}`"
            )
    metadata = lesson_metadata(lesson)
    if "kernelspec" in nb.metadata:
        metadata["kernelspec"] = nb.metadata.kernelspec
    # Only the language name: the version in language_info changes with whoever executed the solution.
    metadata["language_info"] = {"name": nb.metadata.get("language_info", {}).get("name", "python")}
    lesson_nb = nbformat.from_dict(
        {"nbformat": 4, "nbformat_minor": max(5, raw.get("nbformat_minor", 5)), "metadata": metadata, "cells": cells}
    )
    return lesson_nb, state.exercises


def render(nb: nbformat.NotebookNode) -> str:
    """The exact file text nbformat.write would produce (sorted keys, one-space indent, final newline)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def solution_notebooks(source: Path) -> list[Path]:
    """The NN_*.ipynb files of a solutions folder, in lesson order."""
    if not source.is_dir():
        raise ReleaseError(f"{source} is not a folder of solution notebooks")
    found = lesson_notebooks(source)
    if not found:
        raise ReleaseError(f"no solution notebooks (NN_name.ipynb) in {source}")
    return found


def plan(source: Path, dest: Path) -> list[Released]:
    """Release every solution notebook in memory; nothing is written."""
    from bpkit.checks import EXERCISES

    known = set(EXERCISES)
    lessons_of = {eid: ex.lesson for eid, ex in EXERCISES.items()}
    released = []
    for path in solution_notebooks(source):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ReleaseError(f"{path.name}: not a readable notebook ({exc})") from None
        nb, exercises = release_notebook(text, path.name, known, lessons_of)
        released.append(Released(path, dest / path.name, render(nb), exercises))
    return released


def main(args: argparse.Namespace) -> int:
    """Release SRC into DEST (or, with --check, report stale files and exit 1)."""
    from bpkit.checks import ExerciseLoadError, load_exercises

    for path in getattr(args, "exercises", []):
        try:
            load_exercises(path)
        except ExerciseLoadError as exc:
            print(f"bpkit release: error: cannot load exercises: {exc}", file=sys.stderr)
            return 2
    try:
        released = plan(args.source, args.dest)
    except ReleaseError as exc:
        print(f"bpkit release: error: {exc}", file=sys.stderr)
        return 2
    expected = {r.target.name for r in released}
    orphans = sorted(p for p in args.dest.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name) and p.name not in expected)
    stale = [r for r in released if not r.target.exists() or r.target.read_text(encoding="utf-8") != r.text]
    if args.check:
        if not stale and not orphans:
            print(f"{args.dest} is up to date ({len(released)} lessons)")
            return 0
        for r in stale:
            print(f"stale: {r.target} (run `bpkit release {args.source} {args.dest}`)")
        for p in orphans:
            print(f"stale: {p} has no solution notebook in {args.source}")
        return 1
    if args.dest.exists() and not args.dest.is_dir():
        print(
            f"bpkit release: error: {args.dest} is a file, not a folder: give the folder to write lessons into",
            file=sys.stderr,
        )
        return 2
    try:
        args.dest.mkdir(parents=True, exist_ok=True)
        for r in stale:
            write_atomic(r.target, r.text)
            print(f"wrote {r.target} ({len(r.exercises)} exercises: {', '.join(r.exercises) or 'none'})")
        for p in orphans:
            p.unlink()
            print(f"removed {p} (no solution notebook for it)")
    except OSError as exc:
        print(
            f"bpkit release: error: cannot write into {args.dest} ({exc.strerror or exc}): choose a folder you can "
            f"write to",
            file=sys.stderr,
        )
        return 2
    print(f"{len(released)} lessons in {args.dest}, {len(stale)} written")
    return 0
