"""bpkit lessons / lab / progress: the learner's side of the command line (bpkit/course.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpkit import course
from bpkit.cli import main
from bpkit.notebook import CHECK_TAG, RUN_ON_TAG, check_source, lesson_metadata

ROOT = Path(__file__).resolve().parents[1]


def test_lessons_copies_every_released_notebook_and_keeps_the_learners_own(tmp_path, capsys):
    dest = tmp_path / "course"
    assert main(["lessons", str(dest)]) == 0
    names = sorted(p.name for p in dest.glob("*.ipynb"))
    assert names == sorted(p.name for p in (ROOT / "lessons").glob("*.ipynb"))
    assert (dest / "01_neurons.ipynb").read_bytes() == (ROOT / "lessons" / "01_neurons.ipynb").read_bytes()
    (dest / "01_neurons.ipynb").write_text("my work")
    capsys.readouterr()
    assert main(["lessons", str(dest)]) == 0
    assert (dest / "01_neurons.ipynb").read_text() == "my work"  # never overwritten
    out = capsys.readouterr().out
    assert "0 lesson notebooks copied" in out and f"bpkit lab {dest}" in out


def test_lessons_onto_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["lessons", str(tmp_path / "f")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_lab_without_jupyterlab_says_what_to_install(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jupyterlab" else real(name, *a))
    assert main(["lab", str(tmp_path / "c")]) == 1
    assert 'pip install "backprop-kit[lab]"' in capsys.readouterr().err


def test_lab_copies_then_runs_jupyterlab_on_the_folder(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(course, "_exec", calls.append)
    monkeypatch.setattr(course.sys, "prefix", str(tmp_path / "env"))
    monkeypatch.setattr(course.os, "geteuid", lambda: 1000)
    assert main(["lab", str(tmp_path / "c"), "--no-browser"]) == 0
    (argv,) = calls
    assert argv[1:] == ["-m", "jupyterlab", str(tmp_path / "c"), "--no-browser"]
    assert (tmp_path / "c" / "00_start_here.ipynb").exists()


def test_lab_writes_the_lab_settings_and_keeps_the_users_own(tmp_path, monkeypatch):
    """No news pop-up over the first notebook, without `bpkit setup-lab`; other settings stay."""
    monkeypatch.setattr(course, "_exec", lambda argv: None)
    monkeypatch.setattr(course.sys, "prefix", str(tmp_path / "env"))
    overrides = tmp_path / "env" / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides.parent.mkdir(parents=True)
    overrides.write_text(
        json.dumps(
            {
                "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False},
            }
        )
    )
    assert main(["lab", str(tmp_path / "c")]) == 0
    assert json.loads(overrides.read_text()) == {
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
        "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
    }


def test_lab_still_starts_where_the_settings_cannot_be_written(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(course, "_exec", calls.append)
    (tmp_path / "env").write_text("a file where the environment's share/ folder would go")
    monkeypatch.setattr(course.sys, "prefix", str(tmp_path / "env"))
    assert main(["lab", str(tmp_path / "c")]) == 0
    assert len(calls) == 1 and "could not write JupyterLab's settings" in capsys.readouterr().out


@pytest.mark.parametrize(
    "euid, given, expected",
    [
        (0, [], ["--allow-root"]),
        (0, ["--allow-root"], ["--allow-root"]),
        (1000, [], []),
    ],
)
def test_lab_as_root_passes_allow_root(tmp_path, monkeypatch, euid, given, expected):
    """Jupyter stops with a warning when run as root (a container, Colab-like VMs) unless told it is fine."""
    calls = []
    monkeypatch.setattr(course, "_exec", calls.append)
    monkeypatch.setattr(course.sys, "prefix", str(tmp_path / "env"))
    monkeypatch.setattr(course.os, "geteuid", lambda: euid)
    assert main(["lab", str(tmp_path / "c"), *given]) == 0
    assert calls[0][4:] == expected


def test_setup_lab_writes_the_same_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(course.sys, "prefix", str(tmp_path / "env"))
    assert main(["setup-lab"]) == 0
    written = json.loads((tmp_path / "env" / "share" / "jupyter" / "lab" / "settings" / "overrides.json").read_text())
    assert written == course.LAB_SETTINGS and "settings written to" in capsys.readouterr().out


def test_solutions_copies_every_executed_solution_and_never_overwrites(tmp_path, capsys):
    dest = tmp_path / "answers"
    assert main(["solutions", str(dest)]) == 0
    names = sorted(p.name for p in dest.glob("*.ipynb"))
    assert names == sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb")) and len(names) == 14
    assert (dest / "06_backprop.ipynb").read_bytes() == (ROOT / "solutions" / "06_backprop.ipynb").read_bytes()
    assert "14 solution notebooks copied" in capsys.readouterr().out
    assert main(["solutions", str(dest)]) == 0  # again: nothing to do, nothing touched
    assert "14 already there (the same solutions)" in capsys.readouterr().out


def test_solutions_into_the_lessons_folder_keeps_the_learners_work_and_says_so(tmp_path, capsys):
    dest = tmp_path / "bpkit-lessons"
    assert main(["lessons", str(dest)]) == 0
    (dest / "01_neurons.ipynb").write_text("my work")
    capsys.readouterr()
    assert main(["solutions", str(dest)]) == 1
    assert (dest / "01_neurons.ipynb").read_text() == "my work"
    assert (dest / "00_start_here.ipynb").read_bytes() == (ROOT / "lessons" / "00_start_here.ipynb").read_bytes()
    captured = capsys.readouterr()
    assert "0 solution notebooks copied" in captured.out
    assert "00_start_here.ipynb" in captured.err and "01_neurons.ipynb" in captured.err
    assert "never overwrites" in captured.err and "bpkit solutions bpkit-solutions" in captured.err


def test_solutions_onto_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["solutions", str(tmp_path / "f")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_solutions_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["solutions"]) == 0
    assert len(list((tmp_path / "bpkit-solutions").glob("*.ipynb"))) == 14


def notebook(cells: list[dict], lesson: str = "01") -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": lesson_metadata(lesson), "cells": cells}


def check_cell(eid: str, outputs: list[dict], tagged: bool = True) -> dict:
    tags = [f"{CHECK_TAG}{eid}", RUN_ON_TAG] if tagged else []
    return {
        "cell_type": "code",
        "source": check_source(eid),
        "metadata": {"tags": tags},
        "outputs": outputs,
        "execution_count": 1,
    }


def error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": []}


def test_progress_reads_each_check_cells_saved_output(tmp_path, capsys):
    cells = [
        check_cell(
            "weighted_sum", [{"output_type": "stream", "name": "stdout", "text": "✔ weighted_sum passed (5 cases)\n"}]
        ),
        check_cell("neuron_forward", [error("CheckFailure", "neuron_forward failed on ...: wrong value")]),
        check_cell("layer_forward", [error("CheckFailure", "layer_forward: not implemented yet. Replace ...")]),
    ]
    (tmp_path / "01_neurons.ipynb").write_text(json.dumps(notebook(cells)))
    untagged = [
        check_cell(
            "two_input_sum",
            [{"output_type": "stream", "name": "stdout", "text": ["✔ two_input_sum passed", " (3 cases)\n"]}],
            tagged=False,
        ),
        check_cell("relu", [], tagged=True),
    ]
    (tmp_path / "00_start_here.ipynb").write_text(json.dumps(notebook(untagged, "00")))
    (tmp_path / "02_broken.ipynb").write_text("not json")
    assert main(["progress", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "01      1/3     ✔ weighted_sum  ✘ neuron_forward  · layer_forward" in out
    assert "00      1/2     ✔ two_input_sum  · relu" in out
    assert "2 of 5 exercises passed" in out and "SAVED outputs" in out
    statuses = {p.lesson: p.status for p in course.progress(tmp_path)}
    assert statuses["01"] == {"weighted_sum": "passed", "neuron_forward": "failed", "layer_forward": "not started"}
    assert statuses["00"]["relu"] == "not run"


def test_progress_does_not_count_another_exercises_pass(tmp_path):
    cells = [
        check_cell("relu", [{"output_type": "stream", "name": "stdout", "text": "✔ relu_prime passed (4 cases)\n"}])
    ]
    (tmp_path / "02_activations.ipynb").write_text(json.dumps(notebook(cells, "02")))
    assert course.progress(tmp_path)[0].status == {"relu": "not run"}


def test_progress_finds_the_lessons_folder_or_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["progress"]) == 2
    assert "bpkit lessons DIR" in capsys.readouterr().err
    assert main(["lessons"]) == 0
    capsys.readouterr()
    assert main(["progress"]) == 0  # finds ./bpkit-lessons
    out = capsys.readouterr().out
    assert "(bpkit-lessons/)" in out and "\n00      0/1     · two_input_sum\n" in out


def test_progress_of_the_executed_solutions_is_all_passed(capsys):
    lessons = course.progress(ROOT / "solutions")
    assert len(lessons) == len(list((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")))
    assert all(p.passed == len(p.status) > 0 for p in lessons), capsys.readouterr().out


def test_lesson_00_tells_a_pip_learner_and_a_clone_where_lessons_and_solutions_are():
    """Lesson 00 names the folders `bpkit lab` / `bpkit solutions` create and the clone's own folders."""
    cells = json.loads((ROOT / "solutions" / "00_start_here.ipynb").read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for needed in (
        f"`{course.DEFAULT_DIR}/`",
        f"`{course.DEFAULT_SOLUTIONS_DIR}/`",
        "`bpkit solutions`",
        "`lessons/` in a clone",
        "`solutions/` in a clone",
    ):
        assert needed in text, needed
