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

from bpkit.checks._core import _EVIDENCE, NONE_HINT, Case, Exercise, Mistake, case_rng, compare, format_value, register

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
    """Move about half of the partly inked pixels by one grey level: the same digits to a model,
    but no longer rows of `load_digits()`, so a notebook cannot look them up. In grading, `rng` comes
    from the run's secret seed, so the exact images are new every run."""
    inked = (X > 0) & (X < 16)  # blank pixels stay blank: their training std is near 0, a change there
    step = rng.integers(-1, 2, size=X.shape) * (rng.random(X.shape) < 0.5) * inked  # would be off the chart
    return np.clip(X + step, 0, 16)


def _capstone_cases() -> list[Case]:
    _, _, X_held, y_held = _split()
    X_seen = _disguise(X_held, case_rng(1313))
    cases = [_DigitsCase(f"the {len(X_held)} held-out digits (raw pixels 0..16)", (X_seen,), labels=y_held.copy())]
    for digit in (3, 7):
        i = _typical_heldout_image(digit)
        cases.append(
            _DigitsCase(
                f"a batch of ONE image: a very typical held-out {digit}",
                (X_seen[i : i + 1].copy(),),
                labels=y_held[i : i + 1].copy(),
            )
        )
    return cases


def _true_labels(case: Case) -> np.ndarray:
    """The labels of the images in a case (kept in the case, never sent to the learner's code)."""
    return case.labels


_HINT_PROBS = (
    "predict must return one integer label per image: take np.argmax(scores, axis=1) of your probabilities or logits"
)
_HINT_SHAPE = "return a 1-D array of N labels, shape (N,), e.g. np.argmax(logits, axis=1)"
_HINT_INT = "return integer labels, e.g. np.argmax(logits, axis=1) (an int array), not floats"
_HINT_ACCURACY = (
    "if you trained on standardised pixels, predict must standardise X with the TRAINING mean and std as well "
    "(the checker passes raw pixels 0..16, as load_digits gives them); otherwise train longer or wider, and "
    "watch the validation accuracy on a split of the training data"
)
_HINT_ONE_LABEL = (
    "one label for every image: the network's outputs are probably NaN (np.argmax of NaN is 0), or training "
    "collapsed. A common cause: a pixel blank in every training image has std 0, so (X - mean) / std is 0 / 0; "
    "divide by np.where(std > 0, std, 1) (or std + 1e-8), and check that the training loss stays finite"
)
_HINT_ONE_IMAGE = (
    "predict must not use statistics of the batch it is given: standardise with the mean and std of the "
    "TRAINING images, saved when you trained (a batch of one image has std 0 in every pixel)"
)


def _compare_predict(exercise: Exercise, case: Case, received) -> None:
    X = case.args[0]
    n = len(X)
    if received is None:
        exercise.fail(case, "returned None (is a `return` missing?)", hint=NONE_HINT)
    if isinstance(received, (list, tuple)):
        try:
            received = np.asarray(received)
        except (TypeError, ValueError):
            exercise.fail(case, "returned a list that is not an array of numbers", hint=_HINT_SHAPE)
    if not isinstance(received, np.ndarray) or received.dtype.kind not in "biuf":
        exercise.fail(
            case, f"returned {type(received).__name__}, expected an array of {n} integer labels", hint=_HINT_SHAPE
        )
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
    if accuracy < PASS_ACCURACY and np.unique(received).size == 1:
        exercise.fail(
            case,
            f"every image got the same label, {int(received[0])} (held-out accuracy {100 * accuracy:.2f}%)",
            hint=_HINT_ONE_LABEL,
        )
    if accuracy < PASS_ACCURACY:
        right = int(np.sum(received == y))
        needed = int(np.ceil(PASS_ACCURACY * n - 1e-9))  # the fewest right answers that make 95%
        exercise.fail(  # counts, not only rounded percentages: 341/359 is 94.99%, which "95.0%" would hide
            case,
            f"held-out accuracy {100 * accuracy:.2f}% ({right} of {n} right), needs {PASS_ACCURACY:.0%} or more: "
            f"at least {needed} of {n}",
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


def _zero_std(X):
    """A nearest-class-mean classifier on standardised pixels, dividing by a training std that is 0 for
    pixels blank in every training image: 0 / 0 = NaN everywhere, and np.argmin of NaN rows is 0."""
    X_train, y_train, _, _ = _split()
    mu, sigma = X_train.mean(0), X_train.std(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        centres = np.stack([((X_train[y_train == k] - mu) / sigma).mean(0) for k in range(10)])  # (10, 64)
        Xs = (np.asarray(X, dtype=float) - mu) / sigma
        return np.argmin(((Xs[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)


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
        compare_answer=_compare_predict,
        mistakes=[
            Mistake(_as_probabilities, _HINT_PROBS),
            Mistake(_column_labels, _HINT_SHAPE),
            Mistake(_float_labels, _HINT_INT),
            Mistake(_unstandardised, _HINT_ACCURACY),
            Mistake(_batch_statistics, _HINT_ONE_IMAGE),
            Mistake(_zero_std, _HINT_ONE_LABEL),
        ],
    )
)


# -- mlp_loss_and_grads: forward and backward of a whole ReLU MLP with softmax cross-entropy ------


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)  # stable: the largest exponent is exp(0) = 1
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _mlp_variant(
    relu_mask=True,
    mean=True,
    db_mean=False,
    relu_last=False,
    stable=True,
    mask_at_zero=False,
    dW_transposed=False,
    reverse=False,
    skip_first=False,
    onehot=True,
    mask_output=False,
    negate_dlogits=False,
):
    """Build mlp_loss_and_grads (reference with the defaults; one flag changed gives a typical mistake).

    mask_output: the backward pass masks the (linear) output layer with (z > 0) too; negate_dlogits:
    dlogits = onehot - softmax.
    """

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
        if onehot:
            dout[np.arange(N), y] -= 1.0  # dL/dlogits = softmax - onehot (per sample)
        if mean:
            dout /= N  # the loss is a mean over the batch
        if negate_dlogits:
            dout = -dout
        grads = []
        for i in range(len(params) - 1, 0 if skip_first else -1, -1):
            W, _ = params[i]
            a_in, z = cache[i]
            last = i == len(params) - 1
            if (relu_last or mask_output or not last) and relu_mask:
                dout = dout * ((z >= 0) if mask_at_zero else (z > 0))  # ReLU passes gradient where z > 0
            dW = a_in.T @ dout  # dL/dW = x^T @ dout, (D_in, D_out)
            db = dout.mean(axis=0) if db_mean else dout.sum(axis=0)  # (D_out,)
            grads.append((dW.T if dW_transposed else dW, db))
            dout = dout @ W.T  # dL/dx = dout @ W^T, (N, D_in)
        return loss, (grads if reverse else grads[::-1])

    return mlp_loss_and_grads


_mlp_loss_and_grads = _mlp_variant()


def _mlp_params(sizes, rng, scale=1.0):
    return [
        (scale * rng.normal(size=(d_in, d_out)) / np.sqrt(d_in), 0.1 * rng.normal(size=d_out))
        for d_in, d_out in zip(sizes[:-1], sizes[1:])
    ]


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
    cases.append(
        Case(
            "X = 0 and b1 = 0: hidden pre-activations exactly at the ReLU kink",
            (np.zeros((3, 3)), np.array([0, 1, 1]), params),
        )
    )
    X, y = rng.normal(size=(4, 5)), np.array([0, 1, 2, 0])
    cases.append(Case("large logits (about 1e3)", (X, y, _mlp_params([5, 8, 3], rng, scale=300.0))))
    return cases


_HINT_OVERFLOW = (
    "the softmax overflows for large logits: subtract each row's maximum before np.exp "
    "(and compute the loss with log-sum-exp)"
)


def _grad_name(path: tuple) -> str | None:
    """Where in (loss, [(dW1, db1), ...]) a difference is: "the loss", "dW2", ..."""
    if path == (0,):
        return "the loss (item 1 of the returned tuple)"
    if path == (1,):
        return "the list of gradients (item 2 of the returned tuple)"
    if len(path) == 2:
        return f"the pair (dW{path[1] + 1}, db{path[1] + 1})"
    if len(path) == 3:
        return f"{('dW', 'db')[path[2]]}{path[1] + 1}"
    return None


def _has_nonfinite(value) -> bool:
    if value is None:
        return False
    if isinstance(value, (list, tuple)):
        return any(_has_nonfinite(v) for v in value)
    try:
        return not bool(np.all(np.isfinite(np.asarray(value, dtype=float))))
    except (TypeError, ValueError):
        return False


def _mlp_backward_through_w(X, y, params):
    """dout @ W where dout @ W.T is meant: runs only where W is square."""
    N = len(X)
    a, cache = X, []
    for i, (W, b) in enumerate(params):
        z = a @ W + b
        cache.append((a, z))
        a = z if i == len(params) - 1 else np.maximum(z, 0)
    shifted = a - a.max(axis=1, keepdims=True)
    loss = float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(N), y]))
    dout = _softmax(a)
    dout[np.arange(N), y] -= 1.0
    dout /= N
    grads = []
    for i in range(len(params) - 1, -1, -1):
        a_in, _ = cache[i]
        grads.append((a_in.T @ dout, dout.sum(axis=0)))
        if i > 0:
            dout = (dout @ params[i][0]) * (cache[i - 1][1] > 0)  # W where W.T belongs
    return loss, grads[::-1]


_HINT_BACKWARD_MATMUL = (
    "a shape mismatch in a matrix product: write the shape of every array next to your code. The gradient goes "
    "down to the layer below as dout @ W.T, (N, D_out) @ (D_out, D_in), and dW = x.T @ dout"
)


def _mlp_error_hint(error: dict) -> str | None:
    """mlp_loss_and_grads: a matmul shape error names the two products of the backward pass."""
    if "matmul" in error["message"].lower():
        return _HINT_BACKWARD_MATMUL
    return None


def _compare_mlp_loss_and_grads(exercise: Exercise, case: Case, received) -> None:
    """The default comparison, plus a named hint for NaN/inf (a NaN loss never equals another NaN)."""
    expected = exercise.reference(*copy.deepcopy(case.args))
    if _has_nonfinite(received) and not _has_nonfinite(expected):
        exercise.fail(case, "returned NaN or inf where the answer is finite", hint=_HINT_OVERFLOW)
    exercise.expect(case, received, expected)


register(
    Exercise(
        error_hints=_mlp_error_hint,
        id="mlp_loss_and_grads",
        lesson="13",
        points=4,
        description="forward and backward pass of a ReLU MLP with softmax cross-entropy: (loss, [(dW, db), ...])",
        cases=_mlp_cases,
        reference=_mlp_loss_and_grads,
        compare_answer=_compare_mlp_loss_and_grads,
        names=_grad_name,
        rtol=1e-5,
        atol=1e-8,
        mistakes=[
            Mistake(_mlp_variant(stable=False), _HINT_OVERFLOW),
            Mistake(
                _mlp_variant(mask_at_zero=True),
                "at z = 0 exactly ReLU's slope is 0 in this course: the mask is (z > 0), not (z >= 0)",
            ),
            Mistake(
                _mlp_variant(mean=False),
                "the loss is the MEAN over the batch: divide the loss and dlogits = softmax - onehot by N",
            ),
            Mistake(
                _mlp_variant(db_mean=True),
                "db sums dout over the batch, db = dout.sum(axis=0): the 1/N is already inside dout",
            ),
            Mistake(
                _mlp_variant(relu_last=True),
                "the last layer is linear: no ReLU on the logits (softmax takes raw scores)",
            ),
            Mistake(
                _mlp_variant(relu_mask=False),
                "backprop through ReLU is missing: multiply the gradient by (z > 0) of that layer before "
                "computing its dW and db",
            ),
            Mistake(
                _mlp_variant(dW_transposed=True), "dW is transposed: dW = x.T @ dout has the shape of W, (D_in, D_out)"
            ),
            Mistake(
                _mlp_variant(reverse=True),
                "the gradients come out last layer first (the order backprop finds them): return them in the "
                "order of params, [(dW1, db1), (dW2, db2), ...], e.g. reverse the list before returning it",
            ),
            Mistake(
                _mlp_variant(mask_output=True),
                "the output layer is linear in the forward pass, so the backward pass has no ReLU mask there: "
                "multiply by (z > 0) only in the hidden layers",
            ),
            Mistake(
                _mlp_variant(negate_dlogits=True),
                "sign error in dlogits: the gradient of the loss is (softmax - onehot(y)) / N, not onehot - softmax",
            ),
            Mistake(_mlp_backward_through_w, _HINT_BACKWARD_MATMUL),
            Mistake(
                _mlp_variant(skip_first=True),
                "the backward loop stops one layer early (off by one): `for i in reversed(range(len(params)))` "
                "visits every layer down to the first, i = 0",
            ),
        ],
    )
)


# -- train_mlp: minibatch Adam on top of mlp_loss_and_grads ------------------------------------
#
# Judged by what it does, step by step: on small seeded problems the returned parameters must equal
# those of the recipe in the exercise text (He weights drawn with rng.normal layer by layer, then
# rng.permutation(N) at the start of every epoch, every minibatch, Adam with bias correction and t
# counting updates from 1) to within rounding. A few updates are enough to tell the typical wrong
# loops and Adam variants apart, and each has its own hint.


def _train_variant(
    init_scale="he",
    shuffle="each epoch",
    drop_last=False,
    bias_correction=True,
    t_mode="updates",
    eps_inside=False,
    sgd=False,
    sign=1.0,
    update=True,
    unpaired_y=False,
    no_sqrt=False,
    swapped_betas=False,
    init_draw="in order",
    loss_and_grads=None,
    update_biases=True,
    v_abs=False,
):
    """Build train_mlp (the reference with the defaults; one argument changed gives a typical mistake).

    init_draw: "in order" (W1, W2, ... drawn as (d_in, d_out)), "last layer first", "transposed"
    ((d_out, d_in) drawn, then .T), "biases drawn" (b ~ normal too) or "shuffle first" (the first
    permutation drawn before the weights; "shuffle first if training": only when epochs > 0).
    loss_and_grads: a wrong mlp_loss_and_grads to train with. t_mode: "updates" (t += 1 before each
    update), "after" (t += 1 after it: the first update divides by 1 - 0.9**0 = 0), "epochs", "reset".
    """
    loss_and_grads = loss_and_grads or _mlp_loss_and_grads

    def init(sizes, rng):
        scale = (lambda d_in: np.sqrt(2.0 / d_in)) if init_scale == "he" else (lambda d_in: 1.0)
        shapes = list(zip(sizes[:-1], sizes[1:]))
        if init_draw == "last layer first":
            return [(rng.normal(size=(d_in, d_out)) * scale(d_in), np.zeros(d_out)) for d_in, d_out in shapes[::-1]][
                ::-1
            ]
        if init_draw == "transposed":
            return [(rng.normal(size=(d_out, d_in)).T * scale(d_in), np.zeros(d_out)) for d_in, d_out in shapes]
        if init_draw == "biases drawn":
            return [
                (rng.normal(size=(d_in, d_out)) * scale(d_in), rng.normal(size=d_out) * scale(d_in))
                for d_in, d_out in shapes
            ]
        return [
            (rng.normal(size=(d_in, d_out)) * scale(d_in), np.zeros(d_out))  # 1. He initialisation
            for d_in, d_out in shapes
        ]

    def train_mlp(X, y, sizes, epochs, lr, batch_size, rng):
        shuffle_first = init_draw == "shuffle first" or (init_draw == "shuffle first if training" and epochs > 0)
        first_order = rng.permutation(len(X)) if shuffle_first else None
        params = init(sizes, rng)
        flat = [p for pair in params for p in pair]  # W1, b1, W2, b2, ...: the arrays params holds
        m = [np.zeros_like(p) for p in flat]
        v = [np.zeros_like(p) for p in flat]
        b1, b2 = (0.999, 0.9) if swapped_betas else (0.9, 0.999)
        t = 0
        order = rng.permutation(len(X)) if shuffle == "once" else None
        for epoch in range(epochs):
            if first_order is not None and epoch == 0:
                order = first_order
            elif shuffle == "each epoch":
                order = rng.permutation(len(X))  # 2. a new shuffle every epoch
            elif shuffle == "never":
                order = np.arange(len(X))
            if t_mode == "epochs":
                t = epoch + 1
            elif t_mode == "reset":
                t = 0
            stop = len(X) - batch_size + 1 if drop_last else len(X)
            for start in range(0, stop, batch_size):
                idx = order[start : start + batch_size]
                _, grads = loss_and_grads(X[idx], y[np.sort(idx)] if unpaired_y else y[idx], params)
                if t_mode not in ("epochs", "after"):
                    t += 1  # 3. t counts updates from 1
                for k, g in enumerate(g for pair in grads for g in pair):
                    if sgd:
                        step = g
                    else:
                        m[k] = b1 * m[k] + (1 - b1) * g
                        v[k] = b2 * v[k] + (1 - b2) * (np.abs(g) if v_abs else g**2)
                        with np.errstate(divide="ignore", invalid="ignore"):  # t = 0 in the "after" mistake
                            m_hat = m[k] / (1 - b1**t) if bias_correction else m[k]
                            v_hat = v[k] / (1 - b2**t) if bias_correction else v[k]
                            if no_sqrt:
                                step = m_hat / (v_hat + 1e-8)
                            elif eps_inside:
                                step = m_hat / np.sqrt(v_hat + 1e-8)
                            else:
                                step = m_hat / (np.sqrt(v_hat) + 1e-8)
                    if update and (update_biases or k % 2 == 0):
                        flat[k] -= sign * lr * step  # in place: params holds the same arrays
                if t_mode == "after":
                    t += 1
        return params

    return train_mlp


_train_mlp = _train_variant()


@dataclass
class _TrainCase(Case):
    """A training problem and the step of the recipe it is the first case to try (see _STEP_HINTS)."""

    step: str = "epochs"


def _training_cases() -> list[Case]:
    # From one step of the recipe to the whole: the first case an answer fails names the wrong step.
    rng = case_rng(1302)
    cases = []
    for n, sizes, epochs, lr, batch_size, what, step in (
        (6, [3, 4, 2], 0, 0.05, 3, "0 epochs: just the initial parameters", "init"),
        (8, [3, 5, 3], 3, 0.05, 8, "3 epochs of one full batch: three Adam steps, no shuffle matters", "update"),
        (10, [3, 4, 3], 1, 0.05, 4, "1 epoch, batches of 4, 4 and 2", "minibatches"),
        (12, [4, 5, 3], 3, 0.01, 5, "3 epochs of batches 5, 5, 2", "epochs"),
        (8, [2, 3], 2, 0.1, 8, "no hidden layer, 2 full-batch epochs", "epochs"),
        (30, [5, 8, 6, 4], 4, 0.02, 7, "two hidden layers, 4 epochs of batches 7, 7, 7, 7, 2", "epochs"),
    ):
        X, y = rng.normal(size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n)
        seed = int(rng.integers(2**31))
        cases.append(
            _TrainCase(
                f"N={n}, sizes={sizes}, {what}, lr={lr} (rng seeded {seed})",
                (X, y, sizes, epochs, lr, batch_size, np.random.default_rng(seed)),
                step=step,
            )
        )
    return cases


_HINT_TRAIN_STRUCTURE = (
    "return the trained parameters as a list of (W, b) pairs, W (sizes[i], sizes[i+1]), b (sizes[i+1],)"
)
_HINT_TRAIN_NAN = (
    "the parameters became NaN or inf: the steps were too large; check the Adam update (sqrt, eps, bias correction)"
)
_HINT_TRAIN_NOT_UPDATED = (
    "the returned parameters are the initial ones: the update must change the arrays you return "
    "(update them in place, W -= ..., or put the new arrays back into the list you return)"
)
# The step an answer gets wrong, named by the first case it fails (its cases go from one step to all).
_STEP_HINTS = {
    "init": (
        "step 1, the initialisation, is wrong (after 0 epochs the parameters are the initial ones): "
        "W = rng.normal(size=(d_in, d_out)) * np.sqrt(2 / d_in) for each layer, first layer first, b = "
        "np.zeros(d_out), and nothing else drawn from rng before them"
    ),
    "update": (
        "the initialisation is right but three full-batch steps are not (where the shuffle cannot matter): "
        "the gradients (forward, loss and backward in mlp_loss_and_grads: test it first) or the Adam update: "
        "m and v per array, created once before training, t = 1, 2, 3 counting updates, m_hat = m / (1 - 0.9**t), "
        "v_hat = v / (1 - 0.999**t), w -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)"
    ),
    "minibatches": (
        "full-batch steps are right but one epoch of several minibatches is not: the minibatch loop. "
        "Draw order = rng.permutation(N) at the start of the epoch, take X[order[i:i + batch_size]] with "
        "the same indices into y for every i in range(0, N, batch_size) (the last batch may be smaller), "
        "and count t += 1 before each update"
    ),
    "epochs": (
        "full-batch steps and one epoch of minibatches are right but several epochs are not: each epoch draws "
        "a new order = rng.permutation(N) of 0..N-1 (not a shuffle of the last epoch's order), and t keeps "
        "counting updates from one epoch to the next"
    ),
}
_HINT_SHUFFLE_FIRST = (
    "step 1, the initialisation: draw every W before the first "
    "rng.permutation(N): each draw from rng changes the numbers of the next"
)
_HINT_GRADS = "run checks.mlp_loss_and_grads(mlp_loss_and_grads) first: train_mlp trains with its gradients"
_TRAIN_MISTAKES = [
    (dict(update=False), _HINT_TRAIN_NOT_UPDATED),
    (dict(sign=-1.0), "the update goes uphill: subtract the step, w -= lr * m_hat / (sqrt(v_hat) + eps)"),
    (
        dict(sgd=True),
        "that is plain gradient descent (w -= lr * grad): use Adam's step, "
        "lr * m_hat / (sqrt(v_hat) + eps), with moments m and v kept per array",
    ),
    (
        dict(bias_correction=False),
        "bias correction is missing: m_hat = m / (1 - 0.9**t) and v_hat = v / (1 - 0.999**t) "
        "before the step (m and v start at 0)",
    ),
    (
        dict(t_mode="epochs"),
        "t counts minibatch UPDATES from 1 over the whole training (t += 1 before each step), not epochs",
    ),
    (dict(t_mode="reset"), "t must not restart at every epoch: it counts every update since the start of training"),
    (
        dict(t_mode="after"),
        "t is still 0 at the first update, so the bias correction divides by 1 - 0.9**0 = 0: count t += 1 "
        "BEFORE each update, so the first one uses t = 1",
    ),
    (
        dict(update_biases=False),
        "the biases were never updated: the Adam step applies to every array, each b as well as each W",
    ),
    (dict(v_abs=True), "v averages the SQUARED gradient: v = 0.999 * v + 0.001 * g**2, not np.abs(g)"),
    (dict(eps_inside=True), "eps goes outside the square root: m_hat / (np.sqrt(v_hat) + eps)"),
    (dict(no_sqrt=True), "divide by the square ROOT of v_hat: m_hat / (np.sqrt(v_hat) + eps)"),
    (dict(swapped_betas=True), "the betas are swapped: m uses beta1 = 0.9, v uses beta2 = 0.999"),
    (
        dict(drop_last=True),
        "the last, smaller minibatch was skipped: loop `for start in range(0, N, batch_size)` so "
        "every sample is used each epoch (off by one batch)",
    ),
    (dict(shuffle="never"), "the rows were not shuffled: draw order = rng.permutation(N) at the start of every epoch"),
    (
        dict(shuffle="once"),
        "shuffle at the start of EVERY epoch (a new rng.permutation(N) each time), not once before training",
    ),
    (dict(unpaired_y=True), "X and y of a minibatch must be taken with the same indices: X[idx], y[idx]"),
    (
        dict(init_scale="unit"),
        "step 1, the initialisation: He initialisation scales the normal draws: "
        "rng.normal(size=(d_in, d_out)) * np.sqrt(2 / d_in)",
    ),
    (
        dict(init_draw="last layer first"),
        "step 1, the initialisation: draw the weights first layer first (W1, then W2, "
        "...): rng hands out its numbers in order, so the order of the draws decides W",
    ),
    (
        dict(init_draw="transposed"),
        "step 1, the initialisation: draw each W as rng.normal(size=(d_in, d_out)), the "
        "shape it is used in; drawing (d_out, d_in) and transposing gives other numbers",
    ),
    (
        dict(init_draw="biases drawn"),
        "step 1, the initialisation: the biases start at zero, b = np.zeros(d_out); draw only the weights from rng",
    ),
    (dict(init_draw="shuffle first"), _HINT_SHUFFLE_FIRST),
    (dict(init_draw="shuffle first if training"), _HINT_SHUFFLE_FIRST),
    (
        dict(loss_and_grads=_mlp_variant(relu_last=True)),
        "step 2, the forward pass in mlp_loss_and_grads: the last layer is linear, no ReLU on the logits; "
        + _HINT_GRADS,
    ),
    (
        dict(loss_and_grads=_mlp_variant(onehot=False)),
        "step 2, the loss's gradient in mlp_loss_and_grads: dlogits = (softmax - onehot(y)) / N, subtract 1 at each "
        "sample's true class; " + _HINT_GRADS,
    ),
    (
        dict(loss_and_grads=_mlp_variant(relu_mask=False)),
        "step 2, the backward pass in mlp_loss_and_grads: multiply the gradient by the ReLU mask (z > 0) of each "
        "hidden "
        "layer before its dW and db; " + _HINT_GRADS,
    ),
]


def _compare_train_mlp(exercise: Exercise, case: Case, received) -> None:
    sizes = case.args[2]
    if received is None:
        exercise.fail(case, "returned None (is a `return` missing?)", hint=NONE_HINT)
    if not isinstance(received, (list, tuple)) or len(received) != len(sizes) - 1:
        kind = f"{len(received)} items" if isinstance(received, (list, tuple)) else type(received).__name__
        exercise.fail(
            case, f"returned {kind}, expected a list of {len(sizes) - 1} (W, b) pairs", hint=_HINT_TRAIN_STRUCTURE
        )
    for i, pair in enumerate(received):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            exercise.fail(case, f"item {i + 1} is not a (W, b) pair", hint=_HINT_TRAIN_STRUCTURE)
        for name, arr, shape in (("W", pair[0], (sizes[i], sizes[i + 1])), ("b", pair[1], (sizes[i + 1],))):
            if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iuf":
                exercise.fail(
                    case, f"{name}{i + 1} is a {type(arr).__name__}, expected an array", hint=_HINT_TRAIN_STRUCTURE
                )
            if arr.shape != shape:
                exercise.fail(
                    case, f"{name}{i + 1} has shape {arr.shape}, expected {shape}", hint=_HINT_TRAIN_STRUCTURE
                )
            if not np.all(np.isfinite(arr)):
                named = _named_train_mistake(exercise, case, [tuple(pair) for pair in received])
                exercise.fail(case, f"{name}{i + 1} contains NaN or inf", hint=named or _HINT_TRAIN_NAN)
    exercise.expect(case, [tuple(pair) for pair in received], exercise.reference(*copy.deepcopy(case.args)))


def _named_train_mistake(exercise: Exercise, case: Case, received) -> str | None:
    """The hint of the registered mistake that reproduces the answer on every case seen (NaN as NaN), or None."""
    evidence = _EVIDENCE.get()
    if evidence is not None and evidence.nested:
        return None  # judging a mistake's own output: only pass or fail matters
    whole = []
    for mistake in exercise.mistakes:
        try:
            wrong = mistake.fn(*copy.deepcopy(case.args))
        except Exception:
            continue
        if compare(wrong, received, exercise.rtol, exercise.atol) is None:
            whole.append(mistake)
    return exercise._only_hint(whole, evidence)


def _train_diagnose(exercise: Exercise, case: Case, received) -> str:
    """A registered mistake's hint where it reproduces the answer on every case seen; else the wrong step."""
    evidence = _EVIDENCE.get()
    if evidence is not None and evidence.nested:
        return exercise.generic_hint  # judging a mistake's own output: only pass or fail matters
    return _named_train_mistake(exercise, case, received) or _STEP_HINTS[getattr(case, "step", "epochs")]


def _param_name(path: tuple) -> str | None:
    """(k,) -> "(W{k+1}, b{k+1})", (k, 0) -> "W{k+1}", (k, 1) -> "b{k+1}"."""
    if len(path) == 1:
        return f"the pair (W{path[0] + 1}, b{path[0] + 1})"
    return f"{'Wb'[path[1]]}{path[0] + 1}" if len(path) == 2 else None


@dataclass
class _TrainExercise(Exercise):
    def diagnose(self, case: Case, received) -> str:
        return _train_diagnose(self, case, received)


def _mistake(options: dict):
    variant = _train_variant(**options)
    return lambda X, y, sizes, epochs, lr, batch_size, rng: [
        tuple(p) for p in variant(X, y, sizes, epochs, lr, batch_size, rng)
    ]


register(
    _TrainExercise(
        id="train_mlp",
        lesson="13",
        points=3,
        description="train a ReLU MLP with minibatch Adam using mlp_loss_and_grads; return [(W, b), ...]",
        cases=_training_cases,
        reference=lambda *args: [tuple(p) for p in _train_mlp(*args)],
        compare_answer=_compare_train_mlp,
        rtol=1e-6,
        atol=1e-9,
        names=_param_name,
        mistakes=[Mistake(_mistake(options), hint) for options, hint in _TRAIN_MISTAKES],
    )
)
