"""Checks for lesson 09, vanishing and exploding gradients: xavier_init, he_init, clip_grad_norm.

An initialiser's output is random, so its check does not compare numbers one by one: on large
matrices it measures the shape, the mean and the empirical standard deviation and compares them
with the formula, within a tolerance far wider than the sampling noise (about 0.3% here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, register

STD_TOLERANCE = 0.025  # relative; the std of 1e5 draws is off by ~0.2% on average

# -- xavier_init, he_init -----------------------------------------------------------------------


@dataclass
class _InitCase(Case):
    """An init case that remembers its seed and shares the matrices seen with its siblings."""

    seed: int = 0
    seen: dict | None = None  # seed -> first matrices observed in this check run


def _init_cases() -> list[Case]:
    seen: dict = {}

    def case(label, d_in, d_out, seed, shared=None):
        return _InitCase(label, (d_in, d_out, case_rng(seed)), seed=seed, seen=shared)

    return [
        case("d_in=500, d_out=200", 500, 200, 901, seen),
        case("d_in=100, d_out=1000", 100, 1000, 902, seen),
        case("d_in=784, d_out=256 (an MNIST first layer)", 784, 256, 903),
        case("d_in=500, d_out=200 again with the same rng seed", 500, 200, 901, seen),
        case("d_in=500, d_out=200 with another rng seed", 500, 200, 904, seen),
        case("a small layer, d_in=3, d_out=2 (shape only)", 3, 2, 905),
    ]


HINT_SWAPPED = "the shape is swapped: W has shape (d_in, d_out) so that x @ W works for x of shape (N, d_in)"
HINT_FORGOT_SQRT = (
    "forgot the square root: the formula gives the VARIANCE, but rng.normal(loc, scale) wants the "
    "standard deviation, scale = sqrt(variance)"
)
HINT_LOC = (
    "the std came out as 1: rng.normal(loc, scale, size) takes the mean first, so pass "
    "rng.normal(0.0, std, size=(d_in, d_out)) (or multiply rng.standard_normal(...) by std)"
)
HINT_ZERO_STD = (
    "every entry is the same (std 0): the scale came out 0, e.g. from integer division (2 // d_in is 0 for "
    "d_in > 2): divide with /"
)
HINT_ABS = (
    "every entry is positive: the weights take both signs around 0; use the draws of rng.normal(0.0, std, ...) "
    "as they come, without np.abs"
)
HINT_NOT_CENTRED = "the weights are centred at 0: rng.normal(0.0, std, ...), not rng.random or rng.uniform(0, ...)"
HINT_UNIFORM = (
    "the values are uniformly distributed (none beyond ~1.7 std): draw from a normal distribution with rng.normal"
)
HINT_GLOBAL = (
    "the same rng seed gave two different matrices: draw from the `rng` argument, not np.random.* (the "
    "hidden global generator)"
)
HINT_FIXED = (
    "two different rngs gave the same matrix: use the `rng` argument, not a generator seeded inside the function"
)


def _xavier_init(d_in, d_out, rng):
    std = np.sqrt(2.0 / (d_in + d_out))  # Glorot: keeps the variance forwards AND backwards
    return rng.normal(0.0, std, size=(d_in, d_out))


def _he_init(d_in, d_out, rng):
    std = np.sqrt(2.0 / d_in)  # the 2 makes up for ReLU zeroing half of the units
    return rng.normal(0.0, std, size=(d_in, d_out))


# The stds a typical wrong initialiser produces, with the hint that explains each one.
XAVIER_WRONG_STDS: list[tuple[Callable, str]] = [
    (lambda d_in, d_out: 2.0 / (d_in + d_out), HINT_FORGOT_SQRT),
    (
        lambda d_in, d_out: np.sqrt(1.0 / d_in),
        "that is 1/d_in (LeCun init): Xavier uses the variance 2 / (d_in + d_out), both fans",
    ),
    (lambda d_in, d_out: np.sqrt(2.0 / d_in), "that is He init (2/d_in): Xavier uses the variance 2 / (d_in + d_out)"),
    (lambda d_in, d_out: np.sqrt(1.0 / (d_in + d_out)), "missing factor 2: the Xavier variance is 2 / (d_in + d_out)"),
    (
        lambda d_in, d_out: np.sqrt(2.0 / d_out),
        "the fan is wrong: Xavier averages both fans, variance 2 / (d_in + d_out)",
    ),
    (
        lambda d_in, d_out: np.sqrt(2.0 / d_in + d_out),
        "operator precedence: 2 / d_in + d_out adds d_out to 2 / d_in; put the sum in brackets, "
        "np.sqrt(2 / (d_in + d_out))",
    ),
    (lambda d_in, d_out: 1.0, HINT_LOC),
]
HE_WRONG_STDS: list[tuple[Callable, str]] = [
    (lambda d_in, d_out: 2.0 / d_in, HINT_FORGOT_SQRT),
    (
        lambda d_in, d_out: np.sqrt(1.0 / d_in),
        "that is 1/d_in: He init uses the variance 2 / d_in, the 2 making up for ReLU zeroing half the units",
    ),
    (lambda d_in, d_out: np.sqrt(2.0 / (d_in + d_out)), "that is the Xavier variance: He init uses 2 / d_in"),
    (
        lambda d_in, d_out: np.sqrt(2.0 / d_out),
        "use the fan-in d_in (the number of inputs each unit sums), not d_out: variance 2 / d_in",
    ),
    (
        lambda d_in, d_out: np.sqrt(2.0) / d_in,
        "the square root covers the whole fraction: np.sqrt(2 / d_in), not np.sqrt(2) / d_in",
    ),
    (lambda d_in, d_out: 1.0, HINT_LOC),
]


def _make_init_comparison(formula_std: Callable, formula_text: str, wrong_stds: list[tuple[Callable, str]]):
    def compare_init(exercise: Exercise, case: Case, received) -> None:
        d_in, d_out, _ = case.args
        if not isinstance(received, np.ndarray):
            exercise.fail(
                case,
                f"returned {type(received).__name__}, expected an array of shape ({d_in}, {d_out})",
                hint="return the matrix, e.g. `return rng.normal(0.0, std, size=(d_in, d_out))`",
            )
        if received.shape != (d_in, d_out):
            hint = HINT_SWAPPED if received.shape == (d_out, d_in) else f"pass size=(d_in, d_out) = ({d_in}, {d_out})"
            exercise.fail(case, f"returned shape {received.shape}, expected shape ({d_in}, {d_out})", hint=hint)
        if received.dtype.kind != "f" or not np.all(np.isfinite(received)):
            exercise.fail(case, "the matrix is not all finite floats", hint="draw floats with rng.normal(...)")
        _compare_with_siblings(exercise, case, received)
        if received.size < 10_000:
            return  # too few draws to judge a standard deviation
        expected_std = formula_std(d_in, d_out)
        mean, std = float(received.mean()), float(received.std())
        if std == 0.0:
            exercise.fail(case, f"every entry is {received.flat[0]:.4g}: the std is 0", hint=HINT_ZERO_STD)
        std_wrong = abs(std / expected_std - 1) > STD_TOLERANCE
        # A known wrong formula explains the most; then an off-centre mean; then any other std.
        known = next((h for wrong, h in wrong_stds if abs(std / wrong(d_in, d_out) - 1) <= STD_TOLERANCE), None)
        if std_wrong and known:
            exercise.fail(
                case, f"the entries have std {std:.4g}, expected {formula_text} = {expected_std:.4g}", hint=known
            )
        # The sample mean wanders by std / sqrt(n): measured with the answer's own std, so a wrong std
        # alone (noise around 0) is not taken for an off-centre mean.
        if abs(mean) > 6 * max(std, expected_std) / np.sqrt(received.size) + 1e-3 * expected_std:
            # |N(0, s)| has mean s * sqrt(2 / pi): np.abs of the right draws
            half_normal = np.min(received) >= 0 and abs(mean / (expected_std * np.sqrt(2 / np.pi)) - 1) <= 0.025
            exercise.fail(
                case,
                f"the mean of the entries is {mean:.4g}, expected about 0 (std {expected_std:.4g})",
                hint=HINT_ABS if half_normal else HINT_NOT_CENTRED,
            )
        if std_wrong:
            exercise.fail(
                case,
                f"the entries have std {std:.4g}, expected {formula_text} = {expected_std:.4g}",
                hint=f"draw with scale = {formula_text}, e.g. rng.normal(0.0, std, size=(d_in, d_out))",
            )
        if np.max(np.abs(received)) < 2.0 * expected_std:
            exercise.fail(
                case,
                f"no entry is further than {np.max(np.abs(received)) / expected_std:.2f} std from 0",
                hint=HINT_UNIFORM,
            )

    return compare_init


def _compare_with_siblings(exercise: Exercise, case: Case, received: np.ndarray) -> None:
    """Same seed -> the same matrix; another seed -> another matrix (the rng argument is used)."""
    seen = getattr(case, "seen", None)
    if seen is None:
        return
    shape = received.shape
    for other_seed, other in seen.items():
        if other.shape != shape:
            continue
        if other_seed == case.seed and not np.array_equal(other, received):
            exercise.fail(case, "two calls with the same rng seed returned different matrices", hint=HINT_GLOBAL)
        if other_seed != case.seed and np.array_equal(other, received):
            exercise.fail(case, f"rng seeds {other_seed} and {case.seed} returned the same matrix", hint=HINT_FIXED)
    seen.setdefault(case.seed, received)


def _wrong_init(std_fn: Callable) -> Callable:
    def init(d_in, d_out, rng):
        return rng.normal(0.0, std_fn(d_in, d_out), size=(d_in, d_out))

    return init


def _init_mistakes(correct: Callable, std: Callable, wrong_stds: list[tuple[Callable, str]]) -> list[Mistake]:
    def swapped(d_in, d_out, rng):
        return rng.normal(0.0, std(d_in, d_out), size=(d_out, d_in))

    def uniform(d_in, d_out, rng):
        limit = np.sqrt(3.0) * std(d_in, d_out)  # the right variance, the wrong shape
        return rng.uniform(-limit, limit, size=(d_in, d_out))

    def global_rng(d_in, d_out, rng):
        return np.random.normal(0.0, std(d_in, d_out), size=(d_in, d_out))

    def fixed_seed(d_in, d_out, rng):
        return correct(d_in, d_out, np.random.default_rng(0))

    def zero_scale(d_in, d_out, rng):
        return rng.normal(0.0, np.sqrt(2 // d_in), size=(d_in, d_out))  # // where / was meant

    def absolute(d_in, d_out, rng):
        return np.abs(correct(d_in, d_out, rng))

    mistakes = [Mistake(_wrong_init(std_fn), hint) for std_fn, hint in wrong_stds if hint != HINT_LOC]
    mistakes.append(Mistake(lambda d_in, d_out, rng: rng.normal(std(d_in, d_out), size=(d_in, d_out)), HINT_LOC))
    mistakes += [
        Mistake(swapped, HINT_SWAPPED),
        Mistake(uniform, HINT_UNIFORM),
        Mistake(global_rng, HINT_GLOBAL),
        Mistake(fixed_seed, HINT_FIXED),
        Mistake(zero_scale, HINT_ZERO_STD),
        Mistake(absolute, HINT_ABS),
    ]
    return mistakes


def _xavier_std(d_in, d_out):
    """sqrt(2 / (d_in + d_out))"""
    return float(np.sqrt(2.0 / (d_in + d_out)))


def _he_std(d_in, d_out):
    """sqrt(2 / d_in)"""
    return float(np.sqrt(2.0 / d_in))


def _init_exercise(
    id: str, description: str, reference: Callable, std: Callable, std_text: str, wrong_stds: list[tuple[Callable, str]]
) -> Exercise:
    """An initialiser exercise: xavier_init and he_init differ only in the formula of the std and its mistakes."""
    return Exercise(
        id=id,
        lesson="09",
        points=1,
        description=description,
        cases=_init_cases,
        reference=reference,
        compare_answer=_make_init_comparison(std, std_text, wrong_stds),
        mistakes=_init_mistakes(reference, std, wrong_stds),
    )


register(
    _init_exercise(
        "xavier_init",
        "a (d_in, d_out) weight matrix drawn from N(0, 2 / (d_in + d_out))",
        _xavier_init,
        _xavier_std,
        "sqrt(2 / (d_in + d_out))",
        XAVIER_WRONG_STDS,
    )
)
register(
    _init_exercise(
        "he_init",
        "a (d_in, d_out) weight matrix drawn from N(0, 2 / d_in)",
        _he_init,
        _he_std,
        "sqrt(2 / d_in)",
        HE_WRONG_STDS,
    )
)


# -- clip_grad_norm -----------------------------------------------------------------------------


def _clip_grad_norm(grads, max_norm):
    total_norm = float(np.sqrt(sum(np.sum(g**2) for g in grads)))  # one norm over every entry
    scale = max_norm / total_norm if total_norm > max_norm else 1.0  # one factor for all arrays
    return [g * scale for g in grads], total_norm


def _clip_cases() -> list[Case]:
    rng = case_rng(909)
    return [
        Case(
            "three arrays, joint norm about 15 > max_norm=1",
            ([3 * rng.normal(size=(4, 3)), 3 * rng.normal(size=3), 3 * rng.normal(size=(2, 2))], 1.0),
        ),
        Case(
            "joint norm about 2 < max_norm=5: unchanged",
            ([0.5 * rng.normal(size=(3, 2)), 0.5 * rng.normal(size=2)], 5.0),
        ),
        Case("one array, norm above max_norm=0.5", ([rng.normal(size=(5, 4))], 0.5)),
        Case(
            "exploding gradients (entries ~1e3), max_norm=10",
            ([1e3 * rng.normal(size=(6, 6)), 1e3 * rng.normal(size=6)], 10.0),
        ),
        Case("all-zero gradients", ([np.zeros((2, 3)), np.zeros(3)], 1.0)),
        Case(
            "one small and one large array, max_norm=2",
            ([0.01 * rng.normal(size=4), 10 * rng.normal(size=(3, 3))], 2.0),
        ),
    ]


def _clip_per_array(grads, max_norm):
    out = []
    for g in grads:
        norm = np.sqrt(np.sum(g**2))
        out.append(g * (max_norm / norm) if norm > max_norm else g.copy())
    return out, _clip_grad_norm(grads, max_norm)[1]


def _clip_always(grads, max_norm):
    total = _clip_grad_norm(grads, max_norm)[1]
    return [g * (max_norm / total) for g in grads], total


def _clip_norm_after(grads, max_norm):
    clipped, total = _clip_grad_norm(grads, max_norm)
    return clipped, float(np.sqrt(sum(np.sum(g**2) for g in clipped)))


def _clip_sum_of_norms(grads, max_norm):
    total = float(sum(np.sqrt(np.sum(g**2)) for g in grads))
    scale = max_norm / total if total > max_norm else 1.0
    return [g * scale for g in grads], total


def _clip_values(grads, max_norm):
    return [np.clip(g, -max_norm, max_norm) for g in grads], _clip_grad_norm(grads, max_norm)[1]


def _clip_inverted(grads, max_norm):
    total = _clip_grad_norm(grads, max_norm)[1]
    scale = total / max_norm if total > max_norm else 1.0
    return [g * scale for g in grads], total


def _clip_squared_norm(grads, max_norm):
    total = float(sum(np.sum(g**2) for g in grads))  # forgot the square root
    scale = max_norm / total if total > max_norm else 1.0
    return [g * scale for g in grads], total


def _clip_min_factor(grads, max_norm):
    """min(1, max_norm / total_norm): right, until every gradient is zero (ZeroDivisionError)."""
    total = _clip_grad_norm(grads, max_norm)[1]
    scale = min(1.0, max_norm / total)
    return [g * scale for g in grads], total


ZERO_NORM_HINT = (
    "when every gradient is zero the joint norm is 0 and max_norm / total_norm divides by zero: scale only when "
    "total_norm > max_norm (0 never is), so all-zero gradients come back unchanged with total_norm 0.0"
)


def _clip_error_hint(error: dict) -> str | None:
    """A division by a zero norm, raised as an error, named as such."""
    if error["type"] == "ZeroDivisionError" or "divide" in error["message"].lower():
        return ZERO_NORM_HINT
    return None


class _ClipExercise(Exercise):
    """clip_grad_norm: a division by a zero norm (an error, or NaN from NumPy) is named as such."""

    def diagnose(self, case: Case, received) -> str:
        all_zero = all(not np.any(g) for g in case.args[0])
        clipped = received[0] if isinstance(received, (tuple, list)) and received else None
        if (
            all_zero
            and isinstance(clipped, (list, tuple))
            and any(not np.all(np.isfinite(np.asarray(g, dtype=float))) for g in clipped)
        ):
            return ZERO_NORM_HINT  # 0 / 0 gave NaN: the same division by a zero norm
        return super().diagnose(case, received)


register(
    _ClipExercise(
        error_hints=_clip_error_hint,
        id="clip_grad_norm",
        lesson="09",
        points=2,
        description="scale all gradients by one factor so their joint L2 norm is at most max_norm",
        cases=_clip_cases,
        reference=_clip_grad_norm,
        rtol=1e-5,  # tolerates the common max_norm / (total_norm + 1e-6)
        names=lambda path: {
            (0,): "clipped (item 1 of the returned tuple)",
            (1,): "total_norm (item 2 of the returned tuple)",
        }.get(path, f"clipped[{path[1]}]" if len(path) == 2 else None),
        structure_hint=(
            "return a pair (clipped, total_norm): the list of scaled arrays and the joint norm before clipping"
        ),
        generic_hint="compute ONE norm over every entry of every array, total_norm = sqrt(sum of all squares), and "
        "scale every array by the same factor max_norm / total_norm, only when total_norm > max_norm",
        mistakes=[
            Mistake(
                _clip_per_array,
                "each array was clipped on its own: compute ONE norm over all arrays together and scale every array "
                "by the same factor max_norm / total_norm",
            ),
            Mistake(
                _clip_always,
                "the gradients were scaled although their norm was already below max_norm: scale only when "
                "total_norm > max_norm",
            ),
            Mistake(
                _clip_norm_after,
                "return total_norm measured BEFORE clipping (it tells you how large the gradient was), not after",
            ),
            Mistake(
                _clip_sum_of_norms,
                "the joint norm is sqrt(sum of the squares of every entry), not the sum of the per-array norms",
            ),
            Mistake(_clip_squared_norm, "forgot the square root: the L2 norm is sqrt(sum of squares)"),
            Mistake(
                _clip_values, "clip the norm, not each value: np.clip on the entries changes the gradient's direction"
            ),
            Mistake(_clip_inverted, "the factor is max_norm / total_norm (smaller than 1), not total_norm / max_norm"),
            Mistake(_clip_min_factor, ZERO_NORM_HINT),
        ],
    )
)
