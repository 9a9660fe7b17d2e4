"""Checks for lesson 04, losses: mse, mse_grad, binary_cross_entropy, softmax, cross_entropy, cross_entropy_grad.

Numerical stability is judged twice. The check runs softmax and the cross-entropies with
floating-point overflow, 0/0 and log(0) turned into errors (`strict_fp`, in a notebook and in batch
grading alike), so even an answer that overflows and then recovers fails with the "subtract the max"
hint. And should an answer run without those errors switched on, an exponent that overflows (logits
of magnitude 1e3) still leaves an inf or a NaN in the softmax or the loss: a non-finite answer where
the true one is finite fails with the same hint.
"""

from __future__ import annotations

import re

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, StableExercise, case_rng, register

# -- references ---------------------------------------------------------------------------------


def _mse(y_pred, y):
    return float(np.mean((y_pred - y) ** 2))


def _mse_grad(y_pred, y):
    return 2.0 * (y_pred - y) / y.size  # d/dy_pred of mean((y_pred - y)^2)


def _bce(p, y):
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def _softmax(z):
    shifted = z - np.max(z, axis=-1, keepdims=True)  # exp(z - m) / sum exp(z - m) = softmax(z), no overflow
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(z):
    m = np.max(z, axis=-1, keepdims=True)
    return z - (m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True)))  # z - logsumexp(z)


def _cross_entropy(logits, y):
    n = logits.shape[0]
    return float(-np.mean(_log_softmax(logits)[np.arange(n), y]))


def _onehot(y, c):
    return np.eye(c)[y]


def _cross_entropy_grad(logits, y):
    n, c = logits.shape
    return (_softmax(logits) - _onehot(y, c)) / n


# -- typical mistakes (module level so they can be named in tests) --------------------------------


def _quiet(fn):
    """Run a mistake without printing NumPy overflow warnings while the checker diagnoses."""

    def wrapped(*args):
        with np.errstate(all="ignore"):
            return fn(*args)

    wrapped.__name__ = getattr(fn, "__name__", "mistake")
    return wrapped


def _naive_softmax(z):
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def _naive_cross_entropy(logits, y):
    n = logits.shape[0]
    logsumexp = np.log(np.sum(np.exp(logits), axis=-1))  # overflows to inf at logits ~ 1e3
    return float(np.mean(logsumexp - logits[np.arange(n), y]))


def _clipped_log_cross_entropy(logits, y):
    n = logits.shape[0]
    p = _softmax(logits)
    return float(-np.mean(np.log(p[np.arange(n), y] + 1e-12)))


def _clip_probability_cross_entropy(logits, y):
    n = logits.shape[0]
    p = np.clip(_softmax(logits), 1e-12, 1.0)  # keeps log finite, but log(1e-12) = -27.6 is not the true log p
    return float(-np.mean(np.log(p[np.arange(n), y])))


CLIPPED_HINT = (
    "right for small logits, wrong for logits of magnitude 1e3: there a probability underflows to 0, and "
    "clipping it (or adding an eps) keeps log finite but changes the loss; compute the log-probabilities "
    "directly with log-sum-exp, log p = z - m - log(sum(exp(z - m))) with m the row max"
)

STABILITY_HINT = (
    "exp overflows for large logits (exp(1000) = inf, and inf/inf = NaN): subtract each row's max "
    "before exp, z - z.max(axis=-1, keepdims=True); the result is mathematically the same"
)

ROW_MAX_HINT = (
    "a 0/0 or inf/inf appeared: subtract each row's OWN max, z - z.max(axis=-1, keepdims=True), before exp. "
    "Without a shift exp(1000) = inf; with the max of the whole array a row far below it underflows to 0/0"
)
LSE_HINT = "log(sum(exp(z))) overflows for large logits: use log-sum-exp, m + log(sum(exp(z - m))) with m the row max"
LOG_ZERO_HINT = (
    "log(0): a probability underflowed to 0; work with log-probabilities, z - logsumexp(z), instead of taking "
    "the log of a softmax"
)


CE_LOG_ZERO_HINT = (
    "log(0): a sum of exponentials or a probability underflowed to 0. Shift by each row's OWN max, "
    "m = z.max(axis=1, keepdims=True) (a row far below the max of the whole array underflows), and work with "
    "log-probabilities, log p = z - logsumexp(z) = z - m - log(sum(exp(z - m))), never the log of a softmax"
)
KEEPDIMS_HINT = (
    "a row's max or sum lost its axis: over axis=-1 it has shape (N,), which does not line up with the (N, C) "
    "logits; keep the axis with keepdims=True, shape (N, 1)"
)
LABEL_INDEX_HINT = (
    "an index is out of range: the labels y run from 0 to C - 1, so they index the class axis, np.eye(C)[y] "
    "with C = logits.shape[1] or g[np.arange(N), y]; an axis of size N (the batch) may be too short for them"
)
NO_EPS_HINT = (
    "no eps inside the logs: p is strictly between 0 and 1, so log(p) and log(1 - p) are finite already, and "
    "log(p + eps) changes the loss"
)


def _strict(fn):
    """A mistake run as the check runs an answer here: overflow, 0/0 and x/0 raise FloatingPointError."""

    def wrapped(*args):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return fn(*args)

    wrapped.__name__ = getattr(fn, "__name__", "mistake")
    return wrapped


def _bce_with_eps(eps: float):
    def bce(p, y):
        return float(np.mean(-(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))))

    return bce


def _softmax_no_exp(z):
    return z / np.sum(z, axis=-1, keepdims=True)


def _sigmoid_each(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _cross_entropy_no_max_back(logits, y):
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1))  # m + ... meant
    return float(np.mean(lse - logits[np.arange(len(y)), y]))


def _cross_entropy_argmax_logit(logits, y):
    m = logits.max(axis=1)
    lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    return float(np.mean(lse - logits.max(axis=1)))


def _cross_entropy_max_for_lse(logits, y):
    return float(np.mean(logits.max(axis=1) - logits[np.arange(len(y)), y]))


def _cross_entropy_grad_column_block(logits, y):
    g = _softmax(logits)
    g[:, y] -= 1.0  # every label's column in every row
    return g / logits.shape[0]


def _cross_entropy_grad_columns(logits, y):
    return (_softmax(logits.T).T - _onehot(y, logits.shape[1])) / logits.shape[0]


def _cross_entropy_grad_extra_slope(logits, y):
    p = _softmax(logits)
    return (p - _onehot(y, logits.shape[1])) * p * (1 - p) / logits.shape[0]


def _rowwise_error_hint(error: dict) -> str | None:
    """softmax and the cross-entropies: a row statistic without keepdims, or a label out of range, is named."""
    message = error["message"]
    shapes = re.search(r"shapes \((\d+),(\d+)?\)\s*\((\d+),(\d+)?\)", message)
    if shapes:
        a_rows, a_cols, b_rows, b_cols = shapes.groups()
        if a_rows == b_rows and (a_cols is None) != (b_cols is None):
            return KEEPDIMS_HINT
    if error["type"] == "IndexError" and "out of bounds" in message:
        return LABEL_INDEX_HINT
    return None


# -- cases --------------------------------------------------------------------------------------


def _regression_cases(seed: int) -> list[Case]:
    rng = case_rng(seed)
    cases = []
    for shape in ((5,), (4, 3), (2, 7)):
        label = f"shape {shape}" if len(shape) == 2 else f"N={shape[0]} targets"
        cases.append(Case(label, (rng.normal(size=shape), rng.normal(size=shape))))
    cases.append(Case("batch size 1, shape (1, 2)", (rng.normal(size=(1, 2)), rng.normal(size=(1, 2)))))
    cases.append(Case("a perfect prediction (zero loss)", (np.full(4, 2.5), np.full(4, 2.5))))
    cases.append(Case("large errors (magnitude 1e3)", (rng.normal(size=(3, 2)) * 1e3, rng.normal(size=(3, 2)))))
    return cases


def _mse_cases() -> list[Case]:
    return _regression_cases(401)


def _mse_grad_cases() -> list[Case]:
    return _regression_cases(402)


def _bce_cases() -> list[Case]:
    rng = case_rng(403)
    cases = []
    for n in (6, 10):
        y = (rng.random(n) < 0.5).astype(float)
        y[0], y[1] = 0.0, 1.0  # both classes present so a missing term shows up
        cases.append(Case(f"N={n}", (rng.uniform(0.05, 0.95, size=n), y)))
    cases.append(Case("batch size 1, y=1", (np.array([0.8]), np.array([1.0]))))
    cases.append(Case("batch size 1, y=0", (np.array([0.3]), np.array([0.0]))))
    y = (rng.random((5, 1)) < 0.5).astype(float)
    y[0, 0], y[1, 0] = 0.0, 1.0
    cases.append(Case("column shape (5, 1)", (rng.uniform(0.05, 0.95, size=(5, 1)), y)))
    cases.append(
        Case(
            "confident predictions (p near 0 and 1)",
            (np.array([1e-6, 1 - 1e-6, 0.999, 0.001]), np.array([0.0, 1.0, 0.0, 1.0])),
        )
    )
    return cases


def _logit_cases(seed: int) -> list[Case]:
    """Logits and integer labels: random, N=1, C=2, ties, and magnitudes 1e3 of both signs."""
    rng = case_rng(seed)
    cases = []
    for n, c in ((4, 3), (6, 5), (3, 10)):
        cases.append(Case(f"N={n}, C={c}", (rng.normal(size=(n, c)), rng.integers(0, c, size=n))))
    cases.append(Case("batch size 1, C=4", (rng.normal(size=(1, 4)), np.array([2]))))
    cases.append(Case("all-zero logits (N=3, C=4)", (np.zeros((3, 4)), np.array([0, 3, 1]))))
    big = rng.normal(size=(4, 5)) * 1e3
    # Labels away from each row's largest logit, so their probabilities underflow whatever the draw (where a
    # label is its row's largest logit, p is about 1 and clipping p cannot show).
    labels = (big.argmax(axis=1) + rng.integers(1, 5, size=4)) % 5
    cases.append(Case("logits of magnitude 1e3 (N=4, C=5)", (big, labels)))
    rows = np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1003.0], [5.0, -2.0, 1.0]])
    cases.append(Case("rows near +1000, near -1000 and near 0", (rows, np.array([1, 0, 2]))))
    return cases


def _softmax_cases() -> list[Case]:
    return [Case(c.label, (c.args[0],)) for c in _logit_cases(404)]


def _cross_entropy_cases() -> list[Case]:
    return _logit_cases(405)


def _cross_entropy_grad_cases() -> list[Case]:
    return _logit_cases(406)


# -- exercises ----------------------------------------------------------------------------------

register(
    Exercise(
        id="mse",
        lesson="04",
        points=1,
        description="mean squared error over all elements",
        cases=_mse_cases,
        reference=_mse,
        mistakes=[
            Mistake(
                lambda y_pred, y: float(np.sum((y_pred - y) ** 2)),
                "the division by the number of elements is missing: mean, not sum",
            ),
            Mistake(
                lambda y_pred, y: float(np.sum((y_pred - y) ** 2) / len(y)),
                "divide by the number of all elements (y.size), not only by the number of rows len(y)",
            ),
            Mistake(
                lambda y_pred, y: float(np.mean(np.abs(y_pred - y))),
                "square the errors: (y_pred - y) ** 2, not their absolute value",
            ),
            Mistake(
                lambda y_pred, y: float(np.mean(y_pred - y) ** 2),
                "square each error first, then take the mean: mean((y_pred - y) ** 2), not mean(y_pred - y) ** 2",
            ),
            Mistake(
                lambda y_pred, y: float(np.sqrt(np.mean((y_pred - y) ** 2))),
                "no square root: that is the RMSE, the exercise asks for the MSE",
            ),
            Mistake(
                lambda y_pred, y: float(np.mean((y_pred - y) ** 2) / 2),
                "no factor 1/2 here: MSE = mean((y_pred - y) ** 2)",
            ),
            Mistake(
                lambda y_pred, y: float(np.mean(y_pred - y)),
                "square the errors: mean((y_pred - y) ** 2); unsquared, positive and negative errors cancel",
            ),
            Mistake(
                lambda y_pred, y: np.mean((y_pred - y) ** 2, axis=0),
                "average over all elements, np.mean((y_pred - y) ** 2) with no axis: the MSE is a single number",
            ),
            Mistake(
                lambda y_pred, y: float(np.sum((y_pred - y) ** 2) / (y.size - 1)),
                "divide by the number of elements y.size, not y.size - 1: the MSE is a plain mean, not a sample "
                "variance",
            ),
        ],
    )
)

register(
    Exercise(
        id="mse_grad",
        lesson="04",
        points=1,
        description="gradient of the MSE with respect to y_pred",
        cases=_mse_grad_cases,
        reference=_mse_grad,
        mistakes=[
            Mistake(lambda y_pred, y: (y_pred - y) / y.size, "missing factor 2: d/dx of x**2 is 2x"),
            Mistake(
                lambda y_pred, y: 2.0 * (y_pred - y),
                "missing / N: the loss is a mean, so every element's gradient is divided by y.size",
            ),
            Mistake(
                lambda y_pred, y: 2.0 * (y - y_pred) / y.size,
                "sign error: the gradient points towards larger loss, 2 (y_pred - y) / N, not 2 (y - y_pred) / N",
            ),
            Mistake(
                lambda y_pred, y: 2.0 * (y_pred - y) / len(y),
                "divide by the number of all elements (y.size), not only by the number of rows len(y)",
            ),
            Mistake(
                lambda y_pred, y: np.full_like(y_pred, np.mean(2.0 * (y_pred - y))),
                "every prediction gets its own gradient: do not average the gradient into one number",
            ),
            Mistake(
                lambda y_pred, y: float(np.mean(2.0 * (y_pred - y))),
                "every prediction gets its own gradient: do not average the gradient into one number",
            ),
            Mistake(
                lambda y_pred, y: (2 // y.size) * (y_pred - y),
                "2 // N is integer division (0 once N > 2): write 2 * (y_pred - y) / y.size",
            ),
            Mistake(
                lambda y_pred, y: 2.0 * (y_pred - y) ** 2 / y.size,
                "the derivative of (y_pred - y)**2 is 2 (y_pred - y): no square in the gradient",
            ),
        ],
    )
)

register(
    Exercise(
        id="binary_cross_entropy",
        lesson="04",
        points=1,
        description="binary cross-entropy of probabilities p against 0/1 labels y",
        cases=_bce_cases,
        reference=_bce,
        mistakes=[
            Mistake(
                lambda p, y: float(np.sum(-(y * np.log(p) + (1 - y) * np.log(1 - p)))),
                "average over the batch: mean, not sum",
            ),
            Mistake(
                lambda p, y: float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
                "sign error: log p is negative, so the loss is MINUS the mean log-likelihood",
            ),
            Mistake(
                lambda p, y: float(np.mean(-y * np.log(p))),
                "the (1 - y) log(1 - p) term is missing or adds nothing (does it take log(1 - p), not log(1 - y)?): "
                "samples with y = 0 must be penalised too",
            ),
            Mistake(
                lambda p, y: float(np.mean(-(y * np.log(1 - p) + (1 - y) * np.log(p)))),
                "p is the probability of class 1, so y = 1 goes with log(p) and y = 0 with log(1 - p)",
            ),
            Mistake(
                lambda p, y: float(np.mean(-(y * np.log10(p) + (1 - y) * np.log10(1 - p)))),
                "use the natural logarithm np.log, not np.log10",
            ),
            Mistake(
                _quiet(lambda p, y: float(np.mean(-(p * np.log(y) + (1 - p) * np.log(1 - y))))),
                "p and y are swapped: the logs are of the prediction, -(y log p + (1 - y) log(1 - p)); log of a "
                "label 0 or 1 is log(0) = -inf",
            ),
            Mistake(
                lambda p, y: float(np.mean(-y * np.log(p) + (1 - y) * np.log(1 - p))),
                "sign error in the second term: the minus covers both, -(y log p + (1 - y) log(1 - p))",
            ),
            *(Mistake(_bce_with_eps(eps), NO_EPS_HINT) for eps in (1e-3, 1e-5, 1e-7)),
        ],
    )
)

register(
    StableExercise(
        error_hints=_rowwise_error_hint,
        id="softmax",
        overflow_hint=STABILITY_HINT,
        invalid_hint=ROW_MAX_HINT,
        divide_hint=LOG_ZERO_HINT,
        lesson="04",
        points=2,
        description="row-wise softmax, stable for logits of magnitude 1e3",
        cases=_softmax_cases,
        reference=_softmax,
        mistakes=[
            Mistake(_quiet(_naive_softmax), STABILITY_HINT),
            Mistake(
                _quiet(lambda z: _naive_softmax(z - np.max(z))),
                "subtract the max of EACH ROW (axis=-1, keepdims=True), not the max of the whole array: "
                "a row far below the global max underflows to 0/0",
            ),
            Mistake(
                lambda z: np.exp(z - np.max(z, axis=-1, keepdims=True)),
                "divide by the row sum: each row of a softmax sums to 1",
            ),
            Mistake(
                _quiet(
                    lambda z: (
                        np.exp(z - np.max(z, axis=-1, keepdims=True))
                        / np.sum(np.exp(z - np.max(z, axis=-1, keepdims=True)))
                    )
                ),
                "normalise each row on its own: sum(..., axis=-1, keepdims=True), not the sum of the whole array",
            ),
            Mistake(
                _quiet(lambda z: _naive_softmax(z.T - np.max(z.T, axis=-1, keepdims=True)).T),
                "softmax runs over the last axis (classes, axis=-1), not over the batch (axis=0)",
            ),
            Mistake(_quiet(lambda z: np.exp(z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True)))), STABILITY_HINT),
            Mistake(
                _strict(_softmax_no_exp),
                "the exponential is missing: softmax(z) = exp(z - m) / sum(exp(z - m)) over each row (m the row "
                "max); dividing z by its own sum is not a softmax",
            ),
            Mistake(
                _sigmoid_each,
                "that is the sigmoid of each entry: softmax divides exp(z - m) by its row's sum, "
                "sum(..., axis=-1, keepdims=True), so that each row sums to 1",
            ),
        ],
    )
)

register(
    StableExercise(
        error_hints=_rowwise_error_hint,
        id="cross_entropy",
        overflow_hint=LSE_HINT,
        large_hint=CLIPPED_HINT,
        divide_hint=CE_LOG_ZERO_HINT,
        lesson="04",
        points=2,
        description="mean negative log-likelihood of integer labels, via log-sum-exp",
        cases=_cross_entropy_cases,
        reference=_cross_entropy,
        mistakes=[
            Mistake(_quiet(_naive_cross_entropy), LSE_HINT),
            Mistake(_quiet(_clip_probability_cross_entropy), CLIPPED_HINT),
            # The same numbers as clipping p wherever p underflows (log(0 + 1e-12) = log(1e-12)): one hint.
            Mistake(_quiet(_clipped_log_cross_entropy), CLIPPED_HINT),
            Mistake(
                lambda logits, y: float(-np.sum(_log_softmax(logits)[np.arange(len(y)), y])),
                "average over the batch: divide the sum by N (mean, not sum)",
            ),
            Mistake(
                lambda logits, y: float(np.mean(_log_softmax(logits)[np.arange(len(y)), y])),
                "sign error: the loss is the NEGATIVE log-likelihood, -mean(log p[y])",
            ),
            Mistake(
                lambda logits, y: float(-np.mean(_log_softmax(logits) * _onehot(y, logits.shape[1]))),
                "with a one-hot matrix, sum over the classes first, then average over the batch: np.mean over all "
                "N*C entries also divides by C",
            ),
            Mistake(
                lambda logits, y: float(-np.mean(_log_softmax(logits)[:, y])),
                "pick one entry per row, logp[np.arange(N), y]; logp[:, y] takes an N x N block",
            ),
            Mistake(
                lambda logits, y: float(-np.mean(logits[np.arange(len(y)), y])),
                "take the log-softmax first: the loss is logsumexp(z) - z[y], not -z[y]",
            ),
            Mistake(
                _cross_entropy_no_max_back,
                "add the max back: logsumexp(z) = m + log(sum(exp(z - m))); without + m each row's loss is off by "
                "its max",
            ),
            Mistake(
                _cross_entropy_argmax_logit,
                "take each row's logit at its true label, logits[np.arange(N), y], not the largest logit (that is "
                "the predicted class)",
            ),
            Mistake(
                _cross_entropy_max_for_lse,
                "the row max alone is not the log-sum-exp: logsumexp(z) = m + log(sum(exp(z - m))), the log term "
                "included",
            ),
        ],
    )
)

register(
    StableExercise(
        error_hints=_rowwise_error_hint,
        id="cross_entropy_grad",
        overflow_hint=STABILITY_HINT,
        divide_hint=LOG_ZERO_HINT,
        lesson="04",
        points=2,
        description="gradient of the mean cross-entropy with respect to the logits",
        cases=_cross_entropy_grad_cases,
        reference=_cross_entropy_grad,
        mistakes=[
            Mistake(
                lambda logits, y: _softmax(logits) - _onehot(y, logits.shape[1]),
                "missing / N: the loss is a mean over the batch, so divide the gradient by N",
            ),
            Mistake(
                lambda logits, y: (_onehot(y, logits.shape[1]) - _softmax(logits)) / len(y),
                "sign error: the gradient is (softmax - onehot) / N, not (onehot - softmax) / N",
            ),
            Mistake(
                lambda logits, y: _softmax(logits) / len(y),
                "subtract the one-hot labels: 1 at the true class of each row, (softmax - onehot(y)) / N",
            ),
            Mistake(
                lambda logits, y: (_softmax(logits) - y[:, None]) / len(y),
                "y holds integer labels: turn them into one-hot rows (np.eye(C)[y]) before subtracting",
            ),
            Mistake(
                lambda logits, y: (_softmax(logits) - _onehot(y, logits.shape[1])) / logits.size,
                "divide by the batch size N only, not by N*C: the loss averages over rows, it sums over classes",
            ),
            Mistake(
                _quiet(lambda logits, y: (_naive_softmax(logits) - _onehot(y, logits.shape[1])) / len(y)),
                STABILITY_HINT,
            ),
            Mistake(
                _cross_entropy_grad_column_block,
                "g[:, y] -= 1 subtracts 1 in every row at every label's column: subtract once per row, at its own "
                "label, g[np.arange(N), y] -= 1",
            ),
            Mistake(
                _cross_entropy_grad_columns,
                "the softmax normalises each row, over the classes (axis=1), not each column over the batch",
            ),
            Mistake(
                _cross_entropy_grad_extra_slope,
                "(softmax - onehot) / N is already the gradient with respect to the logits, the softmax's slope "
                "included: do not multiply by p (1 - p) again",
            ),
        ],
    )
)
