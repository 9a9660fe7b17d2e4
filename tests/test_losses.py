"""Tests for bpkit.losses: values, gradients against finite differences, stability, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bpkit.gradcheck import numerical_gradient, relative_error
from bpkit.losses import BCEWithLogitsLoss, MSELoss, SoftmaxCrossEntropy

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)

sizes = st.integers(1, 6)
seeds = st.integers(0, 2**32 - 1)


def well_conditioned(grad):
    """True when no entry is within 1e-3 of 0 (see tests/test_layers.py: near 0, central
    differences of a smooth function cannot reach a relative error of 1e-7)."""
    return np.min(np.abs(grad)) > 1e-3


# ---- known values -------------------------------------------------------------------------------


def test_mse_value_and_gradient_by_hand():
    loss = MSELoss()
    pred = np.array([[1.0, 2.0], [0.0, -1.0]])
    target = np.array([[0.0, 0.0], [0.0, 1.0]])
    # squared errors 1, 4, 0, 4 -> mean 9 / 4
    assert loss.forward(pred, target) == 2.25
    np.testing.assert_array_equal(loss.backward(), 2 * (pred - target) / 4)


def test_bce_value_at_zero_logit_is_log_2():
    loss = BCEWithLogitsLoss()
    assert loss.forward(np.zeros((3, 1)), np.array([[0.0], [1.0], [1.0]])) == pytest.approx(math.log(2))
    np.testing.assert_allclose(loss.backward(), np.array([[0.5], [-0.5], [-0.5]]) / 3)  # (sigmoid(0) - y) / N


def test_bce_matches_the_plain_formula():
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((5, 1)), rng.uniform(0, 1, (5, 1))
    p = 1 / (1 + np.exp(-z))
    expected = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert BCEWithLogitsLoss().forward(z, y) == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_uniform_logits_is_log_c():
    loss = SoftmaxCrossEntropy()
    assert loss.forward(np.zeros((2, 4)), np.array([0, 3])) == pytest.approx(math.log(4))
    # (softmax - onehot) / N with softmax = 1/4 everywhere
    expected = (np.full((2, 4), 0.25) - np.eye(4)[[0, 3]]) / 2
    np.testing.assert_allclose(loss.backward(), expected)


def test_cross_entropy_matches_the_plain_formula():
    rng = np.random.default_rng(1)
    z, y = rng.standard_normal((6, 3)), rng.integers(0, 3, 6)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(6), y]))
    assert SoftmaxCrossEntropy().forward(z, y) == pytest.approx(expected, rel=1e-12)


# ---- gradients against finite differences ---------------------------------------------------


def backward_error(loss, pred, target, eps: float, conditioned: bool = True) -> float:
    """Relative error between loss.backward() at pred and central differences of loss.forward(., target).

    conditioned: skip the example where a gradient entry is near 0 (e.g. a softmax probability of 1e-4),
    as a quadratic loss never needs.
    """
    loss.forward(pred, target)
    analytic = loss.backward()
    if conditioned:
        assume(well_conditioned(analytic))
    numeric = numerical_gradient(lambda p: loss.forward(p, target), pred, eps=eps)
    return relative_error(analytic, numeric)


@PROPERTY
@given(n=sizes, d=sizes, seed=seeds)
def test_mse_backward_matches_numerical_gradient(n, d, seed):
    rng = np.random.default_rng(seed)
    pred, target = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    # A quadratic: central differences are exact up to rounding, so a big step is best.
    assert backward_error(MSELoss(), pred, target, eps=1e-2, conditioned=False) < 1e-7


@PROPERTY
@given(n=sizes, seed=seeds, scale=st.sampled_from([0.5, 2.0, 5.0]))
def test_bce_backward_matches_numerical_gradient(n, seed, scale):
    rng = np.random.default_rng(seed)
    z = scale * rng.standard_normal((n, 1))
    y = rng.uniform(0, 1, (n, 1))
    assert backward_error(BCEWithLogitsLoss(), z, y, eps=1e-5) < 1e-7


@PROPERTY
@given(n=sizes, c=st.integers(2, 6), seed=seeds, scale=st.sampled_from([0.5, 2.0]))
def test_cross_entropy_backward_matches_numerical_gradient(n, c, seed, scale):
    rng = np.random.default_rng(seed)
    z = scale * rng.standard_normal((n, c))
    y = rng.integers(0, c, n)
    assert backward_error(SoftmaxCrossEntropy(), z, y, eps=1e-5) < 1e-7


# ---- stability: logits of magnitude 1e3 ---------------------------------------------------------


def test_large_logits_are_finite_and_warning_free():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            ce = SoftmaxCrossEntropy()
            value = ce.forward(z, np.array([1, 2]))
            grad = ce.backward()
            bce = BCEWithLogitsLoss()
            b_value = bce.forward(z, (z > 0).astype(float))
            b_grad = bce.backward()
            mse = MSELoss()
            m_value = mse.forward(z, np.zeros_like(z))
            m_grad = mse.backward()
    for v in (value, b_value, m_value):
        assert math.isfinite(v)
    for g in (grad, b_grad, m_grad):
        assert np.all(np.isfinite(g))
    # row 0: label 1 has logit -1000 against a max of 1000 -> loss 2000;
    # row 1: label 2 has 999 against 1000 -> log(1 + e^-1) + 1 (the e^-2000 term vanishes)
    assert value == pytest.approx((2000.0 + 1.0 + math.log1p(math.exp(-1.0))) / 2)


def test_bce_exact_limits():
    bce = BCEWithLogitsLoss()
    assert bce.forward(np.array([[1000.0]]), np.array([[1.0]])) == 0.0
    assert bce.forward(np.array([[1000.0]]), np.array([[0.0]])) == 1000.0
    assert bce.forward(np.array([[-1000.0]]), np.array([[1.0]])) == 1000.0


# ---- shapes, dtypes, errors -----------------------------------------------------------------


def test_flat_target_is_accepted_for_one_output_column():
    pred, target = np.array([[1.0], [2.0]]), np.array([0.0, 0.0])
    assert MSELoss().forward(pred, target) == 2.5
    bce = BCEWithLogitsLoss()
    bce.forward(pred, np.array([1.0, 0.0]))
    assert bce.backward().shape == (2, 1)


def test_mse_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"target must have the shape of pred \(4, 2\), got \(4, 3\)"):
        MSELoss().forward(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"shape of pred \(4,\), got \(4, 1\)"):
        MSELoss().forward(np.zeros(4), np.zeros((4, 1)))  # would broadcast to (4, 4) if allowed


def test_cross_entropy_label_errors():
    ce = SoftmaxCrossEntropy()
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels of shape \(N,\) = \(3,\) .* got \(3, 4\).*one-hot"):
        ce.forward(z, np.eye(4)[:3])
    with pytest.raises(ValueError, match=r"got \(2,\)"):
        ce.forward(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 3\] for 4 classes, got values from 0 to 4"):
        ce.forward(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="from -1"):
        ce.forward(z, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="whole numbers"):
        ce.forward(z, np.array([0.0, 1.5, 1.0]))
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\), got \(3,\)"):
        ce.forward(np.zeros(3), np.array([0, 1, 1]))
    assert ce.forward(z, np.array([0.0, 1.0, 3.0])) == pytest.approx(math.log(4))  # whole floats are fine


def test_bce_target_range():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BCEWithLogitsLoss().forward(np.zeros((2, 1)), np.array([[0.0], [2.0]]))


@pytest.mark.parametrize("loss", [MSELoss(), BCEWithLogitsLoss(), SoftmaxCrossEntropy()])
def test_backward_before_forward_raises(loss):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward"):
        loss.backward()


# Each loss with a valid target for (4, 3) predictions.
each_loss_and_target = pytest.mark.parametrize(
    "loss, target",
    [
        (MSELoss(), np.zeros((4, 3))),
        (BCEWithLogitsLoss(), np.ones((4, 3))),
        (SoftmaxCrossEntropy(), np.array([0, 1, 2, 0])),
    ],
)


@each_loss_and_target
def test_float32_predictions_give_float32_gradients(loss, target):
    pred = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    value = loss.forward(pred, target)
    assert isinstance(value, float)
    grad = loss.backward()
    assert grad.dtype == np.float32 and grad.shape == pred.shape


@each_loss_and_target
def test_backward_twice_gives_the_same_and_inputs_untouched(loss, target):
    pred = np.random.default_rng(0).standard_normal((4, 3))
    pred_before = pred.copy()
    loss.forward(pred, target)
    first = loss.backward()
    np.testing.assert_array_equal(loss.backward(), first)
    np.testing.assert_array_equal(pred, pred_before)
