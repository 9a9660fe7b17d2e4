"""Tests for bpkit.optim: every update rule against numbers worked out from its formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bpkit.layers import Parameter
from bpkit.optim import SGD, Adam, Momentum, RMSProp, clip_grad_norm


def param(data, grad, name="w"):
    p = Parameter(np.array(data, dtype=float), name)
    p.grad[...] = grad
    return p


# ---- SGD -------------------------------------------------------------------------------------------


def test_sgd_step():
    p = param([1.0, -2.0], [0.5, 0.25])
    SGD([p], lr=0.1).step()
    # w - lr g = [1 - 0.05, -2 - 0.025]
    np.testing.assert_allclose(p.data, [0.95, -2.025], rtol=1e-15)


def test_sgd_weight_decay():
    p = param([1.0, -2.0], [0.5, 0.25])
    SGD([p], lr=0.1, weight_decay=0.01).step()
    # w - lr (g + wd w) = [1 - 0.1 (0.5 + 0.01), -2 - 0.1 (0.25 - 0.02)] = [0.949, -2.023]
    np.testing.assert_allclose(p.data, [0.949, -2.023], rtol=1e-14)


def test_updates_are_in_place_and_lr_is_settable():
    p = param([1.0], [1.0])
    data = p.data
    opt = SGD([p], lr=0.5)
    opt.step()
    assert p.data is data and p.data[0] == 0.5
    opt.lr = 0.25
    opt.step()
    assert p.data[0] == 0.25


# ---- Momentum ----------------------------------------------------------------------------------


def test_momentum_two_steps():
    p = param([1.0], [0.5])
    opt = Momentum([p], lr=0.1, beta=0.9)
    velocity = opt.velocities[0]
    opt.step()
    # v = 0.5, w = 1 - 0.1 * 0.5 = 0.95
    np.testing.assert_allclose(p.data, [0.95], rtol=1e-15)
    opt.step()  # same gradient again
    # v = 0.9 * 0.5 + 0.5 = 0.95, w = 0.95 - 0.1 * 0.95 = 0.855
    np.testing.assert_allclose(opt.velocities[0], [0.95], rtol=1e-15)
    np.testing.assert_allclose(p.data, [0.855], rtol=1e-15)
    assert opt.velocities[0] is velocity  # allocated once, updated in place


def test_nesterov_two_steps():
    p = param([1.0], [0.5])
    opt = Momentum([p], lr=0.1, beta=0.9, nesterov=True)
    opt.step()
    # v = 0.5, w = 1 - 0.1 (0.9 * 0.5 + 0.5) = 1 - 0.095 = 0.905
    np.testing.assert_allclose(p.data, [0.905], rtol=1e-15)
    opt.step()
    # v = 0.9 * 0.5 + 0.5 = 0.95, w = 0.905 - 0.1 (0.9 * 0.95 + 0.5) = 0.905 - 0.1355 = 0.7695
    np.testing.assert_allclose(p.data, [0.7695], rtol=1e-14)


def test_nesterov_equals_the_look_ahead_form_of_lesson_10():
    # f(w) = 0.5 * w^T A w, gradient A w. Lesson 10's form evaluates the gradient at the
    # look-ahead point w - lr beta v; the optimizer's parameters should be those points.
    A = np.array([[3.0, 0.5], [0.5, 1.0]])
    lr, beta = 0.05, 0.9
    w_lesson, v_lesson = np.array([1.0, -2.0]), np.zeros(2)
    p = param(w_lesson.copy(), 0.0)
    opt = Momentum([p], lr=lr, beta=beta, nesterov=True)
    for _ in range(25):
        v_lesson = beta * v_lesson + A @ (w_lesson - lr * beta * v_lesson)
        w_lesson = w_lesson - lr * v_lesson
        p.grad[...] = A @ p.data
        opt.step()
        np.testing.assert_allclose(p.data, w_lesson - lr * beta * v_lesson, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.velocities[0], v_lesson, rtol=1e-12, atol=1e-14)


# ---- RMSProp and Adam ------------------------------------------------------------------------


def test_rmsprop_two_steps():
    p = param([1.0], [0.5])
    opt = RMSProp([p], lr=0.01, rho=0.9, eps=1e-8)
    opt.step()
    # s = 0.1 * 0.25 = 0.025, w = 1 - 0.01 * 0.5 / (sqrt(0.025) + 1e-8)
    w1 = 1 - 0.01 * 0.5 / (math.sqrt(0.025) + 1e-8)
    np.testing.assert_allclose(p.data, [w1], rtol=1e-15)
    p.grad[...] = -1.0
    opt.step()
    # s = 0.9 * 0.025 + 0.1 * 1 = 0.1225 (sqrt = 0.35), w = w1 + 0.01 * 1 / (0.35 + 1e-8)
    np.testing.assert_allclose(opt.squares[0], [0.1225], rtol=1e-15)
    np.testing.assert_allclose(p.data, [w1 + 0.01 / (0.35 + 1e-8)], rtol=1e-15)


def test_adam_first_step_is_about_lr_times_sign():
    g = np.array([0.5, -2e-3, 1e3, -7.0])
    p = param([0.0, 0.0, 0.0, 0.0], g)
    opt = Adam([p], lr=0.01)
    opt.step()
    assert opt.t == 1  # t counts from 1
    # m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps): lr * sign(g) to within eps/|g|
    np.testing.assert_allclose(p.data, -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-15)
    np.testing.assert_allclose(p.data, -0.01 * np.sign(g), rtol=1e-5)


def test_adam_two_steps():
    p = param([1.0], [0.5])
    opt = Adam([p], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step()  # -> w = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    w1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    p.grad[...] = -1.0
    opt.step()
    # m = 0.9 * 0.05 + 0.1 * (-1) = -0.055,        m_hat = -0.055 / (1 - 0.81)
    # v = 0.999 * 0.00025 + 0.001 * 1 = 0.00124975, v_hat = 0.00124975 / (1 - 0.998001)
    m_hat = -0.055 / 0.19
    v_hat = 0.00124975 / 0.001999
    np.testing.assert_allclose(opt.m[0], [-0.055], rtol=1e-14)
    np.testing.assert_allclose(opt.v[0], [0.00124975], rtol=1e-14)
    np.testing.assert_allclose(p.data, [w1 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)], rtol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1, weight_decay=0.01),
        lambda ps: Momentum(ps, lr=0.1),
        lambda ps: Momentum(ps, lr=0.1, nesterov=True),
        lambda ps: RMSProp(ps, lr=0.1),
        lambda ps: Adam(ps, lr=0.1),
    ],
)
def test_float32_parameters_stay_float32(make):
    p = Parameter(np.ones((3, 2), dtype=np.float32), "W")
    p.grad[...] = 0.5
    opt = make([p])
    opt.step()
    opt.step()
    assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
    assert np.all(p.data < 1.0)  # it moved downhill


# ---- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf"), "0.1", None])
def test_bad_learning_rates(lr):
    with pytest.raises(ValueError, match="lr must"):
        SGD([param([1.0], [1.0])], lr=lr)


def test_bad_hyperparameters_and_params():
    p = param([1.0], [1.0])
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        Momentum([p], lr=0.1, beta=1.0)
    with pytest.raises(ValueError, match="beta2"):
        Adam([p], beta2=1.5)
    with pytest.raises(ValueError, match="eps"):
        RMSProp([p], lr=0.1, eps=0.0)
    with pytest.raises(ValueError, match="weight_decay"):
        SGD([p], lr=0.1, weight_decay=-1.0)
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"model.parameters\(\)"):
        SGD([np.ones(3)], lr=0.1)
    opt = SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="lr must"):
        opt.lr = -1.0


# ---- clip_grad_norm ----------------------------------------------------------------------------


def test_clip_grad_norm_scales_by_one_factor():
    a, b = param([0.0, 0.0], [3.0, 4.0]), param([0.0], [12.0])
    grad_a = a.grad
    total = clip_grad_norm([a, b], max_norm=6.5)
    assert total == 13.0  # sqrt(9 + 16 + 144)
    # factor 6.5 / 13 = 0.5 for every gradient
    np.testing.assert_allclose(a.grad, [1.5, 2.0], rtol=1e-15)
    np.testing.assert_allclose(b.grad, [6.0], rtol=1e-15)
    assert a.grad is grad_a  # in place
    assert math.sqrt(np.sum(a.grad**2) + np.sum(b.grad**2)) == pytest.approx(6.5, rel=1e-15)


def test_clip_grad_norm_leaves_small_gradients_alone():
    a = param([0.0, 0.0], [3.0, 4.0])
    assert clip_grad_norm([a], max_norm=10.0) == 5.0
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])


def test_clip_grad_norm_validates():
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([param([0.0], [1.0])], max_norm=0.0)
