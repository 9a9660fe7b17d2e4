"""bpkit/grading/grader.py's parts that need no kernel: what a submission brings along, how it is staged
for a sandbox, and the row of a file that cannot be graded (the grading itself: test_grade.py)."""

from __future__ import annotations

import os
from pathlib import Path

from bpkit.grading import grader
from course_facts import lesson_exercise_ids, lesson_points


def test_data_files_are_regular_files_of_the_folder_and_nothing_else(tmp_path):
    (tmp_path / "data.csv").write_text("x,y\n1,2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.npy").write_bytes(b"\x93NUMPY")
    (tmp_path / "other_01.ipynb").write_text("{}")  # a notebook: never brought
    (tmp_path / "class.zip").write_bytes(b"PK")  # an archive: a class download, not data
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "x.csv").write_text("old")
    (tmp_path / "secret").symlink_to("/etc/hostname")  # a link: not followed
    os.mkfifo(tmp_path / "pipe")
    assert grader.data_files(tmp_path) == {"data.csv": b"x,y\n1,2\n", "sub/w.npy": b"\x93NUMPY"}


def test_a_folder_over_the_limit_brings_nothing(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 600)
    (tmp_path / "b.bin").write_bytes(b"x" * 600)
    assert grader.data_files(tmp_path, limit=1000) == {}
    assert set(grader.data_files(tmp_path, limit=2000)) == {"a.bin", "b.bin"}


def test_staging_writes_the_notebook_and_drops_paths_that_leave_the_folder(tmp_path):
    dest = tmp_path / "stage"
    grader.stage_submission(dest, b"{}", {"data/x.csv": b"1", "../escape.txt": b"no"})
    assert (dest / "submission.ipynb").read_bytes() == b"{}" and (dest / "data" / "x.csv").read_bytes() == b"1"
    assert not (tmp_path / "escape.txt").exists()


def test_an_invalid_file_gets_one_row_worth_the_lessons_points(tmp_path):
    assert grader.lesson_exercises("01") and [e.id for e in grader.lesson_exercises("01")] == lesson_exercise_ids("01")
    result = grader.invalid_result(Path(tmp_path / "ann_01.ipynb"), "ann", None, "empty file", "bwrap")
    assert result.lesson == "01" and len(result.rows) == 1
    assert result.rows[0]["status"] == "invalid" and int(result.rows[0]["max_points"]) == lesson_points("01")
