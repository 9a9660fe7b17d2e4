"""bpkit lessons / lab / progress: the learner's side of the command line (bpkit/course.py)."""
from __future__ import annotations

import json
from pathlib import Path

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
    assert 'pip install "bpkit[lab]"' in capsys.readouterr().err


def test_lab_copies_then_runs_jupyterlab_on_the_folder(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(course, "_exec", calls.append)
    assert main(["lab", str(tmp_path / "c"), "--no-browser"]) == 0
    (argv,) = calls
    assert argv[1:] == ["-m", "jupyterlab", str(tmp_path / "c"), "--no-browser"]
    assert (tmp_path / "c" / "00_start_here.ipynb").exists()


def notebook(cells: list[dict], lesson: str = "01") -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": lesson_metadata(lesson), "cells": cells}


def check_cell(eid: str, outputs: list[dict], tagged: bool = True) -> dict:
    tags = [f"{CHECK_TAG}{eid}", RUN_ON_TAG] if tagged else []
    return {"cell_type": "code", "source": check_source(eid), "metadata": {"tags": tags}, "outputs": outputs,
            "execution_count": 1}


def error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": []}


def test_progress_reads_each_check_cells_saved_output(tmp_path, capsys):
    cells = [
        check_cell("weighted_sum", [{"output_type": "stream", "name": "stdout", "text": "✔ weighted_sum passed (5 cases)\n"}]),
        check_cell("neuron_forward", [error("CheckFailure", "neuron_forward failed on ...: wrong value")]),
        check_cell("layer_forward", [error("CheckFailure", "layer_forward: not implemented yet. Replace ...")]),
    ]
    (tmp_path / "01_neurons.ipynb").write_text(json.dumps(notebook(cells)))
    untagged = [check_cell("two_input_sum", [{"output_type": "stream", "name": "stdout",
                                              "text": ["✔ two_input_sum passed", " (3 cases)\n"]}], tagged=False),
                check_cell("relu", [], tagged=True)]
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
    cells = [check_cell("relu", [{"output_type": "stream", "name": "stdout", "text": "✔ relu_prime passed (4 cases)\n"}])]
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
