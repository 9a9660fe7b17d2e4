"""Checks for lesson 03, networks: init_mlp and mlp_forward.

init_mlp is random, so its check cannot compare with one fixed answer. It checks, in order:
1. structure: one (W, b) pair per layer, W of shape (sizes[i], sizes[i+1]), b zeros of shape (sizes[i+1],);
2. reproducibility: the weights are the draw that the given rng produces (the harness passes a copy of
   the case's rng, so the same seed must give the same network), layer by layer as rng.normal(0, std,
   (d_in, d_out)) or, equally fine, the transpose of a (d_out, d_in) draw;
3. otherwise, which typical mistake it matches, or what the statistics of the large matrices say
   (mean 0, standard deviation sqrt(1/fan_in), bell-shaped rather than uniform).
"""

from __future__ import annotations

import copy

import numpy as np

from bpkit.checks._core import Case, Exercise, Mistake, case_rng, compare, register
from bpkit.checks.inputs import relu

# -- init_mlp ------------------------------------------------------------------------------------

TRANSPOSED_HINT = (
    "W is transposed: a layer from d_in to d_out units has W of shape (d_in, d_out), so that X @ W works "
    "for X of shape (N, d_in)"
)
BIAS_HINT = "the biases start at exactly zero: b = np.zeros(d_out); only W is random"
BIAS_SHAPE_HINT = "b is a flat vector with one entry per output unit: np.zeros(d_out), shape (d_out,)"
HE_HINT = "that is He initialisation, N(0, 2/fan_in) (lesson 09); here the variance is 1/fan_in: std = sqrt(1/d_in)"
XAVIER_HINT = "that is Xavier initialisation, N(0, 2/(fan_in + fan_out)) (lesson 09); here std = sqrt(1/d_in)"
FAN_OUT_HINT = (
    "the spread depends on the number of inputs of the layer (fan_in = d_in), not of outputs: std = sqrt(1/d_in)"
)
STD1_HINT = (
    "a standard normal (std 1) is far too wide: scale it by sqrt(1/d_in), e.g. rng.normal(0.0, np.sqrt(1 / "
    "d_in), size=(d_in, d_out))"
)
VARIANCE_HINT = "1/d_in is the variance; rng.normal takes the standard deviation, sqrt(1/d_in)"
UNIFORM_01_HINT = (
    "rng.random draws from [0, 1), which is not centred at 0: use rng.normal(0.0, np.sqrt(1 / d_in), "
    "size=(d_in, d_out))"
)
UNIFORM_HINT = (
    "the weights look uniformly spread; the exercise asks for a normal (Gaussian) draw: rng.normal(0.0, std, size)"
)
RNG_HINT = (
    "your weights look right but are not the draw the given rng produces: use rng.normal(...) of the rng argument "
    "(not np.random.randn or a new default_rng), layer by layer, so the same seed always builds the same network"
)


def _layers(sizes, rng, draw_W, draw_b=None):
    """Build [(W, b), ...] with W = draw_W(rng, d_in, d_out) and zero (or draw_b) biases."""
    params = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        W = draw_W(rng, d_in, d_out)
        b = np.zeros(d_out) if draw_b is None else draw_b(rng, d_in, d_out)
        params.append((W, b))
    return params


def _init_mlp(sizes, rng):
    # Var(W) = 1/fan_in keeps the variance of X @ W close to that of X.
    return _layers(sizes, rng, lambda rng, d_in, d_out: rng.normal(0.0, np.sqrt(1.0 / d_in), size=(d_in, d_out)))


def _init_mlp_transposed_draw(sizes, rng):
    return _layers(sizes, rng, lambda rng, d_in, d_out: rng.normal(0.0, np.sqrt(1.0 / d_in), size=(d_out, d_in)).T)


def _init_mlp_cases() -> list[Case]:
    # The large layers come first: a wrong spread is then diagnosed from their statistics.
    return [
        Case("sizes [784, 100, 10], seed 0", ([784, 100, 10], case_rng(0))),
        Case("sizes [2, 1000], seed 1", ([2, 1000], case_rng(1))),
        Case("sizes [1000, 5], seed 2", ([1000, 5], case_rng(2))),
        Case("sizes [64, 32, 16, 10], seed 3", ([64, 32, 16, 10], case_rng(3))),
        Case("sizes [3, 2], seed 4 (too small for statistics: judged by reproducibility)", ([3, 2], case_rng(4))),
    ]


def _kurtosis(x: np.ndarray) -> float:
    """E[(x - mean)^4] / std^4: 3 for a normal distribution, 1.8 for a uniform one."""
    centred = x - x.mean()
    return float(np.mean(centred**4) / np.mean(centred**2) ** 2)


def _spread_hint(std: float, d_in: int, d_out: int, tol: float) -> str | None:
    """Name the typical standard deviation that `std` matches, if any."""
    candidates = [
        (np.sqrt(2.0 / d_in), HE_HINT),
        (np.sqrt(2.0 / (d_in + d_out)), XAVIER_HINT),
        (np.sqrt(1.0 / d_out), FAN_OUT_HINT),
        (1.0, STD1_HINT),
        (1.0 / d_in, VARIANCE_HINT),
    ]
    for value, hint in candidates:
        if abs(std / value - 1.0) < tol:
            return hint
    return None


def _compare_init_mlp(exercise: Exercise, case: Case, received) -> None:
    sizes, rng = case.args
    n_layers = len(sizes) - 1
    # 1. structure
    if received is None:
        exercise.fail(case, "returned None (is a `return` missing?)", hint="return the list of (W, b) pairs")
    if not isinstance(received, (list, tuple)):
        exercise.fail(
            case,
            f"returned {type(received).__name__}, expected a list of {n_layers} (W, b) pairs",
            hint="start with params = [], append one (W, b) tuple per layer, return params",
        )
    if len(received) != n_layers:
        exercise.fail(
            case,
            f"returned {len(received)} layers, expected {n_layers}",
            hint="one (W, b) per pair of neighbouring sizes: loop over zip(sizes[:-1], sizes[1:])",
        )
    for k, item in enumerate(received):
        d_in, d_out = sizes[k], sizes[k + 1]
        where = f"layer {k + 1} ({d_in} -> {d_out})"
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            exercise.fail(
                case,
                f"{where} is {type(item).__name__}, expected a pair (W, b)",
                hint="append the tuple (W, b) for each layer",
            )
        W, b = item
        if not isinstance(W, np.ndarray) or W.ndim != 2:
            exercise.fail(
                case, f"{where}: W is not a 2-D array", hint=f"W = rng.normal(0.0, std, size=({d_in}, {d_out}))"
            )
        if W.shape != (d_in, d_out):
            hint = TRANSPOSED_HINT if W.shape == (d_out, d_in) else "W has one row per input and one column per output"
            exercise.fail(case, f"{where}: W has shape {W.shape}, expected {(d_in, d_out)}", hint=hint)
        if not isinstance(b, np.ndarray) or b.shape != (d_out,):
            shape = b.shape if isinstance(b, np.ndarray) else type(b).__name__
            exercise.fail(case, f"{where}: b is {shape}, expected an array of shape {(d_out,)}", hint=BIAS_SHAPE_HINT)
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            exercise.fail(case, f"{where}: contains NaN or inf", hint="draw W with rng.normal and start b at zeros")
        if np.any(b != 0):
            exercise.fail(case, f"{where}: b is not all zeros", received=b, hint=BIAS_HINT)
    # 2. reproducibility: the same rng state must give the same weights
    for draw in (_init_mlp, _init_mlp_transposed_draw):
        if compare(draw(list(sizes), copy.deepcopy(rng)), received, exercise.rtol, exercise.atol) is None:
            return
    # 3. what went wrong: a typical mistake, else the statistics of the large matrices
    problem = _first_difference(received, sizes)
    for mistake in exercise.mistakes:
        wrong = mistake.fn(list(sizes), copy.deepcopy(rng))
        if compare(wrong, received, exercise.rtol, exercise.atol) is None:
            exercise.fail(case, problem, hint=mistake.hint)
    for k, (W, _b) in enumerate(received):
        d_in, d_out = sizes[k], sizes[k + 1]
        n = W.size
        if n < 1000:  # too few entries for a reliable verdict on the spread
            continue
        target = np.sqrt(1.0 / d_in)
        tol = 6.0 / np.sqrt(2.0 * n)  # six standard errors of a sample standard deviation
        mean, std = float(W.mean()), float(W.std())
        if abs(mean) > 6.0 * target / np.sqrt(n):
            exercise.fail(
                case,
                problem,
                hint=UNIFORM_01_HINT
                if mean > 0 and W.min() >= 0
                else "the weights must be centred at 0: rng.normal(0.0, std, size)",
            )
        if _kurtosis(W) < 2.4:  # before the spread: rescaling a uniform draw would not make it normal
            exercise.fail(case, problem, hint=UNIFORM_HINT)
        if abs(std / target - 1.0) > tol:
            hint = _spread_hint(std, d_in, d_out, tol) or f"the standard deviation must be sqrt(1/d_in) = {target:.4g}"
            exercise.fail(case, problem, hint=hint)
    exercise.fail(case, problem, hint=RNG_HINT)


ORDER_HINT = (
    "draw the layers in order, the first layer first: the rng gives different numbers in a different order, "
    "so loop from the input layer to the output and append each (W, b) as you go"
)


def _init_mlp_last_first(sizes, rng):
    params = []
    for i in reversed(range(len(sizes) - 1)):
        W = rng.normal(0.0, np.sqrt(1.0 / sizes[i]), size=(sizes[i], sizes[i + 1]))
        params.insert(0, (W, np.zeros(sizes[i + 1])))
    return params


def _first_difference(received, sizes) -> str:
    """Describe the spread of the first layer's weights next to the N(0, 1/d_in) it should have."""
    W, d_in = received[0][0], sizes[0]
    return (
        f"wrong weights: layer 1 W has mean {float(W.mean()):.3g} and standard deviation {float(W.std()):.3g}; "
        f"N(0, 1/{d_in}) has mean 0 and standard deviation {np.sqrt(1 / d_in):.3g}"
    )


register(
    Exercise(
        id="init_mlp",
        lesson="03",
        points=2,
        description="the parameters of an MLP: W ~ N(0, 1/fan_in) of shape (sizes[i], sizes[i+1]), b = 0",
        cases=_init_mlp_cases,
        reference=_init_mlp,
        compare_answer=_compare_init_mlp,
        mistakes=[
            Mistake(
                lambda sizes, rng: _layers(sizes, rng, lambda r, i, o: r.normal(0.0, np.sqrt(1.0 / i), size=(o, i))),
                TRANSPOSED_HINT,
            ),
            Mistake(
                lambda sizes, rng: _layers(
                    sizes,
                    rng,
                    lambda r, i, o: r.normal(0.0, np.sqrt(1.0 / i), size=(i, o)),
                    lambda r, i, o: r.normal(0.0, np.sqrt(1.0 / i), size=o),
                ),
                BIAS_HINT,
            ),
            Mistake(lambda sizes, rng: [(W, b.reshape(1, -1)) for W, b in _init_mlp(sizes, rng)], BIAS_SHAPE_HINT),
            Mistake(
                lambda sizes, rng: _layers(sizes, rng, lambda r, i, o: r.normal(0.0, np.sqrt(2.0 / i), size=(i, o))),
                HE_HINT,
            ),
            Mistake(
                lambda sizes, rng: _layers(
                    sizes, rng, lambda r, i, o: r.normal(0.0, np.sqrt(2.0 / (i + o)), size=(i, o))
                ),
                XAVIER_HINT,
            ),
            Mistake(
                lambda sizes, rng: _layers(sizes, rng, lambda r, i, o: r.normal(0.0, np.sqrt(1.0 / o), size=(i, o))),
                FAN_OUT_HINT,
            ),
            Mistake(lambda sizes, rng: _layers(sizes, rng, lambda r, i, o: r.normal(0.0, 1.0, size=(i, o))), STD1_HINT),
            Mistake(
                lambda sizes, rng: _layers(sizes, rng, lambda r, i, o: r.normal(0.0, 1.0 / i, size=(i, o))),
                VARIANCE_HINT,
            ),
            Mistake(lambda sizes, rng: _layers(sizes, rng, lambda r, i, o: r.random((i, o))), UNIFORM_01_HINT),
            Mistake(
                lambda sizes, rng: _layers(
                    sizes, rng, lambda r, i, o: r.uniform(-np.sqrt(3.0 / i), np.sqrt(3.0 / i), size=(i, o))
                ),
                UNIFORM_HINT,
            ),
            Mistake(lambda sizes, rng: _init_mlp(sizes, np.random.default_rng(0)), RNG_HINT),
            Mistake(_init_mlp_last_first, ORDER_HINT),
        ],
    )
)


# -- mlp_forward ---------------------------------------------------------------------------------


def _mlp_forward(X, params, activation):
    a = X  # (N, D_0)
    for k, (W, b) in enumerate(params):
        z = a @ W + b  # (N, D_k) -> (N, D_k+1)
        a = z if k == len(params) - 1 else activation(z)  # the output layer stays linear
    return a


def _mlp_forward_cases() -> list[Case]:
    rng = case_rng(301)
    cases = []
    for n, sizes, act in (
        (4, [3, 2], np.tanh),
        (6, [4, 5, 3], np.tanh),
        (1, [5, 8, 6, 2], relu),
        (3, [784, 100, 10], relu),
        (5, [2, 3, 3, 3, 1], np.tanh),
    ):
        params = _init_mlp(sizes, rng)
        # Non-zero biases, so that a forgotten bias shows.
        params = [(W, rng.normal(scale=0.5, size=b.shape)) for W, b in params]
        X = rng.normal(size=(n, sizes[0]))
        label = f"N={n}, sizes {sizes}, activation={act.__name__}"
        cases.append(Case(label, (X, params, act)))
    return cases


def _forward_activation_everywhere(X, params, activation):
    a = X
    for W, b in params:
        a = activation(a @ W + b)
    return a


def _forward_no_activation(X, params, activation):
    a = X
    for W, b in params:
        a = a @ W + b
    return a


def _forward_activation_first(X, params, activation):
    a = X
    for W, b in params:
        a = activation(a) @ W + b
    return a


def _forward_no_bias(X, params, activation):
    return _mlp_forward(X, [(W, np.zeros_like(b)) for W, b in params], activation)


def _forward_every_layer(X, params, activation):
    outputs, a = [], X
    for k, (W, b) in enumerate(params):
        z = a @ W + b
        a = z if k == len(params) - 1 else activation(z)
        outputs.append(a)
    return outputs


def _forward_first_layer_only(X, params, activation):
    W, b = params[0]
    z = X @ W + b
    return z if len(params) == 1 else activation(z)


def _forward_first_layer_linear(X, params, activation):
    a = X
    for k, (W, b) in enumerate(params):
        z = a @ W + b
        a = z if k == 0 else activation(z)  # the wrong layer kept linear
    return a


def _forward_hidden_only(X, params, activation):
    a = X
    for W, b in params[:-1]:
        a = activation(a @ W + b)
    return a  # the output layer is never applied


def _forward_no_last_bias(X, params, activation):
    a = X
    for W, b in params[:-1]:
        a = activation(a @ W + b)
    W, b = params[-1]
    return a @ W


def _forward_one_layer_activated(X, params, activation):
    if len(params) == 1:
        W, b = params[0]
        return activation(X @ W + b)
    return _mlp_forward(X, params, activation)


def _forward_tanh_always(X, params, activation):
    return _mlp_forward(X, params, np.tanh)


register(
    Exercise(
        id="mlp_forward",
        lesson="03",
        points=2,
        description="forward propagation through an MLP: hidden layers apply activation, the last layer is linear",
        cases=_mlp_forward_cases,
        reference=_mlp_forward,
        mistakes=[
            Mistake(
                _forward_activation_everywhere,
                "the last layer is linear: apply the activation to the hidden layers only, not to the output",
            ),
            Mistake(
                _forward_no_activation,
                "the hidden layers must apply the activation: without it the network is one linear map",
            ),
            Mistake(
                _forward_activation_first,
                "the activation goes after each hidden layer's a @ W + b, not before it (the input X is never "
                "activated)",
            ),
            Mistake(_forward_no_bias, "the bias is missing: z = a @ W + b in every layer"),
            Mistake(
                _forward_every_layer,
                "return only the output of the last layer, an array of shape (N, D_out), not a list of every "
                "layer's output",
            ),
            Mistake(
                _forward_first_layer_only,
                "only the first layer was applied: feed each layer's output into the next one "
                "(a = ... inside the loop)",
            ),
            Mistake(
                _forward_first_layer_linear,
                "the layer that stays linear is the LAST one (the output): apply the activation after every hidden "
                "layer, the first one included",
            ),
            Mistake(
                _forward_hidden_only,
                "the output layer is missing: after the hidden layers apply the last (W, b) too, without the "
                "activation, a @ W + b",
            ),
            Mistake(_forward_no_last_bias, "the last layer's bias is missing: the output is a @ W + b too"),
            Mistake(
                _forward_one_layer_activated,
                "a network of one layer has only its output layer, and the output layer stays linear: X @ W + b, "
                "no activation",
            ),
            Mistake(
                _forward_tanh_always,
                "use the activation passed in as an argument: activation(z); your code applies a function of its "
                "own (np.tanh...) whatever activation the caller gives",
            ),
        ],
    )
)
