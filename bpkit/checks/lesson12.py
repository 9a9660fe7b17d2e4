"""Checks for lesson 12, regularisation: l2_penalty, l2_penalty_grad, dropout_forward,
dropout_backward, early_stopping_epoch."""

from __future__ import annotations

import copy

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, format_value, register

# -- l2_penalty ---------------------------------------------------------------------------------


def _l2_penalty(weights, lam):
    return float(lam / 2 * sum(np.sum(W**2) for W in weights))


def _l2_cases() -> list[Case]:
    rng = case_rng(1201)
    cases = [
        Case(
            "two weight matrices (4, 3) and (3, 2), lam=0.1", ([rng.normal(size=(4, 3)), rng.normal(size=(3, 2))], 0.1)
        ),
        Case("one matrix (5, 5), lam=1e-3", ([rng.normal(size=(5, 5))], 1e-3)),
        Case(
            "three matrices of a 64-32-16-10 net, lam=0.01",
            ([rng.normal(size=(64, 32)), rng.normal(size=(32, 16)), rng.normal(size=(16, 10))], 0.01),
        ),
        Case("lam=0 (no penalty)", ([rng.normal(size=(2, 3))], 0.0)),
        Case("all-zero weights", ([np.zeros((3, 3)), np.zeros((3, 1))], 0.5)),
        Case("large weights (1e3), lam=2", ([np.full((2, 2), 1e3), -np.ones((1, 3))], 2.0)),
    ]
    return cases


_HINT_LIST_SQUARED = (
    "weights is a LIST of matrices of different shapes, which NumPy cannot turn into one array: square and "
    "sum each matrix on its own, sum(np.sum(W**2) for W in weights)"
)


def _l2_error_hint(error: dict) -> str | None:
    """l2_penalty: np.square / np.sum on the list itself fails on matrices of different shapes; say so."""
    if error["type"] == "ValueError" and "inhomogeneous" in error["message"]:
        return _HINT_LIST_SQUARED
    return None


register(
    Exercise(
        error_hints=_l2_error_hint,
        id="l2_penalty",
        lesson="12",
        points=1,
        description="the L2 penalty lam / 2 * sum of squared weights over all matrices",
        cases=_l2_cases,
        reference=_l2_penalty,
        mistakes=[
            Mistake(
                lambda weights, lam: float(lam * sum(np.sum(W**2) for W in weights)),
                "the factor 1/2 is missing: the penalty is lam / 2 * sum(W**2) (the 1/2 makes its gradient exactly "
                "lam * W)",
            ),
            Mistake(
                lambda weights, lam: float(lam / 2 * np.sum(weights[0] ** 2)),
                "only the first matrix is counted: sum the squares over EVERY matrix in the list",
            ),
            Mistake(
                lambda weights, lam: float(lam / 2 * sum(np.sqrt(np.sum(W**2)) for W in weights)),
                "use the SQUARED norm, sum(W**2), not the norm sqrt(sum(W**2))",
            ),
            Mistake(
                lambda weights, lam: float(lam / 2 * sum(np.mean(W**2) for W in weights)),
                "sum the squares, do not average them: np.sum(W**2), not np.mean(W**2)",
            ),
            Mistake(
                lambda weights, lam: float(lam / 2 * sum(np.sum(np.abs(W)) for W in weights)),
                "that is the L1 penalty (absolute values): L2 squares the weights, sum(W**2)",
            ),
            Mistake(
                lambda weights, lam: float(lam // 2 * sum(np.sum(W**2) for W in weights)),
                "lam // 2 is floor division (0 for any lam below 2): write lam / 2",
            ),
            Mistake(
                lambda weights, lam: float(lam / 2 * sum(np.sum(W) ** 2 for W in weights)),
                "square each weight, then sum: np.sum(W**2), not the square of the sum np.sum(W)**2",
            ),
            Mistake(
                lambda weights, lam: [float(lam / 2 * np.sum(W**2)) for W in weights],
                "return ONE number: add the penalties of all the matrices together, "
                "lam / 2 * sum(np.sum(W**2) for W in weights)",
            ),
            Mistake(
                lambda weights, lam: float(lam / 2 * sum(np.sum(W**2) for W in weights) / len(weights)),
                "sum over the matrices, do not average them: no division by len(weights)",
            ),
            Mistake(lambda weights, lam: float(lam / 2 * np.sum(np.square(weights))), _HINT_LIST_SQUARED),
        ],
    )
)


# -- l2_penalty_grad ----------------------------------------------------------------------------


def _l2_grad(W, lam):
    return lam * W  # d/dW of lam/2 * W^2


def _l2_grad_cases() -> list[Case]:
    rng = case_rng(1202)
    return [
        Case("W (4, 3), lam=0.1", (rng.normal(size=(4, 3)), 0.1)),
        Case("W (1, 7), lam=2.5", (rng.normal(size=(1, 7)), 2.5)),
        Case("W (64, 10), lam=1e-4", (rng.normal(size=(64, 10)), 1e-4)),
        Case("lam=0", (rng.normal(size=(3, 2)), 0.0)),
        Case("zero weights", (np.zeros((2, 2)), 0.3)),
    ]


register(
    Exercise(
        id="l2_penalty_grad",
        lesson="12",
        points=1,
        description="the gradient of the L2 penalty with respect to one weight matrix: lam W",
        cases=_l2_grad_cases,
        reference=_l2_grad,
        mistakes=[
            Mistake(
                lambda W, lam: 2 * lam * W,
                "the 2 from the square cancels the 1/2 of the penalty: d/dW (lam/2 W^2) = lam * W, not 2 lam W",
            ),
            Mistake(lambda W, lam: lam / 2 * W, "differentiate lam/2 * W^2: the exponent 2 comes down, giving lam * W"),
            Mistake(
                lambda W, lam: lam * np.sign(W), "that is the L1 gradient (lam * sign(W)): the L2 gradient is lam * W"
            ),
            Mistake(lambda W, lam: -lam * W, "sign error: the penalty grows with |W|, its gradient is +lam * W"),
            Mistake(lambda W, lam: lam / 2 * W**2, "that is the penalty itself, not its gradient: return lam * W"),
            Mistake(
                lambda W, lam: float(lam / 2 * np.sum(W**2)),
                "that is the penalty (one number), not its gradient: the gradient has one entry per weight, lam * W",
            ),
            Mistake(
                lambda W, lam: lam * W**2,
                "differentiate, do not square: d/dW (lam/2 * W**2) = lam * W, not lam * W**2",
            ),
            Mistake(
                lambda W, lam: float(lam * np.sum(W)),
                "the gradient has one entry per weight, shaped like W: lam * W, not the number lam * np.sum(W)",
            ),
            Mistake(
                lambda W, lam: (1 - lam) * W,
                "(1 - lam) * W is what weight decay leaves of W after a step, not the gradient: return lam * W",
            ),
        ],
    )
)


# -- dropout_forward ----------------------------------------------------------------------------


def _dropout_forward(x, p, rng, train=True):
    if not train:
        return x.copy(), np.ones_like(x)
    keep = rng.random(x.shape) >= p  # each unit survives with probability 1 - p
    mask = keep / (1.0 - p)  # inverted dropout: scale now so test time needs nothing
    return x * mask, mask


def _dropout_cases() -> list[Case]:
    """Each case is a list of calls (kind="calls"); the first two share an rng state, the third has another."""
    rng = case_rng(1203)

    def same_state_then_another(x, p, seed):
        return ((x, p, case_rng(seed)), (x, p, case_rng(seed)), (x, p, case_rng(seed + 100)))

    return [
        Case(
            "x (4, 5), p=0.5, called twice with the same rng state, then with another",
            same_state_then_another(rng.normal(size=(4, 5)), 0.5, 1),
        ),
        Case(
            "x (1, 8), p=0.25 (batch of one), called twice with the same rng state, then with another",
            same_state_then_another(rng.normal(size=(1, 8)), 0.25, 2),
        ),
        Case(
            "large input x (200, 500), p=0.2: the kept fraction must be close to 1 - p",
            ((rng.normal(size=(200, 500)) + 3.0, 0.2, case_rng(3)),),
        ),
        Case("large input x (200, 500), p=0.7", ((rng.normal(size=(200, 500)) - 2.0, 0.7, case_rng(4)),)),
        Case("p=0 (nothing dropped)", ((rng.normal(size=(3, 4)), 0.0, case_rng(5)),)),
        Case("train=False (evaluation)", ((rng.normal(size=(6, 3)), 0.5, case_rng(6)),), {"train": False}),
    ]


_HINT_GLOBAL_RNG = (
    "draw the mask from the `rng` argument (rng.random(x.shape) >= p), not from np.random: "
    "the same rng state must give the same mask, so a run can be repeated"
)
_HINT_RNG_UNUSED = (
    "a different rng state must give a different mask: draw it from the `rng` argument "
    "(rng.random(x.shape) >= p), do not seed a generator of your own inside the function"
)


_HINT_PER_UNIT = (
    "draw one random number per unit, rng.random(x.shape) >= p: a draw per row (or per column) keeps or "
    "drops whole samples (or features) together"
)
_HINT_P_SCALE = "kept units are scaled by 1 / (1 - p), not by p or 1 / p"
_HINT_KEEP_PROB = "p is the probability of DROPPING a unit: keep each one with probability 1 - p"
_HINT_NO_SCALE = (
    "inverted dropout scales the kept units by 1 / (1 - p) so the expected output equals x: the mask "
    "is 0 or 1 / (1 - p)"
)
_HINT_EVAL = "at train=False dropout does nothing: return x unchanged and a mask of ones"
_HINT_OUT = "out must be x * mask, with the same mask you return"
_HINT_PAIR_SWAPPED = "the pair is swapped: return (out, mask), out first"
_HINT_ONE_OVER_P = (
    "the right units are kept (rng.random(x.shape) >= p) but scaled by 1 / p: p is the probability of "
    "DROPPING, so the kept ones are scaled by 1 / (1 - p)"
)


def _compare_dropout(exercise: Exercise, case: Case, received) -> None:
    """Each call as one dropout, then across calls: same rng state, same mask; another state, another mask."""
    if not isinstance(received, list) or len(received) != len(case.args):  # the harness's list of outputs
        exercise.fail(case, "the calls did not all return", hint="return a pair (out, mask) from every call")
    for one, output in zip(case.args, received):
        _compare_one_dropout(exercise, Case(case.label, one, case.kwargs), output)
    if len(received) == 3 and case.kwargs.get("train", True):
        masks = [np.asarray(output[1], dtype=float) for output in received]
        if not np.array_equal(masks[0], masks[1]):
            exercise.fail(
                case,
                "two calls with the same rng state returned different masks",
                expected=masks[0],
                received=masks[1],
                hint=_HINT_GLOBAL_RNG,
            )
        p = case.args[0][1]
        # Two honest masks of independent states agree with probability ((1-p)^2 + p^2)^n: judge only where
        # that is below 1e-6 (the grader draws fresh states every run, so a fluke must be out of reach).
        if ((1 - p) ** 2 + p**2) ** masks[0].size > 1e-6:
            return
        if all(np.unique(mask).size == 1 for mask in masks):
            exercise.fail(
                case,
                "every unit was kept or dropped together",
                received=masks[0],
                hint="draw each unit independently: keep it when rng.random(x.shape) >= p (one draw per unit)",
            )
        if np.array_equal(masks[0], masks[2]):
            exercise.fail(case, "calls with different rng states returned the same mask", hint=_HINT_RNG_UNUSED)


def _compare_one_dropout(exercise: Exercise, case: Case, received) -> None:
    x, p = case.args[0], case.args[1]
    train = case.kwargs.get("train", True)
    problem = _pair_problem(received, x.shape, ("out", "mask"))
    if problem:
        exercise.fail(case, problem, hint=f"return a pair (out, mask), both shaped like x {x.shape}")
    out, mask = (np.asarray(r, dtype=float) for r in received)
    if train and _looks_like_mask(out, p) and not _looks_like_mask(mask, p) and np.allclose(mask, x * out):
        exercise.fail(case, "the first item is a mask, the second is x times it", hint=_HINT_PAIR_SWAPPED)
    if not train:
        if not (np.array_equal(out, x) and np.all(mask == 1.0)):
            exercise.fail(
                case,
                "changed x at evaluation time",
                expected=(x, np.ones_like(x)),
                received=(out, mask),
                hint=_HINT_EVAL,
            )
        return
    scale = 1.0 / (1.0 - p)
    values = np.unique(np.round(mask, 12))
    if not np.all(np.isclose(values, 0.0) | np.isclose(values, scale)):
        kept = values[~np.isclose(values, 0.0)]
        if kept.size and np.allclose(kept, 1.0):
            hint = _HINT_NO_SCALE
        elif kept.size and p > 0 and np.allclose(kept, 1.0 / p):
            # 1 / p is the right scale only if p were the keep probability; unless the units kept are the
            # ones rng.random(x.shape) >= p keeps (the harness called a copy: case.args still has the state)
            drawn = copy.deepcopy(case.args[2]).random(x.shape) >= p
            hint = _HINT_ONE_OVER_P if np.array_equal(mask != 0, drawn) else _HINT_KEEP_PROB
        elif kept.size and np.allclose(kept, p):
            hint = _HINT_P_SCALE
        else:
            hint = f"the kept units must all be scaled by the same factor 1 / (1 - p) = {scale:.6g}"
        exercise.fail(
            case,
            f"mask holds the values {format_value(values[:6])}, expected only 0 and 1 / (1 - p) = {scale:.6g}",
            hint=hint,
        )
    kept_fraction = float(np.mean(mask != 0))
    if x.size >= 10_000 and x.ndim == 2 and 0 < p < 1:
        # One draw per unit: an honest row of 500 (column of 200) units is all kept or all dropped with
        # probability below 0.8**200 = 4e-20. A draw per row or per column makes every one so.
        for axis, whole in ((1, "row (sample)"), (0, "column (feature)")):
            kept = mask != 0
            if np.all(kept.all(axis=axis) | (~kept).all(axis=axis)):
                exercise.fail(case, f"every {whole} was kept or dropped as a whole", hint=_HINT_PER_UNIT)
    if x.size >= 10_000:
        # Binomial(n, 1 - p) / n has std sqrt(p (1 - p) / n) < 0.005 here: 0.02 is over 4 std.
        if abs(kept_fraction - (1 - p)) > 0.02:
            hint = (
                _HINT_KEEP_PROB
                if abs(kept_fraction - p) <= 0.02
                else "draw each unit independently: keep it when rng.random() >= p"
            )
            exercise.fail(case, f"kept {kept_fraction:.3f} of the units, expected about 1 - p = {1 - p:.3f}", hint=hint)
    elif p == 0.0 and kept_fraction != 1.0:
        exercise.fail(case, f"dropped units although p=0 (kept {kept_fraction:.3f})", hint=_HINT_KEEP_PROB)
    if not np.allclose(out, x * mask, rtol=1e-12, atol=1e-12):
        exercise.fail(case, "out is not x * mask", expected=x * mask, received=out, hint=_HINT_OUT)


def _looks_like_mask(values: np.ndarray, p: float) -> bool:
    """Only 0 and 1 / (1 - p), with at least one of them kept: what an inverted-dropout mask holds."""
    kept = values[values != 0]
    return bool(kept.size) and np.allclose(kept, 1.0 / (1.0 - p))


def _pair_problem(received, shape, names) -> str | None:
    if received is None:
        return "returned None (is a `return` missing?)"
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        kind = f"{len(received)} items" if isinstance(received, (tuple, list)) else type(received).__name__
        return f"returned {kind}, expected a pair ({names[0]}, {names[1]})"
    for name, item in zip(names, received):
        if not isinstance(item, np.ndarray) or item.dtype.kind not in "biuf":
            return f"{name} is a {type(item).__name__}, expected an array of numbers"
        if item.shape != shape:
            return f"{name} has shape {item.shape}, expected {shape} (the shape of x)"
        if not np.all(np.isfinite(item)):
            return f"{name} contains NaN or inf"
    return None


def _dropout_scaled_by_p(x, p, rng, train=True):
    if not train:
        return x.copy(), np.ones_like(x)
    mask = (rng.random(x.shape) >= p) * p
    return x * mask, mask


def _dropout_keep_prob(x, p, rng, train=True):
    if not train:
        return x.copy(), np.ones_like(x)
    mask = (rng.random(x.shape) < p) / (1.0 - p)
    return x * mask, mask


def _dropout_unscaled(x, p, rng, train=True):
    if not train:
        return x.copy(), np.ones_like(x)
    mask = (rng.random(x.shape) >= p).astype(float)
    return x * mask, mask


def _dropout_always(x, p, rng, train=True):
    mask = (rng.random(x.shape) >= p) / (1.0 - p)
    return x * mask, mask


def _dropout_global_rng(x, p, rng, train=True):
    if not train:
        return x.copy(), np.ones_like(x)
    mask = (np.random.random(x.shape) >= p) / (1.0 - p)
    return x * mask, mask


def _dropout_own_seed(x, p, rng, train=True):
    return _dropout_forward(x, p, np.random.default_rng(0), train)


def _dropout_per_row(x, p, rng, train=True):
    if not train:
        return x.copy(), np.ones_like(x)
    mask = np.broadcast_to((rng.random((x.shape[0], 1)) >= p) / (1.0 - p), x.shape).copy()
    return x * mask, mask


def _dropout_per_column(x, p, rng, train=True):
    if not train:
        return x.copy(), np.ones_like(x)
    mask = np.broadcast_to((rng.random(x.shape[1:]) >= p) / (1.0 - p), x.shape).copy()
    return x * mask, mask


def _dropout_one_over_p(x, p, rng, train=True):
    if not train:
        return x.copy(), np.ones_like(x)
    mask = (rng.random(x.shape) >= p) / p
    return x * mask, mask


def _dropout_swapped(x, p, rng, train=True):
    out, mask = _dropout_forward(x, p, rng, train)
    return mask, out


def _dropout_out_unmasked(x, p, rng, train=True):
    _, mask = _dropout_forward(x, p, rng, train)
    return x * (mask > 0), mask


register(
    Exercise(
        id="dropout_forward",
        names=("out", "mask"),
        lesson="12",
        points=2,
        description="inverted dropout: drop each unit with probability p, scale the kept ones by 1 / (1 - p)",
        cases=_dropout_cases,
        reference=_dropout_forward,
        compare_answer=_compare_dropout,
        mistakes=[
            Mistake(_dropout_scaled_by_p, _HINT_P_SCALE),
            Mistake(_dropout_keep_prob, _HINT_KEEP_PROB),
            Mistake(_dropout_unscaled, _HINT_NO_SCALE),
            Mistake(_dropout_always, _HINT_EVAL),
            Mistake(_dropout_out_unmasked, _HINT_OUT),
            Mistake(_dropout_global_rng, _HINT_GLOBAL_RNG),
            Mistake(_dropout_own_seed, _HINT_RNG_UNUSED),
            Mistake(_dropout_per_row, _HINT_PER_UNIT),
            Mistake(_dropout_per_column, _HINT_PER_UNIT),
            Mistake(_dropout_one_over_p, _HINT_ONE_OVER_P),
            Mistake(_dropout_swapped, _HINT_PAIR_SWAPPED),
        ],
        kind="calls",
    )
)


# -- dropout_backward ---------------------------------------------------------------------------


def _dropout_backward(dout, mask):
    return dout * mask  # out = x * mask, so dL/dx = dout * mask


def _dropout_backward_cases() -> list[Case]:
    rng = case_rng(1204)
    cases = []
    for shape, p in (((4, 5), 0.5), ((1, 6), 0.2), ((8, 3), 0.9)):
        mask = (rng.random(shape) >= p) / (1 - p)
        cases.append(Case(f"dout {shape}, mask of p={p}", (rng.normal(size=shape), mask)))
    cases.append(Case("mask of ones (train=False)", (rng.normal(size=(3, 3)), np.ones((3, 3)))))
    return cases


register(
    Exercise(
        id="dropout_backward",
        lesson="12",
        points=1,
        description="the backward pass of inverted dropout: dout * mask",
        cases=_dropout_backward_cases,
        reference=_dropout_backward,
        mistakes=[
            Mistake(
                lambda dout, mask: dout * (mask > 0),
                "the mask already holds the 1 / (1 - p) scale and out = x * mask, so the gradient is dout * mask, "
                "scale included",
            ),
            Mistake(lambda dout, mask: dout.copy(), "dropped units pass no gradient back: multiply dout by the mask"),
            Mistake(
                lambda dout, mask: mask.copy(),
                "dout is missing: the upstream gradient is multiplied by the mask, dout * mask",
            ),
            Mistake(
                lambda dout, mask: np.divide(dout, mask, out=np.zeros_like(dout), where=mask != 0),
                "multiply by the mask, do not divide: out = x * mask, so dx = dout * mask",
            ),
            Mistake(
                lambda dout, mask: dout * (mask == 0),
                "the mask is inverted: the gradient flows through the KEPT units (mask != 0) and is 0 at the "
                "dropped ones, dout * mask",
            ),
            Mistake(
                lambda dout, mask: dout @ mask.T,
                "multiply elementwise, dout * mask, not with the matrix product @: each unit is kept or dropped "
                "on its own",
            ),
        ],
    )
)


# -- early_stopping_epoch -----------------------------------------------------------------------


def _early_stopping_epoch(val_losses, patience):
    best, best_epoch, waited = np.inf, 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:  # a strictly lower loss is a new minimum; a tie is not
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if waited == patience:  # patience epochs in a row without a new minimum: stop here
                return best_epoch
    return best_epoch


def _early_stopping_variant(
    extra_wait=0, return_stop=False, never_stop_last=False, ties_improve=False, no_reset=False, against_previous=False
):
    """Build a wrong early stopping (one flag at a time) for the typical-mistake list."""

    def fn(val_losses, patience):
        best, best_epoch, waited, previous = np.inf, 0, 0, np.inf
        for epoch, loss in enumerate(val_losses):
            improved = loss < (previous if against_previous else best) or (ties_improve and loss == best)
            previous = loss
            if improved:
                best, best_epoch, waited = loss, epoch, (waited if no_reset else 0)
            else:
                waited += 1
                if waited == patience + extra_wait:
                    return epoch if return_stop else best_epoch
        return len(val_losses) - 1 if never_stop_last else best_epoch

    return fn


def _early_stopping_wait_against_previous(val_losses, patience):
    """The best epoch tracked right, but the wait restarts at any loss below the previous epoch's."""
    best, best_epoch, waited, previous = np.inf, 0, 0, np.inf
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch = loss, epoch
        if loss < previous:
            waited = 0
        else:
            waited += 1
            if waited == patience:
                return best_epoch
        previous = loss
    return best_epoch


def _early_stopping_counted_from_one(val_losses, patience):
    return _early_stopping_epoch(val_losses, patience) + 1


def _early_stopping_best_loss(val_losses, patience):
    return float(val_losses[_early_stopping_epoch(val_losses, patience)])


def _early_stopping_worst(val_losses, patience):
    """Stops at the right epoch but reports np.argmax of the losses seen so far."""
    for epoch in range(len(val_losses)):
        if epoch - int(np.argmin(val_losses[: epoch + 1])) == patience:
            return int(np.argmax(val_losses[: epoch + 1]))
    return int(np.argmax(val_losses))


def _early_stopping_first_window(val_losses, patience):
    return int(np.argmin(val_losses[: patience + 1]))


def _early_stopping_cases() -> list[Case]:
    return [
        # The counter restarts at every new minimum: a miss, a new best, a miss, then later bests.
        Case(
            "patience=2: a miss, a new best, a miss, then two new bests (the wait restarts at each best)",
            ([1.0, 1.1, 0.9, 1.0, 0.8, 0.7], 2),
        ),
        # A loss below the previous epoch's but above the best is not an improvement.
        Case(
            "patience=2: a loss that beats the previous epoch but not the best is no improvement",
            ([1.0, 0.5, 0.8, 0.7, 0.9, 0.85, 0.95, 0.99], 2),
        ),
        Case(
            "patience=2: a lower loss after the stop must be ignored",
            ([1.0, 0.8, 0.7, 0.75, 0.72, 0.6, 0.65, 0.66, 0.67, 0.3], 2),
        ),
        Case(
            "patience=2: one epoch without improvement is not enough to stop",
            ([1.0, 0.8, 0.85, 0.5, 0.55, 0.6, 0.2], 2),
        ),
        Case("patience=3: stops at epoch 5", ([0.9, 0.6, 0.5, 0.55, 0.52, 0.58, 0.61, 0.3, 0.2], 3)),
        Case("patience=1: the first rise stops training", ([2.0, 1.5, 1.6, 1.0, 0.5], 1)),
        Case("never stops: the loss keeps falling", ([1.0, 0.9, 0.8, 0.7, 0.6], 3)),
        Case("never stops, the best epoch is not the last", ([1.0, 0.7, 0.5, 0.6, 0.55], 3)),
        Case("a tie is not a new minimum", ([1.0, 0.5, 0.6, 0.5, 0.7, 0.5, 0.8, 0.9, 0.2], 2)),
        Case("a single epoch", ([0.42], 5)),
        Case(
            "a long run, patience=5",
            ([3.0, 2.0, 1.5, 1.2, 1.1, 1.05, 1.06, 1.04, 1.07, 1.08, 1.09, 1.1, 1.2, 0.9, 0.8], 5),
        ),
    ]


register(
    Exercise(
        id="early_stopping_epoch",
        lesson="12",
        points=2,
        description="the epoch whose weights early stopping keeps",
        cases=_early_stopping_cases,
        reference=_early_stopping_epoch,
        mistakes=[
            Mistake(
                lambda val_losses, patience: int(np.argmin(val_losses)),
                "training STOPS after `patience` epochs without a new minimum: a lower loss that comes "
                "later is never seen, so it cannot be the answer",
            ),
            Mistake(
                _early_stopping_variant(extra_wait=1),
                "off by one on patience: stop as soon as `patience` epochs in a row brought no new minimum "
                "(patience=2, best at epoch 2: epochs 3 and 4 fail, stop after epoch 4)",
            ),
            Mistake(
                _early_stopping_variant(extra_wait=-1),
                "off by one on patience: wait for `patience` epochs without a new minimum, not patience - 1",
            ),
            Mistake(
                _early_stopping_variant(return_stop=True),
                "return the index of the BEST epoch (whose weights you keep), not the epoch at which training stopped",
            ),
            Mistake(
                _early_stopping_variant(never_stop_last=True),
                "if patience never runs out, return the index of the minimum, not the last epoch",
            ),
            Mistake(
                _early_stopping_variant(no_reset=True),
                "set the count of epochs without improvement back to 0 at every new minimum: `patience` "
                "counts epochs IN A ROW without a new best",
            ),
            Mistake(
                _early_stopping_variant(against_previous=True),
                "compare each loss with the BEST loss so far, not with the previous epoch's: a loss below the "
                "previous one but above the best is no new minimum",
            ),
            Mistake(
                _early_stopping_variant(ties_improve=True),
                "a tie is not a new minimum: use `<`, so an equal loss counts as an epoch without improvement",
            ),
            Mistake(
                _early_stopping_wait_against_previous,
                "the wait restarts only at a new BEST loss: a loss below the previous epoch's but above the best "
                "still counts as an epoch without improvement",
            ),
            Mistake(
                _early_stopping_counted_from_one,
                "epochs are counted from 0: return the index into val_losses (as enumerate gives it), not index + 1",
            ),
            Mistake(_early_stopping_best_loss, "return the INDEX of the best epoch, not its loss value"),
            Mistake(
                _early_stopping_worst,
                "the best epoch has the LOWEST validation loss: np.argmin, not np.argmax",
            ),
            Mistake(
                _early_stopping_first_window,
                "training goes on as long as new minima keep coming: walk through every epoch, counting the epochs "
                "since the last new best, and stop when that count reaches patience; the first patience + 1 epochs "
                "are not enough",
            ),
        ],
    )
)
