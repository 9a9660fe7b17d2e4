"""The speed-minded layers (in-place writes, cached inputs, skipped dx) compute the plain formulas."""

import sys

import numpy as np
import pytest

from bpkit.layers import Dropout, Linear, ReLU, Sequential, Tanh, mlp
from bpkit.losses import SoftmaxCrossEntropy
from bpkit.optim import SGD


def plain_step(params, x, y, lr):
    """Textbook 2-layer MLP step, every array freshly allocated, no in-place tricks."""
    W1, b1, W2, b2 = params
    z1 = x @ W1 + b1
    h = np.maximum(z1, 0)
    logits = h @ W2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(probs[np.arange(len(y)), y]))
    dlogits = (probs - np.eye(logits.shape[1])[y]) / len(y)
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(axis=0)
    dz1 = (dlogits @ W2.T) * (z1 > 0)
    dW1 = x.T @ dz1
    db1 = dz1.sum(axis=0)
    new = [W1 - lr * dW1, b1 - lr * db1, W2 - lr * dW2, b2 - lr * db2]
    return new, loss, [dW1, db1, dW2, db2]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_training_steps_match_plain_numpy(dtype, tol):
    """The loop a learner writes, on a network whose first layer skips dx (input_grad=False, as mlp builds it)."""
    rng = np.random.default_rng(0)
    model = Sequential(Linear(20, 16, rng, input_grad=False), ReLU(), Linear(16, 5, rng), dtype=dtype)
    plain = [p.data.copy() for p in model.parameters()]
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        x = rng.normal(size=(8, 20)).astype(dtype)
        y = rng.integers(0, 5, size=8)
        loss = loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        grads = [p.grad.copy() for p in model.parameters()]
        opt.step()
        plain, plain_loss, plain_grads = plain_step(plain, x, y, 0.1)
        assert loss == pytest.approx(float(plain_loss), rel=tol)
        for fast, ref in zip(grads, plain_grads):
            np.testing.assert_allclose(fast, ref, rtol=tol, atol=tol)
        for p, ref in zip(model.parameters(), plain):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(p.data, ref, rtol=tol, atol=tol)


def test_skipping_dx_leaves_parameter_gradients_unchanged():
    rng = np.random.default_rng(1)
    model = Sequential(Linear(6, 4, rng), ReLU(), Linear(4, 3, rng))
    x, dout = rng.normal(size=(5, 6)), rng.normal(size=(5, 3))
    model.forward(x)
    dx = model.backward(dout)
    with_dx = [p.grad.copy() for p in model.parameters()]
    model.input_grad = False
    model.forward(x)
    assert model.backward(dout) is None
    for p, g in zip(model.parameters(), with_dx):
        np.testing.assert_array_equal(p.grad, g)
    assert dx.shape == x.shape


class MatmulCounter(np.ndarray):
    """A weight array that counts the matrix products it takes part in (x @ W forward, dout @ W^T for dx)."""

    products = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc is np.matmul:
            MatmulCounter.products += 1
        inputs = tuple(np.asarray(a) for a in inputs)  # compute on plain arrays
        return getattr(ufunc, method)(*inputs, **kwargs)


def products_in(step):
    """Number of matrix products with a first-layer weight during step()."""
    MatmulCounter.products = 0
    step()
    return MatmulCounter.products


def counting_first_layer(rng):
    model = Sequential(Linear(6, 4, rng), ReLU(), Linear(4, 3, rng))
    first = model[0]
    first.W.data = first.W.data.view(MatmulCounter)
    return model, first


def test_first_layer_skips_dx_when_built_without_input_grad():
    rng = np.random.default_rng(2)
    model, first = counting_first_layer(rng)
    x, dout = rng.normal(size=(5, 6)), rng.normal(size=(5, 3))
    assert products_in(lambda: model.forward(x)) == 1  # x @ W1
    assert products_in(lambda: model.backward(dout)) == 1  # dx = dout @ W1^T: input_grad is True by default
    with_dx = [p.grad.copy() for p in model.parameters()]

    model.input_grad = False  # what mlp() builds: the first layer is fed the data
    assert first.input_grad is False
    assert products_in(lambda: model.backward(dout)) == 0  # dW1 = x^T @ dout does not involve W1
    for p, g in zip(model.parameters(), with_dx):
        np.testing.assert_array_equal(p.grad, g)

    # A Linear called on its own decides the same way.
    first.forward(x)
    dh = np.ones((5, 4))
    assert products_in(lambda: first.backward(dh)) == 0
    first.input_grad = True
    assert products_in(lambda: first.backward(dh)) == 1


def backward_as(mode: str, model, dout):
    """Run `model.backward(dout)` as the last line of an IPython cell ("single": its value is displayed),
    as a statement ("exec") or as an assignment; return (value seen, first-layer matrix products)."""
    seen = []
    namespace = {"model": model, "dout": dout, "seen": seen}
    source = {
        "single": "model.backward(dout)",
        "exec": "model.backward(dout)",
        "assign": "seen.append(model.backward(dout))",
    }[mode]
    code = compile(source, "<cell>", "single" if mode == "single" else "exec")
    hook = sys.displayhook
    sys.displayhook = seen.append  # what IPython's display of a last expression receives
    try:
        products = products_in(lambda: exec(code, namespace))
    finally:
        sys.displayhook = hook
    return (seen[0] if seen else None), products


@pytest.mark.parametrize("input_grad", [True, False])
def test_backward_does_the_same_whatever_the_caller_does_with_its_result(input_grad):
    """The decision is data on the model: a cell's last line, a statement and an assignment all get the same."""
    rng = np.random.default_rng(4)
    model, first = counting_first_layer(rng)
    model.input_grad = input_grad
    x, dout = rng.normal(size=(5, 6)), rng.normal(size=(5, 3))
    model.forward(x)
    results = {mode: backward_as(mode, model, dout) for mode in ("single", "exec", "assign")}
    assert [products for _, products in results.values()] == [1 if input_grad else 0] * 3
    shown, assigned = results["single"][0], results["assign"][0]
    if input_grad:
        assert assigned.shape == x.shape
        np.testing.assert_array_equal(shown, assigned)
    else:
        assert shown is None and assigned is None


def test_mlp_skips_dx_and_visits_no_layer_below_its_first_linear():
    rng = np.random.default_rng(3)
    model = mlp(6, [4, 3], rng)
    assert model.input_grad is False and model[0].input_grad is False and model[2].input_grad is True
    x, dout = rng.normal(size=(5, 6)), rng.normal(size=(5, 3))
    model.forward(x)
    assert model.backward(dout) is None
    skipped = [p.grad.copy() for p in model.parameters()]
    model.input_grad = True
    dx = model.backward(dout)
    assert dx.shape == x.shape
    for p, g in zip(model.parameters(), skipped):
        np.testing.assert_array_equal(p.grad, g)


def test_layers_below_the_first_linear_are_not_visited_without_input_grad():
    rng = np.random.default_rng(3)
    model = Sequential(Dropout(0.0, rng), Linear(6, 4, rng), Tanh(), Linear(4, 3, rng))
    x, dout = rng.normal(size=(5, 6)), rng.normal(size=(5, 3))
    model.forward(x)
    dx = model.backward(dout)
    kept = [p.grad.copy() for p in model.parameters()]
    np.testing.assert_allclose(dx, (dout @ model[3].W.data.T * (1 - model[2]._out ** 2)) @ model[1].W.data.T)

    model = Sequential(Dropout(0.0, rng), *model.layers[1:], input_grad=False)
    assert model[1].input_grad is False
    model[0]._shape = None  # a visited Dropout would now raise "backward() was called before forward()"
    for p in model.parameters():
        p.grad[...] = 0.0
    assert model.backward(dout) is None
    for p, g in zip(model.parameters(), kept):
        np.testing.assert_array_equal(p.grad, g)
