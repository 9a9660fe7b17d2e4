"""The command line's conventions: --version, defaults in --help, bad values refused up front with
exit code 2 and one line on stderr, and writing errors reported cleanly (no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

import bpkit
import bpkit.release
from bpkit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"bpkit {bpkit.__version__}"


def test_grade_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 120.0)" in text and "(default: 2048)" in text


@pytest.mark.parametrize(
    "options, said",
    [
        (["--timeout", "nan"], "--timeout must be a positive number of seconds"),
        (["--timeout", "inf"], "--timeout must be a positive number of seconds"),
        (["--timeout", "0"], "--timeout must be a positive number of seconds"),
        (["--memory-mb", "1"], "--memory-mb must be at least 300"),
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--lesson", "99"], "--lesson 99: no such lesson"),
        (["--due", "next tuesday"], "--due 'next tuesday' is not a date and time"),
    ],
)
def test_grade_refuses_bad_values_with_one_line(tmp_path, capsys, options, said):
    submission = tmp_path / "a_01.ipynb"
    submission.write_text("{}")
    assert main(["grade", str(submission), "--out", str(tmp_path / "out"), *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bpkit grade: error: ") and said in err[0]
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_grade_without_submissions_says_what_to_give(tmp_path, capsys):
    assert main(["grade", "--out", str(tmp_path / "out")]) == 2
    assert "no submissions given" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, said",
    [
        ("name,email\nAl,a@x\n", "id,name,email"),
        ("id,name\nal,Al\nal,Al again\n", "appears twice"),
        ("id,name\n,Nobody\n", "empty student id"),
    ],
)
def test_grade_refuses_a_bad_roster(tmp_path, capsys, text, said):
    roster = tmp_path / "roster.csv"
    roster.write_text(text)
    submission = tmp_path / "a_01.ipynb"
    submission.write_text("{}")
    assert main(["grade", str(submission), "--out", str(tmp_path / "out"), "--roster", str(roster)]) == 2
    assert said in capsys.readouterr().err


def test_grade_into_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    submission = tmp_path / "a_01.ipynb"
    submission.write_text("{}")
    assert main(["grade", str(submission), "--out", str(tmp_path / "out")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_release_onto_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "lessons"
    target.write_text("a file")
    assert main(["release", str(ROOT / "solutions"), str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err
    assert target.read_text() == "a file"


def test_release_into_an_unwritable_folder_is_reported(tmp_path, capsys, monkeypatch):
    def refuse(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(bpkit.release, "write_atomic", refuse)
    assert main(["release", str(ROOT / "solutions"), str(tmp_path / "lessons")]) == 2
    err = capsys.readouterr().err
    assert "cannot write into" in err and "Permission denied" in err
