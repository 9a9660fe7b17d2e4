"""Small loss surfaces for optimiser experiments (lessons 10 and 11), their gradients, and helpers
to run an optimiser on them and draw its path.

Every surface takes points of shape (..., 2) (or any shape, for the 1-D ones) and works on a whole
grid at once, so the same function draws the contour plot and scores a path. Gradients take one
point. Starting points and learning rates that suit each surface are in `PROBLEMS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "quadratic",
    "quadratic_grad",
    "rosenbrock",
    "rosenbrock_grad",
    "double_well",
    "double_well_grad",
    "plateau",
    "plateau_grad",
    "PROBLEMS",
    "descend",
    "steps_to_reach",
    "plot_paths",
]

CURVATURE = np.array([1.0, 25.0])  # the valley is 25 times steeper across than along: condition number 25


def quadratic(w: np.ndarray) -> np.ndarray:
    """f(w) = (w_1^2 + 25 w_2^2) / 2 for w (..., 2): a long narrow valley, minimum 0 at (0, 0)."""
    w = np.asarray(w, dtype=float)
    return 0.5 * (CURVATURE[0] * w[..., 0] ** 2 + CURVATURE[1] * w[..., 1] ** 2)


def quadratic_grad(w: np.ndarray) -> np.ndarray:
    """Gradient of `quadratic` at one point w (2,): (w_1, 25 w_2)."""
    return CURVATURE * np.asarray(w, dtype=float)


def rosenbrock(w: np.ndarray) -> np.ndarray:
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 for w (..., 2): a curved valley, minimum 0 at (1, 1)."""
    w = np.asarray(w, dtype=float)
    x, y = w[..., 0], w[..., 1]
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def rosenbrock_grad(w: np.ndarray) -> np.ndarray:
    """Gradient of `rosenbrock` at one point w (2,)."""
    x, y = np.asarray(w, dtype=float)
    return np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x**2), 200.0 * (y - x**2)])


def double_well(x: np.ndarray) -> np.ndarray:
    """f(x) = x^4 - 3 x^2 + x: a global minimum near x = -1.30 and a local one near x = 1.13."""
    x = np.asarray(x, dtype=float)
    return x**4 - 3.0 * x**2 + x


def double_well_grad(x: np.ndarray) -> np.ndarray:
    """f'(x) = 4 x^3 - 6 x + 1 for `double_well`."""
    x = np.asarray(x, dtype=float)
    return 4.0 * x**3 - 6.0 * x + 1.0


def plateau(x: np.ndarray) -> np.ndarray:
    """f(x) = log(1 + x^2): minimum 0 at x = 0, and nearly flat far away (slope about 2 / x)."""
    x = np.asarray(x, dtype=float)
    return np.log1p(x**2)


def plateau_grad(x: np.ndarray) -> np.ndarray:
    """f'(x) = 2 x / (1 + x^2) for `plateau`."""
    x = np.asarray(x, dtype=float)
    return 2.0 * x / (1.0 + x**2)


# Where to start and what fits on the plot: the same settings in every lesson and explorer.
PROBLEMS: dict[str, dict] = {
    "quadratic": {
        "f": quadratic,
        "grad": quadratic_grad,
        "start": np.array([-4.0, 1.0]),
        "minimum": np.array([0.0, 0.0]),
        "xlim": (-5.0, 5.0),
        "ylim": (-1.6, 1.6),
    },
    "rosenbrock": {
        "f": rosenbrock,
        "grad": rosenbrock_grad,
        "start": np.array([-1.5, 2.0]),
        "minimum": np.array([1.0, 1.0]),
        "xlim": (-2.0, 2.0),
        "ylim": (-1.0, 3.0),
    },
}


def descend(
    grad: Callable[[np.ndarray], np.ndarray],
    w0: np.ndarray,
    make_optimizer: Callable[[list], object],
    steps: int,
    schedule: Callable[[int], float] | None = None,
) -> np.ndarray:
    """Run a bpkit.optim optimiser on a surface; return the path (steps + 1, *w0.shape), start first.

    `make_optimizer(params)` builds the optimiser, e.g. `lambda p: Momentum(p, lr=0.03, beta=0.9)`.
    `schedule(t)`, if given, sets the learning rate before step t (t = 0, 1, ...): learning-rate decay.
    A path that overflows stops there and is padded with NaN, so a diverging run stays visible.
    """
    from bpkit.layers import Parameter

    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"descend: steps must be an integer >= 0, got {steps!r}")
    w = Parameter(np.array(w0, dtype=float), name="w")
    optimizer = make_optimizer([w])
    path = np.full((steps + 1, *w.data.shape), np.nan)
    path[0] = w.data
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            if schedule is not None:
                optimizer.lr = schedule(t - 1)
            w.grad[...] = grad(w.data)
            optimizer.step()
            if not np.all(np.isfinite(w.data)):
                break  # diverged: leave the rest as NaN
            path[t] = w.data
    return path


def steps_to_reach(losses: np.ndarray, tol: float) -> int | None:
    """Index of the first loss below `tol` (the number of steps taken to get there), or None if never."""
    below = np.flatnonzero(np.asarray(losses) < tol)
    return int(below[0]) if below.size else None


def plot_paths(problem: str, paths: dict[str, np.ndarray], ax=None, title: str | None = None):
    """Draw named paths (each (steps + 1, 2)) on the contour plot of PROBLEMS[problem]; returns the Axes."""
    import matplotlib.pyplot as plt

    if problem not in PROBLEMS:
        raise ValueError(f"plot_paths: problem must be one of {sorted(PROBLEMS)}, got {problem!r}")
    spec = PROBLEMS[problem]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    g1, g2 = np.meshgrid(np.linspace(*spec["xlim"], 200), np.linspace(*spec["ylim"], 200))
    surface = spec["f"](np.stack([g1, g2], axis=-1))  # (200, 200)
    # Log-spaced levels: the interesting part of a valley is where the loss is small.
    ax.contour(g1, g2, surface, levels=np.geomspace(0.01, surface.max(), 16), colors="0.8", linewidths=0.8)
    ax.plot(*spec["minimum"], "k*", ms=12, zorder=5)
    for name, path in paths.items():
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=1, label=name)
    ax.plot(*spec["start"], "ko", ms=5)
    ax.set_xlim(*spec["xlim"])
    ax.set_ylim(*spec["ylim"])
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    ax.set_title(title or problem)
    ax.legend(fontsize=8, loc="lower right")
    return ax
