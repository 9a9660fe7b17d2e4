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
    # The lesson calls it on grids of points (np.meshgrid) to draw the neuron's output: arrays must work.
    grid_x1, grid_x2 = np.meshgrid(np.linspace(-1.0, 1.0, 3), np.linspace(-2.0, 2.0, 4))
    cases.append(
        Case("x1 and x2 are (4, 3) arrays (a grid, as the lesson's plot uses)", (grid_x1, grid_x2, 0.5, -1.5, 0.25))
    )
    return cases


ARRAY_HINT = (
    "keep the result as it comes (no float(...)): the lesson calls this on arrays of points, "
    "and w1 * x1 + w2 * x2 + b works for numbers and arrays alike"
)


def _two_input_sum_error_hint(error: dict) -> str | None:
    """float(...) of an array fails: say that the lesson passes arrays."""
    if error["type"] == "TypeError" and ("convert" in error["message"] or "scalar" in error["message"]):
        return ARRAY_HINT
    return None


register(
    Exercise(
        id="two_input_sum",
        error_hints=_two_input_sum_error_hint,
        lesson="00",
        points=1,
        description="warm-up: the weighted sum w1*x1 + w2*x2 + b of a neuron with two inputs",
        cases=_two_input_sum_cases,
        reference=_two_input_sum,
        mistakes=[
            Mistake(lambda x1, x2, w1, w2, b: w1 * x1 + w2 * x2, "the bias is missing: add b at the end"),
            Mistake(lambda x1, x2, w1, w2, b: w1 * x1 + w2 * x2 - b, "sign error: the bias is added, not subtracted"),
            Mistake(
                lambda x1, x2, w1, w2, b: w1 * x2 + w2 * x1 + b, "the pairs are crossed: w1 belongs to x1 and w2 to x2"
            ),
            Mistake(
                lambda x1, x2, w1, w2, b: x1 + x2 + w1 + w2 + b,
                "multiply each input by its weight: w1*x1 + w2*x2 + b, not the sum of all five numbers",
            ),
            Mistake(lambda x1, x2, w1, w2, b: float(w1 * x1 + w2 * x2 + b), ARRAY_HINT),
            Mistake(
                lambda x1, x2, w1, w2, b: (w1 + w2) * (x1 + x2) + b,
                "multiply each input by its own weight, then add: w1*x1 + w2*x2, not (w1 + w2)*(x1 + x2)",
            ),
            Mistake(
                lambda x1, x2, w1, w2, b: (w1 * x1 + w2 * x2) * b,
                "the bias is added to the weighted inputs, not multiplied with them: w1*x1 + w2*x2 + b",
            ),
        ],
    )
)
