"""Step 1 of grading: read a submission file, find its lesson, and look at its code for flags.

Nothing here runs the student's code. A file that cannot be graded raises InvalidSubmission with
the reason that goes into the gradebook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bpkit import notebook
from bpkit.notebook import DEF_LINE, is_check_cell, lesson_of, split_handed_in_name

# Code that reaches for the checkers' reference answers or the package's own files. In the sandbox
# they are not there; the flag tells the instructor that a submission tried.
REFERENCE_PATTERNS = [
    re.compile(p, re.MULTILINE)
    for p in (
        r"bpkit\.checks\.(?!CheckFailure\b|EXERCISES\b)\w",
        r"from\s+bpkit\.checks\s+import\s+(?!\(?\s*(?:CheckFailure|EXERCISES)\s*\)?\s*$)",
        r"checks\s*\.\s*(?:_core|_harness|lesson\d\d|EXERCISES\s*\[[^\]]*\]\s*\.\s*(?:reference|mistakes|cases|compare_answer))",
        r"(?:checks|bpkit)\s*\.\s*__file__",
        r"bpkit/checks|bpkit/datasets|digits\.csv",
        r"\b_reference_\w+|\b_split\s*\(",
    )
]


# What a lesson itself does (lesson 13 trains on the checker's training split): not a flag.
ALLOWED_IMPORTS = re.compile(r"from\s+bpkit\.checks\.lesson13\s+import\s+capstone_training_data\b")


class InvalidSubmission(notebook.InvalidNotebook):
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
    try:
        return notebook.read_notebook(path)
    except notebook.InvalidNotebook as exc:
        raise InvalidSubmission(str(exc)) from None


def lesson_in_name(path: Path, lessons: list[str]) -> str | None:
    """The lesson a file name's trailing lesson part gives (`ab12_01` -> 01, never 12), if it is a known lesson."""
    named = split_handed_in_name(path.stem)[1]
    return named if named in lessons else None


def find_lesson(nb, path: Path, lessons: list[str], forced: str | None = None) -> tuple[str, list[str]]:
    """The submission's lesson and notes about it.

    --lesson decides when given (a disagreeing notebook is noted). Otherwise the notebook metadata
    (set by `bpkit release`) and the lesson number in the file name must agree where both exist.
    """
    declared = lesson_of(nb)
    named = lesson_in_name(path, lessons)
    if forced is not None:
        notes = []
        if declared is not None and declared != forced:
            notes.append(
                f"the notebook's metadata says lesson {str(declared)[:10]!r}; it was graded as lesson {forced} "
                "(--lesson)"
            )
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
    said = (
        f"the notebook metadata says lesson {str(declared)[:10]!r}"
        if declared is not None
        else ("the notebook has no bpkit lesson metadata (was it made from a lesson of `bpkit release`?)")
    )
    raise InvalidSubmission(
        f"unknown lesson: {said} and the file name has no lesson number; known lessons: {', '.join(lessons)}; "
        f"grade it with --lesson NN"
    )


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
