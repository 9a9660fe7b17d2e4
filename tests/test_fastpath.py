"""The speed-minded layers (in-place writes, cached inputs, skipped dx) compute the plain formulas."""
import numpy as np
import pytest

from bpkit.layers import Linear, ReLU, Sequential
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
    rng = np.random.default_rng(0)
    model = Sequential(Linear(20, 16, rng), ReLU(), Linear(16, 5, rng), dtype=dtype)
    plain = [p.data.copy() for p in model.parameters()]
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1)
    for step in range(5):
        x = rng.normal(size=(8, 20)).astype(dtype)
        y = rng.integers(0, 5, size=8)
        loss = loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward(), need_dx=False)
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
