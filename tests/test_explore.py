"""Tests for bpkit.explore: the numbers behind each explorer move the way the lessons say they do."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from bpkit import explore
from bpkit.data import make_house_prices


def _renders(fig: Figure) -> None:
    """The figure can be drawn to a PNG (what the widget and a static export do)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# Learning rate
# ---------------------------------------------------------------------------------------------


def test_gradient_descent_is_the_closed_form_on_a_quadratic():
    # On f = h w^2 / 2 one step multiplies w by (1 - lr h): after k steps w_k = (1 - lr h)^k w_0.
    data = explore.gradient_descent_path(0.3, 7, "1d")
    expected = 4.0 * (1 - 0.3 * 1.0) ** np.arange(8)
    np.testing.assert_allclose(data["path"][:, 0], expected)
    np.testing.assert_allclose(data["loss"], 0.5 * expected**2)


@pytest.mark.parametrize("surface", ["1d", "2d"])
def test_learning_rate_above_two_over_curvature_diverges(surface):
    stable = explore.gradient_descent_path(0.1, 50, surface)
    limit = stable["stable_lr"]
    assert limit == pytest.approx(2.0 / explore.LR_SURFACES[surface]["curvature"].max())
    below = explore.gradient_descent_path(0.9 * limit, 50, surface)
    above = explore.gradient_descent_path(1.1 * limit, 50, surface)
    assert not below["diverged"] and below["loss"][-1] < below["loss"][0]
    assert above["loss"][-1] > 100 * above["loss"][0]  # every step overshoots further


def test_a_larger_learning_rate_gets_further_until_it_overshoots():
    losses = [explore.gradient_descent_path(lr, 20, "2d")["loss"][-1] for lr in (0.001, 0.01, 0.1)]
    assert losses[0] > losses[1] > losses[2]
    huge = explore.gradient_descent_path(1.5, 200, "2d")
    assert huge["diverged"] and len(huge["path"]) < 201  # stopped early, all numbers finite
    assert np.all(np.isfinite(huge["path"]))


def test_plot_learning_rate_figure_and_verdicts():
    fig = explore.plot_learning_rate(0.3, 30, surface="2d")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.bpkit_data["verdict"] == "diverges"
    assert explore.plot_learning_rate(0.001, 30, "2d").bpkit_data["verdict"].startswith("slow")
    assert explore.plot_learning_rate(0.15, 30, "2d").bpkit_data["verdict"] == "oscillates but converges"
    assert explore.plot_learning_rate(0.05, 100, "2d").bpkit_data["verdict"] == "converges"
    _renders(fig)


# ---------------------------------------------------------------------------------------------
# Batch size
# ---------------------------------------------------------------------------------------------


def test_full_batch_curve_is_smooth_and_small_batches_are_noisy():
    noise = {b: explore.minibatch_run(b, 5)["noise"] for b in (1, 32, 200)}
    assert noise[200] < 1e-12  # the batch is the whole data set: batch loss == full loss (up to rounding)
    assert noise[1] > noise[32] > 0.0


def test_minibatch_steps_per_epoch_and_determinism():
    run = explore.minibatch_run(32, 3)
    assert run["steps"] == 3 * 7  # ceil(200 / 32) = 7 steps per epoch
    again = explore.minibatch_run(32, 3)
    np.testing.assert_array_equal(run["batch_loss"], again["batch_loss"])


def test_full_batch_descent_reaches_least_squares():
    # Re-derive the target: least squares on the same standardised houses.
    X, y = make_house_prices(200, rng=np.random.default_rng(0))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (y - y.mean()) / y.std()
    A = np.column_stack([X, np.ones(len(X))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    best = float(np.mean((A @ coef - y) ** 2))
    assert explore.minibatch_run(200, 500)["final_loss"] == pytest.approx(best, rel=1e-3)


def test_plot_batch_sizes():
    fig = explore.plot_batch_sizes(8, 3)
    assert set(fig.bpkit_data) == {"run", "full_batch"}
    assert fig.bpkit_data["run"]["batch_size"] == 8 and fig.bpkit_data["full_batch"]["batch_size"] == 200
    _renders(fig)


# ---------------------------------------------------------------------------------------------
# Momentum
# ---------------------------------------------------------------------------------------------


def test_beta_zero_is_plain_descent():
    data = explore.momentum_paths(0.0, 0.03, 40)
    np.testing.assert_allclose(data["momentum"]["path"], data["plain"]["path"])
    np.testing.assert_allclose(data["nesterov"]["path"], data["plain"]["path"])


def test_higher_beta_overshoots_more():
    overshoot = {b: explore.momentum_paths(b, 0.03, 200)["momentum"]["overshoot"] for b in (0.5, 0.9, 0.97)}
    plain = explore.momentum_paths(0.9, 0.03, 200)["plain"]["overshoot"]
    assert plain == 0.0 and overshoot[0.5] == 0.0  # lr * h1 < 1: no overshoot along the valley
    assert overshoot[0.97] > overshoot[0.9] > 0.0
    assert explore.momentum_paths(0.9, 0.03, 200)["nesterov"]["overshoot"] < overshoot[0.9]  # look-ahead brakes


def test_momentum_matches_bpkit_optim():
    # The explorer's heavy-ball update is the course optimizer's update, step for step.
    from bpkit.functions import PROBLEMS, descend
    from bpkit.optim import Momentum

    for problem in explore.MOMENTUM_PROBLEMS:
        data = explore.momentum_paths(0.8, explore.MOMENTUM_LR[problem], 30, problem)
        path = descend(
            PROBLEMS[problem]["grad"],
            PROBLEMS[problem]["start"],
            lambda p: Momentum(p, lr=explore.MOMENTUM_LR[problem], beta=0.8),  # noqa: B023 - used in this iteration
            30,
        )
        np.testing.assert_allclose(data["momentum"]["path"], path, rtol=1e-10, atol=1e-12)


def test_momentum_speeds_up_the_valley_and_too_large_lr_diverges():
    data = explore.momentum_paths(0.9, 0.03, 100)
    assert data["momentum"]["loss"][-1] < data["plain"]["loss"][-1]
    blown = explore.momentum_paths(0.9, 0.2, 100)  # lr * 25 = 5 > 2: the steep direction explodes
    assert blown["plain"]["diverged"] and blown["momentum"]["diverged"]


def test_plot_momentum_both_problems():
    for problem in explore.MOMENTUM_PROBLEMS:
        fig = explore.plot_momentum(0.9, explore.MOMENTUM_LR[problem], 50, problem=problem)
        assert fig.bpkit_data["problem"] == problem
        assert {"plain", "momentum", "nesterov"} <= set(fig.bpkit_data)
    _renders(fig)


# ---------------------------------------------------------------------------------------------
# Depth and initialisation
# ---------------------------------------------------------------------------------------------


def test_deeper_sigmoid_nets_have_smaller_first_layer_gradients():
    first = {d: explore.layer_gradient_norms(d, "sigmoid", "xavier")["grad_norm"][0] for d in (3, 6, 10)}
    # each sigmoid layer multiplies the gradient by at most 0.25 times its weights: 3 more layers, 10x less at least
    assert first[3] > 10 * first[6] > 0 and first[6] > 10 * first[10] > 0


def test_gradients_vanish_towards_the_input_for_sigmoid_but_not_for_tanh_xavier():
    sigmoid = explore.plot_depth_init(10, "sigmoid", "xavier").bpkit_data
    tanh = explore.plot_depth_init(10, "tanh", "xavier").bpkit_data
    assert sigmoid["ratio"] < 1e-4
    assert 0.1 < tanh["ratio"] < 10


def test_relu_he_keeps_gradients_level_and_normal_init_explodes():
    he = explore.layer_gradient_norms(10, "relu", "he")["grad_norm"]
    assert he.max() / he.min() < 20
    big = explore.layer_gradient_norms(10, "relu", "normal")["grad_norm"]
    assert big.min() > 1e6 * he.max()


def test_layer_gradient_norms_match_bpkit_layers_backward():
    # Rebuild the same network from bpkit.layers (same seed, same draws) and compare dL/dW.
    from bpkit.layers import Linear, Sequential, Tanh
    from bpkit.losses import MSELoss

    depth, width, batch = 4, 64, 128
    data = explore.layer_gradient_norms(depth, "tanh", "he", seed=3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((batch, width))
    target = rng.standard_normal((batch, 1))
    std = np.sqrt(2.0 / width)
    Ws = [rng.standard_normal((width, width)) * std for _ in range(depth)]
    W_out = rng.standard_normal((width, 1)) * np.sqrt(2.0 / width)
    layers = []
    for W in Ws + [W_out]:
        lin = Linear(W.shape[0], W.shape[1], np.random.default_rng(0))
        lin.W.data[...] = W
        layers += [lin, Tanh()]
    model = Sequential(*layers[:-1])  # no activation after the output layer
    loss = MSELoss()
    loss.forward(model(x), target)
    model.backward(loss.backward())
    norms = [np.linalg.norm(layer.W.grad) for layer in model.layers if isinstance(layer, Linear)][:depth]
    np.testing.assert_allclose(data["grad_norm"], norms, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Decision boundary
# ---------------------------------------------------------------------------------------------


def test_mlp_learns_the_moons():
    data = explore.train_mlp_2d("moons", 16, 0.1, 300)
    assert data["accuracy"] > 0.95
    assert data["loss"][-1] < 0.25 * data["loss"][0]
    assert len(data["loss"]) == 301


def test_more_hidden_units_fit_the_spirals_better():
    small = explore.train_mlp_2d("spirals", 2, 0.1, 300)["accuracy"]
    large = explore.train_mlp_2d("spirals", 32, 0.1, 300)["accuracy"]
    assert large > small + 0.2


def test_zero_epochs_is_the_untrained_network_and_runs_are_deterministic():
    untrained = explore.train_mlp_2d("moons", 8, 0.1, 0)
    assert len(untrained["loss"]) == 1
    a = explore.plot_decision_boundary("spirals", 8, 0.1, 20).bpkit_data
    b = explore.plot_decision_boundary("spirals", 8, 0.1, 20).bpkit_data
    np.testing.assert_array_equal(a["regions"], b["regions"])
    assert a["regions"].shape == (160, 160) and set(np.unique(a["regions"])) <= {0, 1, 2}


# ---------------------------------------------------------------------------------------------
# Contracts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: explore.plot_learning_rate(0.0, 10), "lr must be a finite number > 0"),
        (lambda: explore.plot_learning_rate(0.1, 10, surface="3d"), "surface must be one of"),
        (lambda: explore.plot_batch_sizes(0, 3), "batch_size must be >= 1"),
        (lambda: explore.plot_batch_sizes(8, 2.5), "epochs must be an integer"),
        (lambda: explore.plot_momentum(1.0, 0.01, 10), "beta must be a number in [0, 1)"),
        (lambda: explore.plot_momentum(0.9, 0.01, 10, problem="bowl"), "problem must be one of"),
        (lambda: explore.plot_depth_init(5, "gelu", "he"), "activation must be one of"),
        (lambda: explore.plot_depth_init(5, "relu", "kaiming"), "init must be one of"),
        (lambda: explore.plot_decision_boundary("circles", 8, 0.1, 10), "dataset must be one of"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[").replace(")", r"\)")):
        call()


def test_explore_does_not_need_ipywidgets():
    code = "import sys, bpkit.explore; assert 'ipywidgets' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
