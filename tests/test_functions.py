"""bpkit.functions: the test surfaces have the stated minima and correct gradients; descend runs
bpkit.optim on them; steps_to_reach and plot_paths behave."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bpkit import functions as F  # noqa: E402
from bpkit.optim import SGD, Momentum  # noqa: E402


def _numeric_grad(f, w, eps=1e-6):
    w = np.array(w, dtype=float)
    g = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        up, down = w.copy(), w.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = (f(up) - f(down)) / (2 * eps)
    return g


@pytest.mark.parametrize("f,grad", [(F.quadratic, F.quadratic_grad), (F.rosenbrock, F.rosenbrock_grad)])
def test_2d_gradients_match_finite_differences(f, grad):
    rng = np.random.default_rng(0)
    for _ in range(5):
        w = rng.uniform(-2, 2, size=2)
        assert np.allclose(grad(w), _numeric_grad(f, w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("f,grad", [(F.double_well, F.double_well_grad), (F.plateau, F.plateau_grad)])
def test_1d_gradients_match_finite_differences(f, grad):
    x = np.linspace(-3, 3, 13)
    numeric = (f(x + 1e-6) - f(x - 1e-6)) / 2e-6
    assert np.allclose(grad(x), numeric, rtol=1e-5, atol=1e-5)


def test_minima_are_where_the_docstrings_say():
    assert F.quadratic(np.zeros(2)) == 0.0 and F.rosenbrock(np.ones(2)) == 0.0
    assert np.allclose(F.rosenbrock_grad(np.ones(2)), 0.0)
    roots = np.sort(np.roots([4.0, 0.0, -6.0, 1.0]).real)  # f'(x) = 4x^3 - 6x + 1
    assert np.allclose(roots[[0, 2]], [-1.30, 1.13], atol=0.01)
    assert F.double_well(roots[0]) < F.double_well(roots[2])  # the left minimum is the global one
    assert F.plateau(0.0) == 0.0 and abs(F.plateau_grad(100.0) - 2 / 100) < 1e-3


def test_surfaces_evaluate_whole_grids():
    grid = np.zeros((3, 4, 2))
    assert F.quadratic(grid).shape == (3, 4) and F.rosenbrock(grid).shape == (3, 4)


def test_descend_matches_a_hand_written_loop():
    path = F.descend(F.quadratic_grad, np.array([-4.0, 1.0]), lambda p: SGD(p, lr=0.03), steps=5)
    w = np.array([-4.0, 1.0])
    expected = [w]
    for _ in range(5):
        w = w - 0.03 * F.quadratic_grad(w)
        expected.append(w)
    assert path.shape == (6, 2)
    assert np.allclose(path, expected)


def test_descend_runs_many_1d_starts_at_once_and_does_not_touch_w0():
    starts = np.array([-2.0, 0.5, 2.0])
    path = F.descend(F.double_well_grad, starts, lambda p: Momentum(p, lr=0.01, beta=0.0), steps=2000)
    assert path.shape == (2001, 3)
    assert np.allclose(path[-1], [-1.3008, 1.1309, 1.1309], atol=1e-3)
    assert np.array_equal(starts, [-2.0, 0.5, 2.0])


def test_descend_pads_a_diverging_run_with_nan():
    path = F.descend(F.quadratic_grad, np.array([-4.0, 1.0]), lambda p: SGD(p, lr=1.0), steps=1000)
    assert np.isfinite(path[0]).all() and np.isnan(path[-1]).all()


def test_descend_schedule_sets_the_learning_rate_of_every_step():
    rates = []

    def schedule(t):
        rates.append(t)
        return 0.1 * 0.5**t

    path = F.descend(F.plateau_grad, np.array([1.0]), lambda p: SGD(p, lr=0.1), steps=3, schedule=schedule)
    x = 1.0
    for t in range(3):
        x = x - 0.1 * 0.5**t * float(F.plateau_grad(x))
    assert rates == [0, 1, 2] and np.isclose(path[-1, 0], x)


def test_descend_rejects_bad_steps():
    with pytest.raises(ValueError, match="steps"):
        F.descend(F.quadratic_grad, np.zeros(2), lambda p: SGD(p, lr=0.1), steps=-1)


def test_steps_to_reach():
    assert F.steps_to_reach(np.array([3.0, 2.0, 0.5, 0.1]), 1.0) == 2
    assert F.steps_to_reach(np.array([3.0, 2.0]), 1.0) is None


def test_plot_paths_draws_each_path_and_rejects_unknown_problems():
    fig, ax = plt.subplots()
    F.plot_paths("rosenbrock", {"a": np.zeros((3, 2)), "b": np.ones((4, 2))}, ax=ax)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "a" in labels and "b" in labels
    plt.close(fig)
    with pytest.raises(ValueError, match="problem"):
        F.plot_paths("himmelblau", {})
