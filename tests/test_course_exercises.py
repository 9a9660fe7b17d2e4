"""An instructor's own exercise, with the built-in checkers' API: checked in a notebook, released,
and graded (grader-only cases included) without touching the installed package."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from bpkit import checks
from bpkit.cli import main
from bpkit.notebook import (
    BEGIN_MARKER,
    CHECK_TAG,
    END_MARKER,
    check_source,
    lesson_metadata,
    tagged_ids,
)

EXERCISE_FILE = textwrap.dedent('''
    """A course-local exercise: leaky ReLU (lesson 02 of this course)."""
    import numpy as np

    from bpkit.checks import Case, Exercise, Mistake, case_rng, register


    def _leaky_relu(z, alpha=0.1):
        return np.where(z > 0, z, alpha * z)


    def _cases():
        rng = case_rng(9001)
        return [Case("z of shape (6,)", (rng.normal(size=6),)),
                Case("z of shape (2, 3)", (rng.normal(size=(2, 3)),))]


    def _grader_cases():  # only `bpkit grade` tries this one: another alpha than the default
        # Both signs whatever the grading seed: four normal draws are all positive one time in 16,
        # and alpha does not show on positive inputs.
        z = np.abs(case_rng(9002).normal(size=4)) * np.array([-1.0, 1.0, -1.0, 1.0])
        return [Case("z of shape (4,), alpha=0.3", (z,), {"alpha": 0.3})]


    register(Exercise(
        id="leaky_relu_demo", lesson="02", points=2, description="leaky ReLU: z where z > 0, else alpha * z",
        cases=_cases, grader_cases=_grader_cases, reference=_leaky_relu,
        mistakes=[Mistake(lambda z, alpha=0.1: np.maximum(z, 0),
                          "negative inputs keep a small slope: alpha * z, not 0")],
    ))
''')
RIGHT = "def leaky_relu_demo(z, alpha=0.1):\n    return np.where(z > 0, z, alpha * z)"
PLAIN_RELU = "def leaky_relu_demo(z, alpha=0.1):\n    return np.maximum(z, 0)"


@pytest.fixture
def exercise_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course")
    path = folder / "leaky.py"
    path.write_text(EXERCISE_FILE)
    added = checks.load_exercises(path)
    yield path
    # The registry is the process's: leave it as it was for the tests that run after these.
    for eid in added:
        checks.EXERCISES.pop(eid, None)
        vars(checks).pop(eid, None)
    checks._LOADED.pop(str(path.resolve()), None)


def test_loading_registers_the_exercise_once(exercise_file):
    assert "leaky_relu_demo" in checks.EXERCISES
    assert checks.load_exercises(exercise_file) == []  # a second load adds nothing
    assert checks.leaky_relu_demo is checks.EXERCISES["leaky_relu_demo"]


def test_a_learner_checks_it_like_a_built_in_exercise(exercise_file, capsys):
    import numpy as np

    namespace = {"np": np}
    exec(RIGHT, namespace)
    checks.leaky_relu_demo(namespace["leaky_relu_demo"])
    assert "passed (2 cases)" in capsys.readouterr().out
    exec("def leaky_relu_demo(z, alpha=0.1):\n    return np.where(z > 0, z, 0.1 * z)", namespace)
    checks.leaky_relu_demo(namespace["leaky_relu_demo"])  # ignores alpha: the notebook's cases cannot tell
    exec(PLAIN_RELU, namespace)
    with pytest.raises(checks.CheckFailure, match="negative inputs keep a small slope"):
        checks.leaky_relu_demo(namespace["leaky_relu_demo"])


def test_a_broken_exercise_file_is_refused_with_its_name(tmp_path, capsys):
    bad = tmp_path / "broken.py"
    bad.write_text("raise ValueError('oops')\n")
    submission = tmp_path / "a_02.ipynb"
    submission.write_text("{}")
    assert main(["grade", str(submission), "--out", str(tmp_path / "out"), "--exercises", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cannot load exercises" in err and "broken.py" in err and "oops" in err


def test_release_picks_it_up(exercise_file, tmp_path):
    source, dest = tmp_path / "solutions", tmp_path / "lessons"
    source.mkdir()
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Leaky ReLU"),
            new_code_cell("import numpy as np\nfrom bpkit import checks"),
            new_code_cell(
                f'def leaky_relu_demo(z, alpha=0.1):\n    """Leaky ReLU."""\n    {BEGIN_MARKER}\n'
                f"    return np.where(z > 0, z, alpha * z)\n    {END_MARKER}"
            ),
            new_code_cell(check_source("leaky_relu_demo")),
        ]
    )
    nb.metadata.update(lesson_metadata("02"))
    nbformat.write(nb, source / "02_leaky.ipynb")
    assert main(["release", str(source), str(dest), "--exercises", str(exercise_file)]) == 0
    released = nbformat.read(dest / "02_leaky.ipynb", as_version=4)
    assert "np.where" not in released.cells[2].source and "NotImplementedError" in released.cells[2].source
    assert tagged_ids(released.cells[3], CHECK_TAG) == ["leaky_relu_demo"]


@pytest.mark.slow
def test_grading_uses_the_grader_only_cases(exercise_file, tmp_path):
    """A leaky ReLU that ignores `alpha` passes the notebook's cases (default alpha) but not the grader's."""
    lesson = Path(__file__).resolve().parents[1] / "lessons" / "02_activations.ipynb"
    answers = {
        "right": RIGHT,
        "plain": PLAIN_RELU,
        "fixed_alpha": "def leaky_relu_demo(z, alpha=0.1):\n    return np.where(z > 0, z, 0.1 * z)",
    }
    for name, code in answers.items():
        nb = nbformat.read(lesson, as_version=4)
        nb.cells.append(new_code_cell("import numpy as np\n" + code))
        nbformat.write(nb, tmp_path / f"{name}_02.ipynb")
    out = tmp_path / "out"
    files = [str(tmp_path / f"{name}_02.ipynb") for name in answers]
    assert (
        main(
            [
                "grade",
                *files,
                "--out",
                str(out),
                "--exercises",
                str(exercise_file),
                "--jobs",
                "2",
                "--no-progress",
                "--seed",
                "1395503080701427227",  # a CI run's seed under which the old case drew no negative z
            ]
        )
        == 0
    )
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle) if r["exercise"] == "leaky_relu_demo"}
    assert rows["right"]["status"] == "pass" and rows["right"]["points"] == "2"
    assert rows["plain"]["status"] == "fail" and "small slope" in rows["plain"]["message"]
    assert rows["fixed_alpha"]["status"] == "fail" and "alpha=0.3" in rows["fixed_alpha"]["message"]


def test_the_registry_is_left_as_it_was():
    """Runs after the tests above (file order): the course's own exercise is gone again."""
    assert "leaky_relu_demo" not in checks.EXERCISES and not hasattr(checks, "leaky_relu_demo")
