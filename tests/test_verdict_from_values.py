"""Issue 20, item 2: nothing the kernel says about itself turns a fail into a pass (no bubblewrap needed).

Three layers, each tested here on the exercises whose properties were hidden in the attack notebooks
(weighted_sum mutating x, the overflowing sigmoid, a recursive topological_order):
- judge/verdict: observations with forged or missing fields (`mutated: []`, no `after`, no `recursion`,
  a `tampered` report) cannot pass; mutation is decided from argument digests the grader computes;
- the sealed harness: patches made after `seal()` (wrapping observe, rebinding its globals or the
  library functions it calls) change nothing it observes, and `tampering` names them;
- the runner's `_check`: it observes with the sealed copy and marks every observation when tampered.
"""

from __future__ import annotations

import copy
import json
import sys
import types

import numpy as np
import pytest

from bpkit.checks import EXERCISES, CheckFailure, _harness
from bpkit.checks.lesson05 import recursive_topological_order
from bpkit.grading.execute import Run
from bpkit.grading.judge import judge_exercise, run_flags


def mutating_weighted_sum(x, w, b):
    """Right value, but the caller's x is changed in place."""
    x *= w
    return float(x.sum() + b)


def naive_sigmoid(z):
    """Right values, but np.exp(-z) overflows for z = -1000."""
    return 1 / (1 + np.exp(-np.asarray(z, dtype=float)))


def light_cases(exercise) -> list:
    """The exercise's cases without graphs too large for the recursion watch (the 100,000-node chain:
    slow to build, and its RecursionError is a value-based failure that needs no record)."""
    return [
        c
        for c in exercise.cases()
        if not any(
            isinstance(a, dict) and len(a.get("__graph__", ())) > _harness.RECURSION_WATCH_MAX_NODES for a in c.args
        )
    ]


def observations_of(exercise, fn, observe=_harness.observe) -> list[dict]:
    """What a kernel would send for fn on every light case (through JSON, as in grading)."""
    return [
        json.loads(json.dumps(observe(fn, c.args, c.kwargs, exercise.kind, exercise.strict_fp, exercise.time_limit)))
        for c in light_cases(exercise)
    ]


def judge(exercise, observations) -> tuple[str, str]:
    run = Run(observations={exercise.id: observations})
    return judge_exercise(exercise, light_cases(exercise), run)


# -- judge and verdict: forged fields ----------------------------------------------------------------


def test_honest_observations_pass():
    """The control: the reference answers, observed as a kernel observes them, pass every exercise here."""
    for eid in ("weighted_sum", "sigmoid", "topological_order"):
        exercise = EXERCISES[eid]
        assert judge(exercise, observations_of(exercise, exercise.reference)) == (
            "pass",
            f"passed ({len(light_cases(exercise))} cases)",
        ), eid


def test_a_mutation_is_seen_in_the_argument_digests_whatever_mutated_says():
    exercise = EXERCISES["weighted_sum"]
    observations = observations_of(exercise, mutating_weighted_sum)
    for observation in observations:
        observation["mutated"] = []  # the old field, forged: nobody reads it
    status, message = judge(exercise, observations)
    assert status == "fail" and "changed its input (argument 1) in place" in message, message


def test_an_observation_without_the_arguments_after_the_call_fails():
    exercise = EXERCISES["weighted_sum"]
    observations = observations_of(exercise, exercise.reference)
    for observation in observations:
        del observation["after"]
        observation["mutated"] = []
    status, message = judge(exercise, observations)
    assert status == "fail" and "no record of its arguments after the call" in message, message


def test_the_graders_hint_weighs_every_case_not_one_coinciding_value():
    """judge passes all observations to the verdict: a mistake that coincides with the answer on the
    first case only is not named; the mistake itself, reproducing every case, still is."""
    exercise = EXERCISES["weighted_sum"]
    bias_only = exercise.mistakes[0]  # float(x @ w): the bias is missing

    def sometimes(x, w, b):  # the bias-free mistake on the first case (D=1) only, off by 1 elsewhere
        return bias_only.fn(x, w, b) if x.size == 1 else float(x @ w + b) + 1.0

    status, message = judge(exercise, observations_of(exercise, sometimes))
    assert status == "fail" and "failed on random inputs, D=1" in message, message
    assert bias_only.hint not in message, message
    status, message = judge(exercise, observations_of(exercise, bias_only.fn))
    assert status == "fail" and f"hint:     {bias_only.hint}" in message, message


def test_a_later_unreadable_observation_is_reported_before_any_verdict():
    exercise = EXERCISES["weighted_sum"]
    observations = observations_of(exercise, lambda x, w, b: float(x @ w))
    observations[-1] = "garbled"
    assert judge(exercise, observations) == ("error", "not checked: the kernel's reply could not be read")


def test_argument_digests_follow_array_equal_with_equal_nan():
    x = np.array([0.0, np.nan, 1.5])
    same = np.array([-0.0, np.float64("nan") * -1, 1.5])  # -0.0 and another NaN: the same values
    assert _harness.arg_digests((x,), (same,)) == _harness.arg_digests((x,), (x,))
    changed = x.copy()
    changed[2] = 1.5 + 1e-15
    assert _harness.arg_digests((x,), (changed,)) != _harness.arg_digests((x,), (x,))
    params = [np.ones(2), np.zeros(3)]
    assert _harness.arg_digests((params,), ([np.ones(2)],)) != _harness.arg_digests((params,), (params,))
    assert _harness.arg_digests((1.0, "text"), (1.0, "text")) == [None, None]


def test_a_recursive_sort_without_its_recursion_record_fails():
    exercise = EXERCISES["topological_order"]
    observations = observations_of(exercise, recursive_topological_order)
    assert observations[0]["recursion"]["depth"] >= 2  # the watch saw it...
    for observation in observations:
        observation.pop("recursion")  # ...and a forger drops it
    status, message = judge(exercise, observations)
    assert status == "fail" and "no record of how deep its calls went" in message, message


def test_switching_off_the_recursion_watch_inside_the_function_fails():
    def recursive_and_unwatched(root):
        hook = sys.getprofile()
        sys.setprofile(None)
        try:
            return recursive_topological_order(root)
        finally:
            sys.setprofile(hook)  # on again: the watch saw nothing of the recursion

    exercise = EXERCISES["topological_order"]
    case = exercise.cases()[0]
    observation = _harness.observe(recursive_and_unwatched, case.args, {}, "nodes")
    assert observation["recursion"]["depth"] == 1 and observation["unwatched"] == "sys.setprofile"
    with pytest.raises(CheckFailure, match="switched off the check's watch"):
        exercise.verdict(0, json.loads(json.dumps(observation)))


def test_a_tampered_report_fails_the_exercise_and_flags_the_submission():
    exercise = EXERCISES["sigmoid"]
    observations = observations_of(exercise, exercise.reference)
    observations[-1]["tampered"] = ["bpkit.checks._harness.observe was replaced"]
    run = Run(observations={exercise.id: observations})
    status, message = judge_exercise(exercise, light_cases(exercise), run)
    assert status == "fail" and "observe was replaced" in message and "instructor" in message, message
    assert run_flags(run) == ["harness-tampered"]
    assert run_flags(Run(observations={exercise.id: observations_of(exercise, exercise.reference)})) == []


# -- the sealed harness --------------------------------------------------------------------------------


@pytest.fixture
def sealed():
    found = _harness.seal()
    assert found["tampering"](found) == []  # nothing replaced yet
    return found


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the lenient wrapper's sigmoid
def test_a_wrapped_observe_changes_nothing_the_sealed_copy_observes(sealed, monkeypatch):
    genuine = _harness.observe

    def lenient(fn, args, kwargs, kind="plain", strict_fp=False, *rest):
        """Every property forged: no strict floating point, no recursion, arguments as sent."""
        observation = genuine(fn, args, kwargs, kind, False, *rest)
        if "recursion" in observation:
            observation["recursion"] = {"function": "", "depth": 1}
        observation["after"] = _harness.arg_digests(args, args)
        return observation

    monkeypatch.setattr(_harness, "observe", lenient)
    for eid, fn in (
        ("weighted_sum", mutating_weighted_sum),
        ("sigmoid", naive_sigmoid),
        ("topological_order", recursive_topological_order),
    ):
        exercise = EXERCISES[eid]
        forged = judge(exercise, observations_of(exercise, fn, _harness.observe))[0]
        # The attack: the forged properties pass. Not for sigmoid any more: its far-tail case (issue 22)
        # makes the naive formula return a wrong value, which no forged property can hide.
        assert forged == ("fail" if eid == "sigmoid" else "pass"), eid
        status, message = judge(exercise, observations_of(exercise, fn, sealed["observe"]))
        assert status == "fail", (eid, message)
    assert sealed["tampering"](sealed) == ["bpkit.checks._harness.observe was replaced"]


@pytest.mark.parametrize(
    "module, name, replacement",
    [
        (copy, "deepcopy", lambda value, memo=None: value),  # the call would work on the caller's objects
        (np, "errstate", lambda **kwargs: types.SimpleNamespace(__enter__=lambda: None, __exit__=lambda *a: None)),
        (sys, "setprofile", lambda hook: None),  # the recursion watch would never start
    ],
)
def test_library_functions_rebound_after_sealing_change_nothing_and_are_named(
    sealed, monkeypatch, module, name, replacement
):
    monkeypatch.setattr(module, name, replacement)
    for eid, fn in (
        ("weighted_sum", mutating_weighted_sum),
        ("sigmoid", naive_sigmoid),
        ("topological_order", recursive_topological_order),
    ):
        exercise = EXERCISES[eid]
        assert judge(exercise, observations_of(exercise, fn, sealed["observe"]))[0] == "fail", (name, eid)
    assert f"{module.__name__}.{name} was replaced" in sealed["tampering"](sealed)


def test_rebinding_the_harness_globals_or_code_is_named(sealed, monkeypatch):
    monkeypatch.setattr(_harness, "_call", lambda *args: None)
    monkeypatch.setattr(_harness.encode, "__code__", (lambda value: value).__code__)
    monkeypatch.setitem(sealed["private"], "STRICT", {})  # found through gc, say
    found = sealed["tampering"](sealed)
    assert "bpkit.checks._harness._call was replaced" in found
    assert "the code of bpkit.checks._harness.encode was replaced" in found
    assert any("private copy" in item and "STRICT" in item for item in found), found
    # The private copy was changed in place: that is why tampering fails the exercise whatever it observed.


def test_a_replaced_harness_module_is_named(sealed, monkeypatch):
    monkeypatch.setitem(sys.modules, "bpkit.checks._harness", types.ModuleType("bpkit.checks._harness"))
    assert "bpkit.checks._harness was replaced in sys.modules" in sealed["tampering"](sealed)


# -- the runner's _check ---------------------------------------------------------------------------------


def check_request(exercise) -> dict:
    import base64
    import pickle

    cases = [(c.args, c.kwargs, exercise.kind, exercise.strict_fp, exercise.time_limit) for c in exercise.cases()]
    return {"op": "check", "exercise": exercise.id, "cases": base64.b64encode(pickle.dumps(cases)).decode()}


def test_the_runner_observes_with_the_sealed_harness_and_reports_a_wrapper(monkeypatch):
    from bpkit.grading import runner

    exercise = EXERCISES["weighted_sum"]
    shell = types.SimpleNamespace(user_ns={"weighted_sum": mutating_weighted_sum})
    reply = runner._check(shell, _harness, check_request(exercise))
    assert not any("tampered" in o for o in reply["observations"])
    assert judge(exercise, reply["observations"])[0] == "fail"  # the mutation, from the digests

    monkeypatch.setattr(_harness, "observe", lambda *args, **kwargs: {"output": 0.0, "mutated": []})
    reply = runner._check(shell, _harness, check_request(exercise))
    assert all(o["tampered"] == ["bpkit.checks._harness.observe was replaced"] for o in reply["observations"])
    assert "after" in reply["observations"][0]  # observed by the sealed copy, not by the replacement
    status, message = judge(exercise, reply["observations"])
    assert status == "fail" and "replaced the checking code" in message


def test_the_runner_reports_tampering_done_during_a_call():
    from bpkit.grading import runner

    def patches_then_answers(x, w, b):
        _harness._arrays_in = lambda value, path=(): iter(())
        return float(x @ w + b)

    exercise = EXERCISES["weighted_sum"]
    try:
        reply = runner._check(
            types.SimpleNamespace(user_ns={"weighted_sum": patches_then_answers}), _harness, check_request(exercise)
        )
    finally:
        _harness._arrays_in = runner._SEALED["functions"]["_arrays_in"][0]
    assert reply["observations"][0]["tampered"] == ["bpkit.checks._harness._arrays_in was replaced"]


def test_a_function_that_switches_off_the_time_limit_still_runs_out_of_time():
    import signal
    import time

    def slow_and_unalarmed(x):
        signal.setitimer(signal.ITIMER_REAL, 0)  # the harness's alarm, switched off
        time.sleep(0.4)
        return x

    observation = _harness.observe(slow_and_unalarmed, (1.0,), {}, "plain", False, 0.2)
    assert observation["error"]["type"] == "TimeLimit", observation


def test_building_a_graph_pauses_the_garbage_collector_and_restores_its_state():
    import gc

    from bpkit.checks.lesson05 import _chain_spec

    spec = _chain_spec(100_000)
    assert gc.isenabled()
    nodes = _harness.build_graph(spec)
    assert gc.isenabled() and len(nodes) == 100_000 and nodes[-1].inputs == (nodes[-2],)
    gc.disable()
    try:
        _harness.build_graph({"__graph__": [("leaf", [], 1.0)]})
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()
    with pytest.raises(RecursionError):  # the case keeps its purpose: a recursive sort fails on it
        recursive_topological_order(nodes[-1])
