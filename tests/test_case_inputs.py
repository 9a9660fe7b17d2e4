"""Every exercise's cases load in the grader's answer-free copy of the course.

The grader pickles each exercise's cases and unpickles them inside the sandbox, whose copy of bpkit has
no checker modules (they hold the reference answers): of bpkit/checks/ it gets only the files below.
A case that passes a function (an activation, a gradient to descend) must therefore take it from
bpkit/checks/inputs.py or from the learner library, never from a lessonNN.py. This test builds that
copy and unpickles every exercise's graded cases in a fresh interpreter that sees only it.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import bpkit
from bpkit.checks import EXERCISES

PACKAGE = Path(bpkit.__file__).resolve().parent

UNPICKLE = r"""
import json, pickle, sys
from pathlib import Path
copy, payloads = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
import bpkit
assert Path(bpkit.__file__).resolve().is_relative_to(copy.resolve()), bpkit.__file__
failures = {}
for eid, hex_payload in payloads.items():
    try:
        pickle.loads(bytes.fromhex(hex_payload))
    except Exception as exc:
        failures[eid] = f"{type(exc).__name__}: {exc}"
answers = sorted(name for name in sys.modules if name.startswith("bpkit.checks.lesson"))
print(json.dumps({"failures": failures, "answer_modules": answers}))
"""


def shipped(exercise) -> bytes:
    """The cases as the grader sends them to the kernel (bpkit/grading/execute.py)."""
    limit = getattr(exercise, "time_limit", None)
    return pickle.dumps([(c.args, c.kwargs, exercise.kind, exercise.strict_fp, limit) for c in exercise.graded_cases()])


def answer_free_copy(dest: Path) -> Path:
    """The sandbox's own course copy (grading/course_copy.py): checks/ without the checker modules."""
    from bpkit.grading.course_copy import build_course_copy

    build_course_copy(dest)
    return dest


def unpickle_in(copy: Path, payloads: Path) -> dict:
    """Unpickle every payload in a fresh interpreter whose bpkit is the copy; its JSON report."""
    result = subprocess.run(
        [sys.executable, "-c", UNPICKLE, str(copy), str(payloads)],
        capture_output=True,
        text=True,
        cwd=copy,
        env={"PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_exercises_cases_unpickle_without_the_checker_modules(tmp_path):
    payloads = {eid: shipped(exercise).hex() for eid, exercise in EXERCISES.items()}
    assert payloads, "no exercise registered"
    copy = answer_free_copy(tmp_path / "course")
    (tmp_path / "payloads.json").write_text(json.dumps(payloads))
    report = unpickle_in(copy, tmp_path / "payloads.json")
    assert report["failures"] == {}, (
        "these exercises' cases need a checker module to load; move the functions they pass into "
        f"bpkit/checks/inputs.py: {report['failures']}"
    )
    assert report["answer_modules"] == []


def test_a_case_passing_a_function_from_a_checker_module_is_caught(tmp_path):
    """The test can fail: a case that passes lesson02's reference sigmoid does not load in the copy."""
    from bpkit.checks import lesson02

    reference = lesson02._sigmoid  # a checker module's function: absent from the sandbox
    copy = answer_free_copy(tmp_path / "course")
    (tmp_path / "payloads.json").write_text(json.dumps({"bad": pickle.dumps([((reference,), {})]).hex()}))
    failures = unpickle_in(copy, tmp_path / "payloads.json")["failures"]
    assert list(failures) == ["bad"] and "lesson02" in failures["bad"]
