"""Tests for bpkit.layers: forward values, backward against finite differences, shapes, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bpkit.gradcheck import numerical_gradient, relative_error
from bpkit.layers import Dropout, Linear, Parameter, ReLU, Sequential, Sigmoid, Tanh, mlp
from bpkit.losses import SoftmaxCrossEntropy
from bpkit.optim import SGD

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)

sizes = st.integers(1, 5)
seeds = st.integers(0, 2**32 - 1)
scales = st.sampled_from([0.3, 1.0, 3.0])


def upstream(rng, shape):
    """A random, uneven upstream gradient whose entries stay clear of 0 (|G| in [0.5, 2])."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)


def well_conditioned(*grads):
    """True when no gradient entry is within 1e-3 of 0.

    Near 0 no step size gives central differences a relative error below 1e-7 for a smooth
    function: rounding (~1e-16 / eps) and truncation (~eps^2) cannot both be that small
    compared with the entry. Property tests skip such draws (saturated units, cancelling
    paths); piecewise-linear layers need no such filter.
    """
    return min(np.min(np.abs(g)) for g in grads) > 1e-3


def objective(layer, G, reset=None):
    """sum(layer(x) * G): its gradient with respect to x is exactly layer.backward(G)."""

    def f(x):
        if reset is not None:
            reset()
        return float(np.sum(layer.forward(x) * G))

    return f


# ---- backward agrees with numerical_gradient (property tests) --------------------------------


@PROPERTY
@given(n=sizes, d_in=sizes, d_out=sizes, seed=seeds, scale=scales)
def test_linear_backward_matches_numerical_gradient(n, d_in, d_out, seed, scale):
    rng = np.random.default_rng(seed)
    layer = Linear(d_in, d_out, rng)
    layer.b.data[:] = rng.standard_normal(d_out)
    x = scale * rng.standard_normal((n, d_in))
    G = upstream(rng, (n, d_out))
    layer.forward(x)
    dx = layer.backward(G)
    dW, db = layer.W.grad.copy(), layer.b.grad.copy()
    f = objective(layer, G)
    # The output is linear in x, W and b: central differences are exact up to rounding, so a
    # large step keeps rounding error far below the 1e-7 bar.
    assert relative_error(dx, numerical_gradient(f, x, eps=1e-2)) < 1e-7
    assert relative_error(dW, numerical_gradient(lambda _: f(x), layer.W.data, eps=1e-2)) < 1e-7
    assert relative_error(db, numerical_gradient(lambda _: f(x), layer.b.data, eps=1e-2)) < 1e-7


@PROPERTY
@given(n=sizes, d=sizes, seed=seeds, scale=scales)
def test_relu_backward_matches_numerical_gradient(n, d, seed, scale):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal((n, d))
    assume(np.all(np.abs(x) > 1e-3))  # away from the kink at 0
    G = upstream(rng, (n, d))
    layer = ReLU()
    layer.forward(x)
    dx = layer.backward(G)
    # Piecewise linear: exact as long as the step (1e-4) does not cross 0.
    assert relative_error(dx, numerical_gradient(objective(layer, G), x, eps=1e-4)) < 1e-7


@PROPERTY
@given(n=sizes, d=sizes, seed=seeds, scale=scales, kind=st.sampled_from([Sigmoid, Tanh]))
def test_smooth_activation_backward_matches_numerical_gradient(n, d, seed, scale, kind):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal((n, d))
    G = upstream(rng, (n, d))
    layer = kind()
    layer.forward(x)
    dx = layer.backward(G)
    assume(well_conditioned(dx))  # e.g. tanh'(5) = 2e-4: too flat for a 1e-7 comparison
    # Each output depends on one input only; eps=1e-5 balances truncation and rounding error.
    assert relative_error(dx, numerical_gradient(objective(layer, G), x, eps=1e-5)) < 1e-7


@PROPERTY
@given(n=sizes, d=sizes, seed=seeds, p=st.sampled_from([0.0, 0.2, 0.5, 0.9]))
def test_dropout_backward_matches_numerical_gradient(n, d, seed, p):
    rng = np.random.default_rng(seed)
    layer = Dropout(p, np.random.default_rng(seed + 1))
    start = layer.rng.bit_generator.state

    def same_mask():
        layer.rng.bit_generator.state = start  # every forward draws the same mask

    x = rng.standard_normal((n, d))
    G = upstream(rng, (n, d))
    same_mask()
    layer.forward(x)
    dx = layer.backward(G)
    assert relative_error(dx, numerical_gradient(objective(layer, G, same_mask), x, eps=1e-2)) < 1e-7


@PROPERTY
@given(n=sizes, d_in=sizes, d_hidden=sizes, seed=seeds)
def test_sequential_backward_matches_numerical_gradient(n, d_in, d_hidden, seed):
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(d_in, d_hidden, rng), Tanh(), Linear(d_hidden, 2, rng), Sigmoid())
    x = rng.standard_normal((n, d_in))
    G = upstream(rng, (n, 2))
    model.forward(x)
    dx = model.backward(G)
    grads = [p.grad.copy() for p in model.parameters()]
    assume(well_conditioned(dx, *grads))
    f = objective(model, G)
    assert relative_error(dx, numerical_gradient(f, x, eps=1e-5)) < 1e-7
    for p, g in zip(model.parameters(), grads):
        assert relative_error(g, numerical_gradient(lambda _: f(x), p.data, eps=1e-5)) < 1e-7


# ---- forward values ---------------------------------------------------------------------------


def test_linear_forward_is_x_at_W_plus_b():
    rng = np.random.default_rng(0)
    layer = Linear(2, 3, rng)
    layer.W.data[:] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    layer.b.data[:] = [0.5, -0.5, 0.0]
    x = np.array([[1.0, 1.0], [2.0, -1.0]])
    # row 0: [1+4, 2+5, 3+6] + b; row 1: [2-4, 4-5, 6-6] + b
    np.testing.assert_array_equal(layer(x), [[5.5, 6.5, 9.0], [-1.5, -1.5, 0.0]])


def test_linear_backward_formulas_by_hand():
    rng = np.random.default_rng(0)
    layer = Linear(2, 2, rng)
    layer.W.data[:] = [[1.0, 2.0], [3.0, 4.0]]
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    dout = np.array([[1.0, -1.0], [0.5, 2.0]])
    layer.forward(x)
    dx = layer.backward(dout)
    np.testing.assert_array_equal(layer.W.grad, [[1.0, -1.0], [1.0, 4.0]])  # x^T @ dout
    np.testing.assert_array_equal(layer.b.grad, [1.5, 1.0])  # column sums of dout
    np.testing.assert_array_equal(dx, [[-1.0, -1.0], [4.5, 9.5]])  # dout @ W^T


def test_activation_values():
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(ReLU()(x), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(Tanh()(x), np.tanh(x))
    np.testing.assert_allclose(Sigmoid()(x), 1 / (1 + np.exp(-x)))


def test_sigmoid_layer_stable_at_extremes():
    with np.errstate(all="raise", under="ignore"):
        out = Sigmoid()(np.array([[-1000.0, 1000.0]]))
    np.testing.assert_array_equal(out, [[0.0, 1.0]])


def test_relu_gradient_is_zero_at_exactly_zero():
    layer = ReLU()
    layer.forward(np.array([[-1.0, 0.0, 1.0]]))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])


def test_layers_do_not_modify_their_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    dout = rng.standard_normal((4, 3))
    for layer in (ReLU(), Sigmoid(), Tanh(), Dropout(0.5, rng), Linear(3, 3, rng)):
        x_before, dout_before = x.copy(), dout.copy()
        layer.forward(x)
        layer.backward(dout)
        np.testing.assert_array_equal(x, x_before)
        np.testing.assert_array_equal(dout, dout_before)


# ---- parameters and their gradients --------------------------------------------------------


def test_backward_sets_grads_in_place_and_does_not_accumulate():
    rng = np.random.default_rng(0)
    layer = Linear(3, 2, rng)
    W_grad, b_grad = layer.W.grad, layer.b.grad
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(dout)
    first = layer.W.grad.copy()
    layer.backward(dout)
    np.testing.assert_array_equal(layer.W.grad, first)  # set, not added
    assert layer.W.grad is W_grad and layer.b.grad is b_grad  # the same arrays, written in place


def test_parameter_basics():
    p = Parameter(np.array([[1, 2], [3, 4]]), "W")
    assert p.data.dtype == np.float64  # integers become floats
    assert p.grad.shape == (2, 2) and not p.grad.any()
    assert p.name == "W" and p.shape == (2, 2) and p.size == 4
    assert repr(p) == "Parameter(name='W', shape=(2, 2), dtype=float64)"


def test_linear_parameters_and_shapes():
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, rng)
    W, b = layer.parameters()
    assert W is layer.W and b is layer.b
    assert W.shape == (4, 3) and b.shape == (3,)
    assert not b.data.any()  # biases start at zero
    assert (W.name, b.name) == ("W", "b")


@pytest.mark.parametrize(
    "init, std",
    [("he", np.sqrt(2 / 200)), ("xavier", np.sqrt(2 / 500)), ("xavier_uniform", np.sqrt(2 / 500)), ("normal", 0.01)],
)
def test_linear_init_scales(init, std):
    layer = Linear(200, 300, np.random.default_rng(0), init=init)
    assert layer.W.data.std() == pytest.approx(std, rel=0.02)  # 60,000 draws: about 0.3% noise


def test_linear_callable_init():
    layer = Linear(2, 3, np.random.default_rng(0), init=lambda d_in, d_out, rng: np.ones((d_in, d_out)))
    np.testing.assert_array_equal(layer.W.data, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(3, 2\), expected \(d_in, d_out\) = \(2, 3\)"):
        Linear(2, 3, np.random.default_rng(0), init=lambda d_in, d_out, rng: np.ones((3, 2)))


def test_linear_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown init 'glorot'"):
        Linear(2, 3, rng, init="glorot")
    with pytest.raises(TypeError, match="np.random.Generator"):
        Linear(2, 3, 0)
    with pytest.raises(ValueError, match="d_out must be a positive integer"):
        Linear(2, 0, rng)
    with pytest.raises(ValueError, match="floating"):
        Linear(2, 3, rng, dtype=np.int64)


# ---- errors ---------------------------------------------------------------------------------


def test_linear_wrong_input_shape_names_expected_and_received():
    layer = Linear(3, 4, np.random.default_rng(0))
    with pytest.raises(ValueError) as info:
        layer.forward(np.ones((5, 2)))
    assert str(info.value) == "Linear(3, 4) expects input of shape (N, 3), got (5, 2)"
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 3\), got \(3,\).*reshape\(1, -1\)"):
        layer.forward(np.ones(3))


def test_wrong_dout_shape_names_expected_and_received():
    rng = np.random.default_rng(0)
    layer = Linear(3, 4, rng)
    layer.forward(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"expects dout of shape \(5, 4\).*got \(5, 3\)"):
        layer.backward(np.ones((5, 3)))
    relu = ReLU()
    relu.forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"expects dout of shape \(2, 2\).*got \(2,\)"):
        relu.backward(np.ones(2))


@pytest.mark.parametrize(
    "layer", [Linear(2, 2, np.random.default_rng(0)), ReLU(), Sigmoid(), Tanh(), Dropout(0.5, np.random.default_rng(0))]
)
def test_backward_before_forward_raises(layer):
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before .*forward\(\)"):
        layer.backward(np.ones((1, 2)))


def test_dropout_bad_arguments():
    with pytest.raises(ValueError, match="probability of dropping"):
        Dropout(1.0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="np.random.Generator"):
        Dropout(0.5, 0)


# ---- Dropout ----------------------------------------------------------------------------------


def test_dropout_train_drops_and_rescales():
    p = 0.3
    layer = Dropout(p, np.random.default_rng(0))
    x = np.ones((200, 500))
    out = layer(x)
    dropped = np.mean(out == 0)
    assert dropped == pytest.approx(p, abs=0.01)  # 100,000 draws
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / (1 - p)])  # kept units carry 1/(1-p)
    dout = np.full_like(x, 2.0)
    np.testing.assert_array_equal(layer.backward(dout), out * 2.0)  # the same mask


def test_dropout_eval_is_identity():
    layer = Dropout(0.5, np.random.default_rng(0)).eval()
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(np.ones((2, 3))), np.ones((2, 3)))
    layer.train()
    assert np.any(layer(x) != x)


# ---- Sequential -------------------------------------------------------------------------------


def make_mlp(rng, dtype=np.float64):
    return Sequential(Linear(4, 8, rng, dtype=dtype), ReLU(), Linear(8, 3, rng, dtype=dtype))


def test_sequential_container_behaviour():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(4, 8, rng), ReLU(), Dropout(0.5, rng), Linear(8, 3, rng))
    assert len(model) == 4
    assert isinstance(model[1], ReLU) and model[-1] is model.layers[-1]
    assert [type(layer) for layer in model] == [Linear, ReLU, Dropout, Linear]
    assert isinstance(model[:2], Sequential) and model[:2][0] is model[0]
    assert model.parameters() == [model[0].W, model[0].b, model[3].W, model[3].b]
    model.eval()
    assert not any(layer.training for layer in model)
    model.train()
    assert all(layer.training for layer in model)
    x = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(model.eval()(x), model.forward(x))


def test_sequential_repr_lists_layers_shapes_and_counts():
    model = Sequential(Linear(784, 100, np.random.default_rng(0)), ReLU(), Linear(100, 10, np.random.default_rng(0)))
    assert repr(model) == (
        "Sequential(  # 79,510 parameters, float64\n"
        "  (0) Linear(784, 100)  W (784, 100) + b (100,) = 78,500 parameters\n"
        "  (1) ReLU()\n"
        "  (2) Linear(100, 10)  W (100, 10) + b (10,) = 1,010 parameters\n"
        ")"
    )


def test_sequential_rejects_a_list_and_non_layers():
    with pytest.raises(TypeError, match=r"Sequential\(\*layers\)"):
        Sequential([ReLU(), Tanh()])
    with pytest.raises(TypeError, match="not a layer"):
        Sequential(ReLU(), "tanh")


def test_input_grad_false_gives_the_same_parameter_gradients():
    rng = np.random.default_rng(0)
    model = Sequential(Dropout(0.0, rng), Linear(4, 8, rng), ReLU(), Linear(8, 3, rng))
    x, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    model.forward(x)
    assert model.input_grad is True
    dx = model.backward(dout)
    assert dx.shape == (5, 4)
    full = [p.grad.copy() for p in model.parameters()]
    for p in model.parameters():
        p.grad[...] = 0.0
    model.input_grad = False
    assert model[1].input_grad is False  # the flag lives on the first layer with parameters
    assert model.backward(dout) is None
    for p, g in zip(model.parameters(), full):
        np.testing.assert_array_equal(p.grad, g)


def test_input_grad_is_shown_and_checked():
    rng = np.random.default_rng(0)
    assert repr(Linear(3, 2, rng, input_grad=False)) == "Linear(3, 2, input_grad=False)"
    assert repr(mlp(3, [4, 2], rng)).splitlines()[1].startswith("  (0) Linear(3, 4, input_grad=False)  W (3, 4)")
    with pytest.raises(TypeError, match=r"Linear: input_grad must be True .* or False .*, got 'no'"):
        Linear(3, 2, rng, input_grad="no")
    with pytest.raises(TypeError, match="Sequential: input_grad must be True"):
        Sequential(Linear(3, 2, rng), input_grad=0)
    with pytest.raises(TypeError, match="no layer has any"):
        Sequential(ReLU(), input_grad=False)
    assert Sequential(ReLU()).input_grad is True
    # A slice shares the layers and reads their flags; it does not reset them.
    model = mlp(3, [4, 2], rng)
    assert model[:2].input_grad is False and model[1:].input_grad is True and model[0].input_grad is False


def test_matches_hand_written_numpy_backprop():
    rng = np.random.default_rng(3)
    model = make_mlp(rng)
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    loss = SoftmaxCrossEntropy()
    loss.forward(model(X), y)
    model.backward(loss.backward())
    # The same network written out by hand.
    W1, b1, W2, b2 = (p.data for p in model.parameters())
    z1 = X @ W1 + b1
    h = np.maximum(z1, 0)
    logits = h @ W2 + b2
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    dlogits = (probs - np.eye(3)[y]) / 6
    dW2, db2 = h.T @ dlogits, dlogits.sum(0)
    dz1 = (dlogits @ W2.T) * (z1 > 0)
    dW1, db1 = X.T @ dz1, dz1.sum(0)
    for p, g in zip(model.parameters(), (dW1, db1, dW2, db2)):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-15)


# ---- dtype --------------------------------------------------------------------------------------


def test_float32_stays_float32_end_to_end():
    rng = np.random.default_rng(0)
    model = make_mlp(rng, dtype=np.float32)
    X = rng.standard_normal((6, 4))  # float64 data: the first Linear casts it
    y = rng.integers(0, 3, 6)
    loss = SoftmaxCrossEntropy()
    out = model(X)
    assert out.dtype == np.float32
    value = loss.forward(out, y)
    assert isinstance(value, float)
    dout = loss.backward()
    assert dout.dtype == np.float32
    dx = model.backward(dout)
    assert dx.dtype == np.float32
    assert all(p.data.dtype == p.grad.dtype == np.float32 for p in model.parameters())
    SGD(model.parameters(), lr=0.1).step()
    assert all(p.data.dtype == np.float32 for p in model.parameters())


def test_sequential_dtype_casts_every_parameter():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(4, 8, rng), Tanh(), Linear(8, 3, rng), dtype=np.float32)
    assert model.dtype == np.float32
    assert all(p.data.dtype == p.grad.dtype == np.float32 for p in model.parameters())
    assert model(np.ones((2, 4))).dtype == np.float32
    assert "float32" in repr(model)


# ---- mlp ----------------------------------------------------------------------------------------


def test_mlp_is_linear_layers_with_activations_between_and_logits_last():
    model = mlp(64, [128, 32, 10], np.random.default_rng(0))
    assert [type(layer) for layer in model] == [Linear, ReLU, Linear, ReLU, Linear]
    assert [(layer.d_in, layer.d_out) for layer in model if isinstance(layer, Linear)] == [
        (64, 128),
        (128, 32),
        (32, 10),
    ]
    assert model(np.zeros((5, 64))).shape == (5, 10)
    assert [type(layer) for layer in mlp(3, [2], np.random.default_rng(0))] == [Linear]  # no hidden layer


def test_mlp_draws_the_weights_of_the_same_layers_built_by_hand():
    by_hand_rng = np.random.default_rng(7)
    by_hand = [Linear(4, 6, by_hand_rng, init="xavier"), Linear(6, 3, by_hand_rng, init="xavier")]
    model = mlp(4, [6, 3], np.random.default_rng(7), activation="tanh", init="xavier")
    assert [type(layer) for layer in model] == [Linear, Tanh, Linear]
    for ours, theirs in zip(model.parameters(), [p for layer in by_hand for p in layer.parameters()]):
        np.testing.assert_array_equal(ours.data, theirs.data)


def test_mlp_activation_by_name_or_class_and_dropout_after_each_hidden_activation():
    assert isinstance(mlp(2, [3, 1], np.random.default_rng(0), activation="sigmoid")[1], Sigmoid)
    assert isinstance(mlp(2, [3, 1], np.random.default_rng(0), activation=Tanh)[1], Tanh)
    rng = np.random.default_rng(0)
    model = mlp(2, [3, 3, 1], rng, dropout=0.25)
    assert [type(layer) for layer in model] == [Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear]
    assert all(layer.p == 0.25 and layer.rng is rng for layer in model if isinstance(layer, Dropout))


def test_mlp_passes_a_callable_init_on_to_every_layer():
    shapes = []

    def ones(d_in, d_out, rng):
        shapes.append((d_in, d_out))
        return np.ones((d_in, d_out))

    model = mlp(3, [5, 2], np.random.default_rng(0), init=ones)
    assert shapes == [(3, 5), (5, 2)]
    assert all(np.all(layer.W.data == 1.0) for layer in model if isinstance(layer, Linear))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"nin": 0}, ValueError, "mlp: nin, the number of inputs, must be a positive integer, got 0"),
        ({"nin": 2.5}, ValueError, "nin, the number of inputs, must be a positive integer"),
        ({"nouts": []}, ValueError, r"nouts must be a non-empty list of layer widths .* e\.g\. \[128, 10\]"),
        ({"nouts": 10}, ValueError, "nouts must be a non-empty list of layer widths"),
        ({"nouts": [8, 0]}, ValueError, r"every width in nouts must be a positive integer, got 0 in \[8, 0\]"),
        ({"nouts": [8, True]}, ValueError, "every width in nouts must be a positive integer, got True"),
        ({"activation": "gelu"}, ValueError, r"unknown activation 'gelu'; use one of \['relu', 'sigmoid', 'tanh'\]"),
        ({"activation": 3}, TypeError, "activation must be a name or a layer class like ReLU, got int"),
        ({"dropout": 1.0}, ValueError, r"dropout is the probability of dropping a hidden unit, in \[0, 1\); got 1.0"),
        ({"init": "kaiming"}, ValueError, "mlp: unknown init 'kaiming'"),
        ({"rng": 0}, TypeError, "mlp: rng must be a np.random.Generator"),
    ],
)
def test_mlp_rejects_bad_arguments_with_a_clear_message(kwargs, error, message):
    arguments = {"nin": 4, "nouts": [8, 3], "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(error, match=message):
        mlp(**arguments)
