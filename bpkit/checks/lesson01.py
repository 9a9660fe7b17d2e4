"""Checks for lesson 01, neurons: weighted_sum, neuron_forward, layer_forward."""

from __future__ import annotations

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, register
from bpkit.checks.inputs import identity, step


def _weighted_sum(x, w, b):
    return float(x @ w + b)


def _weighted_sum_cases() -> list[Case]:
    rng = case_rng(101)
    cases = [
        Case(f"random inputs, D={d}", (rng.normal(size=d), rng.normal(size=d), float(rng.normal()))) for d in (1, 3, 10)
    ]
    cases.append(Case("all zeros with a bias", (np.zeros(4), np.zeros(4), 0.5)))
    cases.append(Case("large magnitudes", (rng.normal(size=5) * 1e3, rng.normal(size=5) * 1e3, -2e3)))
    return cases


register(
    Exercise(
        id="weighted_sum",
        lesson="01",
        points=1,
        description="a neuron's weighted sum w.x + b",
        cases=_weighted_sum_cases,
        reference=_weighted_sum,
        mistakes=[
            Mistake(lambda x, w, b: float(x @ w), "the bias is missing: add b after the dot product"),
            Mistake(lambda x, w, b: float(x @ w - b), "sign error: the bias is added, z = w.x + b"),
            Mistake(
                lambda x, w, b: float(np.sum(x) * np.sum(w) + b),
                "multiply x and w element by element, then sum (a dot product), not sum(x) * sum(w)",
            ),
            Mistake(lambda x, w, b: float((x @ w) * b), "the bias is added to the dot product, not multiplied with it"),
        ],
    )
)


def _neuron_forward(x, w, b, activation):
    return activation(_weighted_sum(x, w, b))


def _neuron_cases() -> list[Case]:
    rng = case_rng(102)
    cases = [
        Case(f"D={d}, activation={act.__name__}", (rng.normal(size=d), rng.normal(size=d), float(rng.normal()), act))
        for d, act in ((2, np.tanh), (5, identity), (3, step))
    ]
    cases.append(Case("D=1, activation=tanh", (np.array([2.0]), np.array([-0.5]), 0.25, np.tanh)))
    cases.append(
        Case("x = zeros: only the bias counts, activation=tanh", (np.zeros(3), rng.normal(size=3), 0.7, np.tanh))
    )
    return cases


register(
    Exercise(
        id="neuron_forward",
        lesson="01",
        points=1,
        description="one neuron: activation(w.x + b)",
        cases=_neuron_cases,
        reference=_neuron_forward,
        mistakes=[
            Mistake(
                lambda x, w, b, activation: _weighted_sum(x, w, b), "the activation is missing: return activation(z)"
            ),
            Mistake(
                lambda x, w, b, activation: activation(float(x @ w)),
                "the bias is missing: the activation takes z = w.x + b (reuse your weighted_sum(x, w, b))",
            ),
            Mistake(
                lambda x, w, b, activation: activation(float(x @ w)) + b,
                "apply the activation to w.x + b, with the bias inside",
            ),
            Mistake(
                lambda x, w, b, activation: float(activation(x) @ w + b),
                "the activation goes after the weighted sum, not on the inputs",
            ),
        ],
    )
)


def _layer_forward(X, W, b, activation):
    Z = X @ W + b  # (N, D_out)
    return Z, activation(Z)


def _layer_cases() -> list[Case]:
    rng = case_rng(103)
    cases = []
    for n, d_in, d_out, act in ((4, 2, 3, np.tanh), (1, 5, 2, identity), (6, 3, 7, step)):
        cases.append(
            Case(
                f"N={n}, D_in={d_in}, D_out={d_out}, activation={act.__name__}",
                (rng.normal(size=(n, d_in)), rng.normal(size=(d_in, d_out)), rng.normal(size=d_out), act),
            )
        )
    return cases


register(
    Exercise(
        id="layer_forward",
        names=("Z", "A"),
        lesson="01",
        points=2,
        description="a whole layer on a batch: Z = X @ W + b, A = activation(Z)",
        cases=_layer_cases,
        reference=_layer_forward,
        mistakes=[
            Mistake(lambda X, W, b, activation: (X @ W, activation(X @ W)), "the bias b is missing from Z"),
            Mistake(lambda X, W, b, activation: (X @ W + b, X @ W + b), "A must be activation(Z), not Z itself"),
            Mistake(
                lambda X, W, b, activation: (activation(X @ W + b), X @ W + b), "Z and A are swapped: return (Z, A)"
            ),
        ],
    )
)
