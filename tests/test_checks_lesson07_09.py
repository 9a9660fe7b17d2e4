"""The checkers of lessons 07-09 accept the reference, and reject typical wrong answers with the right hint."""

from __future__ import annotations

import numpy as np
import pytest

from bpkit import checks
from bpkit.checks import CheckFailure
from checker_support import failure_message


def test_not_a_function():
    with pytest.raises(CheckFailure, match="expected a function"):
        checks.gd_step(3.0)


def test_gd_step_in_place_update_is_caught():
    def in_place(w, grad, lr):
        w -= lr * grad
        return w

    message = failure_message("gd_step", in_place)
    assert "changed its input (argument 1) in place" in message


def test_gd_step_wrong_shape():
    message = failure_message("gd_step", lambda w, grad, lr: (w - lr * grad).sum())
    assert "expected an array of shape (3,)" in message


def test_gd_step_accepts_equivalent_forms():
    checks.gd_step(lambda w, grad, lr: np.subtract(w, np.multiply(lr, grad)))
    checks.gd_step(lambda w, grad, lr: w + (-lr) * grad)


def test_minibatches_accepts_other_ways_to_shuffle():
    def with_shuffle(X, y, batch_size, rng):
        idx = np.arange(len(X))
        rng.shuffle(idx)
        for start in range(0, len(X), batch_size):
            yield X[idx[start : start + batch_size]], y[idx[start : start + batch_size]]

    def with_choice_returning_a_list(X, y, batch_size, rng):
        idx = rng.choice(len(X), size=len(X), replace=False)
        return [(X[idx[s : s + batch_size]], y[idx[s : s + batch_size]]) for s in range(0, len(X), batch_size)]

    checks.minibatches(with_shuffle)
    checks.minibatches(with_choice_returning_a_list)


def test_minibatches_that_shuffles_x_in_place_is_caught():
    def shuffles_input(X, y, batch_size, rng):
        idx = rng.permutation(len(X))
        X[:] = X[idx]
        y[:] = y[idx]
        for start in range(0, len(X), batch_size):
            yield X[start : start + batch_size], y[start : start + batch_size]

    assert "changed its input" in failure_message("minibatches", shuffles_input)


def test_minibatches_without_yield_or_pairs():
    def only_x(X, y, batch_size, rng):
        idx = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            yield X[idx[start : start + batch_size]]

    def yields_nothing(X, y, batch_size, rng):
        return iter(())

    assert "not a pair (Xb, yb)" in failure_message("minibatches", only_x)
    assert "yielded no batches at all" in failure_message("minibatches", yields_nothing)


def test_minibatches_rows_must_be_rows_of_x():
    def scaled_rows(X, y, batch_size, rng):
        idx = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            batch = idx[start : start + batch_size]
            yield 2.0 * X[batch], y[batch]

    assert "a row that is not a row of X" in failure_message("minibatches", scaled_rows)


def test_standardize_single_output_and_wrong_shape():
    assert "expected a tuple of 2 items" in failure_message("standardize", lambda a, b: a - a.mean(0))
    message = failure_message("standardize", lambda a, b: ((a - a.mean(0)).T, b))
    assert "returned shape" in message


def test_standardize_mutating_its_input_is_caught():
    def in_place(X_train, X_test):
        mu, sd = X_train.mean(0), X_train.std(0)
        sd[sd == 0] = 1.0
        X_test -= mu
        X_test /= sd
        X_train -= mu
        X_train /= sd
        return X_train, X_test

    assert "changed its input" in failure_message("standardize", in_place)


def test_accuracy_returning_an_array_is_rejected():
    message = failure_message("accuracy", lambda logits, y: np.argmax(logits, axis=1) == y)
    assert "expected a single number" in message


def test_init_small_std_off_by_a_little_is_rejected_with_the_formula():
    def slightly_off(d_in, d_out, rng):
        return rng.normal(0.0, 0.9 * np.sqrt(2.0 / d_in), size=(d_in, d_out))

    assert "expected sqrt(2 / d_in)" in failure_message("he_init", slightly_off)


def test_init_accepts_other_ways_to_draw():
    checks.he_init(lambda d_in, d_out, rng: rng.standard_normal((d_in, d_out)) * np.sqrt(2.0 / d_in))
    checks.xavier_init(lambda d_in, d_out, rng: rng.normal(scale=np.sqrt(2.0 / (d_in + d_out)), size=(d_in, d_out)))


def test_init_not_centred():
    message = failure_message("he_init", lambda d_in, d_out, rng: rng.random((d_in, d_out)) * np.sqrt(2.0 / d_in))
    assert "expected about 0" in message


def test_clip_accepts_pytorch_style_epsilon():
    def torch_like(grads, max_norm):
        total = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
        coef = min(1.0, max_norm / (total + 1e-6))
        return [g * coef for g in grads], total

    checks.clip_grad_norm(torch_like)


def test_clip_in_place_is_caught():
    def in_place(grads, max_norm):
        total = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
        if total > max_norm:
            for g in grads:
                g *= max_norm / total
        return grads, total

    assert "changed its input" in failure_message("clip_grad_norm", in_place)


def test_clip_returning_only_the_list():
    message = failure_message("clip_grad_norm", lambda grads, max_norm: [g.copy() for g in grads])
    assert "returned 3 items, expected 2" in message
    assert "return a pair (clipped, total_norm)" in message


def test_clip_each_array_on_its_own_gets_the_joint_norm_hint_whatever_total_it_returns():
    def clip_grad_norm(grads, max_norm):
        clipped, norms = [], []
        for g in grads:
            norm = np.sqrt(np.sum(g**2))
            norms.append(norm)
            clipped.append(g * (max_norm / norm) if norm > max_norm else g.copy())
        return clipped, float(sum(norms))  # the total is wrong too, differently from the typical mistake

    message = failure_message("clip_grad_norm", clip_grad_norm)
    assert "clipped[0]: wrong values" in message
    assert "each array was clipped on its own" in message and "return a pair" not in message


def test_clip_returning_a_pair_never_gets_the_return_a_pair_hint():
    message = failure_message("clip_grad_norm", lambda grads, max_norm: ([g * 0.5 for g in grads], 1.0))
    assert "return a pair" not in message and "ONE norm over every entry" in message


def test_clip_grad_norm_dividing_by_a_zero_norm_is_named():
    """max_norm / total_norm on all-zero gradients: ZeroDivisionError (floats) or NaN (NumPy), one hint for both."""
    from bpkit.checks.lesson09 import ZERO_NORM_HINT

    def python_floats(grads, max_norm):
        total = float(np.sqrt(sum(np.sum(g**2) for g in grads)))
        return [g * min(1.0, max_norm / total) for g in grads], total

    def numpy_floats(grads, max_norm):
        total = np.sqrt(sum(np.sum(g**2) for g in grads))
        with np.errstate(all="ignore"):  # the learner's own: 0 / 0 gives NaN, not an error
            scale = max_norm / total if total > max_norm or total == 0 else 1.0
            return [g * scale for g in grads], float(total)

    for answer in (python_floats, numpy_floats):
        message = failure_message("clip_grad_norm", answer)
        assert "failed on all-zero gradients" in message and f"hint:     {ZERO_NORM_HINT}" in message, message
