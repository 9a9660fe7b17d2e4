"""Plain-function twins of the interactive explorers in bpkit.widgets (no ipywidgets needed).

Each `plot_*` function draws the same figure its explorer shows for one setting of the controls,
deterministically (every random draw is seeded), so it can be tested, called in a static export,
or used where widgets do not render.

Convention: every `plot_*` returns a `matplotlib.figure.Figure` and attaches the numbers it drew
as a plain dict `fig.bpkit_data` (paths, losses, gradient norms, accuracies ...), documented on
each function. The numbers come from a `*_run` / compute function that can also be called alone.

Figures are built with `matplotlib.figure.Figure`, not pyplot: they are not registered with
pyplot, so they never pile up in memory and never display twice in a notebook (a notebook shows
one when it is the last expression of a cell, or with `display(fig)`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bpkit.functions import PROBLEMS
from bpkit.init import normal
from bpkit.layers import Linear, mlp
from bpkit.losses import MSELoss, SoftmaxCrossEntropy
from bpkit.metrics import accuracy
from bpkit.optim import Momentum

__all__ = [
    "LR_SURFACES",
    "MOMENTUM_PROBLEMS",
    "MOMENTUM_LR",
    "ACTIVATIONS",
    "INITS",
    "DATASETS",
    "BATCH_SIZE_CHOICES",
    "gradient_descent_path",
    "plot_learning_rate",
    "minibatch_run",
    "plot_batch_sizes",
    "momentum_paths",
    "plot_momentum",
    "layer_gradient_norms",
    "plot_depth_init",
    "train_mlp_2d",
    "plot_decision_boundary",
]

# Beyond this distance from the start a path counts as diverged and stops (keeps numbers finite).
_BLOW_UP = 1e6

_COLORS = {"plain": "tab:blue", "momentum": "tab:orange", "nesterov": "tab:green"}


def _figure(width: float = 10.0, height: float = 4.0) -> Figure:
    """A pyplot-free figure (no registry, nothing to close) with two panels' worth of fixed margins."""
    fig = Figure(figsize=(width, height))
    # Fixed margins instead of constrained layout: it halves the drawing time of every redraw.
    fig.subplots_adjust(left=0.075, right=0.985, bottom=0.13, top=0.91, wspace=0.26)
    return fig


def _check_positive(name: str, value: object, fn: str) -> float:
    """Accept a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: {name} must be a number, got {type(value).__name__}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{fn}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_count(name: str, value: object, fn: str, minimum: int = 0, maximum: int | None = None) -> int:
    """Accept an integer in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an integer, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{fn}: {name} must be >= {minimum}{upper}, got {value}")
    return int(value)


def _check_choice(name: str, value: object, choices: tuple[str, ...], fn: str) -> str:
    """Accept one of a fixed set of strings."""
    if value not in choices:
        raise ValueError(f"{fn}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


def _run_descent(
    grad: Callable[[np.ndarray], np.ndarray], w0: np.ndarray, steps: int, update: Callable
) -> tuple[np.ndarray, bool]:
    """Iterate `update(w, state, grad) -> (w, state)` from w0; stop early when the path blows up."""
    w = np.array(w0, dtype=np.float64)
    state = np.zeros_like(w)
    path = [w.copy()]
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            w, state = update(w, state, grad)
            if not np.all(np.isfinite(w)) or np.linalg.norm(w - w0) > _BLOW_UP:
                diverged = True
                break
            path.append(w.copy())
    return np.array(path), diverged


# ---------------------------------------------------------------------------------------------
# 1. Learning rate: gradient descent on a quadratic bowl
# ---------------------------------------------------------------------------------------------

# f(w) = 0.5 * sum_i h_i w_i^2; gradient descent is stable while lr < 2 / max(h).
LR_SURFACES: dict[str, dict] = {
    "1d": {"curvature": np.array([1.0]), "start": np.array([4.0])},
    # Elongated bowl: curvature 10 across the valley, 1 along it (condition number 10).
    "2d": {"curvature": np.array([1.0, 10.0]), "start": np.array([-4.0, 1.5])},
}


def _quadratic_loss(curvature: np.ndarray, w: np.ndarray) -> np.ndarray:
    """f(w) = 0.5 * sum_i h_i w_i^2 for w of shape (..., d)."""
    return 0.5 * np.sum(curvature * w**2, axis=-1)


def gradient_descent_path(lr: float, steps: int, surface: str = "2d") -> dict:
    """Run plain gradient descent on a quadratic bowl; return its path, losses and verdict.

    Keys: "path" (k+1, d) points visited (k <= steps; fewer when it diverged), "loss" (k+1,),
    "diverged" bool, "stable_lr" = 2 / largest curvature (the lr above which it diverges),
    "curvature" (d,), "lr", "steps", "surface".
    """
    fn = "gradient_descent_path"
    lr = _check_positive("lr", lr, fn)
    steps = _check_count("steps", steps, fn, maximum=100_000)
    surface = _check_choice("surface", surface, tuple(LR_SURFACES), fn)
    h = LR_SURFACES[surface]["curvature"]
    w0 = LR_SURFACES[surface]["start"]

    def update(w, state, grad):
        return w - lr * grad(w), state  # w <- w - lr * df/dw

    path, diverged = _run_descent(lambda w: h * w, w0, steps, update)  # df/dw = h * w
    return {
        "path": path,
        "loss": _quadratic_loss(h, path),
        "diverged": diverged,
        "stable_lr": 2.0 / float(h.max()),
        "curvature": h,
        "lr": lr,
        "steps": steps,
        "surface": surface,
    }


def _lr_verdict(data: dict) -> str:
    """One phrase describing the run, computed from its numbers."""
    if data["diverged"] or data["loss"][-1] > data["loss"][0]:
        return "diverges"
    if data["lr"] * data["curvature"].max() > 1.0:
        return "oscillates but converges"
    if data["loss"][-1] > 0.01 * data["loss"][0]:
        return "slow: loss still above 1% of start"
    return "converges"


def plot_learning_rate(lr: float, steps: int, surface: str = "2d") -> Figure:
    """Draw the descent path on the loss surface and the loss per step; numbers in fig.bpkit_data.

    fig.bpkit_data is the dict of `gradient_descent_path(lr, steps, surface)` plus "verdict".
    """
    data = gradient_descent_path(lr, steps, surface)
    data["verdict"] = _lr_verdict(data)
    path, loss, h = data["path"], data["loss"], data["curvature"]
    fig = _figure()
    ax_surface, ax_loss = fig.subplots(1, 2, width_ratios=[1.3, 1.0])
    # Show the neighbourhood of the start; a diverging path runs off the plot, as it should.
    reach = 1.6 * float(np.abs(LR_SURFACES[surface]["start"]).max())
    if surface == "1d":
        w = np.linspace(-reach, reach, 400)
        ax_surface.plot(w, 0.5 * h[0] * w**2, color="0.6", lw=1.5)
        ax_surface.plot(path[:, 0], loss, "o-", color="tab:red", ms=3, lw=1)
        ax_surface.set_xlim(-reach, reach)
        ax_surface.set_ylim(-0.05 * 0.5 * h[0] * reach**2, 0.5 * h[0] * reach**2)
        ax_surface.set_xlabel("w")
        ax_surface.set_ylabel("loss f(w) = w²/2")
    else:
        g1, g2 = np.meshgrid(np.linspace(-reach, reach, 200), np.linspace(-reach / 2, reach / 2, 200))
        grid_loss = _quadratic_loss(h, np.stack([g1, g2], axis=-1))
        ax_surface.contour(g1, g2, grid_loss, levels=np.geomspace(0.05, grid_loss.max(), 14), colors="0.7")
        ax_surface.plot(path[:, 0], path[:, 1], "o-", color="tab:red", ms=3, lw=1)
        ax_surface.plot(0, 0, "k*", ms=10)
        ax_surface.set_xlim(-reach, reach)
        ax_surface.set_ylim(-reach / 2, reach / 2)
        ax_surface.set_xlabel("w₁ (curvature 1)")
        ax_surface.set_ylabel("w₂ (curvature 10)")
    ax_surface.set_title(f"lr = {lr:.3g}: {data['verdict']}")
    ax_loss.semilogy(np.arange(len(loss)), np.maximum(loss, 1e-300), "o-", color="tab:red", ms=2, lw=1)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (log scale)")
    ax_loss.set_title(f"stable while lr < {data['stable_lr']:.3g}")
    ax_loss.grid(True, which="major", alpha=0.3)
    fig.bpkit_data = data
    return fig


# ---------------------------------------------------------------------------------------------
# 2. Batch size: minibatch SGD for linear regression on the house prices
# ---------------------------------------------------------------------------------------------

_HOUSES_N = 200
BATCH_SIZE_CHOICES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, _HOUSES_N)
_BATCH_LR = 0.05  # one learning rate for every batch size, so only the batch size changes


def _standardised_houses() -> tuple[np.ndarray, np.ndarray]:
    """House prices (n=200, seed 0) with features and target standardised to mean 0, std 1."""
    from bpkit.data import make_house_prices

    X, y = make_house_prices(_HOUSES_N, rng=np.random.default_rng(0))
    X = (X - X.mean(axis=0)) / X.std(axis=0)  # (n, 2)
    y = (y - y.mean()) / y.std()  # (n,)
    return X, y


def minibatch_run(batch_size: int, epochs: int, lr: float = _BATCH_LR, seed: int = 0) -> dict:
    """Minibatch SGD on linear regression (MSE) over the standardised house prices.

    Each epoch shuffles the rows (seeded) and takes one step per batch. Keys:
    "batch_loss" (k,) loss of the minibatch the step was computed on (what a training loop sees),
    "full_loss" (k,) loss on all rows at the same weights (the true objective), "epoch" (k,) the
    step's position in epochs, "noise" = std of (batch_loss - full_loss) (0 for full batch),
    "final_loss" full loss after the last step, "batch_size", "epochs", "lr", "steps" = k.
    """
    fn = "minibatch_run"
    batch_size = _check_count("batch_size", batch_size, fn, minimum=1, maximum=_HOUSES_N)
    epochs = _check_count("epochs", epochs, fn, minimum=1, maximum=1000)
    lr = _check_positive("lr", lr, fn)
    X, y = _standardised_houses()
    n = len(X)
    rng = np.random.default_rng(seed)
    w = np.zeros(X.shape[1])  # (2,)
    b = 0.0
    batch_loss, full_loss, epoch_pos = [], [], []
    steps_per_epoch = int(np.ceil(n / batch_size))
    for epoch in range(epochs):
        order = rng.permutation(n)
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            err_all = X @ w + b - y  # (n,)
            err = err_all[idx]  # (B,)
            full_loss.append(float(np.mean(err_all**2)))
            batch_loss.append(float(np.mean(err**2)))
            epoch_pos.append(epoch + i / steps_per_epoch)
            # MSE = mean(err^2): dL/dw = 2/B * X_B^T err, dL/db = 2 * mean(err)
            w = w - lr * 2.0 * X[idx].T @ err / len(idx)
            b = b - lr * 2.0 * float(np.mean(err))
    batch_loss_arr = np.array(batch_loss)
    full_loss_arr = np.array(full_loss)
    return {
        "batch_loss": batch_loss_arr,
        "full_loss": full_loss_arr,
        "epoch": np.array(epoch_pos),
        "noise": float(np.std(batch_loss_arr - full_loss_arr)),
        "final_loss": float(np.mean((X @ w + b - y) ** 2)),
        "batch_size": batch_size,
        "epochs": epochs,
        "lr": lr,
        "steps": len(batch_loss_arr),
    }


def plot_batch_sizes(batch_size: int, epochs: int) -> Figure:
    """Draw the minibatch loss curve next to full-batch descent; numbers in fig.bpkit_data.

    fig.bpkit_data = {"run": minibatch_run(batch_size, epochs), "full_batch": minibatch_run(200, epochs)}.
    """
    run = minibatch_run(batch_size, epochs)
    full = minibatch_run(_HOUSES_N, epochs)
    fig = _figure()
    ax_epoch, ax_step = fig.subplots(1, 2)
    label = "full batch" if batch_size == _HOUSES_N else f"batch size {batch_size}"
    ax_epoch.plot(
        run["epoch"], run["batch_loss"], color="tab:orange", lw=0.8, alpha=0.6, label=f"{label}: loss on each minibatch"
    )
    # Full-data loss before each step, plus the loss after the last one (at x = epochs).
    for data, style in (
        (run, {"color": "tab:red", "lw": 1.8, "label": f"{label}: loss on all {_HOUSES_N} houses"}),
        (full, {"color": "tab:blue", "lw": 1.5, "ls": "--", "label": "full batch"}),
    ):
        ax_epoch.plot(np.append(data["epoch"], epochs), np.append(data["full_loss"], data["final_loss"]), **style)
    ax_epoch.set_yscale("log")
    ax_epoch.set_xlabel("epochs (passes over the data)")
    ax_epoch.set_ylabel("MSE (standardised price, log scale)")
    ax_epoch.set_title(f"{run['steps']} steps, noise (std of batch - full loss) {run['noise']:.3f}", fontsize=10)
    ax_epoch.legend(fontsize=8)
    for data, style in (
        (run, {"color": "tab:red", "lw": 1.8, "label": label}),
        (full, {"color": "tab:blue", "lw": 1.5, "ls": "--", "label": "full batch"}),
    ):
        ax_step.plot(np.arange(data["steps"] + 1), np.append(data["full_loss"], data["final_loss"]), **style)
    ax_step.set_yscale("log")
    ax_step.set_xscale("symlog", linthresh=10)
    ax_step.set_xlim(left=0)
    ax_step.set_xlabel("update steps (linear to 10, then log)")
    ax_step.set_ylabel("MSE on all houses")
    ax_step.set_title(
        f"after {epochs} epoch(s): {run['final_loss']:.4f} vs full batch {full['final_loss']:.4f}", fontsize=10
    )
    ax_step.legend(fontsize=8)
    fig.bpkit_data = {"run": run, "full_batch": full}
    return fig


# ---------------------------------------------------------------------------------------------
# 3. Momentum: plain, momentum and Nesterov descent on two classic surfaces
# ---------------------------------------------------------------------------------------------

# Surfaces, starts and plot limits are shared with lesson 10 (bpkit.functions.PROBLEMS);
# these learning rates suit each one (plain descent is stable, momentum has room to overshoot).
MOMENTUM_PROBLEMS: tuple[str, ...] = ("quadratic", "rosenbrock")
MOMENTUM_LR: dict[str, float] = {"quadratic": 0.03, "rosenbrock": 0.001}


def momentum_paths(beta: float, lr: float, steps: int, problem: str = "quadratic") -> dict:
    """Run plain, momentum and Nesterov descent from the same start; return their paths.

    Updates as in lesson 10 (v starts at 0, g is the gradient):
      plain:     w <- w - lr * g(w)
      momentum:  v <- beta * v + g(w);                  w <- w - lr * v
      nesterov:  v <- beta * v + g(w - lr * beta * v);  w <- w - lr * v   (gradient at the look-ahead point)
    Keys: "plain"/"momentum"/"nesterov" -> {"path" (k+1, 2), "loss" (k+1,), "diverged" bool,
    "overshoot" = how far the path went past the minimum along w1 (0 if never)}, plus "problem",
    "beta", "lr", "steps", "minimum".
    """
    fn = "momentum_paths"
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)) or not 0 <= beta < 1:
        raise ValueError(f"{fn}: beta must be a number in [0, 1), got {beta!r}")
    lr = _check_positive("lr", lr, fn)
    steps = _check_count("steps", steps, fn, maximum=100_000)
    problem = _check_choice("problem", problem, MOMENTUM_PROBLEMS, fn)
    spec = PROBLEMS[problem]
    beta = float(beta)

    def plain(w, v, grad):
        return w - lr * grad(w), v

    def momentum(w, v, grad):
        v = beta * v + grad(w)
        return w - lr * v, v

    def nesterov(w, v, grad):
        v = beta * v + grad(w - lr * beta * v)
        return w - lr * v, v

    out: dict = {"problem": problem, "beta": beta, "lr": lr, "steps": steps, "minimum": spec["minimum"]}
    start, minimum = spec["start"], spec["minimum"]
    direction = np.sign(minimum[0] - start[0])  # which way is "towards the minimum" along w1
    for name, update in (("plain", plain), ("momentum", momentum), ("nesterov", nesterov)):
        path, diverged = _run_descent(spec["grad"], start, steps, update)
        past = direction * (path[:, 0] - minimum[0])  # > 0 once the path is beyond the minimum
        out[name] = {
            "path": path,
            "loss": spec["f"](path),
            "diverged": diverged,
            "overshoot": float(max(past.max(), 0.0)),
        }
    return out


def plot_momentum(beta: float, lr: float, steps: int, problem: str = "quadratic") -> Figure:
    """Draw the three trajectories on the contour plot and their losses; numbers in fig.bpkit_data.

    fig.bpkit_data is the dict of `momentum_paths(beta, lr, steps, problem)`.
    """
    data = momentum_paths(beta, lr, steps, problem)
    spec = PROBLEMS[problem]
    fig = _figure()
    ax_contour, ax_loss = fig.subplots(1, 2, width_ratios=[1.3, 1.0])
    g1, g2 = np.meshgrid(np.linspace(*spec["xlim"], 160), np.linspace(*spec["ylim"], 160))
    grid_loss = spec["f"](np.stack([g1, g2], axis=-1))
    ax_contour.contour(g1, g2, grid_loss, levels=np.geomspace(0.01, grid_loss.max(), 18), colors="0.75")
    ax_contour.plot(*spec["minimum"], "k*", ms=12)
    for name in ("plain", "momentum", "nesterov"):
        run = data[name]
        tag = "diverged" if run["diverged"] else f"final loss {run['loss'][-1]:.2g}"
        ax_contour.plot(
            run["path"][:, 0], run["path"][:, 1], ".-", color=_COLORS[name], ms=3, lw=1, label=f"{name}: {tag}"
        )
        ax_loss.semilogy(np.maximum(run["loss"], 1e-300), color=_COLORS[name], lw=1.5, label=name)
    ax_contour.set_xlim(*spec["xlim"])
    ax_contour.set_ylim(*spec["ylim"])
    ax_contour.set_xlabel("w₁")
    ax_contour.set_ylabel("w₂")
    ax_contour.set_title(f"{problem}: beta = {beta:.2f}, lr = {lr:.3g}")
    ax_contour.legend(fontsize=8, loc="lower right")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (log scale)")
    ax_loss.set_title(
        "overshoot: "
        + ", ".join(f"{name} {data[name]['overshoot']:.2f}" for name in ("plain", "momentum", "nesterov")),
        fontsize=10,
    )
    ax_loss.grid(True, alpha=0.3)
    ax_loss.legend(fontsize=8)
    fig.bpkit_data = data
    return fig


# ---------------------------------------------------------------------------------------------
# 4. Depth and initialisation: gradient norms layer by layer
# ---------------------------------------------------------------------------------------------

ACTIVATIONS: tuple[str, ...] = ("sigmoid", "tanh", "relu")
INITS: tuple[str, ...] = ("normal", "xavier", "he")
_WIDTH = 64  # units per hidden layer
_BATCH = 128


def _standard_normal(d_in: int, d_out: int, rng: np.random.Generator) -> np.ndarray:
    """N(0, 1) weights whatever the layer size: the "random" init of the articles."""
    return normal(d_in, d_out, rng, std=1.0)


# The explorer's init names as Linear understands them.
_LINEAR_INIT = {"normal": _standard_normal, "xavier": "xavier", "he": "he"}


def layer_gradient_norms(depth: int, activation: str = "sigmoid", init: str = "xavier", seed: int = 0) -> dict:
    """Forward and backward one batch through a deep MLP; return per-layer gradient norms.

    Network: `depth` hidden layers Linear(64 -> 64) + activation, then Linear(64 -> 1), MSE against
    random targets; input batch (128, 64) standard normal; all seeded by `seed` (the same weights
    for the same settings). Keys: "grad_norm" (depth,) Frobenius norm of dL/dW for hidden layer
    1..depth (layer 1 is next to the input), "act_mean"/"act_std" (depth,) of each layer's
    activations, "activations" list of (128, 64) arrays, "depth", "activation", "init".
    """
    fn = "layer_gradient_norms"
    depth = _check_count("depth", depth, fn, minimum=1, maximum=100)
    activation = _check_choice("activation", activation, ACTIVATIONS, fn)
    init = _check_choice("init", init, INITS, fn)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((_BATCH, _WIDTH))  # (N, 64)
    target = rng.standard_normal((_BATCH, 1))  # (N, 1)
    model = mlp(_WIDTH, [_WIDTH] * depth + [1], rng, activation=activation, init=_LINEAR_INIT[init])
    loss = MSELoss()
    acts = []  # the output of every hidden activation, (N, 64) each
    a = x
    with np.errstate(over="ignore"):
        for layer in model:  # layer by layer, to keep the activations
            a = layer(a)
            if not isinstance(layer, Linear):
                acts.append(a)
        loss(a, target)
        model.backward(loss.backward())
    grad_norms = np.array([np.linalg.norm(layer.W.grad) for layer in model if isinstance(layer, Linear)][:depth])
    return {
        "grad_norm": grad_norms,
        "act_mean": np.array([float(a.mean()) for a in acts]),
        "act_std": np.array([float(a.std()) for a in acts]),
        "activations": acts,
        "depth": depth,
        "activation": activation,
        "init": init,
    }


def plot_depth_init(depth: int, activation: str = "sigmoid", init: str = "xavier") -> Figure:
    """Draw per-layer gradient norms and activation distributions; numbers in fig.bpkit_data.

    fig.bpkit_data is the dict of `layer_gradient_norms(depth, activation, init)` plus "ratio" =
    grad_norm[first layer] / grad_norm[last layer] (<< 1: vanishing, >> 1: exploding).
    """
    data = layer_gradient_norms(depth, activation, init)
    norms = data["grad_norm"]
    with np.errstate(divide="ignore", invalid="ignore"):
        data["ratio"] = float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan")
    fig = _figure()
    ax_grad, ax_act = fig.subplots(1, 2)
    layers = np.arange(1, depth + 1)
    ax_grad.semilogy(layers, np.maximum(norms, 1e-300), "o-", color="tab:purple")
    finite = norms[np.isfinite(norms) & (norms > 0)]
    if finite.size:  # span at least a couple of decades so there are labelled ticks
        ax_grad.set_ylim(finite.min() / 10, finite.max() * 10)
    ax_grad.yaxis.set_minor_formatter(NullFormatter())
    ax_grad.set_xlabel("hidden layer (1 = next to the input)")
    ax_grad.set_ylabel("‖dL/dW‖ (log scale)")
    ax_grad.set_title(f"{activation}, {init} init: first/last layer ratio {data['ratio']:.2g}")
    ax_grad.grid(True, which="major", alpha=0.3)
    ax_grad.set_xlim(0.5, depth + 0.5)
    # Activation histograms for the first, middle and last hidden layers.
    shown = sorted({0, (depth - 1) // 2, depth - 1})
    lo, hi = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}.get(
        activation, (0.0, max(float(np.percentile(data["activations"][k], 99)) for k in shown) or 1.0)
    )
    bins = np.linspace(lo, hi, 41)
    for k in shown:
        ax_act.hist(
            data["activations"][k].ravel(),
            bins=bins,
            histtype="step",
            lw=1.5,
            density=True,
            label=f"layer {k + 1}: std {data['act_std'][k]:.3g}",
        )
    ax_act.set_xlabel(f"{activation} activation")
    ax_act.set_ylabel("density")
    ax_act.set_title("activations per layer")
    ax_act.legend(fontsize=8)
    fig.bpkit_data = data
    return fig


# ---------------------------------------------------------------------------------------------
# 5. Decision boundary of a small MLP
# ---------------------------------------------------------------------------------------------

DATASETS: tuple[str, ...] = ("moons", "spirals")


def _dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The seeded 2-D classification data the explorer trains on."""
    from bpkit.data import make_moons, make_spirals

    rng = np.random.default_rng(0)
    if name == "moons":
        return make_moons(200, noise=0.15, rng=rng)
    return make_spirals(300, n_classes=3, noise=0.15, rng=rng)


def train_mlp_2d(dataset: str, hidden: int, lr: float, epochs: int, seed: int = 0) -> dict:
    """Train a 2 -> hidden (tanh) -> classes MLP with full-batch gradient descent on softmax cross-entropy.

    Full-batch gradient descent with momentum 0.9 (so a few hundred epochs are enough to see a
    boundary form) and Xavier init, seeded by `seed`. Keys: "model" the trained Sequential,
    "loss" (epochs+1,) training loss before each epoch and after the last, "accuracy" final
    training accuracy, "X", "y", "n_classes", "dataset", "hidden", "lr", "epochs".
    """
    fn = "train_mlp_2d"
    dataset = _check_choice("dataset", dataset, DATASETS, fn)
    hidden = _check_count("hidden", hidden, fn, minimum=1, maximum=1024)
    lr = _check_positive("lr", lr, fn)
    epochs = _check_count("epochs", epochs, fn, maximum=100_000)
    X, y = _dataset(dataset)
    n_classes = int(y.max()) + 1
    model = mlp(2, [hidden, n_classes], np.random.default_rng(seed), activation="tanh", init="xavier")
    loss = SoftmaxCrossEntropy()
    optimizer = Momentum(model.parameters(), lr=lr, beta=0.9)
    losses = []
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(epochs + 1):
            losses.append(loss(model(X), y))
            if epoch == epochs or not np.isfinite(losses[-1]):
                break
            model.backward(loss.backward())
            optimizer.step()
        train_accuracy = accuracy(model(X), y)
    return {
        "model": model,
        "loss": np.array(losses),
        "accuracy": train_accuracy,
        "X": X,
        "y": y,
        "n_classes": n_classes,
        "dataset": dataset,
        "hidden": hidden,
        "lr": lr,
        "epochs": epochs,
    }


def plot_decision_boundary(dataset: str = "moons", hidden: int = 16, lr: float = 0.1, epochs: int = 300) -> Figure:
    """Draw the trained MLP's decision regions with the data, and its loss curve; numbers in fig.bpkit_data.

    fig.bpkit_data is the dict of `train_mlp_2d(dataset, hidden, lr, epochs)`.
    """
    data = train_mlp_2d(dataset, hidden, lr, epochs)
    X, y = data["X"], data["y"]
    fig = _figure()
    ax_regions, ax_loss = fig.subplots(1, 2, width_ratios=[1.2, 1.0])
    pad = 0.4
    g1, g2 = np.meshgrid(
        np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, 160),
        np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, 160),
    )
    grid = np.column_stack([g1.ravel(), g2.ravel()])  # (160*160, 2)
    with np.errstate(over="ignore", invalid="ignore"):
        logits = data["model"](grid)  # (160*160, C)
    regions = np.argmax(np.nan_to_num(logits), axis=1).reshape(g1.shape)
    levels = np.arange(data["n_classes"] + 1) - 0.5
    ax_regions.contourf(
        g1, g2, regions, levels=levels, cmap="coolwarm" if data["n_classes"] == 2 else "viridis", alpha=0.3
    )
    ax_regions.scatter(
        X[:, 0],
        X[:, 1],
        c=y,
        s=12,
        edgecolors="k",
        linewidths=0.3,
        cmap="coolwarm" if data["n_classes"] == 2 else "viridis",
    )
    ax_regions.set_title(f"{dataset}, {hidden} hidden units: training accuracy {data['accuracy']:.1%}")
    ax_regions.set_xticks([])
    ax_regions.set_yticks([])
    ax_loss.plot(np.arange(len(data["loss"])), data["loss"], color="tab:red")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.set_title(f"lr = {lr:.3g}, final loss {data['loss'][-1]:.3f}")
    ax_loss.grid(True, alpha=0.3)
    data["regions"] = regions
    fig.bpkit_data = data
    return fig
