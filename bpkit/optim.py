"""Optimizers: each `step()` updates every Parameter's `.data` in place from its `.grad`.

The update rules are exactly those of lessons 07, 10 and 11 (see the docstrings). State
buffers (velocities, squared-gradient averages) are allocated once, in the constructor,
and updated in place. `.lr` can be changed between steps (learning-rate decay).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

import numpy as np

from bpkit.layers import Parameter

__all__ = ["Optimizer", "SGD", "Momentum", "RMSProp", "Adam", "clip_grad_norm"]


def _param_list(params: Iterable[Parameter], who: str) -> list[Parameter]:
    """params as a non-empty list of objects with .data and .grad arrays of equal shape."""
    if isinstance(params, Parameter):
        params = [params]
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{who}: params must be a list of Parameters, e.g. model.parameters()") from None
    if not params:
        raise ValueError(f"{who}: got no parameters; pass model.parameters() of a model with weights")
    for p in params:
        if not (isinstance(getattr(p, "data", None), np.ndarray) and isinstance(getattr(p, "grad", None), np.ndarray)):
            raise TypeError(
                f"{who}: every parameter needs .data and .grad arrays (a bpkit.layers.Parameter), "
                f"got {type(p).__name__}; pass model.parameters()"
            )
    return params


def _number(
    value: float, name: str, who: str, low: float, high: float = math.inf, low_open: bool = True, high_open: bool = True
) -> float:
    """value as a float inside the interval (low, high) (closed ends where asked)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be a finite number, got {value!r}")
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{who}: {name} must be in {interval}, got {value!r}")
    return float(value)


class Optimizer:
    """Holds the parameter list and the learning rate; subclasses implement step()."""

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = _param_list(params, type(self).__name__)
        self.lr = lr  # validated by the property setter

    @property
    def lr(self) -> float:
        """Learning rate (step size); must be > 0. Assign to it to decay it during training."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # A Python float, not a NumPy scalar: float32 parameters then stay float32.
        self._lr = _number(value, "lr", type(self).__name__, 0.0)

    def step(self) -> None:
        """Update every parameter once from its current .grad."""
        raise NotImplementedError

    def _zeros(self) -> list[np.ndarray]:
        """One zero buffer per parameter, same shape and dtype (allocated once)."""
        return [np.zeros_like(p.data) for p in self.params]


class SGD(Optimizer):
    """Plain gradient descent: w <- w - lr (g + weight_decay w).

    weight_decay is the L2 penalty (weight_decay / 2) ||w||^2 folded into the step; it
    applies to every parameter it is given (pass only weights if biases should not decay).
    """

    def __init__(self, params: Iterable[Parameter], lr: float, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.weight_decay = _number(weight_decay, "weight_decay", "SGD", 0.0, low_open=False)
        self._steps = self._zeros()  # speed: scratch arrays for lr * g, allocated once

    def step(self) -> None:
        """w <- w - lr g, with g = grad + weight_decay w."""
        lr, wd = self.lr, self.weight_decay
        for p, step in zip(self.params, self._steps):
            # step = lr * (grad + weight_decay * w)
            np.multiply(p.grad, lr, out=step)  # speed: no new array per parameter per step
            if wd:
                step += (lr * wd) * p.data
            p.data -= step


class Momentum(Optimizer):
    """Gradient descent with momentum (lesson 10): v <- beta v + g;  w <- w - lr v.

    v is a running sum of past gradients, each one beta times weaker per step: the
    "inertia" that keeps the step going in a consistent direction.

    nesterov=True uses Nesterov's look-ahead in its usual parameter form:
        v <- beta v + g(w);   w <- w - lr (beta v + g(w))
    Lesson 10 writes it with the gradient taken at the look-ahead point w - lr beta v:
        v <- beta v + g(w - lr beta v);   w <- w - lr v.
    The two are the same algorithm: if w' = w - lr beta v is the look-ahead point of the
    lesson's form, then w' follows exactly the parameter-form update above (with g taken
    at w'), so this optimizer's parameters are the lesson's look-ahead points and the
    velocities agree step for step. The parameter form needs only the gradient at the
    current parameters, which is all a training loop provides.
    """

    def __init__(self, params: Iterable[Parameter], lr: float, beta: float = 0.9, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.beta = _number(beta, "beta", "Momentum", 0.0, 1.0, low_open=False)
        self.nesterov = bool(nesterov)
        self.velocities = self._zeros()  # v, one per parameter, starts at 0

    def step(self) -> None:
        """v <- beta v + g; w <- w - lr v (or w - lr (beta v + g) with Nesterov)."""
        lr, beta = self.lr, self.beta
        for p, v in zip(self.params, self.velocities):
            v *= beta
            v += p.grad
            if self.nesterov:
                p.data -= lr * (beta * v + p.grad)
            else:
                p.data -= lr * v


class RMSProp(Optimizer):
    """RMSProp (lesson 11): s <- rho s + (1 - rho) g^2;  w <- w - lr g / (sqrt(s) + eps).

    Each weight gets its own step size: divided by a running root-mean-square of its
    recent gradients, so steep directions take smaller steps and flat ones larger.
    """

    def __init__(self, params: Iterable[Parameter], lr: float, rho: float = 0.9, eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.rho = _number(rho, "rho", "RMSProp", 0.0, 1.0, low_open=False)
        self.eps = _number(eps, "eps", "RMSProp", 0.0)
        self.squares = self._zeros()  # s, running average of g^2, starts at 0

    def step(self) -> None:
        """s <- rho s + (1 - rho) g^2; w <- w - lr g / (sqrt(s) + eps)."""
        lr, rho, eps = self.lr, self.rho, self.eps
        for p, s in zip(self.params, self.squares):
            s *= rho
            s += (1.0 - rho) * (p.grad * p.grad)
            p.data -= lr * p.grad / (np.sqrt(s) + eps)


class Adam(Optimizer):
    """Adam (lesson 11): momentum (m) plus RMSProp-style scaling (v), both bias-corrected.

        t <- t + 1                          (t counts steps from 1)
        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) g^2
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
        w <- w - lr m_hat / (sqrt(v_hat) + eps)

    m and v start at 0, so early averages are too small; dividing by (1 - beta^t) undoes
    that. At t = 1, m_hat = g and v_hat = g^2, so the first step is about lr * sign(g).
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr)
        self.beta1 = _number(beta1, "beta1", "Adam", 0.0, 1.0, low_open=False)
        self.beta2 = _number(beta2, "beta2", "Adam", 0.0, 1.0, low_open=False)
        self.eps = _number(eps, "eps", "Adam", 0.0)
        self.t = 0  # steps taken so far
        self.m = self._zeros()  # first moment (mean of g), starts at 0
        self.v = self._zeros()  # second moment (mean of g^2), starts at 0

    def step(self) -> None:
        """One Adam update of every parameter."""
        self.t += 1
        lr, b1, b2, eps = self.lr, self.beta1, self.beta2, self.eps
        correction1 = 1.0 - b1**self.t  # bias corrections, the same for every parameter
        correction2 = 1.0 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            m_hat = m / correction1
            v_hat = v / correction2
            p.data -= lr * m_hat / (np.sqrt(v_hat) + eps)


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale all gradients by one factor so their joint L2 norm is at most max_norm; return the norm before.

    The joint norm is sqrt(sum of every squared gradient entry of every parameter). When it
    exceeds max_norm, every .grad is multiplied in place by max_norm / norm, which keeps the
    direction of the overall step and only shortens it. A NaN or infinite norm is returned
    without touching the gradients (no finite factor can fix it: lower the learning rate).
    """
    params = _param_list(params, "clip_grad_norm")
    max_norm = _number(max_norm, "max_norm", "clip_grad_norm", 0.0)
    total = math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))
    if total > max_norm and math.isfinite(total):
        scale = max_norm / total
        for p in params:
            p.grad *= scale
    return total
