"""Checks for lesson 11, adaptive optimizers: rmsprop_step, adam_step."""

from __future__ import annotations

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, register

# -- rmsprop_step -------------------------------------------------------------------------------


def _rmsprop_step(w, grad, s, lr, rho=0.9, eps=1e-8):
    s_new = rho * s + (1 - rho) * grad**2  # running mean of squared gradients, per weight
    w_new = w - lr * grad / (np.sqrt(s_new) + eps)
    return w_new, s_new


def _rmsprop_cases() -> list[Case]:
    rng = case_rng(1101)
    cases = []
    for shape, lr in (((3,), 0.01), ((4, 2), 0.001), ((6,), 0.1)):
        w, grad, s = rng.normal(size=shape), rng.normal(size=shape), rng.random(shape)
        cases.append(Case(f"shape {shape}, lr={lr}, default rho and eps", (w, grad, s, lr)))
    w, grad = rng.normal(size=4), rng.normal(size=4) * np.array([0.01, 0.1, 1.0, 100.0])
    cases.append(Case("first step: s = 0, gradients of very different sizes", (w, grad, np.zeros(4), 0.01)))
    w, grad, s = rng.normal(size=3), rng.normal(size=3), rng.random(3)
    cases.append(Case("rho=0.99 passed by keyword", (w, grad, s, 0.01), {"rho": 0.99}))
    w, grad = rng.normal(size=3), np.array([1e-3, -2e-3, 5e-4])
    cases.append(Case("tiny gradients with eps=1e-3 (where eps matters)", (w, grad, np.zeros(3), 0.01), {"eps": 1e-3}))
    cases.append(
        Case("a zero gradient entry", (np.array([1.0, -1.0]), np.array([0.0, 2.0]), np.array([0.0, 0.5]), 0.1))
    )
    return cases


register(
    Exercise(
        id="rmsprop_step",
        names=("w_new", "s_new"),
        lesson="11",
        points=2,
        description="one RMSProp step: s = rho s + (1 - rho) grad^2, w = w - lr grad / (sqrt(s) + eps)",
        cases=_rmsprop_cases,
        reference=_rmsprop_step,
        mistakes=[
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w - lr * grad / np.sqrt(rho * s + (1 - rho) * grad**2 + eps),
                    rho * s + (1 - rho) * grad**2,
                ),
                "eps goes outside the square root: divide by (np.sqrt(s_new) + eps), not np.sqrt(s_new + eps)",
            ),
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w - lr * grad / (rho * s + (1 - rho) * grad**2 + eps),
                    rho * s + (1 - rho) * grad**2,
                ),
                "the square root is missing: divide by the root mean square np.sqrt(s_new) + eps, not by s_new",
            ),
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w - lr * grad / (np.sqrt(s) + eps),
                    rho * s + (1 - rho) * grad**2,
                ),
                "divide by the NEW average s_new (which already includes this gradient), not the old s",
            ),
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w - lr * grad / (np.sqrt((1 - rho) * s + rho * grad**2) + eps),
                    (1 - rho) * s + rho * grad**2,
                ),
                "rho and 1 - rho are swapped: the OLD average keeps weight rho, s_new = rho * s + (1 - rho) * grad**2",
            ),
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w - lr * grad / (np.sqrt(rho * s + (1 - rho) * grad) + eps),
                    rho * s + (1 - rho) * grad,
                ),
                "average the SQUARED gradient: s_new = rho * s + (1 - rho) * grad**2",
            ),
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w - lr * grad / (np.sqrt(rho * s + (1 - rho) * np.abs(grad)) + eps),
                    rho * s + (1 - rho) * np.abs(grad),
                ),
                "average the SQUARED gradient, not its absolute value: s_new = rho * s + (1 - rho) * grad**2",
            ),
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w + lr * grad / (np.sqrt(rho * s + (1 - rho) * grad**2) + eps),
                    rho * s + (1 - rho) * grad**2,
                ),
                "sign error in the update: step against the gradient, w_new = w - lr * grad / (np.sqrt(s_new) + eps)",
            ),
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w - lr * grad / (np.sqrt(s + grad**2) + eps),
                    s + grad**2,
                ),
                "s_new is a DECAYING average, s_new = rho * s + (1 - rho) * grad**2, not the running sum "
                "s + grad**2 (that is Adagrad, whose steps shrink for ever)",
            ),
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w - lr * grad / (np.sqrt(rho * s + ((1 - rho) * grad) ** 2) + eps),
                    rho * s + ((1 - rho) * grad) ** 2,
                ),
                "(1 - rho) multiplies the squared gradient: (1 - rho) * grad**2, not ((1 - rho) * grad)**2",
            ),
            Mistake(
                lambda w, grad, s, lr, rho=0.9, eps=1e-8: (
                    w - lr * grad / (np.sqrt((rho * s + (1 - rho) * grad**2) / (1 - rho)) + eps),
                    rho * s + (1 - rho) * grad**2,
                ),
                "RMSProp has no bias correction: divide by np.sqrt(s_new) + eps with s_new as it is, not "
                "divided by 1 - rho",
            ),
        ],
    )
)


# -- adam_step ----------------------------------------------------------------------------------


def _adam_step(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m_new = beta1 * m + (1 - beta1) * grad  # first moment: a momentum-like mean of gradients
    v_new = beta2 * v + (1 - beta2) * grad**2  # second moment: RMSProp's mean of squares
    m_hat = m_new / (1 - beta1**t)  # bias correction: m and v start at 0 and are too small early on
    v_hat = v_new / (1 - beta2**t)
    w_new = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w_new, m_new, v_new


def _adam_variant(
    correct_m=True,
    correct_v=True,
    t_shift=0,
    eps_inside=False,
    sqrt_then_correct=False,
    no_one_minus=False,
    return_hats=False,
    sign=-1.0,
):
    """Build a wrong Adam (one flag at a time) for the typical-mistake list."""

    def step(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        tt = t + t_shift
        if no_one_minus:
            m_new, v_new = beta1 * m + grad, beta2 * v + grad**2
        else:
            m_new, v_new = beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * grad**2
        with np.errstate(divide="ignore", invalid="ignore"):
            m_hat = m_new / (1 - beta1**tt) if correct_m else m_new
            v_hat = v_new / (1 - beta2**tt) if correct_v else v_new
            if sqrt_then_correct:
                denom = np.sqrt(v_new) / (1 - beta2**tt) + eps
            elif eps_inside:
                denom = np.sqrt(v_hat + eps)
            else:
                denom = np.sqrt(v_hat) + eps
            w_new = w + sign * lr * m_hat / denom
        if return_hats:
            return w_new, m_hat, v_hat
        return w_new, m_new, v_new

    return step


def _adam_swapped_corrections(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m_new, v_new = beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m_new / (1 - beta2**t), v_new / (1 - beta1**t)  # beta2 where beta1 belongs
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m_new, v_new


def _adam_abs_grad(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m_new, v_new = beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * np.abs(grad)  # not squared
    m_hat, v_hat = m_new / (1 - beta1**t), v_new / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m_new, v_new


def _adam_correction_multiplied(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m_new, v_new = beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m_new * (1 - beta1**t), v_new * (1 - beta2**t)  # multiplied, not divided
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m_new, v_new


def _adam_raw_grad(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m_new, v_new = beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * grad**2
    v_hat = v_new / (1 - beta2**t)
    return w - lr * grad / (np.sqrt(v_hat) + eps), m_new, v_new  # grad where m_hat belongs


def _adam_times_t(absolute: bool):
    """1 - beta * t for 1 - beta**t; `absolute`: with np.abs under the root, else NaN from a negative v_hat."""

    def step(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        m_new, v_new = beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * grad**2
        m_hat, v_hat = m_new / (1 - beta1 * t), v_new / (1 - beta2 * t)
        with np.errstate(divide="ignore", invalid="ignore"):
            return w - lr * m_hat / (np.sqrt(np.abs(v_hat) if absolute else v_hat) + eps), m_new, v_new

    return step


def _adam_m_weights_swapped(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m_new, v_new = (1 - beta1) * m + beta1 * grad, beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m_new / (1 - beta1**t), v_new / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m_new, v_new


def _adam_moments_swapped(w, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    w_new, m_new, v_new = _adam_step(w, grad, m, v, t, lr, beta1, beta2, eps)
    return w_new, v_new, m_new


_HINT_ADAM_TIMES_T = (
    "the bias correction uses a POWER of beta: 1 - beta1**t and 1 - beta2**t, not 1 - beta1 * t "
    "(which turns negative from the second step on)"
)


def _adam_cases() -> list[Case]:
    rng = case_rng(1102)
    cases = []
    w, grad = rng.normal(size=4), rng.normal(size=4)
    cases.append(Case("first step: t=1, m = v = 0", (w, grad, np.zeros(4), np.zeros(4), 1, 0.01)))
    for shape, t, lr in (((3,), 2, 0.001), ((2, 3), 5, 0.01), ((5,), 50, 0.1)):
        w, grad = rng.normal(size=shape), rng.normal(size=shape)
        m, v = 0.1 * rng.normal(size=shape), 0.01 * rng.random(shape)
        cases.append(Case(f"shape {shape}, t={t}, lr={lr}", (w, grad, m, v, t, lr)))
    w, grad = rng.normal(size=3), rng.normal(size=3)
    m, v = 0.1 * rng.normal(size=3), 0.01 * rng.random(3)
    cases.append(Case("t=3, beta1=0.8, beta2=0.99 by keyword", (w, grad, m, v, 3, 0.01), {"beta1": 0.8, "beta2": 0.99}))
    w, grad = rng.normal(size=3), np.array([1e-3, -2e-3, 5e-4])
    cases.append(
        Case(
            "t=1, tiny gradients with eps=1e-3 (where eps matters)",
            (w, grad, np.zeros(3), np.zeros(3), 1, 0.01),
            {"eps": 1e-3},
        )
    )
    w, grad = rng.normal(size=2), np.array([1e3, -1e-3])
    cases.append(Case("t=1000, gradients of very different sizes", (w, grad, np.zeros(2), np.zeros(2), 1000, 0.01)))
    return cases


register(
    Exercise(
        id="adam_step",
        names=("w_new", "m_new", "v_new"),
        lesson="11",
        points=3,
        description="one Adam step with bias correction (t counts from 1)",
        cases=_adam_cases,
        reference=_adam_step,
        mistakes=[
            Mistake(
                _adam_variant(correct_m=False, correct_v=False),
                "the bias correction is missing: divide m_new by (1 - beta1**t) and v_new by (1 - beta2**t) "
                "before the update (m and v start at 0, so early averages are too small)",
            ),
            Mistake(
                _adam_variant(t_shift=1),
                "t already counts from 1 (the first step is t=1): use beta1**t with the t you are given, not t + 1",
            ),
            Mistake(
                _adam_variant(t_shift=-1),
                "t counts from 1, not 0: use beta1**t with the t you are given "
                "(with t - 1 the first step divides by 0)",
            ),
            Mistake(
                _adam_variant(eps_inside=True),
                "eps goes outside the square root: divide by (np.sqrt(v_hat) + eps), not np.sqrt(v_hat + eps)",
            ),
            Mistake(
                _adam_variant(sqrt_then_correct=True),
                "square-root placement: correct v first, then take the root, np.sqrt(v_new / (1 - beta2**t)); "
                "dividing np.sqrt(v_new) by (1 - beta2**t) over-corrects",
            ),
            Mistake(
                _adam_variant(correct_v=False),
                "v_new needs its bias correction too: v_hat = v_new / (1 - beta2**t)",
            ),
            Mistake(
                _adam_variant(correct_m=False),
                "m_new needs its bias correction too: m_hat = m_new / (1 - beta1**t)",
            ),
            Mistake(
                _adam_variant(no_one_minus=True),
                "the moving averages weigh the new gradient by (1 - beta): m_new = beta1 * m + (1 - beta1) * grad, "
                "v_new = beta2 * v + (1 - beta2) * grad**2",
            ),
            Mistake(
                _adam_variant(sign=1.0),
                "sign error in the update: step against the gradient, w_new = w - lr * m_hat / (np.sqrt(v_hat) + eps)",
            ),
            Mistake(
                _adam_variant(return_hats=True),
                "return the raw averages m_new and v_new, not the corrected m_hat and v_hat "
                "(the next step corrects them again)",
            ),
            Mistake(
                _adam_swapped_corrections,
                "beta1 and beta2 are swapped in the bias corrections: m_hat = m_new / (1 - beta1**t), "
                "v_hat = v_new / (1 - beta2**t)",
            ),
            Mistake(
                _adam_abs_grad,
                "v averages the SQUARED gradient, not its absolute value: v_new = beta2 * v + (1 - beta2) * grad**2",
            ),
            Mistake(
                _adam_correction_multiplied,
                "the bias correction DIVIDES: m_hat = m_new / (1 - beta1**t), v_hat = v_new / (1 - beta2**t), "
                "not m_new * (1 - beta1**t)",
            ),
            Mistake(
                _adam_raw_grad,
                "the numerator is the corrected first moment m_hat, not the raw gradient: "
                "w_new = w - lr * m_hat / (np.sqrt(v_hat) + eps)",
            ),
            Mistake(_adam_times_t(absolute=True), _HINT_ADAM_TIMES_T),
            Mistake(_adam_times_t(absolute=False), _HINT_ADAM_TIMES_T),
            Mistake(
                _adam_m_weights_swapped,
                "beta1 and 1 - beta1 are swapped in m's average: the OLD average keeps weight beta1, "
                "m_new = beta1 * m + (1 - beta1) * grad",
            ),
            Mistake(_adam_moments_swapped, "m_new and v_new are swapped: return (w_new, m_new, v_new), in that order"),
        ],
    )
)
