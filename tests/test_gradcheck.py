"""Tests for bpkit.gradcheck: numerical gradients, relative error, layer and model checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bpkit.gradcheck import check_layer, check_model, numerical_gradient, relative_error
from bpkit.layers import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh, mlp
from bpkit.losses import MSELoss, SoftmaxCrossEntropy

# ---- numerical_gradient ---------------------------------------------------------------------------


def test_numerical_gradient_of_known_functions():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v**2), x), 2 * x, rtol=1e-8)
    # f = x00 * x11 -> df/dx00 = x11 = 3, df/dx11 = x00 = 1, others 0
    g = numerical_gradient(lambda v: v[0, 0] * v[1, 1], x)
    np.testing.assert_allclose(g, [[3.0, 0.0], [0.0, 1.0]], atol=1e-9)
    assert g.shape == x.shape and g.dtype == np.float64


def test_numerical_gradient_leaves_x_unchanged_even_if_f_raises():
    x = np.array([0.1, 0.2, 0.3])
    before = x.copy()
    numerical_gradient(lambda v: float(np.sum(np.sin(v))), x)
    np.testing.assert_array_equal(x, before)
    calls = []

    def explodes(v):
        calls.append(v.copy())
        if len(calls) == 4:  # in the middle of the second entry
            raise RuntimeError("boom")
        return float(np.sum(v))

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(explodes, x)
    np.testing.assert_array_equal(x, before)
    assert not np.array_equal(calls[-1], before)  # it really was perturbed when f raised


def test_numerical_gradient_rejects_bad_input():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(np.sum, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="NumPy float64 array"):
        numerical_gradient(np.sum, [1.0, 2.0])
    with pytest.raises(ValueError, match="single number"):
        numerical_gradient(lambda v: v * 2, np.ones(3))
    with pytest.raises(ValueError, match="eps must be positive"):
        numerical_gradient(np.sum, np.ones(3), eps=0.0)


# ---- relative_error ---------------------------------------------------------------------------------


def test_relative_error_definition():
    a, b = np.array([1.0, 2.0, 0.0]), np.array([1.0, 2.2, 0.0])
    # entries: 0, 0.2 / 4.2, and 0 / max(0, 1e-12) = 0
    assert relative_error(a, b) == pytest.approx(0.2 / 4.2)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0]), np.array([-1.0])) == 1.0  # opposite signs: maximal
    assert relative_error(np.array([1e-13]), np.array([0.0])) == pytest.approx(0.1)  # floor 1e-12
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        relative_error(np.ones(2), np.ones(3))


# ---- check_layer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: Linear(3, 4, rng),
        lambda rng: Tanh(),
        lambda rng: Sigmoid(),
        lambda rng: ReLU(),
        lambda rng: Dropout(0.5, np.random.default_rng(1)),  # train mode: the mask is replayed
        lambda rng: Sequential(Linear(3, 5, rng), Tanh(), Dropout(0.3, rng), Linear(5, 2, rng)),
    ],
)
def test_check_layer_passes_correct_layers(make):
    rng = np.random.default_rng(0)
    layer = make(rng)
    x = rng.standard_normal((4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no kink warning for these inputs
        result = check_layer(layer, x, rng)
    assert result.max_error < 1e-6, str(result)
    assert set(result.params) == {
        "Linear": {"W", "b"},
        "Sequential": {"0.W", "0.b", "3.W", "3.b"},
    }.get(type(layer).__name__, set())


class ForgetsDout(Tanh):
    """A wrong Tanh backward: returns the local derivative and ignores dout."""

    def backward(self, dout):
        return 1.0 - self._out**2


def test_check_layer_catches_a_backward_that_ignores_dout():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    layer = ForgetsDout()
    assert check_layer(layer, x, rng).dx > 1e-2
    # With an all-ones upstream gradient the same mistake is invisible: why check_layer uses a random one.
    layer.forward(x)
    right_answer_for_ones = np.ones((3, 4)) * (1 - np.tanh(x) ** 2)  # dout * tanh'(x)
    np.testing.assert_allclose(layer.backward(np.ones((3, 4))), right_answer_for_ones)


def test_check_layer_leaves_x_and_parameters_unchanged():
    rng = np.random.default_rng(0)
    layer = Linear(3, 2, rng)
    W = layer.W.data.copy()
    x = rng.standard_normal((4, 3))
    x_before = x.copy()
    check_layer(layer, x, rng)
    np.testing.assert_array_equal(layer.W.data, W)
    np.testing.assert_array_equal(x, x_before)


def test_check_layer_warns_near_the_relu_kink():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3)) + np.sign(rng.standard_normal((3, 3)))  # |x| well away from 0 ...
    x[1, 2] = 3e-7  # ... except one entry, within eps = 1e-6 of the kink
    with pytest.warns(UserWarning, match="ReLU input across 0"):
        check_layer(ReLU(), x, rng)


def test_check_layer_warns_for_a_pre_activation_at_the_kink_inside_sequential():
    rng = np.random.default_rng(0)
    first = Linear(2, 2, rng)
    first.W.data[:] = [[1.0, 0.5], [1.0, -0.5]]
    x = np.array([[1.0, -1.0], [2.0, 1.0]])  # row 0, unit 0: 1 - 1 = 0, exactly at the kink
    with pytest.warns(UserWarning, match="kink"):
        check_layer(Sequential(first, ReLU(), Linear(2, 1, rng)), x, rng)


def test_check_layer_needs_float64():
    layer = Linear(2, 2, np.random.default_rng(0), dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        check_layer(layer, np.ones((1, 2)), np.random.default_rng(0))


# ---- check_model ----------------------------------------------------------------------------------


class LinearMissingFactor(Linear):
    """Broken on purpose: dW is half what it should be (a forgotten factor)."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.W.grad *= 0.5
        return dx


class LinearForgetsTranspose(Linear):
    """Broken on purpose: dx = dout @ W instead of dout @ W^T (only runs for square W)."""

    def backward(self, dout):
        super().backward(dout)
        return dout @ self.W.data


def model_with(middle, rng):
    return Sequential(Linear(3, 4, rng), Tanh(), middle, Tanh(), Linear(4, 3, rng))


def data(rng):
    return rng.standard_normal((5, 3)), rng.integers(0, 3, 5)


def test_check_model_passes_a_correct_model_and_lists_rows_in_forward_order(capsys):
    rng = np.random.default_rng(0)
    model = model_with(Linear(4, 4, rng), rng)
    X, y = data(rng)
    rows = check_model(model, SoftmaxCrossEntropy(), X, y)
    names = [r["name"] for r in rows]
    assert names == [
        "layers[0].W",
        "layers[0].b",
        "layers[0].dx",
        "layers[1].dx",
        "layers[2].W",
        "layers[2].b",
        "layers[2].dx",
        "layers[3].dx",
        "layers[4].W",
        "layers[4].b",
        "layers[4].dx",
    ]
    assert all(r["ok"] for r in rows), rows
    assert not any(r["first_bad"] for r in rows)
    assert rows[0]["shape"] == (3, 4) and rows[2]["shape"] == (5, 3)
    out = capsys.readouterr().out
    assert "max rel error" in out and "11 of 11 gradients agree" in out


def test_check_model_points_at_the_layer_with_a_wrong_weight_gradient(capsys):
    rng = np.random.default_rng(0)
    model = model_with(LinearMissingFactor(4, 4, rng), rng)
    X, y = data(rng)
    rows = check_model(model, SoftmaxCrossEntropy(), X, y, tol=1e-4)
    first = [r for r in rows if r["first_bad"]]
    assert [r["name"] for r in first] == ["layers[2].W"]
    assert first[0]["layer"] == "LinearMissingFactor(4, 4)"
    assert first[0]["max_rel_error"] == pytest.approx(1 / 3, rel=1e-3)  # |g - g/2| / (|g| + |g/2|)
    # only that gradient is wrong: the layer's dx is right, so nothing below it is spoiled
    assert [r["name"] for r in rows if not r["ok"]] == ["layers[2].W"]
    marked = [line for line in capsys.readouterr().out.splitlines() if "first wrong gradient" in line]
    assert len(marked) == 1 and marked[0].startswith("layers[2].W")


def test_check_model_points_at_the_layer_with_a_wrong_dx(capsys):
    rng = np.random.default_rng(0)
    model = model_with(LinearForgetsTranspose(4, 4, rng), rng)
    X, y = data(rng)
    rows = check_model(model, MSELoss(), X, rng.standard_normal((5, 3)), tol=1e-4)
    bad = [r["name"] for r in rows if not r["ok"]]
    # The wrong dx spoils every gradient computed after it in backprop (the rows above it) ...
    assert "layers[2].dx" in bad and "layers[0].W" in bad
    assert not any(name.startswith(("layers[3]", "layers[4]")) for name in bad)
    # ... and the mark points at the layer where it started, not at the first row of the table.
    assert [r["name"] for r in rows if r["first_bad"]] == ["layers[2].dx"]


def test_check_model_handles_dropout_and_leaves_parameters_unchanged():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 6, rng), Tanh(), Dropout(0.5, rng), Linear(6, 2, rng))
    before = [p.data.copy() for p in model.parameters()]
    X = rng.standard_normal((4, 3))
    rows = check_model(model, MSELoss(), X, rng.standard_normal((4, 2)), eps=1e-5, tol=1e-5)
    assert all(r["ok"] for r in rows), rows
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


def test_check_model_on_a_single_layer():
    rng = np.random.default_rng(0)
    rows = check_model(Linear(3, 2, rng), MSELoss(), rng.standard_normal((4, 3)), rng.standard_normal((4, 2)))
    assert [r["name"] for r in rows] == ["model.W", "model.b", "model.dx"]
    assert all(r["ok"] for r in rows)


def test_check_model_and_check_layer_check_the_dx_of_a_layer_that_skips_it():
    """mlp's first Linear has input_grad=False; the checkers still compare its dx, then leave the flag as it was."""
    rng = np.random.default_rng(0)
    model = mlp(3, [4, 3], rng, activation="tanh")
    assert model[0].input_grad is False
    X, y = data(rng)
    rows = check_model(model, SoftmaxCrossEntropy(), X, y)
    assert "layers[0].dx" in [r["name"] for r in rows]
    assert all(r["ok"] for r in rows), rows
    assert check_layer(model, X, rng).max_error < 1e-6
    assert model[0].input_grad is False and model.input_grad is False
    model.forward(X)
    assert model.backward(np.ones((5, 3))) is None


def test_check_layer_catches_a_wrong_dx_in_a_layer_built_without_input_grad():
    """The dx row is real for such a layer: a wrong dx formula still shows up."""
    rng = np.random.default_rng(0)
    layer = LinearForgetsTranspose(4, 4, rng, input_grad=False)
    assert check_layer(layer, rng.standard_normal((5, 4)), rng).dx > 1e-2
    assert layer.input_grad is False
