"""The checkers of lessons 00-03 accept the reference and reject typical wrong answers with their hint."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from bpkit import checks
from bpkit.checks import CheckFailure, _harness, lesson02, lesson03
from checker_support import failure_message


def test_not_a_function():
    with pytest.raises(CheckFailure, match="expected a function"):
        checks.relu(None)


def test_crash_in_learner_code_is_reported():
    def weighted_sum(x, w, b):
        return float(x @ w[:-1] + b)  # drops a weight: the shapes no longer match

    message = failure_message("weighted_sum", weighted_sum)
    assert "raised ValueError" in message and "shape" in message


def test_layer_forward_transposed_weights():
    def layer_forward(X, W, b, activation):
        Z = W.T @ X.T  # (D_out, N): the transpose of the answer, and no bias
        return Z, activation(Z)

    assert "the shape is transposed" in failure_message("layer_forward", layer_forward)


def test_relu_in_place_is_a_mutation():
    def relu(z):
        z[z < 0] = 0.0
        return z

    assert "changed its input" in failure_message("relu", relu)


def test_relu_wrong_shape():
    message = failure_message("relu", lambda z: np.maximum(z, 0.0).ravel()[:-1])
    assert "returned shape" in message


def test_naive_sigmoid_is_unstable():
    message = failure_message("sigmoid", lambda z: 1 / (1 + np.exp(-z)))
    assert "-1000" in message and lesson02.UNSTABLE_HINT in message


def test_sigmoid_where_with_overflowing_branch_is_unstable():
    message = failure_message("sigmoid", lambda z: np.where(z >= 0, 1 / (1 + np.exp(-z)), np.exp(z) / (1 + np.exp(z))))
    assert lesson02.UNSTABLE_HINT in message


def test_naive_sigmoid_fails_when_graded():
    # Batch grading observes in the student's kernel and judges elsewhere; strict_fp travels with the exercise.
    exercise = checks.EXERCISES["sigmoid"]
    assert exercise.strict_fp
    cases = exercise.cases()
    index = next(i for i, case in enumerate(cases) if "limits" in case.label)
    observation = _harness.observe(
        lambda z: 1 / (1 + np.exp(-z)), cases[index].args, {}, exercise.kind, exercise.strict_fp
    )
    with pytest.raises(CheckFailure) as info:
        exercise.verdict(index, json.loads(json.dumps(observation)), cases)
    assert lesson02.UNSTABLE_HINT in str(info.value)


def test_sigmoid_with_math_exp_is_unstable():
    import math

    def sigmoid(z):
        return np.array([1 / (1 + math.exp(-v)) for v in np.ravel(z)]).reshape(np.shape(z))

    assert lesson02.UNSTABLE_HINT in failure_message("sigmoid", sigmoid)


def test_clipped_sigmoid_misses_the_exact_limit():
    message = failure_message("sigmoid", lambda z: 1 / (1 + np.exp(-np.clip(z, -500, 500))))
    assert lesson02.EXACT_LIMIT_HINT in message


def test_sigmoid_check_leaves_warning_settings_alone():
    before = np.geterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckFailure):
            checks.sigmoid(lambda z: 1 / (1 + np.exp(-z)))
        assert np.geterr() == before
        np.exp(np.array([1000.0]))  # still only a warning outside the check
    assert any("overflow" in str(w.message) for w in caught)


def test_relu_prime_returning_booleans_is_accepted(capsys):
    checks.relu_prime(lambda z: z > 0)
    assert "passed" in capsys.readouterr().out


# -- init_mlp: judged by structure, reproducibility and statistics ------------------------------


def test_init_mlp_accepts_the_transposed_draw_and_lists(capsys):
    def init_mlp(sizes, rng):
        params = []
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            W = (rng.standard_normal((d_out, d_in)) / np.sqrt(d_in)).T  # (d_in, d_out), drawn row by row
            params.append([W, np.zeros(d_out)])
        return params

    checks.init_mlp(init_mlp)
    assert "passed" in capsys.readouterr().out


def _own_stream(std_fn, draw="normal"):
    """An init_mlp that ignores the given rng and draws from its own generator."""

    def init_mlp(sizes, rng):
        own = np.random.default_rng(12345)
        params = []
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            std = std_fn(d_in, d_out)
            if draw == "normal":
                W = own.normal(0.0, std, size=(d_in, d_out))
            else:
                W = own.uniform(-np.sqrt(3) * std, np.sqrt(3) * std, size=(d_in, d_out))
            params.append((W, np.zeros(d_out)))
        return params

    return init_mlp


@pytest.mark.parametrize(
    "std_fn, draw, hint",
    [
        (lambda i, o: np.sqrt(1 / i), "normal", lesson03.RNG_HINT),
        (lambda i, o: np.sqrt(2 / i), "normal", lesson03.HE_HINT),
        (lambda i, o: np.sqrt(2 / (i + o)), "normal", lesson03.XAVIER_HINT),
        (lambda i, o: 1 / i, "normal", lesson03.VARIANCE_HINT),
        (lambda i, o: np.sqrt(1 / i), "uniform", lesson03.UNIFORM_HINT),
    ],
    ids=["ignores rng", "He", "Xavier", "variance as std", "uniform"],
)
def test_init_mlp_statistics_name_the_mistake(std_fn, draw, hint):
    message = failure_message("init_mlp", _own_stream(std_fn, draw))
    assert f"hint:     {hint}" in message
    assert "standard deviation" in message


def test_init_mlp_global_numpy_random_is_rejected():
    def init_mlp(sizes, rng):
        np.random.seed(0)
        return [(np.random.randn(i, o) * np.sqrt(1 / i), np.zeros(o)) for i, o in zip(sizes[:-1], sizes[1:])]

    assert lesson03.RNG_HINT in failure_message("init_mlp", init_mlp)


def test_init_mlp_wrong_number_of_layers():
    message = failure_message("init_mlp", lambda sizes, rng: lesson03._init_mlp(sizes[:-1], rng))
    assert "layers, expected" in message and "zip(sizes[:-1], sizes[1:])" in message


def test_init_mlp_returning_an_array():
    assert "expected a list" in failure_message("init_mlp", lambda sizes, rng: np.zeros(3))


# -- mlp_forward -----------------------------------------------------------------------------------


def test_mlp_forward_returning_every_layer_fails():
    assert "not a list of every layer's output" in failure_message("mlp_forward", lesson03._forward_every_layer)


def test_mlp_forward_transposed_weights_fail_with_a_shape_hint():
    def mlp_forward(X, params, activation):
        a = X
        for W, b in params:
            a = activation(a @ W.T + b)
        return a

    message = failure_message("mlp_forward", mlp_forward)
    assert "raised ValueError" in message and "shape" in message


def test_mlp_forward_that_modifies_params_is_a_mutation():
    def mlp_forward(X, params, activation):
        a = X
        for k, (W, b) in enumerate(params):
            b += 0.0 if k else 1e-3  # a stray in-place update
            a = a @ W + b
            a = a if k == len(params) - 1 else activation(a)
        return a

    assert "changed its input" in failure_message("mlp_forward", mlp_forward)


# -- issue 13: the time limit and the observation format ------------------------------------------


def test_a_check_stops_a_function_that_never_returns_with_a_hint():
    import dataclasses
    import time

    from bpkit.checks._core import SLOW_HINT

    exercise = dataclasses.replace(checks.EXERCISES["weighted_sum"], time_limit=0.5)

    def weighted_sum(x, w, b):
        while True:
            pass

    started = time.monotonic()
    with pytest.raises(CheckFailure) as info:
        exercise(weighted_sum)
    assert time.monotonic() - started < 10
    assert "did not return within 0.5 s" in str(info.value) and f"hint:     {SLOW_HINT}" in str(info.value)


def test_a_time_limit_cannot_be_swallowed_by_except_exception():
    from bpkit.checks import _harness

    def stubborn(x):
        while True:
            try:
                while True:
                    pass
            except Exception:
                continue

    observation = _harness.observe(stubborn, (1.0,), {}, "plain", False, 0.3)
    assert observation["error"]["type"] == "TimeLimit"


def test_observe_keeps_its_five_argument_form_for_the_grader():
    """bpkit grade calls observe(fn, args, kwargs, kind, strict_fp); an observation carries the arguments'
    digests after the call (`after`), not a verdict on mutation."""
    from bpkit.checks import _harness

    exercise = checks.EXERCISES["weighted_sum"]
    case = exercise.cases()[0]
    observation = _harness.observe(exercise.reference, case.args, case.kwargs, exercise.kind, exercise.strict_fp)
    assert set(observation) == {"output", "after"}
    exercise.verdict(0, observation)


# -- answers that switch the floating-point checks off: judged on their values ------------------


def test_sigmoid_that_silences_overflow_itself_fails_on_the_tail_values():
    def sigmoid(z):
        with np.errstate(over="ignore"):  # the learner's own errstate overrides the check's strict one
            return 1 / (1 + np.exp(-z))

    message = failure_message("sigmoid", sigmoid)
    assert "negative tail" in message and "np.exp(-z) overflowed" in message


@pytest.mark.parametrize(
    "exercise_id, derivative",
    [
        ("sigmoid_prime", lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
        ("tanh_prime", lambda z: 4 / (np.exp(z) + np.exp(-z)) ** 2 - 0 * (np.exp(z) - np.exp(-z)) ** 2),
    ],
)
def test_unsimplified_derivatives_fail_far_in_saturation(exercise_id, derivative):
    def quiet(z):
        with np.errstate(all="ignore"):
            return derivative(z)

    message = failure_message(exercise_id, quiet)
    assert "z from -800 to 800" in message and "NaN" in message
