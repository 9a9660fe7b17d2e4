"""The course contract: how a notebook says which lesson it is, where its exercises and checks are.

Every part of bpkit that reads or writes course notebooks goes through here, so the contract has one
home (in the manner of nbgrader's `utils.is_solution`/`is_grade`):

- files are named `NN_name.ipynb`, NN the two-digit lesson number;
- a solution is written between `### BEGIN SOLUTION` and `### END SOLUTION` inside the exercise's
  function; `bpkit release` replaces it by `raise NotImplementedError("<id>: your code here")`;
- the notebook's metadata holds {"bpkit": {"lesson": "NN"}};
- an exercise cell carries the tag `exercise:<id>` and the metadata {"bpkit": {"exercise": id}};
- a check cell is the one line `checks.<id>(<id>)`; released, it carries the tag `check:<id>`, the
  metadata {"bpkit": {"check": id}} and JupyterLab's `raises-exception` tag.

Functions take a cell or notebook either as nbformat's NotebookNode or as the plain dict of its JSON.
Standard library only at import time: the learner's core install reads notebooks without nbformat.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

METADATA_KEY = "bpkit"  # notebook and cell metadata: {"bpkit": {"lesson" | "exercise" | "check": ...}}
EXERCISE_TAG = "exercise:"  # + exercise id: the cell holding the exercise's function
CHECK_TAG = "check:"  # + exercise id: the cell calling its checker
OWN_TAG_PREFIXES = (EXERCISE_TAG, CHECK_TAG)
RUN_ON_TAG = "raises-exception"  # JupyterLab's Run All continues past a cell with this tag
BEGIN_MARKER = "### BEGIN SOLUTION"
END_MARKER = "### END SOLUTION"

NOTEBOOK_NAME = re.compile(r"^(\d{2})_[A-Za-z0-9_-]+\.ipynb$")  # a lesson notebook's file name
CHECK_LINE = re.compile(r"^checks\.(\w+)\((\w+)\)$")  # the check cell as written: checks.<id>(<id>)
CHECK_CALL = re.compile(r"^\s*checks\.\w+\(.*\)\s*;?\s*$")  # any one-line call of a checker (a re-typed check)
DEF_LINE = re.compile(r"^(?:async\s+)?def\s+(\w+)\s*\(", re.MULTILINE)  # an exercise is the function named by its id
MAX_NOTEBOOK_BYTES = 64 * 2**20

# A handed-in file's name is `<student><sep><lesson>[<sep><words>]`: the lesson part is the LAST token
# that is a lesson number (`01`, `1`, `lesson01`) with only words after it (`_neurons`, `_v2`,
# ` (1)`), so `ab12_01` is student ab12, lesson 01, and `dave_01_v2` is dave, lesson 01.
NAME_TOKEN = re.compile(r"[^_\-. ]+")
LESSON_TOKEN = re.compile(r"^(?:lesson)?(\d{1,2})$", re.IGNORECASE)
NUMBER_TOKEN = re.compile(r"^\d+$")  # a bare number after the lesson part makes the name ambiguous


class InvalidNotebook(ValueError):
    """A file is not a notebook that can be read; the message says why and what to do."""


STUB_MESSAGE = "{}: your code here"  # the message of the stub's NotImplementedError
_STUB_MESSAGE = re.compile(r"^(\w+): your code here$")


def stub_line(exercise_id: str, indent: str = "") -> str:
    """The line that stands for a solution in the learner's notebook."""
    return f'{indent}raise NotImplementedError("{STUB_MESSAGE.format(exercise_id)}")'


def stub_exercise(message: str) -> str | None:
    """The exercise id of a stub's NotImplementedError message (see stub_line), else None."""
    match = _STUB_MESSAGE.match(message)
    return match.group(1) if match else None


def check_source(exercise_id: str) -> str:
    """The source of an exercise's check cell."""
    return f"checks.{exercise_id}({exercise_id})"


def _metadata(node) -> dict:
    metadata = node.get("metadata", {}) if isinstance(node, dict) else {}
    return metadata if isinstance(metadata, dict) else {}


def source_of(cell) -> str:
    """A cell's source as one string (a notebook file may store it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def tags_of(cell) -> list:
    """A cell's tags ([] where a damaged notebook has none or no list)."""
    tags = _metadata(cell).get("tags", [])
    return tags if isinstance(tags, list) else []


def tagged_ids(cell, prefix: str) -> list[str]:
    """The exercise ids in a cell's tags that start with prefix (EXERCISE_TAG or CHECK_TAG)."""
    return [tag.removeprefix(prefix) for tag in tags_of(cell) if isinstance(tag, str) and tag.startswith(prefix)]


def checked_id(source: str) -> str | None:
    """The exercise id of a check cell written as `checks.<id>(<id>)`, else None."""
    line = CHECK_LINE.match(source.strip())
    return line.group(1) if line and line.group(1) == line.group(2) else None


def checked_ids(cell) -> list[str]:
    """The exercises a cell checks: by its tags (released lessons) or by its one line (solutions)."""
    checked = tagged_ids(cell, CHECK_TAG)
    if not checked and cell.get("cell_type") == "code":
        line = checked_id(source_of(cell))
        checked = [line] if line else []
    return checked


def is_check_cell(cell) -> bool:
    """A check cell by its tag, its metadata or its one-line `checks.<id>(...)` source."""
    if any(str(tag).startswith(CHECK_TAG) for tag in tags_of(cell)):
        return True
    own = _metadata(cell).get(METADATA_KEY)
    if isinstance(own, dict) and "check" in own:
        return True
    lines = [line for line in source_of(cell).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return len(lines) == 1 and CHECK_CALL.match(lines[0]) is not None


def lesson_of(nb):
    """The lesson a notebook's metadata declares (normally "NN"), or None."""
    own = _metadata(nb).get(METADATA_KEY)
    return own.get("lesson") if isinstance(own, dict) else None


def lesson_metadata(lesson: str) -> dict:
    """The notebook metadata entry that says which lesson a notebook is."""
    return {METADATA_KEY: {"lesson": lesson}}


def lesson_in_filename(name: str) -> str | None:
    """NN of a lesson notebook named NN_name.ipynb, else None."""
    match = NOTEBOOK_NAME.match(name)
    return match.group(1) if match else None


def split_handed_in_name(stem: str) -> tuple[str, str | None]:
    """(student part, lesson NN) of a handed-in file's stem: `ab12_01` -> ("ab12", "01"),
    `01_neurons` -> ("", "01"), `alice` -> ("alice", None); the lesson is the trailing lesson part only."""
    for found in reversed(list(NAME_TOKEN.finditer(stem))):
        token, start = found.group(), found.start()
        lesson = LESSON_TOKEN.match(token)
        if lesson:
            return stem[:start].rstrip("_-. "), f"{int(lesson.group(1)):02d}"
        if NUMBER_TOKEN.match(token):  # `alice_2024`: a number that is no lesson ends the search
            break
    return stem, None


def lesson_notebooks(folder: Path) -> list[Path]:
    """The NN_name.ipynb files of a folder, in lesson order ([] if it is not a folder)."""
    return sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name)) if folder.is_dir() else []


def read_notebook_bytes(path: Path) -> bytes:
    """A notebook file's bytes: a regular file (no symbolic link followed) of bounded size, or
    InvalidNotebook with the reason."""
    from bpkit.files import FileTooLarge, NotARegularFile, read_regular

    try:
        data = read_regular(path, MAX_NOTEBOOK_BYTES)
    except FileTooLarge:
        raise InvalidNotebook(
            f"the file is over the {MAX_NOTEBOOK_BYTES // 2**20} MB a notebook may have: "
            f"clear the outputs (Edit > Clear Outputs of All Cells), save, and hand it in again"
        ) from None
    except NotARegularFile as exc:
        raise InvalidNotebook(f"{exc.strerror}") from None
    except FileNotFoundError:
        raise InvalidNotebook("file not found") from None
    except IsADirectoryError:
        raise InvalidNotebook("this is a folder, not a notebook file") from None
    except OSError as exc:
        raise InvalidNotebook(f"the file cannot be read ({exc.strerror})") from None
    return data


def read_notebook(path: Path):
    """Parse a notebook file (nbformat 4); raise InvalidNotebook with the reason when it cannot be."""
    return parse_notebook(read_notebook_bytes(path))


def parse_notebook(data: bytes):
    """Parse a notebook's bytes (nbformat 4); raise InvalidNotebook with the reason when they cannot be."""
    import nbformat

    if not data.strip():
        raise InvalidNotebook("empty file (0 bytes of notebook): the notebook was probably never saved")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidNotebook("not a notebook: the file is not text (a PDF, an image or a zip?)") from None
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = (
            f" at line {exc.lineno}, column {exc.colno} ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        )
        raise InvalidNotebook(
            f"not a notebook: malformed JSON{where}; the file was damaged or edited outside Jupyter"
        ) from None
    if not isinstance(raw, dict) or ("cells" not in raw and "worksheets" not in raw) or "nbformat" not in raw:
        raise InvalidNotebook("not a notebook: JSON without the `nbformat` and `cells` fields of a Jupyter notebook")
    if raw["nbformat"] != 4:
        raise InvalidNotebook(
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
        raise InvalidNotebook(f"not a readable notebook: {type(exc).__name__}") from None
    return nb
