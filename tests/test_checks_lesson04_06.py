"""The checkers of lessons 04-06 accept right answers and reject wrong ones with the right hint."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from bpkit import checks
from bpkit.checks import CheckFailure, _harness, lesson04, lesson05, lesson06
from checker_support import failure_message

# -- lesson 04 --------------------------------------------------------------------------------


def test_stable_references_emit_no_warning_on_logits_of_magnitude_1e3():
    z = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1001.0, -1003.0]])
    y = np.array([0, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would raise here
        p = lesson04._softmax(z)
        loss = lesson04._cross_entropy(z, y)
        grad = lesson04._cross_entropy_grad(z, y)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.all(np.isfinite(p)) and np.isfinite(loss) and np.all(np.isfinite(grad))
    # Row 1: log p[0] = 1000 - logsumexp(1000, 999, -1000) = -log(1 + e^-1); row 2: -1003 - logsumexp(...)
    lse1 = np.log1p(np.exp(-1.0))
    lse2 = -1000.0 + np.log(1 + np.exp(-1.0) + np.exp(-3.0))
    assert loss == pytest.approx((lse1 + (lse2 + 1003.0)) / 2)


def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_naive_softmax_fails_on_the_overflow_in_a_notebook():
    message = failure_message("softmax", naive_softmax)
    assert "magnitude 1e3" in message and "overflow" in message
    assert "subtract each row's max" in message


@pytest.mark.parametrize("strict_fp", [True, False])
def test_naive_softmax_fails_when_graded(strict_fp):
    # Batch grading observes and judges separately. With strict_fp the overflow raises; without it
    # (a safety net), the NaN it leaves gives it away. Either way the hint is the same.
    exercise = checks.EXERCISES["softmax"]
    assert exercise.strict_fp
    cases = exercise.cases()
    index = next(i for i, case in enumerate(cases) if "1e3" in case.label)
    with np.errstate(all="ignore"):
        observation = _harness.observe(naive_softmax, cases[index].args, {}, strict_fp=strict_fp)
    with pytest.raises(CheckFailure) as info:
        exercise.verdict(index, json.loads(json.dumps(observation)), cases)
    assert ("overflow" if strict_fp else "NaN or inf") in str(info.value)
    assert "subtract each row's max" in str(info.value)


def test_softmax_that_overflows_and_then_recovers_still_fails():
    # Right numbers, but exp(1000) overflowed on the way: the RuntimeWarning must count as a failure.
    def overflow_then_stable(z):
        e = np.exp(z)
        if np.all(np.isfinite(e)):
            return e / e.sum(axis=1, keepdims=True)
        return lesson04._softmax(z)

    message = failure_message("softmax", overflow_then_stable)
    assert "overflow" in message and "subtract each row's max" in message


def test_softmax_shifted_by_the_global_max_gets_the_row_max_hint():
    def global_max(z):
        e = np.exp(z - np.max(z))
        return e / e.sum(axis=1, keepdims=True)

    message = failure_message("softmax", global_max)
    assert "invalid value" in message and "each row's OWN max" in message


def test_cross_entropy_via_log_of_softmax_fails_on_log_zero():
    def log_of_softmax(logits, y):
        return float(-np.mean(np.log(lesson04._softmax(logits))[np.arange(len(y)), y]))

    message = failure_message("cross_entropy", log_of_softmax)
    assert "divide by zero" in message and "logsumexp" in message


def test_softmax_of_the_wrong_shape_is_explained():
    message = failure_message("softmax", lambda z: lesson04._softmax(z).ravel())
    assert "returned shape" in message and "expected shape" in message


def test_mse_that_squares_in_place_is_caught_as_mutation():
    def mse_in_place(y_pred, y):
        y_pred -= y
        y_pred **= 2
        return float(y_pred.mean())

    message = failure_message("mse", mse_in_place)
    assert "changed its input (argument 1) in place" in message


def test_cross_entropy_returning_an_array_per_row_is_explained():
    def per_row(logits, y):
        return -lesson04._log_softmax(logits)[np.arange(len(y)), y]

    assert "expected a single number" in failure_message("cross_entropy", per_row)


def test_cross_entropy_grad_that_raises_names_the_error():
    def broken(logits, y):
        return (lesson04._softmax(logits) - np.eye(len(y))[y]) / len(y)  # one-hot of the wrong width

    message = failure_message("cross_entropy_grad", broken)
    assert "raised" in message and "hint:" in message


# -- lesson 05 --------------------------------------------------------------------------------


def test_topological_order_accepts_any_valid_order():
    # Leaves first in the reverse of creation order is a different, still valid, answer.
    def leaves_reversed_first(root):
        order = lesson05._topological_order(root)
        leaves = [node for node in order if not node.inputs]
        return leaves[::-1] + [node for node in order if node.inputs]

    checks.topological_order(leaves_reversed_first)


def test_topological_order_hand_written_recursion_gets_the_stack_hint():
    def recursive_without_visited_set(root):
        out = []
        for child in root.inputs:
            for node in recursive_without_visited_set(child):
                if node not in out:
                    out.append(node)
        return out + [root]

    message = failure_message("topological_order", recursive_without_visited_set)
    assert "RecursionError" in message and "explicit stack" in message


def test_topological_order_returning_numbers_is_explained():
    message = failure_message(
        "topological_order", lambda root: [node.data for node in lesson05._topological_order(root)]
    )
    assert "not Values" in message and "Value objects themselves" in message


def test_topological_order_missing_the_root_is_explained():
    message = failure_message("topological_order", lambda root: lesson05._topological_order(root)[:-1])
    assert "missing" in message


def test_topological_order_rules_report_an_input_after_its_user():
    spec = [("leaf", [], 1.0), ("tanh", [0], None), ("exp", [1], None)]
    assert lesson05._order_problem(spec, [0, 1, 2]) is None
    assert lesson05._order_problem(spec, [1, 0, 2]) == "node 1 comes before its input node 0"
    assert lesson05._order_problem(spec, [0, 1, 2, 1]).startswith("node 1 appears more than once")


def test_topological_order_chain_case_is_deeper_than_the_recursion_limit():
    import sys

    sizes = [len(case.args[0]["__graph__"]) for case in lesson05._topological_order_cases()]
    assert max(sizes) == 100_000 > sys.getrecursionlimit()


def test_numerical_derivative_one_sided_reports_the_case():
    message = failure_message("numerical_derivative", lambda f, x, h=1e-5: (f(x + h) - f(x)) / h)
    assert "failed on f(x) = x**3" in message


def test_mul_backward_returning_one_number_is_explained():
    message = failure_message("mul_backward", lambda a, b, dout: b * dout)
    assert "expected a tuple of 2 items" in message


# -- lesson 06 --------------------------------------------------------------------------------


def test_numerical_gradient_that_leaves_x_perturbed_is_caught():
    message = failure_message("numerical_gradient", lesson06._gradient_in_place_not_restored)
    assert "changed its input x in place" in message and "x[k] = old" in message


def test_numerical_gradient_that_adds_and_subtracts_eps_is_caught_when_floats_do_not_round_trip():
    def add_then_subtract(f, x, eps=1e-6):
        grad = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            x[index] += eps
            f_plus = f(x)
            x[index] -= 2 * eps
            f_minus = f(x)
            x[index] += eps  # back where it started, up to rounding
            grad[index] = (f_plus - f_minus) / (2 * eps)
        return grad

    x = np.random.default_rng(604).normal(size=4)
    once = x.copy()
    add_then_subtract(lesson06.cube_sum, once)
    assert not np.array_equal(once, x)  # the premise: rounding moved at least one entry
    assert "does not always give back the same float" in failure_message("numerical_gradient", add_then_subtract)


def test_numerical_gradient_that_restores_exactly_in_place_passes():
    def in_place_restored(f, x, eps=1e-6):  # on the caller's x itself, each entry put back as it was
        return lesson06._central_differences(f, x, eps, np.ndindex(x.shape))

    checks.numerical_gradient(in_place_restored)


def test_numerical_gradient_of_flat_shape_is_explained():
    message = failure_message(
        "numerical_gradient", lambda f, x, eps=1e-6: lesson06._numerical_gradient(f, x, eps).ravel()
    )
    assert "returned shape" in message


def test_numerical_gradient_functions_are_what_their_docstrings_say():
    x = np.array([0.5, -1.0, 2.0])
    assert lesson06.cube_sum(x) == pytest.approx(0.125 - 1 + 8)
    assert lesson06.quadratic_form(x) == pytest.approx(0.25 + 3 * 0.5 * -1 + 2 * 1 + 0.5 * -1 * 2)
    assert lesson06.softplus_sum(np.zeros(2)) == pytest.approx(2 * np.log(2))
    # The central difference approximates the analytic gradient 3 x^2.
    np.testing.assert_allclose(lesson06._numerical_gradient(lesson06.cube_sum, x), 3 * x**2, rtol=1e-8)


def test_linear_backward_with_dx_transposed_gets_a_shape_hint():
    message = failure_message("linear_backward", lambda dout, x, W: ((dout @ W.T).T, x.T @ dout, dout.sum(axis=0)))
    assert "item 1 of the returned tuple" in message and "transposed" in message


def test_linear_backward_that_raises_on_non_square_shapes_mentions_shapes():
    message = failure_message("linear_backward", lambda dout, x, W: (dout @ W, x.T @ dout, dout.sum(axis=0)))
    assert "raised ValueError" in message and "shape" in message


def test_relative_error_reference_values():
    assert lesson06._relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert lesson06._relative_error(np.array([0.0]), np.array([2.0])) == 1.0
    assert lesson06._relative_error(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)


def test_relative_error_returning_an_array_is_explained():
    message = failure_message("relative_error", lambda a, b: np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12))
    assert "expected a single number" in message


# -- issue 13: answers a learner actually wrote, each with the hint that names its mistake ----------


def test_topological_order_recursion_is_refused_even_with_a_raised_recursion_limit():
    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(10**6)
    try:  # micrograd's build_topo, as a learner writes it in a notebook
        message = failure_message("topological_order", lesson05.recursive_topological_order)
    finally:
        sys.setrecursionlimit(old)
    assert "`build_topo` calls itself" in message and f"hint:     {lesson05.SELF_CALL_HINT}" in message
    assert "failed on a * b + c" in message  # caught on the first, 5-node graph: no deep recursion is run


def test_topological_order_iterative_answer_is_not_mistaken_for_recursion(capsys):
    def topological_order(root):
        order, seen, stack = [], set(), [(root, iter(root.inputs))]
        seen.add(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(node)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(child.inputs)))
        return order

    checks.topological_order(topological_order)
    assert "✔ topological_order passed" in capsys.readouterr().out


def test_topological_order_with_a_list_as_visited_set_is_stopped_with_the_set_hint():
    import time

    def topological_order(root):
        order, visited, stack = [], [], [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif node not in visited:  # a list: every lookup scans all nodes seen so far
                visited.append(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node.inputs)
        return order

    started = time.monotonic()
    message = failure_message("topological_order", topological_order)
    assert time.monotonic() - started < 60  # before the time limit, it ran for minutes
    assert "did not return within 5 s" in message and f"hint:     {lesson05.SLOW_VISITED_HINT}" in message


def test_sigmoid_backward_with_a_naive_sigmoid_fails_on_overflow():
    def sigmoid_backward(dout, z):
        s = 1 / (1 + np.exp(-z))  # right values, but exp(1000) overflows on the way
        return dout * s * (1 - s)

    message = failure_message("sigmoid_backward", sigmoid_backward)
    assert "saturated z of magnitude 1e3" in message and f"hint:     {lesson06.SIGMOID_OVERFLOW_HINT}" in message


def test_relu_backward_changing_dout_in_place_gets_its_own_hint():
    def relu_backward(dout, z):
        dout[z <= 0] = 0
        return dout

    message = failure_message("relu_backward", relu_backward)
    assert "changed its input (argument 1)" in message and f"hint:     {lesson06.RELU_MUTATION_HINT}" in message


def test_cross_entropy_with_clipped_probabilities_gets_the_log_sum_exp_hint():
    def cross_entropy(logits, y):
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        p = np.maximum(p, 1e-15)  # no log(0) warning, but a wrong loss where p underflowed
        return float(-np.mean(np.log(p[np.arange(len(y)), y])))

    message = failure_message("cross_entropy", cross_entropy)
    assert "magnitude 1e3" in message and f"hint:     {lesson04.CLIPPED_HINT}" in message


def test_numerical_derivative_five_point_stencil_is_told_it_is_not_the_central_difference():
    def numerical_derivative(f, x, h=1e-5):
        return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)

    message = failure_message("numerical_derivative", numerical_derivative)
    assert "5-point stencil" in message and "use the argument h" not in message


def test_numerical_derivative_ignoring_h_is_still_told_to_use_it():
    message = failure_message("numerical_derivative", lambda f, x, h=1e-5: (f(x + 1e-5) - f(x - 1e-5)) / 2e-5)
    assert "use the argument h" in message


def test_a_function_that_prints_instead_of_returning_gets_one_consistent_hint(capsys):
    from bpkit.checks._core import NONE_HINT

    def linear_backward(dout, x, W):
        print(dout @ W.T, x.T @ dout, dout.sum(axis=0))

    message = failure_message("linear_backward", linear_backward)
    assert "returned None" in message and f"hint:     {NONE_HINT}" in message
    assert "compare your formula" not in message


def test_linear_backward_names_the_wrong_gradient():
    message = failure_message("linear_backward", lambda dout, x, W: (dout @ W.T, x.T @ dout * 2, dout.sum(axis=0)))
    assert "dW (item 2 of the returned tuple): wrong values" in message


def test_sigmoid_backward_keeps_the_tail_that_a_switched_off_overflow_loses():
    """Like sigmoid's: the naive formula under the learner's own errstate returns 0 where the slope is e^z."""
    from bpkit.checks import lesson06

    def quiet_naive(dout, z):
        with np.errstate(over="ignore"):
            s = 1 / (1 + np.exp(-z))
        return dout * s * (1 - s)

    message = failure_message("sigmoid_backward", quiet_naive)
    assert "negative tail" in message and f"hint:     {lesson06.SIGMOID_TAIL_HINT}" in message, message

    def reused_lesson02_sigmoid(dout, z):  # the stable sigmoid of lesson 02, then s (1 - s)
        e = np.exp(-np.abs(z))
        s = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        return dout * s * (1 - s)

    checks.sigmoid_backward(reused_lesson02_sigmoid)
