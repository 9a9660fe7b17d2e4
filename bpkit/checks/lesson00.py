"""Checks for lesson 00, start here: the warm-up exercise two_input_sum."""
from __future__ import annotations

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, register


def _two_input_sum(x1, x2, w1, w2, b):
    return w1 * x1 + w2 * x2 + b


def _two_input_sum_cases() -> list[Case]:
    rng = case_rng(1)
    cases = [Case("x1=1, x2=2, w1=3, w2=4, b=5 (worked by hand: 3 + 8 + 5 = 16)", (1.0, 2.0, 3.0, 4.0, 5.0))]
    for i in range(3):
        x1, x2, w1, w2, b = (float(v) for v in np.round(rng.normal(size=5) * 2, 3))
        cases.append(Case(f"random numbers #{i + 1}", (x1, x2, w1, w2, b)))
    cases.append(Case("all zeros except the bias", (0.0, 0.0, 0.0, 0.0, -1.5)))
    cases.append(Case("negative weights", (2.0, -3.0, -0.5, -1.0, 0.25)))
    return cases


register(
    Exercise(
        id="two_input_sum",
        lesson="00",
        points=1,
        description="warm-up: the weighted sum w1*x1 + w2*x2 + b of a neuron with two inputs",
        cases=_two_input_sum_cases,
        reference=_two_input_sum,
        mistakes=[
            Mistake(lambda x1, x2, w1, w2, b: w1 * x1 + w2 * x2, "the bias is missing: add b at the end"),
            Mistake(lambda x1, x2, w1, w2, b: w1 * x1 + w2 * x2 - b, "sign error: the bias is added, not subtracted"),
            Mistake(lambda x1, x2, w1, w2, b: w1 * x2 + w2 * x1 + b,
                    "the pairs are crossed: w1 belongs to x1 and w2 to x2"),
            Mistake(lambda x1, x2, w1, w2, b: (w1 + w2) * (x1 + x2) + b,
                    "multiply each input by its own weight, then add: w1*x1 + w2*x2, not (w1 + w2)*(x1 + x2)"),
        ],
    )
)
