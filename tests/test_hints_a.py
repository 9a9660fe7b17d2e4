"""Learner answers of lessons 00-04, each with one typical mistake, get the hint that names that mistake.

Each answer is written as a learner would write it (not the registered mistake itself), and the test asserts
the hint line of the check's message: the hint names the real mistake, not a generic or a wrong one.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest

from bpkit.checks import lesson01, lesson02, lesson03, lesson04
from checker_support import failure_message

# (exercise, learner's code, a part of the hint it must get)
ANSWERS = [
    ("two_input_sum", "def f(x1, x2, w1, w2, b):\n    s = x1 * w1 + x2 * w2\n    return s * b", "not multiplied"),
    ("weighted_sum", "def f(x, w, b):\n    return w * x + b", "sum the products"),
    ("weighted_sum", "def f(x, w, b):\n    return float((w * x + b).sum())", "counts it D times"),
    (
        "weighted_sum",
        "def f(x, w, b):\n    z = b\n    for i in range(x.size - 1):\n        z = z + w[i] * x[i]\n    return z",
        "stops one input early",
    ),
    ("neuron_forward", "def f(x, w, b, activation):\n    return float(np.tanh(np.dot(w, x) + b))", "passed in"),
    (
        "neuron_forward",
        "def f(x, w, b, activation):\n    z = np.dot(w, x) + b\n    return float(z > 0)",
        "passed in",
    ),
    (
        "neuron_forward",
        "def f(x, w, b, activation):\n    return float(activation(w * x).sum() + b)",
        "not to each product",
    ),
    (
        "neuron_forward",
        "def f(x, w, b, activation):\n    a = activation(np.dot(w, x) + b)\n    return activation(a)",
        "applied twice",
    ),
    (
        "layer_forward",
        "def f(X, W, b, activation):\n    Z = np.matmul(X, W.T) + b\n    return Z, activation(Z)",
        "no .T",
    ),
    ("layer_forward", "def f(X, W, b, activation):\n    Z = X * W + b\n    return Z, activation(Z)", "not X * W"),
    ("layer_forward", "def f(X, W, b, activation):\n    return activation(np.matmul(X, W) + b)", "as a pair"),
    (
        "layer_forward",
        "def f(X, W, b, activation):\n    Z = X @ W\n    Z += b\n    A = Z\n    A[...] = activation(A)\n"
        "    return Z, A",
        "Z was overwritten",
    ),
    (
        "layer_forward",
        "def f(X, W, b, activation):\n    Z = X @ W + b.sum()\n    return Z, activation(Z)",
        "not np.sum(b)",
    ),
    (
        "layer_forward",
        "def f(X, W, b, activation):\n    x = X[0]\n    Z = (x @ W + b).reshape(1, -1)\n    return Z, activation(Z)",
        "first sample",
    ),
    (
        "sigmoid",
        "def f(z):\n    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))",
        "the check passes whole arrays",
    ),
    (
        "sigmoid_prime",
        "def f(z):\n    e = np.exp(-np.abs(z))\n    return e / (e + 1.0)",
        "square in the denominator is missing",
    ),
    ("sigmoid_prime", "def f(z):\n    return 0.25 * np.ones_like(z)", "0.25 is the slope at z = 0 only"),
    ("tanh_prime", "def f(z):\n    t = np.tanh(z * z)\n    return 1 - t", "square tanh(z), not z"),
    ("tanh_prime", "def f(z):\n    return 1 - 2 * np.tanh(z)", "** is the power"),
    ("relu", "def f(z):\n    return z if z > 0 else 0.0", "the check passes whole arrays"),
    ("relu_prime", "def f(z):\n    return np.where(z < 0, 1.0, 0.0)", "the mask is inverted"),
    (
        "relu_prime",
        "def f(z):\n    with np.errstate(all='ignore'):\n        s = z / abs(z)\n    return np.clip(s, 0, 1)",
        "z / |z| is 0/0",
    ),
    (
        "init_mlp",
        "def f(sizes, rng):\n    out = []\n    for i in range(len(sizes) - 1):\n"
        "        lim = 1 / np.sqrt(sizes[i])\n"
        "        out.append((rng.uniform(-lim, lim, (sizes[i], sizes[i + 1])), np.zeros(sizes[i + 1])))\n"
        "    return out",
        "uniformly spread",
    ),
    (
        "init_mlp",
        "def f(sizes, rng):\n    out = []\n    for d_in, d_out in reversed(list(zip(sizes[:-1], sizes[1:]))):\n"
        "        out = [(rng.normal(0, (1 / d_in) ** 0.5, (d_in, d_out)), np.zeros(d_out))] + out\n"
        "    return out",
        "draw the layers in order",
    ),
    (
        "mlp_forward",
        "def f(X, params, activation):\n    a = X @ params[0][0] + params[0][1]\n"
        "    for W, b in params[1:]:\n        a = activation(a @ W + b)\n    return a",
        "the LAST one",
    ),
    (
        "mlp_forward",
        "def f(X, params, activation):\n    h = X\n    for W, b in params[: len(params) - 1]:\n"
        "        h = activation(h @ W + b)\n    return h",
        "the output layer is missing",
    ),
    (
        "mlp_forward",
        "def f(X, params, activation):\n    h = X\n    for W, b in params[:-1]:\n        h = activation(h @ W + b)\n"
        "    return h @ params[-1][0]",
        "last layer's bias is missing",
    ),
    (
        "mlp_forward",
        "def f(X, params, activation):\n    h = X\n    for k, (W, b) in enumerate(params):\n        h = h @ W + b\n"
        "        if k < len(params) - 1 or len(params) == 1:\n            h = activation(h)\n    return h",
        "a network of one layer",
    ),
    (
        "mlp_forward",
        "def f(X, params, activation):\n    h = X\n    for W, b in params[:-1]:\n        h = np.tanh(h @ W + b)\n"
        "    W, b = params[-1]\n    return h @ W + b",
        "passed in",
    ),
    ("mse", "def f(y_pred, y):\n    return float((y_pred - y).mean())", "square the errors"),
    ("mse", "def f(y_pred, y):\n    return ((y_pred - y) ** 2).mean(axis=0)", "no axis"),
    ("mse", "def f(y_pred, y):\n    e = (y_pred - y).ravel()\n    return float(e @ e / (len(e) - 1))", "size - 1"),
    ("mse_grad", "def f(y_pred, y):\n    return float(2 * (y_pred - y).mean())", "do not average"),
    ("mse_grad", "def f(y_pred, y):\n    n = y.size\n    return 2 // n * (y_pred - y)", "integer division"),
    ("mse_grad", "def f(y_pred, y):\n    d = y_pred - y\n    return 2 * d * d / d.size", "no square in the gradient"),
    (
        "binary_cross_entropy",
        "def f(p, y):\n    with np.errstate(all='ignore'):\n"
        "        return float(-np.mean(p * np.log(y) + (1 - p) * np.log(1 - y)))",
        "p and y are swapped",
    ),
    (
        "binary_cross_entropy",
        "def f(p, y):\n    return float(np.mean(-y * np.log(p) + (1 - y) * np.log(1 - p)))",
        "sign error in the second term",
    ),
    (
        "binary_cross_entropy",
        "def f(p, y):\n    eps = 1e-7\n    return float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))",
        "no eps inside the logs",
    ),
    (
        "binary_cross_entropy",
        "def f(p, y):\n    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - y + 1e-300)))",
        "not log(1 - y)",
    ),
    (
        "softmax",
        "def f(z):\n    e = np.exp(z - z.max(axis=1, keepdims=True))\n    return e / e.sum(axis=1)",
        "keepdims=True",
    ),
    ("softmax", "def f(z):\n    return z / z.sum(axis=-1, keepdims=True)", "the exponential is missing"),
    ("softmax", "def f(z):\n    return 0.5 * (1 + np.tanh(z / 2))", "sigmoid of each entry"),
    (
        "cross_entropy",
        "def f(logits, y):\n    z = logits - logits.max(axis=1, keepdims=True)\n"
        "    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))\n"
        "    return float(-logp[np.arange(len(y)), y].mean())",
        None,  # right: shifting the logits does not change the log-softmax (a control)
    ),
    (
        "cross_entropy",
        "def f(logits, y):\n    m = logits.max(axis=1)\n    lse = np.log(np.exp(logits - m[:, None]).sum(axis=1))\n"
        "    return float((lse - logits[np.arange(len(y)), y]).mean())",
        "add the max back",
    ),
    (
        "cross_entropy",
        "def f(logits, y):\n    m = logits.max(axis=1)\n    lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))\n"
        "    pred = logits.argmax(axis=1)\n    return float((lse - logits[np.arange(len(y)), pred]).mean())",
        "not the largest logit",
    ),
    (
        "cross_entropy",
        "def f(logits, y):\n    n = len(y)\n    return float(np.mean(np.max(logits, axis=1) - logits[range(n), y]))",
        "the row max alone",
    ),
    (
        "cross_entropy",
        "def f(logits, y):\n    m = np.max(logits)\n    lse = m + np.log(np.sum(np.exp(logits - m), axis=1))\n"
        "    return float(np.mean(lse - logits[np.arange(len(y)), y]))",
        "each row's OWN max",
    ),
    (
        "cross_entropy_grad",
        "def f(logits, y):\n    n, c = logits.shape\n    e = np.exp(logits - logits.max(axis=1, keepdims=True))\n"
        "    p = e / e.sum(axis=1, keepdims=True)\n    return (p - np.identity(n)[y, :c]) / n",
        "np.eye(C)[y]",
    ),
    (
        "cross_entropy_grad",
        "def f(logits, y):\n    e = np.exp(logits - logits.max(axis=1, keepdims=True))\n"
        "    g = e / e.sum(axis=1, keepdims=True)\n    g[:, y] = g[:, y] - 1\n    return g / len(y)",
        "g[np.arange(N), y]",
    ),
    (
        "cross_entropy_grad",
        "def f(logits, y):\n    e = np.exp(logits - logits.max(axis=0))\n    p = e / e.sum(axis=0)\n"
        "    t = np.zeros_like(p)\n    t[np.arange(len(y)), y] = 1\n    return (p - t) / len(y)",
        "not each column",
    ),
    (
        "cross_entropy_grad",
        "def f(logits, y):\n    e = np.exp(logits - logits.max(axis=1, keepdims=True))\n"
        "    p = e / e.sum(axis=1, keepdims=True)\n    t = np.eye(p.shape[1])[y]\n"
        "    return p * (1 - p) * (p - t) / len(y)",
        "p (1 - p) again",
    ),
]


def _learner(code: str):
    namespace = {"np": np, "math": math}
    exec(textwrap.dedent(code), namespace)
    return namespace["f"]


def _hint(message: str) -> str:
    return next(line for line in message.splitlines() if line.strip().startswith("hint:"))


@pytest.mark.parametrize("exercise_id, code, hint", ANSWERS, ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(ANSWERS)])
def test_learner_answer_gets_the_hint_naming_its_mistake(exercise_id, code, hint):
    fn = _learner(code)
    if hint is None:
        from bpkit.checks import EXERCISES

        EXERCISES[exercise_id](fn)  # passes
        return
    assert hint in _hint(failure_message(exercise_id, fn))


def test_a_swap_is_still_named_a_swap_not_an_overwritten_z():
    """The aliasing mistake returns (A, A); a true swap (A, Z) must keep its own hint."""

    def layer_forward(X, W, b, activation):
        Z = np.matmul(X, W) + b
        return activation(Z), Z

    assert "Z and A are swapped" in _hint(failure_message("layer_forward", layer_forward))


def test_the_hints_are_the_modules_own():
    """The hints asserted above are registered ones, not text the tests invented."""
    assert "passed in" in lesson01.FIXED_ACTIVATION_HINT
    assert "whole arrays" in lesson02.ARRAY_HINT
    assert "in order" in lesson03.ORDER_HINT
    assert "keepdims=True" in lesson04.KEEPDIMS_HINT
