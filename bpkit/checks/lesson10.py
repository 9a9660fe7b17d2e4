"""Checks for lesson 10, momentum: momentum_step, nesterov_step."""

from __future__ import annotations

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, register
from bpkit.checks.inputs import grad_bowl, grad_quartic, grad_ravine

# -- momentum_step ------------------------------------------------------------------------------


def _momentum_step(w, grad, v, lr, beta):
    v_new = beta * v + grad  # velocity: a decaying sum of past gradients
    w_new = w - lr * v_new
    return w_new, v_new


def _momentum_cases() -> list[Case]:
    rng = case_rng(1001)
    cases = []
    for shape, lr, beta in (((3,), 0.1, 0.9), ((5,), 0.01, 0.5), ((4, 3), 0.05, 0.99)):
        w, grad, v = rng.normal(size=shape), rng.normal(size=shape), rng.normal(size=shape)
        cases.append(Case(f"shape {shape}, lr={lr}, beta={beta}", (w, grad, v, lr, beta)))
    w, grad = rng.normal(size=4), rng.normal(size=4)
    cases.append(Case("first step: v = 0 (momentum_step equals plain descent)", (w, grad, np.zeros(4), 0.1, 0.9)))
    w, grad, v = rng.normal(size=3), rng.normal(size=3), rng.normal(size=3)
    cases.append(Case("beta = 0 (no memory)", (w, grad, v, 0.2, 0.0)))
    cases.append(Case("zero gradient: the velocity keeps the weights moving", (w, np.zeros(3), v, 0.1, 0.9)))
    cases.append(Case("one weight, large gradient", (np.array([2.0]), np.array([1e3]), np.array([-5.0]), 1e-3, 0.8)))
    return cases


register(
    Exercise(
        id="momentum_step",
        names=("w_new", "v_new"),
        lesson="10",
        points=2,
        description="one step of gradient descent with momentum: v = beta v + grad, w = w - lr v",
        cases=_momentum_cases,
        reference=_momentum_step,
        mistakes=[
            Mistake(
                lambda w, grad, v, lr, beta: (w - lr * v, beta * v + grad),
                "update w with the NEW velocity v_new (computed first), not the old v",
            ),
            Mistake(
                lambda w, grad, v, lr, beta: (w - lr * (beta * v + (1 - beta) * grad), beta * v + (1 - beta) * grad),
                "this course's momentum has no (1 - beta) factor: v_new = beta * v + grad "
                "(the averaging form needs a larger lr to match)",
            ),
            Mistake(
                lambda w, grad, v, lr, beta: (w + beta * v - lr * grad, beta * v - lr * grad),
                "keep lr out of the velocity: v_new = beta * v + grad, then w_new = w - lr * v_new",
            ),
            Mistake(
                lambda w, grad, v, lr, beta: (w + lr * (beta * v + grad), beta * v + grad),
                "sign error: step against the velocity, w_new = w - lr * v_new",
            ),
            Mistake(
                lambda w, grad, v, lr, beta: (w - lr * (v + grad), v + grad),
                "beta is missing: the old velocity decays, v_new = beta * v + grad",
            ),
            Mistake(
                lambda w, grad, v, lr, beta: (beta * v + grad, w - lr * (beta * v + grad)),
                "the two results are swapped: return (w_new, v_new)",
            ),
            Mistake(
                lambda w, grad, v, lr, beta: (w - lr * (v + beta * grad), v + beta * grad),
                "beta multiplies the OLD velocity, not the gradient: v_new = beta * v + grad",
            ),
            Mistake(
                lambda w, grad, v, lr, beta: (w - lr * (beta * v + lr * grad), beta * v + lr * grad),
                "the learning rate is applied twice: keep lr out of the velocity, v_new = beta * v + grad; only "
                "the step multiplies by it, w_new = w - lr * v_new",
            ),
            Mistake(
                lambda w, grad, v, lr, beta: (w - lr * grad, grad.copy()),
                "the momentum is missing (that is a plain gradient step): the velocity keeps beta times the old "
                "one, v_new = beta * v + grad, and w moves by it, w_new = w - lr * v_new",
            ),
            Mistake(
                lambda w, grad, v, lr, beta: (w - lr * (v + grad), beta * v + grad),
                "v_new is right but the step is not: move w by the new velocity, w_new = w - lr * v_new, "
                "not by v + grad",
            ),
        ],
    )
)


# -- nesterov_step ------------------------------------------------------------------------------


def _nesterov_step(w, grad_fn, v, lr, beta):
    lookahead = w - lr * beta * v  # where the velocity alone would carry w
    v_new = beta * v + grad_fn(lookahead)
    w_new = w - lr * v_new
    return w_new, v_new


def _nesterov_cases() -> list[Case]:
    rng = case_rng(1002)
    cases = []
    for shape, fn, lr, beta in (
        ((2,), grad_ravine, 0.03, 0.9),
        ((4,), grad_bowl, 0.1, 0.8),
        ((3, 2), grad_quartic, 0.2, 0.9),
    ):
        w, v = rng.normal(size=shape), rng.normal(size=shape)
        cases.append(Case(f"shape {shape}, {fn.__name__}, lr={lr}, beta={beta}", (w, fn, v, lr, beta)))
    w = rng.normal(size=3)
    cases.append(Case("first step: v = 0 (no look-ahead yet)", (w, grad_bowl, np.zeros(3), 0.1, 0.9)))
    w, v = rng.normal(size=5), rng.normal(size=5)
    cases.append(Case("beta = 0 (plain descent)", (w, grad_quartic, v, 0.1, 0.0)))
    cases.append(Case("one weight, large velocity", (np.array([1.5]), grad_quartic, np.array([40.0]), 0.01, 0.95)))
    return cases


register(
    Exercise(
        id="nesterov_step",
        names=("w_new", "v_new"),
        lesson="10",
        points=2,
        description="one Nesterov step: the gradient is taken at the look-ahead point w - lr beta v",
        cases=_nesterov_cases,
        reference=_nesterov_step,
        mistakes=[
            Mistake(
                lambda w, grad_fn, v, lr, beta: _momentum_step(w, grad_fn(w), v, lr, beta),
                "that is plain momentum: evaluate grad_fn at the look-ahead point w - lr * beta * v, not at w",
            ),
            Mistake(
                lambda w, grad_fn, v, lr, beta: _momentum_step(w, grad_fn(w + lr * beta * v), v, lr, beta),
                "sign error in the look-ahead: momentum moves w to w - lr * beta * v (a minus), look there",
            ),
            Mistake(
                lambda w, grad_fn, v, lr, beta: _momentum_step(w, grad_fn(w - beta * v), v, lr, beta),
                "the look-ahead step is lr * beta * v: v is in gradient units, so multiply by lr",
            ),
            Mistake(
                lambda w, grad_fn, v, lr, beta: (w - lr * v, beta * v + grad_fn(w - lr * beta * v)),
                "update w with the NEW velocity v_new (computed first), not the old v",
            ),
            Mistake(
                lambda w, grad_fn, v, lr, beta: (
                    w - lr * beta * v - lr * grad_fn(w - lr * beta * v),
                    grad_fn(w - lr * beta * v),
                ),
                "v_new must keep the old velocity: v_new = beta * v + grad_fn(lookahead), not the gradient alone",
            ),
            Mistake(
                lambda w, grad_fn, v, lr, beta: _momentum_step(w, grad_fn(w - lr * v), v, lr, beta),
                "beta is missing from the look-ahead: momentum alone would carry w to w - lr * beta * v, "
                "take the gradient there",
            ),
            Mistake(
                lambda w, grad_fn, v, lr, beta: (
                    w - lr * beta * v - lr * (beta * v + grad_fn(w - lr * beta * v)),
                    beta * v + grad_fn(w - lr * beta * v),
                ),
                "step from w, not from the look-ahead point: w_new = w - lr * v_new (the look-ahead is only "
                "where the gradient is taken)",
            ),
            Mistake(
                lambda w, grad_fn, v, lr, beta: _momentum_step(w, grad_fn(v), v, lr, beta),
                "grad_fn takes WEIGHTS: call it at the look-ahead point w - lr * beta * v, not on the velocity v",
            ),
            Mistake(
                lambda w, grad_fn, v, lr, beta: _momentum_step(w, grad_fn(w - lr * grad_fn(w)), v, lr, beta),
                "the look-ahead moves w by the velocity, w - lr * beta * v, not by a gradient step "
                "w - lr * grad_fn(w): one call of grad_fn, at that point",
            ),
        ],
    )
)
