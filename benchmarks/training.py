"""Training throughput of a 784-100-10 ReLU MLP (MNIST shapes), five ways, measured side by side.

Every contender trains on the same synthetic MNIST-shaped data (random pixels, random labels:
the cost of a step does not depend on what the pixels show) for one epoch, in the same order,
with softmax cross-entropy and plain SGD, and computes the loss of every batch.
"""

from __future__ import annotations

import os
import time

import numpy as np

from bpkit.layers import Linear, ReLU, Sequential
from bpkit.losses import SoftmaxCrossEntropy
from bpkit.optim import SGD
from bpkit.train import fit

D_IN, HIDDEN, CLASSES = 784, 100, 10
LR = 0.01

# FLOPs per training sample: forward x@W1, h@W2; backward dW2, dh, dW1 (no dx for the data).
# Elementwise work (ReLU, softmax, updates) is left out, so GFLOP/s are a slight underestimate.
FLOPS_PER_SAMPLE = 2 * (D_IN * HIDDEN + HIDDEN * CLASSES) + 2 * (HIDDEN * CLASSES * 2 + D_IN * HIDDEN)


def make_data(n: int, dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped inputs scaled to [0, 1] and integer labels."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, D_IN)).astype(dtype)  # (n, 784)
    y = rng.integers(0, CLASSES, size=n)  # (n,)
    return X, y


def init_weights(dtype, seed: int = 1) -> list[np.ndarray]:
    """The same He-initialised W1, b1, W2, b2 for every contender."""
    rng = np.random.default_rng(seed)
    W1 = (rng.normal(size=(D_IN, HIDDEN)) * np.sqrt(2 / D_IN)).astype(dtype)
    W2 = (rng.normal(size=(HIDDEN, CLASSES)) * np.sqrt(2 / HIDDEN)).astype(dtype)
    return [W1, np.zeros(HIDDEN, dtype), W2, np.zeros(CLASSES, dtype)]


def bpkit_model(dtype) -> Sequential:
    """784-100-10 as mlp() builds it (the first layer, fed the data, skips dx), with the shared weights."""
    model = Sequential(
        Linear(D_IN, HIDDEN, np.random.default_rng(0), input_grad=False),
        ReLU(),
        Linear(HIDDEN, CLASSES, np.random.default_rng(0)),
        dtype=dtype,
    )
    for p, w in zip(model.parameters(), init_weights(dtype)):
        p.data[...] = w
    return model


def epoch_bpkit(X: np.ndarray, y: np.ndarray, batch: int) -> float:
    """bpkit layers + loss + optimizer, the loop a learner writes."""
    model = bpkit_model(X.dtype)
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=LR)
    start = time.perf_counter()
    for i in range(0, len(X), batch):
        logits = model.forward(X[i : i + batch])
        loss_fn.forward(logits, y[i : i + batch])
        model.backward(loss_fn.backward())
        opt.step()
    return time.perf_counter() - start


def epoch_fit(X: np.ndarray, y: np.ndarray, batch: int) -> float:
    """bpkit.train.fit (shuffles each epoch, no progress bar)."""
    model = bpkit_model(X.dtype)
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=LR)
    start = time.perf_counter()
    fit(model, loss_fn, opt, X, y, epochs=1, batch_size=batch, rng=np.random.default_rng(0), progress=False)
    return time.perf_counter() - start


def epoch_fused(X: np.ndarray, y: np.ndarray, batch: int) -> float:
    """Hand-fused NumPy: the whole step in one function, in-place where it pays."""
    W1, b1, W2, b2 = init_weights(X.dtype)
    start = time.perf_counter()
    for i in range(0, len(X), batch):
        x, t = X[i : i + batch], y[i : i + batch]
        n = len(x)
        h = x @ W1
        h += b1
        np.maximum(h, 0, out=h)  # (n, 100)
        z = h @ W2
        z += b2  # (n, 10)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        s = z.sum(axis=1)
        _loss = np.mean(np.log(s) - np.log(z[np.arange(n), t]))
        z /= s[:, None]  # softmax
        z[np.arange(n), t] -= 1
        z *= 1.0 / n  # dlogits
        dW2 = h.T @ z
        db2 = z.sum(axis=0)
        dh = z @ W2.T
        dh *= h > 0
        dW1 = x.T @ dh
        db1 = dh.sum(axis=0)
        W1 -= LR * dW1
        b1 -= LR * db1
        W2 -= LR * dW2
        b2 -= LR * db2
    return time.perf_counter() - start


def epoch_per_sample(X: np.ndarray, y: np.ndarray, batch: int) -> float:
    """One example at a time with column vectors, as in the classic book code."""
    W1, b1, W2, b2 = (w.T.copy() if w.ndim == 2 else w.reshape(-1, 1).copy() for w in init_weights(X.dtype))
    start = time.perf_counter()
    for i in range(0, len(X), batch):
        grads = [np.zeros_like(w) for w in (W1, b1, W2, b2)]
        for j in range(i, min(i + batch, len(X))):
            x = X[j].reshape(-1, 1)  # (784, 1)
            z1 = W1 @ x + b1
            h = np.maximum(z1, 0)  # (100, 1)
            z2 = W2 @ h + b2  # (10, 1)
            p = np.exp(z2 - z2.max())
            p /= p.sum()
            delta2 = p.copy()
            delta2[y[j]] -= 1
            delta1 = (W2.T @ delta2) * (z1 > 0)
            for g, d in zip(grads, (delta1 @ x.T, delta1, delta2 @ h.T, delta2)):
                g += d
        n = min(i + batch, len(X)) - i
        for w, g in zip((W1, b1, W2, b2), grads):
            w -= (LR / n) * g
    return time.perf_counter() - start


def epoch_torch(X: np.ndarray, y: np.ndarray, batch: int) -> float:
    """PyTorch CPU: nn.Sequential, CrossEntropyLoss, optim.SGD."""
    import torch

    torch.set_num_threads(blas_threads())  # as many threads as NumPy's BLAS: a like-for-like comparison
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    model = torch.nn.Sequential(torch.nn.Linear(D_IN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES)).to(
        dtype
    )
    with torch.no_grad():
        W1, b1, W2, b2 = init_weights(X.dtype)
        model[0].weight.copy_(torch.from_numpy(W1.T.copy()))
        model[0].bias.copy_(torch.from_numpy(b1))
        model[2].weight.copy_(torch.from_numpy(W2.T.copy()))
        model[2].bias.copy_(torch.from_numpy(b2))
    loss_fn, opt = torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=LR)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    start = time.perf_counter()
    for i in range(0, len(X), batch):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(Xt[i : i + batch]), yt[i : i + batch])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def gemm_peak(dtype, n: int = 1536, repeats: int = 5) -> float:
    """The machine's GEMM throughput in GFLOP/s (median of repeats), our ceiling."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / np.median(times) / 1e9


def blas_threads() -> int:
    """The threads NumPy's BLAS uses: OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) if set, else every core."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def torch_available() -> str | None:
    """torch's version, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__
