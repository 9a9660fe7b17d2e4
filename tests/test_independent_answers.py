"""Two independent testers' learner answers (tests/independent_answers.json and _2.json), run as a
learner's check cell runs them and as `bpkit grade` judges them (graded cases, one fixed grading secret).

Every right answer passes and every wrong one fails, but for the wrong answers listed in ACCEPTED:
answers the lesson text and the catalogue allow, each with the reason. Ambiguous answers (the text
leaves room) are run, so none crashes a check, but their verdict is not asserted.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from bpkit.checks import EXERCISES, CheckFailure
from bpkit.checks._core import secret_seed
from checker_support import fails_when_graded

SETS = {"1": "independent_answers.json", "2": "independent_answers_2.json"}  # ids are "set:exercise-n"
ANSWERS = [
    answer | {"id": f"{key}:{answer['id']}"}
    for key, name in SETS.items()
    for answer in json.loads(Path(__file__).with_name(name).read_text(encoding="utf-8"))["answers"]
]
SECRET = 20261207

# Wrong by the tester's reading, but within what the lesson and EXERCISES.md ask: no check may refuse them.
ACCEPTED = {
    "1:weighted_sum-13": "rounds to 12 decimals: exact to the checks' tolerance; the text asks for no more",
    "1:sigmoid_prime-9": "an overflow warning below z = -709, but every value finite and right, as the text asks",
    "1:tanh_prime-9": "1 / cosh(z)**2 overflows to 1/inf = 0 beyond |z| = 710: finite and right, as the text asks",
    "1:relu_prime-6": "a boolean mask: 1 and 0 as True and False, what the catalogue's '1 where z > 0' says",
    "1:relu_prime-11": "an integer mask: 1 and 0, what the catalogue's '1 where z > 0' says",
    "1:mul_backward-10": "a list [da, db]: unpacks as the pair the text asks for",
    "1:dropout_forward-15": "drops exactly round(p * n) units: each unit's marginal is p, no check of a draw can "
    "tell a fixed count from independent draws",
    "1:predict-13": "trains on all of load_digits: in the grader's sandbox load_digits holds no held-out digit "
    "(grading/course_copy.py), so this cannot leak there; a learner's own check cannot stop it",
    "1:predict-14": "scales the training pixels but not the predicted ones: a ReLU net's argmax is nearly "
    "scale-free, so its labels are as right as the reference's",
    "2:sigmoid_prime-7": "built on the overflowing sigmoid: an overflow warning, every value finite and right",
    "2:tanh_prime-8": "1 / cosh(z)**2: cosh overflows to inf beyond |z| = 710, the value 0 is finite and right",
}


def verdicts(answer: dict) -> tuple[str | None, str | None]:
    """(the notebook check's failure message or None, "fails" or None under grading) for one answer."""
    exercise = EXERCISES[answer["exercise"]]
    namespace = {"np": np}
    exec(answer["code"], namespace)
    fn = namespace[answer["exercise"]]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            exercise(fn)
            in_notebook = None
        except CheckFailure as failure:
            in_notebook = str(failure)
        with secret_seed(SECRET):
            graded = fails_when_graded(exercise, fn, exercise.graded_cases())
    return in_notebook, "fails" if graded else None


def test_the_set_covers_every_exercise_with_right_and_wrong_answers():
    kinds = {(a["exercise"], a["kind"]) for a in ANSWERS}
    for eid in EXERCISES:
        assert (eid, "right") in kinds and (eid, "wrong") in kinds, eid
    assert set(ACCEPTED) <= {a["id"] for a in ANSWERS if a["kind"] == "wrong"}


@pytest.mark.slow
@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_right_answers_pass_and_wrong_ones_fail(exercise_id):
    for answer in (a for a in ANSWERS if a["exercise"] == exercise_id):
        in_notebook, graded = verdicts(answer)
        if answer["kind"] == "right":
            assert in_notebook is None and graded is None, (
                f"{answer['id']} ({answer['mistake']}): {in_notebook or graded}"
            )
        elif answer["kind"] == "wrong" and answer["id"] not in ACCEPTED:
            assert in_notebook is not None, f"{answer['id']} passes its check: {answer['mistake']}"
            assert graded is not None, f"{answer['id']} passes grading: {answer['mistake']}"
