"""Hints that name a learner's real mistake in lessons 05-08: one learner-style answer per mistake class.

Each answer is written as a learner would write it (not the registered mistake object); its check must
fail with the hint that names what it does wrong, and a hint that names another mistake must not appear.
"""

from __future__ import annotations

import math

import numpy as np

from bpkit.checks import EXERCISES
from checker_support import failure_message


def _hint(exercise_id: str, fn) -> str:
    message = failure_message(exercise_id, fn)
    return message.split("hint:     ", 1)[1]


# -- lesson 05 ----------------------------------------------------------------------------------


def test_a_step_fixed_inside_the_function_is_told_to_use_h():
    def numerical_derivative(f, x, h=1e-5):
        step = 1e-4  # the argument h is never read
        return (f(x + step) - f(x - step)) / (2 * step)

    assert _hint("numerical_derivative", numerical_derivative).startswith("use the argument h")


def test_h_overwritten_with_a_tiny_step_is_told_to_use_h():
    def numerical_derivative(f, x, h=1e-5):
        h = 1e-10
        return (f(x + h) - f(x - h)) / (h + h)

    assert _hint("numerical_derivative", numerical_derivative).startswith("use the argument h")


def test_backward_difference_is_named():
    def numerical_derivative(f, x, h=1e-5):
        left = f(x - h)
        return (f(x) - left) / h

    assert "the backward (f(x) - f(x - h)) / h" in _hint("numerical_derivative", numerical_derivative)


def test_relative_step_is_named():
    def numerical_derivative(f, x, h=1e-5):
        up, down = x + x * h, x - x * h
        return (f(up) - f(down)) / (2 * h)

    assert "x * (1 + h) moves x by x * h" in _hint("numerical_derivative", numerical_derivative)


def test_mul_backward_dividing_by_the_other_factor_is_named():
    def mul_backward(a, b, dout):
        da = dout / b
        db = dout / a
        return da, db

    assert _hint("mul_backward", mul_backward).startswith("multiply, do not divide")


def test_mul_backward_adding_dout_is_named():
    def mul_backward(a, b, dout):
        return dout + b, dout + a

    assert _hint("mul_backward", mul_backward).startswith("multiply by dout, do not add it")


def test_mul_backward_returning_one_gradient_is_named():
    def mul_backward(a, b, dout):
        da = b * dout
        return da

    assert _hint("mul_backward", mul_backward).startswith("return both gradients as a pair")


def test_tanh_backward_with_the_sigmoid_slope_is_named():
    def tanh_backward(x, dout):
        t = math.tanh(x)
        return dout * (t - t * t)

    assert _hint("tanh_backward", tanh_backward).startswith("t (1 - t) is the slope of the sigmoid")


def test_tanh_backward_returning_the_forward_value_is_named():
    def tanh_backward(x, dout):
        return dout * math.tanh(x)

    assert _hint("tanh_backward", tanh_backward).startswith("tanh(x) is the forward value")


def test_tanh_backward_adding_dout_is_named():
    def tanh_backward(x, dout):
        t = math.tanh(x)
        return dout + (1 - t * t)

    assert _hint("tanh_backward", tanh_backward).startswith("multiply by dout, do not add it")


def test_tanh_backward_dividing_by_dout_is_named():
    def tanh_backward(x, dout):
        t = math.tanh(x)
        return (1 - t * t) / dout

    assert _hint("tanh_backward", tanh_backward).startswith("multiply by dout, do not divide by it")


def test_topological_order_in_pre_order_is_not_called_reversed():
    def topological_order(root):
        order, seen, todo = [], set(), [root]
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            order.append(node)  # before its inputs
            for child in reversed(node.inputs):
                todo.append(child)
        return order

    hint = _hint("topological_order", topological_order)
    assert hint.startswith("your list starts with the root") and "reversed" not in hint


def test_topological_order_reversed_at_the_end_is_called_reversed():
    def topological_order(root):
        order, seen, todo = [], set(), [(root, False)]
        while todo:
            node, ready = todo.pop()
            if ready:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                todo.append((node, True))
                todo.extend((child, False) for child in node.inputs)
        order.reverse()
        return order

    assert _hint("topological_order", topological_order).startswith("the order is reversed")


def test_topological_order_keyed_on_data_is_named():
    def topological_order(root):
        order, seen_values, todo = [], set(), [(root, False)]
        while todo:
            node, ready = todo.pop()
            if ready:
                order.append(node)
                continue
            if node.data in seen_values:
                continue
            seen_values.add(node.data)
            todo.append((node, True))
            for child in node.inputs[::-1]:
                todo.append((child, False))
        return order

    assert _hint("topological_order", topological_order).startswith("a node is missing while another node")


def test_topological_order_without_the_root_is_named():
    def topological_order(root):
        order, seen, todo = [], {root}, [(child, False) for child in reversed(root.inputs)]
        while todo:
            node, ready = todo.pop()
            if ready:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                todo.append((node, True))
                todo.extend((child, False) for child in reversed(node.inputs))
        return order  # the root itself never appended

    assert _hint("topological_order", topological_order).startswith("the root is missing")


def test_topological_order_marking_visited_at_push_is_named():
    def topological_order(root):
        order, marked, todo = [], {id(root)}, [(root, False)]
        while todo:
            node, ready = todo.pop()
            if ready:
                order.append(node)
                continue
            todo.append((node, True))
            for child in node.inputs[::-1]:
                if id(child) not in marked:
                    marked.add(id(child))
                    todo.append((child, False))
        return order

    assert _hint("topological_order", topological_order).startswith("a node is marked visited when it is pushed")


# -- lesson 06 ----------------------------------------------------------------------------------


def test_linear_backward_in_the_wrong_order_is_named():
    def linear_backward(dout, x, W):
        dW = x.T @ dout
        dx = dout @ W.T
        return dW, dx, dout.sum(0)

    assert _hint("linear_backward", linear_backward).startswith("the gradients are in the wrong order")


def test_linear_backward_db_summed_to_a_number_is_named():
    def linear_backward(dout, x, W):
        return dout @ W.T, x.T @ dout, dout.sum()

    assert _hint("linear_backward", linear_backward).startswith("db has one entry per output unit")


def test_linear_backward_dw_from_the_first_sample_is_named():
    def linear_backward(dout, x, W):
        dW = x[0][:, None] * dout[0][None, :]
        return dout @ W.T, dW, dout.sum(axis=0)

    assert _hint("linear_backward", linear_backward).startswith("dW adds up the contributions of every sample")


def test_relu_backward_inverted_mask_is_named():
    def relu_backward(dout, z):
        return dout * (z < 0)

    assert _hint("relu_backward", relu_backward).startswith("the mask is inverted")


def test_relu_backward_with_unset_entries_is_named():
    def relu_backward(dout, z):
        dz = np.full(dout.shape, np.nan)
        active = z > 0
        dz[active] = dout[active]
        return dz

    assert _hint("relu_backward", relu_backward).startswith("the entries where z <= 0 were never set")


def test_numerical_gradient_nudging_every_entry_at_once_is_named():
    def numerical_gradient(f, x, eps=1e-6):
        slope = (f(x + eps) - f(x - eps)) / (2 * eps)
        return slope * np.ones_like(x, dtype=float)

    assert _hint("numerical_gradient", numerical_gradient).startswith("nudge one entry at a time")


def test_relative_error_with_abs_of_the_sum_is_named():
    def relative_error(a, b):
        return float((np.abs(a - b) / np.maximum(np.abs(b + a), 1e-12)).max())

    assert _hint("relative_error", relative_error).startswith("the denominator is |a| + |b|")


def test_relative_error_adding_the_floor_is_named():
    def relative_error(a, b):
        denominator = np.abs(a) + np.abs(b) + 1e-12
        return float(np.max(np.abs(a - b) / denominator))

    assert _hint("relative_error", relative_error).startswith("floor the denominator with np.maximum")


def test_relative_error_relative_to_b_only_is_named():
    def relative_error(a, b):
        return float((np.abs(a - b) / np.maximum(np.abs(b), 1e-12)).max())

    assert _hint("relative_error", relative_error).startswith("divide by |a| + |b|, not by |b| alone")


def test_relative_error_as_a_ratio_of_norms_is_named():
    def relative_error(a, b):
        top, bottom = np.linalg.norm(a - b), np.linalg.norm(a) + np.linalg.norm(b)
        return float(top / max(bottom, 1e-12))

    assert "not a ratio of norms" in _hint("relative_error", relative_error)


def test_relative_error_returning_the_elementwise_array_is_named():
    def relative_error(a, b):
        return np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)

    assert _hint("relative_error", relative_error).startswith("return one number, the worst entry")


def test_relative_error_with_a_1e_8_floor_is_named():
    def relative_error(a, b):
        return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))

    assert _hint("relative_error", relative_error).startswith("the floor is 1e-12")


# -- lesson 07 ----------------------------------------------------------------------------------


def test_gd_step_returning_the_step_is_named():
    def gd_step(w, grad, lr):
        step = lr * grad
        return step

    assert _hint("gd_step", gd_step).startswith("return the new weights, w - lr * grad")


def test_gd_step_along_the_sign_is_named():
    def gd_step(w, grad, lr):
        return w - np.sign(grad) * lr

    assert _hint("gd_step", gd_step).startswith("step by lr * grad itself, not by its sign")


def test_gd_step_with_a_normalised_gradient_is_named():
    def gd_step(w, grad, lr):
        length = np.sqrt(np.sum(np.square(grad)))
        if length == 0:
            return w
        return w - lr * (grad / length)

    assert _hint("gd_step", gd_step).startswith("do not normalise the gradient")


def test_minibatches_shuffling_x_and_y_in_place_separately_is_named():
    def minibatches(X, y, batch_size, rng):
        rng.shuffle(y)
        rng.shuffle(X)
        for i in range(0, len(X), batch_size):
            yield X[i : i + batch_size], y[i : i + batch_size]

    message = failure_message("minibatches", minibatches)
    assert "targets yb no longer belong" in message
    assert message.split("hint:     ", 1)[1].startswith("X and y were both reordered in place")


def test_minibatches_reordering_x_and_y_in_place_together_gets_only_the_mutation_hint():
    def minibatches(X, y, batch_size, rng):
        idx = rng.permutation(len(X))
        X[:], y[:] = X[idx], y[idx]  # in place, but still paired
        for i in range(0, len(X), batch_size):
            yield X[i : i + batch_size], y[i : i + batch_size]

    hint = _hint("minibatches", minibatches)
    assert hint == EXERCISES["minibatches"].mutation_hint


# -- lesson 08 ----------------------------------------------------------------------------------


def test_standardize_per_sample_is_named_whatever_it_does_with_x_test():
    def standardize(X_train, X_test):
        mean = X_train.mean(axis=1, keepdims=True)
        std = X_train.std(axis=1, keepdims=True)
        std[std == 0] = 1.0
        return (X_train - mean) / std, (X_test - mean[0]) / std[0]  # the test rows its own odd way

    assert _hint("standardize", standardize).startswith("statistics per sample (axis=1)")


def test_standardize_min_max_is_named():
    def standardize(X_train, X_test):
        low = X_train.min(axis=0)
        span = X_train.max(axis=0) - low
        span[span == 0] = 1.0
        return (X_train - low) / span, (X_test - low) / span

    assert _hint("standardize", standardize).startswith("that is min-max scaling")


def test_standardize_swapped_outputs_is_named():
    def standardize(X_train, X_test):
        mu, sd = X_train.mean(0), X_train.std(0)
        sd[sd == 0] = 1.0
        train, test = (X_train - mu) / sd, (X_test - mu) / sd
        return test, train

    assert _hint("standardize", standardize).startswith("the two arrays are swapped")


def test_accuracy_with_argmin_is_named():
    def accuracy(logits, y):
        return float((logits.argmin(axis=1) == y).mean())

    assert _hint("accuracy", accuracy).startswith("the predicted class is the position of the LARGEST logit")


def test_accuracy_with_argsort_first_column_is_named_as_the_smallest():
    def accuracy(logits, y):
        ranked = np.argsort(logits, axis=1)
        return float(np.mean(ranked[:, 0] == y))

    assert "np.argsort(...)[:, 0]) gives the smallest" in _hint("accuracy", accuracy)


def test_accuracy_with_argmax_without_axis_is_not_called_integer_division():
    def accuracy(logits, y):
        predicted = logits.argmax()
        return float(np.mean(predicted == y))

    hint = _hint("accuracy", accuracy)
    assert hint.startswith("np.argmax without an axis") and "//" not in hint


def test_accuracy_counting_logits_above_a_threshold_is_named():
    def accuracy(logits, y):
        guesses = (logits > 0.5).sum(axis=1)
        return float(np.mean(guesses == y))

    assert "not a threshold at 0.5" in _hint("accuracy", accuracy)


def test_overlapping_batches_are_not_called_a_draw_with_replacement():
    """From the second independent answer set: a slice one too long repeats samples but loses none."""

    def minibatches(X, y, batch_size, rng):
        order = rng.permutation(len(X))
        for first in range(0, len(X), batch_size):
            chosen = order[first : first + batch_size + 1]
            yield X[chosen], y[chosen]

    message = failure_message("minibatches", minibatches)
    assert "consecutive batches overlap" in message and "with replacement" not in message
