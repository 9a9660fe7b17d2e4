"""Checks for lesson 08, training: standardize, accuracy."""

from __future__ import annotations

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, register

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
    Exercise(
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
            Mistake(
                _std_rows,
                "statistics per sample (axis=1): each feature (column) gets its own mean and std, so use axis=0",
            ),
            Mistake(
                _std_global, "one mean and std over the whole matrix: each feature (column) gets its own, use axis=0"
            ),
            Mistake(_std_no_centre, "the mean was not subtracted: standardising is (X - mean) / std"),
            Mistake(_std_no_divide, "the features were only centred: also divide by the std, (X - mean) / std"),
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
        cases.append(Case(f"N={n}, C={c}, {right} of {n} right", (logits, y)))
    logits = 1e3 * rng.normal(size=(7, 4))
    y = np.argmax(logits, axis=1)
    y[:2] = (y[:2] + 1) % 4
    cases.append(Case("logits of magnitude 1e3, N=7, C=4", (logits, y)))
    return cases


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
            Mistake(
                lambda logits, y: float(np.mean((logits[:, -1] > 0.5) == y)),
                "logits are not probabilities, and with C classes the prediction is the class of the largest "
                "logit: np.argmax(logits, axis=1), not a threshold at 0.5",
            ),
        ],
    )
)
