"""Checks for lesson 13, the capstone: `predict(X)` on digits the learner never trained on.

The 1797 digits of `bpkit.data.load_digits()` are split once, by a fixed seeded permutation, into
a training part (returned by `capstone_training_data()`, the only data the lesson uses) and a
held-out part that only this checker looks at.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, format_value, register

SPLIT_SEED = 1313  # fixed: the held-out images must be the same for every learner and every run
HELDOUT_FRACTION = 0.2
PASS_ACCURACY = 0.95


@lru_cache(maxsize=1)
def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_heldout, y_heldout) of the fixed capstone split (raw pixels 0..16)."""
    from bpkit.data import load_digits

    X, y = load_digits()  # (1797, 64), (1797,)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(X))
    n_heldout = int(round(HELDOUT_FRACTION * len(X)))
    heldout, train = order[:n_heldout], order[n_heldout:]
    return X[train], y[train], X[heldout], y[heldout]


def capstone_training_data() -> tuple[np.ndarray, np.ndarray]:
    """The capstone's training digits: X (1438, 64) raw pixels 0..16, y (1438,) int labels 0..9."""
    X_train, y_train, _, _ = _split()
    return X_train.copy(), y_train.copy()


def _reference_predict(X: np.ndarray) -> np.ndarray:
    """A 1-nearest-neighbour classifier on the training digits (no learning, ~98% held out)."""
    X_train, y_train, _, _ = _split()
    X = np.asarray(X, dtype=float)  # (N, 64)
    # squared distances |x - t|^2 = |x|^2 - 2 x.t + |t|^2, for all pairs at once
    d2 = (X**2).sum(1)[:, None] - 2 * X @ X_train.T + (X_train**2).sum(1)[None, :]  # (N, N_train)
    return y_train[np.argmin(d2, axis=1)]


def _typical_heldout_image(digit: int) -> int:
    """Index into the held-out set of the image of `digit` closest to that digit's training mean."""
    X_train, y_train, X_held, y_held = _split()
    centre = X_train[y_train == digit].mean(axis=0)  # (64,)
    candidates = np.flatnonzero(y_held == digit)
    return int(candidates[np.argmin(((X_held[candidates] - centre) ** 2).sum(1))])


def _capstone_cases() -> list[Case]:
    _, _, X_held, _ = _split()
    cases = [Case(f"the {len(X_held)} held-out digits (raw pixels 0..16)", (X_held.copy(),))]
    for digit in (3, 7):
        i = _typical_heldout_image(digit)
        cases.append(Case(f"a batch of ONE image: a very typical held-out {digit}", (X_held[i : i + 1].copy(),)))
    return cases


def _true_labels(case: Case) -> np.ndarray:
    """The labels of the images in a case (looked up in the held-out split)."""
    _, _, X_held, y_held = _split()
    X = case.args[0]
    if len(X) == len(X_held):
        return y_held.copy()
    rows = [int(np.flatnonzero((X_held == x).all(axis=1))[0]) for x in X]
    return y_held[rows]


_HINT_PROBS = "predict must return one integer label per image: take np.argmax(scores, axis=1) of your probabilities or logits"
_HINT_SHAPE = "return a 1-D array of N labels, shape (N,), e.g. np.argmax(logits, axis=1)"
_HINT_INT = "return integer labels, e.g. np.argmax(logits, axis=1) (an int array), not floats"
_HINT_ACCURACY = (
    "if you trained on standardised pixels, predict must standardise X with the TRAINING mean and std as well "
    "(the checker passes raw pixels 0..16, as load_digits gives them); otherwise train longer or wider, and "
    "watch the validation accuracy on a split of the training data"
)
_HINT_ONE_IMAGE = (
    "predict must not use statistics of the batch it is given: standardise with the mean and std of the "
    "TRAINING images, saved when you trained (a batch of one image has std 0 in every pixel)"
)


def _capstone_judge(exercise: Exercise, case: Case, received) -> None:
    X = case.args[0]
    n = len(X)
    if received is None:
        exercise.fail(case, "returned None (is a `return` missing?)", hint=_HINT_SHAPE)
    if isinstance(received, (list, tuple)):
        try:
            received = np.asarray(received)
        except (TypeError, ValueError):
            exercise.fail(case, "returned a list that is not an array of numbers", hint=_HINT_SHAPE)
    if not isinstance(received, np.ndarray) or received.dtype.kind not in "biuf":
        exercise.fail(case, f"returned {type(received).__name__}, expected an array of {n} integer labels", hint=_HINT_SHAPE)
    if received.ndim == 2 and received.shape == (n, 10):
        exercise.fail(case, f"returned shape {received.shape}: one score per class", hint=_HINT_PROBS)
    if received.shape != (n,):
        exercise.fail(case, f"returned shape {received.shape}, expected ({n},)", hint=_HINT_SHAPE)
    if received.dtype.kind == "f":
        exercise.fail(case, f"returned floats ({format_value(received)})", hint=_HINT_INT)
    y = _true_labels(case)
    if n == 1:
        if int(received[0]) != int(y[0]):
            exercise.fail(case, f"predicted {int(received[0])} for a very typical {int(y[0])}", hint=_HINT_ONE_IMAGE)
        return
    accuracy = float(np.mean(received == y))
    if accuracy < PASS_ACCURACY:
        exercise.fail(
            case,
            f"held-out accuracy {accuracy:.1%}, needs {PASS_ACCURACY:.0%} or more "
            f"({int(np.sum(received != y))} of {n} wrong)",
            hint=_HINT_ACCURACY,
        )


# -- typical wrong answers (built from the reference so the tests need no training) -----------


def _as_probabilities(X):
    return np.eye(10)[_reference_predict(X)]  # (N, 10) one-hot "probabilities"


def _column_labels(X):
    return _reference_predict(X)[:, None]  # (N, 1)


def _float_labels(X):
    return _reference_predict(X).astype(float)


def _unstandardised(X):
    """A nearest-class-mean classifier fitted on standardised pixels but fed raw ones."""
    X_train, y_train, _, _ = _split()
    mu, sigma = X_train.mean(0), X_train.std(0)
    sigma = np.where(sigma > 0, sigma, 1.0)
    centres = np.stack([((X_train[y_train == k] - mu) / sigma).mean(0) for k in range(10)])  # (10, 64)
    X = np.asarray(X, dtype=float)  # forgot: X = (X - mu) / sigma
    return np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)


def _batch_statistics(X):
    """A nearest-neighbour classifier that standardises with the statistics of the batch it is given."""
    X = np.asarray(X, dtype=float)
    sigma = X.std(0)
    Xs = (X - X.mean(0)) / np.where(sigma > 0, sigma, 1.0)  # should have used the training mean and std
    X_train, y_train, _, _ = _split()
    sigma_t = X_train.std(0)
    Ts = (X_train - X_train.mean(0)) / np.where(sigma_t > 0, sigma_t, 1.0)  # (N_train, 64)
    d2 = (Xs**2).sum(1)[:, None] - 2 * Xs @ Ts.T + (Ts**2).sum(1)[None, :]  # (N, N_train)
    return y_train[np.argmin(d2, axis=1)]


register(
    Exercise(
        id="predict",
        lesson="13",
        points=5,
        description="the capstone digit classifier: integer labels, >= 95% on held-out digits",
        cases=_capstone_cases,
        reference=_reference_predict,
        judge=_capstone_judge,
        mistakes=[
            Mistake(_as_probabilities, _HINT_PROBS),
            Mistake(_column_labels, _HINT_SHAPE),
            Mistake(_float_labels, _HINT_INT),
            Mistake(_unstandardised, _HINT_ACCURACY),
            Mistake(_batch_statistics, _HINT_ONE_IMAGE),
        ],
    )
)
