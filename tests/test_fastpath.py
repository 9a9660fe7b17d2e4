"""The speed-minded layers (in-place writes, cached inputs, skipped dx) compute the plain formulas."""
import numpy as np
import pytest

from bpkit.layers import Dropout, Linear, ReLU, Sequential, Tanh
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
    """The loop a learner writes: model.backward(dout) on its own line, so the first layer skips dx."""
    rng = np.random.default_rng(0)
    model = Sequential(Linear(20, 16, rng), ReLU(), Linear(16, 5, rng), dtype=dtype)
    plain = [p.data.copy() for p in model.parameters()]
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1)
    for step in range(5):
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
    model.forward(x)
    assert model.backward(dout, need_dx=False) is None
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


def test_first_layer_skips_dx_when_backward_result_is_thrown_away():
    rng = np.random.default_rng(2)
    model, first = counting_first_layer(rng)
    x, dout = rng.normal(size=(5, 6)), rng.normal(size=(5, 3))
    assert products_in(lambda: model.forward(x)) == 1  # x @ W1

    def thrown_away():
        model.backward(dout)  # a training loop's line: the result is dropped

    def kept():
        dx = model.backward(dout)
        assert dx.shape == x.shape

    assert products_in(thrown_away) == 0  # dW1 = x^T @ dout does not involve W1; dx was skipped
    skipped = [p.grad.copy() for p in model.parameters()]
    assert products_in(kept) == 1  # dx = dout @ W1^T
    for p, g in zip(model.parameters(), skipped):
        np.testing.assert_array_equal(p.grad, g)

    # A Linear called on its own decides the same way.
    first.forward(x)
    dh = np.ones((5, 4))

    def linear_thrown_away():
        first.backward(dh)

    assert products_in(linear_thrown_away) == 0
    assert products_in(lambda: first.backward(dh)) == 1  # the lambda returns it: kept


def test_thrown_away_backward_gives_the_gradients_of_a_kept_one():
    rng = np.random.default_rng(3)
    model = Sequential(Dropout(0.0, rng), Linear(6, 4, rng), Tanh(), Linear(4, 3, rng))
    x, dout = rng.normal(size=(5, 6)), rng.normal(size=(5, 3))
    model.forward(x)
    dx = model.backward(dout)
    kept = [p.grad.copy() for p in model.parameters()]
    for p in model.parameters():
        p.grad[...] = 0.0
    model.backward(dout)
    for p, g in zip(model.parameters(), kept):
        np.testing.assert_array_equal(p.grad, g)
    np.testing.assert_allclose(dx, (dout @ model[3].W.data.T * (1 - model[2]._out ** 2)) @ model[1].W.data.T)
