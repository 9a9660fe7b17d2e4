"""Checks for lesson 13, the capstone: mlp_loss_and_grads, train_mlp, and `predict(X)` on digits
the learner never trained on.

The 1797 digits of `bpkit.data.load_digits()` are split once, by a fixed seeded permutation, into
a training part (returned by `capstone_training_data()`, the only data the lesson uses) and a
held-out part that only this checker looks at.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, format_value, register

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


@dataclass
class _DigitsCase(Case):
    """A batch of held-out images with their true labels (which stay in the checker)."""

    labels: np.ndarray | None = None


def _disguise(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move about half of the pixels by one grey level (clipped to 0..16): the same digits to a model,
    but no longer rows of `load_digits()`, so a notebook cannot look them up. In grading, `rng` comes
    from the run's secret seed, so the exact images are new every run."""
    step = rng.integers(-1, 2, size=X.shape) * (rng.random(X.shape) < 0.5)
    return np.clip(X + step, 0, 16)


def _capstone_cases() -> list[Case]:
    _, _, X_held, y_held = _split()
    X_seen = _disguise(X_held, case_rng(1313))
    cases = [_DigitsCase(f"the {len(X_held)} held-out digits (raw pixels 0..16)", (X_seen,), labels=y_held.copy())]
    for digit in (3, 7):
        i = _typical_heldout_image(digit)
        cases.append(_DigitsCase(f"a batch of ONE image: a very typical held-out {digit}", (X_seen[i : i + 1].copy(),),
                                 labels=y_held[i : i + 1].copy()))
    return cases


def _true_labels(case: Case) -> np.ndarray:
    """The labels of the images in a case (kept in the case, never sent to the learner's code)."""
    return case.labels


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


# -- mlp_loss_and_grads: forward and backward of a whole ReLU MLP with softmax cross-entropy ------


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)  # stable: the largest exponent is exp(0) = 1
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _mlp_variant(relu_mask=True, mean=True, db_mean=False, relu_last=False, stable=True, mask_at_zero=False,
                 dW_transposed=False):
    """Build mlp_loss_and_grads (reference with the defaults; one flag changed gives a typical mistake)."""

    def mlp_loss_and_grads(X, y, params):
        N = len(X)
        # 1. forward, keeping each layer's input and pre-activation for the backward pass
        a, cache = X, []
        for i, (W, b) in enumerate(params):
            z = a @ W + b  # (N, D_out)
            cache.append((a, z))
            last = i == len(params) - 1
            a = z if (last and not relu_last) else np.maximum(z, 0)
        logits = a  # (N, C)
        # 2. loss: mean negative log-likelihood via log-sum-exp
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if stable:
                shifted = logits - logits.max(axis=1, keepdims=True)
                log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                probs = np.exp(log_probs)
            else:
                e = np.exp(logits)
                probs = e / e.sum(axis=1, keepdims=True)
                log_probs = np.log(probs)
        nll = -log_probs[np.arange(N), y]
        loss = float(nll.mean() if mean else nll.sum())
        # 3. backward, last layer first
        dout = probs.copy()
        dout[np.arange(N), y] -= 1.0  # dL/dlogits = softmax - onehot (per sample)
        if mean:
            dout /= N  # the loss is a mean over the batch
        grads = []
        for i in range(len(params) - 1, -1, -1):
            W, _ = params[i]
            a_in, z = cache[i]
            last = i == len(params) - 1
            if relu_last or not last:
                if relu_mask:
                    dout = dout * ((z >= 0) if mask_at_zero else (z > 0))  # ReLU passes gradient where z > 0
            dW = a_in.T @ dout  # dL/dW = x^T @ dout, (D_in, D_out)
            db = dout.mean(axis=0) if db_mean else dout.sum(axis=0)  # (D_out,)
            grads.append((dW.T if dW_transposed else dW, db))
            dout = dout @ W.T  # dL/dx = dout @ W^T, (N, D_in)
        return loss, grads[::-1]

    return mlp_loss_and_grads


_mlp_loss_and_grads = _mlp_variant()


def _mlp_params(sizes, rng, scale=1.0):
    return [(scale * rng.normal(size=(d_in, d_out)) / np.sqrt(d_in), 0.1 * rng.normal(size=d_out))
            for d_in, d_out in zip(sizes[:-1], sizes[1:])]


def _mlp_cases() -> list[Case]:
    rng = case_rng(1301)
    cases = []
    for n, sizes in ((6, [5, 4, 3]), (8, [64, 16, 10]), (5, [4, 6, 5, 3]), (4, [3, 2])):
        X, y = rng.normal(size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n)
        label = f"N={n}, sizes={sizes}" + (" (no hidden layer)" if len(sizes) == 2 else "")
        cases.append(Case(label, (X, y, _mlp_params(sizes, rng))))
    X, y = rng.normal(size=(1, 4)), np.array([2])
    cases.append(Case("a batch of one sample, sizes=[4, 3, 3]", (X, y, _mlp_params([4, 3, 3], rng))))
    params = _mlp_params([3, 4, 2], rng)
    params[0] = (params[0][0], np.zeros(4))
    cases.append(Case("X = 0 and b1 = 0: hidden pre-activations exactly at the ReLU kink",
                      (np.zeros((3, 3)), np.array([0, 1, 1]), params)))
    X, y = rng.normal(size=(4, 5)), np.array([0, 1, 2, 0])
    cases.append(Case("large logits (about 1e3)", (X, y, _mlp_params([5, 8, 3], rng, scale=300.0))))
    return cases


_HINT_OVERFLOW = ("the softmax overflows for large logits: subtract each row's maximum before np.exp "
                  "(and compute the loss with log-sum-exp)")


def _has_nonfinite(value) -> bool:
    if value is None:
        return False
    if isinstance(value, (list, tuple)):
        return any(_has_nonfinite(v) for v in value)
    try:
        return not bool(np.all(np.isfinite(np.asarray(value, dtype=float))))
    except (TypeError, ValueError):
        return False


def _mlp_judge(exercise: Exercise, case: Case, received) -> None:
    """The default comparison, plus a named hint for NaN/inf (a NaN loss never equals another NaN)."""
    expected = exercise.reference(*copy.deepcopy(case.args))
    if _has_nonfinite(received) and not _has_nonfinite(expected):
        exercise.fail(case, "returned NaN or inf where the answer is finite", hint=_HINT_OVERFLOW)
    exercise.expect(case, received, expected)


register(
    Exercise(
        id="mlp_loss_and_grads",
        lesson="13",
        points=4,
        description="forward and backward pass of a ReLU MLP with softmax cross-entropy: (loss, [(dW, db), ...])",
        cases=_mlp_cases,
        reference=_mlp_loss_and_grads,
        judge=_mlp_judge,
        rtol=1e-5,
        atol=1e-8,
        mistakes=[
            Mistake(_mlp_variant(stable=False), _HINT_OVERFLOW),
            Mistake(_mlp_variant(mask_at_zero=True),
                    "at z = 0 exactly ReLU's slope is 0 in this course: the mask is (z > 0), not (z >= 0)"),
            Mistake(_mlp_variant(mean=False),
                    "the loss is the MEAN over the batch: divide the loss and dlogits = softmax - onehot by N"),
            Mistake(_mlp_variant(db_mean=True),
                    "db sums dout over the batch, db = dout.sum(axis=0): the 1/N is already inside dout"),
            Mistake(_mlp_variant(relu_last=True),
                    "the last layer is linear: no ReLU on the logits (softmax takes raw scores)"),
            Mistake(_mlp_variant(relu_mask=False),
                    "backprop through ReLU is missing: multiply the gradient by (z > 0) of that layer before "
                    "computing its dW and db"),
            Mistake(_mlp_variant(dW_transposed=True),
                    "dW is transposed: dW = x.T @ dout has the shape of W, (D_in, D_out)"),
        ],
    )
)


# -- train_mlp: minibatch Adam on top of mlp_loss_and_grads ------------------------------------


def _train_mlp(X, y, sizes, epochs, lr, batch_size, rng, loss_and_grads=None, sign=1.0, update=True):
    """Reference: He-initialised ReLU MLP trained with minibatch Adam (beta1 0.9, beta2 0.999)."""
    loss_and_grads = loss_and_grads or _mlp_loss_and_grads
    params = [(rng.normal(size=(d_in, d_out)) * np.sqrt(2.0 / d_in), np.zeros(d_out))
              for d_in, d_out in zip(sizes[:-1], sizes[1:])]
    flat = [p for pair in params for p in pair]  # W1, b1, W2, b2, ...
    m = [np.zeros_like(p) for p in flat]
    v = [np.zeros_like(p) for p in flat]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            idx = order[start : start + batch_size]
            _, grads = loss_and_grads(X[idx], y[idx], params)
            t += 1
            for k, g in enumerate(g for pair in grads for g in pair):
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g**2
                step = (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
                if update:
                    flat[k] -= sign * lr * step  # in place: params holds the same arrays
    return params


def _training_cases() -> list[Case]:
    X_train, y_train, _, _ = _split()
    X, y = X_train[:400], y_train[:400]
    Xs = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)  # (400, 64), standardised
    from bpkit.data import make_moons

    Xm, ym = make_moons(200, 0.1, case_rng(1302))
    Xm = (Xm - Xm.mean(0)) / Xm.std(0)
    return [
        Case("400 standardised digits, sizes=[64, 32, 10], 10 epochs, lr=0.01, batch_size=32",
             (Xs, y, [64, 32, 10], 10, 0.01, 32, case_rng(1303))),
        Case("the same digits without a hidden layer, sizes=[64, 10], 10 epochs, lr=0.01, batch_size=50",
             (Xs, y, [64, 10], 10, 0.01, 50, case_rng(1304))),
        Case("200 moons, sizes=[2, 32, 2], 60 epochs, lr=0.02, batch_size=20",
             (Xm, ym, [2, 32, 2], 60, 0.02, 20, case_rng(1305))),
    ]


TRAIN_ACCURACY = 0.9
_HINT_TRAIN_STRUCTURE = "return the trained parameters as a list of (W, b) pairs, W (sizes[i], sizes[i+1]), b (sizes[i+1],)"
_HINT_TRAIN_NAN = "the parameters became NaN or inf: the steps were too large; check the Adam update (sqrt, eps, bias correction)"
_HINT_TRAIN_LOW = (
    "training did not fit the training data: check that the update subtracts (w - lr * step), that it changes the "
    "arrays you return (not copies), and that you loop over every minibatch of every epoch with Adam as described"
)


def _forward_labels(X, params):
    a = X
    for i, (W, b) in enumerate(params):
        z = a @ W + b
        a = z if i == len(params) - 1 else np.maximum(z, 0)
    return np.argmax(a, axis=1)


def _train_judge(exercise: Exercise, case: Case, received) -> None:
    X, y, sizes = case.args[0], case.args[1], case.args[2]
    if received is None:
        exercise.fail(case, "returned None (is a `return` missing?)", hint=_HINT_TRAIN_STRUCTURE)
    if not isinstance(received, (list, tuple)) or len(received) != len(sizes) - 1:
        kind = f"{len(received)} items" if isinstance(received, (list, tuple)) else type(received).__name__
        exercise.fail(case, f"returned {kind}, expected a list of {len(sizes) - 1} (W, b) pairs", hint=_HINT_TRAIN_STRUCTURE)
    for i, pair in enumerate(received):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            exercise.fail(case, f"item {i + 1} is not a (W, b) pair", hint=_HINT_TRAIN_STRUCTURE)
        for name, arr, shape in (("W", pair[0], (sizes[i], sizes[i + 1])), ("b", pair[1], (sizes[i + 1],))):
            if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iuf":
                exercise.fail(case, f"{name}{i + 1} is a {type(arr).__name__}, expected an array", hint=_HINT_TRAIN_STRUCTURE)
            if arr.shape != shape:
                exercise.fail(case, f"{name}{i + 1} has shape {arr.shape}, expected {shape}", hint=_HINT_TRAIN_STRUCTURE)
            if not np.all(np.isfinite(arr)):
                exercise.fail(case, f"{name}{i + 1} contains NaN or inf", hint=_HINT_TRAIN_NAN)
    accuracy = float(np.mean(_forward_labels(X, received) == y))
    if accuracy < TRAIN_ACCURACY:
        exercise.fail(case, f"the returned parameters get {accuracy:.1%} of the TRAINING data right, "
                            f"expected at least {TRAIN_ACCURACY:.0%}", hint=_HINT_TRAIN_LOW)


register(
    Exercise(
        id="train_mlp",
        lesson="13",
        points=3,
        description="train a ReLU MLP with minibatch Adam using mlp_loss_and_grads; return [(W, b), ...]",
        cases=_training_cases,
        reference=_train_mlp,
        judge=_train_judge,
        mistakes=[
            Mistake(lambda X, y, sizes, epochs, lr, batch_size, rng: _train_mlp(X, y, sizes, epochs, lr, batch_size, rng, update=False),
                    _HINT_TRAIN_LOW),
            Mistake(lambda X, y, sizes, epochs, lr, batch_size, rng: _train_mlp(X, y, sizes, epochs, lr, batch_size, rng, sign=-1.0),
                    _HINT_TRAIN_LOW),
            Mistake(lambda X, y, sizes, epochs, lr, batch_size, rng: [(W.T, b) for W, b in _train_mlp(X, y, sizes, epochs, lr, batch_size, rng)],
                    _HINT_TRAIN_STRUCTURE),
            Mistake(lambda X, y, sizes, epochs, lr, batch_size, rng: [(W, b[None, :]) for W, b in _train_mlp(X, y, sizes, epochs, lr, batch_size, rng)],
                    _HINT_TRAIN_STRUCTURE),
        ],
    )
)
