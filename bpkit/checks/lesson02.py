"""Checks for lesson 02, activations: sigmoid, sigmoid_prime, tanh_prime, relu, relu_prime.

sigmoid must be numerically stable. The naive 1 / (1 + exp(-z)) even returns the right numbers at
z = -1000 (exp(1000) = inf and 1 / inf = 0), so stability cannot be judged by the output alone:
the harness runs the learner's sigmoid with floating-point overflow turned into an error (strict_fp),
reports it like any other exception, and the check explains it as an unstable exponent.
"""

from __future__ import annotations

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, StableExercise, case_rng, register

UNSTABLE_HINT = (
    "unstable exponent: np.exp(-z) overflows for large negative z (exp(1000) is inf). Compute "
    "e = np.exp(-np.abs(z)), which lies in (0, 1], and use 1 / (1 + e) where z >= 0 and e / (1 + e) where z < 0 "
    "(np.where evaluates both branches, so keep every branch overflow-free)"
)
EXACT_LIMIT_HINT = (
    "sigmoid(-1000) must be exactly 0.0 and sigmoid(1000) exactly 1.0 (float64 rounds them so): "
    "did you clip z or add a small epsilon? With e = np.exp(-np.abs(z)) no clipping is needed"
)
TAIL_HINT = (
    "far in the negative tail sigmoid(z) equals e^z (sigmoid(-720) is about 2.03e-313), but your answer came back 0 "
    "there: np.exp(-z) overflowed to inf (with the overflow warning switched off, e.g. by np.errstate) and "
    "1 / (1 + inf) lost the value. Compute e = np.exp(-np.abs(z)) and use e / (1 + e) where z < 0"
)
PRECISION_HINT = (
    "far in the negative tail sigmoid(z) equals e^z (sigmoid(-720) is about 2.03e-313): your formula loses it "
    "(0.5 * (1 + tanh(z / 2)) rounds to 0 below z = -37). Compute e = np.exp(-np.abs(z)) and use e / (1 + e) "
    "where z < 0, which keeps e^z to the last digit"
)
TAIL_Z = np.array(
    [-725.0, -720.0, -715.0, -712.0, -710.0, -709.0, -700.0, -50.0]
)  # subnormal below -708: 1 ulp stays under 1e-8 relative here


def _quiet(fn):
    """A mistake computed as a learner who switched the overflow warning off would compute it."""

    def wrapped(*args):
        with np.errstate(all="ignore"):
            return fn(*args)

    wrapped.__name__ = getattr(fn, "__name__", "mistake")
    return wrapped


ARRAY_HINT = (
    "the check passes whole arrays: `if z >= 0`, Python's max(z, 0) and math.exp need a single number. Work "
    "elementwise with NumPy: np.where(z >= 0, a, b), np.maximum(z, 0), np.exp"
)


def _array_hint(error: dict) -> str | None:
    """The hint for a scalar-only construct (if on an array, math.exp, max) that met an array, or None."""
    message = error["message"]
    if "truth value of an array" in message or "only length-1 arrays" in message or "only 0-dimensional" in message:
        return ARRAY_HINT
    if error["type"] == "TypeError" and ("must be real number" in message or "cannot be converted" in message):
        return ARRAY_HINT
    return None


def _sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))  # in (0, 1]: cannot overflow
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_cases() -> list[Case]:
    rng = case_rng(201)
    return [
        Case("z = 7 random values", (rng.normal(size=7) * 3,)),
        Case("z of shape (3, 4)", (rng.normal(size=(3, 4)) * 3,)),
        Case("z = zeros (sigmoid(0) = 0.5)", (np.zeros(5),)),
        Case("z from -30 to 30", (np.linspace(-30, 30, 13),)),
        Case("z at the limits, -1000 to 1000", (np.array([-1000.0, -100.0, -20.0, 0.0, 20.0, 100.0, 1000.0]),)),
        # Judged on the values, so an answer that switches the overflow error off cannot pass: here
        # 1 / (1 + exp(-z)) gives 0 instead of e^z, which float64 still holds (as a subnormal number).
        Case("z far in the negative tail, -725 to -50 (sigmoid(z) = e^z, kept to 6 digits)", (TAIL_Z.copy(),)),
    ]


def _compare_sigmoid(exercise: Exercise, case: Case, received) -> None:
    expected = _sigmoid(*case.args)
    exercise.expect(case, received, expected)
    limits = np.abs(case.args[0]) >= 1000
    if limits.any() and not np.array_equal(np.asarray(received, dtype=float)[limits], expected[limits]):
        exercise.fail(
            case,
            "not exactly 0 and 1 at z = -1000 and 1000",
            expected=expected,
            received=received,
            hint=EXACT_LIMIT_HINT,
        )
    expect_negative_tail(exercise, case, case.args[0], received, expected, TAIL_HINT, PRECISION_HINT)


def expect_negative_tail(
    exercise: Exercise, case: Case, z, received, expected, overflow_hint: str, precision_hint: str
) -> None:
    """Where -1000 < z < -40, the answer to 6 relative digits (the sigmoid and its slope are about e^z there).

    The hint tells an overflowed exp(-z) (right down to z = -709, lost beyond) from a formula that loses the
    tail's digits; lesson 06's sigmoid_backward checks its tail with this too.
    """
    tail = (z < -40) & (z > -1000)
    if tail.any():
        got = np.asarray(received, dtype=float)[tail]
        if not np.allclose(got, expected[tail], rtol=1e-6, atol=0.0):
            # The naive formula is exact down to z = -709 and loses only what exp(-z) = inf destroys.
            kept = z[tail] >= -709
            overflowed = np.allclose(got[kept], expected[tail][kept], rtol=1e-6, atol=0.0)
            exercise.fail(
                case,
                "wrong values in the tail (relative error above 1e-6)",
                expected=expected,
                received=received,
                hint=overflow_hint if overflowed else precision_hint,
            )


register(
    StableExercise(
        error_hints=_array_hint,
        id="sigmoid",
        overflow_hint=UNSTABLE_HINT,
        lesson="02",
        points=2,
        description="the logistic sigmoid 1 / (1 + exp(-z)), elementwise and numerically stable",
        cases=_sigmoid_cases,
        reference=_sigmoid,
        compare_answer=_compare_sigmoid,
        rtol=1e-7,
        atol=1e-12,
        mistakes=[
            Mistake(lambda z: _sigmoid(-z), "sign error: sigmoid(z) = 1 / (1 + exp(-z)), so sigmoid(3) is close to 1"),
            Mistake(lambda z: np.tanh(z), "that is tanh (range -1 to 1); sigmoid has range 0 to 1: 1 / (1 + exp(-z))"),
            Mistake(
                lambda z: np.exp(np.minimum(z, 700)),
                "the 1 + in the denominator is missing: 1 / (1 + exp(-z)), not 1 / exp(-z)",
            ),
            Mistake(
                lambda z: _sigmoid(z) * (1 - _sigmoid(z)),
                "that is the derivative s (1 - s); sigmoid itself is s = 1 / (1 + exp(-z))",
            ),
            Mistake(_quiet(lambda z: 1.0 / (1.0 + np.exp(-z))), TAIL_HINT),
            Mistake(lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)), PRECISION_HINT),
        ],
    )
)


def _sigmoid_prime_unsquared(z):
    e = np.exp(-np.abs(z))
    return e / (1.0 + e)  # (1 + e)**2 meant


def _sigmoid_prime(z):
    s = _sigmoid(z)
    return s * (1 - s)


def _derivative_cases(seed: int) -> list[Case]:
    """Cases shared by sigmoid_prime and tanh_prime, drawn from their own seeds."""
    rng = case_rng(seed)
    return [
        Case("z = 6 random values", (rng.normal(size=6) * 2,)),
        Case("z of shape (2, 5)", (rng.normal(size=(2, 5)) * 2,)),
        Case("z = zeros", (np.zeros(3),)),
        Case("z from -10 to 10 (saturation)", (np.linspace(-10, 10, 9),)),
        # Far into saturation: the unsimplified derivations (exp(-z) / (1 + exp(-z))**2, the quotient rule)
        # compute inf / inf = NaN here, judged on the returned values whatever warnings the answer turns off.
        Case(
            "z from -800 to 800 (deep saturation: the slope is 0 or tiny, never NaN)",
            (np.array([-800.0, -720.0, -400.0, -360.0, -50.0, 0.0, 50.0, 360.0, 400.0, 720.0, 800.0]),),
        ),
    ]


def _sigmoid_prime_cases() -> list[Case]:
    return _derivative_cases(202)


def _tanh_prime_cases() -> list[Case]:
    return _derivative_cases(203)


register(
    Exercise(
        error_hints=_array_hint,
        id="sigmoid_prime",
        lesson="02",
        points=1,
        description="the slope of the sigmoid, sigmoid(z) (1 - sigmoid(z))",
        cases=_sigmoid_prime_cases,
        reference=_sigmoid_prime,
        mistakes=[
            Mistake(lambda z: z * (1 - z), "s (1 - s) needs s = sigmoid(z): you applied the formula to z itself"),
            Mistake(_sigmoid, "that is sigmoid itself; its slope is sigmoid(z) (1 - sigmoid(z))"),
            Mistake(lambda z: 1 - _sigmoid(z) ** 2, "1 - s^2 is the tanh pattern; for the sigmoid it is s (1 - s)"),
            Mistake(lambda z: _sigmoid(z) * (1 + _sigmoid(z)), "sign error: s (1 - s), with a minus"),
            Mistake(
                _quiet(lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
                "exp(-z) / (1 + exp(-z))**2 is right on paper but computes inf / inf = NaN for z below -709: "
                "write it with s = sigmoid(z) (your stable one) as s * (1 - s)",
            ),
            Mistake(
                _sigmoid_prime_unsquared,
                "the square in the denominator is missing: the slope is e / (1 + e)**2 (e = exp(-|z|)), which is "
                "s * (1 - s) with s = sigmoid(z)",
            ),
            Mistake(
                lambda z: np.full_like(np.asarray(z, dtype=float), 0.25),
                "0.25 is the slope at z = 0 only (its maximum); compute it at every z: s * (1 - s) with s = sigmoid(z)",
            ),
        ],
    )
)


def _tanh_prime(z):
    return 1 - np.tanh(z) ** 2


register(
    Exercise(
        error_hints=_array_hint,
        id="tanh_prime",
        lesson="02",
        points=1,
        description="the slope of tanh, 1 - tanh(z)^2",
        cases=_tanh_prime_cases,
        reference=_tanh_prime,
        mistakes=[
            Mistake(lambda z: 1 - z**2, "1 - t^2 needs t = tanh(z): you applied the formula to z itself"),
            Mistake(lambda z: 1 - np.tanh(z), "the square is missing: 1 - tanh(z)**2"),
            Mistake(lambda z: 1 + np.tanh(z) ** 2, "sign error: 1 - tanh(z)**2 (the slope is at most 1, at z = 0)"),
            Mistake(
                lambda z: np.tanh(z) * (1 - np.tanh(z)), "t (1 - t) is the sigmoid pattern; for tanh it is 1 - t^2"
            ),
            Mistake(
                _quiet(
                    lambda z: (
                        ((np.exp(z) + np.exp(-z)) ** 2 - (np.exp(z) - np.exp(-z)) ** 2) / (np.exp(z) + np.exp(-z)) ** 2
                    )
                ),
                "the quotient-rule form is right on paper but its squares overflow for |z| above 355 and give "
                "inf - inf = NaN: simplify it to 1 - np.tanh(z)**2 (np.tanh is stable)",
            ),
            Mistake(lambda z: 1 - np.tanh(z**2), "square tanh(z), not z: 1 - np.tanh(z)**2, not 1 - np.tanh(z**2)"),
            Mistake(
                lambda z: 1 - np.tanh(z) * 2,
                "** is the power and * multiplies: 1 - np.tanh(z)**2, not 1 - np.tanh(z)*2",
            ),
        ],
    )
)


def _relu(z):
    return np.maximum(z, 0.0)


def _relu_cases() -> list[Case]:
    rng = case_rng(204)
    return [
        Case("z = 8 random values", (rng.normal(size=8),)),
        Case("z of shape (3, 4)", (rng.normal(size=(3, 4)),)),
        Case("z with exact zeros (the kink)", (np.array([-2.0, -0.0, 0.0, 1e-12, 3.0]),)),
        Case("large magnitudes", (np.array([-1e3, -1.0, 1.0, 1e3]),)),
    ]


register(
    Exercise(
        error_hints=_array_hint,
        id="relu",
        lesson="02",
        points=1,
        description="the rectified linear unit max(z, 0), elementwise",
        cases=_relu_cases,
        reference=_relu,
        mistakes=[
            Mistake(
                lambda z: np.max(z, 0),
                "np.max(z, 0) takes the largest entry along axis 0; the elementwise maximum is np.maximum(z, 0)",
            ),
            Mistake(np.abs, "negative inputs become 0, not |z|: np.maximum(z, 0)"),
            Mistake(lambda z: np.where(z > 0, z, 0.01 * z), "that is leaky ReLU; ReLU gives exactly 0 for negative z"),
            Mistake(lambda z: (z > 0).astype(float), "that is the slope (0 or 1); ReLU keeps the value: z where z > 0"),
            Mistake(lambda z: np.minimum(z, 0.0), "min and max are swapped: ReLU keeps the positive part, max(z, 0)"),
        ],
    )
)


def _relu_prime(z):
    return (z > 0).astype(float)


def _relu_prime_by_division(z):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.maximum(z / np.abs(z), 0.0)  # the sign of z, clipped at 0: NaN at z = 0


def _relu_prime_cases() -> list[Case]:
    rng = case_rng(205)
    return [
        Case("z = 8 random values", (rng.normal(size=8),)),
        Case("z of shape (2, 3)", (rng.normal(size=(2, 3)),)),
        Case("z exactly 0 (the kink)", (np.array([-1.0, 0.0, 1.0]),)),
        Case("z = zeros of shape (2, 2)", (np.zeros((2, 2)),)),
    ]


register(
    Exercise(
        error_hints=_array_hint,
        id="relu_prime",
        lesson="02",
        points=1,
        description="the slope of ReLU: 1 where z > 0, else 0 (0 at z = 0)",
        cases=_relu_prime_cases,
        reference=_relu_prime,
        mistakes=[
            Mistake(
                lambda z: (z >= 0).astype(float),
                "at z = 0 exactly the slope is 0 by our convention: use z > 0, not z >= 0",
            ),
            Mistake(np.sign, "negative z gives slope 0, not -1: (z > 0) as 0/1"),
            Mistake(lambda z: np.maximum(z, 0.0), "that is ReLU itself; its slope is 1 where z > 0 and 0 elsewhere"),
            Mistake(
                lambda z: np.heaviside(z, 0.5), "at z = 0 the slope is 0, not 0.5: np.heaviside(z, 0.0) or (z > 0)"
            ),
            Mistake(
                lambda z: (z < 0).astype(float),
                "the mask is inverted: the slope is 1 where z > 0 and 0 where z < 0, (z > 0).astype(float)",
            ),
            Mistake(
                _relu_prime_by_division,
                "z / |z| is 0/0 = NaN at z = 0: build the slope as a mask instead, (z > 0).astype(float)",
            ),
        ],
    )
)
