"""Tests for bpkit.diagnostics: each health statistic moves the right way on models built to be
healthy, saturated or dead, and the numbers are the ones a hand computation gives."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from bpkit.data import make_moons
from bpkit.diagnostics import dashboard, format_table, training_stats
from bpkit.layers import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh
from bpkit.losses import SoftmaxCrossEntropy
from bpkit.optim import SGD


def big_weights(d_in: int, d_out: int, rng: np.random.Generator) -> np.ndarray:
    """N(0, 10^2) weights: pre-activations in the hundreds, far into the flat part of sigmoid/tanh."""
    return rng.normal(0.0, 10.0, size=(d_in, d_out))


@pytest.fixture(scope="module")
def batch():
    X, y = make_moons(256, noise=0.1, rng=np.random.default_rng(0))
    return (X - X.mean(axis=0)) / X.std(axis=0), y  # standardised, as a healthy setup has it


def healthy() -> Sequential:
    """He-initialised ReLU net: the textbook healthy start."""
    rng = np.random.default_rng(1)
    return Sequential(Linear(2, 32, rng, "he"), ReLU(), Linear(32, 32, rng, "he"), ReLU(), Linear(32, 2, rng, "he"))


def saturated(act=Sigmoid) -> Sequential:
    """Sigmoid (or tanh) net with huge weights."""
    rng = np.random.default_rng(1)
    return Sequential(
        Linear(2, 32, rng, big_weights), act(), Linear(32, 32, rng, big_weights), act(), Linear(32, 2, rng, big_weights)
    )


def dead() -> Sequential:
    """The healthy net with big negative first-layer biases: every ReLU outputs 0."""
    model = healthy()
    model.layers[0].b.data[:] = -10.0
    return model


def rows_of(stats, kind):
    return [r for r in stats["layers"] if r["kind"] == kind]


def test_healthy_model_is_ok_everywhere(batch):
    stats = training_stats(healthy(), *batch, SoftmaxCrossEntropy())
    assert [r["verdict"] for r in stats["layers"]] == ["ok"] * 5
    assert all(r["dead"] < 0.1 for r in rows_of(stats, "relu"))
    ratios = [r["update_ratio"] for r in rows_of(stats, "linear")]
    assert all(1e-4 < q < 1e-1 for q in ratios)


@pytest.mark.parametrize("act, kind", [(Sigmoid, "sigmoid"), (Tanh, "tanh")])
def test_saturated_units_are_counted(batch, act, kind):
    bad = training_stats(saturated(act), *batch, SoftmaxCrossEntropy())
    rng = np.random.default_rng(1)
    good_model = Sequential(
        Linear(2, 32, rng, "xavier"), act(), Linear(32, 32, rng, "xavier"), act(), Linear(32, 2, rng, "xavier")
    )
    good = training_stats(good_model, *batch, SoftmaxCrossEntropy())
    for bad_row, good_row in zip(rows_of(bad, kind), rows_of(good, kind)):
        assert bad_row["saturated"] > 0.5 > 0.05 > good_row["saturated"]
        assert bad_row["verdict"] == "saturated" and good_row["verdict"] == "ok"


def test_saturation_fraction_is_the_definition(batch):
    X, y = batch
    model = saturated(Sigmoid)
    stats = training_stats(model, X, y, SoftmaxCrossEntropy())
    # Recompute by hand: sigmoid of the first Linear's output, |a - 0.5| > 0.49.
    z = X @ model.layers[0].W.data + model.layers[0].b.data
    a = 1.0 / (1.0 + np.exp(-z))
    assert stats["layers"][1]["saturated"] == pytest.approx(np.mean(np.abs(a - 0.5) > 0.49))
    assert stats["layers"][1]["act_mean"] == pytest.approx(a.mean())
    assert stats["layers"][0]["act_std"] == pytest.approx(z.std())


def test_dead_relus_are_found(batch):
    stats = training_stats(dead(), *batch, SoftmaxCrossEntropy())
    relu_rows = rows_of(stats, "relu")
    assert relu_rows[0]["dead"] == 1.0 and relu_rows[0]["verdict"] == "dead"
    # Nothing flows back through dead units: the first layer gets no gradient at all.
    assert stats["layers"][0]["grad_norm"] == 0.0 and stats["layers"][0]["verdict"] == "vanishing"
    healthy_relu = rows_of(training_stats(healthy(), *batch, SoftmaxCrossEntropy()), "relu")[0]
    assert healthy_relu["dead"] < relu_rows[0]["dead"]


def test_a_unit_is_dead_only_if_zero_for_every_example():
    rng = np.random.default_rng(0)
    lin = Linear(3, 4, rng)
    lin.W.data[...] = np.eye(3, 4)  # unit j copies input j; unit 3 gets only its bias
    lin.b.data[...] = [0.0, 0.0, 0.0, -1.0]
    X = np.array([[1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]])  # unit 0 fires once, units 1, 2, 3 never
    model = Sequential(lin, ReLU(), Linear(4, 2, rng))
    stats = training_stats(model, X, np.array([0, 1]), SoftmaxCrossEntropy())
    assert stats["layers"][1]["dead"] == pytest.approx(3 / 4)


def test_vanishing_gradients_in_a_deep_sigmoid_net(batch):
    rng = np.random.default_rng(2)
    layers = [Linear(2, 32, rng, "xavier"), Sigmoid()]
    for _ in range(8):
        layers += [Linear(32, 32, rng, "xavier"), Sigmoid()]
    model = Sequential(*layers, Linear(32, 2, rng, "xavier"))
    stats = training_stats(model, *batch, SoftmaxCrossEntropy())
    linear = rows_of(stats, "linear")
    assert linear[0]["verdict"] == "vanishing"
    assert linear[0]["grad_norm"] < 1e-3 * linear[-1]["grad_norm"]


def test_update_ratio_is_lr_times_grad_over_data(batch):
    X, y = batch
    model = healthy()
    loss = SoftmaxCrossEntropy()
    stats = training_stats(model, X, y, loss, lr=0.5)
    # Re-derive with an ordinary forward/backward.
    loss.forward(model(X), y)
    model.backward(loss.backward())
    W = model.layers[2].W
    expected = 0.5 * np.linalg.norm(W.grad) / np.linalg.norm(W.data)
    assert stats["layers"][2]["update_ratio"] == pytest.approx(expected)
    param = next(p for p in stats["params"] if p["name"] == "layer 2 W")
    assert param["update_ratio"] == pytest.approx(expected) and param["shape"] == (32, 32)
    bias = next(p for p in stats["params"] if p["name"] == "layer 1 b")
    assert bias["data_norm"] == 0.0 and bias["update_ratio"] == float("inf")  # fresh zero bias


def test_learning_rate_comes_from_the_optimizer(batch):
    model = healthy()
    via_lr = training_stats(model, *batch, SoftmaxCrossEntropy(), lr=0.2)
    via_opt = training_stats(model, *batch, SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.2))
    assert via_opt["lr"] == 0.2
    assert via_opt["layers"][0]["update_ratio"] == pytest.approx(via_lr["layers"][0]["update_ratio"])
    default = training_stats(model, *batch, SoftmaxCrossEntropy())
    assert default["lr"] == 1e-2
    assert via_lr["layers"][0]["update_ratio"] == pytest.approx(20 * default["layers"][0]["update_ratio"])


def test_model_is_left_as_it_was(batch):
    rng = np.random.default_rng(5)
    model = Sequential(Linear(2, 16, rng), ReLU(), Dropout(0.5, rng), Linear(16, 2, rng))
    for p in model.parameters():
        p.grad[...] = 7.0
    state = rng.bit_generator.state
    weights = [p.data.copy() for p in model.parameters()]
    training_stats(model, *batch, SoftmaxCrossEntropy())
    assert all(np.all(p.grad == 7.0) for p in model.parameters())
    assert rng.bit_generator.state == state  # dropout draws do not shift a training run
    assert all(np.array_equal(p.data, w) for p, w in zip(model.parameters(), weights))


def test_nested_sequential_is_opened_up(batch):
    rng = np.random.default_rng(0)
    block = Sequential(Linear(2, 8, rng), Tanh())
    stats = training_stats(Sequential(block, Linear(8, 2, rng)), *batch, SoftmaxCrossEntropy())
    assert [r["kind"] for r in stats["layers"]] == ["linear", "tanh", "linear"]


def test_dashboard_prints_the_table_and_returns_the_figure(batch, capsys):
    fig = dashboard(saturated(), *batch, SoftmaxCrossEntropy())
    printed = capsys.readouterr().out
    assert isinstance(fig, Figure)
    assert printed.strip() == format_table(fig.bpkit_data)
    lines = printed.splitlines()
    assert lines[0].split()[:3] == ["layer", "kind", "act"]
    assert "saturated" in lines[3] and "1 Sigmoid()" in lines[3]
    # histograms: 2 sigmoid stages + the output, two rows each, plus the update-ratio bars
    assert len(fig.axes) == 3 * 2 + 1


def test_update_ratio_bars_are_labelled_by_layer_in_words(batch):
    fig = dashboard(healthy(), *batch, SoftmaxCrossEntropy())
    labels = [tick.get_text() for tick in fig.axes[-1].get_xticklabels()]
    assert labels == ["layer 1 W", "layer 2 W", "layer 3 W"]  # fresh zero biases have no ratio to show


def test_a_mean_that_rounds_to_zero_has_no_sign(batch):
    stats = training_stats(healthy(), *batch, SoftmaxCrossEntropy())
    stats["layers"][0]["act_mean"] = -1e-17  # the sign of a sum of standardised data is noise
    assert "-0.000" not in format_table(stats)
    stats["layers"][0]["act_mean"] = -0.25
    assert "-0.250" in format_table(stats)


def test_table_is_rounded_and_repeatable(batch):
    a = format_table(training_stats(healthy(), *batch, SoftmaxCrossEntropy()))
    b = format_table(training_stats(healthy(), *batch, SoftmaxCrossEntropy()))
    assert a == b
    assert "0 Linear(2, 32)" in a and "ok" in a


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"model": Linear(2, 2, np.random.default_rng(0))}, TypeError, "needs a bpkit.layers.Sequential"),
        ({"X": np.zeros(5)}, ValueError, "X must be a batch of shape"),
        ({"lr": 0.0}, ValueError, "lr must be a finite number > 0"),
        ({"optimizer": object()}, TypeError, "has no .lr"),
    ],
)
def test_bad_input_is_explained(batch, kwargs, error, message):
    args = {"model": healthy(), "X": batch[0], "y": batch[1], "loss": SoftmaxCrossEntropy()} | kwargs
    with pytest.raises(error, match=message):
        training_stats(**args)
