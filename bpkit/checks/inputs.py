"""Functions that checks pass to the learner's code as inputs (an activation, a function to
differentiate, a gradient to descend). They are part of the question, not of any answer, so they
also exist inside the grader's sandbox, where the check cases are unpickled.
"""

from __future__ import annotations

import math

import numpy as np

_A = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7], [-0.2, 0.8, 1.1], [0.9, -0.4, 0.6]])  # (4, 3)


def identity(z):
    """identity(z) = z"""
    return z


def step(z):
    """step(z) = 1 where z > 0 else 0"""
    return (np.asarray(z) > 0).astype(float)


def relu(z):
    """relu(z) = max(z, 0)"""
    return np.maximum(z, 0.0)


def cube(x):
    """f(x) = x**3"""
    return x**3


def wiggle(x):
    """f(x) = sin(3x) + x**2"""
    return math.sin(3 * x) + x**2


def cube_sum(x):
    """f(x) = sum(x**3)"""
    return float(np.sum(x**3))


def quadratic_form(x):
    """f(x) = x0**2 + 3*x0*x1 + 2*x1**2 + 0.5*x1*x2 (cross terms couple the entries)"""
    flat = np.ravel(x)
    return float(flat[0] ** 2 + 3 * flat[0] * flat[1] + 2 * flat[1] ** 2 + 0.5 * flat[1] * flat[2])


def softplus_sum(x):
    """f(x) = sum(log(1 + exp(x)))"""
    return float(np.sum(np.logaddexp(0.0, x)))


def tanh_layer_loss(W):
    """f(W) = sum(tanh(A @ W) ** 2) for a fixed 4x3 matrix A"""
    return float(np.sum(np.tanh(_A @ W) ** 2))


def grad_bowl(w):
    """gradient of f(w) = sum_i (i+1) w_i^2 / 2, i.e. (i+1) * w_i"""
    w = np.asarray(w, dtype=float)
    return w * np.arange(1, w.size + 1).reshape(w.shape)


def grad_quartic(w):
    """gradient of f(w) = sum(w**4) / 4, i.e. w**3"""
    return np.asarray(w, dtype=float) ** 3


def grad_ravine(w):
    """gradient of f(w) = (w_0^2 + 25 w_1^2) / 2 for w of shape (2,)"""
    w = np.asarray(w, dtype=float)
    return np.array([1.0, 25.0]) * w
