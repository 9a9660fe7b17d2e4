"""Scalar reverse-mode autodiff: a `Value` remembers how it was computed and can backpropagate.

Every operation on Values builds a new Value whose `.inputs` are the Values it was computed
from, and attaches a small `_backward(dout)` closure. Given `dout` = dL/d(out), the closure
adds the local chain-rule terms into its inputs' `.grad` (`+=`, never `=`: a Value used twice,
as in `a + a`, must collect a contribution from every use).

`backward()` visits the graph in reverse topological order, so a node passes its gradient
down only after every node that uses it has passed theirs up. The order is computed with an
explicit stack (no recursion: a chain of a million nodes is fine) and depends only on the
order of `.inputs`, never on object ids, so it is the same on every run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from numbers import Real

Number = int | float


def _leaf_backward(dout: float) -> None:
    """A leaf has no inputs: there is nobody to pass the gradient to."""


def _takes_numbers(operator: Callable[[Value, Value], Value]) -> Callable[[Value, Value | Number], Value]:
    """Let a binary operator take a plain number as its other operand, wrapped in a leaf Value.

    For anything else it returns NotImplemented, so Python can try the other operand's method.
    (The wrapper replaces a helper call the operator made anyway: a graph builds no slower.)
    """

    @functools.wraps(operator)
    def with_numbers(self: Value, other: Value | Number) -> Value:
        if not isinstance(other, Value):
            if not isinstance(other, Real):
                return NotImplemented
            other = Value(other)
        return operator(self, other)

    return with_numbers


class Value:
    """One number in a computational graph, with the gradient dL/d(this number) in `.grad`."""

    # __slots__ drops the per-object __dict__: a Value then costs 80 bytes instead of about
    # 350 with a dict, which matters for graphs of a million nodes.
    __slots__ = ("data", "grad", "inputs", "op", "label", "_backward")

    def __init__(self, data: Number, inputs: tuple = (), op: str = "", label: str = "") -> None:
        if isinstance(data, Value):
            raise TypeError("Value(data) takes a number, got a Value: use that Value directly")
        try:
            self.data = float(data)
        except (TypeError, ValueError):
            raise TypeError(
                f"Value holds a single number, got {type(data).__name__}; for arrays use the layers in bpkit.layers"
            ) from None
        self.grad = 0.0
        self.inputs = tuple(inputs)
        self.op = op
        self.label = label  # optional name shown by draw_graph, e.g. "w1"
        self._backward: Callable[[float], None] = _leaf_backward

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"

    # ---- arithmetic -------------------------------------------------------------------------

    @_takes_numbers
    def __add__(self, other: Value) -> Value:
        out = Value(self.data + other.data, (self, other), "+")

        def _backward(dout: float) -> None:
            # d(a + b)/da = 1, d(a + b)/db = 1
            self.grad += dout
            other.grad += dout

        out._backward = _backward
        return out

    @_takes_numbers
    def __mul__(self, other: Value) -> Value:
        out = Value(self.data * other.data, (self, other), "*")

        def _backward(dout: float) -> None:
            # d(a * b)/da = b, d(a * b)/db = a
            self.grad += other.data * dout
            other.grad += self.data * dout

        out._backward = _backward
        return out

    @_takes_numbers
    def __sub__(self, other: Value) -> Value:
        out = Value(self.data - other.data, (self, other), "-")

        def _backward(dout: float) -> None:
            # d(a - b)/da = 1, d(a - b)/db = -1
            self.grad += dout
            other.grad -= dout

        out._backward = _backward
        return out

    @_takes_numbers
    def __truediv__(self, other: Value) -> Value:
        out = Value(self.data / other.data, (self, other), "/")

        def _backward(dout: float) -> None:
            # d(a / b)/da = 1 / b, d(a / b)/db = -a / b^2
            self.grad += dout / other.data
            other.grad -= dout * self.data / (other.data * other.data)

        out._backward = _backward
        return out

    def __pow__(self, exponent: Number) -> Value:
        if isinstance(exponent, Value):
            raise TypeError(
                "Value ** Value is not supported: the exponent must be a number. "
                "For a Value exponent b write (b * a.log()).exp()"
            )
        if not isinstance(exponent, Real):
            return NotImplemented
        p = float(exponent)
        result = self.data**p
        if isinstance(result, complex):  # e.g. (-4) ** 0.5: not a real number
            raise ValueError(f"{self.data} ** {exponent} is not a real number")
        out = Value(result, (self,), f"**{exponent}")

        def _backward(dout: float) -> None:
            # d(a^p)/da = p a^(p-1)
            self.grad += p * self.data ** (p - 1) * dout

        out._backward = _backward
        return out

    def __neg__(self) -> Value:
        out = Value(-self.data, (self,), "neg")

        def _backward(dout: float) -> None:
            # d(-a)/da = -1
            self.grad -= dout

        out._backward = _backward
        return out

    # Numbers on the left: 2 + a, 2 * a, 2 - a, 2 / a.
    def __radd__(self, other: Number) -> Value:
        return self + other

    def __rmul__(self, other: Number) -> Value:
        return self * other

    @_takes_numbers
    def __rsub__(self, other: Value) -> Value:
        return other - self

    @_takes_numbers
    def __rtruediv__(self, other: Value) -> Value:
        return other / self

    # ---- functions --------------------------------------------------------------------------

    def exp(self) -> Value:
        """e^a."""
        try:
            e_a = math.exp(self.data)
        except OverflowError:
            raise OverflowError(f"exp({self.data}) is too large for a float (the limit is about exp(709))") from None
        out = Value(e_a, (self,), "exp")

        def _backward(dout: float) -> None:
            # d(e^a)/da = e^a
            self.grad += e_a * dout

        out._backward = _backward
        return out

    def log(self) -> Value:
        """Natural logarithm; a must be positive."""
        if self.data <= 0:
            raise ValueError(f"log needs a positive number, got {self.data}")
        out = Value(math.log(self.data), (self,), "log")

        def _backward(dout: float) -> None:
            # d(log a)/da = 1 / a
            self.grad += dout / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        """Hyperbolic tangent, range (-1, 1)."""
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward(dout: float) -> None:
            # d(tanh a)/da = 1 - tanh(a)^2
            self.grad += (1.0 - t * t) * dout

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        """Logistic sigmoid 1 / (1 + e^-a), computed without overflow for any a."""
        x = self.data
        if x >= 0:
            s = 1.0 / (1.0 + math.exp(-x))  # e^-x <= 1: cannot overflow
        else:
            e = math.exp(x)  # e^x < 1 for x < 0: cannot overflow
            s = e / (1.0 + e)
        out = Value(s, (self,), "sigmoid")

        def _backward(dout: float) -> None:
            # d(sigmoid a)/da = s (1 - s)
            self.grad += s * (1.0 - s) * dout

        out._backward = _backward
        return out

    def relu(self) -> Value:
        """max(a, 0); its derivative at exactly 0 is taken as 0."""
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward(dout: float) -> None:
            # d(relu a)/da = 1 where a > 0, else 0
            if self.data > 0:
                self.grad += dout

        out._backward = _backward
        return out

    # ---- backpropagation --------------------------------------------------------------------

    def backward(self) -> None:
        """Add d(self)/d(node) to `node.grad` for every node in the graph below self.

        The root is seeded with d(self)/d(self) = 1, then each node, from the root down in
        reverse topological order, hands its gradient to its inputs through `_backward`.

        Calling backward() a second time ACCUMULATES again: every `.grad` (the root's
        included) grows by the same amount once more, so after two calls each gradient is
        doubled. That is how PyTorch treats parameters too. To start from clean gradients,
        call `zero_grad()` first.
        """
        order = topological_order(self)
        # The closures read each node's gradient *from this pass only*, so the pass starts
        # from zero and old gradients are added back at the end. That is what makes a second
        # call add exactly the same amount again, interior nodes included.
        previous = [node.grad for node in order]
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            node._backward(node.grad)
        for node, old in zip(order, previous):
            node.grad += old

    def zero_grad(self) -> None:
        """Set `.grad` to 0 on this Value and on every Value it was computed from."""
        for node in topological_order(self):
            node.grad = 0.0


def topological_order(root: Value) -> list[Value]:
    """Every Value reachable from root through `.inputs`, once each, inputs before users, root last.

    Depth-first search with an explicit stack instead of recursion. Each node is pushed with
    a flag in a parallel list: `False` means "not expanded yet: push its inputs", `True`
    means "its inputs are all placed: place it now". (Two plain lists rather than a list of
    (node, flag) tuples: that skips a million small allocations on a million-node chain.)
    Inputs are visited in the order of `.inputs`, so the result never depends on memory
    addresses.
    """
    if not isinstance(root, Value):
        raise TypeError(f"topological_order expects a Value, got {type(root).__name__}")
    order: list[Value] = []
    visited: set[Value] = set()  # only asked "seen before?", never iterated
    stack: list[Value] = [root]
    inputs_placed: list[bool] = [False]  # one flag per stack entry
    while stack:
        node = stack.pop()
        if inputs_placed.pop():
            order.append(node)
            continue
        if node in visited:  # pushed by two users; the first visit already handled it
            continue
        visited.add(node)
        stack.append(node)
        inputs_placed.append(True)
        # Reversed, so the first input is popped (and placed) first.
        for child in reversed(node.inputs):
            if child not in visited:
                stack.append(child)
                inputs_placed.append(False)
    return order
