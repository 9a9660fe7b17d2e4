"""Step 1 of grading: read a submission file, find its lesson, and look at its code for flags.

Nothing here runs the student's code. A file that cannot be graded raises InvalidSubmission with
the reason that goes into the gradebook.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

CHECK_CALL = re.compile(r"^\s*checks\.\w+\(.*\)\s*;?\s*$")
DEF_LINE = re.compile(r"^(?:async\s+)?def\s+(\w+)\s*\(", re.MULTILINE)
LESSON_IN_NAME = re.compile(r"(?<!\d)(\d{2})(?!\d)")
MAX_NOTEBOOK_BYTES = 64 * 2**20
# Code that reaches for the checkers' reference answers or the package's own files. In the sandbox
# they are not there; the flag tells the instructor that a submission tried.
REFERENCE_PATTERNS = [
    re.compile(p, re.MULTILINE)
    for p in (
        r"bpkit\.checks\.(?!CheckFailure\b|EXERCISES\b)\w",
        r"from\s+bpkit\.checks\s+import\s+(?!\(?\s*(?:CheckFailure|EXERCISES)\s*\)?\s*$)",
        r"checks\s*\.\s*(?:_core|_harness|lesson\d\d|EXERCISES\s*\[[^\]]*\]\s*\.\s*(?:reference|mistakes|cases|judge))",
        r"(?:checks|bpkit)\s*\.\s*__file__",
        r"bpkit/checks|bpkit/datasets|digits\.csv",
        r"\b_reference_\w+|\b_split\s*\(",
    )
]


# What a lesson itself does (lesson 13 trains on the checker's training split): not a flag.
ALLOWED_IMPORTS = re.compile(r"from\s+bpkit\.checks\.lesson13\s+import\s+capstone_training_data\b")


class InvalidSubmission(ValueError):
    """The file cannot be graded at all; the message is the reason shown in the gradebook."""


@dataclass
class Submission:
    path: Path
    student: str
    lesson: str = ""
    notebook: object = None
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def read_notebook(path: Path):
    """Parse a submission into a notebook; raise InvalidSubmission with the reason when it cannot be."""
    import nbformat

    if path.is_dir():
        raise InvalidSubmission("this is a folder, not a notebook file")
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise InvalidSubmission(
                f"the file is {size // 2**20} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB a notebook may have: "
                f"clear the outputs (Edit > Clear Outputs of All Cells), save, and hand it in again"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidSubmission("file not found") from None
    except OSError as exc:
        raise InvalidSubmission(f"the file cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise InvalidSubmission("empty file (0 bytes of notebook): the notebook was probably never saved")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSubmission("not a notebook: the file is not text (a PDF, an image or a zip?)") from None
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f" at line {exc.lineno}, column {exc.colno} ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidSubmission(
            f"not a notebook: malformed JSON{where}; the file was damaged or edited outside Jupyter"
        ) from None
    if not isinstance(raw, dict) or ("cells" not in raw and "worksheets" not in raw) or "nbformat" not in raw:
        raise InvalidSubmission("not a notebook: JSON without the `nbformat` and `cells` fields of a Jupyter notebook")
    if raw["nbformat"] != 4:
        raise InvalidSubmission(
            f"notebook format version {str(raw['nbformat'])[:20]}, expected 4: open it in JupyterLab and save it again"
        )
    try:
        nb = nbformat.reader.reads(text)
        if not isinstance(nb.cells, list):
            raise TypeError("cells is not a list")
        for cell in nb.cells:
            if not isinstance(cell.get("source", ""), str) or not isinstance(cell.get("cell_type"), str):
                raise TypeError("a cell source is not text")
    except Exception as exc:  # nbformat raises several kinds for a damaged structure
        raise InvalidSubmission(f"not a readable notebook: {type(exc).__name__}") from None
    return nb


def declared_lesson(nb):
    meta = nb.metadata.get("bpkit") if isinstance(nb.metadata, dict) else None
    return meta.get("lesson") if isinstance(meta, dict) else None


def lesson_in_name(path: Path, lessons: list[str]) -> str | None:
    return next((n for n in LESSON_IN_NAME.findall(path.stem) if n in lessons), None)


def find_lesson(nb, path: Path, lessons: list[str], forced: str | None = None) -> tuple[str, list[str]]:
    """The submission's lesson and notes about it.

    --lesson decides when given (a disagreeing notebook is noted). Otherwise the notebook metadata
    (set by `bpkit release`) and the lesson number in the file name must agree where both exist.
    """
    declared = declared_lesson(nb)
    named = lesson_in_name(path, lessons)
    if forced is not None:
        notes = []
        if declared is not None and declared != forced:
            notes.append(f"the notebook's metadata says lesson {str(declared)[:10]!r}; it was graded as lesson {forced} (--lesson)")
        return forced, notes
    if isinstance(declared, str) and declared in lessons:
        if named is not None and named != declared:
            raise InvalidSubmission(
                f"the notebook's metadata says lesson {declared} but the file name says lesson {named}: "
                f"hand in the notebook of the right lesson, or grade with --lesson NN"
            )
        return declared, []
    if named is not None:
        return named, []
    said = f"the notebook metadata says lesson {str(declared)[:10]!r}" if declared is not None else (
        "the notebook has no bpkit lesson metadata (was it made from a lesson of `bpkit release`?)"
    )
    raise InvalidSubmission(
        f"unknown lesson: {said} and the file name has no lesson number; known lessons: {', '.join(lessons)}; "
        f"grade it with --lesson NN"
    )


def is_check_cell(cell) -> bool:
    """A check cell by its tag, its metadata or its one-line `checks.<id>(...)` source."""
    metadata = cell.get("metadata", {})
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    if isinstance(tags, list) and any(str(tag).startswith("check:") for tag in tags):
        return True
    bpkit_meta = metadata.get("bpkit") if isinstance(metadata, dict) else None
    if isinstance(bpkit_meta, dict) and "check" in bpkit_meta:
        return True
    lines = [line for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return len(lines) == 1 and CHECK_CALL.match(lines[0]) is not None


def student_cells(nb) -> list[tuple[int, str]]:
    """(notebook index, source) of the code cells the grader runs: every one but the check cells."""
    return [
        (index, cell.source)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and cell.source.strip() and not is_check_cell(cell)
    ]


def defined_at(cells: list[tuple[int, str]]) -> dict[str, int]:
    """Function name -> index of the last cell that defines it."""
    found: dict[str, int] = {}
    for index, source in cells:
        for name in DEF_LINE.findall(source):
            found[name] = index
    return found


def reference_flags(cells: list[tuple[int, str]]) -> list[str]:
    """`reference-answers` when code reaches for the checkers' answers or the package's files."""
    for _, source in cells:
        source = ALLOWED_IMPORTS.sub("", source)
        if any(p.search(source) for p in REFERENCE_PATTERNS):
            return ["reference-answers"]
    return []


def cell_label(number: int, source: str) -> str:
    """`cell 7 (`first line`)` for messages; numbers count every cell of the notebook from 1."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    first = first if len(first) <= 50 else first[:47] + "..."
    return f"cell {number} (`{first}`)" if first else f"cell {number}"
