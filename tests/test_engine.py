"""Tests for bpkit.engine: scalar autodiff with Value."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bpkit.engine import Value, topological_order
from bpkit.layers import Linear, ReLU, Sequential, Tanh
from bpkit.losses import MSELoss, SoftmaxCrossEntropy

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)


def central_difference(f, x: float, h: float = 1e-6) -> float:
    return (f(x + h) - f(x - h)) / (2 * h)


# ---- each operation: value and gradient ---------------------------------------------------


@pytest.mark.parametrize(
    "build, value, grad_a, grad_b",
    [
        # a = 3, b = -2 throughout; the gradients are the textbook partial derivatives.
        (lambda a, b: a + b, 1.0, 1.0, 1.0),
        (lambda a, b: a - b, 5.0, 1.0, -1.0),
        (lambda a, b: a * b, -6.0, -2.0, 3.0),  # d/da = b, d/db = a
        (lambda a, b: a / b, -1.5, -0.5, -0.75),  # d/da = 1/b, d/db = -a/b^2 = -3/4
        (lambda a, b: a**2 + b, 7.0, 6.0, 1.0),  # d(a^2)/da = 2a
        (lambda a, b: -a + b, -5.0, -1.0, 1.0),
    ],
)
def test_binary_ops(build, value, grad_a, grad_b):
    a, b = Value(3.0), Value(-2.0)
    out = build(a, b)
    out.backward()
    assert out.data == pytest.approx(value)
    assert a.grad == pytest.approx(grad_a)
    assert b.grad == pytest.approx(grad_b)


@pytest.mark.parametrize(
    "name, x, value, grad",
    [
        ("exp", 0.5, math.exp(0.5), math.exp(0.5)),
        ("log", 2.0, math.log(2.0), 0.5),  # d log x = 1/x
        ("tanh", 0.3, math.tanh(0.3), 1 - math.tanh(0.3) ** 2),
        ("sigmoid", 0.7, 1 / (1 + math.exp(-0.7)), (1 / (1 + math.exp(-0.7))) * (1 - 1 / (1 + math.exp(-0.7)))),
        ("relu", 1.5, 1.5, 1.0),
        ("relu", -1.5, 0.0, 0.0),
        ("relu", 0.0, 0.0, 0.0),  # the derivative at the kink is taken as 0
    ],
)
def test_unary_ops(name, x, value, grad):
    a = Value(x)
    out = getattr(a, name)()
    out.backward()
    assert out.data == pytest.approx(value)
    assert a.grad == pytest.approx(grad)
    assert out.op == name
    assert out.inputs == (a,)


def test_pow_records_exponent_and_gradient():
    a = Value(2.0)
    out = a**3
    out.backward()
    assert out.data == 8.0
    assert a.grad == 12.0  # 3 a^2
    assert out.op == "**3"
    assert (a**-1).data == 0.5


def test_numbers_on_either_side():
    a = Value(4.0)
    cases = {
        "a + 2": (a + 2, 6.0, 1.0),
        "2 + a": (2 + a, 6.0, 1.0),
        "a * 3": (a * 3, 12.0, 3.0),
        "3 * a": (3 * a, 12.0, 3.0),
        "a - 1": (a - 1, 3.0, 1.0),
        "1 - a": (1 - a, -3.0, -1.0),
        "a / 2": (a / 2, 2.0, 0.5),
        "2 / a": (2 / a, 0.5, -2.0 / 16.0),  # d(2/a)/da = -2/a^2
    }
    for text, (out, value, grad) in cases.items():
        a.grad = 0.0
        out.backward()
        assert out.data == pytest.approx(value), text
        assert a.grad == pytest.approx(grad), text
        assert all(isinstance(i, Value) for i in out.inputs), text


def test_sum_of_values_works_with_builtin_sum():
    xs = [Value(float(i)) for i in range(5)]
    total = sum(xs)  # starts from 0 + Value: needs __radd__
    total.backward()
    assert total.data == 10.0
    assert [x.grad for x in xs] == [1.0] * 5


def test_sigmoid_is_stable_at_extremes():
    assert Value(1000.0).sigmoid().data == 1.0
    assert Value(-1000.0).sigmoid().data == 0.0
    x = Value(-1000.0)
    x.sigmoid().backward()
    assert x.grad == 0.0


def test_bad_operands_raise_clear_errors():
    a = Value(2.0)
    with pytest.raises(TypeError, match="exponent must be a number"):
        a ** Value(2.0)
    with pytest.raises(TypeError):
        a + "1"
    with pytest.raises(TypeError, match="single number"):
        Value(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="takes a number"):
        Value(a)
    with pytest.raises(ValueError, match="positive"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="not a real number"):
        Value(-4.0) ** 0.5
    with pytest.raises(OverflowError, match="too large"):
        Value(1000.0).exp()


def test_repr():
    a = Value(2.0)
    assert repr(a) == "Value(data=2.0, grad=0.0)"
    (a * 3).backward()
    assert repr(a) == "Value(data=2.0, grad=3.0)"


# ---- gradients collect from every use -----------------------------------------------------


def test_a_plus_a_accumulates():
    a = Value(3.0)
    out = a + a
    out.backward()
    assert a.grad == 2.0


def test_a_times_a_accumulates():
    a = Value(3.0)
    out = a * a
    out.backward()
    assert a.grad == 6.0  # d(a^2)/da = 2a


def test_diamond():
    # a feeds two branches that meet again: d = (2a) * (a + 3), dd/da = 2(a + 3) + 2a = 4a + 6
    a = Value(1.5)
    b = a * 2
    c = a + 3
    d = b * c
    d.backward()
    assert d.data == 13.5
    assert a.grad == pytest.approx(4 * 1.5 + 6)
    assert b.grad == c.data and c.grad == b.data


def test_second_backward_accumulates_and_zero_grad_resets():
    a, b = Value(2.0), Value(-1.0)
    c = a * b
    out = c.tanh()
    out.backward()
    first = {name: v.grad for name, v in {"a": a, "b": b, "c": c, "out": out}.items()}
    out.backward()  # documented: adds the same gradients again
    for name, v in {"a": a, "b": b, "c": c, "out": out}.items():
        assert v.grad == pytest.approx(2 * first[name]), name
    out.zero_grad()
    assert [v.grad for v in (a, b, c, out)] == [0.0, 0.0, 0.0, 0.0]
    out.backward()
    assert a.grad == pytest.approx(first["a"])


# ---- topological order ----------------------------------------------------------------------


def test_topological_order_inputs_first_root_last_each_once():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = c + a
    e = d * c
    order = topological_order(e)
    assert order[-1] is e
    assert len(order) == len({id(v) for v in order}) == 5
    position = {id(v): k for k, v in enumerate(order)}
    for v in order:
        for i in v.inputs:
            assert position[id(i)] < position[id(v)]


def test_topological_order_is_the_same_for_the_same_expression():
    def build():
        x, y = Value(0.5), Value(-1.0)
        return ((x * y).tanh() + x * 2 - y.exp()).relu()

    first = [(v.op, v.data) for v in topological_order(build())]
    for _ in range(5):
        assert [(v.op, v.data) for v in topological_order(build())] == first


def test_topological_order_rejects_non_values():
    with pytest.raises(TypeError, match="expects a Value"):
        topological_order(3.0)


def test_million_node_chain_backward_does_not_recurse():
    x = Value(0.25)
    y = x
    gc.disable()  # only saves time: the garbage collector rescans the growing heap while it grows
    try:
        for _ in range(1_000_000):
            y = -y
    finally:
        gc.enable()
    y.backward()
    assert x.grad == 1.0  # (-1)^1_000_000
    assert len(topological_order(y)) == 1_000_001


def test_wide_tree():
    # 2^15 leaves summed pairwise (a balanced tree, 32,768 wide at the bottom).
    leaves = [Value(float(i)) for i in range(2**15)]
    level = leaves
    while len(level) > 1:
        level = [level[k] + level[k + 1] for k in range(0, len(level), 2)]
    root = level[0]
    root.backward()
    assert root.data == sum(range(2**15))
    assert all(leaf.grad == 1.0 for leaf in leaves)


def test_one_value_used_by_many():
    x = Value(2.0)
    total = Value(0.0)
    for k in range(5_000):
        total = total + x * k
    total.backward()
    assert x.grad == sum(range(5_000))


# ---- against finite differences -------------------------------------------------------------


def expression(x, y):
    """Uses every operation; works on floats-wrapped-in-Values and on Values."""
    return (
        (x * y + (x * 0.5).exp()) / (y**2 + 1)
        - x.tanh() * 2
        + (x - y).sigmoid() * 3
        + (2 - x).relu()
        + (y * y + 1).log()
        + 1 / (1 + x * x)
        - (-y) ** 3
    )


@PROPERTY
@given(st.floats(-2.5, 2.5), st.floats(-2.5, 2.5))
def test_gradients_match_finite_differences(x0, y0):
    assume(abs(2 - x0) > 1e-3)  # away from the ReLU kink
    x, y = Value(x0), Value(y0)
    out = expression(x, y)
    out.backward()
    fx = central_difference(lambda t: expression(Value(t), Value(y0)).data, x0)
    fy = central_difference(lambda t: expression(Value(x0), Value(t)).data, y0)
    assert x.grad == pytest.approx(fx, rel=1e-6, abs=1e-7)
    assert y.grad == pytest.approx(fy, rel=1e-6, abs=1e-7)


# ---- the same MLP built from Values and from layers -----------------------------------------


def value_matrix(a: np.ndarray) -> list[list[Value]]:
    return [[Value(v) for v in row] for row in np.atleast_2d(a)]


def value_linear(x_rows, W, b):
    """x_rows: list of rows of Values; W: rows of Values (d_in, d_out); b: [Values] (d_out)."""
    d_in, d_out = len(W), len(W[0])
    return [[sum((row[i] * W[i][j] for i in range(d_in)), b[j]) for j in range(d_out)] for row in x_rows]


def grad_of(values) -> np.ndarray:
    """The .grad of every Value in a (nested) list, as an array of the same shape."""
    return np.array([grad_of(v) for v in values]) if isinstance(values, list) else values.grad


def assert_value_mlp_matches(model: Sequential, X: np.ndarray, activation, value_loss, loss: float) -> None:
    """Rebuild model (Linear, activation, Linear) from Values, backprop value_loss(outputs), compare with the layers."""
    W1, W2 = value_matrix(model[0].W.data), value_matrix(model[2].W.data)
    b1, b2 = value_matrix(model[0].b.data)[0], value_matrix(model[2].b.data)[0]
    h = [[activation(z) for z in row] for row in value_linear(value_matrix(X), W1, b1)]
    L = value_loss(value_linear(h, W2, b2))
    L.backward()

    assert L.data == pytest.approx(loss, rel=1e-12)
    for values, param in ((W1, model[0].W), (b1, model[0].b), (W2, model[2].W), (b2, model[2].b)):
        np.testing.assert_allclose(grad_of(values), param.grad, rtol=1e-10, atol=1e-14)


def test_value_mlp_matches_layers_mse_tanh():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3))  # (N, D_in)
    T = rng.standard_normal((4, 2))  # (N, D_out)
    model = Sequential(Linear(3, 5, rng, init="xavier"), Tanh(), Linear(5, 2, rng, init="xavier"))
    model[0].b.data[:] = rng.standard_normal(5)
    model[2].b.data[:] = rng.standard_normal(2)
    loss_fn = MSELoss()
    loss = loss_fn.forward(model.forward(X), T)
    model.backward(loss_fn.backward())

    def mse(out):
        squares = [(o - t) ** 2 for row_o, row_t in zip(out, T) for o, t in zip(row_o, row_t)]
        return sum(squares) / len(squares)

    assert_value_mlp_matches(model, X, Value.tanh, mse, loss)


def test_value_mlp_matches_layers_relu_softmax_cross_entropy():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 2))
    y = np.array([0, 2, 1])
    model = Sequential(Linear(2, 4, rng), ReLU(), Linear(4, 3, rng))
    model[0].b.data[:] = 0.1  # keeps every pre-activation clear of the ReLU kink for this seed
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(model.forward(X), y)
    model.backward(loss_fn.backward())
    z1 = X @ model[0].W.data + model[0].b.data
    assert np.min(np.abs(z1)) > 1e-3

    def cross_entropy(logits):
        # -log softmax(z)[y] = log(sum_j e^z_j) - z_y (small logits: no need to shift here)
        nll = [sum(z.exp() for z in row).log() - row[label] for row, label in zip(logits, y)]
        return sum(nll) / len(nll)

    assert_value_mlp_matches(model, X, Value.relu, cross_entropy, loss)
