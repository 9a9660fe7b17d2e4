"""Checks for lesson 07, gradient descent: gd_step, minibatches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpkit.checks import _harness
from bpkit.checks._core import Case, Exercise, Mistake, case_rng, register

# -- gd_step ------------------------------------------------------------------------------------


def _gd_step(w, grad, lr):
    return w - lr * grad  # step against the gradient


def _gd_step_cases() -> list[Case]:
    rng = case_rng(701)
    cases = [
        Case("a vector of 3 weights, lr=0.1", (rng.normal(size=3), rng.normal(size=3), 0.1)),
        Case("a (4, 2) weight matrix, lr=0.01", (rng.normal(size=(4, 2)), rng.normal(size=(4, 2)), 0.01)),
        Case("a single weight, lr=0.5", (rng.normal(size=1), rng.normal(size=1), 0.5)),
        Case("zero gradient (a minimum): nothing moves", (rng.normal(size=5), np.zeros(5), 0.1)),
        Case("lr=0: nothing moves", (rng.normal(size=(2, 3)), rng.normal(size=(2, 3)), 0.0)),
        Case("large gradients, lr=1e-3", (rng.normal(size=(3, 5)), 1e3 * rng.normal(size=(3, 5)), 1e-3)),
        # The lesson's batch_gd calls gd_step(b, db, lr) with a float bias b = 0.0: a plain float must work.
        Case("a float weight (the bias: gd_step(b, db, lr) with b = 0.0)", (0.0, float(rng.normal()), 0.1)),
        Case("a float weight and gradient, lr=0.5", (float(rng.normal()), float(rng.normal()), 0.5)),
    ]
    return cases


SCALAR_HINT = (
    "w may be a plain float (the lesson calls gd_step(b, db, lr) with the bias b = 0.0), which has no "
    ".copy() and cannot be changed in place: return w - lr * grad, a new value for floats and arrays alike"
)


def _gd_step_error_hint(error: dict) -> str | None:
    """gd_step: an answer that only works on arrays is told that the lesson passes floats too."""
    if error["type"] in ("AttributeError", "TypeError") and "'float'" in error["message"]:
        return SCALAR_HINT
    return None


def _gd_step_via_copy(w, grad, lr):
    w_new = w.copy()  # fails for a float w
    w_new -= lr * grad
    return w_new


def _gd_step_normalised(w, grad, lr):
    norm = np.linalg.norm(grad)
    return w - lr * grad / norm if norm > 0 else w  # a unit-length step direction


register(
    Exercise(
        error_hints=_gd_step_error_hint,
        id="gd_step",
        lesson="07",
        points=1,
        description="one gradient-descent step: w - lr * grad, without modifying w",
        cases=_gd_step_cases,
        reference=_gd_step,
        mistakes=[
            Mistake(_gd_step_via_copy, SCALAR_HINT),
            Mistake(
                lambda w, grad, lr: w + lr * grad,
                "sign error: step *against* the gradient, w - lr * grad (w + lr * grad climbs uphill)",
            ),
            Mistake(
                lambda w, grad, lr: w - grad,
                "the learning rate is missing: scale the gradient by lr before subtracting",
            ),
            Mistake(lambda w, grad, lr: w - grad / lr, "multiply the gradient by lr, do not divide by it"),
            Mistake(
                lambda w, grad, lr: -lr * grad, "return the new weights w - lr * grad, not only the step -lr * grad"
            ),
            Mistake(
                lambda w, grad, lr: w - lr * w, "the step uses the gradient, w - lr * grad, not the weights themselves"
            ),
            Mistake(
                lambda w, grad, lr: lr * grad,
                "return the new weights, w - lr * grad: lr * grad is only the step, and it is subtracted from w",
            ),
            Mistake(
                lambda w, grad, lr: w - lr * np.sign(grad),
                "step by lr * grad itself, not by its sign: the size of the gradient sets the size of the step",
            ),
            Mistake(
                _gd_step_normalised,
                "do not normalise the gradient to length 1: the step is lr * grad, so a steeper slope takes a "
                "larger step",
            ),
        ],
    )
)


# -- minibatches ---------------------------------------------------------------------------------

HINT_NOT_SHUFFLED = (
    "the samples come out in their original order: shuffle first, e.g. idx = rng.permutation(N), "
    "then slice idx into batches"
)
HINT_SEPARATE = (
    "rows of X and y are no longer paired: X and y were shuffled separately. Draw ONE permutation "
    "idx = rng.permutation(N) and use it for both: X[idx], y[idx]"
)
HINT_DROP_LAST = (
    "the last, smaller batch is missing: when N is not a multiple of batch_size, still yield the "
    "leftover samples (range(0, N, batch_size) with slices [i:i + batch_size] does this)"
)
HINT_SHORT_SLICE = (
    "every batch is one sample short, so some samples are never visited: slice idx[i:i + batch_size] "
    "(the end of a slice is already excluded; no - 1)"
)
HINT_REPEAT = (
    "some samples appear twice and others never: sample without replacement, i.e. shuffle a "
    "permutation (rng.permutation(N)), not rng.integers or rng.choice(N, N) with replacement"
)
HINT_OVERLAP = (
    "consecutive batches overlap: a batch holds batch_size samples, idx[start:start + batch_size] (the slice end "
    "is excluded, so no + 1); with a longer slice the last samples of a batch come again in the next"
)
HINT_FIXED_SEED = (
    "the order does not come from the rng you were given: do not create a new generator with a fixed "
    "seed inside the function (np.random.default_rng(0)), shuffle with the `rng` argument"
)
HINT_GLOBAL = (
    "the same rng seed gave two different orders: the shuffle does not come from the `rng` argument "
    "(np.random.permutation / np.random.shuffle use NumPy's hidden global generator); call rng.permutation(N)"
)
HINT_BLOCKS = (
    "each batch holds neighbouring samples, only the order of the batches is shuffled: shuffle the "
    "samples themselves (a permutation of all N indices), then cut that into batches"
)
HINT_BATCH_SIZE = (
    "wrong batch sizes: every batch holds batch_size samples except possibly the last, smaller one "
    "(batch_size is the number of samples per batch, not the number of batches)"
)


HINT_SHUFFLED_IN_PLACE = (
    "X and y were both reordered in place (rng.shuffle(X) does that), one after the other, so the caller's "
    "arrays changed and the rows of X no longer pair with their targets in y: leave X and y as they are, draw ONE "
    "permutation idx = rng.permutation(N) and yield X[idx[i:i + batch_size]], y[idx[i:i + batch_size]]"
)


@dataclass
class _BatchCase(Case):
    """A minibatches case that remembers its rng seed and shares the orders seen with its siblings."""

    seed: int = 0
    seen: dict | None = None  # seed -> orders observed in this check run, shared by sibling cases


def _ids_data(n: int, d: int, rng: np.random.Generator, y_kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a unique first column (so each row can be identified) and matching targets."""
    X = rng.normal(size=(n, d))  # (N, D)
    X[:, 0] = rng.permutation(n) + rng.uniform(0.1, 0.9, size=n)  # unique per row
    if y_kind == "labels":
        y = rng.integers(0, 3, size=n)  # (N,) class labels: repeats are allowed
    elif y_kind == "2d":
        y = rng.normal(size=(n, 2))  # (N, 2) two regression targets
    else:
        y = rng.normal(size=n)  # (N,) one regression target
    return X, y


def _minibatches_cases() -> list[Case]:
    data_rng = case_rng(702)
    seen: dict = {}
    X, y = _ids_data(10, 3, data_rng, "values")

    def case(label, X, y, batch_size, seed, seen=None):
        return _BatchCase(label, (X, y, batch_size, case_rng(seed)), seed=seed, seen=seen)

    # Three siblings on the same data: seeds 7, 8, 7 must give orders A, B != A, A again.
    cases = [
        case("N=10, batch_size=3 (last batch smaller), rng seed 7", X, y, 3, 7, seen),
        case("the same data with rng seed 8", X, y, 3, 8, seen),
        case("the same data with rng seed 7 again", X, y, 3, 7, seen),
    ]
    X, y = _ids_data(100, 2, data_rng, "labels")
    cases.append(case("N=100, batch_size=10 (exact), integer labels", X, y, 10, 11))
    X, y = _ids_data(23, 4, data_rng, "2d")
    cases.append(case("N=23, batch_size=5, y of shape (23, 2)", X, y, 5, 12))
    X, y = _ids_data(12, 1, data_rng, "values")
    cases.append(case("N=12, batch_size=1 (stochastic gradient descent)", X, y, 1, 13))
    X, y = _ids_data(15, 2, data_rng, "values")
    cases.append(case("N=15, batch_size=64 (one batch holds everything)", X, y, 64, 14))
    return cases


def _fixed_seed_orders(n: int) -> list[np.ndarray]:
    """Orders that common fixed seeds produce, to recognise a generator created inside the function."""
    orders = []
    for seed in (0, 1, 42, 123, 1234):
        orders.append(np.random.default_rng(seed).permutation(n))
        orders.append(np.random.default_rng(seed).choice(n, size=n, replace=False))
    return orders


def _compare_minibatches(exercise: Exercise, case: Case, received) -> None:
    X, y, batch_size, _ = case.args
    n = len(X)
    if not isinstance(received, list):
        exercise.fail(
            case,
            f"returned {type(received).__name__}, expected something to iterate over",
            hint="write a generator: `yield Xb, yb` inside a loop over the batches",
        )
    if not received:
        exercise.fail(
            case,
            "yielded no batches at all",
            hint="is the `yield` inside the loop, and does the loop run (range(0, N, batch_size))?",
        )
    row_of = {float(value): i for i, value in enumerate(X[:, 0])}
    order = []
    sizes = []
    for k, item in enumerate(received):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            exercise.fail(
                case,
                f"batch {k + 1} is a {type(item).__name__}, not a pair (Xb, yb)",
                hint="yield both parts of a batch together: `yield X[batch], y[batch]`",
            )
        Xb, yb = (np.asarray(part) if isinstance(part, (list, tuple)) else part for part in item)
        if not isinstance(Xb, np.ndarray) or not isinstance(yb, np.ndarray):
            exercise.fail(
                case,
                f"batch {k + 1} holds {type(Xb).__name__} and {type(yb).__name__}, expected two arrays",
                hint="index the arrays with an index array: `X[idx[i:i + batch_size]]`",
            )
        if Xb.ndim != 2 or Xb.shape[1] != X.shape[1]:
            exercise.fail(
                case,
                f"Xb of batch {k + 1} has shape {Xb.shape}, expected (batch, {X.shape[1]})",
                hint="keep whole rows of X: X[idx] selects rows and keeps every column",
            )
        if yb.shape != (len(Xb),) + y.shape[1:]:
            exercise.fail(
                case,
                f"batch {k + 1}: Xb has {len(Xb)} rows but yb has shape {yb.shape}",
                hint="Xb and yb must hold the same samples: index both with the same indices",
            )
        rows = []
        for j, value in enumerate(Xb[:, 0]):
            i = row_of.get(float(value))
            if i is None or not np.array_equal(Xb[j], X[i]):
                exercise.fail(
                    case,
                    f"batch {k + 1} contains a row that is not a row of X",
                    hint="only select rows of X (X[idx]); do not change or rebuild their values",
                )
            rows.append(i)
        if not np.array_equal(yb, y[rows]):
            exercise.fail(case, f"in batch {k + 1} the targets yb do not belong to the rows Xb", hint=HINT_SEPARATE)
        order.extend(rows)
        sizes.append(len(Xb))
    order = np.array(order)
    counts = np.bincount(order, minlength=n)
    if np.any(counts > 1):
        # Every sample there and batches longer than batch_size: the batches overlap (a slice end one too far),
        # not a draw with replacement (which leaves some samples out).
        overlap = np.all(counts > 0) and max(sizes) > batch_size
        exercise.fail(
            case,
            f"{int(np.sum(counts > 1))} sample(s) were yielded more than once in one pass",
            hint=HINT_OVERLAP if overlap else HINT_REPEAT,
        )
    if np.any(counts == 0):
        missing = int(np.sum(counts == 0))
        if missing == n % batch_size and missing < batch_size:
            hint = HINT_DROP_LAST
        elif sizes == [min(batch_size - 1, n - start) for start in range(0, n, batch_size)]:
            hint = HINT_SHORT_SLICE
        else:  # nothing came out twice: say what is known, no guess at the cause
            hint = (
                "every sample must come out exactly once per pass: yield idx[i:i + batch_size] for i in "
                "range(0, N, batch_size) over one permutation idx"
            )
        exercise.fail(case, f"{missing} of the {n} samples never came out", hint=hint)
    n_full, rest = divmod(n, batch_size)
    expected_sizes = [batch_size] * n_full + ([rest] if rest else [])
    if sizes != expected_sizes:
        exercise.fail(
            case, f"batch sizes {_sizes_text(sizes)}, expected {_sizes_text(expected_sizes)}", hint=HINT_BATCH_SIZE
        )
    # Siblings of this case (same data, other seeds) were observed in the same check run. First: an order
    # that is not the rng's says so whatever shape it has (a global shuffle can happen to look like blocks).
    seen = getattr(case, "seen", None)
    if seen is not None:
        for other_seed, orders in seen.items():
            for other in orders:
                if other_seed == case.seed and not np.array_equal(other, order):
                    exercise.fail(case, "two calls with the same rng seed gave different orders", hint=HINT_GLOBAL)
                if other_seed != case.seed and np.array_equal(other, order):
                    exercise.fail(
                        case,
                        f"rng seeds {other_seed} and {case.seed} gave exactly the same order",
                        hint=HINT_FIXED_SEED,
                    )
        seen.setdefault(case.seed, []).append(order)
    if n > 1 and np.array_equal(order, np.arange(n)):
        exercise.fail(case, "the batches come in the original order of X", hint=HINT_NOT_SHUFFLED)
    if (
        n > 2 * batch_size
        and batch_size > 1
        and all(_consecutive(order[s : s + batch_size]) for s in range(0, n, batch_size))
    ):
        exercise.fail(case, "every batch is a block of consecutive samples of X", hint=HINT_BLOCKS)
    if any(np.array_equal(order, fixed) for fixed in _fixed_seed_orders(n)):
        exercise.fail(
            case, "the order is the one a freshly seeded generator gives, not the given rng's", hint=HINT_FIXED_SEED
        )


def _unpaired(case: Case, received) -> bool:
    """Do the yielded batches hold rows of X with targets that are not theirs (judged by the case's own X, y)?"""
    X, y = case.args[0], case.args[1]
    row_of = {float(value): i for i, value in enumerate(X[:, 0])}
    if not isinstance(received, list):
        return False
    for item in received:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            return False
        Xb, yb = (np.asarray(part) for part in item)
        if Xb.ndim != 2 or Xb.shape[1:] != X.shape[1:] or yb.shape != (len(Xb),) + y.shape[1:]:
            return False
        rows = [row_of.get(float(value)) for value in Xb[:, 0]]
        if None in rows or not np.array_equal(Xb, X[rows]):
            return False
        if not np.array_equal(yb, y[rows]):
            return True
    return False


class _MinibatchesExercise(Exercise):
    """minibatches: X and y both shuffled in place, separately, are told both faults at once."""

    def _verdict(self, index: int, observation: dict, cases: list[Case]) -> None:
        if "output" in observation and not observation.get("unwatched"):
            changed = self.changed_args(index, observation, cases) or []
            case = cases[index]
            if 0 in changed and 1 in changed and _unpaired(case, _harness.decode(observation["output"])):
                self.fail(
                    case,
                    "changed its input (argument 1, argument 2) in place, and the targets yb no longer belong to "
                    "the rows Xb",
                    hint=HINT_SHUFFLED_IN_PLACE,
                )
        super()._verdict(index, observation, cases)


def _mb_shuffled_in_place(X, y, batch_size, rng):
    rng.shuffle(X)  # reorders the caller's arrays, each with its own permutation
    rng.shuffle(y)
    for start in range(0, len(X), batch_size):
        yield X[start : start + batch_size], y[start : start + batch_size]


def _consecutive(rows: np.ndarray) -> bool:
    """True when the row indices form one block like 4, 5, 6 (in any order)."""
    return bool(np.array_equal(np.sort(rows), np.arange(rows.min(), rows.min() + len(rows))))


def _sizes_text(sizes: list[int]) -> str:
    return (
        "[" + ", ".join(str(s) for s in sizes[:8]) + (", ..." if len(sizes) > 8 else "") + f"] ({len(sizes)} batches)"
    )


def _minibatches(X, y, batch_size, rng):
    idx = rng.permutation(len(X))  # one permutation keeps rows of X and y paired
    for start in range(0, len(X), batch_size):
        batch = idx[start : start + batch_size]  # the last batch may be smaller
        yield X[batch], y[batch]


def _mb_not_shuffled(X, y, batch_size, rng):
    for start in range(0, len(X), batch_size):
        yield X[start : start + batch_size], y[start : start + batch_size]


def _mb_separate(X, y, batch_size, rng):
    Xs, ys = rng.permutation(X), rng.permutation(y)
    for start in range(0, len(X), batch_size):
        yield Xs[start : start + batch_size], ys[start : start + batch_size]


def _mb_drop_last(X, y, batch_size, rng):
    idx = rng.permutation(len(X))
    for start in range(0, len(X) - batch_size + 1, batch_size):
        batch = idx[start : start + batch_size]
        yield X[batch], y[batch]


def _mb_drop_one_per_batch(X, y, batch_size, rng):
    idx = rng.permutation(len(X))
    for start in range(0, len(X), batch_size):
        batch = idx[start : start + batch_size - 1]  # an off-by-one slice end: one sample short per batch
        yield X[batch], y[batch]


def _mb_repeat(X, y, batch_size, rng):
    idx = rng.integers(0, len(X), size=len(X))
    for start in range(0, len(X), batch_size):
        batch = idx[start : start + batch_size]
        yield X[batch], y[batch]


def _mb_overlap(X, y, batch_size, rng):
    idx = rng.permutation(len(X))
    for start in range(0, len(X), batch_size):
        batch = idx[start : start + batch_size + 1]  # the slice end is excluded already: + 1 overlaps
        yield X[batch], y[batch]


def _mb_fixed_seed(X, y, batch_size, rng):
    idx = np.random.default_rng(0).permutation(len(X))
    for start in range(0, len(X), batch_size):
        batch = idx[start : start + batch_size]
        yield X[batch], y[batch]


def _mb_global(X, y, batch_size, rng):
    idx = np.random.permutation(len(X))
    for start in range(0, len(X), batch_size):
        batch = idx[start : start + batch_size]
        yield X[batch], y[batch]


def _mb_blocks(X, y, batch_size, rng):
    starts = rng.permutation(np.arange(0, len(X), batch_size))
    for start in starts:
        yield X[start : start + batch_size], y[start : start + batch_size]


def _mb_n_batches(X, y, batch_size, rng):
    idx = rng.permutation(len(X))
    for batch in np.array_split(idx, batch_size):  # batch_size batches instead of batches of batch_size
        yield X[batch], y[batch]


register(
    _MinibatchesExercise(
        id="minibatches",
        lesson="07",
        points=2,
        description="a generator of shuffled (Xb, yb) mini-batches covering every sample once",
        cases=_minibatches_cases,
        reference=_minibatches,
        kind="iterate",
        compare_answer=_compare_minibatches,
        mistakes=[
            Mistake(_mb_not_shuffled, HINT_NOT_SHUFFLED),
            Mistake(_mb_separate, HINT_SEPARATE),
            Mistake(_mb_drop_last, HINT_DROP_LAST),
            Mistake(_mb_repeat, HINT_REPEAT),
            Mistake(_mb_overlap, HINT_OVERLAP),
            Mistake(_mb_drop_one_per_batch, HINT_SHORT_SLICE),
            Mistake(_mb_fixed_seed, HINT_FIXED_SEED),
            Mistake(_mb_global, HINT_GLOBAL),
            Mistake(_mb_blocks, HINT_BLOCKS),
            Mistake(_mb_n_batches, HINT_BATCH_SIZE),
            Mistake(_mb_shuffled_in_place, HINT_SHUFFLED_IN_PLACE),
        ],
    )
)
