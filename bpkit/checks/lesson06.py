"""Checks for lesson 06, backprop with matrices: linear_backward, relu_backward, sigmoid_backward,
numerical_gradient, relative_error.

Upstream gradients `dout` are random, never all ones: an all-ones dout hides a missing `* dout` and
several transposes (the warning from makemore part 4).
"""

from __future__ import annotations

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, StableExercise, case_rng, compare, register
from bpkit.checks.inputs import cube_sum, quadratic_form, softplus_sum, tanh_layer_loss
from bpkit.checks.lesson02 import expect_negative_tail

# -- references ---------------------------------------------------------------------------------


def _linear_backward(dout, x, W):
    dx = dout @ W.T  # (N, D_in)    dL/dx = dout W^T
    dW = x.T @ dout  # (D_in, D_out) dL/dW = x^T dout
    db = dout.sum(axis=0)  # (D_out,) b is added to every row, so its gradient sums over the batch
    return dx, dW, db


def _relu_backward(dout, z):
    return dout * (z > 0)


def _sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))  # in (0, 1]: cannot overflow
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_backward(dout, z):
    e = np.exp(-np.abs(np.asarray(z, dtype=float)))  # s (1 - s) = e / (1 + e)**2 for either sign of z
    return dout * e / (1.0 + e) ** 2


def _numerical_gradient(f, x, eps=1e-6):
    x = np.array(x, dtype=float)  # our own copy: the caller's x stays unchanged
    return _central_differences(f, x, eps, np.ndindex(x.shape))


def _central_differences(f, x, eps, indexes):
    """(f(x + eps) - f(x - eps)) / (2 eps) at each of `indexes`, moving x in place and putting it back exactly.

    Called on the caller's own x, this is also the in-place answer the contract allows (x ends unchanged).
    """
    grad = np.zeros_like(x, dtype=float)
    for index in indexes:
        old = np.copy(x[index])  # a copy: x[index] is a view where it is a whole row
        x[index] = old + eps
        f_plus = f(x)
        x[index] = old - eps
        f_minus = f(x)
        x[index] = old
        grad[index] = (f_plus - f_minus) / (2 * eps)
    return grad


def _relative_error(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))


# -- typical mistakes (module level so that tests can name them) ---------------------------------


def _one_sided_gradient(f, x, eps=1e-6):
    grad = np.zeros_like(x, dtype=float)
    x = np.array(x, dtype=float)
    f0 = f(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + eps
        grad[index] = (f(x) - f0) / eps
        x[index] = old
    return grad


def _gradient_over_eps(f, x, eps=1e-6):
    return 2.0 * _numerical_gradient(f, x, eps)  # (f(x+eps) - f(x-eps)) / eps


def _gradient_ignoring_eps(f, x, eps=1e-6):
    return _numerical_gradient(f, x, 1e-6)


def _gradient_over_rows(f, x, eps=1e-6):
    x = np.array(x, dtype=float)
    return _central_differences(f, x, eps, range(len(x)))  # on a matrix, x[i] is a whole row: all of it moves at once


def _gradient_sign_flipped(f, x, eps=1e-6):
    return -_numerical_gradient(f, x, eps)


def _gradient_in_place_not_restored(f, x, eps=1e-6):
    """Caught as a changed input before its output is compared (so not in the mistakes list)."""
    grad = np.zeros_like(x, dtype=float)
    for index in np.ndindex(x.shape):
        x[index] += eps
        f_plus = f(x)
        x[index] -= 2 * eps  # x is left at x - eps: the caller's array is changed
        grad[index] = (f_plus - f(x)) / (2 * eps)
    return grad


def _relative_error_no_floor(a, b):
    with np.errstate(invalid="ignore"):  # 0/0 where a = b = 0: the NaN is the point of this mistake
        return float(np.max(np.abs(a - b) / (np.abs(a) + np.abs(b))))


def _relu_backward_unset(dout, z):
    dz = np.full_like(dout, np.nan)  # only the active entries get a value
    dz[z > 0] = dout[z > 0]
    return dz


def _gradient_all_at_once(f, x, eps=1e-6):
    x = np.array(x, dtype=float)
    slope = (f(x + eps) - f(x - eps)) / (2 * eps)  # every entry moved together: a directional derivative
    return np.full(x.shape, slope)


FLOOR_HINT = "the floor is 1e-12: a larger floor hides real errors in tiny gradients"


def _relative_error_floor(floor: float):
    """relative_error with a floor larger than 1e-12."""
    return lambda a, b: float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))


# -- cases ----------------------------------------------------------------------------------------


def _linear_cases() -> list[Case]:
    rng = case_rng(601)
    cases = []
    for n, d_in, d_out in ((4, 3, 2), (5, 2, 6), (3, 7, 4)):
        cases.append(
            Case(
                f"N={n}, D_in={d_in}, D_out={d_out}",
                (rng.normal(size=(n, d_out)), rng.normal(size=(n, d_in)), rng.normal(size=(d_in, d_out))),
            )
        )
    cases.append(
        Case(
            "batch size 1, D_in=5, D_out=2", (rng.normal(size=(1, 2)), rng.normal(size=(1, 5)), rng.normal(size=(5, 2)))
        )
    )
    cases.append(
        Case("square W, N=3, D_in=D_out=3", (rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), rng.normal(size=(3, 3))))
    )
    return cases


def _relu_cases() -> list[Case]:
    rng = case_rng(602)
    cases = [Case(f"shape {s}", (rng.normal(size=s), rng.normal(size=s))) for s in ((4, 3), (2, 6))]
    z = np.array([[-1.0, 0.0, 2.0], [0.0, 3.0, -0.5]])
    cases.append(Case("the kink: z contains exact zeros", (rng.normal(size=(2, 3)), z)))
    cases.append(Case("batch size 1, shape (1, 5)", (rng.normal(size=(1, 5)), rng.normal(size=(1, 5)))))
    cases.append(
        Case("negative dout with positive z", (-np.abs(rng.normal(size=(3, 2))), np.abs(rng.normal(size=(3, 2))) + 0.1))
    )
    return cases


def _sigmoid_cases() -> list[Case]:
    rng = case_rng(603)
    cases = [Case(f"shape {s}", (rng.normal(size=s), rng.normal(size=s) * 2)) for s in ((4, 3), (2, 6))]
    cases.append(Case("batch size 1, shape (1, 4)", (rng.normal(size=(1, 4)), rng.normal(size=(1, 4)))))
    cases.append(Case("z = 0 (the steepest point, slope 1/4)", (rng.normal(size=(2, 2)), np.zeros((2, 2)))))
    cases.append(
        Case(
            "saturated z of magnitude 1e3", (rng.normal(size=(2, 3)), np.array([[1e3, -1e3, 30.0], [-30.0, 1e3, -1e3]]))
        )
    )
    # Judged on the values, like sigmoid's tail in lesson 02, so switching the overflow error off cannot
    # pass: 1 / (1 + exp(-z)) gives s = 0 here instead of e^z, which float64 still holds. |dout| >= 0.5
    # keeps the subnormal results at least 1e8 ulps large: 1e-6 relative is far above their round-off.
    sign = np.where(rng.random(SIGMOID_TAIL_Z.size) < 0.5, -1.0, 1.0)
    cases.append(
        Case(
            "z far in the negative tail, -725 to -50 (the slope is e^z, kept to 6 digits)",
            (sign * rng.uniform(0.5, 2.0, SIGMOID_TAIL_Z.size), SIGMOID_TAIL_Z.copy()),
        )
    )
    return cases


SIGMOID_TAIL_Z = np.array([-725.0, -720.0, -715.0, -712.0, -710.0, -709.0, -700.0, -50.0])


def _numerical_gradient_cases() -> list[Case]:
    rng = case_rng(604)
    return [
        Case("f(x) = sum(x**3), x of shape (4,)", (cube_sum, rng.normal(size=4))),
        Case("f(x) = sum(x**3), eps=1e-2", (cube_sum, rng.normal(size=5)), {"eps": 1e-2}),
        Case("softplus, eps=1e-3, x of shape (6,)", (softplus_sum, rng.normal(size=6) * 2), {"eps": 1e-3}),
        Case("a matrix x: W of shape (3, 2)", (tanh_layer_loss, rng.normal(size=(3, 2)))),
        Case("a matrix x with eps=1e-2", (tanh_layer_loss, rng.normal(size=(3, 2))), {"eps": 1e-2}),
        Case("cross terms, x of shape (3,)", (quadratic_form, rng.normal(size=3))),
        Case("one entry, x of shape (1,)", (cube_sum, np.array([1.5])), {"eps": 1e-2}),
    ]


def _opposite_first(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a and b with opposite signs at entry 0 whatever the draw (where |a + b| and |a| + |b| differ: five
    random pairs all of one sign, one draw in 16, let a |a + b| denominator pass)."""
    a, b = a.copy(), b.copy()
    a[0], b[0] = -abs(a[0]), abs(b[0])
    return a, b


def _relative_error_cases() -> list[Case]:
    rng = case_rng(605)
    a = rng.normal(size=(3, 4))
    cases = [
        Case("close arrays of shape (3, 4)", (a, a + 1e-7 * rng.normal(size=(3, 4)))),
        Case("different arrays of shape (5,)", _opposite_first(rng.normal(size=5), rng.normal(size=5))),
        Case("identical arrays", (a, a.copy())),
    ]
    b = rng.normal(size=6)
    b_zero = b.copy()
    b_zero[[1, 4]] = 0.0
    cases.append(Case("zeros in both arrays at the same places", (b_zero, b_zero * (1 + 1e-6))))
    cases.append(Case("all zeros in both arrays", (np.zeros(3), np.zeros(3))))
    cases.append(Case("a zero against a non-zero", (np.array([0.0, 1.0]), np.array([1e-3, 1.0]))))
    cases.append(Case("tiny gradients (1e-9) with a 1% error", (np.full(4, 1e-9), np.full(4, 1.01e-9))))
    cases.append(Case("one entry far off among many close ones", (np.ones(6), np.array([1, 1, 1, 1, 1, 1.5]))))
    return cases


# -- comparisons ----------------------------------------------------------------------------------


def _compare_relative_error(exercise: Exercise, case: Case, received) -> None:
    """Like the default comparison, but a NaN that a mistake also produces counts as a match (0/0 has no floor)."""
    expected = exercise.reference(*case.args)
    problem = compare(expected, received, exercise.rtol, exercise.atol)
    if problem is None:
        return
    hint = None
    if isinstance(received, (float, np.floating)) and np.isnan(received):
        for mistake in exercise.mistakes:
            with np.errstate(all="ignore"):
                wrong = mistake.fn(*case.args)
            if np.ndim(wrong) == 0 and np.isnan(wrong):
                hint = mistake.hint
                break
    exercise.expect(case, received, expected, hint=hint)


MUTATION_HINT = (
    "numerical_gradient must leave x exactly as it found it: work on a copy (x = np.array(x, dtype=float)) "
    "or save each entry and put it back (old = x[k]; ...; x[k] = old). Adding eps and subtracting it again "
    "does not always give back the same float"
)


class _LeavesInputExercise(Exercise):
    """An exercise whose contract says x is unchanged: a mutation gets a hint about perturbing x."""

    def _verdict(self, index: int, observation: dict, cases: list[Case]) -> None:
        if "error" not in observation and self.changed_args(index, observation, cases):
            case = cases[index]
            self.fail(case, "changed its input x in place (x differs after the call)", hint=MUTATION_HINT)
        super()._verdict(index, observation, cases)


# -- exercises ------------------------------------------------------------------------------------

register(
    Exercise(
        id="linear_backward",
        names=("dx", "dW", "db"),
        lesson="06",
        points=2,
        description="gradients of y = x @ W + b: (dx, dW, db)",
        cases=_linear_cases,
        reference=_linear_backward,
        mistakes=[
            Mistake(
                lambda dout, x, W: (dout @ W.T, dout.T @ x, dout.sum(axis=0)),
                "dW is transposed: dW = x.T @ dout has the shape of W (D_in, D_out); dout.T @ x is its transpose",
            ),
            Mistake(
                lambda dout, x, W: (dout @ W.T, x.T @ dout, dout.mean(axis=0)),
                "db sums dout over the batch (axis 0), it does not average it: the 1/N is already inside dout",
            ),
            Mistake(
                lambda dout, x, W: (dout @ W.T, x.T @ dout / len(x), dout.sum(axis=0)),
                "do not divide dW by N again: dout already carries the 1/N of the mean loss",
            ),
            Mistake(
                lambda dout, x, W: (dout @ W.T, x.T @ dout, dout),
                "db must have the shape of b (D_out,): sum dout over the batch axis, dout.sum(axis=0)",
            ),
            Mistake(
                lambda dout, x, W: (dout @ W.T, x.T @ dout, dout.sum(axis=1)),
                "sum db over axis 0 (the batch), not axis 1: db has one entry per output unit",
            ),
            Mistake(
                lambda dout, x, W: (-(dout @ W.T), -(x.T @ dout), -dout.sum(axis=0)),
                "sign error: backprop multiplies by the local derivative, no minus sign (the minus belongs to the "
                "gradient descent step)",
            ),
            Mistake(
                lambda dout, x, W: (np.ones_like(dout) @ W.T, x.T @ np.ones_like(dout), np.ones(W.shape[1]) * len(x)),
                "missing dout: multiply the local derivative by the gradient arriving from above, dx = dout @ W.T",
            ),
            Mistake(
                lambda dout, x, W: (x.T @ dout, dout @ W.T, dout.sum(axis=0)),
                "the gradients are in the wrong order: return dx, dW, db (the order of the inputs x, W, b)",
            ),
            Mistake(
                lambda dout, x, W: (dout @ W.T, x.T @ dout, float(np.sum(dout))),
                "db has one entry per output unit, the shape of b (D_out,): sum over the batch axis only, "
                "dout.sum(axis=0), not over everything",
            ),
            Mistake(
                lambda dout, x, W: (dout @ W.T, np.outer(x[0], dout[0]), dout.sum(axis=0)),
                "dW adds up the contributions of every sample in the batch, x.T @ dout: not the first sample's alone",
            ),
        ],
    )
)

RELU_MUTATION_HINT = (
    "relu_backward must not change dout in place (as `dout[z <= 0] = 0` does): the caller may still need that "
    "gradient, e.g. when a value feeds two layers; build a new array, dout * (z > 0) or np.where(z > 0, dout, 0.0)"
)
SIGMOID_OVERFLOW_HINT = (
    "np.exp(-z) overflows for z = -1000 (exp(1000) = inf); the result may still look right, but the lesson asks "
    "for a stable formula: use your stable sigmoid of lesson 02, e = np.exp(-np.abs(z)) with "
    "np.where for the two signs"
)


register(
    Exercise(
        id="relu_backward",
        mutation_hint=RELU_MUTATION_HINT,
        lesson="06",
        points=1,
        description="gradient through ReLU: dout where z > 0, else 0",
        cases=_relu_cases,
        reference=_relu_backward,
        mistakes=[
            Mistake(
                lambda dout, z: (z > 0).astype(float),
                "missing dout: (z > 0) is only the local derivative; return dout * (z > 0)",
            ),
            Mistake(
                lambda dout, z: dout * (z >= 0),
                "at the kink z == 0 the gradient is 0 by convention: use z > 0, not z >= 0",
            ),
            Mistake(
                lambda dout, z: np.maximum(dout, 0), "mask with the forward input z (z > 0), not with the sign of dout"
            ),
            Mistake(lambda dout, z: dout * np.maximum(z, 0), "multiply dout by the 0/1 mask (z > 0), not by relu(z)"),
            Mistake(lambda dout, z: -dout * (z > 0), "sign error: relu passes dout through unchanged where z > 0"),
            Mistake(
                lambda dout, z: dout * (z < 0),
                "the mask is inverted: dout passes where z > 0 (the unit was active) and is blocked where z <= 0",
            ),
            Mistake(
                _relu_backward_unset,
                "the entries where z <= 0 were never set (they hold NaN or leftovers): start from "
                "np.zeros_like(dout) before copying dout into the active entries, or return dout * (z > 0)",
            ),
        ],
    )
)
SIGMOID_TAIL_HINT = (
    "far in the negative tail the slope s (1 - s) equals e^z (about 2.03e-313 at z = -720), but your answer came back "
    "0 there: np.exp(-z) overflowed to inf (with the overflow warning switched off, e.g. by np.errstate) and "
    "1 / (1 + inf) lost it. Use your stable sigmoid of lesson 02, or e = np.exp(-np.abs(z)) and s (1 - s) = e / (1 "
    "+ e)**2"
)
SIGMOID_PRECISION_HINT = (
    "far in the negative tail the slope s (1 - s) equals e^z (about 2.03e-313 at z = -720): your formula loses it "
    "(0.5 * (1 + tanh(z / 2)) rounds to 0 below z = -37). Use your stable sigmoid of lesson 02, or "
    "e = np.exp(-np.abs(z)) and s (1 - s) = e / (1 + e)**2, which keep e^z to the last digit"
)


def _compare_sigmoid_backward(exercise: Exercise, case: Case, received) -> None:
    """The default comparison, then the negative tail to 6 relative digits (where the slope is e^z)."""
    dout, z = case.args
    expected = _sigmoid_backward(dout, z)
    exercise.expect(case, received, expected)
    expect_negative_tail(exercise, case, z, received, expected, SIGMOID_TAIL_HINT, SIGMOID_PRECISION_HINT)


def _quiet_naive_sigmoid_backward(dout, z):
    """1 / (1 + exp(-z)) with the overflow warning switched off, as a learner's own np.errstate would."""
    with np.errstate(all="ignore"):
        s = 1.0 / (1.0 + np.exp(-z))
        return dout * s * (1.0 - s)


def _tanh_form_sigmoid_backward(dout, z):
    s = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free, but 0 below z = -37
    return dout * s * (1.0 - s)


register(
    StableExercise(  # checked with overflow as an error, like the stable sigmoid of lesson 02
        id="sigmoid_backward",
        overflow_hint=SIGMOID_OVERFLOW_HINT,
        lesson="06",
        points=1,
        description="gradient through the sigmoid: dout * s (1 - s), s = sigmoid(z)",
        cases=_sigmoid_cases,
        reference=_sigmoid_backward,
        compare_answer=_compare_sigmoid_backward,
        mistakes=[
            Mistake(_quiet_naive_sigmoid_backward, SIGMOID_TAIL_HINT),
            Mistake(_tanh_form_sigmoid_backward, SIGMOID_PRECISION_HINT),
            Mistake(
                lambda dout, z: _sigmoid(z) * (1 - _sigmoid(z)),
                "missing dout: s (1 - s) is only the local derivative; multiply it by dout",
            ),
            Mistake(
                lambda dout, z: dout * z * (1 - z),
                "z is the pre-activation: compute s = sigmoid(z) first, then dout * s * (1 - s)",
            ),
            Mistake(
                lambda dout, z: dout * _sigmoid(z) * (_sigmoid(z) - 1),
                "sign error: the slope of the sigmoid is s (1 - s), always positive",
            ),
            Mistake(lambda dout, z: dout * _sigmoid(z), "the derivative of the sigmoid is s (1 - s), not s"),
            Mistake(
                lambda dout, z: dout * (1 - _sigmoid(z) ** 2),
                "1 - s**2 is the tanh rule; for the sigmoid it is s (1 - s)",
            ),
        ],
    )
)

register(
    _LeavesInputExercise(
        id="numerical_gradient",
        lesson="06",
        points=2,
        description="central-difference gradient of f at x, every entry, x unchanged",
        cases=_numerical_gradient_cases,
        reference=_numerical_gradient,
        rtol=1e-6,
        atol=1e-7,  # round-off of (f+ - f-) / 2 eps with eps = 1e-6 is about 1e-9 here
        mistakes=[
            Mistake(
                _one_sided_gradient,
                "use the central difference (f(x + eps) - f(x - eps)) / (2 eps): the one-sided version is "
                "less accurate by a factor of about 1/eps",
            ),
            Mistake(_gradient_over_eps, "divide by 2 * eps: x + eps and x - eps are 2 eps apart"),
            Mistake(
                _gradient_ignoring_eps,
                "use the eps argument: the check passes eps=1e-2 and expects the difference with that step",
            ),
            Mistake(
                _gradient_over_rows,
                "x can be a matrix: perturb one ENTRY at a time (for index in np.ndindex(x.shape)), not a whole row",
            ),
            Mistake(
                _gradient_sign_flipped, "sign error: the slope is (f(x + eps) - f(x - eps)) / (2 eps), plus side first"
            ),
            Mistake(
                _gradient_all_at_once,
                "nudge one entry at a time: x + eps moves every entry at once, which measures the sum of all the "
                "partial derivatives, not each one; loop over the entries (for index in np.ndindex(x.shape))",
            ),
        ],
    )
)

register(
    Exercise(
        id="relative_error",
        lesson="06",
        points=1,
        description="max of |a - b| / max(|a| + |b|, 1e-12), elementwise",
        cases=_relative_error_cases,
        reference=_relative_error,
        compare_answer=_compare_relative_error,
        rtol=1e-6,
        atol=1e-12,
        mistakes=[
            Mistake(
                _relative_error_no_floor,
                "where a and b are both 0 the denominator is 0 (0/0 = NaN): floor it, "
                "np.maximum(np.abs(a) + np.abs(b), 1e-12)",
            ),
            Mistake(
                lambda a, b: float(np.mean(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12))),
                "report the worst entry: np.max, not np.mean (one wrong gradient entry must not hide among many)",
            ),
            Mistake(
                lambda a, b: float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a) + np.abs(b))), 1e-12)),
                "divide elementwise, then take the max: np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), "
                "1e-12)), not max|a - b| / max(|a| + |b|)",
            ),
            Mistake(
                lambda a, b: float(np.max(np.abs(a - b))),
                "that is the absolute error: divide by |a| + |b| so tiny and huge gradients are judged alike",
            ),
            Mistake(
                lambda a, b: float(np.max((a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12))),
                "take the absolute value of the difference, |a - b|: an error is an error in either direction",
            ),
            Mistake(_relative_error_floor(1e-6), FLOOR_HINT),
            Mistake(_relative_error_floor(1e-8), FLOOR_HINT),
            Mistake(
                lambda a, b: float(np.max(np.abs(a - b) / np.maximum(np.abs(a + b), 1e-12))),
                "the denominator is |a| + |b|, each absolute value taken on its own: |a + b| is near 0 where a and b "
                "have opposite signs",
            ),
            Mistake(
                lambda a, b: float(np.max(np.abs(a - b) / (np.abs(a) + np.abs(b) + 1e-12))),
                "floor the denominator with np.maximum(np.abs(a) + np.abs(b), 1e-12), do not add 1e-12 to it: the "
                "sum shifts every tiny denominator",
            ),
            Mistake(
                lambda a, b: float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))),
                "divide by |a| + |b|, not by |b| alone: the error must not depend on which array comes first",
            ),
            Mistake(
                lambda a, b: float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12)),
                "the relative error is taken entry by entry and then the max, np.max(np.abs(a - b) / "
                "np.maximum(np.abs(a) + np.abs(b), 1e-12)): not a ratio of norms, where one bad entry hides among many",
            ),
            Mistake(
                lambda a, b: np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12),
                "return one number, the worst entry: np.max of the elementwise ratios, converted with float()",
            ),
        ],
    )
)
