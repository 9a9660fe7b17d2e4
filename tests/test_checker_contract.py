"""What every checker promises, tested over the registry (one row per exercise in bpkit.checks.EXERCISES).

Each exercise: the reference passes; at least three typical mistakes, each failing with its own hint;
cases that pickle (the grader ships them into the kernel) and are the same every time; and a clear
failure, never a crash, for a stub, None, an exception, a non-finite answer and an answer that hangs.
What only one exercise does is tested in tests/test_checks_lesson*.py.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import time

import numpy as np
import pytest

from bpkit import checks
from bpkit.checks import EXERCISES
from checker_support import fails_when_graded, failure_message

IDS = list(EXERCISES)
MISTAKES = [(eid, k) for eid in IDS for k in range(len(EXERCISES[eid].mistakes))]
# Answers that are not a value, where "returned None" is not what the learner needs to read.
NONE_SAID_OTHERWISE = {"minibatches": "a generator is expected; the check says what it got instead"}


@pytest.mark.parametrize("exercise_id", IDS)
def test_registered_under_its_id(exercise_id):
    assert getattr(checks, exercise_id) is EXERCISES[exercise_id]
    assert EXERCISES[exercise_id].id == exercise_id


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_passes(exercise_id, capsys):
    EXERCISES[exercise_id](EXERCISES[exercise_id].reference)
    assert capsys.readouterr().out.startswith(f"✔ {exercise_id} passed")


@pytest.mark.parametrize("exercise_id", IDS)
def test_at_least_three_typical_mistakes(exercise_id):
    assert len(EXERCISES[exercise_id].mistakes) >= 3


@pytest.mark.parametrize("exercise_id, k", MISTAKES, ids=[f"{e}-mistake{k}" for e, k in MISTAKES])
def test_every_mistake_fails_with_its_own_hint(exercise_id, k):
    mistake = EXERCISES[exercise_id].mistakes[k]

    def learner(*args, **kwargs):  # the learner's own function, not the registered object
        return mistake.fn(*args, **kwargs)

    message = failure_message(exercise_id, learner)
    assert message.startswith(f"{exercise_id} failed on ")
    assert f"hint:     {mistake.hint}" in message


@pytest.mark.parametrize("exercise_id", IDS)
def test_cases_pickle_and_are_the_same_every_time(exercise_id):
    first, second = EXERCISES[exercise_id].cases(), EXERCISES[exercise_id].cases()
    assert len(first) >= 3
    for a, b in zip(first, second):
        assert a.label == b.label
        assert pickle.dumps((a.args, a.kwargs)) == pickle.dumps((b.args, b.kwargs))
        pickle.loads(pickle.dumps((a.args, a.kwargs)))


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_stub_is_not_implemented_yet(exercise_id):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"{exercise_id}: your code here")

    assert "not implemented yet" in failure_message(exercise_id, stub)


@pytest.mark.parametrize("exercise_id", IDS)
def test_returning_none_is_explained(exercise_id):
    message = failure_message(exercise_id, lambda *args, **kwargs: None)
    if exercise_id not in NONE_SAID_OTHERWISE:
        assert "returned None" in message


@pytest.mark.parametrize("exercise_id", IDS)
def test_an_exception_is_reported_with_a_hint_not_raised(exercise_id):
    def broken(*args, **kwargs):
        raise KeyError("oops")

    message = failure_message(exercise_id, broken)
    assert "raised KeyError: 'oops'" in message and "hint:" in message


def _non_finite(value):
    """The same answer with every float replaced by NaN."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return np.full_like(value, np.nan)
    if isinstance(value, float):
        return float("nan")
    if isinstance(value, (tuple, list)):
        return type(value)(_non_finite(v) for v in value)
    return value


def _holds_a_float(value) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_holds_a_float(v) for v in value)
    return isinstance(value, float) or (isinstance(value, np.ndarray) and value.dtype.kind == "f")


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_non_finite_answer_fails(exercise_id):
    exercise = EXERCISES[exercise_id]
    case = exercise.cases()[0]
    if exercise.kind != "plain" or not _holds_a_float(exercise.reference(*case.args, **case.kwargs)):
        pytest.skip("the answer holds no float (batches of indices, graph nodes, labels, an epoch number)")
    message = failure_message(exercise_id, lambda *args, **kwargs: _non_finite(exercise.reference(*args, **kwargs)))
    assert re.search(r"finite|nan", message, re.IGNORECASE)


@pytest.mark.parametrize("exercise_id", IDS)
def test_an_answer_that_hangs_is_stopped_with_the_slow_hint(exercise_id):
    exercise = dataclasses.replace(EXERCISES[exercise_id], time_limit=0.05)  # the real limit is seconds
    started = time.monotonic()
    with pytest.raises(checks.CheckFailure) as info:
        exercise(lambda *args, **kwargs: time.sleep(5))
    assert time.monotonic() - started < 2
    assert "did not return within 0.05 s" in str(info.value) and exercise.slow_hint in str(info.value)


@pytest.mark.parametrize("exercise_id", IDS)
def test_no_mistakes_hint_appears_for_another_mistakes_output(exercise_id):
    """A hint names a mistake only when that mistake reproduces the answer: never another registered one's."""
    exercise = EXERCISES[exercise_id]
    for k, mistake in enumerate(exercise.mistakes):
        message = failure_message(exercise_id, lambda *args, _fn=mistake.fn, **kwargs: _fn(*args, **kwargs))
        for other in exercise.mistakes:
            if other.hint != mistake.hint:
                assert f"hint:     {other.hint}" not in message, f"mistake {k} got another mistake's hint"


def test_a_hint_needs_the_mistake_on_every_case_not_one_coinciding_value():
    """x1 + x2 + w1 + w2 + b coincides with crossed pairs on one case only: it must not be told 'crossed'."""
    exercise = EXERCISES["weighted_sum"]
    bias_only = exercise.mistakes[0]  # float(x @ w): the bias is missing

    def sometimes(x, w, b):  # the bias-free mistake on the first case only, right nowhere else
        return bias_only.fn(x, w, b) if x.size == 1 else float(x @ w + b) + 1.0

    message = failure_message("weighted_sum", sometimes)
    assert bias_only.hint not in message


# Grading mixes a fresh secret into every case seed (`bpkit grade` draws one per run). A case that tells
# a mistake apart only for some draws (all inputs positive, say) lets that mistake pass in one run of ten:
# every mistake must fail, and the reference pass, under any secret. These are fixed draws of such secrets.
GRADING_SECRETS = [int(s) for s in np.random.default_rng(20261207).integers(0, 2**63, size=12)]


@pytest.mark.slow
@pytest.mark.parametrize("exercise_id", IDS)
def test_every_grading_secret_fails_every_mistake_and_passes_the_reference(exercise_id):
    from bpkit.checks._core import secret_seed

    exercise = EXERCISES[exercise_id]
    for secret in GRADING_SECRETS:
        with secret_seed(secret):
            cases = exercise.graded_cases()
            assert not fails_when_graded(exercise, exercise.reference, cases), f"secret {secret}"
            for k, mistake in enumerate(exercise.mistakes):
                assert fails_when_graded(exercise, mistake.fn, cases), f"mistake {k} passes, secret {secret}"


# -- relation hints claim "everywhere": they must hold on every case seen, not on the failing one alone --


def test_a_scalar_answer_wrong_another_way_is_not_called_a_constant_factor():
    """Any wrong number is some multiple of the expected one: on one case that says nothing."""
    message = failure_message("mse", lambda y_pred, y: float(np.mean(y_pred - y)))  # errors never squared
    assert "times the expected one" not in message and "constant factor" not in message


def test_an_array_answer_off_by_one_factor_on_every_case_is_named():
    message = failure_message("l2_penalty_grad", lambda W, lam: 7 * lam * W)
    assert "your answer is 7 times the expected one everywhere" in message


def test_an_array_answer_off_by_a_size_dependent_factor_is_named_as_such():
    def divided_by_classes(logits, y):
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return (p - np.eye(logits.shape[1])[y]) / logits.shape[1]  # C where the text says N

    message = failure_message("cross_entropy_grad", divided_by_classes)
    assert "a multiple of the expected one on every case" in message and "depends on the input" in message


def test_a_case_cut_short_by_the_evidence_budget_does_not_hide_the_hint(monkeypatch):
    """After a failure the check observes the other cases within EVIDENCE_BUDGET seconds; one that budget
    cuts short is no evidence against a mistake that fits every case actually seen."""
    from bpkit.checks import _core

    monkeypatch.setattr(_core, "EVIDENCE_BUDGET", 0.2)
    calls = []

    def summed(y_pred, y):  # mse's registered "sum, not mean" mistake, slow after its first call
        calls.append(1)
        if len(calls) > 1:
            time.sleep(0.5)
        return float(np.sum((y_pred - y) ** 2))

    message = failure_message("mse", summed)
    assert len(calls) >= 2, "the check observed a later case"
    assert "hint:     the division by the number of elements is missing" in message
