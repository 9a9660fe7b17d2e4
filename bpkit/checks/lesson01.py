"""Checks for lesson 01, neurons: weighted_sum, neuron_forward, layer_forward."""

from __future__ import annotations

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, register
from bpkit.checks.inputs import identity, step


def _weighted_sum(x, w, b):
    return float(x @ w + b)


def _weighted_sum_skip_last(x, w, b):
    total = 0.0
    for i in range(len(x) - 1):  # one short: the last input is never added
        total += x[i] * w[i]
    return float(total + b)


def _weighted_sum_cases() -> list[Case]:
    rng = case_rng(101)
    cases = [
        Case(f"random inputs, D={d}", (rng.normal(size=d), rng.normal(size=d), float(rng.normal()))) for d in (1, 3, 10)
    ]
    cases.append(Case("all zeros with a bias", (np.zeros(4), np.zeros(4), 0.5)))
    cases.append(Case("large magnitudes", (rng.normal(size=5) * 1e3, rng.normal(size=5) * 1e3, -2e3)))
    return cases


register(
    Exercise(
        id="weighted_sum",
        lesson="01",
        points=1,
        description="a neuron's weighted sum w.x + b",
        cases=_weighted_sum_cases,
        reference=_weighted_sum,
        mistakes=[
            Mistake(lambda x, w, b: float(x @ w), "the bias is missing: add b after the dot product"),
            Mistake(lambda x, w, b: float(x @ w - b), "sign error: the bias is added, z = w.x + b"),
            Mistake(
                lambda x, w, b: float(np.sum(x) * np.sum(w) + b),
                "multiply x and w element by element, then sum (a dot product), not sum(x) * sum(w)",
            ),
            Mistake(lambda x, w, b: float((x @ w) * b), "the bias is added to the dot product, not multiplied with it"),
            Mistake(
                lambda x, w, b: x * w + b,
                "sum the products: x * w multiplies element by element and leaves D numbers; the weighted sum is "
                "one number, x @ w + b (or np.sum(x * w) + b)",
            ),
            Mistake(
                lambda x, w, b: float(np.sum(x * w + b)),
                "add b once, after the sum: np.sum(x * w) + b; adding it to every product counts it D times",
            ),
            Mistake(_weighted_sum_skip_last, "your loop stops one input early: range(len(x)) visits all D inputs"),
        ],
    )
)


def _neuron_forward(x, w, b, activation):
    return activation(_weighted_sum(x, w, b))


FIXED_ACTIVATION_HINT = (
    "use the activation passed in as an argument: return activation(z); your code applies a function of its "
    "own (np.tanh, a step...) whatever activation the caller gives"
)


def _neuron_tanh_always(x, w, b, activation):
    return np.tanh(_weighted_sum(x, w, b))


def _neuron_step_always(x, w, b, activation):
    z = _weighted_sum(x, w, b)
    return 1.0 if z > 0 else 0.0


def _neuron_activation_per_product(x, w, b, activation):
    return float(np.sum(activation(x * w)) + b)


def _neuron_cases() -> list[Case]:
    rng = case_rng(102)
    cases = [
        Case(f"D={d}, activation={act.__name__}", (rng.normal(size=d), rng.normal(size=d), float(rng.normal()), act))
        for d, act in ((2, np.tanh), (5, identity), (3, step))
    ]
    cases.append(Case("D=1, activation=tanh", (np.array([2.0]), np.array([-0.5]), 0.25, np.tanh)))
    cases.append(
        Case("x = zeros: only the bias counts, activation=tanh", (np.zeros(3), rng.normal(size=3), 0.7, np.tanh))
    )
    return cases


register(
    Exercise(
        id="neuron_forward",
        lesson="01",
        points=1,
        description="one neuron: activation(w.x + b)",
        cases=_neuron_cases,
        reference=_neuron_forward,
        mistakes=[
            Mistake(
                lambda x, w, b, activation: _weighted_sum(x, w, b), "the activation is missing: return activation(z)"
            ),
            Mistake(
                lambda x, w, b, activation: activation(float(x @ w)),
                "the bias is missing: the activation takes z = w.x + b (reuse your weighted_sum(x, w, b))",
            ),
            Mistake(
                lambda x, w, b, activation: activation(float(x @ w)) + b,
                "apply the activation to w.x + b, with the bias inside",
            ),
            Mistake(
                lambda x, w, b, activation: float(activation(x) @ w + b),
                "the activation goes after the weighted sum, not on the inputs",
            ),
            Mistake(_neuron_tanh_always, FIXED_ACTIVATION_HINT),
            Mistake(_neuron_step_always, FIXED_ACTIVATION_HINT),
            Mistake(
                _neuron_activation_per_product,
                "apply the activation once, to the whole weighted sum z = w.x + b, not to each product x_i * w_i",
            ),
            Mistake(
                lambda x, w, b, activation: activation(activation(_weighted_sum(x, w, b))),
                "the activation is applied twice: apply it once, to z = w.x + b",
            ),
        ],
    )
)


def _layer_forward(X, W, b, activation):
    Z = X @ W + b  # (N, D_out)
    return Z, activation(Z)


PAIR_HINT = "return both arrays as a pair: return Z, A (Z = X @ W + b before the activation, A = activation(Z))"
MATMUL_HINT = (
    "the shapes of the matrix product do not fit: X is (N, D_in) and W is (D_in, D_out), so Z = X @ W + b "
    "as they come (X first, no .T), which is (N, D_out)"
)
ELEMENTWISE_HINT = (
    "a shape mismatch in an elementwise operation: the weighted sums of a layer are the matrix product "
    "X @ W (N, D_in) @ (D_in, D_out), not X * W; b of shape (D_out,) then adds to every row"
)


def _layer_z_overwritten(X, W, b, activation):
    Z = X @ W + b
    A = Z  # the same array, not a copy
    A[:] = activation(Z)
    return Z, A


def _layer_first_sample_only(X, W, b, activation):
    Z = (X[0] @ W + b)[None, :]
    return Z, activation(Z)


def _layer_error_hint(error: dict) -> str | None:
    """layer_forward: a matmul or broadcast error names the product the layer needs."""
    if "matmul" in error["message"]:
        return MATMUL_HINT
    if "broadcast" in error["message"]:
        return ELEMENTWISE_HINT
    return None


def _layer_cases() -> list[Case]:
    rng = case_rng(103)
    cases = []
    for n, d_in, d_out, act in ((4, 2, 3, np.tanh), (1, 5, 2, identity), (6, 3, 7, step)):
        cases.append(
            Case(
                f"N={n}, D_in={d_in}, D_out={d_out}, activation={act.__name__}",
                (rng.normal(size=(n, d_in)), rng.normal(size=(d_in, d_out)), rng.normal(size=d_out), act),
            )
        )
    return cases


register(
    Exercise(
        error_hints=_layer_error_hint,
        id="layer_forward",
        names=("Z", "A"),
        lesson="01",
        points=2,
        description="a whole layer on a batch: Z = X @ W + b, A = activation(Z)",
        cases=_layer_cases,
        reference=_layer_forward,
        mistakes=[
            Mistake(lambda X, W, b, activation: (X @ W, activation(X @ W)), "the bias b is missing from Z"),
            Mistake(lambda X, W, b, activation: (X @ W + b, X @ W + b), "A must be activation(Z), not Z itself"),
            Mistake(
                lambda X, W, b, activation: (activation(X @ W + b), X @ W + b), "Z and A are swapped: return (Z, A)"
            ),
            Mistake(lambda X, W, b, activation: activation(X @ W + b), PAIR_HINT),
            Mistake(
                _layer_z_overwritten,
                "Z was overwritten by the activation: after A = Z both names are one array, so A[:] = ... changes "
                "Z too; make A a new array, A = activation(Z)",
            ),
            Mistake(
                lambda X, W, b, activation: (X @ W + np.sum(b), activation(X @ W + np.sum(b))),
                "b holds one bias per neuron: add b itself, X @ W + b (it broadcasts over the rows), not np.sum(b)",
            ),
            Mistake(
                _layer_first_sample_only,
                "use the whole batch: X @ W + b works on all N rows of X at once; X[0] is only the first sample",
            ),
        ],
        structure_hint=PAIR_HINT,
    )
)
