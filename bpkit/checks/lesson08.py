"""Checks for lesson 08, training: standardize, accuracy."""

from __future__ import annotations

import numpy as np

from bpkit.checks import _harness
from bpkit.checks._core import _EVIDENCE, Case, Exercise, Mistake, case_rng, compare, register

# -- standardize --------------------------------------------------------------------------------


def _standardize(X_train, X_test):
    mu = X_train.mean(axis=0)  # (D,) statistics of the training set only
    sigma = X_train.std(axis=0)  # (D,)
    sigma = np.where(sigma > 0, sigma, 1.0)  # a constant feature is centred, not divided by 0
    return (X_train - mu) / sigma, (X_test - mu) / sigma


def _scaled(X_train, X_test, mu, sigma):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (X_train - mu) / sigma, (X_test - mu) / sigma


def _safe(sigma):
    return np.where(sigma > 0, sigma, 1.0)


def _std_test_leak(X_train, X_test):
    X_train_s, _ = _standardize(X_train, X_test)
    X_test_s, _ = _standardize(X_test, X_test)  # the test set scaled with its own statistics
    return X_train_s, X_test_s


def _std_joint(X_train, X_test):
    both = np.vstack([X_train, X_test])
    return _scaled(X_train, X_test, both.mean(axis=0), _safe(both.std(axis=0)))


def _std_no_guard(X_train, X_test):
    return _scaled(X_train, X_test, X_train.mean(axis=0), X_train.std(axis=0))


def _std_variance(X_train, X_test):
    return _scaled(X_train, X_test, X_train.mean(axis=0), _safe(X_train.var(axis=0)))


def _std_eps(X_train, X_test):
    return _scaled(X_train, X_test, X_train.mean(axis=0), X_train.std(axis=0) + 1e-8)


def _std_ddof1(X_train, X_test):
    return _scaled(X_train, X_test, X_train.mean(axis=0), _safe(X_train.std(axis=0, ddof=1)))


def _std_rows(X_train, X_test):
    mu_tr, sd_tr = X_train.mean(axis=1, keepdims=True), _safe(X_train.std(axis=1, keepdims=True))
    mu_te, sd_te = X_test.mean(axis=1, keepdims=True), _safe(X_test.std(axis=1, keepdims=True))
    return (X_train - mu_tr) / sd_tr, (X_test - mu_te) / sd_te


def _std_no_centre(X_train, X_test):
    return _scaled(X_train, X_test, 0.0, _safe(X_train.std(axis=0)))


def _std_no_divide(X_train, X_test):
    return _scaled(X_train, X_test, X_train.mean(axis=0), 1.0)


def _std_global(X_train, X_test):
    return _scaled(X_train, X_test, X_train.mean(), X_train.std())


def _std_min_max(X_train, X_test):
    low, high = X_train.min(axis=0), X_train.max(axis=0)
    return _scaled(X_train, X_test, low, _safe(high - low))


ROWS_HINT = "statistics per sample (axis=1): each feature (column) gets its own mean and std, so use axis=0"


class _StandardizeExercise(Exercise):
    """standardize: X_train_s scaled per sample is named even where the answer does X_test_s its own way."""

    def diagnose(self, case: Case, received) -> str:
        hint = super().diagnose(case, received)
        if hint in {m.hint for m in self.mistakes}:
            return hint
        return ROWS_HINT if _train_part_per_sample(self, case, received) else hint


def _train_part_per_sample(exercise: Exercise, case: Case, received) -> bool:
    """Is X_train_s, wrong here, X_train standardised per row (axis=1) on this case and every other one observed?

    Only the training part is judged: how an answer with per-row statistics treats X_test varies (its own rows'
    statistics, the first rows of the training ones, an error where the sizes differ).
    """

    def per_sample(args, answer) -> bool:
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            return False
        return compare(_std_rows(*args)[0], answer[0], exercise.rtol, exercise.atol) is None

    reference = _standardize(*case.args)[0]
    if not per_sample(case.args, received) or compare(reference, received[0], exercise.rtol, exercise.atol) is None:
        return False
    evidence = _EVIDENCE.get()
    if evidence is None or evidence.observations is None:
        return True
    for other, observation in zip(evidence.cases, evidence.observations):
        if "output" in observation and not per_sample(other.args, _harness.decode(observation["output"])):
            return False
    return True


def _standardize_cases() -> list[Case]:
    rng = case_rng(801)
    scale = np.array([1.0, 10.0, 0.1])
    offset = np.array([5.0, -20.0, 0.3])
    cases = [
        Case(
            "N_train=20, N_test=6, D=3 features on different scales",
            (rng.normal(size=(20, 3)) * scale + offset, rng.normal(size=(6, 3)) * scale + offset),
        ),
    ]
    # Constant training columns (all 0 like a blank pixel, all 7): centred, not divided by 0. The
    # test set holds other values there, so a lazy "set them to 0" is noticed too.
    X_train = rng.normal(size=(15, 4)) * 3.0 + 1.0
    X_train[:, 1] = 0.0
    X_train[:, 3] = 7.0
    X_test = rng.normal(size=(5, 4)) * 3.0 + 1.0
    cases.append(Case("two constant training features (std 0)", (X_train, X_test)))
    cases.append(
        Case(
            "N_test=1 (a single new sample), D=5",
            (rng.normal(size=(30, 5)) * 4.0 - 2.0, rng.normal(size=(1, 5)) * 4.0 - 2.0),
        )
    )
    cases.append(
        Case(
            "large magnitudes (house sizes ~ 1e3)",
            (1e3 + 200.0 * rng.normal(size=(25, 2)), 1e3 + 200.0 * rng.normal(size=(8, 2))),
        )
    )
    cases.append(Case("D=1, N_train=2", (np.array([[1.0], [3.0]]), np.array([[2.0], [5.0], [-1.0]]))))
    return cases


register(
    _StandardizeExercise(
        id="standardize",
        names=("X_train_s", "X_test_s"),
        lesson="08",
        points=2,
        description="scale train and test features with the training mean and std",
        cases=_standardize_cases,
        reference=_standardize,
        mistakes=[
            Mistake(
                _std_test_leak,
                "test-set statistics leaking: scale X_test with the mean and std of X_train, never with its own",
            ),
            Mistake(
                _std_joint,
                "test-set statistics leaking: compute mean and std on X_train alone, not on train and test together",
            ),
            Mistake(
                _std_no_guard,
                "a feature with std 0 was divided by 0 (NaN): where std == 0 divide by 1 instead, so the feature is "
                "only centred",
            ),
            Mistake(
                _std_eps,
                "a feature with std 0 was divided by a tiny number, which blows its test values up: divide by 1 "
                "where std == 0",
            ),
            Mistake(
                _std_variance,
                "divided by the variance: divide by the standard deviation, its square root (X.std(axis=0))",
            ),
            Mistake(_std_ddof1, "use the population std, X_train.std(axis=0) (ddof=0, NumPy's default), not ddof=1"),
            Mistake(_std_rows, ROWS_HINT),
            Mistake(
                _std_global, "one mean and std over the whole matrix: each feature (column) gets its own, use axis=0"
            ),
            Mistake(_std_no_centre, "the mean was not subtracted: standardising is (X - mean) / std"),
            Mistake(_std_no_divide, "the features were only centred: also divide by the std, (X - mean) / std"),
            Mistake(
                _std_min_max,
                "that is min-max scaling, (X - min) / (max - min): standardising subtracts the training mean and "
                "divides by the training std, (X - mean) / std",
            ),
            Mistake(
                lambda X_train, X_test: _standardize(X_train, X_test)[::-1],
                "the two arrays are swapped: return X_train_s first, then X_test_s",
            ),
        ],
    )
)


# -- accuracy -----------------------------------------------------------------------------------


def _accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=1) == y))  # predicted class = largest logit


def _accuracy_cases() -> list[Case]:
    rng = case_rng(802)
    cases = []
    # Labels that agree with the argmax on a known fraction of the rows, so no answer is 0 or 1 by luck.
    for n, c, right in ((5, 5, 3), (8, 3, 6), (50, 10, 31), (1, 4, 1), (6, 2, 0)):
        logits = rng.normal(size=(n, c))
        y = np.argmax(logits, axis=1)
        wrong_rows = rng.permutation(n)[: n - right]
        y[wrong_rows] = (y[wrong_rows] + rng.integers(1, c, size=len(wrong_rows))) % c
        if n == 8:
            # The largest logit of the whole array sits in a right row here (its own argmax is unchanged), so
            # np.argmax(logits) without an axis, a flat index below C, hits a label: it is not 0 as `//` gives.
            top = np.setdiff1d(np.arange(n), wrong_rows)[0]
            logits[top] += logits.max() - logits[top].max() + 1.0
        cases.append(Case(f"N={n}, C={c}, {right} of {n} right", (logits, y)))
    logits = 1e3 * rng.normal(size=(7, 4))
    y = np.argmax(logits, axis=1)
    y[:2] = (y[:2] + 1) % 4
    cases.append(Case("logits of magnitude 1e3, N=7, C=4", (logits, y)))
    return cases


THRESHOLD_HINT = (
    "logits are not probabilities, and with C classes the prediction is the class of the largest "
    "logit: np.argmax(logits, axis=1), not a threshold at 0.5"
)

register(
    Exercise(
        id="accuracy",
        lesson="08",
        points=1,
        description="fraction of rows whose largest logit is at the true label",
        cases=_accuracy_cases,
        reference=_accuracy,
        mistakes=[
            Mistake(
                lambda logits, y: float(np.mean(np.argmax(logits, axis=0) == y)),
                "argmax over the wrong axis: each row is one sample, so take argmax(logits, axis=1)",
            ),
            Mistake(
                lambda logits, y: float(np.sum(np.argmax(logits, axis=1) == y)),
                "that is the number of correct rows: divide by the number of rows to get a fraction",
            ),
            Mistake(
                lambda logits, y: float(100.0 * np.mean(np.argmax(logits, axis=1) == y)),
                "return a fraction between 0 and 1, not a percentage",
            ),
            Mistake(
                lambda logits, y: float(np.mean(np.argmax(logits, axis=1) != y)),
                "that is the error rate: count the rows where the prediction EQUALS the label",
            ),
            Mistake(
                lambda logits, y: float(np.mean(np.max(logits, axis=1) == y)),
                "compare the position of the largest logit (np.argmax) with y, not its value (np.max)",
            ),
            Mistake(
                lambda logits, y: float(np.sum(np.argmax(logits, axis=1) == y) // len(y)),
                "// is integer division (7 // 10 = 0): divide with / to get a fraction",
            ),
            Mistake(lambda logits, y: float(np.mean((logits[:, -1] > 0.5) == y)), THRESHOLD_HINT),
            Mistake(lambda logits, y: float(np.mean(np.sum(logits > 0.5, axis=1) == y)), THRESHOLD_HINT),
            Mistake(
                lambda logits, y: float(np.mean(np.argmin(logits, axis=1) == y)),
                "the predicted class is the position of the LARGEST logit, np.argmax(logits, axis=1); np.argmin "
                "(like np.argsort(...)[:, 0]) gives the smallest",
            ),
            Mistake(
                lambda logits, y: float(np.mean(np.argmax(logits) == y)),
                "np.argmax without an axis gives ONE index into the flattened array: take one argmax per row, "
                "np.argmax(logits, axis=1)",
            ),
        ],
    )
)
