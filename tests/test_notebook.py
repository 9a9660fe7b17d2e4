"""bpkit.notebook: the course contract that release writes and grade and progress read.

The literal values are pinned here, once: learners' saved notebooks and instructors' gradebooks carry
them, so changing one is a breaking change for every released course, not a refactoring.
"""

from __future__ import annotations

import json

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from bpkit import notebook
from bpkit.notebook import (
    InvalidNotebook,
    checked_ids,
    is_check_cell,
    lesson_in_filename,
    lesson_of,
    read_notebook,
)


def test_the_contract_values_released_notebooks_carry():
    assert notebook.METADATA_KEY == "bpkit"
    assert (notebook.EXERCISE_TAG, notebook.CHECK_TAG, notebook.RUN_ON_TAG) == (
        "exercise:",
        "check:",
        "raises-exception",
    )
    assert (notebook.BEGIN_MARKER, notebook.END_MARKER) == ("### BEGIN SOLUTION", "### END SOLUTION")
    assert notebook.stub_line("relu", "    ") == '    raise NotImplementedError("relu: your code here")'
    assert notebook.check_source("relu") == "checks.relu(relu)"
    assert notebook.lesson_metadata("04") == {"bpkit": {"lesson": "04"}}


@pytest.mark.parametrize(
    "name, lesson",
    [
        ("04_losses.ipynb", "04"),
        ("4_losses.ipynb", None),
        ("04-losses.ipynb", None),
        ("04_losses.py", None),
        ("104_x.ipynb", None),
    ],
)
def test_lesson_in_filename(name, lesson):
    assert lesson_in_filename(name) == lesson


def test_lesson_notebooks_are_the_named_ones_in_order(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb", "03_c.txt"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in notebook.lesson_notebooks(tmp_path)] == ["01_a.ipynb", "02_b.ipynb"]
    assert notebook.lesson_notebooks(tmp_path / "missing") == []


def test_lesson_of_reads_metadata_of_a_node_or_a_plain_dict():
    nb = new_notebook(metadata=notebook.lesson_metadata("07"))
    assert lesson_of(nb) == "07" and lesson_of(json.loads(json.dumps(nb))) == "07"
    assert lesson_of(new_notebook()) is None
    assert lesson_of({"metadata": {"bpkit": "07"}}) is None and lesson_of({"metadata": []}) is None


@pytest.mark.parametrize(
    "cell, check",
    [
        (new_code_cell("checks.relu(relu)"), True),
        (new_code_cell("# the check\nchecks.relu(my_relu);  "), True),  # re-typed: still a check cell
        (new_code_cell("checks.relu(relu)\nprint(1)"), False),
        (new_code_cell("x = 1", metadata={"tags": ["check:relu"]}), True),  # tagged, source edited
        (new_code_cell("x = 1", metadata={"bpkit": {"check": "relu"}}), True),
        (new_code_cell("x = 1", metadata={"tags": ["exercise:relu"]}), False),
        ({"cell_type": "code", "source": "x = 1", "metadata": {"tags": "check:relu"}}, False),  # damaged tags
    ],
)
def test_is_check_cell(cell, check):
    assert is_check_cell(cell) is check


def test_checked_ids_by_tag_or_by_the_exact_line():
    assert checked_ids(new_code_cell("anything", metadata={"tags": ["check:relu", "raises-exception"]})) == ["relu"]
    assert checked_ids({"cell_type": "code", "source": ["checks.relu", "(relu)\n"], "metadata": {}}) == ["relu"]
    assert checked_ids(new_code_cell("checks.relu(my_relu)")) == []  # only the exact line names the exercise
    assert checked_ids({"cell_type": "markdown", "source": "checks.relu(relu)", "metadata": {}}) == []


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"%PDF-1.4\xff\xfe", "not text"),
        (b'{"cells": [', "malformed JSON"),
        (b'{"a": 1}', "without the `nbformat`"),
        (b'{"nbformat": 3, "cells": []}', "format version 3"),
    ],
)
def test_read_notebook_says_why_a_file_is_not_a_notebook(tmp_path, content, reason):
    path = tmp_path / "x.ipynb"
    path.write_bytes(content)
    with pytest.raises(InvalidNotebook, match=reason):
        read_notebook(path)
